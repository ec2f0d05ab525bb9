// The `kubernetes` source end to end: the controller runs in node1's network namespace in eBPF
// mode and watches a fake API server (reached through a unix socket and a forwarder inside the
// lab), while pods send real packets. Each test changes the API objects or breaks the API
// server and checks what the dataplane does and what the controller logged. Timings are
// measured and printed, never asserted.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanUpAll, createLab, ensureBpffs, labUnavailable, type Lab, type LabPod, type LabProcess } from './lab.js';
import { Controller, type LogLine } from './kube-xdp.js';
import { serviceObjects, type LabService } from './manifests.js';
import { FakeApiServer, type FakeRequest } from '../helpers/fake-apiserver.js';

const FORWARDER = fileURLToPath(new URL('./netns-forward.js', import.meta.url));

const unavailable = labUnavailable();
if (unavailable && process.env.CI === 'true') {
  test('kubernetes-source lab prerequisites (CI runs this as root)', () => assert.fail(unavailable));
}

const WEB_IP = '10.96.0.10';
const API_IP = '10.96.0.20';
const TMP_IP = '10.96.0.30';
const BIG_IP = '10.96.0.40';
const NODE_PORT = 30080;
const ZONE = 'zone-a';
const TRIGGER = 'endpoints.kubernetes.io/last-change-trigger-time';
const CONVERGE_MS = 15_000;
const PROBLEM_MSG = 'source problem: keeping the previous objects';
const PATHS = {
  Service: '/api/v1/services',
  EndpointSlice: '/apis/discovery.k8s.io/v1/endpointslices',
  Node: '/api/v1/nodes',
} as const;
type Kind = keyof typeof PATHS;
const KINDS = Object.keys(PATHS) as Kind[];

// Polls TCP connections to HOST:PORT every 20 ms (overlapping, 300 ms each) from inside a pod;
// prints `ready`, then on the first answer one JSON line with the wall-clock time the winning
// attempt started and when it answered (same clock as the test's Date.now()).
const POLLER = `
const net = require('node:net');
const [host, port, limit] = process.argv.slice(1);
const t0 = Date.now();
let attempts = 0;
let done = false;
const attempt = () => {
  if (done) return;
  if (Date.now() - t0 > Number(limit)) { done = true; console.log('timeout'); setTimeout(() => process.exit(1), 2000); return; }
  const startedAt = Date.now();
  attempts++;
  const s = net.connect({ host, port: Number(port) });
  let buf = '';
  const timer = setTimeout(() => s.destroy(), 300);
  s.setEncoding('utf8');
  s.on('data', (d) => {
    buf += d;
    const nl = buf.indexOf('\\n');
    if (nl < 0 || done) return;
    done = true;
    console.log('first ' + JSON.stringify({ pod: JSON.parse(buf.slice(0, nl)).pod, startedAt, at: Date.now(), attempts }));
    setTimeout(() => process.exit(0), 2000); // let the reader see the line before the exit
  });
  s.on('error', () => {});
  s.on('close', () => clearTimeout(timer));
};
console.log('ready');
setInterval(attempt, 20);
attempt();
`;

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
interface Inspected { frontends: Array<{ protocol: string; address: string; port: number; scope: string; backends: Array<{ address: string; port?: number }> }> }

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('kubernetes source in the netns lab (eBPF mode)', { skip: unavailable ?? false }, () => {
  let lab: Lab;
  let dir: string;
  let api: FakeApiServer;
  let forwarder: LabProcess | undefined;
  let ctl: Controller | undefined;
  const figures: Record<string, unknown> = {};

  const pods = (...names: string[]): LabPod[] => names.map((n) => lab.pod(n));
  const ips = (...names: string[]): string[] => names.map((n) => lab.pod(n).ip).sort();
  const web = (...eps: string[]): LabService => ({
    name: 'web', clusterIP: WEB_IP, port: 80, targetPort: 8080, type: 'NodePort', nodePort: NODE_PORT, protocols: ['TCP'], endpoints: pods(...eps),
  });
  const simple = (name: string, clusterIP: string, ...eps: string[]): LabService => ({
    name, clusterIP, port: 80, targetPort: 8080, protocols: ['TCP'], endpoints: pods(...eps),
  });

  /** [Service, EndpointSlice] without resourceVersion; the slice carries a fresh trigger time. */
  const objects = (s: LabService): [Json, Json] => {
    const [svc, slice] = serviceObjects(s) as [Json, Json];
    delete svc.metadata.resourceVersion;
    delete slice.metadata.resourceVersion;
    slice.metadata.annotations = { [TRIGGER]: new Date().toISOString() };
    return [svc, slice];
  };
  const putService = (s: LabService): void => { for (const o of objects(s)) api.put(o); };
  /** Only the slice: what the EndpointSlice controller changes when pods come and go. */
  const putSlice = (s: LabService): void => { api.put(objects(s)[1]); };

  const C = (): Controller => {
    assert.ok(ctl, 'the controller did not start');
    return ctl;
  };
  const mark = (): number => C().logs().length;
  const since = (m: number): LogLine[] => C().logs().slice(m);
  const events = (m: number): string[] =>
    since(m).filter((l) => l.msg === 'object event').map((l) => `${String(l.kind)} ${String(l.type)} ${String(l.namespace)}/${String(l.name)}`);
  const restarts = (m: number): LogLine[] =>
    since(m).filter((l) => l.msg === PROBLEM_MSG && /informer: restarting in \d+ ms/.test(String(l.context)));
  const writingSyncs = (m: number): LogLine[] => since(m).filter((l) => l.msg === 'synced' && (l.writes as number) > 0);
  const retryMs = (l: LogLine): number => Number(/restarting in (\d+) ms/.exec(String(l.context))![1]);
  const kindOf = (l: LogLine): string => String(l.context).split(' ')[0]!;

  const requestsSince = (i: number, kind: Kind, watch: boolean): FakeRequest[] =>
    api.requests.slice(i).filter((r) => r.path === PATHS[kind] && r.watch === watch);

  async function waitUntil<T>(what: string, fn: () => T | null | undefined | false | Promise<T | null | undefined | false>, timeoutMs = CONVERGE_MS, everyMs = 100): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await fn();
      if (v) return v;
      if (ctl && (ctl.proc.exitCode !== null || ctl.proc.signalCode !== null)) {
        throw new Error(`controller exited while waiting for ${what}:\n${ctl.proc.output().stderr.slice(-3000)}`);
      }
      if (Date.now() > deadline) throw new Error(`no ${what} within ${timeoutMs} ms`);
      await sleep(everyMs);
    }
  }

  const frontend = (d: Inspected, ip: string, port = 80) =>
    d.frontends.find((f) => f.protocol === 'TCP' && f.address === ip && f.port === port);
  const backendIps = (d: Inspected, ip: string): string[] | null => {
    const f = frontend(d, ip);
    return f ? f.backends.map((b) => b.address).sort() : null;
  };

  /** Waits until the ClusterIP's frontend has exactly these backends (null: no frontend). */
  async function programmed(ip: string, want: string[] | null, timeoutMs = CONVERGE_MS): Promise<Inspected> {
    let last: string[] | null | undefined;
    try {
      return await waitUntil(`${ip} -> ${JSON.stringify(want)}`, async () => {
        const d = await C().inspect();
        last = backendIps(d, ip);
        return JSON.stringify(last) === JSON.stringify(want) ? d : null;
      }, timeoutMs, 150);
    } catch (e) {
      throw new Error(`${(e as Error).message}; last seen ${JSON.stringify(last)}`);
    }
  }

  /** n TCP connections from pod cl; asserts all answered and only by these pods. */
  async function traffic(ip: string, want: string[], n = 30, everyOne = true) {
    const s = await lab.client(lab.pod('cl').ns, { proto: 'tcp', target: `${ip}:80`, count: n, concurrency: 6, timeoutMs: 1500 });
    assert.equal(s.ok, n, `${ip}: ${JSON.stringify(s.errors)} byPod ${JSON.stringify(s.byPod)}`);
    const seen = Object.keys(s.byPod).sort();
    if (everyOne) assert.deepEqual(seen, [...want].sort(), `${ip}: ${JSON.stringify(s.byPod)}`);
    else for (const p of seen) assert.ok(want.includes(p), `${ip}: ${p} answered: ${JSON.stringify(s.byPod)}`);
    return s;
  }

  async function converge(ip: string, want: string[]): Promise<void> {
    await programmed(ip, ips(...want));
    await traffic(ip, want);
  }

  const report = (t: TestContext, key: string, value: unknown): void => {
    figures[key] = value;
    const line = `${key}: ${typeof value === 'string' ? value : JSON.stringify(value)}`;
    t.diagnostic(line);
    console.log(line);
  };

  before(async () => {
    ensureBpffs();
    lab = await createLab({
      pods: [
        { name: 'cl', node: 'node1' }, { name: 'b', node: 'node1' }, { name: 'e', node: 'node1' },
        { name: 'c', node: 'node2' }, { name: 'd', node: 'node2' },
      ],
    });
    dir = mkdtempSync(join(tmpdir(), 'kx-kube-lab-'));
    const socketPath = join(dir, 'api.sock');
    api = new FakeApiServer({ socketPath });
    await api.start();
    forwarder = lab.spawn(lab.nodes.node1.ns, [process.execPath, FORWARDER, '127.0.0.1:6443', socketPath], { useNsenter: true });
    await forwarder.waitFor('listening', 10_000);
    api.put({
      apiVersion: 'v1', kind: 'Node',
      metadata: { name: 'node1', labels: { 'topology.kubernetes.io/zone': ZONE, 'kubernetes.io/hostname': 'node1' } },
      spec: { podCIDR: lab.nodes.node1.podCidr },
      status: { addresses: [{ type: 'InternalIP', address: lab.nodes.node1.ip }, { type: 'Hostname', address: 'node1' }] },
    });
    putService(web('b', 'c', 'd'));
  });

  after(async () => {
    await cleanUpAll([
      ['controller', () => ctl?.proc.stop()],
      ['forwarder', () => forwarder?.stop()],
      ['fake API server', () => api?.stop()],
      ['lab', () => lab?.teardown()],
      ['temp dir', () => dir && rmSync(dir, { recursive: true, force: true })],
    ]);
    console.log(`kubernetes lab figures: ${JSON.stringify(figures)}`);
  });

  test('1. initial sync: lists all three kinds, then programs web; traffic reaches b, c, d; node facts carry the zone', async (t) => {
    // The first two Node lists fail: nothing may be programmed until the Node was listed too.
    api.failNext(2, 500, (r) => r.path === PATHS.Node && !r.watch);
    const t0 = Date.now();
    ctl = await Controller.startWith(lab, 'node1', [
      '--source', 'kubernetes', '--api-server', 'http://127.0.0.1:6443', '--hostname-override', 'node1',
      '--api-watch-inactivity', '3s', '--api-max-backoff', '2s', '--api-request-timeout', '5s', '--api-relist-period', '30m',
    ], ['--log-level', 'debug', '--healthz-bind-address', '']);
    const logs = C().logs();
    const first = logs.find((l) => l.msg === 'synced')!;
    report(t, 'start -> first sync (ms)', first.time - t0);
    assert.ok((first.writes as number) > 0, `first sync wrote nothing: ${JSON.stringify(first)}`);
    // Nothing before every kind was listed: a list of each kind was answered before the first sync.
    for (const kind of KINDS) {
      const lists = requestsSince(0, kind, false);
      assert.ok(lists.length >= 1 && lists[0]!.at <= first.time, `${kind}: no list before the first sync`);
    }
    const nodeLists = requestsSince(0, 'Node', false);
    assert.deepEqual(nodeLists[0]!.query.fieldSelector, 'metadata.name=node1');
    assert.ok(nodeLists.length >= 3, `Node lists: ${nodeLists.length}`);
    const nodeListed = nodeLists[2]!; // the first one answered
    const dataplaneStart = logs.find((l) => l.msg === 'starting kube-xdp (eBPF mode)');
    assert.ok(dataplaneStart && dataplaneStart.time >= nodeListed.at, 'the dataplane was set up before the Node was listed');
    assert.ok(first.time >= nodeListed.at, 'a sync before the Node was listed');
    const early = logs.filter((l) => l.msg === PROBLEM_MSG);
    assert.deepEqual(early.map(kindOf), ['Node', 'Node'], JSON.stringify(early));
    for (const l of early) assert.match(String(l.err), /HTTP 500/);
    report(t, 'Node list failures -> Node listed -> first sync (ms after start)', [nodeListed.at - t0, first.time - t0]);
    const facts = logs.find((l) => l.msg === 'node facts');
    assert.ok(facts, 'no "node facts" line');
    assert.equal(facts.zone, ZONE);
    assert.deepEqual(facts.addresses, [lab.nodes.node1.ip]);
    assert.ok(logs.findIndex((l) => l.msg === 'source synced: programming the dataplane') < logs.indexOf(first));
    // The initial list produced one ADDED per object and nothing else.
    assert.deepEqual(events(0).sort(), ['EndpointSlice ADDED default/web-abcde', 'Service ADDED default/web']);

    const s = await lab.client(lab.pod('cl').ns, { proto: 'tcp', target: `${WEB_IP}:80`, count: 60, concurrency: 6 });
    assert.equal(s.ok, 60, JSON.stringify(s.errors));
    for (const p of ['b', 'c', 'd']) assert.ok((s.byPod[p] ?? 0) > 0, `${p}: ${JSON.stringify(s.byPod)}`);
    assert.deepEqual(Object.keys(s.byPod).sort(), ['b', 'c', 'd']);
    // The NodePort answers on the address the Node object gave (no --node-ip).
    const np = await lab.client(lab.ext.ns, { proto: 'tcp', target: `${lab.nodes.node1.ip}:${NODE_PORT}`, count: 20, concurrency: 4 });
    assert.equal(np.ok, 20, JSON.stringify(np.errors));
  });

  test('2. create: a new Service and its slice are programmed; traffic reaches e only', async (t) => {
    const cl = lab.pod('cl');
    const poller = lab.spawn(cl.ns, [process.execPath, '-e', POLLER, API_IP, '80', '15000']);
    await poller.waitFor(/^ready$/m, 10_000);
    const m = mark();
    const t0 = Date.now();
    putService(simple('api', API_IP, 'e'));
    const out = await poller.waitFor(/^(first|timeout)/m, 20_000);
    const hit = /^first (.*)$/m.exec(out);
    assert.ok(hit, `no connection to ${API_IP} succeeded within 15 s`);
    const first = JSON.parse(hit[1]!) as { pod: string; startedAt: number; at: number; attempts: number };
    assert.equal(first.pod, 'e');
    const sync = await C().waitFor((l) => l.msg === 'synced' && l.sinceTriggerMs !== null, 5_000, m);
    report(t, 'create: put -> first successful connection (ms, attempt start / answer)', [first.startedAt - t0, first.at - t0]);
    report(t, 'create: sinceTriggerMs', sync.sinceTriggerMs);
    assert.deepEqual(events(m).sort(), ['EndpointSlice ADDED default/api-abcde', 'Service ADDED default/api']);
    await programmed(API_IP, ips('e'));
    await traffic(API_IP, ['e'], 30);
  });

  test('3. scale web 3 -> 1 -> 3 through slice updates', async (t) => {
    const steps: Array<{ eps: string[]; sinceTriggerMs: unknown; syncedAfterMs: number }> = [];
    for (const eps of [['c'], ['b', 'c', 'd']]) {
      const m = mark();
      const t0 = Date.now();
      putSlice(web(...eps));
      const sync = await C().waitFor((l) => l.msg === 'synced' && (l.writes as number) > 0 && l.sinceTriggerMs !== null, CONVERGE_MS, m);
      await converge(WEB_IP, eps);
      assert.deepEqual(events(m), ['EndpointSlice MODIFIED default/web-abcde']);
      steps.push({ eps, sinceTriggerMs: sync.sinceTriggerMs, syncedAfterMs: sync.time - t0 });
    }
    report(t, 'scale steps (sinceTriggerMs)', steps.map((s) => `${s.eps.join(',')}: ${String(s.sinceTriggerMs)} ms (put -> synced line ${s.syncedAfterMs} ms)`).join('; '));
  });

  test('4. delete: the Service and its slice go, the frontend goes, web still works', async () => {
    const m = mark();
    assert.ok(api.delete('EndpointSlice', 'default', 'api-abcde'));
    assert.ok(api.delete('Service', 'default', 'api'));
    const d = await programmed(API_IP, null);
    assert.equal(d.frontends.filter((f) => f.address === API_IP).length, 0);
    assert.deepEqual(events(m).sort(), ['EndpointSlice DELETED default/api-abcde', 'Service DELETED default/api']);
    const s = await lab.client(lab.pod('cl').ns, { proto: 'tcp', target: `${API_IP}:80`, count: 10, concurrency: 5, timeoutMs: 500 });
    assert.equal(s.ok, 0, `connections to a deleted Service succeeded: ${JSON.stringify(s.byPod)}`);
    await traffic(WEB_IP, ['b', 'c', 'd']);
  });

  test('5. watch cut mid-stream: resumes from its resourceVersion without a relist; only the real change is an event', async (t) => {
    const m = mark();
    const r = api.requests.length;
    const rvBefore = api.resourceVersion;
    const cut = api.cutWatches();
    putSlice(web('b', 'c'));
    const t0 = Date.now();
    assert.ok(cut >= 3, `only ${cut} watches were open`);
    await converge(WEB_IP, ['b', 'c']);
    // Every informer re-opened its watch from a resourceVersion (no "0", no list).
    await waitUntil('three resumed watches', () => KINDS.every((k) => requestsSince(r, k, true).length >= 1));
    await sleep(1_500); // a bookmark interval and more: anything late would show up
    for (const kind of KINDS) {
      const w = requestsSince(r, kind, true)[0]!;
      const rv = Number(w.query.resourceVersion);
      assert.ok(rv > 0 && rv <= rvBefore, `${kind}: watch re-opened with resourceVersion ${JSON.stringify(w.query.resourceVersion)}`);
      assert.equal(requestsSince(r, kind, false).length, 0, `${kind}: relisted after a plain cut`);
    }
    const rs = restarts(m);
    assert.ok(rs.length >= 3, `restarts logged: ${JSON.stringify(rs)}`);
    for (const l of rs) assert.ok(retryMs(l) <= 2000, String(l.context));
    assert.deepEqual(events(m), ['EndpointSlice MODIFIED default/web-abcde']);
    const sync = writingSyncs(m)[0]!;
    report(t, 'watch cut: cut -> writing sync (ms)', sync.time - t0);
    report(t, 'watch cut: restarts', rs.map((l) => `${kindOf(l)} ${retryMs(l)} ms (${String(l.err)})`).join('; '));
  });

  test('6. 410 Gone after a cut and a compaction: relists, and only the changed slice is an event', async (t) => {
    const m = mark();
    const r = api.requests.length;
    api.cutWatches();
    putSlice(web('b', 'c', 'd'));
    api.compact();
    const floor = api.resourceVersion;
    const t0 = Date.now();
    await converge(WEB_IP, ['b', 'c', 'd']);
    await waitUntil('a list of every kind after the 410', () => KINDS.every((k) => requestsSince(r, k, false).length >= 1));
    await sleep(1_500);
    for (const kind of KINDS) {
      const expired = requestsSince(r, kind, true).find((w) => Number(w.query.resourceVersion) < floor);
      assert.ok(expired, `${kind}: no watch from a compacted resourceVersion`);
      const list = requestsSince(r, kind, false)[0]!;
      assert.ok(list.at >= expired.at, `${kind}: the list did not follow the 410`);
      const again = requestsSince(r, kind, true).filter((w) => w.at >= list.at);
      assert.ok(again.length >= 1 && Number(again[0]!.query.resourceVersion) >= floor, `${kind}: no watch from the relisted resourceVersion`);
    }
    assert.deepEqual(events(m), ['EndpointSlice MODIFIED default/web-abcde']);
    report(t, '410: fault -> writing sync (ms)', writingSyncs(m)[0]!.time - t0);
  });

  test('7. API server down for 30 s: the dataplane keeps serving; on recovery only the real changes are events', async (t) => {
    // A Service that will be deleted while the API server is away.
    let m = mark();
    putService(simple('tmp', TMP_IP, 'e'));
    await converge(TMP_IP, ['e']);
    assert.deepEqual(events(m).sort(), ['EndpointSlice ADDED default/tmp-abcde', 'Service ADDED default/tmp']);

    m = mark();
    const downAt = Date.now();
    await api.goDown();
    // The store changes while nobody can watch it.
    putSlice(web('b', 'c'));
    assert.ok(api.delete('EndpointSlice', 'default', 'tmp-abcde'));
    assert.ok(api.delete('Service', 'default', 'tmp'));
    const seen: Record<string, number> = {};
    for (let round = 0; round < 6; round++) {
      await sleep(Math.max(0, downAt + round * 5_000 - Date.now()));
      const s = await traffic(WEB_IP, ['b', 'c', 'd'], 20, false);
      for (const [p, n] of Object.entries(s.byPod)) seen[p] = (seen[p] ?? 0) + n;
    }
    assert.deepEqual(Object.keys(seen).sort(), ['b', 'c', 'd'], `traffic while down: ${JSON.stringify(seen)}`);
    await sleep(Math.max(0, downAt + 30_000 - Date.now()));
    const down = since(m);
    const downRestarts = restarts(m);
    assert.deepEqual(writingSyncs(m), [], 'a sync wrote while the API server was down');
    assert.deepEqual(events(m), [], 'object events while the API server was down');
    // Backoff: capped at --api-max-backoff 2s, and it did grow from the 500 ms base.
    const delays = downRestarts.map(retryMs);
    assert.ok(Math.max(...delays) <= 2000 && Math.max(...delays) >= 1000, `restart delays ${delays.join(',')}`);
    for (const kind of KINDS) {
      const n = downRestarts.filter((l) => kindOf(l) === kind).length;
      assert.ok(n >= 10 && n <= 60, `${kind}: ${n} restarts in 30 s`);
    }

    const up = mark();
    const r = api.requests.length;
    await api.comeUp();
    const upAt = Date.now();
    await programmed(TMP_IP, null);
    const d = await programmed(WEB_IP, ips('b', 'c'));
    assert.equal(d.frontends.filter((f) => f.address === TMP_IP).length, 0);
    const converged = writingSyncs(up);
    assert.ok(converged.length >= 1);
    await traffic(WEB_IP, ['b', 'c']);
    const noConn = await lab.client(lab.pod('cl').ns, { proto: 'tcp', target: `${TMP_IP}:80`, count: 5, timeoutMs: 500 });
    assert.equal(noConn.ok, 0, JSON.stringify(noConn.byPod));
    await sleep(1_500);
    assert.deepEqual(events(up).sort(), [
      'EndpointSlice DELETED default/tmp-abcde', 'EndpointSlice MODIFIED default/web-abcde', 'Service DELETED default/tmp',
    ]);
    assert.equal(since(up).filter((l) => l.msg === 'node facts' || l.msg === 'own Node object not found').length, 0, 'the Node flapped');
    for (const kind of KINDS) assert.equal(requestsSince(r, kind, false).length, 0, `${kind}: relisted after the outage (history was kept)`);
    report(t, 'outage: restarts logged while down', `${downRestarts.length} (${KINDS.map((k) => `${k} ${downRestarts.filter((l) => kindOf(l) === k).length}`).join(', ')}), delays ${Math.min(...delays)}..${Math.max(...delays)} ms, ${down.length} log lines`);
    report(t, 'outage: comeUp -> last converging writing sync (ms)', converged[converged.length - 1]!.time - upAt);
    report(t, 'outage: comeUp -> first re-opened watch per kind (ms)', Object.fromEntries(KINDS.map((k) => [k, (requestsSince(r, k, true)[0]?.at ?? NaN) - upAt])));
  });

  test('8. stalled watch: headers but no line, then no headers at all; inactivity restarts; converges after the stall', async (t) => {
    // --- body stall: 200 and headers, then silence
    let m = mark();
    let r = api.requests.length;
    api.stall(true, 'body');
    api.cutWatches();
    const stallAt = Date.now();
    putSlice(web('b', 'c', 'd'));
    const quiet = await waitUntil('an inactivity restart of every kind', () => {
      const lines = restarts(m).filter((l) => /nothing received/.test(String(l.err)));
      return KINDS.every((k) => lines.some((l) => kindOf(l) === k)) ? lines : null;
    }, 15_000, 100);
    const delays = KINDS.map((kind) => {
      const line = quiet.find((l) => kindOf(l) === kind)!;
      const opened = requestsSince(r, kind, true).filter((w) => w.at <= line.time).pop();
      assert.ok(opened, `${kind}: no watch before its inactivity restart`);
      return [kind, line.time - opened.at] as const;
    });
    for (const [kind, ms] of delays) assert.ok(ms >= 2_900, `${kind}: abandoned after ${ms} ms of silence (< 3 s)`);
    // During the stall the old state serves, and the change is not seen yet.
    await traffic(WEB_IP, ['b', 'c'], 20);
    assert.deepEqual(writingSyncs(m), [], 'a sync wrote during a body stall');
    api.stall(false);
    const unstallAt = Date.now();
    await converge(WEB_IP, ['b', 'c', 'd']);
    const wrote = writingSyncs(m)[0]!;
    assert.deepEqual(events(m), ['EndpointSlice MODIFIED default/web-abcde']);
    report(t, 'body stall: watch opened -> inactivity restart (ms)', Object.fromEntries(delays));
    report(t, 'body stall: stall(false) -> writing sync (ms); cut -> writing sync (ms)', [wrote.time - unstallAt, wrote.time - stallAt]);

    // --- headers stall: nothing at all, not even a status line
    m = mark();
    r = api.requests.length;
    api.stall(true, 'headers');
    api.cutWatches();
    putSlice(web('c', 'd'));
    const hs = await waitUntil('an inactivity restart while headers stall', () =>
      restarts(m).find((l) => kindOf(l) === 'EndpointSlice' && /nothing received/.test(String(l.err))), 15_000, 100);
    const opened = requestsSince(r, 'EndpointSlice', true).filter((w) => w.at <= hs.time).pop();
    assert.ok(opened);
    assert.ok(hs.time - opened.at >= 2_900, `headers stall abandoned after ${hs.time - opened.at} ms`);
    await traffic(WEB_IP, ['b', 'c', 'd'], 20, false);
    assert.deepEqual(writingSyncs(m), [], 'a sync wrote during a headers stall');
    api.stall(false);
    const unstall2 = Date.now();
    await converge(WEB_IP, ['c', 'd']);
    assert.deepEqual(events(m), ['EndpointSlice MODIFIED default/web-abcde']);
    report(t, 'headers stall: watch opened -> inactivity restart (ms)', hs.time - opened.at);
    report(t, 'headers stall: stall(false) -> writing sync (ms)', writingSyncs(m)[0]!.time - unstall2);
  });

  test('9. bad objects are reported by field; a 5,000-endpoint Service', async (t) => {
    const m = mark();
    const bad = (name: string, ip: string, edit: (spec: Json) => void): Json => {
      const [svc] = objects(simple(name, ip, 'e'));
      edit(svc.spec);
      return svc;
    };
    api.put(bad('bad-ip', '10.96.0.999', () => {}));
    api.put(bad('bad-port0', '10.96.0.51', (s) => { s.ports[0].port = 0; }));
    api.put(bad('bad-port70000', '10.96.0.52', (s) => { s.ports[0].port = 70000; }));
    api.put(bad('bad-proto', '10.96.0.53', (s) => { s.ports[0].protocol = 'ICMP'; }));
    const [, orphan] = objects(simple('orphan', '10.96.0.54', 'e'));
    delete orphan.metadata.labels['kubernetes.io/service-name'];
    orphan.metadata.name = 'nolabel-xyz';
    api.put(orphan);

    const want: Array<{ kind: string; name: string; field: string; value: unknown; action: string }> = [
      { kind: 'Service', name: 'bad-ip', field: 'spec.clusterIPs[0]', value: '10.96.0.999', action: 'rejected' },
      { kind: 'Service', name: 'bad-port0', field: 'spec.ports[0].port', value: 0, action: 'skipped' },
      { kind: 'Service', name: 'bad-port70000', field: 'spec.ports[0].port', value: 70000, action: 'skipped' },
      { kind: 'Service', name: 'bad-proto', field: 'spec.ports[0].protocol', value: 'ICMP', action: 'skipped' },
      { kind: 'EndpointSlice', name: 'nolabel-xyz', field: 'metadata.labels["kubernetes.io/service-name"]', value: undefined, action: 'rejected' },
    ];
    const problems = await waitUntil('every bad object logged', () => {
      const lines = since(m).filter((l) => typeof l.field === 'string');
      return want.every((w) => lines.some((l) => l.name === w.name)) ? lines : null;
    }, 10_000);
    for (const w of want) {
      const lines = problems.filter((l) => l.name === w.name);
      assert.equal(lines.length, 1, `${w.name}: ${JSON.stringify(lines)}`);
      const l = lines[0]!;
      assert.deepEqual({ kind: l.kind, namespace: l.namespace, name: l.name, field: l.field, value: l.value, action: l.action },
        { kind: w.kind, namespace: 'default', name: w.name, field: w.field, value: w.value, action: w.action });
      assert.ok(l.msg.includes(w.field) && l.msg.includes(`default/${w.name}`), l.msg);
      assert.equal(l.level, 40);
    }
    assert.equal(problems.length, want.length, `unexpected problems: ${JSON.stringify(problems.map((l) => l.msg))}`);
    // None of them got a frontend (port-less or rejected), and web is untouched.
    const d0 = await C().inspect();
    for (const ip of ['10.96.0.51', '10.96.0.52', '10.96.0.53']) assert.equal(d0.frontends.filter((f) => f.address === ip).length, 0, ip);
    assert.deepEqual(backendIps(d0, WEB_IP), ips('c', 'd'));
    await traffic(WEB_IP, ['c', 'd']);

    // 5,000 endpoints in 5 slices of 1,000 (pods that do not exist, on node2).
    const mb = mark();
    const t0 = Date.now();
    const all: string[] = [];
    const [bigSvc] = objects(simple('big', BIG_IP));
    api.put(bigSvc);
    for (let k = 0; k < 5; k++) {
      const endpoints = Array.from({ length: 1000 }, (_, j) => {
        const i = k * 1000 + j;
        const address = `10.250.${Math.floor(i / 250)}.${(i % 250) + 1}`;
        all.push(address);
        return { addresses: [address], conditions: { ready: true, serving: true, terminating: false }, nodeName: 'node2' };
      });
      api.put({
        apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4',
        metadata: {
          name: `big-${k}`, namespace: 'default', annotations: { [TRIGGER]: new Date().toISOString() },
          labels: { 'kubernetes.io/service-name': 'big', 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' },
        },
        ports: [{ name: 'tcp', protocol: 'TCP', port: 8080 }],
        endpoints,
      });
    }
    let d: Inspected;
    try {
      d = await waitUntil('big with 5,000 backends', async () => {
        const x = await C().inspect();
        return (frontend(x, BIG_IP)?.backends.length ?? 0) === 5000 ? x : null;
      }, 20_000, 300);
    } catch (e) {
      const x = await C().inspect();
      const rejected = since(mb).filter((l) => l.level >= 40).map((l) => l.msg);
      throw new Error(`${(e as Error).message}: big has ${frontend(x, BIG_IP)?.backends.length ?? 'no frontend'}; warnings: ${JSON.stringify(rejected.slice(0, 5))}`);
    }
    const fe = frontend(d, BIG_IP)!;
    assert.deepEqual(fe.backends.map((b) => b.address).sort(), [...all].sort());
    assert.ok(fe.backends.every((b) => b.port === 8080));
    assert.equal(since(mb).filter((l) => l.level >= 40).length, 0, 'warnings for big');
    assert.deepEqual(events(mb).sort(), ['EndpointSlice ADDED default/big-0', 'EndpointSlice ADDED default/big-1', 'EndpointSlice ADDED default/big-2',
      'EndpointSlice ADDED default/big-3', 'EndpointSlice ADDED default/big-4', 'Service ADDED default/big']);
    const bigSyncs = writingSyncs(mb);
    report(t, 'big: put -> 5,000 backends visible (ms)', Date.now() - t0);
    report(t, 'big: writing syncs (writes, durationMs, sinceTriggerMs)', bigSyncs.map((l) => [l.writes, l.durationMs, l.sinceTriggerMs]));
    await traffic(WEB_IP, ['c', 'd']);
  });

  test('10. the controller never exited; the number of writing syncs is plausible', async (t) => {
    assert.equal(C().proc.exitCode, null);
    assert.equal(C().proc.signalCode, null);
    const all = C().syncs();
    const writing = all.filter((l) => (l.writes as number) > 0);
    report(t, 'syncs (total, writing)', [all.length, writing.length]);
    // One per change applied above, give or take coalescing: 1 + 2 + 2 + 1 + 1 + 1 + 2 + 1 + 2 + 2 + 1..6.
    assert.ok(writing.length >= 10 && writing.length <= 40, `writing syncs: ${writing.length}`);
    assert.equal(C().logs().filter((l) => l.level >= 50).length, 0, JSON.stringify(C().logs().filter((l) => l.level >= 50)));
  });
});
