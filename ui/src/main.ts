// The app shell: session, navigation, and a router over history paths (control
// answers every page path with index.html).
import "./style.css";
import { api, ApiError, listAll, Me, setUnauthenticatedHandler } from "./api";
import { clear, h } from "./dom";
import { loginPage } from "./pages/login";
import { welcomePage } from "./pages/welcome";
import { accountsPage, accountPage, tenantPage, datasetPage } from "./pages/catalog";
import { keysPage } from "./pages/keys";
import { usersPage } from "./pages/users";
import { auditPage } from "./pages/audit";
import { overviewPage } from "./pages/overview";
import { queryPage } from "./pages/query";
import { datasetDataPage } from "./pages/dataset_data";
import { connectorsPage, connectorPage } from "./pages/connectors";

export interface Ctx {
  me: Me;
  main: HTMLElement;
  params: Record<string, string>;
  query: URLSearchParams;
}
type PageFn = (ctx: Ctx) => Promise<void> | void;

const routes: [RegExp, string[], PageFn][] = [];
function route(pattern: string, page: PageFn) {
  const names: string[] = [];
  const re = new RegExp(
    "^" + pattern.replace(/:([a-z]+)/g, (_, n) => (names.push(n), "([^/]+)")) + "/?$",
  );
  routes.push([re, names, page]);
}
route("/welcome", welcomePage);
route("/overview", overviewPage);
route("/accounts", accountsPage);
route("/accounts/:account", accountPage);
route("/accounts/:account/tenants/:tenant", tenantPage);
route("/accounts/:account/tenants/:tenant/datasets/:dataset", datasetPage);
route("/accounts/:account/tenants/:tenant/datasets/:dataset/data", datasetDataPage);
route("/connectors", connectorsPage);
route("/accounts/:account/tenants/:tenant/connectors/:connector", connectorPage);
route("/keys", keysPage);
route("/users", usersPage);
route("/audit", auditPage);
route("/query", queryPage);

const nav: [string, string][] = [
  ["/overview", "Overview"],
  ["/welcome", "Get started"],
  ["/accounts", "Accounts"],
  ["/connectors", "Connectors"],
  ["/keys", "API keys"],
  ["/users", "Users"],
  ["/audit", "Audit log"],
  ["/query", "Query"],
];

let me: Me | null = null;
let probing = false;  // asking who we are: a 401 just means "log in"
let stopPage: (() => void) | null = null;
// Pages with timers register a stop function, called when the page is left.
export function onLeave(fn: () => void) {
  const prev = stopPage;
  stopPage = () => {
    prev?.();
    fn();
  };
}

export function navigate(path: string, replace = false) {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  void render();
}

function header() {
  const top = document.getElementById("top")!;
  clear(top);
  top.appendChild(h("span", { class: "brand" }, "ByteFreezer"));
  if (!me) return;
  const here = location.pathname;
  top.appendChild(
    h(
      "nav",
      { "aria-label": "Main" },
      h(
        "ul",
        {},
        ...nav.map(([path, text]) =>
          h("li", {}, h("a", { href: path, "aria-current": here === path || here.startsWith(path + "/") ? "page" : false }, text)),
        ),
      ),
    ),
  );
  const out = h("button", { type: "button", class: "secondary" }, "Log out");
  out.addEventListener("click", async () => {
    try {
      await api("POST", "/auth/logout");
    } catch {
      /* the session is gone either way */
    }
    me = null;
    navigate("/login");
  });
  top.appendChild(h("span", { class: "who" }, `${me.email ?? `${me.kind} ${me.id}`} (${me.role})`, " ", out));
}

// First run: nothing to look at until a dataset exists.
async function hasDatasets(): Promise<boolean> {
  for (const a of await listAll<{ id: string }>("/accounts")) {
    for (const t of await listAll<{ id: string }>(`/accounts/${a.id}/tenants`)) {
      const page = await api("GET", `/accounts/${a.id}/tenants/${t.id}/datasets?limit=1`);
      if (page.items.length) return true;
    }
  }
  return false;
}

async function render() {
  stopPage?.();
  stopPage = null;
  delete document.body.dataset.ready;  // set again once the page is complete
  const main = document.getElementById("main")!;
  const path = location.pathname;
  if (!me && path !== "/login") {
    probing = true;
    try {
      me = await api<Me>("GET", "/auth/me");
    } catch (e) {
      if (!(e instanceof ApiError) || e.status !== 401) throw e;
    } finally {
      probing = false;
    }
  }
  if (!me && path !== "/login") {
    navigate(path === "/" ? "/login" : `/login?next=${encodeURIComponent(path + location.search)}`, true);
    return;
  }
  if (!me || path === "/login") {
    header();
    clear(main);
    document.body.dataset.ready = "login";
    await loginPage(main, async (who) => {
      me = who;
      const next = new URLSearchParams(location.search).get("next");
      navigate(next && next.startsWith("/") && !next.startsWith("//") ? next : (await hasDatasets()) ? "/overview" : "/welcome", true);
    });
    return;
  }
  if (path === "/" || path === "/index.html") {
    navigate((await hasDatasets()) ? "/overview" : "/welcome", true);
    return;
  }
  header();
  clear(main);
  for (const [re, names, page] of routes) {
    const m = re.exec(path);
    if (!m) continue;
    const params: Record<string, string> = {};
    names.forEach((n, i) => (params[n] = decodeURIComponent(m[i + 1])));
    try {
      await page({ me, main, params, query: new URLSearchParams(location.search) });
    } catch (e) {
      main.appendChild(h("p", { role: "alert", class: "error" }, (e as Error).message));
    }
    focusHeading(main);
    document.body.dataset.ready = path;
    return;
  }
  document.title = "Not found — ByteFreezer";
  main.appendChild(h("h1", {}, "Page not found"));
  main.appendChild(h("p", {}, "No page at ", h("code", {}, path), ". ", h("a", { href: "/overview" }, "Go to the overview")));
  focusHeading(main);
}

// After a navigation, keyboard and screen-reader users start at the page's heading.
function focusHeading(main: HTMLElement) {
  const h1 = main.querySelector("h1");
  if (h1) {
    h1.setAttribute("tabindex", "-1");
    h1.focus({ preventScroll: true });
  }
}

setUnauthenticatedHandler(() => {
  if (probing || location.pathname === "/login") return;
  me = null;
  navigate(`/login?next=${encodeURIComponent(location.pathname)}`, true);
});

// Same-origin links route in the page.
document.addEventListener("click", (ev) => {
  const a = (ev.target as Element).closest?.("a");
  if (!a || a.target || a.hasAttribute("download") || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button !== 0) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith("/api/") || url.hash) return;
  ev.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener("popstate", () => void render());
void render();
