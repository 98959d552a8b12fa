// API keys: list, create (the key is shown once), revoke.
import { api, ApiKey, enc, listAll } from "../api";
import { clear, copyButton, field, fmtTime, h, input, select, statusArea, table } from "../dom";
import { onSubmit, showError, str } from "../forms";
import type { Ctx } from "../main";

const roles = ["ingest", "query", "account_viewer", "account_admin", "service", "system_admin"];
const services = ["proxy", "receiver", "piper", "packer", "query", "connector"];

function scope(k: ApiKey) {
  return [k.account, k.tenant, k.dataset].filter(Boolean).join("/") || (k.service ? `service ${k.service}` : "all");
}

export async function keysPage({ main, me }: Ctx) {
  document.title = "API keys — ByteFreezer";
  main.appendChild(h("h1", {}, "API keys"));
  const listStatus = statusArea();
  const holder = h("div", {});
  const renderList = async () => {
    const keys = await listAll<ApiKey>("/keys");
    clear(holder);
    holder.appendChild(
      table(
        "API keys",
        ["Id", "Name", "Role", "Scope", "Created", "Last used", "State", ""],
        keys.map((k) => {
          let action: HTMLElement | string = "";
          if (!k.revoked) {
            const b = h("button", { type: "button", class: "secondary", "aria-label": `Revoke key ${k.id}` }, "Revoke");
            b.addEventListener("click", async () => {
              if (!confirm(`Revoke key ${k.id} (${k.name || k.role})? Clients using it stop working.`)) return;
              try {
                await api("DELETE", `/keys/${enc(k.id)}`);
                await renderList();
              } catch (e) {
                showError(listStatus, null, e);
              }
            });
            action = b;
          }
          return [h("code", {}, k.id), k.name, k.role, scope(k), fmtTime(k.created), fmtTime(k.last_used), k.revoked ? `revoked ${fmtTime(k.revoked)}` : "active", action];
        }),
      ),
    );
  };
  await renderList();
  main.appendChild(holder);
  main.appendChild(listStatus);

  const status = statusArea();
  const shown = h("div", { "aria-live": "polite" });
  const roleSel = select("role", roles, { "data-field": "key.role" });
  const serviceSel = select("service", [["", "(none)"], ...services.map((s) => [s, s] as [string, string])], { "data-field": "key.service" });
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "new-key" },
    h("h2", { id: "new-key" }, "New key"),
    field("Role", roleSel, "ingest: send to a tenant (or one dataset); query: query a tenant; service: a data-plane component."),
    field("Account", input("account", { value: me.account ?? "", "data-field": "key.account" }), "Not for system_admin and service keys."),
    field("Tenant", input("tenant", { "data-field": "key.tenant" }), "ingest and query keys."),
    field("Dataset", input("dataset", { "data-field": "key.dataset" }), "Optional, ingest keys only: limits the key to one dataset."),
    field("Service", serviceSel, "service keys only."),
    field("Name", input("name", { "data-field": "key.name" }), "A label to tell keys apart."),
    status,
    h("button", { type: "submit" }, "Create key"),
    shown,
  );
  onSubmit(form, status, async (d) => {
    const body: Record<string, string> = { role: str(d, "role") };
    for (const f of ["account", "tenant", "dataset", "service", "name"]) if (str(d, f)) body[f] = str(d, f);
    const k = await api<ApiKey>("POST", "/keys", body);
    clear(shown);
    shown.appendChild(
      h(
        "div",
        { class: "notice", role: "status" },
        h("p", {}, h("strong", {}, `Key ${k.id} created. Copy it now: it is shown only once.`)),
        h("p", {}, h("code", { class: "secret", "data-testid": "new-key" }, k.key!), " ", copyButton(() => k.key!, "Copy key")),
      ),
    );
    await renderList();
  });
  main.appendChild(form);
}
