// Query console: SQL against a dataset through the query server (docs/api.md,
// POST /api/v1/query) with a query key; results as a table and a CSV download.
// The browser talks to the query server directly: event data never passes through
// control (the query server must list this page's origin in query.cors_origins).
import { clear, field, h, input, statusArea } from "../dom";
import { showError } from "../forms";
import type { Ctx } from "../main";

interface Column {
  name: string;
  type: string;
}
interface QueryResult {
  columns: Column[];
  rows: Record<string, unknown>[];
  row_count: number;
  truncated: boolean;
  truncated_reason: string | null;
  elapsed_ms: number;
}

const store = window.sessionStorage;

function cell(v: unknown): string {
  if (v === null || v === undefined) return "";
  return typeof v === "object" ? JSON.stringify(v) : String(v);
}

// RFC 4180: quote fields holding , " CR or LF; NULL empty.
export function toCsv(r: QueryResult): string {
  const q = (s: string) => (/[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  const lines = [r.columns.map((c) => q(c.name)).join(",")];
  for (const row of r.rows) lines.push(r.columns.map((c) => (row[c.name] === "" ? '""' : q(cell(row[c.name])))).join(","));
  return lines.join("\r\n") + "\r\n";
}

export async function queryPage({ main, query }: Ctx) {
  document.title = "Query — ByteFreezer";
  main.appendChild(h("h1", {}, "Query"));
  const server = input("server", { type: "url", value: store.getItem("bf.query.server") ?? `${location.protocol}//${location.hostname}:8082`, required: true });
  const key = input("key", { type: "password", value: store.getItem("bf.query.key") ?? "", required: true, autocomplete: "off" });
  const dataset = input("dataset", { value: query.get("dataset") ?? store.getItem("bf.query.dataset") ?? "", required: true, placeholder: "tenant/dataset", "data-field": "dataset" });
  const sql = h("textarea", { name: "sql", rows: "6", required: true, spellcheck: "false", "data-field": "sql" });
  sql.value = store.getItem("bf.query.sql") ?? "SELECT * FROM events ORDER BY _time DESC LIMIT 100";
  const status = statusArea();
  const results = h("div", { class: "results" });
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "q-form" },
    h("h2", { id: "q-form" }, "Query a dataset"),
    field("Query server URL", server, "The query server as this browser reaches it."),
    field("Query key", key, "A query key of the dataset's tenant (API keys page, role query). Kept in this tab only."),
    field("Dataset", dataset, "TENANT/DATASET or ACCOUNT/TENANT/DATASET; the SQL reads it as the view events."),
    field("SQL", sql, "One SELECT. Ctrl+Enter runs it."),
    status,
    h("button", { type: "submit" }, "Run query"),
  );
  sql.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clear(status);
    const button = form.querySelector("button[type=submit]") as HTMLButtonElement;
    button.disabled = true;
    store.setItem("bf.query.server", server.value);
    store.setItem("bf.query.key", key.value);
    store.setItem("bf.query.dataset", dataset.value);
    store.setItem("bf.query.sql", sql.value);
    status.appendChild(h("p", {}, "Running…"));
    try {
      const res = await run(server.value.replace(/\/+$/, ""), key.value, dataset.value.trim(), sql.value);
      clear(status);
      showResult(results, res);
    } catch (e) {
      showError(status, form, e);
    } finally {
      button.disabled = false;
    }
  });
  main.appendChild(form);
  main.appendChild(results);
}

async function run(server: string, key: string, dataset: string, sql: string): Promise<QueryResult> {
  let res: Response;
  try {
    res = await fetch(`${server}/api/v1/query`, {
      method: "POST",
      headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ dataset, sql, format: "json" }),
    });
  } catch {
    throw new Error(`The query server at ${server} cannot be reached from this page (is it running, and does its query.cors_origins list ${location.origin}?).`);
  }
  const text = await res.text();
  let data: any;
  try {
    data = JSON.parse(text);
  } catch {
    throw new Error(`HTTP ${res.status}: ${text.slice(0, 300)}`);
  }
  if (!res.ok) throw Object.assign(new Error(`${data?.error ?? `HTTP ${res.status}`}`), { field: res.status === 401 ? "key" : "sql" });
  return data as QueryResult;
}

function showResult(root: HTMLElement, r: QueryResult) {
  clear(root);
  const csv = toCsv(r);
  const link = h("a", { href: URL.createObjectURL(new Blob([csv], { type: "text/csv" })), download: "result.csv", class: "button secondary" }, "Download CSV");
  root.appendChild(
    h(
      "p",
      { role: "status", "data-testid": "result-summary" },
      `${r.row_count} row${r.row_count === 1 ? "" : "s"} in ${Math.round(r.elapsed_ms)} ms`,
      r.truncated ? ` (cut: ${r.truncated_reason})` : "",
      " ",
      link,
    ),
  );
  const wrap = h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": "Query result" });
  wrap.appendChild(
    h(
      "table",
      { class: "result" },
      h("caption", {}, "Result"),
      h("thead", {}, h("tr", {}, ...r.columns.map((c) => h("th", { scope: "col", title: c.type }, c.name)))),
      h("tbody", {}, ...r.rows.map((row) => h("tr", {}, ...r.columns.map((c) => h("td", {}, cell(row[c.name])))))),
    ),
  );
  root.appendChild(wrap);
}
