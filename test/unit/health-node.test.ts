// The Node's eligibility end to end through the kubernetes source: the fake API server's Node
// gains the cluster autoscaler's taint, loses it, gets a deletionTimestamp; /healthz follows
// (503 with nodeEligible false) while /livez stays 200, as in kube-proxy.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { FakeApiServer } from '../helpers/fake-apiserver.js';
import { ProxierHealth, TO_BE_DELETED_TAINT } from '../../src/health/proxier-health.js';
import { KubeSource } from '../../src/source/kube/kube-source.js';
import { serveObservability } from '../../src/observe/http.js';
import { Metrics } from '../../src/observe/metrics.js';

const node = (extra: { taints?: object[]; deletionTimestamp?: string } = {}) => ({
  apiVersion: 'v1', kind: 'Node',
  metadata: { name: 'n1', ...(extra.deletionTimestamp ? { deletionTimestamp: extra.deletionTimestamp } : {}) },
  spec: extra.taints ? { taints: extra.taints } : {},
  status: { addresses: [{ type: 'InternalIP', address: '192.168.77.1' }] },
});

const until = async (cond: () => Promise<boolean> | boolean, what: string, ms = 5000) => {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('Node eligibility through the kubernetes source', () => {
  const api = new FakeApiServer({ bookmarkIntervalMs: 100 });
  const health = new ProxierHealth(60_000);
  let source: KubeSource;
  let server: Server;
  const get = async (path: string) => {
    const r = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`);
    return { status: r.status, body: (await r.json()) as { nodeEligible?: boolean; healthy: boolean } };
  };

  before(async () => {
    await api.start();
    api.put(node());
    const kc = new KubeConfig();
    kc.loadFromClusterAndUser({ name: 'fake', server: api.url, skipTLSVerify: true }, { name: 'anonymous' });
    source = new KubeSource(kc, { nodeName: 'n1', requestTimeoutMs: 1000, inactivityMs: 5000, relistPeriodMs: 600_000, backoff: { baseMs: 50, maxMs: 200 } }, new Metrics());
    let synced = false;
    // as `kube-xdp run` wires it
    await source.start({ event: () => {}, node: (n) => health.setNode(n), synced: () => (synced = true), error: () => {} });
    await until(() => synced, 'synced');
    server = await serveObservability('127.0.0.1:0', new Metrics(), false, health);
  });
  after(async () => {
    await source.stop();
    await api.stop();
    server.close();
  });

  it('the autoscaler taint and a deletionTimestamp flip nodeEligible and /healthz, never /livez', async () => {
    assert.deepEqual(await get('/healthz').then((r) => [r.status, r.body.nodeEligible]), [200, true]);

    api.put(node({ taints: [{ key: TO_BE_DELETED_TAINT, value: '1733300000', effect: 'NoSchedule' }] }));
    await until(async () => (await get('/healthz')).status === 503, 'the taint');
    const tainted = await get('/healthz');
    assert.equal(tainted.body.nodeEligible, false);
    assert.equal(tainted.body.healthy, true, 'the proxy itself is fine');
    const live = await get('/livez');
    assert.equal(live.status, 200);
    assert.equal('nodeEligible' in live.body, false);

    api.put(node({ taints: [{ key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' }] }));
    await until(async () => (await get('/healthz')).status === 200, 'the taint removed (a cordon stays eligible)');

    api.put(node({ deletionTimestamp: '2026-12-04T10:00:00Z' }));
    await until(async () => (await get('/healthz')).status === 503, 'the deletionTimestamp');
    assert.equal((await get('/healthz')).body.nodeEligible, false);
    assert.equal((await get('/livez')).status, 200);
  });
});
