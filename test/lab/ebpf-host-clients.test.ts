// The node's own clients in the eBPF mode (socket hooks): processes in a node's network
// namespace, placed in the node's scratch cgroup where its controller attached the cgroup
// connect/sendmsg/recvmsg/getpeername programs (never the machine's root cgroup). Two of them
// run at once, as a node daemon and a hostNetwork pod would. Real sockets, real backends on
// both nodes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLab, ensureBpffs, hostPort, labUnavailable, type ClientOptions, type Lab, type LabPod } from './lab.js';
import { Controller } from './kube-xdp.js';
import { writeSource, type LabService } from './manifests.js';
import type { Summary } from './client.js';

const unavailable = labUnavailable();
if (unavailable && process.env.CI === 'true') {
  test('eBPF host-client lab prerequisites (CI runs this as root)', () => assert.fail(unavailable));
}

const CLUSTER_IP = '10.96.0.10', NODE_PORT = 30080;
const STICKY_IP = '10.96.0.12';
const EMPTY_IP = '10.96.0.20', EMPTY_NODE_PORT = 30090;

/** `a.b.c.d:port` -> the address. */
const addrOf = (peer: string): string => peer.slice(0, peer.lastIndexOf(':'));

describe('eBPF dataplane, the node\'s own clients (socket hooks), in the netns lab', { skip: unavailable ?? false }, () => {
  let lab: Lab;
  let dir: string;
  const controllers: Controller[] = [];
  const pods = (...names: string[]): LabPod[] => names.map((n) => lab.pod(n));
  const share = (s: Summary, pod: string): number => (s.byPod[pod] ?? 0) / s.ok;
  /** A client process of node1 itself: its network namespace, its cgroup. */
  const fromNode = (o: ClientOptions): Promise<Summary> => lab.client(lab.nodes.node1.ns, o, { cgroup: lab.cgroup('node1') });
  const stats = async (): Promise<Record<string, number>> => (await controllers[0]!.inspect()).stats;
  /** node1's TCP ActiveOpens: connect() calls that sent a SYN. */
  const activeOpens = async (): Promise<number> => {
    const r = await lab.exec(lab.nodes.node1.ns, ['cat', '/proc/net/snmp'], { check: true });
    const [names, values] = r.stdout.split('\n').filter((l) => l.startsWith('Tcp:'));
    return Number(values!.split(/\s+/)[names!.split(/\s+/).indexOf('ActiveOpens')]);
  };

  before(async () => {
    ensureBpffs();
    lab = await createLab({
      pods: [{ name: 'a', node: 'node1' }, { name: 'b', node: 'node1' }, { name: 'c', node: 'node2' }, { name: 'd', node: 'node2' }],
    });
    dir = mkdtempSync(join(tmpdir(), 'kx-ebpf-host-lab-'));
    const source = join(dir, 'services.json');
    const services: LabService[] = [
      { name: 'web', clusterIP: CLUSTER_IP, port: 80, targetPort: 8080, type: 'NodePort', nodePort: NODE_PORT, endpoints: pods('b', 'c', 'd') },
      { name: 'sticky', clusterIP: STICKY_IP, port: 80, targetPort: 8080, affinityTimeoutS: 60, protocols: ['TCP'], endpoints: pods('b', 'c', 'd') },
      { name: 'empty', clusterIP: EMPTY_IP, port: 80, targetPort: 8080, type: 'NodePort', nodePort: EMPTY_NODE_PORT, endpoints: [] },
    ];
    writeSource(source, services);
    controllers.push(await Controller.start(lab, 'node1', source), await Controller.start(lab, 'node2', source));
  });

  after(async () => {
    for (const c of controllers) await c.kill('SIGTERM');
    await lab?.teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the controller attached all eight socket hooks to the node\'s cgroup', () => {
    const line = controllers[0]!.logs().find((l) => l.msg.startsWith('socket hooks attached'));
    assert.ok(line, 'no "socket hooks attached" log line');
    assert.equal(line.cgroup, lab.cgroup('node1'));
    assert.deepEqual([...(line.attached as string[])].sort(),
      ['connect4', 'connect6', 'getpeername4', 'getpeername6', 'recvmsg4', 'recvmsg6', 'sendmsg4', 'sendmsg6']);
  });

  test('TCP to a ClusterIP from two node processes at once: 300 connections each spread over the 3 endpoints (both nodes); getpeername() is the ClusterIP', async () => {
    const before = (await stats()).sock_translated ?? 0;
    const o: ClientOptions = { proto: 'tcp', target: hostPort(CLUSTER_IP, 80), count: 300, concurrency: 10 };
    const runs = await Promise.all([fromNode(o), fromNode(o)]); // a node daemon and a hostNetwork pod
    for (const s of runs) {
      assert.equal(s.ok, 300, JSON.stringify(s.errors));
      for (const p of ['b', 'c', 'd']) assert.ok(share(s, p) >= 0.15, `${p}: ${JSON.stringify(s.byPod)}`);
      assert.deepEqual(s.replyPeers, { [`${CLUSTER_IP}:80`]: 300 });
      // no NAT of packets: every backend sees a node1 socket's own address, never the ClusterIP
      for (const peer of Object.keys(s.seenPeers)) assert.notEqual(addrOf(peer), CLUSTER_IP);
    }
    assert.equal((await stats()).sock_translated! - before, 600, 'one translation per connect()');
  });

  test('UDP from an unconnected socket: every reply reads as from the ClusterIP:port (recvmsg), every endpoint answers', async () => {
    const s = await fromNode({ proto: 'udp', target: hostPort(CLUSTER_IP, 80), count: 120, concurrency: 4 });
    assert.equal(s.ok, 120, JSON.stringify(s.errors));
    assert.deepEqual(s.replyPeers, { [`${CLUSTER_IP}:80`]: 120 });
    for (const p of ['b', 'c', 'd']) assert.ok(share(s, p) >= 0.15, `${p}: ${JSON.stringify(s.byPod)}`);
  });

  test('NodePorts from the node: <node IP>:nodePort and localhost:nodePort, TCP and UDP, the dialled address in getpeername()/recvmsg()', async () => {
    for (const ip of [lab.nodes.node1.ip, '127.0.0.1']) {
      for (const proto of ['tcp', 'udp'] as const) {
        const s = await fromNode({ proto, target: hostPort(ip, NODE_PORT), count: 60, concurrency: 5 });
        assert.equal(s.ok, 60, `${proto} ${ip}: ${JSON.stringify(s.errors)}`);
        assert.deepEqual(s.replyPeers, { [hostPort(ip, NODE_PORT)]: 60 }, `${proto} ${ip}`);
        for (const p of ['b', 'c', 'd']) assert.ok((s.byPod[p] ?? 0) > 0, `${proto} ${ip} ${p}: ${JSON.stringify(s.byPod)}`);
      }
    }
  });

  test('an IPv6 socket dialling the ClusterIP as ::ffff:a.b.c.d (dual-stack sockets) is served by the IPv4 decision', async () => {
    const mapped = `::ffff:${CLUSTER_IP}`;
    for (const proto of ['tcp', 'udp'] as const) {
      const s = await fromNode({ proto, target: hostPort(mapped, 80), count: 60, concurrency: 5 });
      assert.equal(s.ok, 60, `${proto}: ${JSON.stringify(s.errors)}`);
      assert.deepEqual(s.replyPeers, { [hostPort(mapped, 80)]: 60 }, proto);
      for (const p of ['b', 'c', 'd']) assert.ok((s.byPod[p] ?? 0) > 0, `${proto} ${p}: ${JSON.stringify(s.byPod)}`);
    }
  });

  test('session affinity (ClientIP): every connection of the node to the Service reaches one endpoint', async () => {
    const s = await fromNode({ proto: 'tcp', target: hostPort(STICKY_IP, 80), count: 40, concurrency: 4 });
    assert.equal(s.ok, 40, JSON.stringify(s.errors));
    assert.equal(Object.keys(s.byPod).length, 1, JSON.stringify(s.byPod));
  });

  test('no endpoints: connect() fails with ECONNREFUSED before any SYN leaves (ClusterIP, NodePort, localhost NodePort); connected UDP too', async (t) => {
    for (const target of [hostPort(EMPTY_IP, 80), hostPort(lab.nodes.node1.ip, EMPTY_NODE_PORT), hostPort('127.0.0.1', EMPTY_NODE_PORT)]) {
      const opens = await activeOpens();
      const s = await fromNode({ proto: 'tcp', target, count: 20, concurrency: 5, timeoutMs: 2000 });
      assert.deepEqual(s.errors, { ECONNREFUSED: 20 }, `${target}: ${JSON.stringify(s)}`);
      assert.equal(await activeOpens() - opens, 0, `${target}: the hook refused at connect(), no SYN was sent`);
      t.diagnostic(`${target} tcp: 20 refusals (5 at a time): median ${s.medianMs} ms, slowest ${s.slowestMs} ms`);
      const u = await fromNode({ proto: 'udp', target, count: 20, concurrency: 5, timeoutMs: 2000, connected: true });
      assert.deepEqual(u.errors, { ECONNREFUSED: 20 }, `${target} udp: ${JSON.stringify(u)}`);
    }
  });

  test('a pod\'s socket under the same cgroup keeps the packet path: translated once, by tc, not by the socket hooks', async () => {
    const a = lab.pod('a');
    const before = await stats();
    const s = await lab.client(a.ns, { proto: 'tcp', target: hostPort(CLUSTER_IP, 80), count: 30, concurrency: 5 }, { cgroup: lab.cgroup('node1') });
    const after = await stats();
    assert.equal(s.ok, 30, JSON.stringify(s.errors));
    assert.deepEqual(s.replyPeers, { [`${CLUSTER_IP}:80`]: 30 });
    // pod -> ClusterIP keeps the pod's address (tc translates, no SNAT): a socket-hook rewrite
    // followed by tc would not show the ClusterIP as peer, a double one would miss the backend
    assert.deepEqual([...new Set(Object.keys(s.seenPeers).map(addrOf))], [a.ip]);
    assert.equal((after.sock_translated ?? 0) - (before.sock_translated ?? 0), 0, 'the socket hooks left the pod\'s connect() alone');
    assert.equal((after.new_flow ?? 0) - (before.new_flow ?? 0), 30, 'tc tracked each connection');
  });
});
