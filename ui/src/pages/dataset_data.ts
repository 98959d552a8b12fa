// A dataset's schema with its history and its partitions and files, read from the
// query server with a query key (GET /api/v1/datasets/{d}/parts and /schema,
// docs/api.md) — like the query page, the browser calls the query server itself.
import { enc } from "../api";
import { clear, h, statusArea, table } from "../dom";
import { showError } from "../forms";
import type { Ctx } from "../main";
import { connectionFields, Connection, fmtBytes, queryServer, QueryServerError } from "../query_client";
import { crumbs } from "./catalog";

interface Part {
  key: string;
  rows: number;
  bytes: number | null;
  hour: string | null;
  quarantine: boolean;
}
interface Parts {
  dataset: string;
  part_count: number;
  rows: number;
  bytes: number;
  parts: Part[];
}
interface SchemaColumn {
  name: string;
  type: string;
  source?: string;
  overflow?: string;
  overflow_of?: string;
  added_in_version?: number;
}
interface SchemaChange {
  path: string;
  change: string;
  type?: string;
  from?: string;
  source?: string;
}
interface SchemaDoc {
  version: number;
  updated?: string;
  columns: SchemaColumn[];
  history?: { version: number; batch?: string; time?: string; changes: SchemaChange[] }[];
}

const MAX_FILES = 500;
const hourText = (iso: string | null) => (iso ? iso.replace(/:00:00(\.0+)?Z$/, ":00 UTC").replace("T", " ") : "quarantine (time out of bounds)");

function describeChange(c: SchemaChange) {
  const words: Record<string, string> = {
    added: "added",
    widened: "widened",
    json_text: "now JSON text",
    member_added: "member added",
    renamed: "renamed",
    overflow_added: "overflow column added",
  };
  return `${words[c.change] ?? c.change} ${c.path}${c.type ? ` ${c.type}` : ""}${c.from ? ` (was ${c.from})` : ""}${c.source !== undefined ? ` (field "${c.source}")` : ""}`;
}

export async function datasetDataPage({ main, params }: Ctx) {
  const { account: acc, tenant: ten, dataset: dsId } = params;
  const full = `${acc}/${ten}/${dsId}`;
  document.title = `Schema and files of ${full} — ByteFreezer`;
  const dsPath = `/accounts/${enc(acc)}/tenants/${enc(ten)}/datasets/${enc(dsId)}`;
  main.appendChild(
    crumbs(["/accounts", "Accounts"], [`/accounts/${enc(acc)}`, acc], [`/accounts/${enc(acc)}/tenants/${enc(ten)}`, ten], [dsPath, dsId], ["", "Schema and files"]),
  );
  main.appendChild(h("h1", {}, `Schema and files of ${full}`));
  const conn = connectionFields();
  const status = statusArea();
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "dd-conn" },
    h("h2", { id: "dd-conn" }, "Query server"),
    h("p", { class: "hint" }, "The schema and the files come from the query server, read with a query key of tenant ", h("code", {}, `${acc}/${ten}`), "."),
    ...conn.fields,
    status,
    h("button", { type: "submit" }, "Load schema and files"),
  );
  const schemaOut = h("section", { class: "card", "aria-labelledby": "dd-schema", "data-testid": "schema" }, h("h2", { id: "dd-schema" }, "Schema"));
  const partsOut = h("section", { class: "card", "aria-labelledby": "dd-parts", "data-testid": "parts" }, h("h2", { id: "dd-parts" }, "Partitions and files"));
  const load = async () => {
    clear(status);
    form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
    const c = conn.get();
    if (!c.key) {
      status.appendChild(h("p", { class: "hint" }, "Enter a query key to load the schema and the files."));
      return;
    }
    const button = form.querySelector("button[type=submit]") as HTMLButtonElement;
    button.disabled = true;
    try {
      // The parts name the dataset the key reached: a key of another tenant reads
      // that tenant's dataset of the same id, which must not be shown as this one.
      const parts = await queryServer<Parts>(c, "GET", `/api/v1/datasets/${enc(dsId)}/parts`);
      if (parts.dataset !== full)
        throw new QueryServerError(`This query key is for ${parts.dataset.split("/").slice(0, 2).join("/")}, not tenant ${acc}/${ten}: use a key of this dataset's tenant.`, 403, "key");
      showParts(partsOut, parts);
      await loadSchema(c);
    } catch (e) {
      for (const sec of [schemaOut, partsOut]) while (sec.childNodes.length > 1) sec.removeChild(sec.lastChild!);
      showError(status, form, e);
    } finally {
      button.disabled = false;
    }
  };
  const loadSchema = async (c: Connection) => {
    while (schemaOut.childNodes.length > 1) schemaOut.removeChild(schemaOut.lastChild!);
    try {
      showSchema(schemaOut, await queryServer<SchemaDoc>(c, "GET", `/api/v1/datasets/${enc(dsId)}/schema`));
    } catch (e) {
      // Nothing packed yet is a state, not an error.
      if (e instanceof QueryServerError && e.status === 404) schemaOut.appendChild(h("p", { "data-testid": "schema-none" }, e.message));
      else throw e;
    }
  };
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void load();
  });
  main.appendChild(form);
  main.appendChild(schemaOut);
  main.appendChild(partsOut);
  if (conn.key.value) await load();
}

function showSchema(root: HTMLElement, doc: SchemaDoc) {
  root.appendChild(h("p", { "data-testid": "schema-version" }, `Version ${doc.version}`, doc.updated ? `, updated ${doc.updated.replace("T", " ").replace(/\.\d+Z$|Z$/, " UTC")}` : "", `; ${doc.columns.length} columns.`));
  root.appendChild(
    table(
      "Columns",
      ["Column", "Type", "Since version", "Notes"],
      doc.columns.map((c) => [
        h("code", {}, c.name),
        h("code", {}, c.type),
        c.added_in_version ?? "",
        [c.source !== undefined ? `from field "${c.source}"` : "", c.overflow ? `values it cannot hold go to ${c.overflow}` : "", c.overflow_of ? `overflow of ${c.overflow_of}` : ""]
          .filter(Boolean)
          .join("; "),
      ]),
    ),
  );
  const history = [...(doc.history ?? [])].reverse();  // newest first
  root.appendChild(
    table(
      "History (newest first)",
      ["Version", "Time", "Batch", "Changes"],
      history.map((v) => [v.version, v.time ? v.time.replace("T", " ").replace(/\.\d+Z$|Z$/, " UTC") : "", v.batch ? h("code", {}, v.batch) : "", h("ul", { class: "changes" }, ...v.changes.map((c) => h("li", {}, describeChange(c))))]),
    ),
  );
}

function showParts(root: HTMLElement, p: Parts) {
  while (root.childNodes.length > 1) root.removeChild(root.lastChild!);
  root.appendChild(
    h("p", { "data-testid": "parts-summary" }, `${p.part_count} file${p.part_count === 1 ? "" : "s"}, ${p.rows} rows, ${fmtBytes(p.bytes)}.`, p.part_count ? "" : " Nothing packed yet."),
  );
  if (!p.part_count) return;
  const hours = new Map<string, { parts: number; rows: number; bytes: number }>();
  for (const part of p.parts) {
    const k = part.hour ?? "";
    const agg = hours.get(k) ?? { parts: 0, rows: 0, bytes: 0 };
    agg.parts++;
    agg.rows += part.rows;
    agg.bytes += part.bytes ?? 0;
    hours.set(k, agg);
  }
  const byHour = [...hours.entries()].sort(([a], [b]) => (a < b ? 1 : -1));  // newest first, quarantine last
  root.appendChild(
    table("Partitions (by event hour, newest first)", ["Hour", "Files", "Rows", "Size"], byHour.map(([k, a]) => [hourText(k || null), a.parts, a.rows, fmtBytes(a.bytes)])),
  );
  const prefix = `parquet/account=${p.dataset.split("/")[0]}/tenant=${p.dataset.split("/")[1]}/dataset=${p.dataset.split("/")[2]}/`;
  const files = [...p.parts].reverse().slice(0, MAX_FILES);
  root.appendChild(
    table(
      "Files",
      ["File", "Hour", "Rows", "Size"],
      files.map((f) => [h("code", { title: f.key }, f.key.startsWith(prefix) ? f.key.slice(prefix.length) : f.key), hourText(f.hour), f.rows, fmtBytes(f.bytes)]),
    ),
  );
  if (p.parts.length > MAX_FILES) root.appendChild(h("p", { class: "hint" }, `The newest ${MAX_FILES} of ${p.parts.length} files are shown.`));
}
