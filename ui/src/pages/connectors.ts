// Connectors (docs/connectors.md): a tenant's exports to Elasticsearch, Splunk HEC
// and webhooks. The list spans every tenant the caller can see; the sink's settings
// form comes from the sinks' option schemas (GET /api/v1/plugins, "sinks"), so a new
// sink gets its form without UI code. Credentials are never typed here: settings name
// the environment variables that hold them on the connector's host.
import { Account, api, Connector, enc, listAll, Tenant } from "../api";
import { clear, field, h, input, select, statusArea, table } from "../dom";
import { onSubmit, showError, showOk, str } from "../forms";
import type { Ctx } from "../main";
import { navigate } from "../main";
import { schemaForm } from "../schema_form";
import { crumbs, plugins } from "./catalog";

const idAttrs = { required: true, pattern: "[a-z0-9][a-z0-9_\\-]{0,62}", autocomplete: "off" };

function basePath(account: string, tenant: string) {
  return `/accounts/${enc(account)}/tenants/${enc(tenant)}/connectors`;
}

async function allTenants(): Promise<Tenant[]> {
  const out: Tenant[] = [];
  for (const a of await listAll<Account>("/accounts")) out.push(...(await listAll<Tenant>(`/accounts/${enc(a.id)}/tenants`)));
  return out;
}

// The fields every connector has, and the sink's settings form below its select.
// `existing`: editing (id and tenant fixed).
async function connectorForm(title: string, tenants: Tenant[], existing: Connector | null, status: HTMLElement) {
  const sinks = (await plugins()).sinks ?? {};
  const formId = "form-" + title.toLowerCase().replace(/[^a-z]+/g, "-");
  const form = h("form", { class: "card", "aria-labelledby": formId, novalidate: true }, h("h2", { id: formId }, title));
  if (!existing) {
    form.appendChild(
      field("Tenant", select("tenant", tenants.map((t) => [`${t.account}/${t.id}`, `${t.account}/${t.id}`] as [string, string]), { "data-field": "connector.tenant" })),
    );
    form.appendChild(field("Connector id", input("id", { ...idAttrs, "data-field": "connector.id" }), "Lowercase letters, digits, - and _; cannot be changed later."));
  }
  form.appendChild(field("Name", input("name", { value: existing?.name ?? "", "data-field": "connector.name" })));
  const query = h("textarea", { name: "query", rows: "4", spellcheck: "false", required: true, "data-field": "connector.query" });
  query.value = existing?.query ?? "";
  form.appendChild(field("Query (SQL)", query, "One SELECT over the tenant's datasets, each by its id as a table, e.g. SELECT _time, message FROM syslog WHERE severity <= 3."));
  form.appendChild(field("Schedule", input("schedule", { value: existing?.schedule ?? "", placeholder: "1m", "data-field": "connector.schedule" }), "How often it runs: 10s to 7d. Default 1m."));
  const paused = h("input", { type: "checkbox", name: "paused", id: `${formId}-paused` });
  paused.checked = existing?.paused ?? false;
  form.appendChild(h("div", { class: "field checkbox" }, paused, h("label", { for: paused.id }, "Paused")));
  const sinkSel = select("sink", [["", "Choose…"], ...Object.keys(sinks).sort().map((k) => [k, k] as [string, string])], { "data-field": "connector.sink", required: true });
  form.appendChild(field("Sink", sinkSel, "Where the rows go. Credentials: name the environment variable that holds them on the connector's host."));
  const settingsHolder = h("div", { "data-field": "connector.settings" });
  form.appendChild(settingsHolder);
  let settings: ReturnType<typeof schemaForm> | null = null;
  const showSink = (initial: Record<string, unknown>) => {
    clear(settingsHolder);
    settings = sinkSel.value && sinks[sinkSel.value] ? schemaForm(`${sinkSel.value} settings`, sinks[sinkSel.value], initial) : null;
    if (settings) settingsHolder.appendChild(settings.el);
  };
  sinkSel.addEventListener("change", () => showSink(existing && sinkSel.value === existing.sink ? existing.settings : {}));
  form.addEventListener("reset", () => {
    clear(settingsHolder);
    settings = null;
  });
  if (existing) {
    sinkSel.value = existing.sink;
    showSink(existing.settings);
  }
  form.appendChild(status);
  form.appendChild(h("button", { type: "submit" }, existing ? "Save connector" : "Create connector"));
  // The body the API takes (settings from the schema form: a FormValueError names its field).
  const body = (d: FormData) => {
    if (!settings) throw Object.assign(new Error("Choose a sink first"), { field: "connector.sink" });
    const out: Record<string, unknown> = { name: str(d, "name"), sink: sinkSel.value, query: query.value.trim(), settings: settings.value(), paused: paused.checked };
    if (str(d, "schedule")) out.schedule = str(d, "schedule");
    return out;
  };
  return { form, body };
}

function pauseButton(c: Connector, after: () => void, status: HTMLElement) {
  const b = h("button", { type: "button", class: "secondary", "aria-label": `${c.paused ? "Resume" : "Pause"} connector ${c.id}` }, c.paused ? "Resume" : "Pause");
  b.addEventListener("click", async () => {
    try {
      await api("PATCH", `${basePath(c.account, c.tenant)}/${enc(c.id)}`, { paused: !c.paused });
      after();
    } catch (e) {
      showError(status, null, e);
    }
  });
  return b;
}

function deleteButton(c: Connector, after: () => void, status: HTMLElement) {
  const b = h("button", { type: "button", class: "secondary", "aria-label": `Delete connector ${c.id}` }, "Delete");
  b.addEventListener("click", async () => {
    if (!confirm(`Delete connector ${c.account}/${c.tenant}/${c.id}? What it exported stays at the destination.`)) return;
    try {
      await api("DELETE", `${basePath(c.account, c.tenant)}/${enc(c.id)}`);
      after();
    } catch (e) {
      showError(status, null, e);
    }
  });
  return b;
}

export async function connectorsPage({ main, me }: Ctx) {
  document.title = "Connectors — ByteFreezer";
  main.appendChild(h("h1", {}, "Connectors"));
  main.appendChild(h("p", { class: "hint" }, "Exports of a tenant's events to Elasticsearch, Splunk HEC or a webhook, on a schedule. See docs/connectors.md."));
  const tenants = await allTenants();
  const canEdit = me.role !== "account_viewer";
  const listStatus = statusArea();
  const holder = h("div", {});
  const renderList = async () => {
    const all: Connector[] = [];
    for (const t of tenants) all.push(...(await listAll<Connector>(basePath(t.account, t.id))));
    clear(holder);
    holder.appendChild(
      table(
        "Connectors",
        ["Tenant", "Connector", "Name", "Sink", "Schedule", "State", ...(canEdit ? ["", ""] : [])],
        all.map((c) => [
          `${c.account}/${c.tenant}`,
          h("a", { href: `${basePath(c.account, c.tenant)}/${enc(c.id)}` }, c.id),
          c.name,
          c.sink,
          c.schedule,
          c.paused ? "paused" : "active",
          ...(canEdit ? [pauseButton(c, () => void renderList(), listStatus), deleteButton(c, () => void renderList(), listStatus)] : []),
        ]),
      ),
    );
    if (!all.length) holder.appendChild(h("p", { class: "hint" }, "No connectors yet."));
  };
  await renderList();
  main.appendChild(holder);
  main.appendChild(listStatus);
  if (!canEdit || !tenants.length) return;
  const status = statusArea();
  const { form, body } = await connectorForm("New connector", tenants, null, status);
  onSubmit(form, status, async (d) => {
    const [account, tenant] = str(d, "tenant").split("/");
    const created = await api<Connector>("POST", basePath(account, tenant), { id: str(d, "id"), ...body(d) });
    showOk(status, `Connector ${created.account}/${created.tenant}/${created.id} created.`);
    form.reset();
    await renderList();
  });
  main.appendChild(form);
}

export async function connectorPage({ main, me, params }: Ctx) {
  const { account, tenant, connector } = params;
  document.title = `Connector ${account}/${tenant}/${connector} — ByteFreezer`;
  const path = `${basePath(account, tenant)}/${enc(connector)}`;
  const c = await api<Connector>("GET", path);
  main.appendChild(crumbs(["/connectors", "Connectors"], ["", `${account}/${tenant}/${connector}`]));
  main.appendChild(h("h1", {}, `Connector ${account}/${tenant}/${connector}`));
  main.appendChild(h("p", {}, `Created ${c.created}, updated ${c.updated}.`));
  if (me.role === "account_viewer") {
    main.appendChild(h("pre", { "data-testid": "connector-json" }, JSON.stringify(c, null, 2)));
    return;
  }
  const status = statusArea();
  const { form, body } = await connectorForm("Edit connector", [], c, status);
  onSubmit(form, status, async (d) => {
    await api<Connector>("PATCH", path, body(d));
    showOk(status, "Saved.");
  });
  main.appendChild(form);
  const del = statusArea();
  main.appendChild(h("p", {}, deleteButton(c, () => navigate("/connectors"), del), del));
}
