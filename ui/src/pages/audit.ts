// The audit log, newest first, a page at a time.
import { api, AuditEntry, enc, Page } from "../api";
import { fmtTime, h, statusArea } from "../dom";
import { showError } from "../forms";
import type { Ctx } from "../main";

export async function auditPage({ main }: Ctx) {
  document.title = "Audit log — ByteFreezer";
  main.appendChild(h("h1", {}, "Audit log"));
  const body = h("tbody", {});
  main.appendChild(
    h(
      "table",
      {},
      h("caption", {}, "Changes, newest first"),
      h("thead", {}, h("tr", {}, ...["#", "Time", "Actor", "Action", "Target", "Change"].map((t) => h("th", { scope: "col" }, t)))),
      body,
    ),
  );
  const status = statusArea();
  const more = h("button", { type: "button", class: "secondary" }, "Load older entries");
  main.appendChild(status);
  main.appendChild(more);
  let cursor: string | null = null;
  const load = async () => {
    try {
      const page: Page<AuditEntry> = await api("GET", `/audit?limit=50${cursor ? `&cursor=${enc(cursor)}` : ""}`);
      for (const e of page.items) {
        const change = h(
          "details",
          {},
          h("summary", {}, "before / after"),
          h("pre", {}, "before: " + JSON.stringify(e.before, null, 2) + "\nafter: " + JSON.stringify(e.after, null, 2)),
        );
        body.appendChild(h("tr", {}, h("td", {}, e.seq), h("td", {}, fmtTime(e.time)), h("td", {}, e.actor), h("td", {}, e.action), h("td", {}, e.target), h("td", {}, change)));
      }
      cursor = page.next_cursor;
      more.hidden = !cursor;
    } catch (e) {
      showError(status, null, e);
    }
  };
  more.addEventListener("click", load);
  await load();
}
