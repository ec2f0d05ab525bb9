// A bounded-frequency runner like kube-proxy's: requests are coalesced, two syncs are at least
// minPeriod apart, a full sync happens every syncPeriod, a failed sync is retried with backoff.
// Nothing runs before enable() (the source has synced): no dataplane write from a partial view.

export interface RunnerOptions {
  readonly minPeriodMs: number;
  readonly syncPeriodMs: number;
  readonly retryMs?: number;
}

export type SyncFn = (full: boolean) => void;

/** Told when a change starts waiting for a sync and when a sync has applied everything
 *  (kube-proxy's QueuedUpdate / Updated, for the proxier's health). */
export interface SyncObserver {
  queued(): void;
  updated(): void;
}

export class SyncRunner {
  private enabled = false;
  private timer: NodeJS.Timeout | null = null;
  private periodic: NodeJS.Timeout | null = null;
  private lastRun = 0;
  private wantFull = false;
  private failures = 0;

  constructor(
    private readonly fn: SyncFn,
    private readonly opts: RunnerOptions,
    private readonly now: () => number = Date.now,
    private readonly observer: SyncObserver | null = null,
  ) {}

  /** Allows syncs from now on and runs the first one (the whole state is then a queued change). */
  enable(): void {
    if (this.enabled) return;
    this.enabled = true;
    this.periodic = setInterval(() => this.schedule(true), this.opts.syncPeriodMs);
    this.periodic.unref();
    this.request();
  }

  /** A change to apply (before enable(): nothing to do, the first sync will see it). */
  request(full = false): void {
    if (this.enabled) this.observer?.queued();
    this.schedule(full);
  }

  // The periodic resync is no change: as in kube-proxy, it does not count as queued.
  private schedule(full: boolean): void {
    this.wantFull ||= full;
    if (!this.enabled || this.timer) return;
    const wait = Math.max(0, this.lastRun + this.opts.minPeriodMs - this.now());
    this.timer = setTimeout(() => this.run(), wait);
  }

  private run(): void {
    this.timer = null;
    this.lastRun = this.now();
    const full = this.wantFull;
    this.wantFull = false;
    try {
      this.fn(full);
      this.failures = 0;
      this.observer?.updated();
    } catch {
      // The sync function logs its own error; retry with exponential backoff, re-reading the
      // kernel. What it failed to apply is queued, so a periodic sync that keeps failing also
      // turns the proxy unhealthy in time.
      this.observer?.queued();
      this.failures++;
      this.wantFull = true;
      const retry = Math.min((this.opts.retryMs ?? 1000) * 2 ** (this.failures - 1), 60_000);
      this.timer = setTimeout(() => this.run(), retry);
    }
  }

  stop(): void {
    this.enabled = false;
    if (this.timer) clearTimeout(this.timer);
    if (this.periodic) clearInterval(this.periodic);
    this.timer = this.periodic = null;
  }
}
