// Form submission with clear errors: the API's message is shown in the form's status
// area (announced), and the field it names is marked invalid and focused.
import { ApiError } from "./api";
import { clear, h } from "./dom";

export function showError(status: HTMLElement, form: HTMLElement | null, err: unknown) {
  clear(status);
  const src = err as { message?: string; field?: string };
  const e = err instanceof ApiError ? err : new ApiError(0, "error", String(src?.message ?? err), src?.field);
  const fieldLabel = e.field ? ` (field: ${e.field})` : "";
  status.appendChild(h("p", { role: "alert", class: "error" }, `${e.message}${fieldLabel}`));
  if (!form || !e.field) return;
  // `dataset.settings.pipeline` → the control with that data-field, else the
  // nearest enclosing one (`dataset.settings`), else name="pipeline".
  const parts = e.field.split(".");
  let el: HTMLElement | null = null;
  for (let n = parts.length; n > 0 && !el; n--)
    el = form.querySelector<HTMLElement>(`[data-field="${CSS.escape(parts.slice(0, n).join("."))}"]`);
  el ??= form.querySelector<HTMLElement>(`[name="${CSS.escape(parts[parts.length - 1])}"]`);
  if (el) {
    el.setAttribute("aria-invalid", "true");
    el.focus();
  }
}

export function showOk(status: HTMLElement, message: string) {
  clear(status);
  status.appendChild(h("p", { class: "ok" }, message));
}

export function onSubmit(form: HTMLFormElement, status: HTMLElement, action: (data: FormData) => Promise<void>) {
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const button = form.querySelector<HTMLButtonElement>("button[type=submit]");
    form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
    clear(status);
    if (button) button.disabled = true;
    try {
      await action(new FormData(form));
    } catch (err) {
      showError(status, form, err);
    } finally {
      if (button) button.disabled = false;
    }
  });
}

export function str(data: FormData, name: string) {
  return String(data.get(name) ?? "").trim();
}
