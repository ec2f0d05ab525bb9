import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compile, type CompileMemo } from '../../src/dataplane/ebpf/compile.js';
import { emptyApplied, plan, type AppliedState } from '../../src/dataplane/ebpf/plan.js';
import { applyPlan, readMaps } from '../../src/dataplane/ebpf/apply.js';
import { appliedFromMaps } from '../../src/dataplane/ebpf/readback.js';
import { FE_LOCAL_ONLY, FE_NODEPORT, SCOPE_EXT, SCOPE_HOST, SCOPE_INT, type FrontendValue } from '../../src/dataplane/ebpf/maps.js';
import type { ServicePort } from '../../src/model/types.js';
import { endpoint, servicePort } from './helpers/service.js';
import { MemoryMaps } from './helpers/memory-maps.js';

const node = { nodeAddresses: ['192.168.77.1'] };
const eps = (n: number, base = 1) => Array.from({ length: n }, (_, i) => endpoint(`10.244.1.${base + i}`, 8080, { isLocal: i % 2 === 0 }));
const state = (...services: ServicePort[]) => ({ services });
const desired = (...s: ServicePort[]) => compile(state(...s), node).desired;

test('compile: a ClusterIP is an internal, an external and a host frontend of one backend set, backends sorted by "ip:port" string', () => {
  const sp = servicePort('web', { endpoints: [endpoint('10.244.1.9', 80), endpoint('10.244.1.10', 80)] });
  const { desired: d, problems } = compile(state(sp), node);
  assert.deepEqual(problems, []);
  assert.deepEqual([...d.frontends.values()].map((f) => f.key), [
    { addr: '10.96.0.10', port: 80, proto: 6, scope: SCOPE_INT },
    { addr: '10.96.0.10', port: 80, proto: 6, scope: SCOPE_EXT },
    { addr: '10.96.0.10', port: 80, proto: 6, scope: SCOPE_HOST },
  ]);
  const [int, ext, host] = [...d.frontends.values()];
  assert.equal(int!.set, ext!.set);
  assert.equal(int!.set, host!.set);
  // no socket hooks attached (--cgroup-root ''): no host frontend
  assert.deepEqual([...compile(state(sp), { ...node, hostScope: false }).desired.frontends.values()].map((f) => f.key.scope), [SCOPE_INT, SCOPE_EXT]);
  assert.deepEqual(int!.backends.map((b) => b.addr), ['10.244.1.10', '10.244.1.9']);
  assert.deepEqual(int!.revNat, { addr: '10.96.0.10', port: 80 });
  assert.equal(d.config.nodeAddr, '192.168.77.1');
  // one set: one svc_id, one list of slots for both
  const p = plan(emptyApplied(), d);
  assert.deepEqual(p.steps.map((s) => `${s.op} ${s.map}:${s.keys.length}`), ['update config:1', 'update config6:1', 'update backends:2', 'update slots:2', 'update revnat:1', 'update frontends:3']);
  assert.equal(new Set([...p.next.frontends.values()].map((f) => f.value.svcId)).size, 1);
});

test('compile: NodePort gets an external and an internal frontend per node address; Local keeps local endpoints', () => {
  const all = eps(4);
  const sp = servicePort('np', {
    type: 'NodePort', nodePort: 30080, externalTrafficPolicy: 'Local', endpoints: all,
    clusterEndpoints: all, localEndpoints: all.filter((e) => e.isLocal),
  });
  const d = compile(state(sp), { nodeAddresses: ['192.168.77.1', '172.16.0.1'], clusterCIDRs: ['10.244.0.0/16'] }).desired;
  const ext = [...d.frontends.values()].filter((f) => f.key.scope === SCOPE_EXT && f.key.port === 30080);
  const int = [...d.frontends.values()].filter((f) => f.key.scope === SCOPE_INT && f.key.port === 30080);
  assert.deepEqual(ext.map((f) => f.key.addr).sort(), ['172.16.0.1', '192.168.77.1']);
  for (const f of ext) {
    assert.equal(f.flags, FE_NODEPORT | FE_LOCAL_ONLY);
    assert.deepEqual(f.backends.map((b) => b.addr), ['10.244.1.1', '10.244.1.3']);
  }
  // pods reaching the NodePort are short-circuited to every endpoint, as KUBE-EXT does when
  // it can tell pods (clusterCIDRs); without a detector they get the local ones, unmasqueraded
  assert.equal(int.length, 2);
  for (const f of int) assert.equal(f.backends.length, 4);
  const noDetector = compile(state(sp), { nodeAddresses: ['192.168.77.1'] }).desired;
  const fromPods = [...noDetector.frontends.values()].filter((f) => f.key.scope === SCOPE_INT && f.key.port === 30080);
  assert.deepEqual(fromPods.map((f) => [f.backends.length, f.flags]), [[2, FE_NODEPORT | FE_LOCAL_ONLY]]);
  // the node's own sockets: every endpoint whatever the policy (KUBE-EXT's "LOCAL traffic"
  // rules), on each node address and on localhost (localhostNodePorts, default true)
  for (const dd of [d, noDetector]) {
    const host = [...dd.frontends.values()].filter((f) => f.key.scope === SCOPE_HOST && f.key.port === 30080);
    assert.ok(host.some((f) => f.key.addr === '127.0.0.1'));
    for (const f of host) assert.equal(f.backends.length, 4);
  }
  const noLocalhost = compile(state(sp), { nodeAddresses: ['192.168.77.1'], localhostNodePorts: false }).desired;
  assert.deepEqual([...noLocalhost.frontends.values()].filter((f) => f.key.scope === SCOPE_HOST && f.key.port === 30080).map((f) => f.key.addr), ['192.168.77.1']);
  const onlyNodeNet = compile(state(sp), { nodeAddresses: ['192.168.77.1'], nodePortAddresses: ['192.168.77.0/24'] }).desired;
  assert.deepEqual([...onlyNodeNet.frontends.values()].filter((f) => f.key.scope === SCOPE_HOST && f.key.port === 30080).map((f) => f.key.addr), ['192.168.77.1']);
});

test('compile: the node reaches an LB IP through the socket hooks only when loadBalancerSourceRanges include it', () => {
  const sp = servicePort('lb', { type: 'LoadBalancer', loadBalancerIPs: ['203.0.113.7'], loadBalancerSourceRanges: ['198.51.100.0/24'], endpoints: eps(2) });
  const hostLb = (nodeAddresses: string[]) => [...compile(state(sp), { nodeAddresses }).desired.frontends.values()]
    .find((f) => f.key.scope === SCOPE_HOST && f.key.addr === '203.0.113.7')!;
  assert.equal(hostLb(['192.168.77.1']).backends.length, 0, 'outside the ranges: no backend (kube-proxy drops)');
  assert.equal(hostLb(['198.51.100.9']).backends.length, 2);
  assert.deepEqual(hostLb(['198.51.100.9']).sourceRanges, [], 'the socket path has no source address to check');
});

test('compile: IPv6 addresses and endpoints are left out; SCTP is a protocol like the others; duplicate frontends are reported', () => {
  const v6 = servicePort('v6', { clusterIPs: ['fd00::10', '10.96.0.11'], endpoints: [endpoint('fd00::1', 80), endpoint('10.244.1.1', 80)] });
  const sctp = servicePort('sctp', { protocol: 'SCTP', clusterIPs: ['10.96.0.12'] });
  const dup = servicePort('dup', { id: 'default/dup:http', clusterIPs: ['10.96.0.11'] });
  const { desired: d, problems } = compile(state(v6, sctp, dup), node);
  assert.deepEqual([...d.frontends.values()].map((f) => `${f.key.addr}/${f.key.proto}/${f.key.scope}`),
    [`10.96.0.11/6/${SCOPE_INT}`, `10.96.0.11/6/${SCOPE_EXT}`, `10.96.0.11/6/${SCOPE_HOST}`,
      `10.96.0.12/132/${SCOPE_INT}`, `10.96.0.12/132/${SCOPE_EXT}`, `10.96.0.12/132/${SCOPE_HOST}`]);
  assert.deepEqual([...d.frontends.values()][0]!.backends.map((b) => b.addr), ['10.244.1.1']);
  assert.equal(problems.length, 1);
  assert.match(problems[0]!.reason, /already served by default\/v6:http/);
});

test('compile: TCP and UDP on one address and port are two frontends (DNS)', () => {
  const tcp = servicePort('dns', { id: 'kube-system/dns:tcp', endpoints: eps(2) });
  const udp = servicePort('dns', { id: 'kube-system/dns:udp', protocol: 'UDP', endpoints: eps(2) });
  const d = desired(tcp, udp);
  assert.deepEqual([...d.frontends.values()].map((f) => f.key.proto).sort(), [17, 17, 17, 6, 6, 6].sort());
  assert.equal(new Set([...d.frontends.values()].map((f) => f.set)).size, 2, 'one backend set per protocol');
});

/** Checks what a packet arriving between any two steps could see. */
function checkConsistent(mem: MemoryMaps, label: string): void {
  const s = appliedFromMaps(readMaps(mem));
  for (const fe of s.frontends.values()) {
    for (let i = 0; i < fe.value.count; i++) {
      const bid = s.sets.get(fe.value.svcId)?.slots[i];
      assert.notEqual(bid, undefined, `${label}: frontend ${fe.key.addr}:${fe.key.port} count ${fe.value.count} but slot ${i} missing`);
      assert.ok([...s.backends.values()].some((b) => b.id === bid), `${label}: slot ${i} -> missing backend ${bid}`);
    }
  }
}

function applyStepwise(mem: MemoryMaps, applied: AppliedState, d: ReturnType<typeof desired>) {
  const p = plan(applied, d);
  for (const [i, step] of p.steps.entries()) {
    applyPlan(mem, { ...p, steps: [step] });
    checkConsistent(mem, `after step ${i} (${step.op} ${step.map})`);
  }
  return p;
}

test('plan: scale 3 -> 1 -> 4 keeps every intermediate state consistent and writes in DESIGN order', () => {
  const mem = new MemoryMaps();
  let applied = emptyApplied();
  let p = applyStepwise(mem, applied, desired(servicePort('web', { endpoints: eps(3) })));
  assert.deepEqual(p.steps.map((s) => `${s.op} ${s.map}`), ['update config', 'update config6', 'update backends', 'update slots', 'update revnat', 'update frontends']);
  assert.equal(p.writes, 1 + 1 + 3 + 3 + 1 + 3, 'the internal, external and host frontends share the 3 slots');
  applied = p.next;

  p = applyStepwise(mem, applied, desired(servicePort('web', { endpoints: eps(1) })));
  assert.deepEqual(p.steps.map((s) => `${s.op} ${s.map}:${s.keys.length}`), ['update frontends:3', 'delete slots:2', 'delete backends:2']);
  applied = p.next;

  p = applyStepwise(mem, applied, desired(servicePort('web', { endpoints: eps(4) })));
  const backendIds = p.steps.find((s) => s.map === 'backends')!.keys as number[];
  // FIFO: the two ids released a moment ago are not handed out again yet
  assert.deepEqual(backendIds, [4, 5, 6]);
  assert.equal((p.steps.find((s) => s.map === 'frontends')!.values[0] as FrontendValue).count, 4);
});

test('plan: nothing changed -> no step; a removed Service deletes frontend, slots, revnat, backends', () => {
  const mem = new MemoryMaps();
  const d = desired(servicePort('a', { endpoints: eps(2) }), servicePort('b', { clusterIPs: ['10.96.0.20'], endpoints: eps(2, 5) }));
  const first = applyStepwise(mem, emptyApplied(), d);
  assert.equal(plan(first.next, d).writes, 0);
  const p = applyStepwise(mem, first.next, desired(servicePort('a', { endpoints: eps(2) })));
  assert.deepEqual(p.steps.map((s) => `${s.op} ${s.map}:${s.keys.length}`), ['delete frontends:3', 'delete slots:2', 'delete revnat:1', 'delete backends:2']);
});

test('readback: a restarted controller plans zero writes against unchanged maps, and cleans strays', () => {
  const mem = new MemoryMaps();
  const d = desired(servicePort('a', { endpoints: eps(3) }), servicePort('b', { clusterIPs: ['10.96.0.20'], endpoints: eps(2, 7) }));
  const first = plan(emptyApplied(), d);
  applyPlan(mem, first);

  const restarted = appliedFromMaps(readMaps(mem));
  assert.equal(plan(restarted, d).writes, 0);
  // ids continue after the highest in use, never reusing a live one
  const more = plan(restarted, desired(servicePort('a', { endpoints: eps(4) }), servicePort('b', { clusterIPs: ['10.96.0.20'], endpoints: eps(2, 7) })));
  assert.deepEqual(more.steps.find((s) => s.map === 'backends')!.keys, [6]);

  // a slot whose service vanished (crash between two steps) is deleted by the next plan
  mem.updateBatch('kx_slots', Buffer.from('6300000000000000', 'hex'), Buffer.from('01000000', 'hex'), 1);
  const withStray = appliedFromMaps(readMaps(mem));
  const p = plan(withStray, d);
  assert.deepEqual(p.steps.map((s) => `${s.op} ${s.map}:${s.keys.length}`), ['delete slots:1']);
});

test('ids: an exhausted allocator names what ran out (admission should make this unreachable)', async () => {
  const { IdAllocator } = await import('../../src/dataplane/ebpf/ids.js');
  const ids = new IdAllocator(2, [], 'kx_backends ids');
  ids.allocate();
  const copy = ids.clone();
  ids.allocate();
  assert.throws(() => ids.allocate(), /^Error: all 2 kx_backends ids are in use$/);
  copy.allocate();
  assert.throws(() => copy.allocate(), /kx_backends ids/);
});

test('compile with the per-port memo: the same frontends as without; an unchanged port object is not recompiled', () => {
  const a = servicePort('a', { endpoints: eps(2) });
  const b = servicePort('b', { clusterIPs: ['10.96.0.20'], endpoints: eps(2, 5) });
  const dup = servicePort('dup', { id: 'default/dup:http', endpoints: eps(1) }); // a's ClusterIP again
  const memo: CompileMemo = new WeakMap();
  const first = compile(state(a, b, dup), node, memo);
  assert.deepEqual(first, compile(state(a, b, dup), node));
  const b2 = servicePort('b', { clusterIPs: ['10.96.0.20'], endpoints: eps(3, 5) });
  const second = compile(state(a, b2, dup), node, memo);
  assert.deepEqual(second, compile(state(a, b2, dup), node));
  const byId = (r: typeof first, id: string) => r.desired.frontends.get(id);
  assert.equal(byId(second, '10.96.0.10:80/6/1'), byId(first, '10.96.0.10:80/6/1'), 'a: the memo\'s object');
  assert.notEqual(byId(second, '10.96.0.20:80/6/1'), byId(first, '10.96.0.20:80/6/1'), 'b: recompiled');
  assert.equal(second.problems.length, 1, 'the duplicate is reported on every compile, memo or not');
});
