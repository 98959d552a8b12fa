// First run: create a tenant and a dataset with an ingest key, show how to send data,
// then watch the first events arrive (the receiver's health counters).
import { api, ApiError, ApiKey, enc, HealthComponent, listAll } from "../api";
import { append, clear, copyButton, field, h, input, select, statusArea } from "../dom";
import { onSubmit, str } from "../forms";
import type { Ctx } from "../main";
import { onLeave } from "../main";

interface Target {
  account: string;
  tenant: string;
  dataset: string;
  key: string;
}

export async function welcomePage(ctx: Ctx) {
  document.title = "Get started — ByteFreezer";
  const { main, me } = ctx;
  main.appendChild(h("h1", {}, "Get started"));
  main.appendChild(h("p", {}, "Create a tenant and a dataset, get an ingest key, and send your first events."));
  const accounts = await listAll<{ id: string }>("/accounts");
  const status = statusArea();
  const accountControl =
    accounts.length > 0
      ? select("account", accounts.map((a) => a.id), { "data-field": "tenant.account" })
      : input("account", { required: true, value: "main", "data-field": "account.id", pattern: "[a-z0-9][a-z0-9_\\-]{0,62}" });
  const idHint = "Lowercase letters, digits, - and _ (up to 63).";
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "step1" },
    h("h2", { id: "step1" }, "1. Where the data goes"),
    field(accounts.length > 0 ? "Account" : "New account", accountControl),
    field("Tenant", input("tenant", { required: true, value: "default", "data-field": "tenant.id" }), idHint + " An existing tenant is reused."),
    field("Dataset", input("dataset", { required: true, value: "", "data-field": "dataset.id" }), idHint),
    status,
    h("button", { type: "submit" }, "Create dataset and ingest key"),
  );
  main.appendChild(form);
  const result = h("div", {});
  main.appendChild(result);
  onSubmit(form, status, async (data) => {
    const account = str(data, "account"), tenant = str(data, "tenant"), dataset = str(data, "dataset");
    // An account or tenant that exists already (a second try) is used as it is.
    const existing = (e: unknown) => {
      if (!(e instanceof ApiError) || e.status !== 409) throw e;
    };
    if (!accounts.some((a) => a.id === account)) await api("POST", "/accounts", { id: account }).catch(existing);
    await api("POST", `/accounts/${enc(account)}/tenants`, { id: tenant }).catch(existing);
    await api("POST", `/accounts/${enc(account)}/tenants/${enc(tenant)}/datasets`, { id: dataset });
    const key = await api<ApiKey>("POST", "/keys", {
      role: "ingest",
      account,
      tenant,
      dataset,
      name: `first run: ${tenant}/${dataset}`,
    });
    form.querySelectorAll("input, select, button").forEach((el) => el.setAttribute("disabled", ""));
    showSnippets(result, { account, tenant, dataset, key: key.key! });
  });
  if (me.role === "account_viewer") status.appendChild(h("p", { class: "hint" }, "Your role can read but not create: ask an account admin."));
}

function showSnippets(root: HTMLElement, t: Target) {
  clear(root);
  const receiver = input("receiver_url", { value: `${location.protocol}//${location.hostname}:8080`, type: "url" });
  const proxy = input("proxy_address", { value: `${location.hostname}:5514` });
  const snippets = h("div", {});
  const keyBox = h("code", { class: "secret", "data-testid": "ingest-key" }, t.key);
  append(
    root,
    h(
      "section",
      { class: "card", "aria-labelledby": "step2" },
      h("h2", { id: "step2" }, "2. Your ingest key"),
      h("p", {}, h("strong", {}, "Shown once: "), "copy it now; control keeps only its hash."),
      h("p", {}, keyBox, " ", copyButton(() => t.key, "Copy key")),
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "step3" },
      h("h2", { id: "step3" }, "3. Send data"),
      field("Receiver URL", receiver, "The receiver's ingest endpoint as your senders reach it."),
      field("Proxy address (syslog)", proxy, "host:port of a bytefreezer proxy with a syslog_tcp source for this dataset."),
      snippets,
    ),
  );
  const render = () => {
    clear(snippets);
    for (const [title, text] of snippetTexts(t, receiver.value.replace(/\/+$/, ""), proxy.value)) {
      const id = "snip-" + title.toLowerCase().replace(/[^a-z]+/g, "-");
      snippets.appendChild(
        h("div", { class: "snippet" }, h("h3", { id }, title), h("pre", { "aria-labelledby": id, tabindex: "0" }, text), copyButton(() => text)),
      );
    }
  };
  receiver.addEventListener("input", render);
  proxy.addEventListener("input", render);
  render();
  root.appendChild(arrivals(t));
}

function snippetTexts(t: Target, url: string, proxy: string): [string, string][] {
  const ingest = `${url}/api/v1/ingest/${t.tenant}/${t.dataset}`;
  const u = new URL(url.includes("://") ? url : "http://" + url);
  const [proxyHost, proxyPort = "5514"] = proxy.split(":");
  return [
    [
      "curl",
      `curl -X POST '${ingest}' \\\n  -H 'Authorization: Bearer ${t.key}' \\\n  -H 'Content-Type: application/x-ndjson' \\\n  --data-binary $'{"message":"hello from curl"}\\n{"message":"second event"}\\n'`,
    ],
    [
      "logger (through a proxy)",
      `# proxy.yaml — run: bytefreezer proxy --config proxy.yaml\nproxy:\n  receiver:\n    url: ${url}\n    ingest_key: ${t.key}\n  spool:\n    dir: ./data/proxy-spool\n  sources:\n    - type: syslog_tcp\n      listen: 0.0.0.0:${proxyPort}\n      tenant: ${t.tenant}\n      dataset: ${t.dataset}\n\n# then:\nlogger --tcp -n ${proxyHost} -P ${proxyPort} "hello from logger"`,
    ],
    [
      "rsyslog",
      `# /etc/rsyslog.d/90-bytefreezer.conf (to the proxy above)\n*.* action(type="omfwd" target="${proxyHost}" port="${proxyPort}" protocol="tcp"\n           template="RSYSLOG_SyslogProtocol23Format"\n           queue.type="LinkedList" action.resumeRetryCount="-1")`,
    ],
    [
      "syslog-ng",
      `# /etc/syslog-ng/conf.d/bytefreezer.conf (to the proxy above)\ndestination d_bytefreezer { syslog("${proxyHost}" transport("tcp") port(${proxyPort})); };\nlog { source(s_src); destination(d_bytefreezer); };`,
    ],
    [
      "Vector",
      `# vector.toml: straight to the receiver\n[sinks.bytefreezer]\ntype = "http"\ninputs = ["your_source"]\nuri = "${ingest}"\nmethod = "post"\nencoding.codec = "json"\nframing.method = "newline_delimited"\nauth.strategy = "bearer"\nauth.token = "${t.key}"\nrequest.headers.Content-Type = "application/x-ndjson"`,
    ],
    [
      "Fluent Bit",
      `# fluent-bit.conf: straight to the receiver\n[OUTPUT]\n    Name    http\n    Match   *\n    Host    ${u.hostname}\n    Port    ${u.port || (u.protocol === "https:" ? "443" : "80")}\n    URI     /api/v1/ingest/${t.tenant}/${t.dataset}\n    Format  json_lines\n    Header  Authorization Bearer ${t.key}\n    Header  Content-Type application/x-ndjson${u.protocol === "https:" ? "\n    tls     On" : ""}`,
    ],
  ];
}

// The receivers' event counters, from control's health reports: the difference
// since this page opened is what arrived (from every sender, this one included).
function arrivals(t: Target) {
  const out = h("p", { "data-testid": "arrivals" }, "Waiting for the first events…");
  const section = h(
    "section",
    { class: "card", "aria-labelledby": "step4", "aria-live": "polite" },
    h("h2", { id: "step4" }, "4. First events"),
    out,
    h(
      "p",
      {},
      "Then look at them: ",
      h("a", { href: `/query?dataset=${enc(t.account)}/${enc(t.tenant)}/${enc(t.dataset)}` }, "query this dataset"),
      " or open the ",
      h("a", { href: "/overview" }, "overview"),
      ".",
    ),
  );
  let baseline: number | null = null;
  const poll = async () => {
    try {
      const { items } = await api<{ items: HealthComponent[] }>("GET", "/health");
      const receivers = items.filter((c) => c.service === "receiver");
      if (!receivers.length) {
        out.textContent = "No receiver has reported to control yet; events will show here once one does.";
        return;
      }
      const total = receivers.reduce((n, c) => n + (c.events_total ?? 0), 0);
      if (baseline === null) {
        baseline = total;
        out.dataset.baseline = String(total);  // counting from here (tests wait for it)
      }
      const arrived = total - baseline;
      out.textContent =
        arrived > 0
          ? `${arrived} event${arrived === 1 ? "" : "s"} arrived since this page opened (receivers: ${receivers.map((r) => r.id).join(", ")}).`
          : "Waiting for the first events…";
      if (arrived > 0) out.classList.add("ok");
    } catch (e) {
      out.textContent = `Cannot read health: ${(e as Error).message}`;
    }
  };
  void poll();
  const timer = setInterval(poll, 2000);
  onLeave(() => clearInterval(timer));
  return section;
}
