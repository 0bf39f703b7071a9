// DOM helpers. Text only ever goes in through text nodes: user data is never parsed as HTML.

/** The element with this id; a missing one is a bug in index.html, so it throws. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`index.html has no #${id}`);
  return found as T;
}

/** A new element; string children become text nodes. */
export function el(tag: string, className: string | null, ...children: Array<string | Node>): HTMLElement {
  const node = document.createElement(tag);
  if (className) node.className = className;
  for (const c of children) node.append(typeof c === "string" ? document.createTextNode(c) : c);
  return node;
}

/** A form's submit, without the page navigating; the handler's rejection shows in `errorBox`. */
export function onSubmit(form: HTMLFormElement, errorBox: HTMLElement, handler: () => Promise<void>): void {
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void guarded(errorBox, handler);
  });
}

/** Run `action`, showing its failure in `errorBox` (cleared first). */
export async function guarded(errorBox: HTMLElement, action: () => Promise<void>): Promise<void> {
  errorBox.textContent = "";
  try {
    await action();
  } catch (err) {
    errorBox.textContent = err instanceof Error ? err.message : String(err);
  }
}

export function clock(ms: number): string {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}
