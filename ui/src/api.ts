// The control API (/api/v1, docs/control.md): JSON in and out, the session cookie
// carries the login. Errors become ApiError with the API's field name.
export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public field?: string,
  ) {
    super(message);
  }
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

let onUnauthenticated: () => void = () => {};
export function setUnauthenticatedHandler(fn: () => void) {
  onUnauthenticated = fn;
}

export async function api<T = any>(method: string, path: string, body?: unknown): Promise<T> {
  const init: RequestInit = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    (init.headers as Record<string, string>)["Content-Type"] = "application/json";
  }
  let res: Response;
  try {
    res = await fetch("/api/v1" + path, init);
  } catch {
    throw new ApiError(0, "network", "Control cannot be reached. Check that it is running, then try again.");
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let data: any = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON: reported below */
  }
  if (!res.ok) {
    if (res.status === 401 && path !== "/auth/login") onUnauthenticated();
    const msg = data?.message ?? data?.error ?? `HTTP ${res.status}`;
    throw new ApiError(res.status, data?.error ?? "error", msg, data?.field ?? undefined);
  }
  return data as T;
}

// Every page of a list (the UI's lists are small: metadata only).
export async function listAll<T>(path: string, max = 2000): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | null = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const page: Page<T> = await api("GET", `${path}${sep}limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    out.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && out.length < max);
  return out;
}

export interface Me {
  kind: string;
  id: string;
  role: string;
  account: string | null;
  email: string | null;
}
export interface Account {
  id: string;
  name: string;
  created: string;
}
export interface Tenant {
  account: string;
  id: string;
  name: string;
  created: string;
}
export interface Dataset {
  account: string;
  tenant: string;
  id: string;
  name: string;
  paused: boolean;
  settings: any;
  created: string;
  updated: string;
}
export interface Connector {
  account: string;
  tenant: string;
  id: string;
  name: string;
  sink: string;
  query: string;
  schedule: string;
  settings: Record<string, unknown>;
  paused: boolean;
  created: string;
  updated: string;
}
export interface ApiKey {
  id: string;
  name: string;
  role: string;
  account: string | null;
  tenant: string | null;
  dataset: string | null;
  service: string | null;
  created: string;
  last_used: string | null;
  revoked: string | null;
  key?: string;
}
export interface User {
  id: string;
  email: string;
  name: string;
  role: string;
  account: string | null;
  disabled: boolean;
  created: string;
}
export interface AuditEntry {
  seq: number;
  time: string;
  actor: string;
  action: string;
  target: string;
  account: string | null;
  before: unknown;
  after: unknown;
}
export interface HealthComponent {
  id: string;
  service: string;
  instance: string;
  version: string;
  status: string;
  reported_status: string;
  last_seen: string;
  events_per_second: number;
  events_total: number | null;
  lag_seconds: number | null;
  spool_depth: number | null;
  errors: number;
}
export interface HealthPoint {
  time: string;
  events_per_second: number;
  events_total: number | null;
  lag_seconds: number | null;
  spool_depth: number | null;
  errors: number;
}

export const enc = encodeURIComponent;
