//! Fills a directory with filler applications and federated credentials in
//! bulk SQL, to check that the token path does not slow down as the directory
//! grows (the admin API would take far longer to create a million objects).

use std::time::Instant;

use sqlx::{AnyConnection, Connection, Executor};

/// Inserts `apps` applications with `fics` credentials each into `tenant`.
/// Ids are GUID-shaped and unique; issuers and subjects never match a real token.
pub async fn fill(url: &str, tenant: &str, apps: usize, fics: usize) -> anyhow::Result<std::time::Duration> {
    sqlx::any::install_default_drivers();
    let started = Instant::now();
    let mut conn = AnyConnection::connect(url).await?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64;
    let postgres = url.starts_with("postgres");
    let (apps_sql, fics_sql) = if postgres {
        (
            format!(
                "INSERT INTO applications (id, app_id, tenant_id, display_name, sign_in_audience, created_at) \
                 SELECT lpad(to_hex(i), 8, '0') || '-0000-4000-8000-' || lpad(to_hex(i), 12, '0'), \
                        lpad(to_hex(i), 8, '0') || '-0000-4000-9000-' || lpad(to_hex(i), 12, '0'), \
                        '{tenant}', 'filler ' || i, 'AzureADMyOrg', {now} \
                 FROM generate_series(0, {last}) AS i",
                last = apps as i64 - 1
            ),
            format!(
                "INSERT INTO federated_identity_credentials (id, owner_id, tenant_id, name, issuer, subject, audiences, created_at) \
                 SELECT lpad(to_hex(i), 8, '0') || '-' || lpad(to_hex(j), 4, '0') || '-4000-a000-' || lpad(to_hex(i), 12, '0'), \
                        lpad(to_hex(i), 8, '0') || '-0000-4000-8000-' || lpad(to_hex(i), 12, '0'), \
                        '{tenant}', 'filler-' || j, 'https://filler.invalid/' || (i % 100), \
                        'repo:filler/app-' || i || ':ref:refs/heads/b' || j, '[\"api://AzureADTokenExchange\"]', {now} \
                 FROM generate_series(0, {last_app}) AS i, generate_series(0, {last_fic}) AS j",
                last_app = apps as i64 - 1,
                last_fic = fics as i64 - 1
            ),
        )
    } else {
        (
            format!(
                "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {last}) \
                 INSERT INTO applications (id, app_id, tenant_id, display_name, sign_in_audience, created_at) \
                 SELECT printf('%08x-0000-4000-8000-%012x', i, i), printf('%08x-0000-4000-9000-%012x', i, i), \
                        '{tenant}', 'filler ' || i, 'AzureADMyOrg', {now} FROM n",
                last = apps as i64 - 1
            ),
            format!(
                "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {last_app}), \
                               m(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM m WHERE j < {last_fic}) \
                 INSERT INTO federated_identity_credentials (id, owner_id, tenant_id, name, issuer, subject, audiences, created_at) \
                 SELECT printf('%08x-%04x-4000-a000-%012x', i, j, i), printf('%08x-0000-4000-8000-%012x', i, i), \
                        '{tenant}', 'filler-' || j, 'https://filler.invalid/' || (i % 100), \
                        'repo:filler/app-' || i || ':ref:refs/heads/b' || j, '[\"api://AzureADTokenExchange\"]', {now} \
                 FROM n, m",
                last_app = apps as i64 - 1,
                last_fic = fics as i64 - 1
            ),
        )
    };
    let mut tx = conn.begin().await?;
    tx.execute(sqlx::AssertSqlSafe(apps_sql)).await?;
    if fics > 0 {
        tx.execute(sqlx::AssertSqlSafe(fics_sql)).await?;
    }
    tx.commit().await?;
    if postgres {
        conn.execute("ANALYZE").await?;
    } else {
        conn.execute("PRAGMA optimize").await?;
    }
    conn.close().await?;
    Ok(started.elapsed())
}
