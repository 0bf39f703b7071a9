// De-duplication by msgId with bounded memory (PROTOCOL.md: clients de-duplicate by msgId).

/** Remembers the last `capacity` ids; older ones are forgotten, so memory never grows past that. */
export class RecentIds {
  private readonly ids = new Set<string>();

  constructor(private readonly capacity: number) {}

  /** True when `id` was not among the remembered ids; it is remembered from now on. */
  add(id: string): boolean {
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    // a Set iterates in insertion order: the first value is the oldest id
    if (this.ids.size > this.capacity) this.ids.delete(this.ids.values().next().value as string);
    return true;
  }
}
