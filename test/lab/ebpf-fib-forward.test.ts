// --bpf-fib-forward with real packets: translated packets forwarded by the programs
// (bpf_fib_lookup, then XDP_TX out the interface they came in on, or bpf_redirect_neigh from tc)
// instead of the host's routing. The proof that they skip it: node1's eth0 gets accept_local=0,
// under which the kernel drops an IPv4 packet carrying node1's own address as source on input
// (a martian: what the SNAT toward a remote backend and the reverse NAT of its replies produce).
// With the option every such flow is served; without it (the last test) the same flows fail.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLab, ensureBpffs, hostPort, labUnavailable, type Lab, type LabPod } from './lab.js';
import { Controller } from './kube-xdp.js';
import { writeSource, type LabService } from './manifests.js';

const unavailable = labUnavailable();
if (unavailable && process.env.CI === 'true') {
  test('eBPF FIB-forward lab prerequisites (CI runs this as root)', () => assert.fail(unavailable));
}

const REMOTE_IP = '10.96.0.10', REMOTE_IP6 = 'fd00:96::10', REMOTE_NODE_PORT = 30080;
const LOCAL_IP = '10.96.0.11', LOCAL_NODE_PORT = 30081;
const COUNT = 40;

type Stats = Record<string, number>;
const delta = (before: Stats, after: Stats, k: string): number => (after[k] ?? 0) - (before[k] ?? 0);

describe('eBPF dataplane with --bpf-fib-forward in the netns lab', { skip: unavailable ?? false }, () => {
  let lab: Lab;
  let dir: string;
  let source: string;
  const controllers: Controller[] = [];
  const pods = (...names: string[]): LabPod[] => names.map((n) => lab.pod(n));
  const node1 = (): Controller => controllers[0]!;
  const stats = async (): Promise<Stats> => (await node1().inspect()).stats;
  /** The kernel's martian check on node1's uplink, for IPv4 (IPv6 has none of its kind). */
  const denyLocalSource = () => lab.exec(lab.nodes.node1.ns, ['sh', '-c', 'echo 0 > /proc/sys/net/ipv4/conf/eth0/accept_local'], { check: true });
  /** bpf_fib_lookup answers only from existing neighbour entries: node1 learns node2's and the
   *  external client's, both families, as a busy node already has (a connection to a closed
   *  port: the RST answers it). */
  const primeNeighbours = async () => {
    const { node2 } = lab.nodes;
    for (const ip of [node2.ip, node2.ip6!, lab.ext.ip, lab.ext.ip6!]) {
      const s = await lab.client(lab.nodes.node1.ns, { proto: 'tcp', target: hostPort(ip, 9), count: 1, timeoutMs: 2000 });
      assert.deepEqual(s.errors, { ECONNREFUSED: 1 }, `node1 -> ${ip}: ${JSON.stringify(s)}`);
    }
  };

  before(async () => {
    ensureBpffs();
    lab = await createLab({
      dualStack: true,
      pods: [{ name: 'cl', node: 'node1' }, { name: 'b', node: 'node1' }, { name: 'c', node: 'node2' }],
    });
    dir = mkdtempSync(join(tmpdir(), 'kx-ebpf-fib-lab-'));
    source = join(dir, 'services.json');
    const services: LabService[] = [
      { name: 'remote', clusterIP: REMOTE_IP, clusterIPs: [REMOTE_IP, REMOTE_IP6], port: 80, targetPort: 8080, protocols: ['TCP'],
        type: 'NodePort', nodePort: REMOTE_NODE_PORT, endpoints: pods('c') },
      { name: 'local', clusterIP: LOCAL_IP, port: 80, targetPort: 8080, protocols: ['TCP'],
        type: 'NodePort', nodePort: LOCAL_NODE_PORT, endpoints: pods('b') },
    ];
    writeSource(source, services);
    controllers.push(
      await Controller.start(lab, 'node1', source, ['--bpf-fib-forward']),
      await Controller.start(lab, 'node2', source, ['--bpf-fib-forward']),
    );
    await denyLocalSource(); // after the start: the loader sets accept_local=1 for the kernel path
    await primeNeighbours();
  });

  after(async () => {
    for (const c of controllers) await c.kill('SIGTERM');
    await lab?.teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('external -> NodePort, remote backend, IPv4 and IPv6: every connection served with accept_local=0; node1 forwarded the SNATed packets and their replies itself', async (t) => {
    const n1 = lab.nodes.node1;
    for (const ip of [n1.ip, n1.ip6!]) {
      const before = await stats();
      const s = await lab.client(lab.ext.ns, { proto: 'tcp', target: hostPort(ip, REMOTE_NODE_PORT), count: COUNT, concurrency: 4, timeoutMs: 3000 });
      const after = await stats();
      t.diagnostic(`${ip}: ${s.ok}/${COUNT} served; fib_forwarded +${delta(before, after, 'fib_forwarded')}, fib_kernel +${delta(before, after, 'fib_kernel')}`);
      assert.equal(s.ok, COUNT, `${ip}: ${JSON.stringify(s.errors)}`);
      assert.deepEqual(Object.keys(s.seenPeers).map((p) => p.replace(/:\d+$/, '')).filter((a, i, all) => all.indexOf(a) === i),
        [ip.includes(':') ? `[${n1.ip6}]` : n1.ip], 'the backend sees node1 (SNAT)');
      // each connection: at least its SYN (toward node2) and the SYN-ACK (toward the client)
      assert.ok(delta(before, after, 'fib_forwarded') >= 2 * COUNT, JSON.stringify(after));
    }
  });

  test('pod -> ClusterIP with a remote backend: tc forwards the DNATed packets to the uplink (bpf_redirect_neigh)', async () => {
    const before = await stats();
    const s = await lab.client(lab.pod('cl').ns, { proto: 'tcp', target: hostPort(REMOTE_IP, 80), count: COUNT, concurrency: 4, timeoutMs: 3000 });
    const after = await stats();
    assert.equal(s.ok, COUNT, JSON.stringify(s.errors));
    assert.deepEqual(Object.keys(s.replyPeers), [`${REMOTE_IP}:80`]);
    assert.ok(delta(before, after, 'fib_forwarded') >= COUNT, JSON.stringify(after));
  });

  test('external -> NodePort, local backend: XDP leaves the packet toward the pod to the kernel (another interface), tc forwards the replies', async () => {
    const before = await stats();
    const s = await lab.client(lab.ext.ns, { proto: 'tcp', target: hostPort(lab.nodes.node1.ip, LOCAL_NODE_PORT), count: COUNT, concurrency: 4, timeoutMs: 3000 });
    const after = await stats();
    assert.equal(s.ok, COUNT, JSON.stringify(s.errors));
    assert.ok(delta(before, after, 'fib_kernel') >= COUNT, `the SYNs toward b: ${JSON.stringify(after)}`);
    assert.ok(delta(before, after, 'fib_forwarded') >= COUNT, `the SYN-ACKs toward the client: ${JSON.stringify(after)}`);
  });

  test('without --bpf-fib-forward, the same IPv4 NodePort flows to a remote backend die as martians under accept_local=0 (the kernel path)', async () => {
    await node1().kill('SIGTERM');
    controllers[0] = await Controller.start(lab, 'node1', source);
    await denyLocalSource();
    const before = await stats();
    const s = await lab.client(lab.ext.ns, { proto: 'tcp', target: hostPort(lab.nodes.node1.ip, REMOTE_NODE_PORT), count: 4, concurrency: 4, timeoutMs: 1500 });
    const after = await stats();
    assert.equal(s.ok, 0, JSON.stringify(s));
    assert.equal(delta(before, after, 'fib_forwarded'), 0);
  });
});
