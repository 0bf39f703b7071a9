// One scrolling list of chat lines (room or private), newest at the bottom.
import { el } from "./dom";

export type LineKind = "theirs" | "mine" | "notice";

/** Lines kept per list: a tab left open in a busy room must not grow without end. */
const MAX_LINES = 500;

export class MessageList {
  constructor(private readonly list: HTMLOListElement) {}

  add(kind: LineKind, text: string, who?: string): HTMLElement {
    // follow the conversation unless the reader scrolled up to read older lines
    const atBottom = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 40;
    const line = el("li", kind === "theirs" ? null : kind);
    if (who) line.append(el("span", "who", who));
    line.append(text);
    this.list.append(line);
    while (this.list.childElementCount > MAX_LINES) this.list.firstElementChild!.remove();
    if (atBottom) this.list.scrollTop = this.list.scrollHeight;
    return line;
  }

  /** A line of mine shown at once, settled by the server's answer to it. */
  addPending(text: string, who: string | undefined, sent: Promise<unknown>): void {
    const line = this.add("mine", text, who);
    line.classList.add("pending");
    sent.then(
      () => line.classList.remove("pending"),
      (err: unknown) => {
        line.classList.replace("pending", "failed");
        line.append(el("span", "who", `not sent: ${err instanceof Error ? err.message : String(err)}`));
      },
    );
  }

  clear(): void {
    this.list.replaceChildren();
  }
}
