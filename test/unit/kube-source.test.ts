// The kubernetes source against the fake API server: what reaches the sink through lists,
// watches and every fault the supervisor must survive. Timings are short so faults resolve
// within a second; nothing here asserts a duration.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { FakeApiServer } from '../helpers/fake-apiserver.js';
import { KubeSource, PROXY_LABEL_SELECTOR } from '../../src/source/kube/kube-source.js';
import { Metrics } from '../../src/observe/metrics.js';
import type { NodeInfo, ObjectEvent } from '../../src/model/types.js';

const svc = (name: string, ip: string, labels: Record<string, string> = {}) => ({
  apiVersion: 'v1', kind: 'Service',
  metadata: { name, namespace: 'default', labels },
  spec: { type: 'ClusterIP', clusterIP: ip, clusterIPs: [ip], selector: { app: name }, ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }] },
});
const slice = (name: string, ips: string[], labels: Record<string, string> = {}) => ({
  apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4',
  metadata: { name: `${name}-x1`, namespace: 'default', labels: { 'kubernetes.io/service-name': name, ...labels } },
  ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  endpoints: ips.map((ip) => ({ addresses: [ip], conditions: { ready: true }, nodeName: 'n1', targetRef: { kind: 'Pod', name: ip } })),
});
const node = (zone: string) => ({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1', labels: { 'topology.kubernetes.io/zone': zone } }, status: { addresses: [{ type: 'InternalIP', address: '192.168.77.1' }] } });

interface Seen { events: ObjectEvent[]; nodes: Array<NodeInfo | null>; errors: string[]; synced: number }

const until = async (cond: () => boolean, what: string, ms = 5000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};
const names = (events: ObjectEvent[]) => events.map((e) => `${e.type} ${e.kind} ${(e.object as { metadata: { name: string } }).metadata.name}`);

describe('kubernetes source against a fake API server', () => {
  let api: FakeApiServer;
  let source: KubeSource;
  let seen: Seen;
  let metrics: Metrics;

  const start = async (opts: Partial<{ inactivityMs: number; relistPeriodMs: number; serviceCIDRs: boolean }> = {}) => {
    const kc = new KubeConfig();
    kc.loadFromClusterAndUser({ name: 'fake', server: api.url, skipTLSVerify: true }, { name: 'anonymous' });
    metrics = new Metrics();
    source = new KubeSource(kc, { nodeName: 'n1', requestTimeoutMs: 1000, inactivityMs: opts.inactivityMs ?? 5000, relistPeriodMs: opts.relistPeriodMs ?? 600_000, backoff: { baseMs: 50, maxMs: 200 }, serviceCIDRs: opts.serviceCIDRs ?? false }, metrics);
    await source.start({
      event: (e) => seen.events.push(e),
      node: (n) => seen.nodes.push(n),
      synced: () => seen.synced++,
      error: (err, context) => seen.errors.push(`${context}: ${err.message}`),
    });
    await until(() => seen.synced === 1, 'synced');
  };
  /** Events from now on. */
  const mark = () => seen.events.length;

  beforeEach(async () => {
    api = new FakeApiServer({ bookmarkIntervalMs: 100 });
    await api.start();
    seen = { events: [], nodes: [], errors: [], synced: 0 };
    api.put(svc('web', '10.96.0.10'));
    api.put(slice('web', ['10.244.1.1', '10.244.1.2']));
    api.put(node('z1'));
  });
  afterEach(async () => {
    await source?.stop();
    await api.stop();
  });

  it('lists every kind with kube-proxy\'s selectors, syncs once, delivers trimmed objects, then watches', async () => {
    api.put(svc('mine', '10.96.0.11', { 'service.kubernetes.io/service-proxy-name': 'other-proxy' }));
    api.put(slice('headless', ['10.244.9.9'], { 'service.kubernetes.io/headless': '' }));
    await start();
    assert.deepEqual(names(seen.events), ['ADDED Service web', 'ADDED EndpointSlice web-x1'], 'other proxies\' Services and headless slices are filtered by the server');
    assert.deepEqual(seen.nodes, [{ name: 'n1', zone: 'z1', addresses: ['192.168.77.1'], taints: [], deletionTimestamp: null }]);
    const lists = api.requests.filter((r) => !r.watch);
    assert.deepEqual(lists.map((r) => r.path).sort(), ['/api/v1/nodes', '/api/v1/services', '/apis/discovery.k8s.io/v1/endpointslices']);
    assert.equal(lists.find((r) => r.path === '/api/v1/services')?.query.labelSelector, PROXY_LABEL_SELECTOR);
    assert.equal(lists.find((r) => r.path === '/api/v1/nodes')?.query.fieldSelector, 'metadata.name=n1');
    const o = seen.events[0]!.object as { metadata: Record<string, unknown>; spec: Record<string, unknown> };
    assert.equal(o.metadata['managedFields'], undefined);
    assert.equal(o.spec['selector'], undefined);
    assert.equal((seen.events[1]!.object as { endpoints: Array<Record<string, unknown>> }).endpoints[0]!['targetRef'], undefined);

    await until(() => api.openWatches() === 3, 'three watches');
    const watch = api.requests.find((r) => r.watch && r.path === '/api/v1/services')!;
    assert.equal(watch.query.allowWatchBookmarks, 'true');
    assert.ok(Number(watch.query.timeoutSeconds) >= 300 && Number(watch.query.timeoutSeconds) < 600);
    const m = mark();
    api.put(slice('web', ['10.244.1.1']));
    api.put(node('z2'));
    api.delete('Service', 'default', 'web');
    await until(() => seen.events.length === m + 2 && seen.nodes.length === 2, 'live events');
    assert.deepEqual(names(seen.events.slice(m)), ['MODIFIED EndpointSlice web-x1', 'DELETED Service web']);
    assert.equal(seen.nodes[1]?.zone, 'z2');
    assert.equal(seen.synced, 1);
  });

  it('nftables mode: ServiceCIDRs listed and watched (spec.cidrs only); the first sync does not wait for them', async () => {
    const cidr = (cidrs: string[]) => ({ apiVersion: 'networking.k8s.io/v1', kind: 'ServiceCIDR', metadata: { name: 'kubernetes', annotations: { big: 'x' } }, spec: { cidrs }, status: { conditions: [] } });
    api.put(cidr(['10.96.0.0/16']));
    await start({ serviceCIDRs: true });
    await until(() => seen.events.some((e) => e.kind === 'ServiceCIDR'), 'the ServiceCIDR');
    const e = seen.events.find((x) => x.kind === 'ServiceCIDR')!;
    assert.deepEqual(e.object, { apiVersion: 'networking.k8s.io/v1', kind: 'ServiceCIDR', metadata: (e.object as { metadata: unknown }).metadata, spec: { cidrs: ['10.96.0.0/16'] } });
    await until(() => api.openWatches() === 4, 'four watches');
    const m = mark();
    api.put(cidr(['10.96.0.0/16', 'fd00:96::/112']));
    await until(() => seen.events.length === m + 1, 'the change');
    assert.deepEqual((seen.events[m]!.object as { spec: unknown }).spec, { cidrs: ['10.96.0.0/16', 'fd00:96::/112'] });
  });

  it('an API server without v1 ServiceCIDRs (404): said once, not retried, and the source syncs', async () => {
    api.failNext(1_000, 404, (r) => r.path === '/apis/networking.k8s.io/v1/servicecidrs');
    await start({ serviceCIDRs: true });
    await new Promise((r) => setTimeout(r, 400)); // several backoffs' worth
    assert.equal(api.requests.filter((r) => r.path === '/apis/networking.k8s.io/v1/servicecidrs').length, 1, 'not retried');
    assert.deepEqual(seen.errors.filter((x) => x.startsWith('ServiceCIDR informer')).length, 1);
    assert.match(seen.errors.find((x) => x.startsWith('ServiceCIDR informer'))!, /serves no networking\.k8s\.io\/v1 ServiceCIDRs/);
    assert.deepEqual(names(seen.events), ['ADDED Service web', 'ADDED EndpointSlice web-x1']);
  });

  it('is not synced until every kind has listed: a failing list is retried with backoff', async () => {
    api.failNext(3, 503, (r) => r.path === '/apis/discovery.k8s.io/v1/endpointslices' && !r.watch);
    await start();
    assert.equal(api.requests.filter((r) => r.path === '/apis/discovery.k8s.io/v1/endpointslices' && !r.watch).length, 4);
    assert.equal(seen.errors.filter((e) => /EndpointSlice informer: restarting/.test(e) && /HTTP 503/.test(e)).length, 3);
    assert.equal(metrics.get('kubexdp_api_restarts_total', { kind: 'EndpointSlice' }), 3);
    assert.deepEqual(names(seen.events), ['ADDED Service web', 'ADDED EndpointSlice web-x1']);
  });

  it('a watch cut mid-stream resumes from the last resourceVersion: no relist, no repeated events', async () => {
    await start();
    await until(() => api.openWatches() === 3, 'watches');
    const m = mark();
    const listsBefore = api.requests.filter((r) => !r.watch).length;
    assert.equal(api.cutWatches(), 3);
    api.put(slice('web', ['10.244.1.3']));
    await until(() => seen.events.length > m, 'the change');
    await until(() => api.openWatches() === 3, 'watches again');
    assert.deepEqual(names(seen.events.slice(m)), ['MODIFIED EndpointSlice web-x1']);
    assert.equal(api.requests.filter((r) => !r.watch).length, listsBefore, 'no list');
    const resumed = api.requests.filter((r) => r.watch && r.path === '/apis/discovery.k8s.io/v1/endpointslices').at(-1)!;
    assert.ok(Number(resumed.query.resourceVersion) > 0);
    assert.ok(seen.errors.some((e) => /cut mid-stream/.test(e)), seen.errors.join('\n'));
  });

  it('410 Gone relists; the relist is reconciled so only real changes come out, deletions included', async () => {
    api.put(svc('old', '10.96.0.12'));
    await start();
    await until(() => api.openWatches() === 3, 'watches');
    const m = mark();
    api.cutWatches();
    api.delete('Service', 'default', 'old');
    api.put(svc('new', '10.96.0.13'));
    api.compact();
    await until(() => seen.events.length >= m + 2, 'the changes');
    await until(() => api.openWatches() === 3, 'watches again');
    assert.deepEqual(names(seen.events.slice(m)).sort(), ['ADDED Service new', 'DELETED Service old']);
    const svcReqs = api.requests.filter((r) => r.path === '/api/v1/services').map((r) => (r.watch ? 'watch' : 'list'));
    assert.deepEqual(svcReqs.slice(-3), ['watch', 'list', 'watch'], 'resume, 410, relist, watch');
  });

  it('an API server that is down: nothing is delivered, then it converges with no flap', async () => {
    await start();
    await until(() => api.openWatches() === 3, 'watches');
    const m = mark();
    await api.goDown();
    api.put(slice('web', ['10.244.1.9']));
    api.put(svc('later', '10.96.0.14'));
    api.delete('Service', 'default', 'web');
    await new Promise((r) => setTimeout(r, 700));
    assert.equal(seen.events.length, m, 'nothing while down');
    assert.ok(seen.errors.some((e) => /ECONNREFUSED/.test(e)), seen.errors.join('\n'));
    await api.comeUp();
    await until(() => seen.events.length >= m + 3, 'convergence');
    await until(() => api.openWatches() === 3, 'watches again');
    assert.deepEqual(names(seen.events.slice(m)).sort(), ['ADDED Service later', 'DELETED Service web', 'MODIFIED EndpointSlice web-x1']);
  });

  it('a stalled watch (headers, then silence) is abandoned after the inactivity timeout', async () => {
    await start({ inactivityMs: 300 });
    await until(() => api.openWatches() === 3, 'watches');
    const m = mark();
    api.stall(true, 'body');
    api.cutWatches();
    api.put(slice('web', ['10.244.1.4']));
    await until(() => seen.errors.some((e) => /nothing received for 300 ms/.test(e)), 'inactivity restart');
    assert.equal(seen.events.length, m, 'a stalled watch delivers nothing');
    api.stall(false);
    await until(() => seen.events.length > m, 'the change after the stall');
    assert.deepEqual(names(seen.events.slice(m)), ['MODIFIED EndpointSlice web-x1']);
  });

  it('a list that never answers times out and is retried', async () => {
    api.stall(true, 'headers');
    const kc = new KubeConfig();
    kc.loadFromClusterAndUser({ name: 'fake', server: api.url, skipTLSVerify: true }, { name: 'anonymous' });
    source = new KubeSource(kc, { nodeName: 'n1', requestTimeoutMs: 200, inactivityMs: 5000, relistPeriodMs: 600_000, backoff: { baseMs: 50, maxMs: 100 } }, new Metrics());
    await source.start({ event: (e) => seen.events.push(e), synced: () => seen.synced++, error: (err) => seen.errors.push(err.message) });
    await until(() => seen.errors.some((e) => /no complete answer within 200 ms/.test(e)), 'list timeout');
    assert.equal(seen.synced, 0);
    api.stall(false);
    await until(() => seen.synced === 1, 'sync after the stall');
    assert.deepEqual(names(seen.events).sort(), ['ADDED EndpointSlice web-x1', 'ADDED Service web']);
  });

  it('a periodic relist changes nothing when nothing changed', async () => {
    await start({ relistPeriodMs: 150 });
    const m = mark();
    await until(() => metrics.get('kubexdp_api_lists_total', { kind: 'Service' }) >= 3, 'two relists');
    assert.equal(seen.events.length, m);
    api.put(svc('web', '10.96.0.10', { tier: 'front' }));
    await until(() => seen.events.length > m, 'a change');
    assert.deepEqual(names(seen.events.slice(m)), ['MODIFIED Service web']);
  });

  it('a periodic relist finds what a silent watch missed, deletions included', async () => {
    await start({ relistPeriodMs: 400 });
    await until(() => api.openWatches() === 3, 'watches');
    const m = mark();
    api.stall(true, 'body');
    api.cutWatches();
    await until(() => api.openWatches() === 3, 'stalled watches');
    api.delete('Service', 'default', 'web');
    api.put(svc('other', '10.96.0.15'));
    await until(() => seen.events.length >= m + 2, 'the relist');
    assert.deepEqual(names(seen.events.slice(m)).sort(), ['ADDED Service other', 'DELETED Service web']);
    api.stall(false);
  });

  it('the own Node missing is reported; synced still comes', async () => {
    api.delete('Node', '', 'n1');
    await start();
    assert.deepEqual(seen.nodes, []);
    assert.ok(seen.errors.some((e) => /Node "n1" not found/.test(e)));
    api.put(node('z3'));
    await until(() => seen.nodes.length === 1, 'node appears');
    assert.equal((seen.nodes as Array<NodeInfo | null>)[0]?.zone, 'z3');
  });
});
