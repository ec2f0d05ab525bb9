// The controller (the loop the CLI starts) with a dataplane made slow on purpose: while a sync
// runs, /healthz and /metrics answer at once (the sync does not hold the event loop), changes
// arriving meanwhile are coalesced into one sync after it, and syncs never overlap.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { runConfig } from '../../src/config/run-config.js';
import { Controller } from '../../src/controller/controller.js';
import type { Dataplane, SyncResult } from '../../src/dataplane/types.js';
import { ProxierHealth } from '../../src/health/proxier-health.js';
import type { ProxyState, Source, SourceSink } from '../../src/model/types.js';
import { serveObservability } from '../../src/observe/http.js';
import { registerKubeProxyMetrics } from '../../src/observe/kube-proxy-metrics.js';
import { Metrics } from '../../src/observe/metrics.js';
import { makeEndpointSlice, makeService, type Json } from './helpers/kube-objects.js';

const SLOW_MS = 1500;

/** A source that hands over what the test gives it. */
class TestSource implements Source {
  sink: SourceSink | null = null;
  async start(sink: SourceSink): Promise<void> { this.sink = sink; }
  async stop(): Promise<void> { this.sink = null; }
  put(o: Json): void { this.sink!.event({ kind: o.kind, type: 'ADDED', object: o }); }
}

const web = (endpoints: number): Json[] => [
  makeService('default', 'web', (s) => { s.spec = { type: 'ClusterIP', clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10'], ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }] }; }),
  makeEndpointSlice('default', 'web', 1, (s) => {
    s.ports = [{ name: 'http', port: 8080, protocol: 'TCP' }];
    s.endpoints = Array.from({ length: endpoints }, (_, i) => ({ addresses: [`10.244.1.${i + 1}`], conditions: { ready: true } }));
  }),
];

test('a slow sync does not hold /healthz and /metrics; changes during it are coalesced into one sync after it; syncs never overlap', async () => {
  const cfg = runConfig(['--source', 'file:/dev/null', '--node-name', 'n1', '--mode', 'iptables', '--min-sync-period', '0s'], {});
  const metrics = new Metrics();
  registerKubeProxyMetrics(metrics, 'iptables');
  const health = new ProxierHealth(2 * cfg.syncPeriodMs);
  const synced: { endpoints: number; at: number }[] = [];
  let running = 0, overlap = 0;
  const dataplane: Dataplane = {
    async sync(state: ProxyState): Promise<SyncResult> {
      if (++running > 1) overlap++;
      await new Promise((r) => setTimeout(r, SLOW_MS)); // an iptables-restore of many rules, say
      running--;
      synced.push({ endpoints: state.services[0]?.endpoints.length ?? 0, at: Date.now() });
      return { writes: 1, detail: {} };
    },
    describe: () => null,
    close: () => {},
  };
  const source = new TestSource();
  const ctl = new Controller({ cfg, log: pino({ level: 'silent' }), metrics, health, source, dataplane: () => ({ dataplane, families: ['IPv4'] }) });
  const server = await serveObservability('127.0.0.1:0', metrics, true, health);
  try {
    await ctl.start();
    for (const o of web(3)) source.put(o);
    source.sink!.synced();
    await ctl.sourceSynced;
    ctl.program();
    await new Promise((r) => setTimeout(r, 200)); // the first sync is running
    assert.equal(running, 1);

    const url = (path: string) => `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`;
    const timedGet = async (path: string) => {
      const t0 = performance.now();
      const r = await fetch(url(path));
      const body = await r.text();
      return { status: r.status, ms: performance.now() - t0, body };
    };
    // two changes while it runs
    source.put(web(4)[1]!);
    source.put(web(5)[1]!);
    const answers = [await timedGet('/healthz'), await timedGet('/metrics'), await timedGet('/livez')];
    assert.equal(running, 1, 'still the first sync');
    for (const a of answers) {
      assert.equal(a.status, 200, a.body.slice(0, 200));
      assert.ok(a.ms < 100, `answered in ${a.ms.toFixed(1)} ms while the sync runs (a blocked event loop answers after it, ${SLOW_MS} ms)`);
    }
    assert.match(answers[1]!.body, /^kubeproxy_sync_proxy_rules_service_changes_total 1$/m);

    await new Promise((r) => setTimeout(r, 2 * SLOW_MS + 500));
    assert.deepEqual(synced.map((s) => s.endpoints), [3, 5], 'the two changes made during the first sync: one sync after it, with the last');
    assert.equal(overlap, 0);
  } finally {
    await ctl.stop();
    server.close();
  }
});
