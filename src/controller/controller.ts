// The proxy's loop, whatever the mode: source events -> ChangeTracker -> snapshot ->
// dataplane.sync (one at a time, coalesced: SyncRunner), with kube-proxy's health, sync
// metrics and network-programming latency, and the healthCheckNodePort listeners fed from
// each synced state. The CLI (cli/run.ts) parses flags and starts it; tests start it with a
// dataplane of their own.
import type { Logger } from 'pino';
import type { RunConfig } from '../config/run-config.js';
import { expandNodePortAddresses } from '../config/kube-proxy-config.js';
import { readInterfaceAddresses } from '../dataplane/iptables/setup.js';
import type { Dataplane } from '../dataplane/types.js';
import type { ProxierHealth } from '../health/proxier-health.js';
import { healthCheckAddresses, healthCheckServices } from '../health/service-health.js';
import { ServiceListeners } from '../health/service-listeners.js';
import { ipFamilyOf } from '../model/k8s.js';
import { ChangeTracker } from '../model/tracker.js';
import type { IPFamily, NodeFacts, NodeInfo, Source } from '../model/types.js';
import { KP, noLocalEndpoints } from '../observe/kube-proxy-metrics.js';
import type { Metrics } from '../observe/metrics.js';
import { changeTriggerTime } from '../source/kube/trim.js';
import { SyncRunner } from '../sync/runner.js';

/** A mode's dataplane and the families it serves. */
export interface BuiltDataplane { readonly dataplane: Dataplane; readonly families: IPFamily[] }

export interface ControllerOptions {
  readonly cfg: RunConfig;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly health: ProxierHealth;
  readonly source: Source;
  /** Builds the dataplane once the source has synced, for the node IPs then known (--node-ip,
   *  else the Node's). */
  readonly dataplane: (cfg: RunConfig) => BuiltDataplane;
}

/** kube-proxy's node IPs: the flags, else the Node object's first address of each family. */
export function effectiveNodeIPs(flags: readonly string[], node: NodeInfo | null): string[] {
  if (flags.length || !node) return [...flags];
  const v4 = node.addresses.find((a) => ipFamilyOf(a) === 'IPv4');
  const v6 = node.addresses.find((a) => ipFamilyOf(a) === 'IPv6');
  return [v4, v6].filter((a): a is string => a !== undefined);
}

export class Controller {
  private readonly tracker: ChangeTracker;
  private readonly runner: SyncRunner;
  private readonly healthChecks: ServiceListeners;
  private dataplane: Dataplane | null = null;
  private node: NodeFacts;
  private nodeInfo: NodeInfo | null = null;
  // Network programming latency starts at the EndpointSlice controller's trigger time when the
  // slice carries one (kube-proxy's definition), else when kube-xdp received the change.
  private firstChangeAt: number | null = null;
  private firstTriggerAt: number | null = null;
  private scan: NodeJS.Timeout | null = null;
  private markSynced: () => void = () => {};
  /** Resolves when the source has delivered its first complete view. */
  readonly sourceSynced = new Promise<void>((resolve) => (this.markSynced = resolve));

  constructor(private readonly o: ControllerOptions) {
    const { cfg, log, metrics, health } = o;
    this.node = { nodeName: cfg.proxy.nodeName, zone: null, ipFamilies: [] };
    this.healthChecks = new ServiceListeners({
      addresses: healthCheckAddresses(expandNodePortAddresses(cfg.proxy.nodePortAddresses, cfg.proxy.nodeIPs), readInterfaceAddresses()),
      proxyHealthy: () => health.isHealthy(), log, metrics,
    });
    this.tracker = new ChangeTracker({
      onInvalid: (p) => {
        log.warn({ kind: p.kind, namespace: p.namespace, name: p.name, field: p.field, value: p.value, action: p.action }, p.text);
        metrics.inc('kubexdp_invalid_objects_total', 'Objects or fields rejected from the source', { kind: p.kind, action: p.action });
      },
    });
    this.runner = new SyncRunner((full) => this.sync(full), { minPeriodMs: cfg.minSyncPeriodMs, syncPeriodMs: cfg.syncPeriodMs }, Date.now, {
      queued: () => {
        health.queued(this.node.ipFamilies);
        metrics.set(KP.syncProxyRulesLastQueuedTimestamp, Date.now() / 1000);
      },
      updated: () => health.updated(this.node.ipFamilies),
    });
  }

  private pendingChanges(): void {
    const p = this.tracker.pendingChanges();
    this.o.metrics.set(KP.serviceChangesPending, p.services);
    this.o.metrics.set(KP.endpointChangesPending, p.endpointSlices);
  }

  /** One sync: the tracker's snapshot into the dataplane (awaited: the event loop serves
   *  /healthz and /metrics meanwhile), then the health-check listeners, metrics and log. */
  private async sync(full: boolean): Promise<void> {
    const { log, metrics } = this.o;
    const dataplane = this.dataplane;
    if (!dataplane) return;
    const t0 = performance.now();
    const [changedAt, triggeredAt] = [this.firstChangeAt, this.firstTriggerAt];
    this.firstChangeAt = this.firstTriggerAt = null;
    try {
      const state = this.tracker.snapshot(this.node);
      this.pendingChanges();
      const noLocal = noLocalEndpoints(state, this.node.ipFamilies);
      metrics.set(KP.noLocalEndpoints, noLocal.internal, { traffic_policy: 'internal' });
      metrics.set(KP.noLocalEndpoints, noLocal.external, { traffic_policy: 'external' });
      const r = await dataplane.sync(state, { full });
      const ms = performance.now() - t0;
      const now = Date.now();
      // As kube-proxy: the listeners follow a state the dataplane took, never a failed one.
      void this.healthChecks.sync(healthCheckServices(state));
      metrics.inc('kubexdp_sync_total', 'Dataplane syncs', { result: 'ok' });
      metrics.observe(KP.syncProxyRulesDuration, ms / 1000);
      metrics.set(KP.syncProxyRulesLastTimestamp, now / 1000);
      const sinceChange = changedAt === null ? null : now - changedAt;
      const sinceTrigger = triggeredAt === null ? null : now - triggeredAt;
      const programming = sinceTrigger ?? sinceChange;
      if (programming !== null) metrics.observe(KP.networkProgrammingDuration, programming / 1000);
      log.info({ writes: r.writes, full, durationMs: Number(ms.toFixed(2)), sinceChangeMs: sinceChange, sinceTriggerMs: sinceTrigger, ...r.detail }, 'synced');
    } catch (err) {
      metrics.inc('kubexdp_sync_total', 'Dataplane syncs', { result: 'error' });
      // kube-proxy observes failed syncs' durations too
      metrics.observe(KP.syncProxyRulesDuration, (performance.now() - t0) / 1000);
      log.error({ err }, 'sync failed: the dataplane keeps its previous state; retrying');
      throw err;
    }
  }

  /** Starts reading the source; nothing is programmed before it has synced (program()). */
  async start(): Promise<void> {
    const { cfg, log, metrics, health } = this.o;
    await this.o.source.start({
      event: (e) => {
        if (log.isLevelEnabled('debug')) {
          const m = (e.object as { metadata?: { namespace?: string; name?: string } } | null)?.metadata;
          log.debug({ kind: e.kind, type: e.type, namespace: m?.namespace, name: m?.name }, 'object event');
        }
        metrics.inc(e.kind === 'Service' ? KP.serviceChangesTotal : KP.endpointChangesTotal);
        const changed = this.tracker.update(e);
        this.pendingChanges();
        if (changed) {
          this.firstChangeAt ??= Date.now();
          const trigger = e.kind === 'EndpointSlice' ? changeTriggerTime(e.object) : null;
          if (trigger !== null) this.firstTriggerAt = Math.min(this.firstTriggerAt ?? trigger, trigger);
          this.runner.request();
        }
      },
      node: (info) => {
        const before = this.nodeInfo;
        this.nodeInfo = info;
        health.setNode(info);
        log.info({ node: cfg.proxy.nodeName, zone: info?.zone ?? null, addresses: info?.addresses ?? [], taints: info?.taints ?? [],
          deletionTimestamp: info?.deletionTimestamp ?? null, eligible: health.nodeEligible }, info ? 'node facts' : 'own Node object not found');
        if (!this.dataplane) return;
        if (before && info && cfg.proxy.nodeIPs.length === 0 && before.addresses.join() !== info.addresses.join()) {
          // The dataplane was built for the old addresses; as kube-proxy does, a restart picks up new ones.
          metrics.inc('kubexdp_node_ip_changes_total', 'Node address changes seen after start (restart to apply)', {});
          log.warn({ before: before.addresses, after: info.addresses }, 'the Node\'s addresses changed: restart kube-xdp to use them');
        }
        this.node = { ...this.node, zone: info?.zone ?? null };
        this.runner.request();
      },
      synced: () => {
        this.tracker.markSynced();
        this.markSynced();
      },
      error: (err, context) => {
        metrics.inc('kubexdp_source_errors_total', 'Problems reading the source', {});
        log.warn({ context, err: err.message }, 'source problem: keeping the previous objects');
      },
    });
  }

  /** Once the source has synced: builds the dataplane and starts syncing. */
  program(): void {
    const { cfg, log } = this.o;
    const nodeIPs = effectiveNodeIPs(cfg.proxy.nodeIPs, this.nodeInfo);
    const proxy = { ...cfg.proxy, nodeIPs, nodePortAddresses: expandNodePortAddresses(cfg.proxy.nodePortAddresses, nodeIPs) };
    const built = this.o.dataplane({ ...cfg, proxy });
    this.dataplane = built.dataplane;
    this.node = { nodeName: cfg.proxy.nodeName, zone: this.nodeInfo?.zone ?? null, ipFamilies: built.families };
    log.info('source synced: programming the dataplane');
    this.runner.enable();
    this.scan = setInterval(() => {
      try {
        if (this.dataplane?.tick?.()) this.runner.request(true);
      } catch (err) {
        log.warn({ err }, 'periodic dataplane check failed');
      }
    }, cfg.interfaceScanPeriodMs);
  }

  /** Stops syncing (the running sync ends first) and reading; the dataplane stays programmed. */
  async stop(): Promise<void> {
    if (this.scan) clearInterval(this.scan);
    await this.runner.stop();
    await this.o.source.stop();
    this.healthChecks.closeAll();
    this.dataplane?.close();
  }
}
