/**
 * Status changes seen by this node, in order: work that started before a
 * change of its certificate (a load, a pending write, a refresh) compares a
 * mark taken at its start with it, and its result is not kept.
 */
export class Invalidations {
  private seq = 0;
  private clearedSeq = 0;
  /** `${issuerId}:${serialHex}` → the sequence number and time of its last change. */
  private readonly changed = new Map<string, { seq: number; atMs: number }>();
  #count = 0;

  /** Certificates invalidated since start. */
  get count(): number {
    return this.#count;
  }

  /** A mark to pass to `changedSince` later. */
  mark(): number {
    return this.seq;
  }

  /** Records that the status of certificate `id` (`${issuerId}:${serialHex}`) changed at `atMs`. */
  note(id: string, atMs: number): void {
    this.seq++;
    this.#count++;
    this.changed.set(id, { seq: this.seq, atMs });
  }

  /** Records that anything may have changed (the cache was cleared). */
  noteAll(): void {
    this.seq++;
    this.clearedSeq = this.seq;
  }

  /** True when certificate `id` changed, or everything was cleared, after `mark` was taken. */
  changedSince(id: string, mark: number): boolean {
    return this.clearedSeq > mark || (this.changed.get(id)?.seq ?? 0) > mark;
  }

  /** Forgets changes made before `ms` (no work that old is still running). */
  forgetBefore(ms: number): void {
    for (const [id, c] of this.changed) if (c.atMs < ms) this.changed.delete(id);
  }
}
