// `kube-xdp run`: source -> tracker -> snapshot -> dataplane.sync, with logs, metrics, healthz.
import { networkInterfaces } from 'node:os';
import type { Server } from 'node:http';
import { runConfig, type RunConfig } from '../config/run-config.js';
import type { Logger } from 'pino';
import { EbpfDataplane } from '../dataplane/ebpf/dataplane.js';
import { IptablesDataplane } from '../dataplane/iptables/dataplane.js';
import { iptablesConfigs, proxyFamilies, readHostFacts } from '../dataplane/iptables/setup.js';
import type { Dataplane } from '../dataplane/types.js';
import { Iptables, detectBackend } from '../kernel/iptables.js';
import { Libkx } from '../kernel/libkx.js';
import { ChangeTracker } from '../model/tracker.js';
import type { IPFamily, NodeFacts } from '../model/types.js';
import { serveObservability } from '../observe/http.js';
import { createLogger } from '../observe/log.js';
import { Metrics } from '../observe/metrics.js';
import { FileSource } from '../source/file-source.js';
import { SyncRunner } from '../sync/runner.js';

/** eBPF mode: the IPv4 addresses NodePorts answer on: explicit --node-ip, else the external interfaces'. */
export function nodeAddresses(cfg: Pick<RunConfig, 'proxy' | 'externalInterfaces'>): string[] {
  if (cfg.proxy.nodeIPs.length) return [...cfg.proxy.nodeIPs];
  const ifs = networkInterfaces();
  return cfg.externalInterfaces.flatMap((name) => (ifs[name] ?? []).filter((a) => a.family === 'IPv4').map((a) => a.address));
}

function ebpfDataplane(cfg: RunConfig, log: Logger, metrics: Metrics): { dataplane: Dataplane; families: IPFamily[] } {
  const addresses = nodeAddresses(cfg);
  if (addresses.length === 0) throw new Error(`no IPv4 address on ${cfg.externalInterfaces.join(', ')}: give --node-ip`);
  log.info({ node: cfg.proxy.nodeName, nodeAddresses: addresses, pinDir: cfg.pinDir, source: cfg.source }, 'starting kube-xdp (eBPF mode)');
  const dataplane = new EbpfDataplane(new Libkx(), log, metrics, {
    objectPath: cfg.objectPath, pinDir: cfg.pinDir, externalInterfaces: cfg.externalInterfaces,
    podInterfaces: cfg.podInterfaces, xdpMode: cfg.xdpMode, tcMode: cfg.tcMode, nodeAddresses: addresses,
  });
  dataplane.start();
  return { dataplane, families: ['IPv4'] };
}

function iptablesDataplane(cfg: RunConfig, log: Logger, metrics: Metrics): { dataplane: Dataplane; families: IPFamily[] } {
  const detected = cfg.iptablesBackend === 'auto' ? detectBackend() : { backend: cfg.iptablesBackend, reason: '--iptables-backend' };
  const families = proxyFamilies(cfg.proxy);
  const host = readHostFacts(new Iptables('IPv4', detected.backend));
  const configs = iptablesConfigs(cfg.proxy, families, host);
  log.info({ node: cfg.proxy.nodeName, backend: detected.backend, backendReason: detected.reason, families, source: cfg.source,
    configs: configs.map(({ localAddresses: _, ...c }) => c) }, 'starting kube-xdp (iptables mode)');
  const dataplane = new IptablesDataplane({ families: configs, backend: detected.backend, staleChainScanPeriodMs: cfg.syncPeriodMs }, log, metrics);
  return { dataplane, families };
}

export async function run(argv: string[]): Promise<void> {
  const cfg = runConfig(argv);
  const log = createLogger(cfg.logLevel);
  const metrics = new Metrics();
  const { dataplane, families } = cfg.proxy.mode === 'iptables' ? iptablesDataplane(cfg, log, metrics) : ebpfDataplane(cfg, log, metrics);
  const node: NodeFacts = { nodeName: cfg.proxy.nodeName, zone: null, ipFamilies: families };

  const tracker = new ChangeTracker({
    onInvalid: (p) => {
      log.warn({ kind: p.kind, namespace: p.namespace, name: p.name, field: p.field, value: p.value, action: p.action }, p.text);
      metrics.inc('kubexdp_invalid_objects_total', 'Objects or fields rejected from the source', { kind: p.kind, action: p.action });
    },
  });
  let firstChangeAt: number | null = null;
  const health = { lastSyncOk: false, lastSyncAt: null as Date | null };
  const runner = new SyncRunner((full) => {
    const t0 = performance.now();
    const changedAt = firstChangeAt;
    firstChangeAt = null;
    try {
      const r = dataplane.sync(tracker.snapshot(node), { full });
      const ms = performance.now() - t0;
      health.lastSyncOk = true;
      health.lastSyncAt = new Date();
      metrics.inc('kubexdp_sync_total', 'Dataplane syncs', { result: 'ok' });
      metrics.set('kubexdp_sync_duration_seconds', 'Duration of the last sync', ms / 1000);
      const programming = changedAt === null ? null : Date.now() - changedAt;
      if (programming !== null) metrics.set('kubexdp_network_programming_duration_seconds', 'Source change to dataplane write, last sync', programming / 1000);
      log.info({ writes: r.writes, full, durationMs: Number(ms.toFixed(2)), sinceChangeMs: programming, ...r.detail }, 'synced');
    } catch (err) {
      health.lastSyncOk = false;
      metrics.inc('kubexdp_sync_total', 'Dataplane syncs', { result: 'error' });
      log.error({ err }, 'sync failed: the dataplane keeps its previous state; retrying');
      throw err;
    }
  }, { minPeriodMs: cfg.minSyncPeriodMs, syncPeriodMs: cfg.syncPeriodMs });

  const source = new FileSource(cfg.source.path);
  await source.start({
    event: (e) => {
      if (tracker.update(e)) {
        firstChangeAt ??= Date.now();
        runner.request();
      }
    },
    synced: () => {
      tracker.markSynced();
      log.info('source synced: programming the dataplane');
      runner.enable();
    },
    error: (err, context) => {
      metrics.inc('kubexdp_source_errors_total', 'Problems reading the source', {});
      log.warn({ context, err: err.message }, 'source problem: keeping the previous objects');
    },
  });

  const scan = setInterval(() => {
    try {
      if (dataplane.tick?.()) runner.request(true);
    } catch (err) {
      log.warn({ err }, 'periodic dataplane check failed');
    }
  }, cfg.interfaceScanPeriodMs);
  let server: Server | null = null;
  if (cfg.metricsBindAddress) {
    // As in kube-proxy, a metrics endpoint that cannot bind is logged, not fatal: the
    // dataplane matters more than its observability.
    server = await serveObservability(cfg.metricsBindAddress, metrics, () => health).catch((err: Error) => {
      log.error({ bind: cfg.metricsBindAddress, err: err.message }, 'metrics/healthz server not started');
      return null;
    });
  }

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'stopping: the dataplane stays programmed (kube-xdp cleanup removes it)');
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  clearInterval(scan);
  runner.stop();
  await source.stop();
  server?.close();
  dataplane.close();
}
