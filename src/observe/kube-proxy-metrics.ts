// kube-proxy's metrics (kubernetes pkg/proxy/metrics/metrics.go, RegisterMetrics(mode)): names,
// help texts, label names and buckets as kube-proxy defines them, and which modes serve which.
// kube-proxy metrics kube-xdp has no honest source for are not defined here (README, Metrics).
import { familyView } from '../model/family.js';
import type { IPFamily, ProxyState } from '../model/types.js';
import type { MetricDef, Metrics } from './metrics.js';

export type ProxyMode = 'iptables' | 'ipvs' | 'nftables' | 'ebpf';

/** prometheus.ExponentialBuckets(start, factor, count) */
const exponential = (start: number, factor: number, count: number) => Array.from({ length: count }, (_, i) => start * factor ** i);
/** prometheus.LinearBuckets(start, width, count) */
const linear = (start: number, width: number, count: number) => Array.from({ length: count }, (_, i) => start + width * i);

const SYNC_BUCKETS = exponential(0.001, 2, 15);

const def = (name: string, type: MetricDef['type'], help: string, more: Partial<MetricDef> = {}): MetricDef =>
  ({ name: `kubeproxy_${name}`, type, help, labelNames: [], ...more });

export const KP = {
  syncProxyRulesDuration: def('sync_proxy_rules_duration_seconds', 'histogram', 'SyncProxyRules latency in seconds', { buckets: SYNC_BUCKETS }),
  syncFullProxyRulesDuration: def('sync_full_proxy_rules_duration_seconds', 'histogram', 'SyncProxyRules latency in seconds for full resyncs', { buckets: SYNC_BUCKETS }),
  syncPartialProxyRulesDuration: def('sync_partial_proxy_rules_duration_seconds', 'histogram', 'SyncProxyRules latency in seconds for partial resyncs', { buckets: SYNC_BUCKETS }),
  syncProxyRulesLastTimestamp: def('sync_proxy_rules_last_timestamp_seconds', 'gauge', 'The last time proxy rules were successfully synced'),
  // MergeBuckets starts with a 0 bucket.
  networkProgrammingDuration: def('network_programming_duration_seconds', 'histogram', 'In Cluster Network Programming Latency in seconds', {
    buckets: [0, ...linear(0.25, 0.25, 2), ...linear(1, 1, 59), ...linear(60, 5, 12), ...linear(120, 30, 7)],
  }),
  endpointChangesPending: def('sync_proxy_rules_endpoint_changes_pending', 'gauge', 'Pending proxy rules Endpoint changes'),
  endpointChangesTotal: def('sync_proxy_rules_endpoint_changes_total', 'counter', 'Cumulative proxy rules Endpoint changes'),
  serviceChangesPending: def('sync_proxy_rules_service_changes_pending', 'gauge', 'Pending proxy rules Service changes'),
  serviceChangesTotal: def('sync_proxy_rules_service_changes_total', 'counter', 'Cumulative proxy rules Service changes'),
  iptablesRestoreFailures: def('sync_proxy_rules_iptables_restore_failures_total', 'counter', 'Cumulative proxy iptables restore failures'),
  iptablesPartialRestoreFailures: def('sync_proxy_rules_iptables_partial_restore_failures_total', 'counter', 'Cumulative proxy iptables partial restore failures'),
  iptablesRulesTotal: def('sync_proxy_rules_iptables_total', 'gauge', 'Total number of iptables rules owned by kube-proxy', { labelNames: ['table'] }),
  iptablesRulesLastSync: def('sync_proxy_rules_iptables_last', 'gauge', 'Number of iptables rules written by kube-proxy in last sync', { labelNames: ['table'] }),
  nftablesSyncFailures: def('sync_proxy_rules_nftables_sync_failures_total', 'counter', 'Cumulative proxy nftables sync failures'),
  nftablesCleanupFailures: def('sync_proxy_rules_nftables_cleanup_failures_total', 'counter', 'Cumulative proxy nftables cleanup failures'),
  proxyHealthz: def('proxy_healthz_total', 'counter', 'Cumulative proxy healthz HTTP status', { labelNames: ['code'] }),
  proxyLivez: def('proxy_livez_total', 'counter', 'Cumulative proxy livez HTTP status', { labelNames: ['code'] }),
  syncProxyRulesLastQueuedTimestamp: def('sync_proxy_rules_last_queued_timestamp_seconds', 'gauge', 'The last time a sync of proxy rules was queued'),
  noLocalEndpoints: def('sync_proxy_rules_no_local_endpoints_total', 'gauge', 'Number of services with a Local traffic policy and no endpoints', { labelNames: ['traffic_policy'] }),
} as const satisfies Record<string, MetricDef>;

/** What RegisterMetrics(mode) registers in kube-proxy: the core metrics in every mode, then the
 *  mode's own. The eBPF mode is no kube-proxy mode: it serves the core ones. */
export function kubeProxyMetricsFor(mode: ProxyMode): MetricDef[] {
  const core = [KP.syncProxyRulesDuration, KP.syncProxyRulesLastQueuedTimestamp, KP.syncProxyRulesLastTimestamp,
    KP.endpointChangesPending, KP.endpointChangesTotal, KP.serviceChangesPending, KP.serviceChangesTotal,
    KP.proxyHealthz, KP.proxyLivez, KP.networkProgrammingDuration, KP.noLocalEndpoints];
  if (mode === 'iptables') {
    return [...core, KP.syncFullProxyRulesDuration, KP.syncPartialProxyRulesDuration, KP.iptablesRestoreFailures,
      KP.iptablesPartialRestoreFailures, KP.iptablesRulesTotal, KP.iptablesRulesLastSync];
  }
  if (mode === 'nftables') {
    return [...core, KP.syncFullProxyRulesDuration, KP.syncPartialProxyRulesDuration, KP.nftablesSyncFailures, KP.nftablesCleanupFailures];
  }
  if (mode === 'ipvs') return [...core, KP.iptablesRestoreFailures];
  return core;
}

/** Registers the mode's kube-proxy metrics on `metrics` (served from now on, as kube-proxy's). */
export function registerKubeProxyMetrics(metrics: Metrics, mode: ProxyMode): void {
  metrics.define(...kubeProxyMetricsFor(mode));
}

/** kube-proxy's serviceNoLocalEndpointsTotalInternal/External: service ports with endpoints but
 *  none on this node under a Local policy, counted per family as each family's proxier does
 *  (and summed: kube-proxy's gauge has no family label). */
export function noLocalEndpoints(state: ProxyState, families: readonly IPFamily[]): { internal: number; external: number } {
  const out = { internal: 0, external: 0 };
  for (const family of families) {
    for (const full of state.services) {
      const sp = familyView(full, family);
      if (!sp?.hasAnyEndpoints || sp.localEndpoints.length > 0) continue;
      if (sp.internalTrafficPolicy === 'Local') out.internal++;
      if (sp.externalTrafficPolicy === 'Local') out.external++;
    }
  }
  return out;
}
