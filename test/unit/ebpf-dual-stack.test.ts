// Dual-stack through the eBPF control plane: each family compiled from its own view, each entry
// planned into its family's map (the IPv6 twins), read back and admitted per family.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compile } from '../../src/dataplane/ebpf/compile.js';
import { emptyApplied, plan } from '../../src/dataplane/ebpf/plan.js';
import { applyPlan, readMaps } from '../../src/dataplane/ebpf/apply.js';
import { appliedFromMaps } from '../../src/dataplane/ebpf/readback.js';
import { admit, MAP_LIMITS } from '../../src/dataplane/ebpf/capacity.js';
import { vipBits } from '../../src/dataplane/ebpf/prefilter.js';
import { CFG_FIB_FORWARD, FE_MASQ_OFF_CLUSTER, SCOPE_EXT, SCOPE_HOST } from '../../src/dataplane/ebpf/maps.js';
import { endpoint, servicePort } from './helpers/service.js';
import { MemoryMaps } from './helpers/memory-maps.js';

const node = {
  nodeAddresses: ['192.168.77.1', 'fd77:0:0:0::1'],
  clusterCIDRs: ['10.244.0.0/16', 'fd44::/48'],
};
const eps4 = [endpoint('10.244.1.5', 8080, { isLocal: true }), endpoint('10.244.2.5', 8080)];
const eps6 = [endpoint('fd44:0:1::5', 8080, { isLocal: true }), endpoint('fd44:0:2:0:0:0:0:5', 8080)];
const dual = servicePort('web', {
  type: 'NodePort', nodePort: 30080, families: ['IPv4', 'IPv6'], clusterIPs: ['10.96.0.10', 'fd00:96:0::10'],
  endpoints: [...eps4, ...eps6], clusterEndpoints: [...eps4, ...eps6], localEndpoints: [eps4[0]!, eps6[0]!],
  allReachableEndpoints: [...eps4, ...eps6], hasAnyEndpoints: true, familiesWithEndpoints: ['IPv4', 'IPv6'],
});

test('compile: a dual-stack NodePort Service is two families of frontends, canonical addresses, one backend set per family and view', () => {
  const { desired, problems } = compile({ services: [dual] }, node);
  assert.deepEqual(problems, []);
  const scopeName = (s: number) => (s === SCOPE_EXT ? 'ext' : s === SCOPE_HOST ? 'host' : 'int');
  const keys = [...desired.frontends.values()].map((f) => `${f.key.addr}:${f.key.port}/${scopeName(f.key.scope)}`).sort();
  assert.deepEqual(keys, [
    '10.96.0.10:80/ext', '10.96.0.10:80/host', '10.96.0.10:80/int', '127.0.0.1:30080/host',
    '192.168.77.1:30080/ext', '192.168.77.1:30080/host', '192.168.77.1:30080/int',
    'fd00:96::10:80/ext', 'fd00:96::10:80/host', 'fd00:96::10:80/int', 'fd77::1:30080/ext', 'fd77::1:30080/host', 'fd77::1:30080/int',
  ], 'localhost NodePorts are IPv4 only, as kube-proxy\'s');
  const v6 = [...desired.frontends.values()].filter((f) => f.key.addr.includes(':'));
  const v4 = [...desired.frontends.values()].filter((f) => !f.key.addr.includes(':'));
  for (const f of v6) assert.deepEqual(f.backends.map((b) => b.addr), ['fd44:0:1::5', 'fd44:0:2::5'], 'only IPv6 endpoints, canonical');
  for (const f of v4) assert.deepEqual(f.backends.map((b) => b.addr), ['10.244.1.5', '10.244.2.5']);
  assert.equal(new Set(v6.map((f) => f.set)).size + new Set(v4.map((f) => f.set)).size, 4, 'cluster and external view per family');
  assert.ok(v6.every((f) => !v4.some((g) => g.set === f.set)), 'no set spans families');
  assert.equal(desired.config.nodeAddr, '192.168.77.1');
  assert.equal(desired.config6.nodeAddr, 'fd77::1');
  assert.deepEqual([...desired.clusterCIDRs].sort(), ['10.244.0.0/16', 'fd44::/48']);
  // the IPv6 detector is the IPv6 clusterCIDR: the ClusterIP masquerades off-cluster sources
  assert.ok(v6.filter((f) => f.key.addr === 'fd00:96::10' && f.key.scope !== SCOPE_HOST).every((f) => f.flags & FE_MASQ_OFF_CLUSTER));
  // the socket hooks' frontends carry no packet-rewriting flag
  assert.ok(v6.filter((f) => f.key.scope === SCOPE_HOST).every((f) => (f.flags & FE_MASQ_OFF_CLUSTER) === 0));
});

test('compile: --bpf-fib-forward is one flag in kx_config, which both families read; off by default', () => {
  assert.equal(compile({ services: [dual] }, node).desired.config.flags, 0);
  assert.equal(compile({ services: [dual] }, { ...node, fibForward: true }).desired.config.flags, CFG_FIB_FORWARD);
});

test('compile: nodePortAddresses per family, as kube-proxy: a family without a CIDR there serves on all its addresses', () => {
  const two = { ...node, nodeAddresses: ['192.168.77.1', '192.168.88.1', 'fd77::1', 'fd88::1'] };
  const np = (cidrs: string[]) => [...compile({ services: [dual] }, { ...two, nodePortAddresses: cidrs }).desired.frontends.values()]
    .filter((f) => f.key.port === 30080 && f.key.scope === SCOPE_EXT).map((f) => f.key.addr).sort();
  assert.deepEqual(np([]), ['192.168.77.1', '192.168.88.1', 'fd77::1', 'fd88::1']);
  assert.deepEqual(np(['192.168.88.0/24']), ['192.168.88.1', 'fd77::1', 'fd88::1']);
  assert.deepEqual(np(['192.168.88.0/24', 'fd77::/64']), ['192.168.88.1', 'fd77::1']);
});

test('plan: IPv6 entries go to the IPv6 twins, shared maps stay shared; read back, a second plan writes nothing', () => {
  const mem = new MemoryMaps();
  const { desired } = compile({ services: [dual] }, node);
  const p = plan(emptyApplied(), desired);
  const counts = Object.fromEntries(p.steps.map((s) => [`${s.op} ${s.map}`, s.keys.length]));
  assert.deepEqual(counts, {
    'update config': 1, 'update config6': 1, 'update clusterCidrs': 1, 'update clusterCidrs6': 1,
    'update backends': 2, 'update backends6': 2, 'update slots': 8, 'update revnat': 3, 'update revnat6': 2,
    'update frontends': 7, 'update frontends6': 6,
  });
  applyPlan(mem, p);
  assert.equal(mem.maps.get('kx_frontends6')?.size, 6);
  assert.equal(mem.maps.get('kx_backends6')?.size, 2);
  // ids are one space per kind: no IPv4 and IPv6 backend share one
  const ids = [...mem.maps.get('kx_backends')!.keys(), ...mem.maps.get('kx_backends6')!.keys()];
  assert.equal(new Set(ids).size, 4);
  const again = plan(appliedFromMaps(readMaps(mem)), desired);
  assert.deepEqual(again.steps, []);
  // removing the IPv6 family deletes only from the twins
  const v4only = compile({ services: [{ ...dual, families: ['IPv4'], clusterIPs: ['10.96.0.10'] }] }, { ...node, nodeAddresses: ['192.168.77.1'] }).desired;
  const gone = plan(appliedFromMaps(readMaps(mem)), v4only);
  const deletes = gone.steps.filter((s) => s.op === 'delete').map((s) => `${s.map}:${s.keys.length}`);
  assert.deepEqual(deletes, ['frontends6:6', 'slots:4', 'revnat6:2', 'backends6:2'], 'the twins and the shared slots of the IPv6 sets');
});

test('capacity: each family counts against its own maps', () => {
  const { desired } = compile({ services: [dual] }, node);
  const full = admit(emptyApplied(), desired, { ...MAP_LIMITS, frontends6: 3 });
  assert.deepEqual(full.leftOut, ['default/web:http']);
  assert.deepEqual(full.shortfalls.map((s) => `${s.map} ${s.limit} ${s.demand}`), ['kx_frontends6 3 6']);
  assert.deepEqual(admit(emptyApplied(), desired, { ...MAP_LIMITS, frontends: 7, frontends6: 6 }).leftOut, []);
});

test('prefilter: an IPv6 address enters the Bloom filter as the XOR of its four words (kx_in6_fold)', () => {
  // fd00:96::10 = fd000096 00000000 00000000 00000010 -> fd000086
  const x = 0xfd000086;
  assert.deepEqual(vipBits('fd00:96::10'), [Math.imul(x, 0x9e3779b1) >>> 10, Math.imul(x, 0x85ebca6b) >>> 10]);
  assert.deepEqual(vipBits('fd00:96:0:0::10'), vipBits('fd00:96::10'));
  assert.deepEqual(vipBits('10.96.0.10'), [Math.imul(0x0a60000a, 0x9e3779b1) >>> 10, Math.imul(0x0a60000a, 0x85ebca6b) >>> 10]);
});
