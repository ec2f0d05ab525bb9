// Churn under traffic (issue 16, part 3), real packets: for 60 s the file source is rewritten
// every 100 ms, adding and removing endpoints (b and c stay; d, e and f come and go, each
// staying away at least 3 s once removed), while a pod and an outside client open TCP
// connections to the ClusterIP and to node1's NodePort every 20 ms, and held connections talk
// the whole time. Asserted: no connection fails (a ready endpoint always exists); no new
// connection reaches an endpoint after its removal is programmed on node1; held connections to
// b and c never move or fail. Programming latency is reported, not asserted.
//
// "Removal programmed" on node1: the removal is written at w; node1's first EndpointSlice event
// after w (debug log 'object event') happens at e and carries a content at least as new as w;
// the first writing sync that starts after e (its 'synced' time minus durationMs) has applied
// it at its end P. A connection that began after P and before the endpoint's next re-add and
// reached it is a violation.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLab, ensureBpffs, labUnavailable, type Lab, type LabPod } from './lab.js';
import { Controller } from './kube-xdp.js';
import { writeSource, type LabService } from './manifests.js';
import type { Summary } from './client.js';

const CLIENT = fileURLToPath(new URL('./client.js', import.meta.url));
const unavailable = labUnavailable();
if (unavailable && process.env.CI === 'true') test('churn lab prerequisites (CI runs this as root)', () => assert.fail(unavailable));

const CLUSTER_IP = '10.96.0.10';
const NODE_PORT = 30080;
const CHURN_MS = 100, DURATION_MS = 60_000, MIN_ABSENCE_MS = 3_000;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? 0;

describe('churn under traffic (eBPF mode)', { skip: unavailable ?? false }, () => {
  let lab: Lab;
  let dir: string;
  let source: string;
  const controllers: Controller[] = [];

  before(async () => {
    ensureBpffs();
    lab = await createLab({
      pods: [
        { name: 'cl', node: 'node1' }, { name: 'b', node: 'node1' }, { name: 'd', node: 'node1' }, { name: 'e', node: 'node1' },
        { name: 'c', node: 'node2' }, { name: 'f', node: 'node2' },
      ],
    });
    dir = mkdtempSync(join(tmpdir(), 'kx-churn-lab-'));
    source = join(dir, 'services.json');
    writeSource(source, [web(['b', 'c'])]);
    controllers.push(
      await Controller.start(lab, 'node1', source, ['--log-level', 'debug']),
      await Controller.start(lab, 'node2', source),
    );
  });

  after(async () => {
    for (const c of controllers) await c.kill('SIGTERM');
    await lab?.teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const web = (names: string[]): LabService => ({
    name: 'web', clusterIP: CLUSTER_IP, port: 80, targetPort: 8080, type: 'NodePort', nodePort: NODE_PORT,
    protocols: ['TCP'], endpoints: names.map((n): LabPod => lab.pod(n)),
  });

  test(`endpoints churned every ${CHURN_MS} ms for ${DURATION_MS / 1000} s under connections every 20 ms`, async (t) => {
    const node1 = controllers[0]!;
    const steady = [
      lab.spawn(lab.pod('cl').ns, [process.execPath, CLIENT, '--tcp', '--target', `${CLUSTER_IP}:80`, '--steady', '--record', '--interval-ms', '20', '--duration-ms', String(DURATION_MS)]),
      lab.spawn(lab.ext.ns, [process.execPath, CLIENT, '--tcp', '--target', `${lab.nodes.node1.ip}:${NODE_PORT}`, '--steady', '--record', '--interval-ms', '20', '--duration-ms', String(DURATION_MS)]),
    ];
    const held = Array.from({ length: 4 }, () => lab.spawn(lab.pod('cl').ns, [process.execPath, CLIENT, '--tcp', '--target', `${CLUSTER_IP}:80`, '--hold', '--interval-ms', '50', '--duration-ms', String(DURATION_MS), '--timeout-ms', '2000']));

    // The churn: one of d, e, f toggles per step; a removed one stays away MIN_ABSENCE_MS.
    const present = new Set<string>();
    const removedAt = new Map<string, number>();
    const history: { name: string; removed: number; back: number }[] = [];
    let rnd = 0x9e3779b9;
    const next = () => { rnd ^= rnd << 13; rnd >>>= 0; rnd ^= rnd >>> 17; rnd ^= rnd << 5; rnd >>>= 0; return rnd; };
    const t0 = Date.now();
    let writes = 0;
    while (Date.now() - t0 < DURATION_MS) {
      const name = ['d', 'e', 'f'][next() % 3]!;
      const now = Date.now();
      if (present.has(name)) {
        present.delete(name);
        removedAt.set(name, now);
      } else if (now - (removedAt.get(name) ?? -Infinity) >= MIN_ABSENCE_MS) {
        present.add(name);
        const r = removedAt.get(name);
        if (r !== undefined) history.push({ name, removed: r, back: now });
        removedAt.delete(name);
      }
      writeSource(source, [web(['b', 'c', ...present])]);
      writes++;
      await new Promise((r) => setTimeout(r, CHURN_MS));
    }
    for (const [name, r] of removedAt) history.push({ name, removed: r, back: Infinity });

    const summaries = await Promise.all([...steady, ...held].map(async (p) => {
      if (p.exitCode === null && p.signalCode === null) await new Promise((r) => p.once('exit', r));
      const lines = p.output().stdout.trim().split('\n');
      return JSON.parse(lines[lines.length - 1]!) as Summary;
    }));
    const [toCluster, toNodePort] = summaries as [Summary, Summary];

    // When each removal took effect on node1.
    const logs = node1.logs();
    const events = logs.filter((l) => l.msg === 'object event' && l['kind'] === 'EndpointSlice').map((l) => l.time);
    const syncs = logs.filter((l) => l.msg === 'synced' && (l['writes'] as number) > 0).map((l) => ({ start: l.time - (l['durationMs'] as number), end: l.time }));
    const latencies: number[] = [];
    const violations: string[] = [];
    let checked = 0;
    for (const h of history) {
      const e = events.find((x) => x >= h.removed);
      const sync = e === undefined ? undefined : syncs.find((s) => s.start >= e);
      if (!sync || sync.end >= h.back) continue; // not applied before the endpoint came back
      checked++;
      latencies.push(sync.end - h.removed);
      for (const [who, s] of [['pod -> ClusterIP', toCluster], ['ext -> NodePort', toNodePort]] as const) {
        for (const r of s.records ?? []) {
          if (r.pod === h.name && r.at > sync.end && r.at < h.back) violations.push(`${who}: a connection begun ${r.at - sync.end} ms after ${h.name}'s removal was programmed reached it`);
        }
      }
    }

    const stats = (await node1.inspect()).stats;
    const connections = toCluster.ok + toCluster.failed + toNodePort.ok + toNodePort.failed;
    t.diagnostic(`${writes} writes; ${connections} connections (${toCluster.failed + toNodePort.failed} failed: ${JSON.stringify({ ...toCluster.errors, ...toNodePort.errors })}); ` +
      `${checked} removals checked, ${violations.length} violations; removal -> programmed on node1 p50 ${pct(latencies, 50)} ms, p99 ${pct(latencies, 99)} ms; ` +
      `held: ${summaries.slice(2).map((h) => `${Object.keys(h.byPod).join('/')} ${h.ok} ok ${h.failed} failed`).join(', ')}; node1 datapath ${JSON.stringify(stats)}`);
    assert.ok(checked >= 20, `only ${checked} removals could be checked`);
    assert.deepEqual(violations.slice(0, 5), []);
    assert.equal(toCluster.failed + toNodePort.failed, 0, JSON.stringify([toCluster.timeline, toNodePort.timeline]));
    for (const p of ['d', 'e', 'f']) assert.ok((toCluster.byPod[p] ?? 0) + (toNodePort.byPod[p] ?? 0) > 0, `churned endpoint ${p} was never used`);
    for (const h of summaries.slice(2)) {
      const pods = Object.keys(h.byPod);
      assert.equal(pods.length, 1, `a held connection moved: ${JSON.stringify(h.byPod)}`);
      // d, e, f may be removed under a held connection: TCP stays on them (kube-proxy's conntrack does too).
      assert.equal(h.failed, 0, `held connection on ${pods[0]}: ${JSON.stringify(h.errors)}`);
    }
  });
});
