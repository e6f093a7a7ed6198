// Drives the real Node libraries (@azure/identity, @azure/msal-node) against a
// running wisp, as configured by the JSON file named in WISP_COMPAT_CONFIG, and
// checks each token against the JWKS from the discovery document with a generic
// JWT library (jose). Prints one line per flow and a closing "N passed, N failed".
import { readFileSync } from "node:fs";
import {
  ClientAssertionCredential, ClientSecretCredential, ManagedIdentityCredential,
} from "@azure/identity";
import { ConfidentialClientApplication } from "@azure/msal-node";
import { createRemoteJWKSet, jwtVerify } from "jose";

const config = JSON.parse(readFileSync(process.env.WISP_COMPAT_CONFIG, "utf8"));
const authority = config.authority;
const tenant = config.tenant;
const scope = "api://orders/.default";
const results = [];

async function verify(token, tenantId, audience, clientId, roles) {
  const discovery = await (await fetch(`${authority}/${tenantId}/v2.0/.well-known/openid-configuration`)).json();
  const jwks = createRemoteJWKSet(new URL(discovery.jwks_uri));
  const { payload } = await jwtVerify(token, jwks, { algorithms: ["RS256"], audience });
  const issuers = [discovery.issuer, `${authority}/${tenantId}/`];
  if (!issuers.includes(payload.iss)) throw new Error(`iss ${payload.iss}`);
  if (payload.tid !== tenantId) throw new Error(`tid ${payload.tid}`);
  if ((payload.azp ?? payload.appid) !== clientId) throw new Error(`azp ${payload.azp}`);
  if (!payload.oid || payload.oid.length !== 36 || !payload.sub) throw new Error("oid/sub");
  if (payload.exp < Date.now() / 1000 + 60) throw new Error("exp");
  for (const role of roles) if (!(payload.roles ?? []).includes(role)) throw new Error(`role ${role} missing`);
  return payload;
}

async function flow(name, fn) {
  const started = Date.now();
  try {
    await fn();
    results.push(true);
    console.log(`ok   ${name} (${(Date.now() - started) / 1000}s)`);
  } catch (e) {
    results.push(false);
    console.log(`FAIL ${name} (${(Date.now() - started) / 1000}s)`);
    console.log(e?.stack ?? e);
  }
}

const options = { authorityHost: authority, disableInstanceDiscovery: true };

await flow("@azure/identity ClientAssertionCredential", async () => {
  const cred = new ClientAssertionCredential(tenant, config.assertion_client, async () => config.github_assertion, options);
  await verify((await cred.getToken(scope)).token, tenant, config.orders_app_id, config.assertion_client, ["Orders.Read"]);
});

await flow("@azure/identity ClientSecretCredential", async () => {
  const cred = new ClientSecretCredential(tenant, config.secret_client, config.secret, options);
  await verify((await cred.getToken(scope)).token, tenant, config.orders_app_id, config.secret_client, ["Orders.Read"]);
});

await flow("@azure/identity ManagedIdentityCredential (IMDS, user-assigned)", async () => {
  process.env.AZURE_POD_IDENTITY_AUTHORITY_HOST = config.imds_host;
  const cred = new ManagedIdentityCredential({ clientId: config.worker_client_id });
  await verify((await cred.getToken(scope)).token, tenant, config.orders_app_id, config.worker_client_id, ["Orders.Read"]);
  delete process.env.AZURE_POD_IDENTITY_AUTHORITY_HOST;
});

await flow("@azure/msal-node ConfidentialClientApplication with a secret", async () => {
  const host = new URL(authority).host;
  const app = new ConfidentialClientApplication({
    auth: { clientId: config.secret_client, clientSecret: config.secret, authority: `${authority}/${tenant}`, knownAuthorities: [host] },
  });
  const result = await app.acquireTokenByClientCredential({ scopes: [scope] });
  await verify(result.accessToken, tenant, config.orders_app_id, config.secret_client, ["Orders.Read"]);
});

await flow("refusal: a wrong subject surfaces as AADSTS700213, quickly", async () => {
  const cred = new ClientAssertionCredential(tenant, config.assertion_client, async () => config.wrong_subject_assertion, options);
  const started = Date.now();
  try {
    await cred.getToken(scope);
    throw new Error("a wrong subject was accepted");
  } catch (e) {
    if (!String(e?.message).includes("AADSTS700213")) throw e;
  }
  if (Date.now() - started > 5000) throw new Error("retry storm");
});

const passed = results.filter(Boolean).length;
console.log(`${passed} passed, ${results.length - passed} failed`);
process.exit(passed === results.length ? 0 : 1);
