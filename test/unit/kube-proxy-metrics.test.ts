// /metrics serves kube-proxy's metrics for the running mode, with kube-proxy's names, types and
// buckets, in text a strict Prometheus parser accepts; and the sources of the change and
// no-local-endpoint gauges agree with kube-proxy's definitions.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { ProxierHealth } from '../../src/health/proxier-health.js';
import { KP, noLocalEndpoints, registerKubeProxyMetrics, type ProxyMode } from '../../src/observe/kube-proxy-metrics.js';
import { serveObservability } from '../../src/observe/http.js';
import { Metrics } from '../../src/observe/metrics.js';
import { renderIptables } from '../../src/dataplane/iptables/render.js';
import { bucketBounds, parsePrometheusText, type FamilyType } from './helpers/prom-text.js';
import { makeEndpointSlice, makeService, objects } from './helpers/kube-objects.js';
import { FAKE_IPTABLES_CONFIG, TEST_HOSTNAME, internalTrafficPolicySlice, service, tcp } from './helpers/kube-proxy-fake.js';

// kube-proxy's metrics, from kubernetes pkg/proxy/metrics/metrics.go: RegisterMetrics(mode)
// registers these in every mode…
const CORE: Record<string, FamilyType> = {
  kubeproxy_sync_proxy_rules_duration_seconds: 'histogram',
  kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds: 'gauge',
  kubeproxy_sync_proxy_rules_last_timestamp_seconds: 'gauge',
  kubeproxy_sync_proxy_rules_endpoint_changes_pending: 'gauge',
  kubeproxy_sync_proxy_rules_endpoint_changes_total: 'counter',
  kubeproxy_sync_proxy_rules_service_changes_pending: 'gauge',
  kubeproxy_sync_proxy_rules_service_changes_total: 'counter',
  kubeproxy_proxy_healthz_total: 'counter',
  kubeproxy_proxy_livez_total: 'counter',
  kubeproxy_network_programming_duration_seconds: 'histogram',
  kubeproxy_sync_proxy_rules_no_local_endpoints_total: 'gauge',
};
// …these in the iptables mode (and kubeproxy_iptables_ct_state_invalid_dropped_packets_total,
// below)…
const IPTABLES: Record<string, FamilyType> = {
  ...CORE,
  kubeproxy_sync_full_proxy_rules_duration_seconds: 'histogram',
  kubeproxy_sync_partial_proxy_rules_duration_seconds: 'histogram',
  kubeproxy_sync_proxy_rules_iptables_restore_failures_total: 'counter',
  kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total: 'counter',
  kubeproxy_sync_proxy_rules_iptables_total: 'gauge',
  kubeproxy_sync_proxy_rules_iptables_last: 'gauge',
};
// …these in the nftables mode…
const NFTABLES: Record<string, FamilyType> = {
  ...CORE,
  kubeproxy_sync_full_proxy_rules_duration_seconds: 'histogram',
  kubeproxy_sync_partial_proxy_rules_duration_seconds: 'histogram',
  kubeproxy_sync_proxy_rules_nftables_sync_failures_total: 'counter',
  kubeproxy_sync_proxy_rules_nftables_cleanup_failures_total: 'counter',
};
// …this one in the IPVS mode; the eBPF mode is no kube-proxy mode: the core ones.
const IPVS: Record<string, FamilyType> = { ...CORE, kubeproxy_sync_proxy_rules_iptables_restore_failures_total: 'counter' };
const EXPECTED: Record<ProxyMode, Record<string, FamilyType>> = { iptables: IPTABLES, ipvs: IPVS, nftables: NFTABLES, ebpf: CORE };
/** kube-proxy's, not served: an nfacct counter of the INVALID drop rule, which kube-xdp's
 *  iptables rules do not count through nfacct (README, Metrics). */
const NOT_SERVED = ['kubeproxy_iptables_ct_state_invalid_dropped_packets_total'];

/** metrics.ExponentialBuckets(0.001, 2, 15) and the MergeBuckets of network programming (0 first). */
const SYNC_BUCKETS = [0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192, 16.384];
const linear = (start: number, width: number, n: number) => Array.from({ length: n }, (_, i) => start + width * i);
const PROGRAMMING_BUCKETS = [0, 0.25, 0.5, ...linear(1, 1, 59), ...linear(60, 5, 12), ...linear(120, 30, 7)];

/** prom-client's default process and Node.js metrics. */
const DEFAULTS: Record<string, FamilyType> = {
  process_cpu_seconds_total: 'counter', process_resident_memory_bytes: 'gauge', process_start_time_seconds: 'gauge',
  process_open_fds: 'gauge', nodejs_heap_size_used_bytes: 'gauge', nodejs_eventloop_lag_seconds: 'gauge',
};

describe('kube-proxy metrics on /metrics, per mode', () => {
  const closers: Array<() => void> = [];
  after(() => closers.forEach((c) => c()));

  for (const mode of ['iptables', 'ipvs', 'nftables', 'ebpf'] as const) {
    it(`${mode}: kube-proxy's metrics with kube-proxy's types and buckets, parsed strictly`, async () => {
      // As src/cli/run.ts: one Metrics, the mode's kube-proxy metrics registered before serving.
      const metrics = new Metrics();
      registerKubeProxyMetrics(metrics, mode);
      const health = new ProxierHealth(60_000);
      const server = await serveObservability('127.0.0.1:0', metrics, true, health);
      closers.push(() => server.close());
      const url = (p: string) => `http://127.0.0.1:${(server.address() as AddressInfo).port}${p}`;
      const healthz = await fetch(url('/healthz')).then(async (r) => (await r.text(), String(r.status)));
      const livez = await fetch(url('/livez')).then(async (r) => (await r.text(), String(r.status)));
      metrics.observe(KP.syncProxyRulesDuration, 0.0042);
      metrics.observe(KP.networkProgrammingDuration, 1.5);

      const res = await fetch(url('/metrics?x=1'));
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
      const families = parsePrometheusText(await res.text());

      for (const [name, type] of Object.entries({ ...EXPECTED[mode], ...DEFAULTS })) {
        assert.equal(families.get(name)?.type, type, `${name} served as a ${type}`);
        assert.ok(families.get(name)!.help, `${name} has its HELP`);
      }
      const others = Object.keys({ ...IPTABLES, ...IPVS }).filter((n) => !(n in EXPECTED[mode]));
      for (const name of [...others, ...NOT_SERVED]) assert.ok(!families.has(name), `${name} is not served in the ${mode} mode`);
      const kubeProxy = [...families.keys()].filter((n) => n.startsWith('kubeproxy_')).sort();
      assert.deepEqual(kubeProxy, Object.keys(EXPECTED[mode]).sort(), 'kube-proxy\'s names and no other kubeproxy_ ones');

      for (const name of Object.keys(EXPECTED[mode]).filter((n) => EXPECTED[mode][n] === 'histogram')) {
        const want = name === 'kubeproxy_network_programming_duration_seconds' ? PROGRAMMING_BUCKETS : SYNC_BUCKETS;
        assert.deepEqual(bucketBounds(families.get(name)!), want, `${name}: kube-proxy's buckets`);
      }
      const sync = families.get('kubeproxy_sync_proxy_rules_duration_seconds')!.samples;
      assert.equal(sync.find((s) => s.name.endsWith('_bucket') && s.labels.le === '0.004')?.value, 0);
      assert.equal(sync.find((s) => s.name.endsWith('_bucket') && s.labels.le === '0.008')?.value, 1);
      const codes = (name: string) => families.get(name)!.samples.map((s) => [s.labels.code, s.value]);
      assert.deepEqual(codes('kubeproxy_proxy_healthz_total'), [[healthz, 1]]);
      assert.deepEqual(codes('kubeproxy_proxy_livez_total'), [[livez, 1]]);
      assert.equal(families.get('kubeproxy_sync_proxy_rules_service_changes_total')!.samples[0]?.value, 0, 'unlabelled counters start at 0');
    });
  }

  it('two Metrics do not share series (a registry each)', async () => {
    const a = new Metrics(), b = new Metrics();
    registerKubeProxyMetrics(a, 'ebpf');
    registerKubeProxyMetrics(b, 'ebpf');
    a.inc(KP.serviceChangesTotal);
    assert.equal(a.get(KP.serviceChangesTotal.name), 1);
    assert.equal(b.get(KP.serviceChangesTotal.name), 0);
    assert.match(await b.render(), /^kubeproxy_sync_proxy_rules_service_changes_total 0$/m);
  });

  it('the strict parser refuses what Prometheus refuses', () => {
    const bad = [
      'x 1\n', // no TYPE before the sample
      '# TYPE x counter\nx{a="1} 1\n',
      '# TYPE x counter\n# TYPE x counter\nx 1\n',
      '# some comment\n',
      '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n', // not cumulative
      '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n', // no +Inf
      '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 1\n', // +Inf is not _count
      '# TYPE x gauge\nx 1', // no final newline
    ];
    for (const text of bad) assert.throws(() => parsePrometheusText(text), Error, JSON.stringify(text));
    const ok = parsePrometheusText('# HELP x a \\\\ b\n# TYPE x gauge\nx{a="q\\"\\n"} -1.5e3\n\n');
    assert.deepEqual(ok.get('x'), { name: 'x', type: 'gauge', help: 'a \\ b', samples: [{ name: 'x', labels: { a: 'q"\n' }, value: -1500 }] });
  });
});

describe('sources of kube-proxy\'s gauges', () => {
  it('pending changes: Services and EndpointSlices changed since the last snapshot, undone changes not counted', () => {
    const svc = makeService('ns', 'web', (s) => Object.assign(s.spec, { clusterIP: '10.96.0.10', ports: [{ port: 80, protocol: 'TCP' }] }));
    const slice = makeEndpointSlice('ns', 'web', 1, (s) => {
      s.endpoints = [{ addresses: ['10.244.0.5'], conditions: { ready: true } }];
      s.ports = [{ port: 8080, protocol: 'TCP' }];
    });
    const o = objects();
    assert.deepEqual(o.tracker.pendingChanges(), { services: 0, endpointSlices: 0 });
    o.apply(svc, slice);
    assert.deepEqual(o.tracker.pendingChanges(), { services: 1, endpointSlices: 1 });
    o.state();
    assert.deepEqual(o.tracker.pendingChanges(), { services: 0, endpointSlices: 0 });
    o.remove(slice);
    assert.deepEqual(o.tracker.pendingChanges(), { services: 0, endpointSlices: 1 });
    o.apply(slice); // undone
    assert.deepEqual(o.tracker.pendingChanges(), { services: 0, endpointSlices: 0 });
  });

  it('no local endpoints: kube-proxy\'s TestNoEndpointsMetric cases, as the iptables renderer counts them', () => {
    const cases: Array<{ itp?: 'Local'; etp?: 'Local'; nodes: string[]; internal: number; external: number }> = [
      { itp: 'Local', nodes: [TEST_HOSTNAME, 'host1', 'host2'], internal: 0, external: 0 },
      { etp: 'Local', nodes: [TEST_HOSTNAME, 'host1', 'host2'], internal: 0, external: 0 },
      { itp: 'Local', nodes: ['host0', 'host1', 'host2'], internal: 1, external: 0 },
      { etp: 'Local', nodes: ['host0', 'host1', 'host2'], internal: 0, external: 1 },
      { itp: 'Local', etp: 'Local', nodes: ['host0', 'host1', 'host2'], internal: 1, external: 1 },
      { itp: 'Local', etp: 'Local', nodes: [], internal: 0, external: 0 },
    ];
    for (const c of cases) {
      const svc = service('ns1', 'svc1', {
        clusterIP: '172.30.1.1', selector: { foo: 'bar' }, ports: [tcp('', 80, { nodePort: 123 })],
        ...(c.itp ? { internalTrafficPolicy: c.itp } : {}),
        ...(c.etp ? { type: 'NodePort', externalTrafficPolicy: c.etp } : {}),
      });
      const state = objects(svc, internalTrafficPolicySlice(c.nodes)).state();
      const want = { internal: c.internal, external: c.external };
      assert.deepEqual(noLocalEndpoints(state, ['IPv4']), want, JSON.stringify(c));
      assert.deepEqual(renderIptables(state, FAKE_IPTABLES_CONFIG).noLocalEndpoints, want, JSON.stringify(c));
    }
  });
});
