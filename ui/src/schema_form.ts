// Forms from JSON Schema: the option schemas of sources, pipeline steps and connector
// sinks (`bytefreezer plugins --schema`, GET /api/v1/plugins):
//   {"sources": {"<type>": <object schema>}, "steps": {"<kind>": <object schema>},
//    "sinks": {"<type>": <object schema>}}
// so a new plugin gets its form without UI code. Each property becomes a labelled
// control: string (enum: a select), integer/number (with its bounds), boolean (a
// checkbox), array of scalars (one per line), anything else JSON.
import { field, h, uid } from "./dom";

export interface JsonSchema {
  type?: string | string[];
  description?: string;
  title?: string;
  default?: unknown;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  additionalProperties?: boolean | JsonSchema;
  // Rules over several options (common/options.h, OptionConstraint): exactly one of
  // the keys, as a oneOf of {required: [key]} branches (several in allOf), and keys
  // set together or not at all, as dependentRequired.
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  dependentRequired?: Record<string, string[]>;
}
export interface PluginSchemas {
  sources: Record<string, JsonSchema>;
  steps: Record<string, JsonSchema>;
  sinks?: Record<string, JsonSchema>;  // connector sinks (docs/connectors.md)
}

// A value a user typed that does not fit the schema; `field` is the property.
export class FormValueError extends Error {
  constructor(
    public field: string,
    message: string,
  ) {
    super(message);
  }
}

function typeOf(s: JsonSchema): string {
  const t = Array.isArray(s.type) ? s.type.find((x) => x !== "null") : s.type;
  if (t) return t;
  if (s.enum) return "string";
  if (s.properties) return "object";
  return "json";
}

function quoted(keys: string[], conj: string): string {
  const q = keys.map((k) => `'${k}'`);
  return q.length < 2 ? q.join("") : `${q.slice(0, -1).join(", ")} ${conj} ${q[q.length - 1]}`;
}

// The first rule of `schema` (oneOf / allOf of oneOf, dependentRequired; nested
// object schemas for the object values in `value`) that `value` breaks, named by the
// first key involved (`prefix` + key), else null. Only oneOf branches that are
// {required: [key]} are understood: others are left to the server's check.
export function constraintError(schema: JsonSchema, value: Record<string, unknown>, prefix = ""): FormValueError | null {
  const isSet = (k: string) => value[k] !== undefined && value[k] !== null;
  const oneOfs = [schema.oneOf, ...(schema.allOf ?? []).map((s) => s.oneOf)].filter((o): o is JsonSchema[] => !!o);
  for (const branches of oneOfs) {
    const keys = branches.map((b) => (b.required?.length === 1 && Object.keys(b).length === 1 ? b.required[0] : null));
    if (keys.some((k) => k === null)) continue;
    const names = keys as string[];
    const set = names.filter(isSet);
    if (set.length === 1) continue;
    const full = names.map((k) => prefix + k);
    const why = set.length === 0 ? "none is set" : `${quoted(set.map((k) => prefix + k), "and")} are set`;
    return new FormValueError(prefix + (set[1] ?? names[0]), `Give exactly one of ${quoted(full, "or")} (${why})`);
  }
  for (const [key, needs] of Object.entries(schema.dependentRequired ?? {})) {
    if (!isSet(key)) continue;
    const missing = needs.filter((k) => !isSet(k));
    if (missing.length)
      return new FormValueError(
        prefix + missing[0],
        `${quoted([key, ...needs].map((k) => prefix + k), "and")} must be set together (${prefix + key} is set, ${quoted(missing.map((k) => prefix + k), "and")} ${missing.length === 1 ? "is" : "are"} not)`,
      );
  }
  for (const [key, prop] of Object.entries(schema.properties ?? {})) {
    const v = value[key];
    if (prop.properties && typeof v === "object" && v !== null && !Array.isArray(v)) {
      const err = constraintError(prop, v as Record<string, unknown>, `${prefix}${key}.`);
      if (err) return err;
    }
  }
  return null;
}

interface Control {
  name: string;
  read: () => unknown | undefined;  // undefined: left empty (the plugin's default applies)
}

// A fieldset of controls for `schema`; value() returns the options set (throws
// FormValueError naming the field). `initial` fills the controls (editing).
export function schemaForm(legend: string, schema: JsonSchema, initial: Record<string, unknown> = {}) {
  const fieldset = h("fieldset", { class: "schema-form" }, h("legend", {}, legend));
  if (schema.description) fieldset.appendChild(h("p", { class: "hint" }, schema.description));
  const required = new Set(schema.required ?? []);
  const controls: Control[] = [];
  for (const [name, prop] of Object.entries(schema.properties ?? {})) {
    const c = control(name, prop, required.has(name), initial[name]);
    fieldset.appendChild(c.el);
    controls.push(c);
  }
  // A schema open to more options (or one that lists none yet) takes the rest as JSON.
  let extra: HTMLTextAreaElement | null = null;
  if (!schema.properties || Object.keys(schema.properties).length === 0 || schema.additionalProperties === true) {
    const known = new Set(Object.keys(schema.properties ?? {}));
    const rest = Object.fromEntries(Object.entries(initial).filter(([k]) => !known.has(k)));
    extra = h("textarea", { name: "_options", rows: "3", "data-field": "_options", spellcheck: "false" });
    extra.value = Object.keys(rest).length ? JSON.stringify(rest, null, 2) : "";
    fieldset.appendChild(field("Other options (JSON object)", extra, 'e.g. {"listen": "0.0.0.0:5514"}'));
  }
  const value = () => {
    const out: Record<string, unknown> = {};
    if (extra && extra.value.trim()) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(extra.value);
      } catch (e) {
        throw new FormValueError("_options", `Other options: not JSON (${(e as Error).message})`);
      }
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
        throw new FormValueError("_options", "Other options: must be a JSON object");
      Object.assign(out, parsed);
    }
    for (const c of controls) {
      const v = c.read();
      if (v !== undefined) out[c.name] = v;
      else if (required.has(c.name)) throw new FormValueError(c.name, `${c.name}: is required`);
    }
    const broken = constraintError(schema, out);
    if (broken) throw broken;
    return out;
  };
  return { el: fieldset, value };
}

function control(name: string, s: JsonSchema, required: boolean, initial: unknown): Control & { el: HTMLElement } {
  const t = typeOf(s);
  const label = (s.title ?? name) + (required ? " (required)" : "");
  const hintParts = [s.description, s.default !== undefined ? `Default: ${JSON.stringify(s.default)}` : ""];
  if (s.minimum !== undefined || s.maximum !== undefined)
    hintParts.push(`Range: ${s.minimum ?? "…"} to ${s.maximum ?? "…"}`);
  const hint = hintParts.filter(Boolean).join(". ");
  const common = { name, "data-field": name, required };

  if (s.enum) {
    const sel = h("select", common);
    if (!required) sel.appendChild(h("option", { value: "" }, s.default !== undefined ? `(default: ${s.default})` : "(not set)"));
    for (const v of s.enum) sel.appendChild(h("option", { value: JSON.stringify(v) }, String(v)));
    if (initial !== undefined) sel.value = JSON.stringify(initial);
    return { name, el: field(label, sel, hint), read: () => (sel.value === "" ? undefined : JSON.parse(sel.value)) };
  }
  if (t === "boolean") {
    const box = h("input", { ...common, type: "checkbox", required: false });
    box.checked = initial !== undefined ? Boolean(initial) : Boolean(s.default);
    const id = uid("f");
    box.id = id;
    const wrap = h("div", { class: "field checkbox" }, box, h("label", { for: id }, label));
    if (hint) {
      const hid = uid("hint");
      box.setAttribute("aria-describedby", hid);
      wrap.appendChild(h("small", { id: hid, class: "hint" }, hint));
    }
    // Only a change from the default is written.
    return { name, el: wrap, read: () => (box.checked === Boolean(s.default) && initial === undefined ? undefined : box.checked) };
  }
  if (t === "integer" || t === "number") {
    const inp = h("input", {
      ...common,
      type: "number",
      step: t === "integer" ? "1" : "any",
      min: s.minimum,
      max: s.maximum,
      placeholder: s.default !== undefined ? String(s.default) : false,
    });
    if (initial !== undefined) inp.value = String(initial);
    return {
      name,
      el: field(label, inp, hint),
      read: () => {
        if (inp.value.trim() === "") return undefined;
        const n = Number(inp.value);
        if (!Number.isFinite(n) || (t === "integer" && !Number.isInteger(n))) throw new FormValueError(name, `${name}: must be ${t === "integer" ? "an integer" : "a number"}`);
        if (s.minimum !== undefined && n < s.minimum) throw new FormValueError(name, `${name}: must be at least ${s.minimum}`);
        if (s.maximum !== undefined && n > s.maximum) throw new FormValueError(name, `${name}: must be at most ${s.maximum}`);
        return n;
      },
    };
  }
  if (t === "string") {
    const inp = h("input", { ...common, type: "text", placeholder: s.default !== undefined ? String(s.default) : false });
    if (initial !== undefined) inp.value = String(initial);
    return { name, el: field(label, inp, hint), read: () => (inp.value === "" ? undefined : inp.value) };
  }
  if (t === "array" && s.items && ["string", "integer", "number"].includes(typeOf(s.items))) {
    const area = h("textarea", { ...common, rows: "3" });
    if (Array.isArray(initial)) area.value = initial.join("\n");
    const itemType = typeOf(s.items);
    return {
      name,
      el: field(label, area, [hint, "One per line."].filter(Boolean).join(". ")),
      read: () => {
        const lines = area.value.split("\n").map((l) => l.trim()).filter(Boolean);
        if (!lines.length) return undefined;
        if (itemType === "string") return lines;
        return lines.map((l) => {
          const n = Number(l);
          if (!Number.isFinite(n)) throw new FormValueError(name, `${name}: '${l}' is not a number`);
          return n;
        });
      },
    };
  }
  const area = h("textarea", { ...common, rows: "3", spellcheck: "false" });
  if (initial !== undefined) area.value = JSON.stringify(initial, null, 2);
  return {
    name,
    el: field(label + " (JSON)", area, hint),
    read: () => {
      if (area.value.trim() === "") return undefined;
      try {
        return JSON.parse(area.value);
      } catch (e) {
        throw new FormValueError(name, `${name}: not JSON (${(e as Error).message})`);
      }
    },
  };
}
