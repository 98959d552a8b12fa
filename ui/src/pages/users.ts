// Users: list, create, disable/enable, delete.
import { api, enc, listAll, User } from "../api";
import { clear, field, fmtTime, h, input, select, statusArea, table } from "../dom";
import { onSubmit, showError, showOk, str } from "../forms";
import type { Ctx } from "../main";

export async function usersPage({ main, me }: Ctx) {
  document.title = "Users — ByteFreezer";
  main.appendChild(h("h1", {}, "Users"));
  const listStatus = statusArea();
  const holder = h("div", {});
  const act = (label: string, fn: () => Promise<void>) => {
    const b = h("button", { type: "button", class: "secondary", "aria-label": label }, label.split(" ")[0]);
    b.addEventListener("click", async () => {
      try {
        await fn();
        await renderList();
      } catch (e) {
        showError(listStatus, null, e);
      }
    });
    return b;
  };
  const renderList = async () => {
    const users = await listAll<User>("/users");
    clear(holder);
    holder.appendChild(
      table(
        "Users",
        ["Email", "Name", "Role", "Account", "State", "Created", ""],
        users.map((u) => [
          u.email,
          u.name,
          u.role,
          u.account ?? "—",
          u.disabled ? "disabled" : "active",
          fmtTime(u.created),
          h(
            "span",
            { class: "actions" },
            act(`${u.disabled ? "Enable" : "Disable"} user ${u.email}`, () => api("PATCH", `/users/${enc(u.id)}`, { disabled: !u.disabled })),
            " ",
            act(`Delete user ${u.email}`, async () => {
              if (confirm(`Delete user ${u.email}?`)) await api("DELETE", `/users/${enc(u.id)}`);
            }),
          ),
        ]),
      ),
    );
  };
  await renderList();
  main.appendChild(holder);
  main.appendChild(listStatus);

  const status = statusArea();
  const roles = me.role === "system_admin" ? ["account_viewer", "account_admin", "system_admin"] : ["account_viewer", "account_admin"];
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "new-user" },
    h("h2", { id: "new-user" }, "New user"),
    field("Email", input("email", { type: "email", required: true, autocomplete: "off", "data-field": "user.email" })),
    field("Name", input("name", { "data-field": "user.name" })),
    field("Role", select("role", roles, { "data-field": "user.role" })),
    field("Account", input("account", { value: me.account ?? "", "data-field": "user.account" }), "Required for account roles; empty for system_admin."),
    field("Password", input("password", { type: "password", required: true, minlength: "12", autocomplete: "new-password", "data-field": "user.password" }), "12 characters or more."),
    status,
    h("button", { type: "submit" }, "Create user"),
  );
  onSubmit(form, status, async (d) => {
    const body: Record<string, string> = { email: str(d, "email"), role: str(d, "role"), password: String(d.get("password") ?? "") };
    for (const f of ["name", "account"]) if (str(d, f)) body[f] = str(d, f);
    const u = await api<User>("POST", "/users", body);
    form.reset();
    showOk(status, `User ${u.email} created.`);
    await renderList();
  });
  main.appendChild(form);
}
