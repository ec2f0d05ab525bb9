// What every dataplane mode offers the sync loop and the CLI (DESIGN.md §1).
import type { ProxyState } from '../model/types.js';

export interface SyncResult {
  /** Kernel objects written (map entries, rules) by this sync. */
  readonly writes: number;
  readonly detail: Readonly<Record<string, unknown>>;
}

export interface Dataplane {
  /** Programs the kernel for `state`; `full` re-reads the kernel first instead of trusting memory.
   *  Long work is asynchronous (a restore of every rule), so /healthz and /metrics keep
   *  answering; the caller runs one sync at a time (SyncRunner). */
  sync(state: ProxyState, opts?: { full?: boolean }): SyncResult | Promise<SyncResult>;
  /** What is programmed now, read back from the kernel. */
  describe(): unknown;
  /** Periodic housekeeping between syncs (new pod interfaces, say). Returns true when the
   *  kernel state was found changed behind kube-xdp's back and a full sync is due. */
  tick?(): boolean | void;
  /** Release process resources; the kernel state stays (use `kube-xdp cleanup` to remove it). */
  close(): void;
}
