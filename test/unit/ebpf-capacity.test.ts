// Admission against map capacity (capacity.ts) with small limits, and the plans it leads to
// replayed on maps that refuse to grow past their limit, as the kernel's do (E2BIG).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compile } from '../../src/dataplane/ebpf/compile.js';
import { admit, mapUsage, type CapacityLimits } from '../../src/dataplane/ebpf/capacity.js';
import { emptyApplied, plan, type AppliedState } from '../../src/dataplane/ebpf/plan.js';
import { applyPlan, readMaps } from '../../src/dataplane/ebpf/apply.js';
import { appliedFromMaps } from '../../src/dataplane/ebpf/readback.js';
import { MAPS, SCOPE_INT } from '../../src/dataplane/ebpf/maps.js';
import type { ServicePort } from '../../src/model/types.js';
import { endpoint, servicePort } from './helpers/service.js';
import { MemoryMaps } from './helpers/memory-maps.js';

const node = { nodeAddresses: ['192.168.77.1'] };
/** ClusterIP Service s<i> on 10.96.0.<i> with n endpoints. */
const svc = (i: number, n: number, base = 0): ServicePort => {
  const eps = Array.from({ length: n }, (_, k) => endpoint(`10.244.${i}.${base + k + 1}`, 8080));
  return servicePort(`s${i}`, { id: `default/s${i}:http`, clusterIPs: [`10.96.0.${i}`], endpoints: eps, clusterEndpoints: eps });
};
const LIMITS: CapacityLimits = {
  frontends: 100, slots: 10, backends: 100, revnat: 100, srcRanges: 100, frontends6: 100, backends6: 100, revnat6: 100, srcRanges6: 100,
};
const NAMES = Object.fromEntries((Object.keys(LIMITS) as (keyof CapacityLimits)[]).map((r) => [r, MAPS[r].name])) as Record<keyof CapacityLimits, string>;

/** MemoryMaps that refuse an update batch which would take a map past its limit. */
class LimitedMaps extends MemoryMaps {
  peak: Record<string, number> = {};
  constructor(private readonly limits: CapacityLimits) { super(); }
  override updateBatch(map: string, keys: Buffer, values: Buffer, count: number): void {
    super.updateBatch(map, keys, values, count);
    const size = this.maps.get(map)?.size ?? 0;
    this.peak[map] = Math.max(this.peak[map] ?? 0, size);
    const role = (Object.keys(NAMES) as (keyof CapacityLimits)[]).find((r) => NAMES[r] === map);
    if (role && size > this.limits[role]) throw new Error(`bpf_map_update_batch(${map}): E2BIG`);
  }
}

/** One controller sync as EbpfDataplane does it: admit, plan, apply, and a second pass. */
function sync(io: LimitedMaps, applied: AppliedState, services: ServicePort[]) {
  const desired = compile({ services }, node).desired;
  let a = admit(applied, desired, LIMITS);
  let p = plan(applied, a.desired);
  applyPlan(io, p);
  if (a.leftOut.length > 0) {
    const again = admit(p.next, desired, LIMITS);
    if (again.leftOut.length < a.leftOut.length) {
      a = again;
      p = plan(p.next, a.desired);
      applyPlan(io, p);
    }
  }
  return { admission: a, applied: p.next };
}

const programmed = (io: MemoryMaps) => {
  const d = readMaps(io);
  // internal frontends: each ClusterIP's external one shares its backend set
  return d.frontends.filter(([k]) => k.scope === SCOPE_INT).map(([k, v]) => `${k.addr}:${v.count}`).sort();
};

test('capacity: Services are admitted whole, in order, until a map is full; the shortfall names the map, its limit, the demand and who is left out', () => {
  const io = new LimitedMaps(LIMITS);
  // 4 Services of 3 endpoints: 12 slots wanted, 10 fit -> s1..s3 (9 slots), s4 left out whole.
  const r = sync(io, emptyApplied(), [svc(1, 3), svc(2, 3), svc(3, 3), svc(4, 3)]);
  assert.deepEqual(r.admission.leftOut, ['default/s4:http']);
  assert.deepEqual(r.admission.shortfalls, [{ map: 'kx_slots', limit: 10, demand: 12, services: ['default/s4:http'] }]);
  assert.deepEqual(programmed(io), ['10.96.0.1:3', '10.96.0.2:3', '10.96.0.3:3']);
  assert.deepEqual(appliedFromMaps(readMaps(io)).stale, { slots: [], backends: [], revnat: [], srcRanges: [], affinityMatch: [] }, 'nothing orphaned');
});

test('capacity: over capacity, an unrelated endpoint removal is still applied, and a programmed Service that grows keeps its old version', () => {
  const io = new LimitedMaps(LIMITS);
  let r = sync(io, emptyApplied(), [svc(1, 3), svc(2, 3), svc(3, 3), svc(4, 3)]);
  // s2 loses an endpoint (unrelated change), s1 grows to 6: 3 + 2 + 6 = 11 slots, one too many.
  r = sync(io, r.applied, [svc(1, 6), svc(2, 2), svc(3, 3), svc(4, 3)]);
  assert.deepEqual(programmed(io), ['10.96.0.1:3', '10.96.0.2:2', '10.96.0.3:3']);
  assert.deepEqual(r.admission.leftOut, ['default/s1:http', 'default/s4:http']);
  // s1 to 5: fits once s2's surplus slot is deleted, which the second pass sees.
  r = sync(io, r.applied, [svc(1, 5), svc(2, 2), svc(3, 3), svc(4, 3)]);
  assert.deepEqual(programmed(io), ['10.96.0.1:5', '10.96.0.2:2', '10.96.0.3:3']);
  assert.ok(!JSON.stringify(readMaps(io).backends).includes('10.244.2.3'), 'the removed endpoint is gone');
  assert.deepEqual(appliedFromMaps(readMaps(io)).stale, { slots: [], backends: [], revnat: [], srcRanges: [], affinityMatch: [] });
});

test('capacity: the peak of a sync (new entries written before old ones go) never passes a limit; what only fits after the deletes is admitted by the second pass', () => {
  const io = new LimitedMaps(LIMITS);
  let r = sync(io, emptyApplied(), [svc(1, 3), svc(2, 3), svc(3, 3)]);
  // Replace s3 by s5: the final state (9 slots) fits, but s5's slots written before s3's are
  // deleted would make 12 at the peak.
  r = sync(io, r.applied, [svc(1, 3), svc(2, 3), svc(5, 3)]);
  assert.ok((io.peak[MAPS.slots.name] ?? 0) <= LIMITS.slots, `peak ${io.peak[MAPS.slots.name]}`);
  assert.deepEqual(programmed(io), ['10.96.0.1:3', '10.96.0.2:3', '10.96.0.5:3']);
  assert.deepEqual(r.admission.leftOut, []);
});

test('capacity: frontends, backends and reverse-NAT entries are limits too', () => {
  for (const [m, limits] of [
    ['kx_frontends', { ...LIMITS, slots: 100, frontends: 6 }], // three per ClusterIP (internal, external, host)
    ['kx_backends', { ...LIMITS, slots: 100, backends: 5 }],
    ['kx_revnat', { ...LIMITS, slots: 100, revnat: 2 }],
  ] as const) {
    const a = admit(emptyApplied(), compile({ services: [svc(1, 2), svc(2, 2), svc(3, 2)] }, node).desired, limits);
    assert.deepEqual(a.shortfalls.map((s) => [s.map, s.limit, s.services]), [[m, limits[m === 'kx_frontends' ? 'frontends' : m === 'kx_backends' ? 'backends' : 'revnat'], ['default/s3:http']]], m);
  }
});

test('capacity: a programmed Service left out drops its removed endpoints (a removal needs no room) and keeps the rest', () => {
  const io = new LimitedMaps(LIMITS);
  let r = sync(io, emptyApplied(), [svc(1, 3), svc(2, 3), svc(3, 3)]);
  // s1: endpoint 1 removed, three new ones (3 - 1 + 3 = 5 > the 10 - 6 room left): left out.
  const eps = [2, 3, 4, 5, 6].map((k) => endpoint(`10.244.1.${k}`, 8080));
  r = sync(io, r.applied, [servicePort('s1', { id: 'default/s1:http', clusterIPs: ['10.96.0.1'], endpoints: eps, clusterEndpoints: eps }), svc(2, 3), svc(3, 3)]);
  assert.deepEqual(r.admission.leftOut, ['default/s1:http']);
  const d = readMaps(io);
  const addrs = d.backends.map(([, v]) => v.addr);
  assert.ok(!addrs.includes('10.244.1.1'), 'the removed endpoint is no longer served');
  assert.deepEqual(programmed(io), ['10.96.0.1:2', '10.96.0.2:3', '10.96.0.3:3']);
  assert.deepEqual(appliedFromMaps(d).stale, { slots: [], backends: [], revnat: [], srcRanges: [], affinityMatch: [] });
});

test('map fill (kubexdp_map_entries): what admission counts as used is what each map holds', () => {
  const io = new LimitedMaps(LIMITS);
  let r = sync(io, emptyApplied(), [svc(1, 3), svc(2, 3), svc(3, 3), svc(4, 3)]);
  const held = () => Object.fromEntries((Object.keys(NAMES) as (keyof CapacityLimits)[]).map((role) => [role, io.maps.get(NAMES[role])?.size ?? 0]));
  assert.deepEqual(mapUsage(r.applied), held());
  assert.equal(mapUsage(r.applied).slots, 9);
  r = sync(io, r.applied, [svc(1, 1), svc(3, 2)]);
  assert.deepEqual(mapUsage(r.applied), held());
  assert.equal(mapUsage(r.applied).slots, 3);
});
