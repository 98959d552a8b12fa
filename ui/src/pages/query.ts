// Query console: SQL against a dataset through the query server (docs/api.md,
// POST /api/v1/query) with a query key; results as a table and a CSV download.
// When the key's account has an AI provider (GET /api/v1/query/ask), a second tab
// asks in plain language (POST /api/v1/query/ask, docs/ask.md) and shows the SQL
// the model wrote with its result. The browser talks to the query server directly:
// event data never passes through control.
import { clear, field, h, input, statusArea } from "../dom";
import { showError } from "../forms";
import type { Ctx } from "../main";
import { connectionFields, QueryResult, queryServer, QueryServerError, resultTable, store, cell } from "../query_client";

interface AskStatus {
  configured: boolean;
  provider?: string;
  model?: string;
}
interface AskResult extends QueryResult {
  sql: string;
  explanation: string;
  model: string;
  provider: string;
  attempts: number;
  sample_values_shared: boolean;
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
  const conn = connectionFields(() => void checkAsk());
  const dataset = input("dataset", { value: query.get("dataset") ?? store.getItem("bf.query.dataset") ?? "", required: true, placeholder: "tenant/dataset", "data-field": "dataset" });
  const sql = h("textarea", { name: "sql", rows: "6", required: true, spellcheck: "false", "data-field": "sql" });
  sql.value = store.getItem("bf.query.sql") ?? "SELECT * FROM events ORDER BY _time DESC LIMIT 100";
  const question = h("textarea", { name: "question", rows: "3", spellcheck: "true", "data-field": "question" });
  question.value = store.getItem("bf.query.question") ?? "";
  const status = statusArea();
  const results = h("div", { class: "results" });

  // Tabs (WAI-ARIA tabs pattern): shown only when questions can be asked.
  const tabSql = h("button", { type: "button", role: "tab", id: "tab-sql", "aria-controls": "panel-sql", "aria-selected": "true" }, "SQL");
  const tabAsk = h("button", { type: "button", role: "tab", id: "tab-ask", "aria-controls": "panel-ask", "aria-selected": "false", tabindex: "-1" }, "Ask in plain language");
  const tablist = h("div", { role: "tablist", "aria-label": "Query mode", class: "tabs", hidden: true }, tabSql, tabAsk);
  const runButton = h("button", { type: "submit" }, "Run query");
  const askButton = h("button", { type: "submit" }, "Ask");
  const panelSql = h("div", { id: "panel-sql" }, field("SQL", sql, "One SELECT. Ctrl+Enter runs it."), runButton);
  const askHint = h("p", { class: "hint" });
  const panelAsk = h(
    "div",
    { id: "panel-ask", hidden: true },
    field("Question", question, "In plain language, e.g. “errors per hour today”. The account's AI model writes the SQL; only the question and the column names and types are sent to it (docs/ask.md). Ctrl+Enter asks."),
    askHint,
    askButton,
  );
  let mode: "sql" | "ask" = "sql";
  const select = (m: "sql" | "ask", focus = false) => {
    mode = m;
    for (const [tab, panel, mm] of [[tabSql, panelSql, "sql"], [tabAsk, panelAsk, "ask"]] as const) {
      tab.setAttribute("aria-selected", String(m === mm));
      tab.setAttribute("tabindex", m === mm ? "0" : "-1");
      panel.hidden = m !== mm;
    }
    if (focus) (m === "sql" ? tabSql : tabAsk).focus();
  };
  tabSql.addEventListener("click", () => select("sql"));
  tabAsk.addEventListener("click", () => select("ask"));
  tablist.addEventListener("keydown", (ev) => {
    if (ev.key === "ArrowRight" || ev.key === "ArrowLeft" || ev.key === "Home" || ev.key === "End") {
      ev.preventDefault();
      select(ev.key === "Home" ? "sql" : ev.key === "End" ? "ask" : mode === "sql" ? "ask" : "sql", true);
    }
  });

  const form = h(
    "form",
    { class: "card", "aria-labelledby": "q-form", "data-ask": "unknown" },
    h("h2", { id: "q-form" }, "Query a dataset"),
    ...conn.fields,
    field("Dataset", dataset, "TENANT/DATASET or ACCOUNT/TENANT/DATASET; the SQL reads it as the view events."),
    tablist,
    panelSql,
    panelAsk,
    status,
  );
  for (const t of [sql, question])
    t.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
        ev.preventDefault();
        form.requestSubmit();
      }
    });

  // Whether the key's account has an AI provider: the tab appears only then.
  let checking = 0;
  const checkAsk = async () => {
    const seq = ++checking;
    const c = conn.get();
    let st: AskStatus = { configured: false };
    if (c.server && c.key) {
      try {
        st = await queryServer<AskStatus>(c, "GET", "/api/v1/query/ask");
      } catch {
        st = { configured: false };  // no key yet, or a server without questions
      }
    }
    if (seq !== checking) return;
    tablist.hidden = !st.configured;
    // Tab panels only while there are tabs.
    for (const [panel, tab] of [[panelSql, tabSql], [panelAsk, tabAsk]]) {
      if (st.configured) {
        panel.setAttribute("role", "tabpanel");
        panel.setAttribute("aria-labelledby", tab.id);
      } else {
        panel.removeAttribute("role");
        panel.removeAttribute("aria-labelledby");
      }
    }
    askHint.textContent = st.configured ? `Answered by ${st.model} (${st.provider}).` : "";
    if (!st.configured) select("sql");
    form.setAttribute("data-ask", st.configured ? "on" : "off");  // not form.dataset: the form has a field named "dataset"
  };

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
    clear(status);
    const button = mode === "sql" ? runButton : askButton;
    button.disabled = true;
    const c = conn.get();
    store.setItem("bf.query.dataset", dataset.value);
    store.setItem("bf.query.sql", sql.value);
    store.setItem("bf.query.question", question.value);
    status.appendChild(h("p", {}, mode === "sql" ? "Running…" : "Asking the model…"));
    try {
      if (mode === "sql") {
        const res = await queryServer<QueryResult>(c, "POST", "/api/v1/query", { dataset: dataset.value.trim(), sql: sql.value, format: "json" }, "sql");
        clear(status);
        showResult(results, res);
      } else {
        if (!question.value.trim()) throw new QueryServerError("Question: write a question first", 400, "question");
        const res = await queryServer<AskResult>(c, "POST", "/api/v1/query/ask", { dataset: dataset.value.trim(), question: question.value }, "question");
        clear(status);
        showAnswer(results, res, (text) => {
          sql.value = text;
          select("sql", true);
        });
      }
    } catch (e) {
      clear(results);
      showError(status, form, e);
      const attempts = (e as QueryServerError).body?.attempts;
      if (Array.isArray(attempts)) status.appendChild(attemptList(attempts));
    } finally {
      button.disabled = false;
    }
  });
  main.appendChild(form);
  main.appendChild(results);
  await checkAsk();
}

// The two refused attempts of a 422: each SQL and why it failed.
function attemptList(attempts: { sql: string; error: string }[]) {
  return h(
    "ol",
    { class: "attempts", "aria-label": "The model's attempts" },
    ...attempts.map((a) => h("li", {}, h("pre", {}, a.sql), h("p", { class: "error" }, a.error))),
  );
}

function summary(r: QueryResult) {
  const csv = toCsv(r);
  const link = h("a", { href: URL.createObjectURL(new Blob([csv], { type: "text/csv" })), download: "result.csv", class: "button secondary" }, "Download CSV");
  return h(
    "p",
    { role: "status", "data-testid": "result-summary" },
    `${r.row_count} row${r.row_count === 1 ? "" : "s"} in ${Math.round(r.elapsed_ms)} ms`,
    r.truncated ? ` (cut: ${r.truncated_reason ?? "max_rows"})` : "",
    " ",
    link,
  );
}

function showResult(root: HTMLElement, r: QueryResult) {
  clear(root);
  root.appendChild(summary(r));
  root.appendChild(resultTable(r));
}

function showAnswer(root: HTMLElement, r: AskResult, useSql: (sql: string) => void) {
  clear(root);
  const use = h("button", { type: "button", class: "secondary" }, "Edit this SQL in the SQL tab");
  use.addEventListener("click", () => useSql(r.sql));
  root.appendChild(
    h(
      "section",
      { class: "card", "aria-labelledby": "ask-answer" },
      h("h2", { id: "ask-answer" }, "The model's SQL"),
      h("pre", { "data-testid": "ask-sql" }, r.sql),
      r.explanation ? h("p", { "data-testid": "ask-explanation" }, r.explanation) : null,
      h(
        "p",
        { class: "hint" },
        `Written by ${r.model} (${r.provider})`,
        r.attempts > 1 ? " after one repair attempt" : "",
        r.sample_values_shared ? "; sample values of some columns were shared with the model" : "",
        ". ",
      ),
      use,
    ),
  );
  root.appendChild(summary(r));
  root.appendChild(resultTable(r));
}
