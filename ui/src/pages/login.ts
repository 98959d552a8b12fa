import { api, Me } from "../api";
import { field, h, input, statusArea } from "../dom";
import { onSubmit, str } from "../forms";

export async function loginPage(main: HTMLElement, done: (me: Me) => Promise<void>) {
  document.title = "Log in — ByteFreezer";
  const status = statusArea();
  const form = h(
    "form",
    { class: "card narrow", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, "Log in"),
    field("Email", input("email", { type: "email", autocomplete: "username", required: true, "data-field": "login.email" })),
    field("Password", input("password", { type: "password", autocomplete: "current-password", required: true, "data-field": "login.password" })),
    status,
    h("button", { type: "submit" }, "Log in"),
  );
  onSubmit(form, status, async (data) => {
    await api("POST", "/auth/login", { email: str(data, "email"), password: String(data.get("password") ?? "") });
    await done(await api<Me>("GET", "/auth/me"));
  });
  main.appendChild(form);
  main.appendChild(
    h(
      "p",
      { class: "hint narrow" },
      "No user yet? Create the first admin with ",
      h("code", {}, "bytefreezer control create-admin --email you@example.com"),
      " or start with BYTEFREEZER_ADMIN_EMAIL and BYTEFREEZER_ADMIN_PASSWORD set.",
    ),
  );
  form.querySelector<HTMLInputElement>("input")!.focus();
}
