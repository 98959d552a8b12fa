// Small DOM helpers: the UI builds its pages with these, no framework.
type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, unknown>;

// h("button", {type: "submit", onclick: fn}, "Save"): attributes, listeners (on*),
// children. A false/null attribute is left out; true is an empty one.
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v as EventListener);
    else if (k === "value" && "value" in el) (el as HTMLInputElement).value = String(v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, ...children);
  return el;
}

export function append(el: Node, ...children: Child[]) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
}

let nextId = 0;
export function uid(prefix: string) {
  return `${prefix}-${++nextId}`;
}

// A labelled form field: the label's `for` names the control; a hint is tied to it
// with aria-describedby. `name` is the API field it edits (errors point back to it).
export function field(label: string, control: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement, hint?: string) {
  if (!control.id) control.id = uid("f");
  const wrap = h("div", { class: "field" }, h("label", { for: control.id }, label), control);
  if (hint) {
    const hid = uid("hint");
    control.setAttribute("aria-describedby", hid);
    wrap.appendChild(h("small", { id: hid, class: "hint" }, hint));
  }
  return wrap;
}

export function input(name: string, attrs: Attrs = {}) {
  return h("input", { name, type: "text", ...attrs });
}

export function select(name: string, options: (string | [string, string])[], attrs: Attrs = {}) {
  const s = h("select", { name, ...attrs });
  for (const o of options) {
    const [value, text] = typeof o === "string" ? [o, o] : o;
    s.appendChild(h("option", { value }, text));
  }
  return s;
}

// A table with a caption (its accessible name) and one header row.
export function table(caption: string, headers: string[], rows: Child[][]) {
  return h(
    "table",
    {},
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, ...headers.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, ...rows.map((r) => h("tr", {}, ...r.map((c) => h("td", {}, c))))),
  );
}

export function clear(el: HTMLElement) {
  while (el.firstChild) el.removeChild(el.firstChild);
}

// A live region for a form's outcome: errors are announced (role=alert).
export function statusArea() {
  return h("div", { class: "status", "aria-live": "polite" });
}

export function fmtTime(iso: string | null | undefined) {
  if (!iso) return "—";
  return iso.replace("T", " ").replace(/\.\d+Z$|Z$/, " UTC");
}

// Copies text; the button says whether it worked.
export function copyButton(text: () => string, label = "Copy") {
  const b = h("button", { type: "button", class: "secondary" }, label);
  b.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text());
      b.textContent = "Copied";
    } catch {
      b.textContent = "Select and copy by hand";
    }
    setTimeout(() => (b.textContent = label), 2000);
  });
  return b;
}
