// Id allocation, first-in-first-out: a released id goes to the back of the queue, so it is
// reused as late as possible and a stale conntrack entry cannot land on a recycled id.

/** Ids are u32 map keys, not indices: their range is not a map's size (admission, in
 * capacity.ts, keeps the entries within max_entries). */
export const MAX_ID = 0xffffffff;

export class IdAllocator {
  private next: number;
  private readonly free: number[];

  /** `used`: ids found in the maps (after a restart); ids below the highest used one that
   * are not in use are queued in ascending order. Ids start at 1 (0 means "none"). */
  /** `what` names the ids in errors, e.g. "kx_backends ids". */
  constructor(readonly max: number, used: Iterable<number> = [], readonly what = 'ids') {
    const taken = new Set(used);
    let top = 0;
    for (const id of taken) top = Math.max(top, id);
    this.next = top + 1;
    this.free = [];
    for (let id = 1; id < top; id++) if (!taken.has(id)) this.free.push(id);
  }

  allocate(): number {
    if (this.next <= this.max) return this.next++;
    const id = this.free.shift();
    // Admission (capacity.ts) keeps every map within its limit, so this is a bug if it happens.
    if (id === undefined) throw new Error(`all ${this.max} ${this.what} are in use`);
    return id;
  }

  release(id: number): void {
    this.free.push(id);
  }

  clone(): IdAllocator {
    const c = Object.create(IdAllocator.prototype) as IdAllocator;
    Object.assign(c, { max: this.max, what: this.what, next: this.next, free: [...this.free] });
    return c;
  }

  get inUse(): number {
    return this.next - 1 - this.free.length;
  }
}
