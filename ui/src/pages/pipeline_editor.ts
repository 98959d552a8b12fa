// The dataset page's live preview: sample events (NDJSON, kept in this browser per
// dataset) go through the pipeline as it is being edited, by
// POST /api/v1/pipelines/preview (docs/control.md) — nothing is stored or saved —
// and the output events, each step's changes and the errors are shown, refreshed
// shortly after every edit.
import { api, ApiError } from "../api";
import { clear, field, h, statusArea, table } from "../dom";
import { showError } from "../forms";

interface StepTrace {
  step: number;
  kind: string;
  result: string;
  added?: string[];
  removed?: string[];
  changed?: string[];
  events?: number;
  error?: string;
}
interface PreviewResult {
  output: Record<string, unknown>[];
  routed: Record<string, Record<string, unknown>[]>;
  dead_letters: Record<string, unknown>[];
  dropped: number;
  trace: { input: number; steps: StepTrace[] }[];
}

export interface DatasetIds {
  account: string;
  tenant: string;
  dataset: string;
}

const DEBOUNCE_MS = 300;
const MAX_TRACE_ROWS = 500;

// Sample NDJSON -> events; each line that is not a JSON object is named in `errors`
// and left out, the others still go through.
export function parseSamples(text: string, errors: string[]) {
  const events: Record<string, unknown>[] = [];
  text.split("\n").forEach((line, i) => {
    if (!line.trim()) return;
    try {
      const v = JSON.parse(line);
      if (v && typeof v === "object" && !Array.isArray(v)) events.push(v);
      else errors.push(`Sample events, line ${i + 1}: not a JSON object`);
    } catch (e) {
      errors.push(`Sample events, line ${i + 1}: not JSON (${(e as Error).message})`);
    }
  });
  return events;
}

const ndjson = (events: unknown[]) => events.map((e) => JSON.stringify(e)).join("\n");
const list = (xs?: string[]) => (xs && xs.length ? xs.join(", ") : "");

// `pipeline()` gives the steps as edited (throws an Error naming the field when the
// settings do not parse). Call `changed()` after every edit of the steps.
export function pipelineEditor(ids: DatasetIds, pipeline: () => unknown) {
  const keep = `bf.preview.${ids.account}/${ids.tenant}/${ids.dataset}`;
  const samples = h("textarea", { name: "samples", rows: "6", spellcheck: "false", "data-field": "preview.events", "data-testid": "preview-samples" });
  samples.value = localStorage.getItem(keep) ?? '{"message": "GET /index.html 200", "host": "web-1"}\n{"message": "GET /missing 404", "host": "web-2"}';
  const status = statusArea();
  const out = h("div", { class: "preview", "aria-live": "polite", "aria-busy": "false", "data-testid": "preview" });
  const section = h(
    "section",
    { class: "card", "aria-labelledby": "pv-title" },
    h("h2", { id: "pv-title" }, "Live preview"),
    h("p", { class: "hint" }, "Sample events through the pipeline as edited on this page — not yet saved. Nothing is stored; the preview follows every edit."),
    field("Sample events (NDJSON)", samples, "One JSON object per line, up to 1000. Kept in this browser for this dataset."),
    status,
    out,
  );

  let timer: ReturnType<typeof setTimeout> | undefined;
  let seq = 0;
  const run = async () => {
    const mine = ++seq;
    localStorage.setItem(keep, samples.value);
    const inputErrors: string[] = [];
    const events = parseSamples(samples.value, inputErrors);
    let steps: unknown;
    try {
      steps = pipeline();
    } catch (e) {
      clear(out);
      showError(status, null, e);
      section.dataset.state = "error";
      return;
    }
    out.setAttribute("aria-busy", "true");
    try {
      const r = await api<PreviewResult>("POST", "/pipelines/preview", { pipeline: steps, events, ...ids });
      if (mine !== seq) return;  // a later edit has its own preview
      clear(status);
      if (inputErrors.length)
        status.appendChild(h("div", { role: "alert", class: "error" }, ...inputErrors.map((t) => h("p", {}, t + " — left out of the preview."))));
      render(r, events.length);
      section.dataset.state = "ok";
    } catch (e) {
      if (mine !== seq) return;
      clear(out);
      const err = e instanceof ApiError && e.field === "preview.pipeline" ? new ApiError(e.status, e.code, `The pipeline does not compile: ${e.message}`, "dataset.settings.pipeline") : e;
      showError(status, null, err);
      section.dataset.state = "error";
    } finally {
      if (mine === seq) out.setAttribute("aria-busy", "false");
    }
  };
  const render = (r: PreviewResult, inputs: number) => {
    clear(out);
    const routed = Object.values(r.routed ?? {}).reduce((n, evs) => n + evs.length, 0);
    out.appendChild(
      h(
        "p",
        { "data-testid": "preview-summary" },
        `${inputs} event${inputs === 1 ? "" : "s"} in, ${r.output.length} out, ${r.dropped} dropped, ${r.dead_letters.length} dead letter${r.dead_letters.length === 1 ? "" : "s"}, ${routed} routed.`,
      ),
    );
    out.appendChild(h("h3", {}, "Output events"));
    out.appendChild(h("pre", { "data-testid": "preview-output", tabindex: "0", role: "region", "aria-label": "Output events" }, r.output.length ? ndjson(r.output) : "(none)"));
    const rows: (string | number)[][] = [];
    for (const t of r.trace) {
      if (!t.steps.length) rows.push([t.input, "—", "—", "no step applied", "", "", "", ""]);
      for (const s of t.steps) {
        rows.push([t.input, s.step, s.kind, s.result + (s.events !== undefined ? ` (${s.events} events)` : ""), list(s.added), list(s.removed), list(s.changed), s.error ?? ""]);
      }
    }
    out.appendChild(h("h3", {}, "Changes per step"));
    const tbl = table("What each step did to each sample event", ["Event", "Step", "Kind", "Result", "Added", "Removed", "Changed", "Error"], rows.slice(0, MAX_TRACE_ROWS));
    tbl.setAttribute("data-testid", "preview-trace");
    out.appendChild(tbl);
    if (rows.length > MAX_TRACE_ROWS) out.appendChild(h("p", { class: "hint" }, `First ${MAX_TRACE_ROWS} of ${rows.length} step results shown.`));
    if (r.dead_letters.length) {
      out.appendChild(h("h3", {}, "Dead letters"));
      out.appendChild(h("pre", { "data-testid": "preview-dead-letters", tabindex: "0", role: "region", "aria-label": "Dead letters" }, ndjson(r.dead_letters)));
    }
    for (const [target, evs] of Object.entries(r.routed ?? {})) {
      out.appendChild(h("h3", {}, `Routed to ${target}`));
      out.appendChild(h("pre", { tabindex: "0", role: "region", "aria-label": `Events routed to ${target}` }, ndjson(evs)));
    }
  };
  const changed = () => {
    clearTimeout(timer);
    timer = setTimeout(() => void run(), DEBOUNCE_MS);
  };
  samples.addEventListener("input", changed);
  return { el: section, changed, stop: () => clearTimeout(timer) };
}
