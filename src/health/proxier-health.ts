// kube-proxy's proxier health (pkg/proxy/healthcheck/proxy_health.go): a change queued for the
// dataplane and not applied within the timeout (kube-proxy: 2 × syncPeriod) makes the proxy
// unhealthy, per address family; /healthz also fails while the Node is not eligible (being
// deleted, or tainted by the cluster autoscaler), /livez ignores the Node. Time is injected.
import type { IPFamily, NodeInfo } from '../model/types.js';
import { goTime, JSON_HEADERS, type HttpAnswer } from './answer.js';

/** The cluster autoscaler's taint on a node it is about to delete. */
export const TO_BE_DELETED_TAINT = 'ToBeDeletedByClusterAutoscaler';

/** kube-proxy's NodeEligible. A Node that was deleted (null) is not eligible; without a Node
 *  source (the file source) ProxierHealth never hears of one and stays eligible. */
export function nodeEligible(node: NodeInfo | null): boolean {
  return node !== null && node.deletionTimestamp === null && !node.taints.includes(TO_BE_DELETED_TAINT);
}

interface FamilyState { lastUpdated: number | null; oldestQueued: number | null }

export interface HealthReport {
  readonly healthy: boolean;
  /** The most recent update of any family; null: none yet. */
  readonly lastUpdated: number | null;
  readonly currentTime: number;
  readonly status: ReadonlyMap<IPFamily, { lastUpdated: number | null; healthy: boolean }>;
}

export class ProxierHealth {
  private readonly families = new Map<IPFamily, FamilyState>();
  private eligible = true;

  constructor(private readonly timeoutMs: number, private readonly now: () => number = Date.now) {}

  private state(family: IPFamily): FamilyState {
    let s = this.families.get(family);
    if (!s) this.families.set(family, (s = { lastUpdated: null, oldestQueued: null }));
    return s;
  }

  /** A change waits for the dataplane (kube-proxy's QueuedUpdate): the oldest one counts. */
  queued(families: readonly IPFamily[]): void {
    for (const f of families) this.state(f).oldestQueued ??= this.now();
  }

  /** Everything queued so far is applied (kube-proxy's Updated). */
  updated(families: readonly IPFamily[]): void {
    for (const f of families) Object.assign(this.state(f), { lastUpdated: this.now(), oldestQueued: null });
  }

  setNode(node: NodeInfo | null): void {
    this.eligible = nodeEligible(node);
  }

  get nodeEligible(): boolean {
    return this.eligible;
  }

  report(): HealthReport {
    const currentTime = this.now();
    const status = new Map<IPFamily, { lastUpdated: number | null; healthy: boolean }>();
    let lastUpdated: number | null = null;
    for (const [family, s] of [...this.families].sort(([a], [b]) => a.localeCompare(b))) {
      if (s.lastUpdated !== null && (lastUpdated === null || s.lastUpdated > lastUpdated)) lastUpdated = s.lastUpdated;
      status.set(family, { lastUpdated: s.lastUpdated, healthy: s.oldestQueued === null || currentTime - s.oldestQueued < this.timeoutMs });
    }
    return { healthy: [...status.values()].every((s) => s.healthy), lastUpdated, currentTime, status };
  }

  isHealthy(): boolean {
    return this.report().healthy;
  }
}

/** kube-proxy's /healthz: 503 when a family is late or the Node is not eligible. */
export function healthzAnswer(h: ProxierHealth): HttpAnswer {
  return answer(h.report(), h.nodeEligible);
}

/** kube-proxy's /livez: the same without the Node (a node being drained is not a dead proxy). */
export function livezAnswer(h: ProxierHealth): HttpAnswer {
  return answer(h.report(), null);
}

function answer(r: HealthReport, nodeEligible: boolean | null): HttpAnswer {
  const healthy = r.healthy && nodeEligible !== false;
  // As kube-proxy does for older clients: a healthy answer's lastUpdated is "now".
  const body = {
    lastUpdated: goTime(healthy ? r.currentTime : r.lastUpdated),
    currentTime: goTime(r.currentTime),
    ...(nodeEligible === null ? {} : { nodeEligible }),
    healthy: r.healthy,
    ...(r.status.size === 0 ? {} : {
      status: Object.fromEntries([...r.status].map(([f, s]) => [f, { lastUpdated: goTime(s.lastUpdated), healthy: s.healthy }])),
    }),
  };
  return { status: healthy ? 200 : 503, headers: JSON_HEADERS, body: JSON.stringify(body) };
}
