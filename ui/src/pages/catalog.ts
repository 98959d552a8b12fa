// Accounts → tenants → datasets: list, create, edit, pause. The dataset page edits
// its settings; sources and pipeline steps get forms from the plugins' schemas.
import { Account, api, Dataset, enc, listAll, Tenant } from "../api";
import { append, clear, field, fmtTime, h, input, select, statusArea, table } from "../dom";
import { onSubmit, showError, showOk, str } from "../forms";
import type { Ctx } from "../main";
import { navigate, onLeave } from "../main";
import { PluginSchemas, schemaForm } from "../schema_form";
import { pipelineEditor } from "./pipeline_editor";

const idAttrs = { required: true, pattern: "[a-z0-9][a-z0-9_\\-]{0,62}", autocomplete: "off" };
const idHint = "Lowercase letters, digits, - and _ (up to 63); cannot be changed later.";

export function crumbs(...parts: [string, string][]) {
  return h(
    "nav",
    { "aria-label": "Breadcrumb", class: "crumbs" },
    h("ol", {}, ...parts.map(([href, text], i) => h("li", {}, i === parts.length - 1 ? h("span", { "aria-current": "page" }, text) : h("a", { href }, text)))),
  );
}

function createForm(title: string, fields: HTMLElement[], status: HTMLElement, button: string) {
  const id = "create-" + title.toLowerCase().replace(/[^a-z]+/g, "-");
  return h("form", { class: "card", "aria-labelledby": id }, h("h2", { id }, title), ...fields, status, h("button", { type: "submit" }, button));
}

// The name of an account or tenant, saved with a PATCH of its path.
function nameForm(kind: "account" | "tenant", name: string, path: string) {
  const status = statusArea();
  const form = h(
    "form",
    { class: "inline", "aria-label": `${kind === "account" ? "Account" : "Tenant"} name` },
    field("Name", input("name", { value: name, "data-field": `${kind}.name` })),
    h("button", { type: "submit", class: "secondary" }, "Save name"),
    status,
  );
  onSubmit(form, status, async (d) => {
    await api("PATCH", path, { name: str(d, "name") });
    showOk(status, "Saved.");
  });
  return form;
}

export async function accountsPage({ main, me }: Ctx) {
  document.title = "Accounts — ByteFreezer";
  main.appendChild(h("h1", {}, "Accounts"));
  const accounts = await listAll<Account>("/accounts");
  main.appendChild(
    table("Accounts", ["Account", "Name", "Created"], accounts.map((a) => [h("a", { href: `/accounts/${enc(a.id)}` }, a.id), a.name, fmtTime(a.created)])),
  );
  if (me.role !== "system_admin") return;
  const status = statusArea();
  const form = createForm(
    "New account",
    [field("Account id", input("id", { ...idAttrs, "data-field": "account.id" }), idHint), field("Name", input("name", { "data-field": "account.name" }))],
    status,
    "Create account",
  );
  onSubmit(form, status, async (d) => {
    const a = await api<Account>("POST", "/accounts", { id: str(d, "id"), name: str(d, "name") });
    navigate(`/accounts/${enc(a.id)}`);
  });
  main.appendChild(form);
}

export async function accountPage({ main, params }: Ctx) {
  const acc = params.account;
  document.title = `Account ${acc} — ByteFreezer`;
  const account = await api<Account>("GET", `/accounts/${enc(acc)}`);
  main.appendChild(crumbs(["/accounts", "Accounts"], ["", acc]));
  main.appendChild(h("h1", {}, `Account ${acc}`));
  main.appendChild(nameForm("account", account.name, `/accounts/${enc(acc)}`));
  const tenants = await listAll<Tenant>(`/accounts/${enc(acc)}/tenants`);
  main.appendChild(
    table("Tenants", ["Tenant", "Name", "Created"], tenants.map((t) => [h("a", { href: `/accounts/${enc(acc)}/tenants/${enc(t.id)}` }, t.id), t.name, fmtTime(t.created)])),
  );
  const status = statusArea();
  const form = createForm(
    "New tenant",
    [field("Tenant id", input("id", { ...idAttrs, "data-field": "tenant.id" }), idHint), field("Name", input("name", { "data-field": "tenant.name" }))],
    status,
    "Create tenant",
  );
  onSubmit(form, status, async (d) => {
    const t = await api<Tenant>("POST", `/accounts/${enc(acc)}/tenants`, { id: str(d, "id"), name: str(d, "name") });
    navigate(`/accounts/${enc(acc)}/tenants/${enc(t.id)}`);
  });
  main.appendChild(form);
}

function pauseButton(d: Dataset, after: (d: Dataset) => void, status: HTMLElement) {
  const b = h("button", { type: "button", class: "secondary", "aria-label": `${d.paused ? "Resume" : "Pause"} dataset ${d.id}` }, d.paused ? "Resume" : "Pause");
  b.addEventListener("click", async () => {
    try {
      after(await api<Dataset>("PATCH", `/accounts/${enc(d.account)}/tenants/${enc(d.tenant)}/datasets/${enc(d.id)}`, { paused: !d.paused }));
    } catch (e) {
      showError(status, null, e);
    }
  });
  return b;
}

export async function tenantPage(ctx: Ctx) {
  const { main, params } = ctx;
  const { account: acc, tenant: ten } = params;
  document.title = `Tenant ${acc}/${ten} — ByteFreezer`;
  const base = `/accounts/${enc(acc)}/tenants/${enc(ten)}`;
  const tenant = await api<Tenant>("GET", base);
  main.appendChild(crumbs(["/accounts", "Accounts"], [`/accounts/${enc(acc)}`, acc], ["", ten]));
  main.appendChild(h("h1", {}, `Tenant ${acc}/${ten}`));
  main.appendChild(nameForm("tenant", tenant.name, base));
  const listStatus = statusArea();
  const holder = h("div", {});
  const renderList = async () => {
    const datasets = await listAll<Dataset>(`${base}/datasets`);
    clear(holder);
    holder.appendChild(
      table(
        "Datasets",
        ["Dataset", "Name", "State", "Updated", ""],
        datasets.map((d) => [
          h("a", { href: `${base}/datasets/${enc(d.id)}` }, d.id),
          d.name,
          d.paused ? "paused" : "active",
          fmtTime(d.updated),
          pauseButton(d, () => void renderList(), listStatus),
        ]),
      ),
    );
  };
  await renderList();
  append(main, holder, listStatus);
  const status = statusArea();
  const form = createForm(
    "New dataset",
    [field("Dataset id", input("id", { ...idAttrs, "data-field": "dataset.id" }), idHint), field("Name", input("name", { "data-field": "dataset.name" }))],
    status,
    "Create dataset",
  );
  onSubmit(form, status, async (d) => {
    const ds = await api<Dataset>("POST", `${base}/datasets`, { id: str(d, "id"), name: str(d, "name") });
    navigate(`${base}/datasets/${enc(ds.id)}`);
  });
  main.appendChild(form);
}

let pluginCache: Promise<PluginSchemas> | null = null;
export function plugins(): Promise<PluginSchemas> {
  pluginCache ??= api<PluginSchemas>("GET", "/plugins").catch((e) => {
    pluginCache = null;
    throw e;
  });
  return pluginCache;
}

// One list of settings items (sources or pipeline steps) with add and remove.
function itemList(
  title: string,
  items: Record<string, unknown>[],
  schemas: Record<string, import("../schema_form").JsonSchema>,
  describe: (item: Record<string, unknown>) => [string, Record<string, unknown>],
  build: (kind: string, options: Record<string, unknown>) => Record<string, unknown>,
  changed: () => void,
): { section: HTMLElement; refresh: () => void } {
  const id = "list-" + title.toLowerCase().replace(/[^a-z]+/g, "-");
  const section = h("section", { class: "card", "aria-labelledby": id }, h("h2", { id }, title));
  const list = h("ol", { class: "items" });
  const renderItems = () => {
    clear(list);
    items.forEach((item, i) => {
      const [kind, options] = describe(item);
      const remove = h("button", { type: "button", class: "secondary", "aria-label": `Remove ${kind} (${title} item ${i + 1})` }, "Remove");
      remove.addEventListener("click", () => {
        items.splice(i, 1);
        renderItems();
        changed();
      });
      list.appendChild(h("li", {}, h("code", {}, kind), " ", h("span", { class: "options" }, JSON.stringify(options)), " ", remove));
    });
    if (!items.length) list.appendChild(h("li", { class: "hint" }, "None."));
  };
  renderItems();
  section.appendChild(list);
  const kinds = Object.keys(schemas).sort();
  const kindSelect = select("kind", [["", "Choose…"], ...kinds.map((k) => [k, k] as [string, string])]);
  const formHolder = h("div", {});
  const status = statusArea();
  const add = h("button", { type: "submit", class: "secondary" }, "Add");
  const form = h("form", { class: "add-item", "aria-label": `Add to ${title}`, novalidate: true }, field(`Add to ${title}: kind`, kindSelect), formHolder, status, add);
  let current: ReturnType<typeof schemaForm> | null = null;
  kindSelect.addEventListener("change", () => {
    clear(formHolder);
    current = kindSelect.value ? schemaForm(`${kindSelect.value} options`, schemas[kindSelect.value]) : null;
    if (current) formHolder.appendChild(current.el);
  });
  onSubmit(form, status, async () => {
    if (!current) throw Object.assign(new Error("Choose a kind first"), { field: "kind" });
    items.push(build(kindSelect.value, current.value()));
    renderItems();
    changed();
    kindSelect.value = "";
    clear(formHolder);
    current = null;
    showOk(status, "Added; save the dataset to apply it.");
  });
  section.appendChild(form);
  return { section, refresh: renderItems };
}

export async function datasetPage({ main, params }: Ctx) {
  const { account: acc, tenant: ten, dataset: dsId } = params;
  document.title = `Dataset ${acc}/${ten}/${dsId} — ByteFreezer`;
  const path = `/accounts/${enc(acc)}/tenants/${enc(ten)}/datasets/${enc(dsId)}`;
  let ds = await api<Dataset>("GET", path);
  main.appendChild(crumbs(["/accounts", "Accounts"], [`/accounts/${enc(acc)}`, acc], [`/accounts/${enc(acc)}/tenants/${enc(ten)}`, ten], ["", dsId]));
  main.appendChild(h("h1", {}, `Dataset ${acc}/${ten}/${dsId}`));
  main.appendChild(h("p", {}, h("a", { href: `${path}/data` }, "Schema and files"), " of this dataset (through the query server)."));
  const settings: Record<string, any> = { ...(ds.settings ?? {}) };
  settings.sources = Array.isArray(settings.sources) ? [...settings.sources] : [];
  settings.pipeline = Array.isArray(settings.pipeline) ? [...settings.pipeline] : [];

  const status = statusArea();
  const stateText = h("span", {}, ds.paused ? "paused" : "active");
  const pauseHolder = h("span", {});
  const renderPause = () => {
    stateText.textContent = ds.paused ? "paused" : "active";
    clear(pauseHolder);
    pauseHolder.appendChild(pauseButton(ds, (next) => ((ds = next), renderPause()), status));
  };
  renderPause();
  main.appendChild(h("p", {}, "State: ", stateText, " ", pauseHolder));

  const json = h("textarea", { name: "settings", rows: "10", spellcheck: "false", "data-field": "dataset.settings" });
  // The settings as JSON; the lists and the preview follow edits of either.
  const parseJson = () => {
    try {
      return JSON.parse(json.value);
    } catch (e) {
      throw Object.assign(new Error(`Settings: not JSON (${(e as Error).message})`), { field: "dataset.settings" });
    }
  };
  const editor = pipelineEditor({ account: acc, tenant: ten, dataset: dsId }, () => {
    const pipeline = parseJson()?.pipeline ?? [];
    if (!Array.isArray(pipeline)) throw Object.assign(new Error("Settings: pipeline must be a list of steps"), { field: "dataset.settings.pipeline" });
    return pipeline;
  });
  onLeave(editor.stop);
  const showJson = () => {
    json.value = JSON.stringify(settings, null, 2);
    editor.changed();
  };
  let schemas: PluginSchemas = { sources: {}, steps: {} };
  try {
    schemas = await plugins();
  } catch (e) {
    main.appendChild(h("p", { role: "alert", class: "error" }, `Plugin schemas unavailable (${(e as Error).message}): edit the settings as JSON below.`));
  }
  // A source's `type` is the kind chosen in the list, not a field of its form.
  const sourceSchemas = Object.fromEntries(
    Object.entries(schemas.sources).map(([k, sch]) => {
      const { type: _kind, ...props } = sch.properties ?? {};
      return [k, { ...sch, properties: props, required: (sch.required ?? []).filter((r) => r !== "type") }];
    }),
  );
  const sourcesList = itemList("Sources", settings.sources, sourceSchemas, (s) => {
    const { type, ...rest } = s as { type: string };
    return [String(type), rest];
  }, (kind, o) => ({ type: kind, ...o }), showJson);
  const pipelineList = itemList("Pipeline", settings.pipeline, schemas.steps, (s) => {
    const [kind] = Object.keys(s);
    return [kind, (s as any)[kind] ?? {}];
  }, (kind, o) => ({ [kind]: o }), showJson);
  main.appendChild(sourcesList.section);
  main.appendChild(pipelineList.section);
  // Typing in the JSON updates the lists (when it parses) and the preview; an error
  // of the last save no longer applies.
  json.addEventListener("input", () => {
    if (json.getAttribute("aria-invalid")) {
      json.removeAttribute("aria-invalid");
      clear(status);
    }
    let next: any;
    try {
      next = JSON.parse(json.value);
    } catch {
      editor.changed();  // the preview says what is wrong
      return;
    }
    if (next && typeof next === "object" && !Array.isArray(next)) {
      for (const k of Object.keys(settings)) if (!(k in next) && k !== "sources" && k !== "pipeline") delete settings[k];
      for (const [k, v] of Object.entries(next)) if (k !== "sources" && k !== "pipeline") settings[k] = v;
      for (const [items, value, list] of [[settings.sources, next.sources, sourcesList], [settings.pipeline, next.pipeline, pipelineList]] as const) {
        items.splice(0, items.length, ...(Array.isArray(value) ? value : []));
        list.refresh();
      }
    }
    editor.changed();
  });
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "ds-edit" },
    h("h2", { id: "ds-edit" }, "Dataset settings"),
    field("Name", input("name", { value: ds.name, "data-field": "dataset.name" })),
    field(
      "Retention (days)",
      input("retention", { type: "number", min: "1", step: "1", value: settings.retention?.days ?? "", "data-field": "dataset.settings.retention.days" }),
      "Empty: kept until deleted.",
    ),
    field("Settings (JSON)", json, "Sources, pipeline, packer and retention as the API takes them; the lists above edit it too."),
    status,
    h("button", { type: "submit" }, "Save dataset"),
  );
  showJson();
  onSubmit(form, status, async (d) => {
    const next: Record<string, any> = parseJson();
    const days = str(d, "retention");
    if (days) next.retention = { ...(next.retention ?? {}), days: Number(days) };
    else delete next.retention;
    ds = await api<Dataset>("PATCH", path, { name: str(d, "name"), settings: next });
    showOk(status, `Saved at ${fmtTime(ds.updated)}; components pick it up at once.`);
  });
  main.appendChild(form);
  main.appendChild(editor.el);
}
