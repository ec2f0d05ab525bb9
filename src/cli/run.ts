// `kube-xdp run`: source -> tracker -> snapshot -> dataplane.sync, with logs, metrics, healthz
// and the healthCheckNodePort listeners (mode-independent: fed from each sync's state).
import { writeFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Server } from 'node:http';
import { expandNodePortAddresses } from '../config/kube-proxy-config.js';
import { runConfig, type RunConfig } from '../config/run-config.js';
import { cleanupNode } from './cleanup.js';
import type { Logger } from 'pino';
import { EbpfDataplane } from '../dataplane/ebpf/dataplane.js';
import { cgroup2Mount } from '../kernel/mounts.js';
import { IDLE_IPV6_FLOW_ENTRIES, sizesFor } from '../dataplane/ebpf/map-sizes.js';
import { IptablesDataplane } from '../dataplane/iptables/dataplane.js';
import { iptablesConfigs, proxyFamilies, readHostFacts, readInterfaceAddresses } from '../dataplane/iptables/setup.js';
import { IpvsDataplane } from '../dataplane/ipvs/dataplane.js';
import { ipvsConfigs, readNodeAddresses } from '../dataplane/ipvs/setup.js';
import type { Dataplane } from '../dataplane/types.js';
import { Iptables, detectBackend } from '../kernel/iptables.js';
import { Libkx } from '../kernel/libkx.js';
import { ChangeTracker } from '../model/tracker.js';
import type { IPFamily, NodeFacts, NodeInfo, Source } from '../model/types.js';
import { ipFamilyOf } from '../model/k8s.js';
import { changeTriggerTime } from '../source/kube/trim.js';
import { ProxierHealth } from '../health/proxier-health.js';
import { healthCheckAddresses, healthCheckServices } from '../health/service-health.js';
import { ServiceListeners } from '../health/service-listeners.js';
import { serveObservability } from '../observe/http.js';
import { createLogger } from '../observe/log.js';
import { Metrics } from '../observe/metrics.js';
import { KP, noLocalEndpoints, registerKubeProxyMetrics } from '../observe/kube-proxy-metrics.js';
import { FileSource } from '../source/file-source.js';
import { SyncRunner } from '../sync/runner.js';
import { resolveMode, type ConcreteMode, type ModeCheck } from './mode.js';

/** eBPF mode: the addresses NodePorts answer on, per family: --node-ip or the Node's, else the
 *  external interfaces' (IPv6 link-local ones never: a NodePort is not served on fe80::/10). */
export function nodeAddresses(cfg: Pick<RunConfig, 'proxy' | 'externalInterfaces'>): string[] {
  const ifs = networkInterfaces();
  const ofInterfaces = (family: 'IPv4' | 'IPv6') => cfg.externalInterfaces.flatMap((name) => (ifs[name] ?? [])
    .filter((a) => a.family === family && !(family === 'IPv6' && /^fe[89ab]/i.test(a.address))).map((a) => a.address));
  return (['IPv4', 'IPv6'] as const).flatMap((family) => {
    const given = cfg.proxy.nodeIPs.filter((ip) => (family === 'IPv4') === isIPv4(ip));
    return given.length > 0 ? given : ofInterfaces(family);
  });
}

/** --cgroup-root, else the cgroup2 mount's root; null: no socket hooks (host-network clients
 *  are then not served, as without kube-proxy). */
function socketHookCgroup(cfg: RunConfig, log: Logger): string | null {
  if (cfg.cgroupRoot === '') return null;
  const root = cfg.cgroupRoot ?? cgroup2Mount();
  if (root === null) log.warn('no cgroup v2 mount in /proc/mounts: socket hooks off, host-network clients cannot reach Services (mount cgroup2 or give --cgroup-root)');
  return root;
}

function ebpfDataplane(cfg: RunConfig, log: Logger, metrics: Metrics, check: ModeCheck): { dataplane: Dataplane; families: IPFamily[] } {
  const addresses = nodeAddresses(cfg);
  if (addresses.length === 0) throw new Error(`no IP address on ${cfg.externalInterfaces.join(', ')}: give --node-ip`);
  log.info({ node: cfg.proxy.nodeName, nodeAddresses: addresses, pinDir: cfg.pinDir, source: cfg.source }, 'starting kube-xdp (eBPF mode)');
  const ipv6 = addresses.some((ip) => !isIPv4(ip));
  const mapSizes = sizesFor(cfg.mapSizes, { ipv6 });
  if (!ipv6) log.info({ entries: IDLE_IPV6_FLOW_ENTRIES }, 'no IPv6 node address: IPv6 conntrack and affinity maps at their idle size unless --bpf-map-sizes sets them');
  const dataplane = new EbpfDataplane(new Libkx(), log, metrics, {
    objectPath: cfg.objectPath, pinDir: cfg.pinDir, externalInterfaces: cfg.externalInterfaces,
    podInterfaces: cfg.podInterfaces, xdpMode: cfg.xdpMode, tcMode: cfg.tcMode, nodeAddresses: addresses,
    nodePortAddresses: cfg.proxy.nodePortAddresses, clusterCIDRs: cfg.proxy.clusterCIDRs,
    masqueradeAll: cfg.proxy.masqueradeAll, masqueradeLocalEndpoints: cfg.proxy.masqueradeLocalEndpoints, fibForward: cfg.proxy.fibForward,
    localhostNodePorts: cfg.proxy.localhostNodePorts, mapSizes, cgroupRoot: socketHookCgroup(cfg, log),
    ...(check.probe ? { probe: check.probe } : {}),
  });
  dataplane.start();
  return { dataplane, families: ['IPv4', 'IPv6'] };
}

/** What both iptables-using modes start from: the backend (--iptables-backend or detected), the
 *  families, and the host's facts read through that backend. */
function iptablesFacts(cfg: RunConfig) {
  const detected = cfg.iptablesBackend === 'auto' ? detectBackend() : { backend: cfg.iptablesBackend, reason: '--iptables-backend' };
  return { detected, families: proxyFamilies(cfg.proxy), host: readHostFacts(new Iptables('IPv4', detected.backend)) };
}

function iptablesDataplane(cfg: RunConfig, log: Logger, metrics: Metrics): { dataplane: Dataplane; families: IPFamily[] } {
  const { detected, families, host } = iptablesFacts(cfg);
  const configs = iptablesConfigs(cfg.proxy, families, host);
  log.info({ node: cfg.proxy.nodeName, backend: detected.backend, backendReason: detected.reason, families, source: cfg.source,
    configs: configs.map(({ localAddresses: _, ...c }) => c) }, 'starting kube-xdp (iptables mode)');
  const dataplane = new IptablesDataplane({ families: configs, backend: detected.backend, staleChainScanPeriodMs: cfg.syncPeriodMs }, log, metrics);
  return { dataplane, families };
}

function ipvsDataplane(cfg: RunConfig, log: Logger, metrics: Metrics): { dataplane: Dataplane; families: IPFamily[] } {
  const { detected, families, host } = iptablesFacts(cfg);
  const configs = ipvsConfigs(cfg.proxy, families, host, readNodeAddresses());
  log.info({ node: cfg.proxy.nodeName, backend: detected.backend, backendReason: detected.reason, families, source: cfg.source,
    ipvs: cfg.proxy.ipvs, configs: configs.map(({ nodeAddresses: _, ...c }) => c) }, 'starting kube-xdp (IPVS mode)');
  const dataplane = new IpvsDataplane({
    families: configs, backend: detected.backend, ipvs: cfg.proxy.ipvs, drainCheckPeriodMs: cfg.ipvsDrainCheckPeriodMs,
  }, log, metrics);
  return { dataplane, families };
}

const DATAPLANES: Record<ConcreteMode, typeof ebpfDataplane> = { ebpf: ebpfDataplane, iptables: iptablesDataplane, ipvs: ipvsDataplane };

async function makeSource(cfg: RunConfig, metrics: Metrics, log: Logger): Promise<Source> {
  const src = cfg.source;
  if (src.kind === 'file') return new FileSource(src.path);
  // Loaded only when used: @kubernetes/client-node is most of the install and of the start time.
  const [{ loadKubeConfig }, { KubeSource }] = await Promise.all([import('../source/kube/kubeconfig.js'), import('../source/kube/kube-source.js')]);
  const { kc, origin } = loadKubeConfig({ kubeconfig: src.kubeconfig, apiServer: src.apiServer });
  log.info({ apiServer: kc.getCurrentCluster()?.server, credentials: origin }, 'watching the Kubernetes API');
  return new KubeSource(kc, {
    nodeName: cfg.proxy.nodeName, requestTimeoutMs: src.requestTimeoutMs, inactivityMs: src.inactivityMs,
    relistPeriodMs: src.relistPeriodMs, backoff: { baseMs: 500, maxMs: src.maxBackoffMs },
  }, metrics);
}

/** kube-proxy's node IPs: the flags, else the Node object's first address of each family. */
export function effectiveNodeIPs(flags: readonly string[], node: NodeInfo | null): string[] {
  if (flags.length || !node) return [...flags];
  const v4 = node.addresses.find((a) => ipFamilyOf(a) === 'IPv4');
  const v6 = node.addresses.find((a) => ipFamilyOf(a) === 'IPv6');
  return [v4, v6].filter((a): a is string => a !== undefined);
}

async function serve(cfg: RunConfig, metrics: Metrics, health: ProxierHealth, log: Logger): Promise<Server[]> {
  const binds = new Map<string, { metrics: boolean; health: boolean }>();
  if (cfg.metricsBindAddress) binds.set(cfg.metricsBindAddress, { metrics: true, health: true });
  if (cfg.healthzBindAddress) binds.set(cfg.healthzBindAddress, { metrics: binds.has(cfg.healthzBindAddress), health: true });
  const servers: Server[] = [];
  for (const [bind, what] of binds) {
    // As in kube-proxy, an endpoint that cannot bind is logged, not fatal: the dataplane
    // matters more than its observability.
    const server = await serveObservability(bind, metrics, what.metrics, what.health ? health : null).catch((err: Error) => {
      log.error({ bind, err: err.message }, 'metrics/healthz server not started');
      return null;
    });
    if (server) servers.push(server);
  }
  return servers;
}

export async function run(argv: string[]): Promise<void> {
  const cfg = runConfig(argv);
  const log = createLogger(cfg.logLevel, cfg.logFormat);
  for (const w of cfg.warnings) log.warn(w);
  if (cfg.cleanup) return cleanupNode(cfg.pinDir, [...cfg.podInterfaces], log);
  if (cfg.oomScoreAdj !== null) {
    // As kube-proxy: the node's OOM killer should take nearly anything before the proxy.
    try {
      writeFileSync('/proc/self/oom_score_adj', String(cfg.oomScoreAdj));
    } catch (err) {
      log.warn({ oomScoreAdj: cfg.oomScoreAdj, err: (err as Error).message }, 'cannot set oom_score_adj');
    }
  }
  // Before anything else: a node that cannot run the asked-for mode fails now, with the reason.
  const { mode, checks } = resolveMode(cfg);
  if (cfg.proxy.mode === 'auto') {
    log.info({ mode, checks: Object.fromEntries(checks.map((c) => [c.mode, c.unusable ?? 'usable'])) }, `--mode auto chose ${mode}`);
  }
  const metrics = new Metrics();
  registerKubeProxyMetrics(metrics, mode);
  const stopped = new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  // kube-proxy's health timeout: a queued change not applied within two sync periods.
  const health = new ProxierHealth(2 * cfg.syncPeriodMs);
  const servers = await serve(cfg, metrics, health, log);
  const healthChecks = new ServiceListeners({
    addresses: healthCheckAddresses(expandNodePortAddresses(cfg.proxy.nodePortAddresses, cfg.proxy.nodeIPs), readInterfaceAddresses()),
    proxyHealthy: () => health.isHealthy(), log, metrics,
  });

  const tracker = new ChangeTracker({
    onInvalid: (p) => {
      log.warn({ kind: p.kind, namespace: p.namespace, name: p.name, field: p.field, value: p.value, action: p.action }, p.text);
      metrics.inc('kubexdp_invalid_objects_total', 'Objects or fields rejected from the source', { kind: p.kind, action: p.action });
    },
  });
  let dataplane: Dataplane | null = null;
  let node: NodeFacts = { nodeName: cfg.proxy.nodeName, zone: null, ipFamilies: [] };
  let nodeInfo: NodeInfo | null = null;
  // Network programming latency starts at the EndpointSlice controller's trigger time when the
  // slice carries one (kube-proxy's definition), else when kube-xdp received the change.
  let firstChangeAt: number | null = null;
  let firstTriggerAt: number | null = null;
  const pendingChanges = () => {
    const p = tracker.pendingChanges();
    metrics.set(KP.serviceChangesPending, p.services);
    metrics.set(KP.endpointChangesPending, p.endpointSlices);
  };
  const runner = new SyncRunner((full) => {
    if (!dataplane) return;
    const t0 = performance.now();
    const [changedAt, triggeredAt] = [firstChangeAt, firstTriggerAt];
    firstChangeAt = firstTriggerAt = null;
    try {
      const state = tracker.snapshot(node);
      pendingChanges();
      const noLocal = noLocalEndpoints(state, node.ipFamilies);
      metrics.set(KP.noLocalEndpoints, noLocal.internal, { traffic_policy: 'internal' });
      metrics.set(KP.noLocalEndpoints, noLocal.external, { traffic_policy: 'external' });
      const r = dataplane.sync(state, { full });
      const ms = performance.now() - t0;
      const now = Date.now();
      // As kube-proxy: the listeners follow a state the dataplane took, never a failed one.
      void healthChecks.sync(healthCheckServices(state));
      metrics.inc('kubexdp_sync_total', 'Dataplane syncs', { result: 'ok' });
      metrics.observe(KP.syncProxyRulesDuration, ms / 1000);
      metrics.set(KP.syncProxyRulesLastTimestamp, now / 1000);
      const sinceChange = changedAt === null ? null : now - changedAt;
      const sinceTrigger = triggeredAt === null ? null : now - triggeredAt;
      const programming = sinceTrigger ?? sinceChange;
      if (programming !== null) {
        metrics.observe(KP.networkProgrammingDuration, programming / 1000);
      }
      log.info({ writes: r.writes, full, durationMs: Number(ms.toFixed(2)), sinceChangeMs: sinceChange, sinceTriggerMs: sinceTrigger, ...r.detail }, 'synced');
    } catch (err) {
      metrics.inc('kubexdp_sync_total', 'Dataplane syncs', { result: 'error' });
      // kube-proxy observes failed syncs' durations too
      metrics.observe(KP.syncProxyRulesDuration, (performance.now() - t0) / 1000);
      log.error({ err }, 'sync failed: the dataplane keeps its previous state; retrying');
      throw err;
    }
  }, { minPeriodMs: cfg.minSyncPeriodMs, syncPeriodMs: cfg.syncPeriodMs }, Date.now, {
    queued: () => {
      health.queued(node.ipFamilies);
      metrics.set(KP.syncProxyRulesLastQueuedTimestamp, Date.now() / 1000);
    },
    updated: () => health.updated(node.ipFamilies),
  });

  let markSynced = () => {};
  const synced = new Promise<void>((resolve) => (markSynced = resolve));
  const source = await makeSource(cfg, metrics, log);
  await source.start({
    event: (e) => {
      if (log.isLevelEnabled('debug')) {
        const m = (e.object as { metadata?: { namespace?: string; name?: string } } | null)?.metadata;
        log.debug({ kind: e.kind, type: e.type, namespace: m?.namespace, name: m?.name }, 'object event');
      }
      metrics.inc(e.kind === 'Service' ? KP.serviceChangesTotal : KP.endpointChangesTotal);
      const changed = tracker.update(e);
      pendingChanges();
      if (changed) {
        firstChangeAt ??= Date.now();
        const trigger = e.kind === 'EndpointSlice' ? changeTriggerTime(e.object) : null;
        if (trigger !== null) firstTriggerAt = Math.min(firstTriggerAt ?? trigger, trigger);
        runner.request();
      }
    },
    node: (info) => {
      const before = nodeInfo;
      nodeInfo = info;
      health.setNode(info);
      log.info({ node: cfg.proxy.nodeName, zone: info?.zone ?? null, addresses: info?.addresses ?? [], taints: info?.taints ?? [],
        deletionTimestamp: info?.deletionTimestamp ?? null, eligible: health.nodeEligible }, info ? 'node facts' : 'own Node object not found');
      if (!dataplane) return;
      if (before && info && cfg.proxy.nodeIPs.length === 0 && before.addresses.join() !== info.addresses.join()) {
        // The dataplane was built for the old addresses; as kube-proxy does, a restart picks up new ones.
        metrics.inc('kubexdp_node_ip_changes_total', 'Node address changes seen after start (restart to apply)', {});
        log.warn({ before: before.addresses, after: info.addresses }, 'the Node\'s addresses changed: restart kube-xdp to use them');
      }
      node = { ...node, zone: info?.zone ?? null };
      runner.request();
    },
    synced: () => {
      tracker.markSynced();
      markSynced();
    },
    error: (err, context) => {
      metrics.inc('kubexdp_source_errors_total', 'Problems reading the source', {});
      log.warn({ context, err: err.message }, 'source problem: keeping the previous objects');
    },
  });

  const first = await Promise.race([synced.then(() => null), stopped]);
  const seenNode = nodeInfo as NodeInfo | null; // set by the source's callback meanwhile
  let scan: NodeJS.Timeout | null = null;
  if (first === null) {
    const nodeIPs = effectiveNodeIPs(cfg.proxy.nodeIPs, seenNode);
    const proxy = { ...cfg.proxy, nodeIPs, nodePortAddresses: expandNodePortAddresses(cfg.proxy.nodePortAddresses, nodeIPs) };
    const built = DATAPLANES[mode]({ ...cfg, proxy }, log, metrics, checks.find((c) => c.mode === mode)!);
    dataplane = built.dataplane;
    node = { nodeName: cfg.proxy.nodeName, zone: seenNode?.zone ?? null, ipFamilies: built.families };
    log.info('source synced: programming the dataplane');
    runner.enable();
    scan = setInterval(() => {
      try {
        if (dataplane?.tick?.()) runner.request(true);
      } catch (err) {
        log.warn({ err }, 'periodic dataplane check failed');
      }
    }, cfg.interfaceScanPeriodMs);
  }
  const signal = first ?? (await stopped);
  log.info({ signal }, 'stopping: the dataplane stays programmed (kube-xdp cleanup removes it)');
  if (scan) clearInterval(scan);
  runner.stop();
  await source.stop();
  healthChecks.closeAll();
  for (const s of servers) s.close();
  dataplane?.close();
}
