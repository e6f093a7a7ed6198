//! `wisp apply` and `wisp export`: configuration files (YAML or JSON) against
//! the admin API's `/v1.0/tenantConfiguration`. The file is checked here first
//! (syntax, format, `${VAR}` references) so mistakes are reported with the
//! file's name and the path inside it; the server plans and applies.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::Value;

use super::admin::{AdminArgs, Output};
use super::client::AdminClient;
use crate::declarative::manifest::{self, Problem};

#[derive(Args, Debug)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub admin: AdminArgs,
    /// Configuration file, YAML or JSON (`-` reads standard input)
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: PathBuf,
    /// Show the plan only. Exit code 0: nothing to change; 2: changes pending
    #[arg(long)]
    pub dry_run: bool,
    /// Also delete objects an earlier apply created that the file no longer lists
    #[arg(long)]
    pub prune: bool,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub admin: AdminArgs,
    /// Write to FILE instead of standard output
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Print the configuration format's JSON Schema instead (no server needed)
    #[arg(long)]
    pub schema: bool,
}

/// Reads, checks and returns the file as the JSON the server takes.
fn read_file(path: &Path) -> anyhow::Result<Value> {
    let name = path.display();
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).context("cannot read standard input")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {name}"))?
    };
    // YAML is a superset of JSON: one parser for both.
    let mut value: Value = serde_yaml_ng::from_str(&text).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    let mut problems = Vec::new();
    substitute(&mut value, String::new(), &|var| std::env::var(var).ok(), &mut problems);
    if problems.is_empty()
        && let Err(problem) = manifest::from_value(value.clone())
    {
        problems.push(problem);
    }
    if !problems.is_empty() {
        bail!("{}", report(&name.to_string(), &problems));
    }
    Ok(value)
}

/// Replaces `${NAME}` in string values with the environment variable NAME
/// (for ids only known after another apply, such as another tenant's appId).
/// `$${` writes a literal `${`. An unset variable is a problem at its path.
fn substitute(value: &mut Value, path: String, env: &dyn Fn(&str) -> Option<String>, problems: &mut Vec<Problem>) {
    match value {
        Value::String(text) if text.contains("${") => {
            let mut out = String::new();
            let mut rest = text.as_str();
            while let Some(start) = rest.find("${") {
                if rest[..start].ends_with('$') {
                    out.push_str(&rest[..start - 1]);
                    out.push_str("${");
                    rest = &rest[start + 2..];
                    continue;
                }
                out.push_str(&rest[..start]);
                let Some(end) = rest[start..].find('}') else {
                    problems.push(Problem { path, message: "'${' without a closing '}'".into() });
                    return;
                };
                let name = &rest[start + 2..start + end];
                let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                match env(name).filter(|_| valid) {
                    Some(found) => out.push_str(&found),
                    None => {
                        let message = if valid {
                            format!("the environment variable {name} is not set")
                        } else {
                            format!("'${{{name}}}' is not a variable reference (letters, digits, '_')")
                        };
                        problems.push(Problem { path: path.clone(), message });
                    }
                }
                rest = &rest[start + end + 1..];
            }
            out.push_str(rest);
            *text = out;
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                substitute(item, format!("{path}[{i}]"), env, problems);
            }
        }
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                let at = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                substitute(item, at, env, problems);
            }
        }
        _ => {}
    }
}

fn report(file: &str, problems: &[Problem]) -> String {
    let mut lines: Vec<String> = problems.iter().map(|p| format!("{file}: {p}")).collect();
    if problems.len() > 1 {
        lines.insert(0, format!("{} problems in {file}; nothing was applied:", problems.len()));
    } else {
        lines.push("Nothing was applied.".into());
    }
    lines.join("\n")
}

/// The server's refusal, with every problem it lists, each at its path.
fn refusal(file: &str, status: reqwest::StatusCode, body: &Value) -> anyhow::Error {
    let details: Vec<Problem> = body["error"]["details"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|d| Problem {
                    path: d["target"].as_str().unwrap_or_default().to_string(),
                    message: d["message"].as_str().unwrap_or_default().to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    if details.is_empty() {
        let message = body["error"]["message"].as_str().map(str::to_string).unwrap_or_else(|| body.to_string());
        anyhow::anyhow!("{message} ({status})")
    } else {
        anyhow::anyhow!("{}", report(file, &details))
    }
}

pub async fn apply(args: &ApplyArgs) -> anyhow::Result<ExitCode> {
    let file = args.file.display().to_string();
    let body = read_file(&args.file)?;
    let client = AdminClient::connect(&args.admin.connection).await?;
    let query = if args.prune { "?prune=true" } else { "" };
    let (status, plan) = client.post_raw(&format!("/v1.0/tenantConfiguration/plan{query}"), &body, None).await?;
    if !status.is_success() {
        return Err(refusal(&file, status, &plan));
    }
    let changes = plan["changes"].as_array().map(Vec::len).unwrap_or(0);
    if args.dry_run || changes == 0 {
        match args.admin.output {
            Output::Json => println!("{}", serde_json::to_string_pretty(&plan)?),
            Output::Table => print!("{}", render(&plan)),
        }
        return Ok(if args.dry_run && changes > 0 { ExitCode::from(2) } else { ExitCode::SUCCESS });
    }
    if args.admin.output == Output::Table {
        print!("{}", render(&plan));
    }
    let etag = plan["etag"].as_str().context("the plan has no ETag")?;
    let (status, applied) =
        client.post_raw(&format!("/v1.0/tenantConfiguration/apply{query}"), &body, Some(etag)).await?;
    if !status.is_success() {
        return Err(refusal(&file, status, &applied));
    }
    match args.admin.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&applied)?),
        Output::Table => println!("Applied {changes} change{}.", if changes == 1 { "" } else { "s" }),
    }
    Ok(ExitCode::SUCCESS)
}

/// A plan as a reviewer reads it: `+` create, `~` update with each changed
/// field, `-` delete; a one-field update on one line.
pub fn render(plan: &Value) -> String {
    let mut out = String::new();
    let changes = plan["changes"].as_array().cloned().unwrap_or_default();
    let (mut create, mut update, mut delete) = (0, 0, 0);
    let show = |v: &Value| match v {
        Value::Null => "(none)".to_string(),
        other => other.to_string(),
    };
    for change in &changes {
        let sign = match change["action"].as_str() {
            Some("create") => {
                create += 1;
                '+'
            }
            Some("update") => {
                update += 1;
                '~'
            }
            _ => {
                delete += 1;
                '-'
            }
        };
        let head = format!(
            "{sign} {} {}",
            change["kind"].as_str().unwrap_or_default(),
            change["name"].as_str().unwrap_or_default()
        );
        let fields = change["fields"].as_array().cloned().unwrap_or_default();
        match (sign, fields.as_slice()) {
            ('~', [one]) => out.push_str(&format!(
                "{head}: {} {} -> {}\n",
                one["field"].as_str().unwrap_or_default(),
                show(&one["before"]),
                show(&one["after"])
            )),
            _ => {
                out.push_str(&head);
                out.push('\n');
                for f in &fields {
                    let name = f["field"].as_str().unwrap_or_default();
                    if sign == '+' {
                        out.push_str(&format!("    {name}: {}\n", show(&f["after"])));
                    } else {
                        out.push_str(&format!("    {name}: {} -> {}\n", show(&f["before"]), show(&f["after"])));
                    }
                }
            }
        }
    }
    for note in plan["notes"].as_array().cloned().unwrap_or_default() {
        out.push_str(&format!("note: {}\n", note.as_str().unwrap_or_default()));
    }
    if changes.is_empty() {
        out.push_str("No changes: the tenant matches the file.\n");
    } else {
        out.push_str(&format!("Plan: {create} to create, {update} to update, {delete} to delete.\n"));
    }
    out
}

pub async fn export(args: &ExportArgs) -> anyhow::Result<()> {
    let text = if args.schema {
        manifest::json_schema()
    } else {
        let client = AdminClient::connect(&args.admin.connection).await?;
        let exported = client.get("/v1.0/tenantConfiguration").await?;
        match args.admin.output {
            Output::Json => serde_json::to_string_pretty(&exported)? + "\n",
            Output::Table => {
                // Through the typed manifest: the YAML has the format's field order.
                let manifest = manifest::from_value(exported).map_err(|p| anyhow::anyhow!("unexpected export: {p}"))?;
                format!(
                    "# wisp tenant configuration, exported from tenant {}.\n# Apply with: wisp apply -f FILE\n{}",
                    client.tenant,
                    serde_yaml_ng::to_string(&manifest)?
                )
            }
        }
    };
    match &args.file {
        Some(path) => std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn variables_are_substituted_and_missing_ones_reported_at_their_path() {
        let env = |name: &str| (name == "VENDOR_APP").then(|| "1234".to_string());
        let mut value = json!({"a": ["x-${VENDOR_APP}-y", "$${literal}", "${MISSING}", "${bad name}"]});
        let mut problems = Vec::new();
        substitute(&mut value, String::new(), &env, &mut problems);
        assert_eq!(value["a"][0], "x-1234-y");
        assert_eq!(value["a"][1], "${literal}");
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[0].path, "a[2]");
        assert!(problems[0].message.contains("MISSING is not set"));
        assert_eq!(problems[1].path, "a[3]");
    }

    #[test]
    fn plans_render_as_a_diff() {
        let plan = json!({"changes": [
            {"action": "update", "kind": "federatedCredential", "name": "deployer/gh", "path": "x",
             "fields": [{"field": "subject", "before": "a", "after": "b"}]},
            {"action": "create", "kind": "application", "name": "orders", "path": "y",
             "fields": [{"field": "identifierUris", "before": null, "after": ["api://orders"]}]},
            {"action": "delete", "kind": "roleAssignment", "name": "d -> o/R", "path": "", "fields": []},
        ], "notes": []});
        assert_eq!(
            render(&plan),
            "~ federatedCredential deployer/gh: subject \"a\" -> \"b\"\n\
             + application orders\n    identifierUris: [\"api://orders\"]\n\
             - roleAssignment d -> o/R\n\
             Plan: 1 to create, 1 to update, 1 to delete.\n"
        );
    }
}
