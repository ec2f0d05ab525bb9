// The eBPF dataplane with IPv6 and dual-stack Services, with real sockets: a dualStack lab (pods
// fd44:<node>::<k>, nodes fd77::<i>, ext fd77::100), the controller on both nodes with its default
// node addresses (the external interface's, both families, link-local excluded), one dual-stack
// NodePort Service with endpoints on both nodes and one without endpoints.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLab, ensureBpffs, hostPort, labUnavailable, type Lab, type LabPod } from './lab.js';
import { Controller } from './kube-xdp.js';
import { writeSource, type LabService } from './manifests.js';
import type { Summary } from './client.js';

const unavailable = labUnavailable();
if (unavailable && process.env.CI === 'true') {
  test('eBPF dual-stack lab prerequisites (CI runs this as root)', () => assert.fail(unavailable));
}

const CLUSTER_IP = '10.96.0.10', CLUSTER_IP6 = 'fd00:96::10';
const NODE_PORT = 30080;
const EMPTY_IP = '10.96.0.20', EMPTY_IP6 = 'fd00:96::20', EMPTY_NODE_PORT = 30090;

/** `a.b.c.d:port` or `[v6]:port` -> the address. */
const addrOf = (peer: string): string => (peer.startsWith('[') ? peer.slice(1, peer.indexOf(']')) : peer.slice(0, peer.lastIndexOf(':')));
/** Peer counts summed per address. */
const byAddr = (m: Record<string, number>): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const [peer, n] of Object.entries(m)) out[addrOf(peer)] = (out[addrOf(peer)] ?? 0) + n;
  return out;
};
const nonZero = (m: Record<string, number>): Record<string, number> => Object.fromEntries(Object.entries(m).filter(([, n]) => n > 0));

interface Inspected {
  frontends: Array<{ protocol: string; address: string; port: number; scope: string; flags: string[]; backends: Array<{ address: string; port: number; flags: string[] }> }>;
  nodeAddress: string | null; nodeAddress6: string | null; stats: Record<string, number>;
}

describe('eBPF dataplane, IPv6 and dual-stack, in the netns lab', { skip: unavailable ?? false }, () => {
  let lab: Lab;
  let dir: string;
  let source: string;
  let services: LabService[];
  const controllers: Controller[] = [];
  const pods = (...names: string[]): LabPod[] => names.map((n) => lab.pod(n));
  const share = (s: Summary, pod: string): number => (s.byPod[pod] ?? 0) / s.ok;
  /** [what, client namespace, target] of the Service without endpoints. */
  const noEndpointCases = (): Array<[string, string, string]> => [
    ['pod -> IPv6 ClusterIP (tc)', lab.pod('cl').ns, hostPort(EMPTY_IP6, 80)],
    ['external -> IPv6 NodePort (XDP)', lab.ext.ns, hostPort(lab.nodes.node1.ip6!, EMPTY_NODE_PORT)],
    ['pod -> IPv4 ClusterIP of the same Service (tc)', lab.pod('cl').ns, hostPort(EMPTY_IP, 80)],
  ];
  /** The namespace's /proc/net/{netstat,snmp,snmp6} counters by name: TcpExt's bare, the others prefixed (IcmpInDestUnreachs). */
  const kernelCounters = async (ns: string): Promise<Record<string, number>> => {
    const r = await lab.exec(ns, ['cat', '/proc/net/netstat', '/proc/net/snmp', '/proc/net/snmp6'], { check: true });
    const out: Record<string, number> = {};
    const lines = r.stdout.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const [head, ...names] = lines[i]!.trim().split(/\s+/);
      if (head?.endsWith(':') && lines[i + 1]?.startsWith(head)) { // "TcpExt: names" then "TcpExt: values"
        const values = lines[++i]!.trim().split(/\s+/).slice(1);
        const prefix = head === 'TcpExt:' ? '' : head.slice(0, -1);
        names.forEach((n, j) => { out[`${prefix}${n}`] = Number(values[j]); });
      } else if (head && names.length === 1) out[head] = Number(names[0]); // snmp6: "Name value"
    }
    return out;
  };

  before(async () => {
    ensureBpffs();
    lab = await createLab({
      dualStack: true,
      pods: [{ name: 'cl', node: 'node1' }, { name: 'b', node: 'node1' }, { name: 'c', node: 'node2' }, { name: 'd', node: 'node2' }],
    });
    dir = mkdtempSync(join(tmpdir(), 'kx-ebpf-ds-lab-'));
    source = join(dir, 'services.json');
    services = [
      { name: 'web', clusterIP: CLUSTER_IP, clusterIPs: [CLUSTER_IP, CLUSTER_IP6], port: 80, targetPort: 8080,
        type: 'NodePort', nodePort: NODE_PORT, endpoints: pods('b', 'c', 'd') },
      { name: 'empty', clusterIP: EMPTY_IP6, clusterIPs: [EMPTY_IP6, EMPTY_IP], ipFamilyPolicy: 'PreferDualStack', port: 80, targetPort: 8080,
        type: 'NodePort', nodePort: EMPTY_NODE_PORT, endpoints: [] },
    ];
    writeSource(source, services);
    // No --node-ip: the node addresses are eth0's, both families (fd77::<i>, not its fe80::).
    controllers.push(await Controller.start(lab, 'node1', source), await Controller.start(lab, 'node2', source));
  });

  after(async () => {
    for (const c of controllers) await c.kill('SIGTERM');
    await lab?.teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the lab routes IPv6 between pods across nodes; the controllers found both node addresses, not the link-local one', async () => {
    const [cl, c] = [lab.pod('cl'), lab.pod('c')];
    const s = await lab.client(cl.ns, { proto: 'tcp', target: hostPort(c.ip6!, 8080), count: 5 });
    assert.deepEqual([s.ok, s.byPod, Object.keys(s.replyPeers), Object.keys(byAddr(s.seenPeers))],
      [5, { c: 5 }, [`[${c.ip6}]:8080`], [cl.ip6]], JSON.stringify(s));
    for (const name of ['node1', 'node2'] as const) {
      const n = lab.nodes[name];
      // eth0 has a link-local address too: the default must have left it out
      const ll = await lab.exec(n.ns, ['ip', '-6', '-o', 'addr', 'show', 'dev', 'eth0', 'scope', 'link'], { check: true });
      assert.match(ll.stdout, /inet6 fe80::/, `${name} eth0: ${ll.stdout}`);
      const start = controllers[name === 'node1' ? 0 : 1]!.logs().find((l) => l.msg === 'starting kube-xdp (eBPF mode)');
      assert.deepEqual(start?.nodeAddresses, [n.ip, n.ip6], JSON.stringify(start));
    }
  });

  test('inspect -o json lists the IPv6 frontends: ClusterIP and NodePort (node1 fd77::1), TCP and UDP, backends of the IPv6 slice', async () => {
    const d = (await controllers[0]!.inspect()) as unknown as Inspected;
    assert.equal(d.nodeAddress, lab.nodes.node1.ip);
    assert.equal(d.nodeAddress6, lab.nodes.node1.ip6);
    const fmt = (f: Inspected['frontends'][number]): string =>
      `${f.protocol} ${hostPort(f.address, f.port)} ${f.scope} [${f.flags.join(',')}] -> ${f.backends.map((b) => `${hostPort(b.address, b.port)}${b.flags.length ? `(${b.flags.join(',')})` : ''}`).sort().join(' ')}`;
    const got = d.frontends.filter((f) => f.address.includes(':')).map(fmt).sort();
    const [b, c, dd] = [lab.pod('b'), lab.pod('c'), lab.pod('d')];
    const web6 = [`[${b.ip6}]:8080(local)`, `[${c.ip6}]:8080`, `[${dd.ip6}]:8080`].sort().join(' ');
    const n1 = lab.nodes.node1.ip6!;
    const want = (['TCP', 'UDP'] as const).flatMap((p) => (['external', 'internal', 'host'] as const).flatMap((scope) => {
      const snat = scope === 'host' ? '' : 'snat-remote'; // the socket hooks rewrite no packet
      return [
        `${p} [${CLUSTER_IP6}]:80 ${scope} [] -> ${web6}`,
        `${p} [${n1}]:${NODE_PORT} ${scope} [${snat}] -> ${web6}`,
        `${p} [${EMPTY_IP6}]:80 ${scope} [reject] -> `,
        `${p} [${n1}]:${EMPTY_NODE_PORT} ${scope} [${[snat, 'reject'].filter(Boolean).join(',')}] -> `,
      ];
    })).sort();
    assert.deepEqual(got, want);
    // and the IPv4 family of the same Services is there beside it
    const v4 = d.frontends.filter((f) => !f.address.includes(':')).map((f) => hostPort(f.address, f.port));
    assert.deepEqual([...new Set(v4)].sort(), [`${CLUSTER_IP}:80`, `${EMPTY_IP}:80`, `${lab.nodes.node1.ip}:${NODE_PORT}`, `${lab.nodes.node1.ip}:${EMPTY_NODE_PORT}`,
      `127.0.0.1:${NODE_PORT}`, `127.0.0.1:${EMPTY_NODE_PORT}`].sort(), 'localhost NodePorts: IPv4 only, for the node\'s sockets');
  });

  test('IPv6 ClusterIP over TCP: 300 connections from a pod reach every backend; the client sees the ClusterIP', async () => {
    const cl = lab.pod('cl');
    const s = await lab.client(cl.ns, { proto: 'tcp', target: hostPort(CLUSTER_IP6, 80), count: 300, concurrency: 10 });
    assert.equal(s.ok, 300, JSON.stringify(s.errors));
    for (const p of ['b', 'c', 'd']) assert.ok(share(s, p) >= 0.15, `${p}: ${JSON.stringify(s.byPod)}`);
    assert.deepEqual(s.replyPeers, { [`[${CLUSTER_IP6}]:80`]: 300 });
    // pod -> ClusterIP is not source-NATed: every backend sees the client pod itself
    assert.deepEqual(byAddr(s.seenPeers), { [cl.ip6!]: 300 });
  });

  test('the node\'s own IPv6 clients (socket hooks, connect6/sendmsg6/recvmsg6/getpeername6): ClusterIP and NodePort, TCP and UDP; no endpoints refused', async () => {
    const n1 = lab.nodes.node1;
    const fromNode = (o: Parameters<Lab['client']>[1]) => lab.client(n1.ns, o, { cgroup: lab.cgroup('node1') });
    for (const target of [hostPort(CLUSTER_IP6, 80), hostPort(n1.ip6!, NODE_PORT)]) {
      for (const proto of ['tcp', 'udp'] as const) {
        const s = await fromNode({ proto, target, count: 60, concurrency: 5 });
        assert.equal(s.ok, 60, `${proto} ${target}: ${JSON.stringify(s.errors)}`);
        assert.deepEqual(s.replyPeers, { [target]: 60 }, `${proto} ${target}`);
        for (const p of ['b', 'c', 'd']) assert.ok((s.byPod[p] ?? 0) > 0, `${proto} ${target} ${p}: ${JSON.stringify(s.byPod)}`);
      }
    }
    const refused = await fromNode({ proto: 'tcp', target: hostPort(EMPTY_IP6, 80), count: 10, concurrency: 5, timeoutMs: 2000 });
    assert.deepEqual(refused.errors, { ECONNREFUSED: 10 }, JSON.stringify(refused));
  });

  test('IPv6 ClusterIP over UDP: replies come from the ClusterIP:port, every backend answers', async () => {
    const cl = lab.pod('cl');
    const s = await lab.client(cl.ns, { proto: 'udp', target: hostPort(CLUSTER_IP6, 80), count: 120, concurrency: 4 });
    assert.equal(s.ok, 120, JSON.stringify(s.errors));
    // an unconnected socket reports where each reply really came from
    assert.deepEqual(s.replyPeers, { [`[${CLUSTER_IP6}]:80`]: 120 });
    for (const p of ['b', 'c', 'd']) assert.ok(share(s, p) >= 0.15, `${p}: ${JSON.stringify(s.byPod)}`);
    assert.deepEqual(byAddr(s.seenPeers), { [cl.ip6!]: 120 });
  });

  test('the IPv4 ClusterIP and NodePort of the same dual-stack Service still work, with IPv4 backends', async () => {
    const cl = lab.pod('cl');
    const n1 = lab.nodes.node1;
    for (const proto of ['tcp', 'udp'] as const) {
      const s = await lab.client(cl.ns, { proto, target: hostPort(CLUSTER_IP, 80), count: 90, concurrency: 6 });
      assert.equal(s.ok, 90, `${proto}: ${JSON.stringify(s.errors)}`);
      assert.deepEqual(s.replyPeers, { [`${CLUSTER_IP}:80`]: 90 }, proto);
      for (const p of ['b', 'c', 'd']) assert.ok((s.byPod[p] ?? 0) > 0, `${proto} ${p}: ${JSON.stringify(s.byPod)}`);
      assert.deepEqual(byAddr(s.seenPeers), { [cl.ip]: 90 }, proto);
    }
    const np = await lab.client(lab.ext.ns, { proto: 'tcp', target: hostPort(n1.ip, NODE_PORT), count: 30, concurrency: 5 });
    assert.equal(np.ok, 30, JSON.stringify(np.errors));
    assert.deepEqual(np.replyPeers, { [`${n1.ip}:${NODE_PORT}`]: 30 });
    assert.deepEqual(byAddr(np.seenPeers), nonZero({ [lab.ext.ip]: np.byPod.b ?? 0, [n1.ip]: (np.byPod.c ?? 0) + (np.byPod.d ?? 0) }));
  });

  test('IPv6 NodePort from outside: node1 serves backends on both nodes; remote ones see node1 (SNAT), the local one the client', async () => {
    const n1 = lab.nodes.node1;
    for (const proto of ['tcp', 'udp'] as const) {
      const s = await lab.client(lab.ext.ns, { proto, target: hostPort(n1.ip6!, NODE_PORT), count: 90, concurrency: 6 });
      assert.equal(s.ok, 90, `${proto}: ${JSON.stringify(s.errors)}`);
      assert.deepEqual(s.replyPeers, { [`[${n1.ip6}]:${NODE_PORT}`]: 90 }, proto);
      for (const p of ['b', 'c', 'd']) assert.ok((s.byPod[p] ?? 0) > 0, `${proto} ${p}: ${JSON.stringify(s.byPod)}`);
      // exactly: as many answers saw the client as came from the local backend b, the rest saw node1
      const local = s.byPod.b ?? 0;
      assert.deepEqual(byAddr(s.seenPeers), { [lab.ext.ip6!]: local, [n1.ip6!]: 90 - local }, `${proto}: ${JSON.stringify(s)}`);
    }
  });

  test('no endpoints: refused in every family (ICMPv6 / ICMP port unreachable from tc and XDP): TCP connect() and connected UDP', async (t) => {
    for (const [what, ns, target] of noEndpointCases()) {
      for (const proto of ['tcp', 'udp'] as const) {
        const s = await lab.client(ns, { proto, target, count: 20, concurrency: 5, timeoutMs: 2000, connected: proto === 'udp' });
        assert.deepEqual(s.errors, { ECONNREFUSED: 20 }, `${what} ${proto}: ${JSON.stringify(s)}`);
        t.diagnostic(`${what} ${proto}: 20 refusals (5 at a time) in ${s.durationMs} ms: median ${s.medianMs} ms, slowest ${s.slowestMs} ms`);
      }
    }
  });

  // Counts, not times: the refusal answers the first SYN when the client kernel has no SYN
  // retransmission to report. An IPv6 TCP client may retransmit once (about 1 s later): Linux's
  // tcp_v6_err sets only a soft error for an ICMPv6 error that arrives while connect() still holds
  // the socket (LockDroppedIcmps), as it does for ip6tables' REJECT under kube-proxy, so there the
  // test asserts the answer arrived (Icmp6InDestUnreachs) and reports the rest.
  test('no endpoints: every TCP connect() refused by an answer the client kernel received; IPv4 without a SYN retransmission', async (t) => {
    const failures: string[] = [];
    for (const [what, ns, target] of noEndpointCases()) {
      const v6 = target.startsWith('[');
      const before = await kernelCounters(ns);
      const s = await lab.client(ns, { proto: 'tcp', target, count: 10, timeoutMs: 3000 }); // one at a time
      const after = await kernelCounters(ns);
      const delta = (k: string): number => (after[k] ?? 0) - (before[k] ?? 0);
      const unreachables = delta(v6 ? 'Icmp6InDestUnreachs' : 'IcmpInDestUnreachs');
      const seen = `${JSON.stringify(s.errors)}, median ${s.medianMs} ms, slowest ${s.slowestMs} ms; client kernel: ` +
        `${unreachables} port unreachables received, ${delta('TCPSynRetrans')} SYN retransmissions, ` +
        `${delta('LockDroppedIcmps')} ICMP errors that arrived while connect() held the socket`;
      t.diagnostic(`${what} tcp: ${seen}`);
      if (s.errors.ECONNREFUSED !== 10 || unreachables < 10 || (!v6 && delta('TCPSynRetrans') !== 0)) failures.push(`${what}: ${seen}`);
    }
    assert.deepEqual(failures, []);
  });

  test('IPv6 path MTU through a NodePort: a packet too big about the SNATed flow reaches the client translated back', async () => {
    // As the IPv4 lab test: the only endpoint sits behind a 1400-byte link on node2, which sends
    // ICMPv6 packet too big to the flow's source, node1's address (SNAT); node1's XDP must turn
    // it into one the outside client matches to its connection, or its TCP never learns the MTU.
    const small = await lab.addPod({ name: 'small', node: 'node2' });
    await lab.exec(lab.nodes.node2.ns, ['ip', 'link', 'set', small.hostIf, 'mtu', '1400']);
    const synced = controllers.map((c) => c.nextWritingSync());
    writeSource(source, [...services, { name: 'pmtu6', clusterIP: 'fd00:96::50', port: 80, targetPort: 8080, protocols: ['TCP'],
      type: 'NodePort', nodePort: 30110, endpoints: [small] }]);
    await Promise.all(synced);
    const n1 = lab.nodes.node1.ip6!;
    const routeToNode1 = async () => (await lab.exec(lab.ext.ns, ['ip', '-6', 'route', 'get', n1], { check: true })).stdout;
    assert.doesNotMatch(await routeToNode1(), /mtu 1400/);
    const before = (await controllers[0]!.inspect()).stats.icmp_translated ?? 0;
    const s = await lab.client(lab.ext.ns, { proto: 'tcp', target: hostPort(n1, 30110), count: 3, payload: 6000, timeoutMs: 5000 });
    assert.equal(s.ok, 3, JSON.stringify(s));
    const after = await routeToNode1();
    assert.match(after, /mtu 1400/, `the client's route to the NodePort learnt no smaller MTU: ${after}`);
    assert.ok(((await controllers[0]!.inspect()).stats.icmp_translated ?? 0) > before, 'node1 counted no translated ICMPv6 error');
  });
});
