// `kube-xdp run` (and kube-proxy's command line): flags and config, the logger, the mode, the
// source, /metrics and /healthz; then the controller (controller/controller.ts) until a signal.
import { writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import { runConfig, type RunConfig } from '../config/run-config.js';
import { Controller } from '../controller/controller.js';
import { DATAPLANES } from '../controller/dataplanes.js';
import { ProxierHealth } from '../health/proxier-health.js';
import type { Source } from '../model/types.js';
import { serveObservability } from '../observe/http.js';
import { registerKubeProxyMetrics } from '../observe/kube-proxy-metrics.js';
import { createLogger } from '../observe/log.js';
import { Metrics } from '../observe/metrics.js';
import { FileSource } from '../source/file-source.js';
import { cleanupNode } from './cleanup.js';
import { resolveMode, type ConcreteMode } from './mode.js';

async function makeSource(cfg: RunConfig, mode: ConcreteMode, metrics: Metrics, log: Logger): Promise<Source> {
  const src = cfg.source;
  if (src.kind === 'file') return new FileSource(src.path);
  // Loaded only when used: @kubernetes/client-node is most of the install and of the start time.
  const [{ loadKubeConfig }, { KubeSource }] = await Promise.all([import('../source/kube/kubeconfig.js'), import('../source/kube/kube-source.js')]);
  const { kc, origin } = loadKubeConfig({ kubeconfig: src.kubeconfig, apiServer: src.apiServer });
  log.info({ apiServer: kc.getCurrentCluster()?.server, credentials: origin }, 'watching the Kubernetes API');
  return new KubeSource(kc, {
    nodeName: cfg.proxy.nodeName, requestTimeoutMs: src.requestTimeoutMs, inactivityMs: src.inactivityMs,
    relistPeriodMs: src.relistPeriodMs, backoff: { baseMs: 500, maxMs: src.maxBackoffMs }, serviceCIDRs: mode === 'nftables',
  }, metrics);
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
  const source = await makeSource(cfg, mode, metrics, log);
  const controller = new Controller({
    cfg, log, metrics, health, source,
    dataplane: (c) => DATAPLANES[mode](c, log, metrics, checks.find((x) => x.mode === mode)!),
  });
  await controller.start();
  const first = await Promise.race([controller.sourceSynced.then(() => null), stopped]);
  if (first === null) controller.program();
  const signal = first ?? (await stopped);
  log.info({ signal }, 'stopping: the dataplane stays programmed (kube-xdp cleanup removes it)');
  await controller.stop();
  for (const s of servers) s.close();
}
