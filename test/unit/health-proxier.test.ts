// kube-proxy's proxier health (pkg/proxy/healthcheck/proxy_health.go): the timeout on queued
// changes, the answers of /healthz and /livez, the Node's eligibility — with an injected
// clock; then /healthz over HTTP while a sync runner's dataplane stalls and recovers.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { goTime } from '../../src/health/answer.js';
import { healthzAnswer, livezAnswer, nodeEligible, ProxierHealth, TO_BE_DELETED_TAINT } from '../../src/health/proxier-health.js';
import type { NodeInfo } from '../../src/model/types.js';
import { serveObservability } from '../../src/observe/http.js';
import { Metrics } from '../../src/observe/metrics.js';
import { nodeInfo, trimObject } from '../../src/source/kube/trim.js';
import { SyncRunner } from '../../src/sync/runner.js';

const T0 = Date.parse('2026-12-04T10:00:00Z');
const TIMEOUT = 60_000; // 2 × a 30 s syncPeriod
const node = (over: Partial<NodeInfo> = {}): NodeInfo => ({ name: 'n1', zone: null, addresses: [], taints: [], deletionTimestamp: null, ...over });

function clocked() {
  const clock = { t: T0 };
  return { clock, health: new ProxierHealth(TIMEOUT, () => clock.t) };
}

describe('proxier health', () => {
  it('formats times as Go marshals time.Time', () => {
    assert.equal(goTime(null), '0001-01-01T00:00:00Z');
    assert.equal(goTime(T0), '2026-12-04T10:00:00Z');
    assert.equal(goTime(T0 + 120), '2026-12-04T10:00:00.12Z');
    assert.equal(goTime(T0 + 10_005), '2026-12-04T10:00:10.005Z');
  });

  it('is healthy while starting up (nothing queued, no family yet)', () => {
    const { health } = clocked();
    const a = healthzAnswer(health);
    assert.equal(a.status, 200);
    assert.deepEqual(JSON.parse(a.body), { lastUpdated: goTime(T0), currentTime: goTime(T0), nodeEligible: true, healthy: true });
    assert.deepEqual(a.headers, { 'content-type': 'application/json', 'x-content-type-options': 'nosniff' });
  });

  it('turns unhealthy when a queued change is not applied within the timeout, per family', () => {
    const { clock, health } = clocked();
    health.updated(['IPv4', 'IPv6']);
    clock.t += 5_000;
    health.queued(['IPv4', 'IPv6']);
    clock.t += 1_000;
    health.queued(['IPv4', 'IPv6']); // a later change does not move the oldest one
    clock.t += TIMEOUT - 1_001;
    assert.equal(healthzAnswer(health).status, 200, 'late by 1 ms less than the timeout');
    clock.t += 1;
    const a = healthzAnswer(health);
    assert.equal(a.status, 503);
    assert.deepEqual(JSON.parse(a.body), {
      lastUpdated: goTime(T0), currentTime: goTime(clock.t), nodeEligible: true, healthy: false,
      status: { IPv4: { lastUpdated: goTime(T0), healthy: false }, IPv6: { lastUpdated: goTime(T0), healthy: false } },
    });
    assert.equal(livezAnswer(health).status, 503, 'a stalled proxy is not alive either (kube-proxy)');

    health.updated(['IPv4']);
    const partial = JSON.parse(healthzAnswer(health).body);
    assert.equal(healthzAnswer(health).status, 503, 'IPv6 is still late');
    assert.deepEqual(partial.status, { IPv4: { lastUpdated: goTime(clock.t), healthy: true }, IPv6: { lastUpdated: goTime(T0), healthy: false } });
    assert.equal(partial.lastUpdated, goTime(clock.t), 'the most recent family');

    health.updated(['IPv6']);
    clock.t += 10 * TIMEOUT; // no change queued: time alone never makes it unhealthy
    const ok = healthzAnswer(health);
    assert.equal(ok.status, 200);
    assert.equal(JSON.parse(ok.body).lastUpdated, goTime(clock.t), 'a healthy answer says "now", as kube-proxy does for older clients');
  });

  it('a queued change on a family never updated also times out', () => {
    const { clock, health } = clocked();
    health.queued(['IPv4']);
    clock.t += TIMEOUT;
    const a = healthzAnswer(health);
    assert.equal(a.status, 503);
    assert.deepEqual(JSON.parse(a.body).status, { IPv4: { lastUpdated: '0001-01-01T00:00:00Z', healthy: false } });
  });

  it('an ineligible Node fails /healthz, not /livez', () => {
    const { health } = clocked();
    health.setNode(node({ taints: ['node.kubernetes.io/unschedulable', TO_BE_DELETED_TAINT] }));
    const h = healthzAnswer(health);
    assert.equal(h.status, 503);
    assert.deepEqual(JSON.parse(h.body), { lastUpdated: goTime(null), currentTime: goTime(T0), nodeEligible: false, healthy: true });
    const l = livezAnswer(health);
    assert.equal(l.status, 200);
    assert.deepEqual(JSON.parse(l.body), { lastUpdated: goTime(T0), currentTime: goTime(T0), healthy: true }, 'no nodeEligible in /livez');
    health.setNode(node());
    assert.equal(healthzAnswer(health).status, 200, 'taint removed');
  });

  it('node eligibility: taint, deletionTimestamp, deleted Node', () => {
    assert.equal(nodeEligible(node()), true);
    assert.equal(nodeEligible(node({ taints: ['node.kubernetes.io/unschedulable'] })), true, 'cordoned is still eligible');
    assert.equal(nodeEligible(node({ taints: [TO_BE_DELETED_TAINT] })), false);
    assert.equal(nodeEligible(node({ deletionTimestamp: '2026-12-04T10:00:00Z' })), false);
    assert.equal(nodeEligible(null), false);
  });

  it('the Node informer keeps the taint keys and deletionTimestamp through trimming', () => {
    const raw = {
      metadata: { name: 'n1', deletionTimestamp: '2026-12-04T10:00:00Z', managedFields: [{}], labels: { a: 'b' } },
      spec: { podCIDR: '10.244.0.0/24', taints: [{ key: TO_BE_DELETED_TAINT, value: '1733300000', effect: 'NoSchedule' }] },
      status: { addresses: [{ type: 'InternalIP', address: '192.168.77.1' }], images: [{}] },
    };
    const trimmed = trimObject('Node', raw);
    assert.deepEqual(trimmed, {
      apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1', labels: {}, deletionTimestamp: '2026-12-04T10:00:00Z' },
      spec: { taints: [{ key: TO_BE_DELETED_TAINT, effect: 'NoSchedule' }] },
      status: { addresses: [{ type: 'InternalIP', address: '192.168.77.1' }] },
    });
    assert.deepEqual(nodeInfo(trimmed), { name: 'n1', zone: null, addresses: ['192.168.77.1'], taints: [TO_BE_DELETED_TAINT], deletionTimestamp: '2026-12-04T10:00:00Z' });
    assert.deepEqual(nodeInfo(trimObject('Node', { metadata: { name: 'n2' } })), node({ name: 'n2' }));
  });
});

describe('/healthz while the dataplane stalls', () => {
  const closers: Array<() => void> = [];
  after(() => closers.forEach((c) => c()));

  it('503 once a change waits two sync periods behind failing syncs, 200 after a sync succeeds', async () => {
    const { clock, health } = clocked();
    let failing = false;
    let runs = 0;
    // Real timers only run the syncs (minPeriod 0, retry after 1 ms); time as health sees it is
    // the injected clock, moved by the test.
    const runner = new SyncRunner(() => {
      runs++;
      if (failing) throw new Error('dataplane stalled');
    }, { minPeriodMs: 0, syncPeriodMs: 3_600_000, retryMs: 1 }, () => clock.t, {
      queued: () => health.queued(['IPv4']), updated: () => health.updated(['IPv4']),
    });
    closers.push(() => runner.stop());
    const metrics = new Metrics();
    const server = await serveObservability('127.0.0.1:0', metrics, true, health);
    closers.push(() => server.close());
    const url = (path: string) => `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`;
    const get = async (path: string) => {
      const r = await fetch(url(path));
      return { status: r.status, body: (await r.json()) as Record<string, unknown>, nosniff: r.headers.get('x-content-type-options') };
    };
    const until = async (cond: () => boolean) => {
      while (!cond()) await new Promise((r) => setImmediate(r));
    };

    runner.enable();
    await until(() => runs === 1);
    assert.equal((await get('/healthz')).status, 200);

    failing = true;
    runner.request();
    await until(() => runs >= 3); // failed, and failed again on retry
    clock.t += TIMEOUT - 1;
    assert.equal((await get('/healthz')).status, 200, 'late, not yet too late');
    clock.t += 1;
    const stalled = await get('/healthz');
    assert.equal(stalled.status, 503);
    assert.equal(stalled.body.healthy, false);
    assert.equal(stalled.nosniff, 'nosniff');
    assert.equal((await get('/livez')).status, 503);

    failing = false;
    const before = runs;
    await until(() => runs > before && health.isHealthy()); // the next retry succeeds
    const back = await get('/healthz');
    assert.equal(back.status, 200);
    assert.deepEqual(back.body, { lastUpdated: goTime(clock.t), currentTime: goTime(clock.t), nodeEligible: true, healthy: true,
      status: { IPv4: { lastUpdated: goTime(clock.t), healthy: true } } });
    assert.equal((await fetch(url('/metrics'))).status, 200);
    assert.equal(metrics.get('kubeproxy_proxy_healthz_total', { code: '503' }), 1);
    assert.equal(metrics.get('kubeproxy_proxy_healthz_total', { code: '200' }), 3);
    assert.equal(metrics.get('kubeproxy_proxy_livez_total', { code: '503' }), 1);
  });

  it('a periodic resync is no queued change; a failing one is', async () => {
    const { clock, health } = clocked();
    let failing = false;
    let runs = 0;
    const runner = new SyncRunner(() => {
      runs++;
      if (failing) throw new Error('dataplane stalled');
    }, { minPeriodMs: 0, syncPeriodMs: 5, retryMs: 3_600_000 }, () => clock.t, {
      queued: () => health.queued(['IPv4']), updated: () => health.updated(['IPv4']),
    });
    closers.push(() => runner.stop());
    const until = async (cond: () => boolean) => {
      while (!cond()) await new Promise((r) => setImmediate(r));
    };
    runner.enable();
    await until(() => runs >= 3); // the first sync and periodic ones
    clock.t += TIMEOUT;
    assert.equal(health.isHealthy(), true);
    failing = true;
    const before = runs;
    await until(() => runs > before); // a periodic sync fails; its retry waits an hour
    clock.t += TIMEOUT;
    assert.equal(health.isHealthy(), false);
  });
});
