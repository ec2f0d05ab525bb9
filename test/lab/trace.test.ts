// `kube-xdp trace` on a lab node: run in node1's network namespace (nsenter --net, as inspect)
// against the running controller's pins, it answers for a ClusterIP from a pod, a NodePort from
// outside (SNAT to the node for remote backends), a Service without endpoints, a non-Service
// packet, an established flow and the node's own sockets — and leaves the live conntrack,
// affinity and counters exactly as they were, and no scratch pin root behind.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLab, ensureBpffs, labUnavailable, type Lab } from './lab.js';
import { CLI, Controller } from './kube-xdp.js';
import { writeSource } from './manifests.js';
import { Libkx } from '../../src/kernel/libkx.js';
import { KernelMaps } from '../../src/dataplane/ebpf/kernel-maps.js';
import { MAPS, STATS_MAP } from '../../src/dataplane/ebpf/maps.js';
import type { TraceResult } from '../../src/dataplane/ebpf/trace.js';

const unavailable = labUnavailable();
if (unavailable && process.env.CI === 'true') {
  test('trace lab prerequisites (CI runs this as root)', () => assert.fail(unavailable));
}

const WEB_IP = '10.96.0.10', WEB_NODE_PORT = 30080;
const REMOTE_IP = '10.96.0.11', REMOTE_NODE_PORT = 30081;
const EMPTY_IP = '10.96.0.20', EMPTY_NODE_PORT = 30090;
/** What a trace must leave as it was: the flow tables, affinity, the counters. */
const WATCHED = [MAPS.ct.name, MAPS.ctNew.name, MAPS.ct6.name, MAPS.ctNew6.name, MAPS.affinity.name, MAPS.affinity6.name, STATS_MAP];
const traceRoots = () => readdirSync('/sys/fs/bpf').filter((n) => n.startsWith('kx-trace-'));

describe('kube-xdp trace in the netns lab', { skip: unavailable ?? false }, () => {
  let lab: Lab;
  let dir: string;
  const controllers: Controller[] = [];
  const lib = unavailable ? null : new Libkx();
  let rootsBefore: string[];

  /** Every entry of the watched live maps, as hex, per map: a byte-exact picture. */
  const liveMaps = (): Record<string, string[]> => {
    const maps = KernelMaps.openPinned(lib!, lab.pinDir('node1'), WATCHED);
    try {
      return Object.fromEntries(WATCHED.map((name) => {
        const info = lib!.mapInfo(maps.fd(name));
        const d = lib!.mapDump(maps.fd(name));
        const entries = Array.from({ length: d.count }, (_, i) =>
          `${d.keys.subarray(i * info.keySize, (i + 1) * info.keySize).toString('hex')}=${d.values.subarray(i * info.valueStride, (i + 1) * info.valueStride).toString('hex')}`);
        return [name, entries.sort()];
      }));
    } finally {
      maps.close();
    }
  };

  const run = (args: string[]) => lab.execNet(lab.nodes.node1.ns, [process.execPath, CLI, 'trace', '--bpf-pin-dir', lab.pinDir('node1'), ...args]);
  const trace = async (args: string[]): Promise<TraceResult> => {
    const r = await run([...args, '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as TraceResult;
  };
  const ipOf = (...pods: string[]) => pods.map((p) => lab.pod(p).ip).sort();
  let live: Record<string, string[]>;

  before(async () => {
    ensureBpffs();
    rootsBefore = traceRoots();
    lab = await createLab({ pods: [{ name: 'cl', node: 'node1' }, { name: 'b', node: 'node1' }, { name: 'c', node: 'node2' }, { name: 'd', node: 'node2' }] });
    dir = mkdtempSync(join(tmpdir(), 'kx-trace-lab-'));
    const source = join(dir, 'services.json');
    const pods = (...names: string[]) => names.map((n) => lab.pod(n));
    writeSource(source, [
      { name: 'web', clusterIP: WEB_IP, port: 80, targetPort: 8080, type: 'NodePort', nodePort: WEB_NODE_PORT, endpoints: pods('b', 'c', 'd') },
      { name: 'remote', clusterIP: REMOTE_IP, port: 80, targetPort: 8080, type: 'NodePort', nodePort: REMOTE_NODE_PORT, endpoints: pods('c', 'd') },
      { name: 'empty', clusterIP: EMPTY_IP, port: 80, targetPort: 8080, type: 'NodePort', nodePort: EMPTY_NODE_PORT, endpoints: [] },
    ]);
    controllers.push(await Controller.start(lab, 'node1', source), await Controller.start(lab, 'node2', source));
    // live flows for the traces to leave alone: UDP, whose replied entries live 120 s (closed TCP
    // flows expire after 10 s and the controller's GC would change the tables under the test)
    const s = await lab.client(lab.pod('cl').ns, { proto: 'udp', target: `${WEB_IP}:80`, count: 6 });
    assert.equal(s.ok, 6, JSON.stringify(s.errors));
    live = liveMaps();
    assert.ok(live[MAPS.ct.name]!.length >= 12, `flows in kx_ct: ${live[MAPS.ct.name]!.length}`);
  });

  after(async () => {
    for (const c of controllers) await c.kill('SIGTERM');
    await lab?.teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('ClusterIP from a pod: a backend of the Service, no SNAT, one new flow counted (TCP and UDP)', async () => {
    for (const proto of ['TCP', 'UDP']) {
      const r = await trace(['--src', lab.pod('cl').ip, '--dst', `${WEB_IP}:80/${proto}`, '--from', 'pod']);
      assert.equal(r.program, 'kx_tc_pod');
      assert.equal(r.ran, true);
      assert.equal(r.verdict, 'translated', JSON.stringify(r));
      assert.deepEqual([r.frontend?.address, r.frontend?.port, r.frontend?.protocol, r.frontend?.scope], [WEB_IP, 80, proto, 'internal']);
      assert.deepEqual(r.candidates.map((b) => b.address).sort(), ipOf('b', 'c', 'd'));
      assert.ok(r.chosen && r.chosen.id !== null && ipOf('b', 'c', 'd').includes(r.chosen.address) && r.chosen.port === 8080, JSON.stringify(r.chosen));
      assert.equal(r.snat, null);
      assert.deepEqual(r.output, { src: lab.pod('cl').ip, sport: 40000, dst: r.chosen.address, dport: 8080 });
      assert.deepEqual(r.counters, { new_flow: 1 });
      assert.equal(r.conntrack, null);
      assert.ok(r.alsoAt.some((a) => a.startsWith(`${proto} ${WEB_IP}:80 external`)), r.alsoAt.join('; '));
    }
  });

  test('NodePort from outside: a remote backend is SNATed to the node address, a local one keeps the client', async () => {
    const n1 = lab.nodes.node1.ip;
    const r = await trace(['--src', `${lab.ext.ip}:50000`, '--dst', `${n1}:${REMOTE_NODE_PORT}/TCP`, '--from', 'external']);
    assert.equal(r.program, 'kx_xdp_ext');
    assert.equal(r.verdict, 'translated', JSON.stringify(r));
    assert.equal(r.frontend?.scope, 'external');
    assert.deepEqual(r.candidates.map((b) => b.address).sort(), ipOf('c', 'd'));
    assert.ok(r.chosen && ipOf('c', 'd').includes(r.chosen.address), JSON.stringify(r.chosen));
    assert.ok(r.snat && r.snat.address === n1 && r.snat.port >= 61000 && r.snat.port <= 65535, JSON.stringify(r.snat));
    assert.deepEqual(r.output, { src: n1, sport: r.snat.port, dst: r.chosen.address, dport: 8080 });
    assert.deepEqual(r.counters, { new_flow: 1 });
    // web has a local endpoint too (b): whichever a run picks, SNAT exactly for the remote ones
    for (let i = 0; i < 6; i++) {
      const w = await trace(['--src', lab.ext.ip, '--dst', `${n1}:${WEB_NODE_PORT}/UDP`, '--from', 'external']);
      assert.equal(w.verdict, 'translated', JSON.stringify(w));
      const local = w.chosen?.address === lab.pod('b').ip;
      assert.deepEqual(w.snat?.address ?? null, local ? null : n1, JSON.stringify(w));
    }
  });

  test('a Service without endpoints: rejected with an ICMP port unreachable, from a pod and from outside', async () => {
    const cases = [
      { from: 'pod', src: lab.pod('cl').ip, dst: `${EMPTY_IP}:80/TCP`, action: 'TC_ACT_REDIRECT' },
      { from: 'external', src: lab.ext.ip, dst: `${lab.nodes.node1.ip}:${EMPTY_NODE_PORT}/UDP`, action: 'XDP_TX' },
    ];
    for (const c of cases) {
      const r = await trace(['--src', c.src, '--dst', c.dst, '--from', c.from]);
      assert.equal(r.verdict, 'reject', JSON.stringify(r));
      assert.equal(r.action, c.action);
      assert.deepEqual(r.candidates, []);
      assert.ok(r.frontend?.flags.includes('reject'), JSON.stringify(r.frontend));
      assert.deepEqual(r.output, { src: c.dst.split(':')[0], dst: c.src, icmp: { type: 3, code: 3 } });
      assert.deepEqual(r.counters, { no_backend: 1, rejected: 1 });
      assert.equal(r.chosen, null);
    }
  });

  test('a non-Service packet passes untouched', async () => {
    const r = await trace(['--src', lab.pod('cl').ip, '--dst', `${lab.pod('c').ip}:8080/TCP`]);
    assert.equal(r.verdict, 'pass', JSON.stringify(r));
    assert.equal(r.action, 'TC_ACT_OK');
    assert.equal(r.frontend, null);
    assert.deepEqual(r.output, { src: lab.pod('cl').ip, sport: 40000, dst: lab.pod('c').ip, dport: 8080 });
    assert.deepEqual(r.counters, {});
  });

  test("an established flow's tuple keeps its conntrack backend", async () => {
    const ct = KernelMaps.openPinned(lib!, lab.pinDir('node1'), [MAPS.ct.name]);
    let flow;
    try {
      const d = lib!.mapDump(ct.fd(MAPS.ct.name));
      flow = Array.from({ length: d.count }, (_, i) => ({ k: MAPS.ct.key.decode(d.keys, i * MAPS.ct.key.size), v: MAPS.ct.value.decode(d.values, i * MAPS.ct.value.size) }))
        .find((e) => e.k.daddr === WEB_IP && e.k.saddr === lab.pod('cl').ip && e.v.dir === 0);
    } finally {
      ct.close();
    }
    assert.ok(flow, 'a forward entry of the UDP flows');
    const r = await trace(['--src', `${flow.k.saddr}:${flow.k.sport}`, '--dst', `${WEB_IP}:80/UDP`]);
    assert.deepEqual(r.conntrack, { table: MAPS.ct.name, dir: 'forward' });
    assert.deepEqual([r.chosen?.address, r.chosen?.port], [flow.v.backendAddr, flow.v.backendPort]);
    assert.deepEqual(r.counters, { established: 1 });
  });

  test("the node's own sockets: computed from the host-scope frontends, not run", async () => {
    const r = await trace(['--dst', `${WEB_IP}:80/TCP`, '--from', 'host']);
    assert.equal(r.ran, false);
    assert.equal(r.verdict, 'translated');
    assert.equal(r.frontend?.scope, 'host');
    assert.deepEqual(r.candidates.map((b) => b.address).sort(), ipOf('b', 'c', 'd'));
    const e = await trace(['--dst', `${EMPTY_IP}:80/TCP`, '--from', 'host']);
    assert.deepEqual([e.verdict, e.action], ['reject', 'connect() fails with ECONNREFUSED']);
  });

  test('text output; a malformed --dst is a usage error; no pins, a plain answer', async () => {
    const r = await run(['--src', lab.pod('cl').ip, '--dst', `${WEB_IP}:80/TCP`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^verdict {4}translated \(TC_ACT_OK\)$/m);
    assert.match(r.stdout, /^snat {7}none/m);
    const bad = await run(['--src', lab.pod('cl').ip, '--dst', `${WEB_IP}:80`]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--dst: .*TCP, UDP or SCTP/);
    const none = `/sys/fs/bpf/${lab.prefix}none`;
    const off = await lab.execNet(lab.nodes.node1.ns, [process.execPath, CLI, 'trace', '--mode', 'ebpf', '--bpf-pin-dir', none, '--src', lab.pod('cl').ip, '--dst', `${WEB_IP}:80/TCP`]);
    assert.deepEqual([off.code, off.stderr], [1, `kube-xdp: kube-xdp is not running in eBPF mode on this node (no pins at ${none})\n`]);
    // --mode auto (the default) looked for every mode's state and says so
    const auto = await lab.execNet(lab.nodes.node1.ns, [process.execPath, CLI, 'trace', '--bpf-pin-dir', none, '--src', lab.pod('cl').ip, '--dst', `${WEB_IP}:80/TCP`]);
    assert.deepEqual([auto.code, auto.stderr], [1, `kube-xdp: nothing to trace in this network namespace: kube-xdp is not running in eBPF mode on this node (no pins at ${none}), ` +
      'no nftables table ip/ip6 kube-proxy, no IPVS virtual servers and no KUBE-SERVICES chain\n']);
  });

  test('the live conntrack, affinity and counters are byte for byte as before, no scratch pin root is left', () => {
    assert.deepEqual(liveMaps(), live);
    assert.deepEqual(traceRoots(), rootsBefore);
  });
});
