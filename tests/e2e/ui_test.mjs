// The web UI end to end (docs/ui.md): a real `bytefreezer run` on free ports, driven
// through Debian's Chromium by playwright-core. Logs in, creates a tenant and a
// dataset on the first-run page, sends events and watches the counters move,
// changes the pipeline in the dataset editor (the next events carry the change, no
// restart), creates keys and users, reads the audit log, runs a query and downloads
// the CSV; creates, pauses and edits a connector; renders the schema-driven source form from a fixture; and checks every
// page for labelled controls and keyboard reachability. Screenshots go to --artifacts.
//
//   node tests/e2e/ui_test.mjs --binary build/bytefreezer --artifacts build/e2e-artifacts/ui
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const binary = path.resolve(args.binary ?? path.join(root, "build/bytefreezer"));
const artifacts = path.resolve(args.artifacts ?? path.join(root, "build/e2e-artifacts/ui"));
const chromiumPath = args.chromium ?? "/usr/bin/chromium";

const require = createRequire(path.join(root, "ui/package.json"));
let chromium;
try {
  ({ chromium } = require("playwright-core"));
} catch {
  console.error("ui_test: playwright-core is missing: run scripts/setup.sh (npm ci in ui/)");
  process.exit(1);
}
if (!fs.existsSync(chromiumPath)) {
  console.error(`ui_test: ${chromiumPath} is missing: run scripts/setup.sh (Debian package chromium)`);
  process.exit(1);
}

const ADMIN = { email: "admin@example.com", password: "correct-horse-battery-staple" };
const started = Date.now();
const log = (...m) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s]`, ...m);

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitFor(what, fn, timeoutMs = 20000, everyMs = 250) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ""}`);
}

// ---- bytefreezer run ---------------------------------------------------------
async function startBytefreezer(dir, { ports = null, extra = "" } = {}) {
  for (let attempt = 0; attempt < 3; attempt++) {
    const p = ports ?? { control: await freePort(), receiver: await freePort(), query: await freePort(), admin: await freePort() };
    const config = `log: {level: info}
admin: {listen: "127.0.0.1:${p.admin}"}
control: {listen: "127.0.0.1:${p.control}", db: ${dir}/control.db, health: {report_interval: 500ms}}
storage: {type: local, path: ${dir}/store}
proxy:
  receiver: {url: "http://127.0.0.1:${p.receiver}", ingest_key: unused-proxy-key-0123456789}
  spool: {dir: ${dir}/proxy-spool}
  sources: []
receiver: {listen: "127.0.0.1:${p.receiver}", spool: {dir: ${dir}/receiver-spool}}
piper: {interval: 300ms}
packer: {interval: 1s, max_batches_per_part: 1, flush: {age: 0s}}
query: {listen: "127.0.0.1:${p.query}", temp_dir: ${dir}/query-tmp}
leases: {path: ${dir}/leases.db}
${extra}`;
    fs.writeFileSync(path.join(dir, "bytefreezer.yaml"), config);
    const out = fs.openSync(path.join(artifacts, "bytefreezer.log"), "a");
    const child = spawn(binary, ["run", "--config", path.join(dir, "bytefreezer.yaml")], {
      cwd: dir,
      env: { ...process.env, BYTEFREEZER_ADMIN_EMAIL: ADMIN.email, BYTEFREEZER_ADMIN_PASSWORD: ADMIN.password },
      stdio: ["ignore", out, out],
    });
    let exited = false;
    child.on("exit", () => (exited = true));
    const base = `http://127.0.0.1:${p.control}`;
    try {
      await waitFor("control to answer", async () => {
        if (exited) throw new Error("bytefreezer exited");
        return (await fetch(`${base}/healthz`)).ok;
      }, 20000);
      await waitFor("the receiver to report health", async () => {
        if (exited) throw new Error("bytefreezer exited");
        return (await fetch(`http://127.0.0.1:${p.receiver}/readyz`)).ok;
      }, 20000);
      return { child, ports: p, base };
    } catch (e) {
      child.kill("SIGKILL");
      if ((!exited && attempt === 2) || ports) throw e;
      log(`bytefreezer did not start (${e.message}); trying other ports`);
    }
  }
  throw new Error("bytefreezer did not start on three sets of ports");
}

async function ingest(ports, key, tenant, dataset, events) {
  const res = await fetch(`http://127.0.0.1:${ports.receiver}/api/v1/ingest/${tenant}/${dataset}`, {
    method: "POST",
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/x-ndjson" },
    body: events.map((e) => JSON.stringify(e)).join("\n") + "\n",
  });
  assert.equal(res.status, 200, `ingest: HTTP ${res.status}: ${await res.text()}`);
}

async function stopBytefreezer(bf) {
  bf.child.kill("SIGTERM");
  await new Promise((r) => (bf.child.exitCode !== null || bf.child.signalCode !== null ? r() : bf.child.once("exit", r)));
}

// A scripted model speaking the OpenAI chat-completions API (as the C++ tests'
// fixtures/fake_llm_server.h does): a question with "broken" gets SQL that fails
// (twice: the repair attempt too), any other a count of the events. Keeps every
// request body, to check what left the system.
async function startFakeLlm() {
  const http = await import("node:http");
  const requests = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      requests.push({ url: req.url, body });
      const messages = JSON.parse(body).messages ?? [];
      const first = messages.find((m) => m.role === "user")?.content ?? "";
      const answer = first.includes("broken")
        ? { sql: "SELECT * FROM nowhere", explanation: "A table that does not exist." }
        : { sql: "SELECT count(*) AS n FROM events", explanation: "Counts every event of the dataset." };
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ choices: [{ message: { role: "assistant", content: JSON.stringify(answer) } }] }));
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return { server, requests, endpoint: `http://127.0.0.1:${server.address().port}/v1` };
}

// ---- accessibility -------------------------------------------------------------
// Every visible control has a label (a <label for>, aria-label or aria-labelledby)
// with text, every button and link a name, the page a heading and a language; and
// Tab from the top reaches the skip link first and then every control.
async function checkA11y(page, name) {
  await page.locator("body[data-ready]").waitFor();  // the page has rendered all it loads
  const problems = await page.evaluate(() => {
    const out = [];
    const visible = (el) => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
    const text = (id) => (document.getElementById(id)?.textContent ?? "").trim();
    for (const el of document.querySelectorAll("input, select, textarea")) {
      if (el.type === "hidden" || !visible(el)) continue;
      const labelled =
        [...(el.labels ?? [])].some((l) => l.textContent.trim()) ||
        (el.getAttribute("aria-label") ?? "").trim() ||
        (el.getAttribute("aria-labelledby") ?? "").split(/\s+/).some((id) => id && text(id));
      if (!labelled) out.push(`unlabelled <${el.tagName.toLowerCase()} name="${el.name}">`);
    }
    for (const el of document.querySelectorAll("button, a[href]")) {
      if (visible(el) && !(el.textContent.trim() || (el.getAttribute("aria-label") ?? "").trim()))
        out.push(`unnamed ${el.outerHTML.slice(0, 80)}`);
    }
    if (document.querySelectorAll("h1").length !== 1) out.push(`${document.querySelectorAll("h1").length} h1 elements`);
    if (!document.documentElement.lang) out.push("no lang on <html>");
    if (!document.title) out.push("no title");
    const ids = [...document.querySelectorAll("[id]")].map((e) => e.id);
    const dup = ids.filter((id, i) => ids.indexOf(id) !== i);
    if (dup.length) out.push(`duplicate ids: ${[...new Set(dup)].join(", ")}`);
    // Mark the controls Tab must reach.
    let n = 0;
    for (const el of document.querySelectorAll("a[href], button, input, select, textarea, [tabindex='0']")) {
      if (!visible(el) || el.disabled || el.getAttribute("tabindex") === "-1" || el.type === "hidden") continue;
      el.setAttribute("data-a11y", String(n++));
    }
    // Start from the top of the document (the sequential focus starting point).
    document.body.setAttribute("tabindex", "-1");
    document.body.focus();
    document.body.removeAttribute("tabindex");
    window.scrollTo(0, 0);
    return { out, n };
  });
  const reached = new Set();
  let first = null;
  for (let i = 0; i < problems.n + 5; i++) {
    await page.keyboard.press("Tab");
    const idx = await page.evaluate(() => {
      const a = document.activeElement;
      // A focused control must show it (the :focus-visible outline).
      const style = a ? getComputedStyle(a) : null;
      return a ? { idx: a.getAttribute("data-a11y"), cls: a.className, outline: style.outlineStyle } : null;
    });
    if (i === 0) first = idx;
    if (idx?.idx != null) {
      reached.add(idx.idx);
      if (idx.outline === "none") problems.out.push(`no visible focus on control ${idx.idx}`);
    }
  }
  if (first?.cls !== "skip") problems.out.push(`the first Tab goes to ${JSON.stringify(first)}, not the skip link`);
  const missed = [];
  for (let i = 0; i < problems.n; i++) if (!reached.has(String(i))) missed.push(i);
  if (missed.length) {
    const html = await page.evaluate((m) => m.map((i) => document.querySelector(`[data-a11y="${i}"]`)?.outerHTML.slice(0, 80)), missed);
    problems.out.push(`not reachable with Tab: ${html.join(" | ")}`);
  }
  assert.deepEqual(problems.out, [], `accessibility problems on ${name}`);
  log(`a11y ok: ${name} (${problems.n} controls reached by keyboard)`);
}

// A link of the main navigation.
const nav = (page, name) => page.getByRole("navigation", { name: "Main" }).getByRole("link", { name, exact: true });

async function shot(page, name) {
  await page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
}

// ---- the scenario --------------------------------------------------------------
async function main() {
  fs.mkdirSync(artifacts, { recursive: true });
  fs.writeFileSync(path.join(artifacts, "bytefreezer.log"), "");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bf-ui-e2e-"));
  const bf = await startBytefreezer(dir);
  log(`bytefreezer run: control ${bf.base}, receiver ${bf.ports.receiver}, query ${bf.ports.query}`);
  const browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: ["--no-sandbox"] });
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const consoleErrors = [];
  page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  let ok = false;
  try {
    // Login, by keyboard only; a wrong password is a clear error.
    await page.goto(bf.base + "/");
    await page.waitForURL(/\/login(\?.*)?$/);
    await page.getByRole("heading", { name: "Log in", exact: true }).waitFor();
    await checkA11y(page, "login");
    await shot(page, "01-login");
    await page.getByLabel("Email").focus();
    await page.keyboard.type(ADMIN.email);
    await page.keyboard.press("Tab");
    await page.keyboard.type("not-the-password");
    await page.keyboard.press("Enter");
    const alert = page.getByRole("alert");
    await alert.waitFor();
    assert.match(await alert.textContent(), /\S/);
    assert.equal(new URL(page.url()).pathname, "/login");
    await page.getByLabel("Password").fill(ADMIN.password);
    await page.keyboard.press("Enter");

    // First run: nothing yet, so the first-run page.
    await page.waitForURL("**/welcome");
    await page.getByText(`${ADMIN.email} (system_admin)`).waitFor();  // who is logged in
    await page.getByRole("heading", { name: "Get started", exact: true }).waitFor();
    await checkA11y(page, "welcome");
    await page.getByLabel("New account").fill("acme");
    await page.getByLabel("Tenant").fill("web");
    await page.getByLabel("Dataset").fill("bad id!");
    await page.getByRole("button", { name: "Create dataset and ingest key" }).click();
    // A bad id is refused by the API, naming the field (the account and tenant were made).
    await page.getByRole("alert").filter({ hasText: "dataset.id" }).waitFor();
    assert.equal(await page.getByLabel("Dataset").getAttribute("aria-invalid"), "true");
    await page.getByLabel("Dataset").fill("logs");
    await page.getByRole("button", { name: "Create dataset and ingest key" }).click();
    const key = (await page.getByTestId("ingest-key").textContent()).trim();
    assert.match(key, /^bfk_[0-9a-f]{16}_[0-9a-f]{64}$/);
    const curl = await page.locator("pre").first().textContent();
    assert.ok(curl.includes(key) && curl.includes("/api/v1/ingest/web/logs"), "the curl snippet names the key and the dataset");
    for (const title of ["curl", "logger (through a proxy)", "rsyslog", "syslog-ng", "Vector", "Fluent Bit"])
      await page.getByRole("heading", { name: title, exact: true }).waitFor();
    await checkA11y(page, "welcome (snippets)");
    await shot(page, "02-first-run");

    // Send events; the page sees them arrive through the receiver's health counters.
    await page.locator("[data-testid=arrivals][data-baseline]").waitFor();
    await ingest(bf.ports, key, "web", "logs", [1, 2, 3, 4, 5].map((i) => ({ message: `before-${i}`, n: i })));
    await page.getByTestId("arrivals").filter({ hasText: /[5-9] events arrived|\d\d+ events arrived/ }).waitFor({ timeout: 15000 });
    log("first-run page saw the events arrive");
    await shot(page, "03-first-events");

    // Overview: components with their counters and the history charts.
    await nav(page, "Overview").click();
    await page.getByRole("heading", { name: "Overview", exact: true }).waitFor();
    await waitFor("the receiver's total on the overview", async () => {
      const cells = await page.locator("[data-testid^=total-receiver-]").allTextContents();
      return cells.some((t) => Number(t) >= 5);
    });
    await waitFor("four charts", async () => (await page.locator("figure.chart canvas").count()) >= 4);
    await checkA11y(page, "overview");
    await shot(page, "04-overview");

    // Accounts → tenant: pause and resume the dataset.
    await nav(page, "Accounts").click();
    await page.getByRole("link", { name: "acme", exact: true }).click();
    await page.getByRole("heading", { name: "Account acme", exact: true }).waitFor();
    await checkA11y(page, "account");
    await page.getByRole("link", { name: "web", exact: true }).click();
    await page.getByRole("heading", { name: "Tenant acme/web", exact: true }).waitFor();
    await page.getByRole("button", { name: "Pause dataset logs" }).click();
    await page.getByRole("cell", { name: "paused" }).waitFor();
    await page.getByRole("button", { name: "Resume dataset logs" }).click();
    await page.getByRole("cell", { name: "active" }).waitFor();
    await checkA11y(page, "tenant");

    // Dataset: a pipeline step from the plugins' forms; a bad one is refused.
    await page.getByRole("link", { name: "logs", exact: true }).click();
    await page.getByRole("heading", { name: "Dataset acme/web/logs", exact: true }).waitFor();
    await checkA11y(page, "dataset");
    const settings = page.getByLabel("Settings (JSON)");
    const settingsForm = page.getByRole("form", { name: "Dataset settings" });
    const preview = page.getByRole("region", { name: "Live preview" });
    const previewOut = page.getByTestId("preview-output");
    await settings.fill(JSON.stringify({ pipeline: [{ nope: {} }] }));
    // The live preview says at once that the pipeline does not compile ...
    await preview.getByRole("alert").filter({ hasText: "The pipeline does not compile" }).waitFor();
    // ... and saving it is refused, naming the field.
    await page.getByRole("button", { name: "Save dataset" }).click();
    await settingsForm.getByRole("alert").filter({ hasText: "dataset.settings.pipeline" }).waitFor();
    assert.equal(await settings.getAttribute("aria-invalid"), "true");
    await settings.fill(JSON.stringify({ pipeline: [] }));
    assert.equal(await settings.getAttribute("aria-invalid"), null, "an edit clears the last save's error");
    assert.equal(await settingsForm.getByRole("alert").count(), 0);
    // Sample events: the preview passes them through unchanged while there is no step;
    // a line that is not JSON is named and the others still go through.
    await page.getByLabel("Sample events (NDJSON)").fill('{"message": "sample-1"}\nnot json\n{"message": "sample-2", "env": "old"}');
    await preview.getByRole("alert").filter({ hasText: "line 2: not JSON" }).waitFor();
    await preview.getByTestId("preview-summary").filter({ hasText: "2 events in, 2 out, 0 dropped" }).waitFor();
    assert.equal(await previewOut.textContent(), '{"message":"sample-1"}\n{"message":"sample-2","env":"old"}');
    await page.getByLabel("Sample events (NDJSON)").fill('{"message": "sample-1"}\n{"message": "sample-2", "env": "old"}');
    // A step from the plugins' forms (built from its declared options, GET
    // /api/v1/plugins): the preview shows it before anything is saved.
    await page.getByLabel("Add to Pipeline: kind").selectOption("add");
    const stepForm = page.getByRole("form", { name: "Add to Pipeline" });
    assert.equal(await stepForm.getByLabel("overwrite").isChecked(), true);  // the declared default
    await stepForm.getByLabel("field (required)").fill("env");
    await stepForm.getByLabel("value (JSON)").fill('"ui-v1"');
    await stepForm.getByLabel("if", { exact: true }).fill('starts_with(message, "sample")');
    // value and expr both: the schema's oneOf (exactly one of them) refuses it, naming both.
    await stepForm.getByLabel("expr", { exact: true }).fill("message");
    await page.getByRole("button", { name: "Add", exact: true }).nth(1).click();
    await stepForm.getByRole("alert").filter({ hasText: "Give exactly one of 'value' or 'expr' ('value' and 'expr' are set)" }).waitFor();
    await stepForm.getByLabel("expr", { exact: true }).fill("");
    await page.getByRole("button", { name: "Add", exact: true }).nth(1).click();
    await page.getByText("Added; save the dataset to apply it.").waitFor();
    await waitFor("the preview to carry the added step", async () => (await previewOut.textContent()).includes('{"message":"sample-1","env":"ui-v1"}'));
    const trace = await page.getByTestId("preview-trace").locator("tbody tr").evaluateAll((trs) => trs.map((tr) => [...tr.cells].map((td) => td.textContent)));
    // The step adds env to the first event and overwrites the second's.
    assert.deepEqual(trace, [
      ["1", "1", "add", "changed", "env", "", "", ""],
      ["2", "1", "add", "changed", "", "", "env", ""],
    ]);
    await checkA11y(page, "dataset (live preview)");
    await shot(page, "05-pipeline-preview");
    // Editing the JSON: the preview follows, and the step list with it.
    await settings.fill(JSON.stringify({ sources: [], pipeline: [{ add: { field: "env", value: "ui-v2" } }] }));
    await waitFor("the preview to follow the JSON", async () => (await previewOut.textContent()).includes('{"message":"sample-1","env":"ui-v2"}'));
    await page.getByRole("region", { name: "Pipeline", exact: true }).getByText('{"field":"env","value":"ui-v2"}').waitFor();
    assert.equal(await preview.getByRole("alert").count(), 0, "no error left once the pipeline and samples are good");
    await page.getByRole("button", { name: "Save dataset" }).click();
    await page.getByText(/^Saved at/).waitFor();
    const saved = await page.evaluate(async () => (await fetch("/api/v1/accounts/acme/tenants/web/datasets/logs")).json());
    assert.deepEqual(saved.settings.pipeline, [{ add: { field: "env", value: "ui-v2" } }]);
    // The samples are kept for this dataset.
    await page.reload();
    await page.getByRole("heading", { name: "Dataset acme/web/logs", exact: true }).waitFor();
    assert.equal(await page.getByLabel("Sample events (NDJSON)").inputValue(), '{"message": "sample-1"}\n{"message": "sample-2", "env": "old"}');
    await waitFor("the preview of the saved pipeline", async () => (await previewOut.textContent()).includes('"env":"ui-v2"'));
    // Typing previews once the typing pauses, not at every key.
    const typed = '\n{"message": "typed by keyboard"}';
    let previews = 0;
    const countPreviews = (r) => r.url().endsWith("/api/v1/pipelines/preview") && previews++;
    page.on("request", countPreviews);
    await page.getByLabel("Sample events (NDJSON)").focus();
    await page.keyboard.press("Control+End");
    await page.keyboard.type(typed);
    await page.getByTestId("preview-summary").filter({ hasText: "3 events in, 3 out" }).waitFor();
    page.off("request", countPreviews);
    assert.ok(previews >= 1 && previews <= 5, `${previews} previews for ${typed.length} keys typed`);
    log(`${previews} preview request(s) for ${typed.length} keys typed`);
    assert.ok((await previewOut.textContent()).includes('{"message":"typed by keyboard","env":"ui-v2"}'));
    await shot(page, "05-dataset");

    // API keys: a query key, shown once.
    await nav(page, "API keys").click();
    await page.getByRole("heading", { name: "API keys", exact: true }).waitFor();
    await page.getByLabel("Role").selectOption("query");
    await page.getByLabel("Account").fill("acme");
    await page.getByLabel("Tenant").fill("web");
    await page.getByLabel("Name").fill("console");
    await page.getByRole("button", { name: "Create key" }).click();
    const queryKey = (await page.getByTestId("new-key").textContent()).trim();
    assert.match(queryKey, /^bfk_/);
    await page.getByRole("cell", { name: "console", exact: true }).waitFor();
    await checkA11y(page, "keys");
    await shot(page, "06-keys");
    await page.reload();
    await page.getByRole("cell", { name: "console", exact: true }).waitFor();
    assert.equal(await page.getByTestId("new-key").count(), 0, "a key is shown once");
    assert.equal((await page.content()).includes(queryKey.split("_")[2]), false, "the secret is not on the page again");

    // Users.
    await nav(page, "Users").click();
    await page.getByRole("heading", { name: "Users", exact: true }).waitFor();
    await page.getByLabel("Email").fill("viewer@example.com");
    await page.getByLabel("Role").selectOption("account_viewer");
    await page.getByLabel("Account").fill("acme");
    await page.getByLabel("Password").fill("another-long-password");
    await page.getByRole("button", { name: "Create user" }).click();
    await page.getByText("User viewer@example.com created.").waitFor();
    await page.getByRole("cell", { name: "viewer@example.com", exact: true }).waitFor();
    await checkA11y(page, "users");

    // Audit log: the changes made above, newest first.
    await nav(page, "Audit log").click();
    await page.getByRole("heading", { name: "Audit log", exact: true }).waitFor();
    for (const action of ["dataset.create", "dataset.update", "key.create", "user.create", "tenant.create"])
      await page.getByRole("cell", { name: action, exact: true }).first().waitFor();
    await checkA11y(page, "audit");
    await shot(page, "07-audit");

    // The next events carry the pipeline change, with no restart (the catalog
    // reached the piper while the pages above were used).
    await ingest(bf.ports, key, "web", "logs", [{ message: "after-change" }]);

    // Query console: the rows, the pipeline change on the later event, CSV.
    await page.goto(`${bf.base}/query?dataset=web/logs`);
    await page.getByRole("heading", { name: "Query", exact: true }).waitFor();
    await page.getByLabel("Query server URL").fill(`http://127.0.0.1:${bf.ports.query}`);
    await page.getByLabel("Query key").fill(queryKey);
    await page.getByLabel("SQL").fill("SELECT message, env FROM events ORDER BY message");
    await checkA11y(page, "query");
    await waitFor("all six events to be queryable", async () => {
      await page.getByRole("button", { name: "Run query" }).click();
      await page.locator("[data-testid=result-summary], .status [role=alert]").first().waitFor();
      const summary = await page.getByTestId("result-summary").textContent().catch(() => "");
      return /^6 rows/.test(summary);
    }, 40000, 1000);
    const rows = await page.locator("table.result tbody tr").evaluateAll((trs) => trs.map((tr) => [...tr.cells].map((td) => td.textContent)));
    assert.deepEqual(rows, [
      ["after-change", "ui-v2"],
      ["before-1", ""],
      ["before-2", ""],
      ["before-3", ""],
      ["before-4", ""],
      ["before-5", ""],
    ]);
    await shot(page, "08-query");
    const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("link", { name: "Download CSV" }).click()]);
    const csv = fs.readFileSync(await download.path(), "utf8");
    assert.equal(csv.split("\r\n")[0], "message,env");
    assert.ok(csv.includes("after-change,ui-v2\r\n"));
    // A bad query is a clear error, not a blank page.
    await page.getByLabel("SQL").fill("SELECT * FROM nowhere");
    await page.getByRole("button", { name: "Run query" }).click();
    await page.getByRole("alert").waitFor();
    // Without an AI provider there is no question tab.
    await page.locator("form[data-ask=off]").waitFor();
    assert.equal(await page.getByRole("tab").count(), 0, "no tabs without an AI provider");
    log("query console ok");

    // Schema and files of the dataset, from the query server with the key the query
    // page keeps in the tab.
    await page.goto(`${bf.base}/accounts/acme/tenants/web/datasets/logs`);
    await page.getByRole("link", { name: "Schema and files" }).click();
    await page.getByRole("heading", { name: "Schema and files of acme/web/logs", exact: true }).waitFor();
    await page.getByTestId("parts-summary").filter({ hasText: /^2 files, 6 rows, \d/ }).waitFor();
    const files = await page.getByRole("table", { name: "Files" }).locator("tbody tr").evaluateAll((trs) => trs.map((tr) => [...tr.cells].map((td) => td.textContent)));
    assert.equal(files.length, 2);
    assert.deepEqual(files.map((f) => f[2]).sort(), ["1", "5"]);
    for (const f of files) assert.match(f[0], /^year=\d{4}\/month=\d\d\/day=\d\d\/hour=\d\d\/part-[0-9A-Z]{26}\.parquet$/);
    const hours = await page.getByRole("table", { name: /^Partitions/ }).locator("tbody tr").count();
    assert.ok(hours >= 1 && hours <= 2, `partitions: ${hours}`);
    const columns = await page.getByRole("table", { name: "Columns" }).locator("tbody tr").evaluateAll((trs) => Object.fromEntries(trs.map((tr) => [tr.cells[0].textContent, tr.cells[1].textContent])));
    assert.equal(columns.message, "VARCHAR");
    assert.equal(columns.env, "VARCHAR");
    assert.equal(columns._time, "TIMESTAMP");
    // The history: env came with the pipeline change, in a later version than message.
    const history = await page.getByRole("table", { name: "History (newest first)" }).locator("tbody tr").evaluateAll((trs) => trs.map((tr) => [tr.cells[0].textContent, tr.cells[3].textContent]));
    assert.ok(history.length >= 2, JSON.stringify(history));
    assert.match(history[0][1], /added env VARCHAR/);
    assert.match(history[history.length - 1][1], /added message VARCHAR/);
    await checkA11y(page, "schema and files");
    await shot(page, "10-schema-and-files");
    // A wrong key is a clear error on the key field.
    await page.getByLabel("Query key").fill("bfk_0000000000000000_" + "0".repeat(64));
    await page.getByRole("button", { name: "Load schema and files" }).click();
    await page.getByRole("alert").waitFor();
    assert.equal(await page.getByLabel("Query key").getAttribute("aria-invalid"), "true");
    // A key of another tenant would read that tenant's dataset of the same id: refused,
    // never shown as this one.
    const otherKey = await page.evaluate(async () => {
      const post = (p, b) => fetch("/api/v1" + p, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(b) }).then((r) => r.json());
      await post("/accounts/acme/tenants", { id: "other" });
      await post("/accounts/acme/tenants/other/datasets", { id: "logs" });
      return (await post("/keys", { role: "query", account: "acme", tenant: "other", name: "other-tenant" })).key;
    });
    await page.getByLabel("Query key").fill(otherKey);
    await waitFor("the other tenant's key to be refused", async () => {
      await page.getByRole("button", { name: "Load schema and files" }).click();
      await page.getByRole("alert").waitFor();
      return /This query key is for acme\/other, not tenant acme\/web/.test(await page.getByRole("alert").textContent());
    }, 10000, 300);
    assert.equal(await page.getByRole("table", { name: "Files" }).count(), 0, "nothing of the other tenant is shown");
    await page.getByLabel("Query key").fill(queryKey);
    await page.getByLabel("Query key").dispatchEvent("change");
    log("schema and files ok");

    // Connectors: created from the sink's schema form, refused with a clear error when a
    // secret is typed where a variable name belongs or the SQL reads a file; paused, edited.
    await page.goto(`${bf.base}/connectors`);
    await page.getByRole("heading", { name: "Connectors", exact: true }).waitFor();
    await page.getByLabel("Tenant").selectOption("acme/web");
    await page.getByLabel("Connector id").fill("errors-to-hook");
    await page.getByLabel("Name", { exact: true }).fill("Errors to the hook");
    await page.getByLabel("Query (SQL)").fill("SELECT _time, message FROM logs");
    await page.getByLabel("Sink", { exact: true }).selectOption("webhook");
    await page.getByLabel("url (required)").fill("https://hooks.example.com/in");
    await page.getByLabel("auth_env").fill("s3cr3t token");
    await checkA11y(page, "connectors");
    await page.getByRole("button", { name: "Create connector" }).click();
    await page.getByRole("alert").filter({ hasText: "environment variable" }).waitFor();
    await page.getByLabel("auth_env").fill("HOOK_TOKEN");
    await page.getByLabel("Query (SQL)").fill("SELECT * FROM read_csv('/etc/passwd')");
    await page.getByRole("button", { name: "Create connector" }).click();
    await page.getByRole("alert").filter({ hasText: "read_csv" }).waitFor();
    assert.equal(await page.getByLabel("Query (SQL)").getAttribute("aria-invalid"), "true");
    await page.getByLabel("Query (SQL)").fill("SELECT _time, message FROM logs");
    await page.getByRole("button", { name: "Create connector" }).click();
    await page.getByText("Connector acme/web/errors-to-hook created.").waitFor();
    const connectorRow = page.getByRole("table", { name: "Connectors" }).locator("tbody tr").filter({ hasText: "errors-to-hook" });
    await connectorRow.filter({ hasText: "active" }).waitFor();
    await page.getByRole("button", { name: "Pause connector errors-to-hook" }).click();
    await connectorRow.filter({ hasText: "paused" }).waitFor();
    await shot(page, "12-connectors");
    await page.getByRole("link", { name: "errors-to-hook" }).click();
    await page.getByRole("heading", { name: "Connector acme/web/errors-to-hook", exact: true }).waitFor();
    assert.equal(await page.getByLabel("url (required)").inputValue(), "https://hooks.example.com/in");
    await page.getByLabel("Schedule").fill("5m");
    await checkA11y(page, "connector (edit)");
    await page.getByRole("button", { name: "Save connector" }).click();
    await page.getByText("Saved.").waitFor();
    const stored = await page.evaluate(async () => (await fetch("/api/v1/accounts/acme/tenants/web/connectors/errors-to-hook")).json());
    assert.equal(stored.schedule, "5m");
    assert.equal(stored.paused, true);
    assert.equal(stored.settings.auth_env, "HOOK_TOKEN");
    assert.equal(stored.query, "SELECT _time, message FROM logs");
    log("connectors ok");

    // The source form from a schema fixture (the shape of `plugins --schema`).
    const fixture = JSON.parse(fs.readFileSync(path.join(here, "plugins_fixture.json"), "utf8"));
    const formPage = await context.newPage();
    formPage.on("pageerror", (e) => consoleErrors.push(String(e)));
    await formPage.route("**/api/v1/plugins", (route) => route.fulfill({ json: fixture }));
    await formPage.goto(`${bf.base}/accounts/acme/tenants/web/datasets/logs`);
    await formPage.getByLabel("Add to Sources: kind").selectOption("syslog_udp");
    const fp = formPage;
    assert.deepEqual(await fp.getByLabel("format").locator("option").allTextContents(), ["(default: auto)", "auto", "rfc3164", "rfc5424"]);
    const size = fp.getByLabel("max_message_bytes");
    assert.equal(await size.getAttribute("type"), "number");
    assert.equal(await size.getAttribute("min"), "64");
    assert.equal(await size.getAttribute("max"), "65535");
    assert.equal(await size.getAttribute("placeholder"), "8192");
    assert.equal(await fp.getByLabel("keep_raw").isChecked(), true);
    assert.match(await fp.getByLabel("listen (required)").getAttribute("aria-describedby").then((id) => fp.locator(`#${id}`).textContent()), /host:port to bind\. Default: "0\.0\.0\.0:514"/);
    await fp.getByLabel("listen (required)").fill("127.0.0.1:5514");
    await fp.getByLabel("tenant (required)").fill("web");
    await fp.getByLabel("dataset (required)").fill("logs");
    await size.fill("10");
    await fp.getByRole("button", { name: "Add", exact: true }).first().click();
    await fp.getByRole("alert").filter({ hasText: "max_message_bytes: must be at least 64" }).waitFor();
    assert.equal(await size.getAttribute("aria-invalid"), "true");
    await checkA11y(fp, "dataset (schema form)");
    await size.fill("1500");
    await fp.getByLabel("format").selectOption("rfc5424");
    await fp.getByLabel("allowed_peers").fill("10.0.0.0/8\n192.168.0.0/16");
    await fp.getByRole("button", { name: "Add", exact: true }).first().click();
    await fp.getByText("Added; save the dataset to apply it.").first().waitFor();
    const edited = JSON.parse(await fp.getByLabel("Settings (JSON)").inputValue());
    assert.deepEqual(edited.sources, [
      { type: "syslog_udp", listen: "127.0.0.1:5514", tenant: "web", dataset: "logs", format: "rfc5424", max_message_bytes: 1500, allowed_peers: ["10.0.0.0/8", "192.168.0.0/16"] },
    ]);
    await shot(fp, "09-schema-form");
    await fp.close();

    // Questions in plain language: the account's AI provider lives in the local file
    // (docs/ask.md), so bytefreezer restarts with one (a scripted model on loopback).
    const llm = await startFakeLlm();
    try {
      await stopBytefreezer(bf);
      Object.assign(bf, await startBytefreezer(dir, {
        ports: bf.ports,
        extra: `accounts:\n  - id: acme\n    ai: {provider: openai, endpoint: "${llm.endpoint}", model: fake-sql-model}\n`,
      }));
      await page.goto(`${bf.base}/query?dataset=web/logs`);
      await page.locator("form[data-ask=on]").waitFor();
      const askTab = page.getByRole("tab", { name: "Ask in plain language" });
      assert.equal(await askTab.getAttribute("aria-selected"), "false");
      // The tabs follow the arrow keys.
      await page.getByRole("tab", { name: "SQL" }).focus();
      await page.keyboard.press("ArrowRight");
      assert.equal(await askTab.getAttribute("aria-selected"), "true");
      await page.getByText("Answered by fake-sql-model (openai).").waitFor();
      await checkA11y(page, "query (question tab)");
      await page.getByLabel("Question").fill("how many events are there?");
      await page.getByRole("button", { name: "Ask", exact: true }).click();
      await page.getByTestId("ask-sql").filter({ hasText: "SELECT count(*) AS n FROM events" }).waitFor();
      assert.equal(await page.getByTestId("ask-explanation").textContent(), "Counts every event of the dataset.");
      await page.getByTestId("result-summary").filter({ hasText: /^1 row/ }).waitFor();
      assert.deepEqual(await page.locator("table.result tbody tr td").allTextContents(), ["6"]);
      await shot(page, "11-ask");
      // What went to the model: the question and the columns, no event value.
      const prompt = llm.requests.map((r) => r.body).join("\n");
      assert.ok(prompt.includes("how many events are there?") && prompt.includes("message"));
      for (const value of ["before-1", "after-change", "ui-v2"]) assert.ok(!prompt.includes(value), `the prompt holds the event value ${value}`);
      // SQL that fails twice is a clear error listing both attempts.
      await page.getByLabel("Question").fill("something broken");
      await page.getByRole("button", { name: "Ask", exact: true }).click();
      await page.getByRole("alert").filter({ hasText: "refused twice" }).waitFor();
      assert.equal(await page.getByRole("list", { name: "The model's attempts" }).getByRole("listitem").count(), 2);
      assert.equal(await page.getByLabel("Question").getAttribute("aria-invalid"), "true");
      // The answer's SQL can be taken to the SQL tab.
      await page.getByLabel("Question").fill("how many events are there?");
      await page.getByRole("button", { name: "Ask", exact: true }).click();
      await page.getByRole("button", { name: "Edit this SQL in the SQL tab" }).click();
      assert.equal(await page.locator("textarea[name=sql]").inputValue(), "SELECT count(*) AS n FROM events");
      assert.equal(await page.getByRole("tab", { name: "SQL" }).getAttribute("aria-selected"), "true");
      log("question tab ok");
    } finally {
      llm.server.close();
    }

    // Log out: the session is gone.
    await page.getByRole("button", { name: "Log out" }).click();
    await page.waitForURL(/\/login(\?.*)?$/);
    assert.equal(await page.evaluate(async () => (await fetch("/api/v1/auth/me")).status), 401);
    // 4xx answers the test provoked on purpose (wrong password, bad SQL, the twice-refused question) show as resource errors.
    assert.deepEqual(consoleErrors.filter((e) => !/status of (40[0-9]|422)/.test(e)), [], "no script errors in the browser");
    ok = true;
  } catch (e) {
    await shot(page, "failure").catch(() => {});
    console.error(e);
    console.error("bytefreezer log tail:\n" + fs.readFileSync(path.join(artifacts, "bytefreezer.log"), "utf8").split("\n").slice(-30).join("\n"));
    if (consoleErrors.length) console.error("browser console errors:\n" + consoleErrors.join("\n"));
  } finally {
    await browser.close();
    await stopBytefreezer(bf);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  log(ok ? `ui e2e passed; screenshots in ${artifacts}` : "ui e2e FAILED");
  process.exit(ok ? 0 : 1);
}

await main();
