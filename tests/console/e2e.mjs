// The wisp web console in a real browser (Debian's headless Chromium through
// playwright-core). Run by tests/it/console.rs against a real `wisp serve`:
//   WISP_URL, WISP_TENANT, WISP_CLIENT_ID, WISP_CLIENT_SECRET  the administrator
//   READER_CLIENT_ID, READER_CLIENT_SECRET                     a read-only administrator
//   ASSERTION_MAIN, ASSERTION_FEATURE  GitHub-shaped tokens (main / another branch)
//   CHROMIUM, SCREENSHOTS              the browser, and where screenshots go
// Prints one JSON line of results; exits 1 with the failed step otherwise.
import { chromium } from "playwright-core";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const base = env("WISP_URL");
const shots = env("SCREENSHOTS");
const results = {};

function expect(condition, message) {
  if (!condition) throw new Error(message);
}

async function signIn(page, clientId, secret, tenant = env("WISP_TENANT")) {
  await page.goto(`${base}/console/`);
  expect(page.url().endsWith("/console/signin"), `not sent to sign in: ${page.url()}`);
  // Keyboard only: labels and tab order get the administrator through.
  await page.getByLabel("Tenant id").focus();
  await page.keyboard.type(tenant);
  await page.keyboard.press("Tab");
  await page.keyboard.type(clientId);
  await page.keyboard.press("Tab");
  await page.keyboard.type(secret);
  await page.keyboard.press("Enter");
  await page.waitForURL(`${base}/console/applications`);
}

async function token(clientId, assertion, tenant = env("WISP_TENANT"), scope = "api://AzureADTokenExchange/.default") {
  const response = await fetch(`${base}/${tenant}/oauth2/v2.0/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "client_credentials",
      client_id: clientId,
      client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
      client_assertion: assertion,
      scope,
    }),
  });
  return { status: response.status, body: await response.json() };
}

const browser = await chromium.launch({ executablePath: env("CHROMIUM"), args: ["--no-sandbox"] });
try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  const urls = [];
  page.on("request", (request) => urls.push(request.url()));

  // Sign in with the keyboard; the session cookie's flags.
  await signIn(page, env("WISP_CLIENT_ID"), env("WISP_CLIENT_SECRET"));
  const cookie = (await context.cookies()).find((c) => c.name === "__Host-wisp-console");
  expect(cookie && cookie.secure && cookie.httpOnly && cookie.sameSite === "Strict", `cookie flags: ${JSON.stringify(cookie)}`);
  expect(cookie.expires > Date.now() / 1000 && cookie.expires < Date.now() / 1000 + 3700, "the session expires");
  await page.screenshot({ path: `${shots}/01-applications.png`, fullPage: true });

  // Register an application.
  await page.getByLabel("Display name").fill("deployer");
  await page.getByRole("button", { name: "Register" }).click();
  await page.waitForURL(/\/console\/applications\/[0-9a-f-]{36}$/);
  const appId = (await page.locator("#app-id").textContent()).trim();
  results.appId = appId;
  await page.screenshot({ path: `${shots}/02-application.png`, fullPage: true });

  // Certificates & secrets → Federated credentials → Add credential → GitHub Actions.
  await page.getByRole("link", { name: "Certificates & secrets" }).click();
  await page.getByRole("link", { name: "Add credential" }).click();
  await page.getByLabel("Repository (organization/repository)").fill("acme/app");
  await page.getByLabel("Entity type").selectOption("branch");
  await page.getByLabel("Based on selection").fill("main");
  const preview = (await page.locator("#preview-subject").textContent()).trim();
  expect(preview === "repo:acme/app:ref:refs/heads/main", `live preview: ${preview}`);
  expect((await page.locator("#preview-issuer").textContent()).trim() === "https://token.actions.githubusercontent.com", "issuer preview");
  await page.getByLabel("Name (3–120").fill("gh-main");
  await page.screenshot({ path: `${shots}/03-add-github-credential.png`, fullPage: true });
  await page.getByRole("button", { name: "Add", exact: true }).click();
  await page.waitForURL(/credentials\?tab=federated$/);
  const row = page.locator("tr", { hasText: "gh-main" });
  expect((await row.textContent()).includes("repo:acme/app:ref:refs/heads/main"), "the credential is listed");
  await page.screenshot({ path: `${shots}/04-federated-credentials.png`, fullPage: true });

  // The name rule, with the API's message, next to the form.
  await page.goto(`${base}/console/applications/${page.url().split("/")[5]}/credentials/federated/new?scenario=github`);
  await page.getByLabel("Repository (organization/repository)").fill("acme/app");
  await page.getByLabel("Based on selection").fill("dev");
  await page.getByLabel("Name (3–120").fill("gh-main");
  await page.getByRole("button", { name: "Add", exact: true }).click();
  const nameError = (await page.locator("#form-error").textContent()).trim();
  expect(nameError.includes("already exists"), `duplicate name refused: ${nameError}`);

  // A real token exchange with that credential, then a wrong-branch token refused.
  const granted = await token(appId, env("ASSERTION_MAIN"));
  expect(granted.status === 200 && granted.body.access_token, `exchange: ${JSON.stringify(granted.body)}`);
  const refused = await token(appId, env("ASSERTION_FEATURE"));
  expect(refused.status === 401 && refused.body.error_codes[0] === 700213, `refusal: ${JSON.stringify(refused.body)}`);
  results.refusedCorrelationId = refused.body.correlation_id;

  // The sign-in log page explains the refusal.
  await page.getByRole("link", { name: "Sign-in logs" }).click();
  await page.getByLabel("Outcome").selectOption("refused");
  await page.getByLabel("Correlation id").fill(refused.body.correlation_id);
  await page.getByRole("button", { name: "Filter" }).click();
  const explained = await page.locator("tr.explain").first().textContent();
  for (const text of ["gh-main", "no match", "repo:acme/app:ref:refs/heads/main", "repo:acme/app:ref:refs/heads/feature"]) {
    expect(explained.includes(text), `the explanation shows ${text}: ${explained}`);
  }
  results.explained = explained.replace(/\s+/g, " ").trim();
  await page.screenshot({ path: `${shots}/05-sign-in-log-refusal.png`, fullPage: true });

  // A client secret is shown once, never in a URL.
  await page.goto(`${base}/console/applications`);
  await page.getByRole("link", { name: "deployer" }).click();
  await page.getByRole("link", { name: "Certificates & secrets" }).click();
  await page.getByRole("link", { name: /Client secrets/ }).click();
  await page.getByRole("button", { name: "New client secret" }).click();
  const secret = (await page.locator("#new-secret").textContent()).trim();
  expect(secret.length >= 40, "the new secret is shown");
  expect(page.url().endsWith("/credentials?tab=secrets"), `post, redirect, get: ${page.url()}`);
  const secretsBefore = await page.locator("tbody tr").count();
  await page.reload();
  expect(!(await page.content()).includes(secret), "shown only once");
  expect((await page.locator("tbody tr").count()) === secretsBefore, "a reload adds no secret");
  expect(!urls.some((u) => u.includes(secret) || u.includes(env("ASSERTION_MAIN").slice(0, 40))), "no secret in a URL");

  // Sign out: the session is gone on the server too.
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(`${base}/console/signin`);
  await page.goto(`${base}/console/applications`);
  expect(page.url().endsWith("/console/signin"), "signed out");
  await page.screenshot({ path: `${shots}/00-sign-in.png` });

  // Without JavaScript: the Kubernetes scenario, previewed by the server, then saved.
  const plain = await browser.newContext({ ignoreHTTPSErrors: true, javaScriptEnabled: false });
  const noJs = await plain.newPage();
  await signIn(noJs, env("WISP_CLIENT_ID"), env("WISP_CLIENT_SECRET"));
  await noJs.getByRole("link", { name: "deployer" }).click();
  const appPath = new URL(noJs.url()).pathname;
  await noJs.goto(`${base}${appPath}/credentials/federated/new?scenario=kubernetes`);
  await noJs.getByLabel("Cluster issuer URL").fill("https://oidc.example.com/cluster1");
  await noJs.getByLabel("Namespace").fill("payments");
  await noJs.getByLabel("Service account name").fill("api");
  await noJs.getByLabel("Name (3–120").fill("k8s-payments");
  await noJs.getByRole("button", { name: "Preview" }).click();
  const serverPreview = (await noJs.locator("#preview-subject").textContent()).trim();
  expect(serverPreview === "system:serviceaccount:payments:api", `server preview: ${serverPreview}`);
  await noJs.screenshot({ path: `${shots}/06-kubernetes-without-javascript.png`, fullPage: true });
  await noJs.getByRole("button", { name: "Add", exact: true }).click();
  await noJs.waitForURL(/credentials\?tab=federated$/);
  expect((await noJs.content()).includes("system:serviceaccount:payments:api"), "saved without JavaScript");

  // Other issuer with a claims-matching expression: the parser's error, at its position.
  await noJs.goto(`${base}${appPath}/credentials/federated/new?scenario=other`);
  await noJs.getByLabel("Issuer", { exact: true }).fill("https://token.actions.githubusercontent.com");
  await noJs.getByLabel(/claims-matching expression/).fill("claims['sub'] matchs 'repo:acme/*'");
  await noJs.getByLabel("Name (3–120").fill("expression");
  await noJs.getByRole("button", { name: "Add", exact: true }).click();
  const caret = await noJs.locator("pre.caret").textContent();
  expect(caret.split("\n")[1] === " ".repeat(14) + "^", `caret under the error: ${JSON.stringify(caret)}`);
  expect((await noJs.locator("#form-error").textContent()).includes("at position 14"), "the parser's message");

  // The managed-identity half of the seed scenario (without JavaScript): an identity,
  // a VM it is attached to with an agent join token, and the identity trusted by the app.
  await noJs.goto(`${base}/console/identities`);
  await noJs.getByLabel("New user-assigned identity").fill("worker");
  await noJs.getByRole("button", { name: "Create" }).click();
  await noJs.waitForURL(/\/console\/identities\/[0-9a-f-]{36}$/);
  const principal = (await noJs.locator("dd", { hasText: /^[0-9a-f-]{36}$/ }).nth(1).textContent()).trim();
  await noJs.getByRole("link", { name: "Resources" }).click();
  await noJs.getByLabel("Name", { exact: true }).fill("vm1");
  await noJs.getByLabel("worker").check();
  await noJs.getByRole("button", { name: "Create" }).click();
  await noJs.waitForURL(/\/console\/resources\/[0-9a-f-]{36}$/);
  expect(await noJs.getByLabel("worker").isChecked(), "worker is attached to vm1");
  await noJs.getByRole("button", { name: "Create an agent join token" }).click();
  expect((await noJs.locator("#join-token").textContent()).trim().startsWith("wjt_"), "a join token, shown once");
  await noJs.goto(`${base}${appPath}/credentials/federated/new?scenario=managed_identity`);
  await noJs.getByLabel("User-assigned managed identity").selectOption({ label: "worker" });
  await noJs.getByLabel("Name (3–120").fill("from-worker");
  await noJs.getByRole("button", { name: "Preview" }).click();
  expect((await noJs.locator("#preview-subject").textContent()).trim() === principal, "the identity's principal id");
  await noJs.getByRole("button", { name: "Add", exact: true }).click();
  await noJs.waitForURL(/credentials\?tab=federated$/);
  await noJs.setViewportSize({ width: 390, height: 844 });
  await noJs.screenshot({ path: `${shots}/09-credentials-on-a-phone.png`, fullPage: true });
  await noJs.setViewportSize({ width: 1280, height: 860 });

  // The multi-tenant half of the seed scenario, in the console alone (still without JavaScript):
  // make the app multi-tenant, create a customer tenant, provision the app there, grant it a role.
  await noJs.goto(`${base}${appPath}`);
  await noJs.getByLabel("Multi-tenant").check();
  await noJs.getByRole("button", { name: "Save" }).click();
  expect((await noJs.locator(".notice").textContent()).includes("Saved"), "saved as multi-tenant");
  await noJs.goto(`${base}/console/tenants`);
  await noJs.getByLabel("New tenant name").fill("Customer");
  await noJs.getByRole("button", { name: "Create tenant" }).click();
  const customer = (await noJs.locator("#new-tenant-id").textContent()).trim();
  const customerClient = (await noJs.locator("#new-tenant-client").textContent()).trim();
  const customerSecret = (await noJs.locator("#new-tenant-secret").textContent()).trim();
  const customerContext = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 860 } });
  const admin2 = await customerContext.newPage();
  await signIn(admin2, customerClient, customerSecret, customer);
  await admin2.getByRole("link", { name: "Enterprise applications" }).click();
  await admin2.getByLabel("Application (client) id").fill(appId);
  await admin2.getByRole("button", { name: "Provision" }).click();
  expect((await admin2.locator("tr", { hasText: appId }).count()) === 1, "provisioned");
  await admin2.screenshot({ path: `${shots}/07-enterprise-applications.png`, fullPage: true });
  await admin2.getByRole("link", { name: "App registrations" }).click();
  await admin2.getByLabel("Display name").fill("orders");
  await admin2.getByRole("button", { name: "Register" }).click();
  await admin2.getByLabel("Identifier URIs").fill("api://orders");
  await admin2.getByLabel("App roles (values)").fill("Orders.Read");
  await admin2.getByRole("button", { name: "Save" }).click();
  await admin2.getByLabel("Grant to").fill("deployer");
  await admin2.getByLabel("role", { exact: true }).selectOption({ label: "Orders.Read" });
  await admin2.getByRole("button", { name: "Grant" }).click();
  expect((await admin2.locator("tr", { hasText: "deployer" }).textContent()).includes("Orders.Read"), "granted");
  await admin2.screenshot({ path: `${shots}/08-role-granted.png`, fullPage: true });
  const customerToken = await token(appId, env("ASSERTION_MAIN_AGAIN"), customer, "api://orders/.default");
  expect(customerToken.status === 200, `customer tenant token: ${JSON.stringify(customerToken.body)}`);
  const claims = JSON.parse(Buffer.from(customerToken.body.access_token.split(".")[1], "base64url"));
  expect(claims.tid === customer && claims.roles.join() === "Orders.Read", `customer claims: ${JSON.stringify(claims)}`);
  results.customerTenant = customer;

  // A read-only administrator sees no edit buttons and cannot post.
  const readerContext = await browser.newContext({ ignoreHTTPSErrors: true });
  const reader = await readerContext.newPage();
  await signIn(reader, env("READER_CLIENT_ID"), env("READER_CLIENT_SECRET"));
  expect((await reader.getByRole("button", { name: "Register" }).count()) === 0, "no Register button for a reader");
  await reader.getByRole("link", { name: "deployer" }).click();
  await reader.getByRole("link", { name: "Certificates & secrets" }).click();
  expect((await reader.getByRole("link", { name: "Add credential" }).count()) === 0, "no Add credential for a reader");
  const csrf = await reader.locator("input[name=csrf]").first().getAttribute("value");
  const posted = await reader.request.post(`${base}/console/applications`, { form: { csrf, name: "sneaky" } });
  expect(posted.status() === 403, `a reader's post is refused: ${posted.status()}`);
  const forged = await reader.request.post(`${base}/console/applications`, { form: { csrf: "forged", name: "x" } });
  expect(forged.status() === 403, "a post without the session's CSRF token is refused");

  console.log(JSON.stringify(results));
} catch (error) {
  console.error(`console e2e failed: ${error.stack || error}`);
  // Where it stopped: a screenshot and the page's own error message.
  for (const [i, open] of browser.contexts().flatMap((c) => c.pages()).entries()) {
    await open.screenshot({ path: `${shots}/failure-${i}.png`, fullPage: true }).catch(() => {});
    const shown = await open.locator(".error").allTextContents().catch(() => []);
    if (shown.length) console.error(`page ${i} (${open.url()}) shows: ${shown.join(" | ")}`);
  }
  process.exitCode = 1;
} finally {
  await browser.close();
}
