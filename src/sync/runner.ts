// A bounded-frequency runner like kube-proxy's: requests are coalesced, two syncs start at
// least minPeriod apart, a full sync is asked for every syncPeriod, a failed sync is retried with
// backoff. One sync at a time: the sync function may be async (the event loop keeps serving
// /healthz and /metrics meanwhile), and what is requested while it runs (a change, the periodic
// full sync) is coalesced into the one run after it, so neither is lost nor run twice.
// Nothing runs before enable() (the source has synced): no dataplane write from a partial view.

export interface RunnerOptions {
  readonly minPeriodMs: number;
  readonly syncPeriodMs: number;
  readonly retryMs?: number;
}

export type SyncFn = (full: boolean) => void | Promise<void>;

/** Told when a change starts waiting for a sync and when a sync has applied everything
 *  (kube-proxy's QueuedUpdate / Updated, for the proxier's health). */
export interface SyncObserver {
  queued(): void;
  updated(): void;
}

const MAX_RETRY_MS = 60_000;

export class SyncRunner {
  private enabled = false;
  private timer: NodeJS.Timeout | null = null;
  private periodic: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private lastRun = -Infinity;
  /** A request (change or periodic) arrived since the last sync started; a change did. */
  private pending = false;
  private changed = false;
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
    this.changed = true;
    this.schedule(full);
  }

  /** Whether a sync is running now. */
  get busy(): boolean {
    return this.running !== null;
  }

  // The periodic resync is no change: as in kube-proxy, it does not count as queued.
  private schedule(full: boolean): void {
    this.wantFull ||= full;
    this.pending = true;
    // while a sync runs, its end schedules the next one
    if (!this.enabled || this.timer || this.running) return;
    const wait = Math.max(0, this.lastRun + this.opts.minPeriodMs - this.now());
    this.timer = setTimeout(() => void this.run(), wait);
  }

  private async run(): Promise<void> {
    this.timer = null;
    if (!this.enabled) return;
    this.lastRun = this.now();
    const full = this.wantFull;
    this.wantFull = this.pending = this.changed = false;
    let failed = false;
    this.running = (async () => {
      try {
        await this.fn(full);
      } catch {
        failed = true; // the sync function logs its own error
      }
    })();
    await this.running;
    this.running = null;
    if (failed) {
      // Retry with exponential backoff, re-reading the kernel. What it failed to apply is
      // queued, so a periodic sync that keeps failing also turns the proxy unhealthy in time.
      this.observer?.queued();
      this.failures++;
      this.wantFull = true;
      if (this.enabled) this.timer = setTimeout(() => void this.run(), Math.min((this.opts.retryMs ?? 1000) * 2 ** (this.failures - 1), MAX_RETRY_MS));
      return;
    }
    this.failures = 0;
    this.observer?.updated();
    // changes that arrived while it ran are not in what it applied
    if (this.changed) this.observer?.queued();
    if (this.pending) this.schedule(false);
  }

  /** No sync starts from now on; resolves when the one running (if any) has ended. */
  async stop(): Promise<void> {
    this.enabled = false;
    if (this.timer) clearTimeout(this.timer);
    if (this.periodic) clearInterval(this.periodic);
    this.timer = this.periodic = null;
    await this.running;
  }
}
