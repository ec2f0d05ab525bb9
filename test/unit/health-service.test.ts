// healthCheckNodePort (kube-proxy's pkg/proxy/healthcheck/service_health.go): which listeners a
// state wants and what they count, where they bind, what they answer; then the listeners on
// real loopback sockets — opened, updated, closed, a busy port logged, counted and retried.
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { healthCheckAddresses, healthCheckServices, serviceHealthAnswer } from '../../src/health/service-health.js';
import { ServiceListeners } from '../../src/health/service-listeners.js';
import { Metrics } from '../../src/observe/metrics.js';
import { makeEndpointSlice, makeService, objects, TEST_NODE, type Json } from './helpers/kube-objects.js';

const NODE = TEST_NODE.nodeName;

function lb(name: string, hcnp: number, policy: 'Local' | 'Cluster' = 'Local', ports = [80]): Json {
  return makeService('ns1', name, (s) => {
    s.spec = {
      type: 'LoadBalancer', clusterIP: '172.30.0.41', externalTrafficPolicy: policy, healthCheckNodePort: hcnp,
      ports: ports.map((p, i) => ({ name: `p${p}`, port: p, protocol: 'TCP', nodePort: 30100 + i })),
    };
    s.status = { loadBalancer: { ingress: [{ ip: '1.2.3.4' }] } };
  });
}

type Ep = { ip: string; node: string; ready?: boolean; serving?: boolean; terminating?: boolean };
function slice(name: string, eps: Ep[], ports = [80]): Json {
  return makeEndpointSlice('ns1', name, 1, (s) => {
    s.ports = ports.map((p) => ({ name: `p${p}`, port: p, protocol: 'TCP' }));
    s.endpoints = eps.map((e) => ({
      addresses: [e.ip], nodeName: e.node,
      conditions: { ready: e.ready ?? true, serving: e.serving ?? e.ready ?? true, terminating: e.terminating ?? false },
    }));
  });
}

describe('healthCheckNodePort: the wanted listeners', () => {
  it('one per Service with a healthCheckNodePort, counting this node\'s ready endpoints by IP', () => {
    const o = objects(
      lb('svc-local', 30000, 'Local', [80, 443]),
      slice('svc-local', [
        { ip: '10.180.0.1', node: NODE }, { ip: '10.180.0.2', node: NODE }, { ip: '10.180.1.1', node: 'other' },
        { ip: '10.180.0.3', node: NODE, ready: false, serving: true, terminating: true },
        { ip: '10.180.0.4', node: NODE, ready: false, serving: false },
      ], [80, 443]),
      lb('svc-cluster', 30001, 'Cluster'),
      slice('svc-cluster', [{ ip: '10.180.0.9', node: NODE }]),
      lb('svc-remote', 30002),
      slice('svc-remote', [{ ip: '10.180.1.2', node: 'other' }]),
      makeService('ns0', 'clusterip', (s) => {
        s.spec = { type: 'ClusterIP', clusterIP: '172.30.0.50', ports: [{ name: 'p80', port: 80, protocol: 'TCP' }] };
      }),
    );
    assert.deepEqual(healthCheckServices(o.state()), [
      { namespace: 'ns1', name: 'svc-local', port: 30000, localEndpoints: 2 }, // two IPs × two ports; terminating and unready not counted
      { namespace: 'ns1', name: 'svc-remote', port: 30002, localEndpoints: 0 },
    ], 'externalTrafficPolicy Cluster needs no health check (kube-proxy ignores its healthCheckNodePort)');

    o.apply(slice('svc-local', [{ ip: '10.180.0.3', node: NODE, ready: false, serving: true, terminating: true }], [80, 443]));
    assert.equal(healthCheckServices(o.state())[0]!.localEndpoints, 0, 'only terminating endpoints left: load balancers must drain the node');
    o.remove(lb('svc-remote', 30002));
    assert.deepEqual(healthCheckServices(o.state()).map((s) => s.name), ['svc-local']);
  });

  it('binds on nodePortAddresses as kube-proxy does', () => {
    const local = { IPv4: ['127.0.0.1', '192.168.77.1', '10.0.0.5'], IPv6: ['::1', 'fd77::1'] };
    assert.deepEqual(healthCheckAddresses([], local), ['0.0.0.0', '::'], 'default: every address of each family');
    assert.deepEqual(healthCheckAddresses([], { IPv4: ['192.168.77.1'], IPv6: [] }), ['0.0.0.0'], 'no IPv6 on the host: no IPv6 listener');
    assert.deepEqual(healthCheckAddresses(['192.168.77.0/24'], local), ['192.168.77.1', '::'], 'no IPv6 CIDR: all IPv6 addresses');
    assert.deepEqual(healthCheckAddresses(['192.168.77.0/24', '10.0.0.0/8', 'fd77::/64'], local), ['10.0.0.5', '192.168.77.1', 'fd77::1']);
    assert.deepEqual(healthCheckAddresses(['0.0.0.0/0', 'fd77::/64'], local), ['0.0.0.0', 'fd77::1'], 'a zero CIDR matches all');
    assert.deepEqual(healthCheckAddresses(['198.51.100.0/24'], { IPv4: ['192.168.77.1'], IPv6: [] }), [], 'nothing matches: nowhere');
  });

  it('answers with kube-proxy\'s body and status', () => {
    const ok = serviceHealthAnswer({ namespace: 'ns1', name: 'svc' }, 2, true);
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.headers, { 'content-type': 'application/json', 'x-content-type-options': 'nosniff' });
    assert.equal(ok.body, '{\n\t"service": {\n\t\t"namespace": "ns1",\n\t\t"name": "svc"\n\t},\n\t"localEndpoints": 2,\n\t"serviceProxyHealthy": true\n}');
    assert.equal(serviceHealthAnswer({ namespace: 'ns1', name: 'svc' }, 0, true).status, 503, 'no local endpoint');
    const stale = serviceHealthAnswer({ namespace: 'ns1', name: 'svc' }, 2, false);
    assert.equal(stale.status, 503, 'endpoints, but the proxy is not applying changes');
    assert.equal(JSON.parse(stale.body).serviceProxyHealthy, false);
  });
});

describe('healthCheckNodePort listeners on loopback', () => {
  const logs: Array<{ msg: string; namespace?: string; name?: string; port?: number }> = [];
  const sink = new Writable({ write: (chunk, _e, done) => { logs.push(JSON.parse(String(chunk))); done(); } });
  const metrics = new Metrics();
  let proxyHealthy = true;
  const listeners = new ServiceListeners({ addresses: ['127.0.0.1'], proxyHealthy: () => proxyHealthy, log: pino({ level: 'info' }, sink), metrics });
  const blockers: Server[] = [];
  after(() => {
    listeners.closeAll();
    for (const b of blockers) b.close();
  });

  /** A port free now, and a server holding another one. */
  const listenOn = (port: number) => new Promise<Server>((resolve, reject) => {
    const s = createServer().once('error', reject);
    s.listen(port, '127.0.0.1', () => resolve(s));
  });
  const freePort = async () => {
    const s = await listenOn(0);
    const { port } = s.address() as AddressInfo;
    await new Promise((r) => s.close(r));
    return port;
  };
  // A new connection each time (no keep-alive pool): a closed port must refuse, not reuse.
  const get = (port: number) => new Promise<{ status: number; type: string | undefined; body: { localEndpoints: number; serviceProxyHealthy: boolean } }>((resolve, reject) => {
    request({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c)).on('end', () => resolve({ status: res.statusCode!, type: res.headers['content-type'], body: JSON.parse(text) }));
    }).on('error', reject).end();
  });
  const refused = (port: number) => new Promise<void>((resolve, reject) => {
    const c = connect(port, '127.0.0.1');
    c.once('connect', () => {
      c.destroy();
      reject(new Error(`port ${port} still accepts connections`));
    }).once('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNREFUSED' ? resolve() : reject(e)));
  });

  it('opens, updates, reopens on a new port, closes; a busy port is logged, counted and retried', async () => {
    const [pa, pb, pc] = [await freePort(), await freePort(), await freePort()];
    await listeners.sync([{ namespace: 'ns1', name: 'a', port: pa, localEndpoints: 2 }, { namespace: 'ns1', name: 'b', port: pb, localEndpoints: 0 }]);
    const a = await get(pa);
    assert.deepEqual([a.status, a.type, a.body.localEndpoints], [200, 'application/json', 2]);
    assert.equal((await get(pb)).status, 503);
    assert.equal(metrics.get('kubexdp_healthcheck_nodeports'), 2);

    // endpoints move: same listener, new answer
    await listeners.sync([{ namespace: 'ns1', name: 'a', port: pa, localEndpoints: 0 }, { namespace: 'ns1', name: 'b', port: pb, localEndpoints: 1 }]);
    assert.deepEqual([(await get(pa)).status, (await get(pb)).status], [503, 200]);
    proxyHealthy = false;
    const stale = await get(pb);
    assert.deepEqual([stale.status, stale.body.serviceProxyHealthy], [503, false]);
    proxyHealthy = true;

    // b's port changes to a busy one: the old port closes, the new one fails, the sync goes on
    const blocker = await listenOn(pc);
    blockers.push(blocker);
    await listeners.sync([{ namespace: 'ns1', name: 'a', port: pa, localEndpoints: 0 }, { namespace: 'ns1', name: 'b', port: pc, localEndpoints: 1 }]);
    await refused(pb);
    const failed = logs.find((l) => l.msg.startsWith('cannot open healthCheckNodePort'));
    assert.deepEqual([failed?.namespace, failed?.name, failed?.port], ['ns1', 'b', pc]);
    assert.equal(metrics.get('kubexdp_healthcheck_nodeport_bind_errors_total'), 1);
    assert.deepEqual([...listeners.ports()], [['ns1/a', pa]], 'b is not kept: the next sync tries again');

    // the next sync, port still busy: tried and counted again; then freed: opened
    await listeners.sync([{ namespace: 'ns1', name: 'a', port: pa, localEndpoints: 0 }, { namespace: 'ns1', name: 'b', port: pc, localEndpoints: 1 }]);
    assert.equal(metrics.get('kubexdp_healthcheck_nodeport_bind_errors_total'), 2);
    await new Promise((r) => blocker.close(r));
    await listeners.sync([{ namespace: 'ns1', name: 'a', port: pa, localEndpoints: 0 }, { namespace: 'ns1', name: 'b', port: pc, localEndpoints: 1 }]);
    assert.equal((await get(pc)).status, 200);

    // Services removed: their ports refuse connections
    await listeners.sync([{ namespace: 'ns1', name: 'b', port: pc, localEndpoints: 1 }]);
    await refused(pa);
    await listeners.sync([]);
    await refused(pc);
    assert.equal(metrics.get('kubexdp_healthcheck_nodeports'), 0);
  });
});
