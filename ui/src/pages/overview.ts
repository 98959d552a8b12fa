// Overview: every component's health (the latest report) and time-series charts of
// events/s, lag, spool depth and errors from control's health history.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { api, enc, HealthComponent, HealthPoint } from "../api";
import { clear, fmtTime, h, table } from "../dom";
import type { Ctx } from "../main";
import { onLeave } from "../main";

const metrics: [keyof HealthPoint, string][] = [
  ["events_per_second", "Events per second"],
  ["lag_seconds", "Lag (seconds)"],
  ["spool_depth", "Spool depth (batches)"],
  ["errors", "Errors (since start)"],
];
const colors = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#0a7a8a", "#57606a"];

const fmt = (v: number | null | undefined, digits = 1) => (v === null || v === undefined ? "—" : Number(v).toFixed(digits).replace(/\.0+$/, ""));

export async function overviewPage({ main }: Ctx) {
  document.title = "Overview — ByteFreezer";
  main.appendChild(h("h1", {}, "Overview"));
  const summary = h("div", { "aria-live": "polite" });
  const charts = h("div", { class: "charts" });
  main.appendChild(summary);
  main.appendChild(h("h2", {}, "History"));
  main.appendChild(charts);
  const plots: uPlot[] = [];
  const refresh = async () => {
    let items: HealthComponent[];
    let timeout = 30;
    try {
      const r = await api<{ items: HealthComponent[]; timeout_seconds: number }>("GET", "/health");
      items = r.items;
      timeout = r.timeout_seconds;
    } catch (e) {
      clear(summary);
      summary.appendChild(h("p", { role: "alert", class: "error" }, `Cannot read health: ${(e as Error).message}`));
      return;
    }
    clear(summary);
    if (!items.length) {
      summary.appendChild(h("p", {}, "No component has reported yet. Components report every few seconds once they run (see docs/control.md, Health)."));
    } else {
      const total = items.filter((c) => c.service === "receiver").reduce((n, c) => n + c.events_per_second, 0);
      const bad = items.filter((c) => c.status !== "ok");
      summary.appendChild(
        h(
          "p",
          { class: "kpis" },
          h("span", {}, h("strong", { "data-testid": "ingest-rate" }, fmt(total)), " events/s in"),
          h("span", {}, h("strong", {}, items.length), " components"),
          h("span", { class: bad.length ? "error" : "ok" }, h("strong", {}, bad.length), " not ok"),
        ),
      );
      summary.appendChild(
        table(
          `Components (unhealthy after ${timeout} s without a report)`,
          ["Component", "Status", "Events/s", "Events total", "Lag (s)", "Spool depth", "Errors", "Version", "Last report"],
          items.map((c) => [
            c.id,
            h("span", { class: `badge ${c.status}` }, c.status),
            h("span", { "data-testid": `eps-${c.id}` }, fmt(c.events_per_second)),
            h("span", { "data-testid": `total-${c.id}` }, c.events_total ?? "—"),
            fmt(c.lag_seconds),
            c.spool_depth ?? "—",
            c.errors,
            c.version,
            fmtTime(c.last_seen),
          ]),
        ),
      );
    }
    const histories = await Promise.all(
      items.map((c) => api<{ history: HealthPoint[] }>("GET", `/health/${enc(c.id)}`).then((r) => [c.id, r.history] as const).catch(() => [c.id, []] as const)),
    );
    plots.splice(0).forEach((p) => p.destroy());
    clear(charts);
    if (!histories.length) return;
    for (const [key, title] of metrics) {
      const tables: uPlot.AlignedData[] = histories.map(([, hist]) => [
        hist.map((p) => Date.parse(p.time) / 1000),
        hist.map((p) => (p[key] as number | null) ?? null),
      ]);
      const data = tables.length > 1 ? uPlot.join(tables) : tables[0];
      const fig = h("figure", { class: "chart" });
      const caption = h("figcaption", {}, title);
      fig.appendChild(caption);
      charts.appendChild(fig);
      const width = Math.max(280, Math.min(560, charts.clientWidth / 2 - 24));
      const plot = new uPlot(
        {
          title: undefined,
          width,
          height: 180,
          series: [{}, ...histories.map(([id], i) => ({ label: id, stroke: colors[i % colors.length], width: 1.5, spanGaps: true }))],
          axes: [{}, { size: 50 }],
          scales: { x: { time: true } },
        },
        data,
        fig,
      );
      plot.root.setAttribute("role", "img");
      plot.root.setAttribute("aria-label", `${title} over time for ${histories.map(([id]) => id).join(", ")}; the table above has the latest values.`);
      plots.push(plot);
    }
  };
  await refresh();
  const timer = setInterval(refresh, 5000);
  onLeave(() => {
    clearInterval(timer);
    plots.splice(0).forEach((p) => p.destroy());
  });
}
