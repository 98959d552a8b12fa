// The query server, called from the browser with a query key (docs/api.md): SQL,
// questions, a dataset's schema and parts. Event data goes from the query server
// to this page, never through control (the server must list this page's origin in
// query.cors_origins; loopback origins are allowed). The server URL and key stay in
// this tab (sessionStorage), shared by the query page and the dataset pages.
import { field, h, input } from "./dom";

export const store = window.sessionStorage;

export interface Column {
  name: string;
  type: string;
}
export interface QueryResult {
  columns: Column[];
  rows: Record<string, unknown>[];
  row_count: number;
  truncated: boolean;
  truncated_reason?: string | null;
  elapsed_ms: number;
}

// An error of the query server; `field` names the form control it is about
// (showError marks it), `body` is the parsed answer (422 of /ask has attempts).
export class QueryServerError extends Error {
  constructor(
    message: string,
    public status: number,
    public field?: string,
    public body?: any,
  ) {
    super(message);
  }
}

export interface Connection {
  server: string;
  key: string;
}

// The server URL and key fields (labelled, kept in the tab). `onChange` runs when
// either is changed by the user.
export function connectionFields(onChange?: () => void) {
  const server = input("server", {
    type: "url",
    value: store.getItem("bf.query.server") ?? `${location.protocol}//${location.hostname}:8082`,
    required: true,
    "data-field": "server",
  });
  const key = input("key", { type: "password", value: store.getItem("bf.query.key") ?? "", required: true, autocomplete: "off", "data-field": "key" });
  const remember = () => {
    store.setItem("bf.query.server", server.value);
    store.setItem("bf.query.key", key.value);
  };
  for (const el of [server, key])
    el.addEventListener("change", () => {
      remember();
      onChange?.();
    });
  return {
    fields: [
      field("Query server URL", server, "The query server as this browser reaches it."),
      field("Query key", key, "A query key of the dataset's tenant (API keys page, role query). Kept in this tab only."),
    ],
    server,
    key,
    get: (): Connection => {
      remember();
      return { server: server.value.trim().replace(/\/+$/, ""), key: key.value.trim() };
    },
  };
}

// One call to the query server: JSON in and out. 401 names the key field, else
// `errorField` (the form control the request came from).
export async function queryServer<T = any>(conn: Connection, method: string, path: string, body?: unknown, errorField?: string): Promise<T> {
  const headers: Record<string, string> = { Authorization: `Bearer ${conn.key}`, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res: Response;
  try {
    res = await fetch(`${conn.server}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new QueryServerError(
      `The query server at ${conn.server} cannot be reached from this page (is it running, and does its query.cors_origins list ${location.origin}?).`,
      0,
      "server",
    );
  }
  const text = await res.text();
  let data: any;
  try {
    data = JSON.parse(text);
  } catch {
    throw new QueryServerError(`HTTP ${res.status}: ${text.slice(0, 300)}`, res.status, errorField);
  }
  if (!res.ok) throw new QueryServerError(String(data?.error ?? `HTTP ${res.status}`), res.status, res.status === 401 ? "key" : errorField, data);
  return data as T;
}

export function cell(v: unknown): string {
  if (v === null || v === undefined) return "";
  return typeof v === "object" ? JSON.stringify(v) : String(v);
}

// A scrollable, focusable result table (the region is reachable by keyboard).
export function resultTable(r: QueryResult, label = "Query result") {
  const wrap = h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": label });
  wrap.appendChild(
    h(
      "table",
      { class: "result" },
      h("caption", {}, "Result"),
      h("thead", {}, h("tr", {}, ...r.columns.map((c) => h("th", { scope: "col", title: c.type }, c.name)))),
      h("tbody", {}, ...r.rows.map((row) => h("tr", {}, ...r.columns.map((c) => h("td", {}, cell(row[c.name])))))),
    ),
  );
  return wrap;
}

export function fmtBytes(n: number | null | undefined) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}
