// The eBPF dataplane with real packets: two nodes, each running the controller on the same
// file source, pods behind routed veths, an external client on the "physical" network.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLab, ensureBpffs, labUnavailable, type Lab, type LabPod } from './lab.js';
import { Controller } from './kube-xdp.js';
import { writeSource, type LabService } from './manifests.js';
import type { Summary } from './client.js';
import { fileURLToPath } from 'node:url';

const CLIENT = fileURLToPath(new URL('./client.js', import.meta.url));

const unavailable = labUnavailable();
if (unavailable && process.env.CI === 'true') {
  test('eBPF lab prerequisites (CI runs this as root)', () => assert.fail(unavailable));
}

const CLUSTER_IP = '10.96.0.10';
const NODE_PORT = 30080;
const EMPTY_IP = '10.96.0.20', EMPTY_NODE_PORT = 30090;
const STICKY_IP = '10.96.0.30';
const LB_IP = '192.168.77.200';

describe('eBPF dataplane in the netns lab', { skip: unavailable ?? false }, () => {
  let lab: Lab;
  let dir: string;
  let source: string;
  const controllers: Controller[] = [];
  const pods = (...names: string[]): LabPod[] => names.map((n) => lab.pod(n));
  const web = (endpoints: LabPod[]): LabService => ({
    name: 'web', clusterIP: CLUSTER_IP, port: 80, targetPort: 8080, type: 'NodePort', nodePort: NODE_PORT, endpoints,
  });
  /** Services of the kube-proxy semantics tests; the updates test drops them. */
  const extras = (): LabService[] => [
    { name: 'empty', clusterIP: EMPTY_IP, port: 80, targetPort: 8080, type: 'NodePort', nodePort: EMPTY_NODE_PORT, endpoints: [] },
    { name: 'sticky', clusterIP: STICKY_IP, port: 80, targetPort: 8080, protocols: ['TCP'], affinityTimeoutS: 600, endpoints: pods('b', 'c', 'd') },
    { name: 'lb-open', clusterIP: '10.96.0.40', port: 80, targetPort: 8080, protocols: ['TCP'], type: 'LoadBalancer', nodePort: 30100,
      loadBalancerIP: LB_IP, sourceRanges: [`${lab.ext.ip}/32`], endpoints: pods('b', 'c', 'd') },
    { name: 'lb-closed', clusterIP: '10.96.0.41', port: 81, targetPort: 8080, protocols: ['TCP'], type: 'LoadBalancer', nodePort: 30101,
      loadBalancerIP: LB_IP, sourceRanges: ['198.51.100.0/24'], endpoints: pods('b', 'c', 'd') },
  ];
  const share = (s: Summary, pod: string) => (s.byPod[pod] ?? 0) / s.ok;
  const addrs = (m: Record<string, number>) => [...new Set(Object.keys(m).map((k) => k.split(':')[0]))].sort();

  before(async () => {
    ensureBpffs();
    lab = await createLab({
      pods: [
        { name: 'cl', node: 'node1' }, { name: 'b', node: 'node1' }, { name: 'e', node: 'node1' },
        { name: 'c', node: 'node2' }, { name: 'd', node: 'node2' },
      ],
    });
    dir = mkdtempSync(join(tmpdir(), 'kx-ebpf-lab-'));
    source = join(dir, 'services.json');
    writeSource(source, [web(pods('b', 'c', 'd')), ...extras()]);
    // the "cloud load balancer": the LB IP is routed to node1
    await lab.exec(lab.ext.ns, ['ip', 'route', 'add', `${LB_IP}/32`, 'via', lab.nodes.node1.ip]);
    controllers.push(await Controller.start(lab, 'node1', source), await Controller.start(lab, 'node2', source));
  });

  after(async () => {
    for (const c of controllers) await c.kill('SIGTERM');
    await lab?.teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('ClusterIP over TCP: 300 connections from a pod reach every backend; the client sees the ClusterIP', async () => {
    const s = await lab.client(lab.pod('cl').ns, { proto: 'tcp', target: `${CLUSTER_IP}:80`, count: 300, concurrency: 10 });
    assert.equal(s.ok, 300, JSON.stringify(s.errors));
    for (const p of ['b', 'c', 'd']) assert.ok(share(s, p) >= 0.15, `${p}: ${JSON.stringify(s.byPod)}`);
    assert.deepEqual(Object.keys(s.replyPeers), [`${CLUSTER_IP}:80`]);
    // pod -> ClusterIP is not source-NATed: backends see the client pod itself
    assert.deepEqual(addrs(s.seenPeers), [lab.pod('cl').ip]);
  });

  test('ClusterIP over UDP: replies come from the ClusterIP:port, every backend answers', async () => {
    const s = await lab.client(lab.pod('cl').ns, { proto: 'udp', target: `${CLUSTER_IP}:80`, count: 120, concurrency: 4 });
    assert.equal(s.ok, 120, JSON.stringify(s.errors));
    // an unconnected UDP socket reports where each reply really came from
    assert.deepEqual(Object.keys(s.replyPeers), [`${CLUSTER_IP}:80`]);
    for (const p of ['b', 'c', 'd']) assert.ok(share(s, p) >= 0.15, `${p}: ${JSON.stringify(s.byPod)}`);
  });

  test('NodePort from outside: node1 serves backends on both nodes; remote ones see the node address (SNAT)', async () => {
    const n1 = lab.nodes.node1;
    for (const proto of ['tcp', 'udp'] as const) {
      const s = await lab.client(lab.ext.ns, { proto, target: `${n1.ip}:${NODE_PORT}`, count: 90, concurrency: 6 });
      assert.equal(s.ok, 90, `${proto}: ${JSON.stringify(s.errors)}`);
      assert.deepEqual(Object.keys(s.replyPeers), [`${n1.ip}:${NODE_PORT}`], proto);
      assert.ok((s.byPod.b ?? 0) > 0 && (s.byPod.c ?? 0) + (s.byPod.d ?? 0) > 0, `${proto}: ${JSON.stringify(s.byPod)}`);
      // the local backend sees the real client, the remote ones node1's address
      assert.deepEqual(addrs(s.seenPeers), [lab.ext.ip, n1.ip].sort(), proto);
    }
    const d = await controllers[0]!.inspect();
    assert.ok(d.stats.reply! > 0 && d.stats.new_flow! > 0, JSON.stringify(d.stats));
  });

  test('no endpoints: connect() fails at once with ECONNREFUSED (ICMP port unreachable built in tc and XDP), UDP too', async (t) => {
    const cases = [
      ['pod -> ClusterIP', lab.pod('cl').ns, `${EMPTY_IP}:80`],
      ['external -> NodePort', lab.ext.ns, `${lab.nodes.node1.ip}:${EMPTY_NODE_PORT}`],
    ] as const;
    for (const [what, ns, target] of cases) {
      for (const proto of ['tcp', 'udp'] as const) {
        const s = await lab.client(ns, { proto, target, count: 20, timeoutMs: 2000, connected: proto === 'udp' });
        assert.deepEqual(s.errors, { ECONNREFUSED: 20 }, `${what} ${proto}: ${JSON.stringify(s)}`);
        t.diagnostic(`${what} ${proto}: 20 refusals in ${s.durationMs.toFixed(1)} ms (${(s.durationMs / 20).toFixed(2)} ms each, sequential)`);
      }
    }
  });

  test('sessionAffinity ClientIP: 50 connections from one pod reach one backend, another pod may land elsewhere', async () => {
    const one = await lab.client(lab.pod('cl').ns, { proto: 'tcp', target: `${STICKY_IP}:80`, count: 50, concurrency: 5 });
    assert.equal(one.ok, 50, JSON.stringify(one.errors));
    assert.equal(Object.keys(one.byPod).length, 1, JSON.stringify(one.byPod));
    const again = await lab.client(lab.pod('cl').ns, { proto: 'tcp', target: `${STICKY_IP}:80`, count: 10 });
    assert.deepEqual(Object.keys(again.byPod), Object.keys(one.byPod), 'the same backend on later connections');
    const ext = await lab.client(lab.ext.ns, { proto: 'tcp', target: `${LB_IP}:80`, count: 60, concurrency: 6 });
    assert.ok(Object.keys(ext.byPod).length > 1, `no affinity on lb-open: ${JSON.stringify(ext.byPod)}`);
  });

  test('loadBalancerSourceRanges: an allowed client connects, one outside the ranges gets nothing', async () => {
    const open = await lab.client(lab.ext.ns, { proto: 'tcp', target: `${LB_IP}:80`, count: 30, concurrency: 5 });
    assert.equal(open.ok, 30, JSON.stringify(open.errors));
    assert.deepEqual(Object.keys(open.replyPeers), [`${LB_IP}:80`]);
    const closed = await lab.client(lab.ext.ns, { proto: 'tcp', target: `${LB_IP}:81`, count: 5, concurrency: 5, timeoutMs: 1500 });
    assert.deepEqual(closed.errors, { ETIMEDOUT: 5 }, JSON.stringify(closed));
    // NodePorts are not subject to the ranges (kube-proxy cannot restrict them either)
    const np = await lab.client(lab.ext.ns, { proto: 'tcp', target: `${lab.nodes.node1.ip}:30101`, count: 10 });
    assert.equal(np.ok, 10, JSON.stringify(np.errors));
  });

  test('path MTU through a NodePort: a "fragmentation needed" about the SNATed flow reaches the client translated back', async () => {
    // The only endpoint sits behind a 1400-byte link on node2 (its own interface has 1500, so
    // the MSS it announces does not avoid the problem): node2 answers large DF packets with
    // ICMP frag-needed to their source, node1's address (SNAT); node1's XDP must turn it into
    // an error the outside client can match, or its TCP never learns the smaller MTU.
    const small = await lab.addPod({ name: 'small', node: 'node2' });
    await lab.exec(lab.nodes.node2.ns, ['ip', 'link', 'set', small.hostIf, 'mtu', '1400']);
    const synced = controllers.map((c) => c.nextWritingSync());
    writeSource(source, [web(pods('b', 'c', 'd')), ...extras(),
      { name: 'pmtu', clusterIP: '10.96.0.50', port: 80, targetPort: 8080, protocols: ['TCP'], type: 'NodePort', nodePort: 30110, endpoints: [small] }]);
    await Promise.all(synced);
    const before = (await lab.exec(lab.ext.ns, ['ip', 'route', 'get', lab.nodes.node1.ip])).stdout;
    assert.doesNotMatch(before, /mtu 1400/);
    const s = await lab.client(lab.ext.ns, { proto: 'tcp', target: `${lab.nodes.node1.ip}:30110`, count: 3, payload: 6000, timeoutMs: 5000 });
    assert.equal(s.ok, 3, JSON.stringify(s));
    const after = (await lab.exec(lab.ext.ns, ['ip', 'route', 'get', lab.nodes.node1.ip])).stdout;
    assert.match(after, /mtu 1400/, `the client's route to the NodePort learnt no smaller MTU: ${after}`);
    assert.ok(((await controllers[0]!.inspect()).stats.icmp_translated ?? 0) > 0, 'node1 counted no translated ICMP error');
  });

  test('updates: 3 -> 1 -> 4 endpoints; removed backends get no new connection; held connections to survivors keep working', async (t) => {
    const cl = lab.pod('cl');
    // Held connections, opened before the change; each keeps talking every 50 ms. The backend
    // that survives the scale-down is the one the first held connection landed on.
    const held = Array.from({ length: 4 }, () => lab.spawn(cl.ns, [process.execPath, CLIENT, '--tcp', '--target', `${CLUSTER_IP}:80`, '--hold', '--interval-ms', '50', '--duration-ms', '4000', '--timeout-ms', '1500']));
    const survivor = (await held[0]!.waitFor(/^first \w+$/m)).match(/^first (\w+)$/m)![1]!;
    await Promise.all(held.slice(1).map((h) => h.waitFor(/^first /m)));

    const timings: number[] = [];
    const change = async (eps: LabPod[]) => {
      const waits = controllers.map((c) => c.nextWritingSync());
      const t0 = Date.now();
      writeSource(source, [web(eps)]);
      const lines = await Promise.all(waits);
      timings.push(Math.max(...lines.map((l) => l.time)) - t0);
    };

    await change(pods(survivor));
    const one = await lab.client(cl.ns, { proto: 'tcp', target: `${CLUSTER_IP}:80`, count: 60, concurrency: 6 });
    assert.deepEqual([one.ok, one.byPod], [60, { [survivor]: 60 }]);
    const np = await lab.client(lab.ext.ns, { proto: 'tcp', target: `${lab.nodes.node1.ip}:${NODE_PORT}`, count: 20 });
    assert.deepEqual([np.ok, np.byPod], [20, { [survivor]: 20 }]);

    const summaries = await Promise.all(held.map(async (h) => {
      if (h.exitCode === null && h.signalCode === null) await new Promise((r) => h.once('exit', r));
      const lines = h.output().stdout.trim().split('\n');
      return JSON.parse(lines[lines.length - 1]!) as Summary;
    }));
    for (const h of summaries) {
      const podsSeen = Object.keys(h.byPod);
      assert.equal(podsSeen.length, 1, `a held connection changed backend: ${JSON.stringify(h)}`);
      // a connection to the backend that survived answered for the whole 4 s, without a failure
      if (podsSeen[0] === survivor) assert.ok(h.failed === 0 && h.ok >= 40, JSON.stringify(h));
    }
    assert.ok(summaries.filter((h) => h.byPod[survivor]).length >= 1);

    await change(pods('b', 'c', 'd', 'e'));
    const four = await lab.client(cl.ns, { proto: 'tcp', target: `${CLUSTER_IP}:80`, count: 200, concurrency: 10 });
    assert.equal(four.ok, 200);
    for (const p of ['b', 'c', 'd', 'e']) assert.ok((four.byPod[p] ?? 0) > 0, JSON.stringify(four.byPod));
    t.diagnostic(`file write -> both nodes' maps written: ${timings.join(' ms, ')} ms`);
    process.stderr.write(`# programming time (file write -> maps written on both nodes): ${timings.join(' ms, ')} ms\n`);
  });

  test('restart: SIGKILL under steady traffic; traffic keeps flowing and the new controller writes nothing', async () => {
    const steady = lab.client(lab.pod('cl').ns, { proto: 'tcp', target: `${CLUSTER_IP}:80`, steady: { intervalMs: 20, durationMs: 4000 } });
    const external = lab.client(lab.ext.ns, { proto: 'tcp', target: `${lab.nodes.node1.ip}:${NODE_PORT}`, steady: { intervalMs: 40, durationMs: 4000 } });
    await new Promise((r) => setTimeout(r, 800));
    await controllers[0]!.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 800)); // no controller at all for a while
    controllers[0] = await Controller.start(lab, 'node1', source);
    const logs = controllers[0].logs();
    assert.ok(logs.some((l) => l.msg === 'reusing pinned maps from a previous run'));
    const first = controllers[0].syncs()[0]!;
    assert.equal(first.writes, 0, `restarted controller wrote ${JSON.stringify(first)}`);
    for (const s of await Promise.all([steady, external])) {
      assert.equal(s.failed, 0, JSON.stringify(s.timeline));
      assert.ok(s.ok > 50);
    }
  });
});
