// The partial plan (issue 13's change set travelling to the maps): one changed Service port
// leads to exactly its map operations, a no-op change to none, and after any run of partial
// plans the maps hold what a full plan from scratch would program (the periodic full sync,
// reading them back, finds 0 differences). Applied step by step to in-memory maps, each step
// checked for what a packet between two steps could see.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compile, compileChanges, type Compiled, type CompileMemo, type DesiredState } from '../../src/dataplane/ebpf/compile.js';
import { emptyApplied, plan, type AppliedState, type Plan } from '../../src/dataplane/ebpf/plan.js';
import { planPartial } from '../../src/dataplane/ebpf/plan-partial.js';
import { applyPlan, readMaps } from '../../src/dataplane/ebpf/apply.js';
import { appliedFromMaps } from '../../src/dataplane/ebpf/readback.js';
import type { ServicePort } from '../../src/model/types.js';
import { endpoint, servicePort } from './helpers/service.js';
import { MemoryMaps } from './helpers/memory-maps.js';
import { mapUsage } from '../../src/dataplane/ebpf/capacity.js';

const node = { nodeAddresses: ['192.168.77.1'], clusterCIDRs: ['10.244.0.0/16'] };
const fits = () => true;

/** What the maps serve, with ids resolved: each frontend's flags, reverse NAT, backends in slot
 * order, source ranges and affinity members; and the entries no frontend reaches (must be none). */
function served(mem: MemoryMaps) {
  const s = appliedFromMaps(readMaps(mem));
  const backendById = new Map([...s.backends.values()].map((b) => [b.id, `${b.value.addr}:${b.value.port}/${b.value.flags}`]));
  const revnatById = new Map([...s.revnats.values()].map((r) => [r.id, `${r.value.addr}:${r.value.port}`]));
  const view: Record<string, unknown> = {};
  const reached = { sets: new Set<number>(), backends: new Set<number>(), revnats: new Set<number>() };
  for (const fe of s.frontends.values()) {
    const set = s.sets.get(fe.value.svcId);
    assert.ok(set, `frontend ${fe.key.addr}:${fe.key.port} points at svc ${fe.value.svcId}, which has no set`);
    reached.sets.add(fe.value.svcId);
    reached.revnats.add(fe.value.revNatId);
    set.slots.forEach((id) => reached.backends.add(id!));
    view[`${fe.key.addr}:${fe.key.port}/${fe.key.proto}/${fe.key.scope}`] = {
      flags: fe.value.flags, affinityTimeout: fe.value.affinityTimeout, count: fe.value.count,
      revnat: revnatById.get(fe.value.revNatId),
      slots: set.slots.map((id) => backendById.get(id!)),
      sourceRanges: set.sourceRanges,
      affinity: set.affinityMembers.map((id) => backendById.get(id)).sort(),
    };
  }
  const garbage = {
    sets: [...s.sets.keys()].filter((id) => !reached.sets.has(id)),
    backends: [...s.backends.values()].filter((b) => !reached.backends.has(b.id)).map((b) => b.id),
    revnats: [...s.revnats.values()].filter((r) => !reached.revnats.has(r.id)).map((r) => r.id),
    stale: s.stale,
  };
  return { view, garbage };
}

const NO_GARBAGE = { sets: [], backends: [], revnats: [], stale: { slots: [], backends: [], revnat: [], srcRanges: [], affinityMatch: [] } };

/** Applies a plan one step at a time; after each, every frontend's slots point at backends. */
function applyStepwise(mem: MemoryMaps, p: Plan, label: string): void {
  for (const [i, step] of p.steps.entries()) {
    applyPlan(mem, { ...p, steps: [step] });
    const s = appliedFromMaps(readMaps(mem));
    for (const fe of s.frontends.values()) {
      for (let slot = 0; slot < fe.value.count; slot++) {
        const bid = s.sets.get(fe.value.svcId)?.slots[slot];
        assert.ok(bid !== undefined && [...s.backends.values()].some((b) => b.id === bid), `${label}, step ${i} (${step.op} ${step.map}): ${fe.key.addr}:${fe.key.port} slot ${slot} dangles`);
      }
    }
  }
}

/** mulberry32 */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => { a = (a + 0x6d2b79f5) >>> 0; let t = a; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
  return { next, int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo)), pick: <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)]! };
}

/** A random Service port `i`: a ClusterIP of its own (sometimes another port's: a claim two
 * ports make), NodePort or LoadBalancer with source ranges, affinity, 0–5 endpoints drawn from a
 * small pool (so backends are shared between ports), some terminating. */
function randomPort(r: ReturnType<typeof prng>, i: number, version: number): ServicePort {
  const ip = r.next() < 0.1 ? `10.96.0.${r.int(1, 4)}` : `10.96.1.${i}`;
  const type = r.pick(['ClusterIP', 'ClusterIP', 'NodePort', 'LoadBalancer'] as const);
  const eps = [...new Set(Array.from({ length: r.int(0, 6) }, () => r.int(1, 12)))]
    // a backend's flags are the pod's (local, terminating): the same in every port it serves
    .map((h) => endpoint(`10.244.${h % 2 + 1}.${h}`, r.pick([8080, 8443]), { isLocal: h % 2 === 0, terminating: h % 7 === 0 }));
  return servicePort(`svc${i}`, {
    clusterIPs: [ip], type, port: r.pick([80, 443]), protocol: r.pick(['TCP', 'TCP', 'UDP'] as const),
    nodePort: type === 'ClusterIP' ? null : 30000 + i,
    loadBalancerIPs: type === 'LoadBalancer' ? [`192.168.80.${i}`] : [],
    loadBalancerSourceRanges: type === 'LoadBalancer' && r.next() < 0.5 ? [r.pick(['203.0.113.0/24', '198.51.100.0/24']), `10.${version % 3}.0.0/16`] : [],
    externallyAccessible: type !== 'ClusterIP',
    sessionAffinityTimeoutSeconds: r.next() < 0.2 ? 600 : null,
    endpoints: eps, clusterEndpoints: eps, allReachableEndpoints: eps, localEndpoints: eps.filter((e) => e.isLocal), hasAnyEndpoints: eps.length > 0,
    familiesWithEndpoints: eps.length > 0 ? ['IPv4'] : [],
  });
}

test('incremental compiles and partial plans after any sequence of port adds, changes, no-ops and removals program what a full compile and plan would; the full plan after them writes nothing', () => {
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    const r = prng(seed);
    const memo: CompileMemo = new WeakMap();
    const ports = new Map<number, ServicePort>();
    for (let i = 0; i < 12; i++) if (r.next() < 0.7) ports.set(i, randomPort(r, i, 0));
    const stateOf = () => ({ services: [...ports.entries()].sort(([a], [b]) => a - b).map(([, sp]) => sp) });
    const mem = new MemoryMaps();
    let compiled: Compiled = compile(stateOf(), node, memo);
    let d: DesiredState = compiled.desired;
    let applied: AppliedState = plan(emptyApplied(), d).next;
    // the entry counts the dataplane keeps from the partial plans' deltas (its capacity check)
    let usage = mapUsage(applied);
    applyPlan(mem, plan(emptyApplied(), d));
    let partials = 0, fallbacks = 0, incremental = 0;
    for (let step = 1; step <= 40; step++) {
      const dirty = new Set<string>();
      for (let n = r.int(1, 4); n > 0; n--) {
        const i = r.int(0, 14);
        const old = ports.get(i);
        const what = r.next();
        if (old && what < 0.2) ports.delete(i);
        else if (old && what < 0.35) ports.set(i, { ...old }); // a new object, the same content: a no-op
        else ports.set(i, randomPort(r, i, step));
        dirty.add(`default/svc${i}`);
      }
      const label = `seed ${seed}, step ${step}`;
      const fresh = compile(stateOf(), node); // no memo: from scratch
      const changedPorts = stateOf().services.filter((sp) => dirty.has(`${sp.namespace}/${sp.name}`));
      const inc = compileChanges(compiled, { services: dirty, ports: changedPorts }, node, memo);
      compiled = inc ?? compile(stateOf(), node, memo);
      if (inc) {
        incremental++;
        assert.deepEqual(compiled.desired, fresh.desired, `${label}: the incremental compile equals a full one`);
        assert.deepEqual(inc.changedFrontends.map((fe) => fe.id).sort(), [...fresh.desired.frontends.values()].filter((fe) => dirty.has(fe.service.slice(0, fe.service.lastIndexOf(':')))).map((fe) => fe.id).sort(), `${label}: the changed frontends`);
      }
      d = compiled.desired;
      const full = plan(applied, d); // pure: computed on the state before the partial plan takes it over
      const p = planPartial(applied, d, dirty, fits, inc?.changedFrontends);
      if (!p) { fallbacks++; applyStepwise(mem, full, label); applied = full.next; usage = mapUsage(applied); continue; }
      partials++;
      assert.deepEqual(p.steps.map((s) => `${s.op} ${s.map}:${s.keys.length}`).sort(), full.steps.map((s) => `${s.op} ${s.map}:${s.keys.length}`).sort(), `${label}: the same operations as the full plan`);
      applyStepwise(mem, p, label);
      applied = p.next;
      for (const [role, n] of Object.entries(p.usage) as [keyof typeof usage, number][]) usage[role] += n;
      assert.deepEqual(usage, mapUsage(applied), `${label}: the entry counts kept from the deltas`);
      const scratch = new MemoryMaps();
      applyPlan(scratch, plan(emptyApplied(), d));
      const got = served(mem), want = served(scratch);
      assert.deepEqual(got.view, want.view, `${label}: what the maps serve`);
      assert.deepEqual(got.garbage, NO_GARBAGE, `${label}: entries nothing reaches`);
    }
    assert.ok(partials > 25, `seed ${seed}: ${partials} partial plans, ${fallbacks} full`);
    assert.ok(incremental > 10, `seed ${seed}: ${incremental} incremental compiles`);
    // the periodic full sync reads the maps back: nothing to do
    assert.equal(plan(appliedFromMaps(readMaps(mem)), d).writes, 0, `seed ${seed}: full plan after the partial ones`);
    assert.equal(plan(applied, d).writes, 0);
  }
});

test('one changed port: exactly its operations; a no-op change: none; a node-level change or a contested frontend: a full plan', () => {
  const eps = (n: number, base: number) => Array.from({ length: n }, (_, i) => endpoint(`10.244.1.${base + i}`, 8080));
  const a = servicePort('a', { endpoints: eps(2, 1) });
  const b = servicePort('b', { clusterIPs: ['10.96.0.20'], endpoints: eps(2, 10), sessionAffinityTimeoutSeconds: 600 });
  const d1 = compile({ services: [a, b] }, node).desired;
  const first = plan(emptyApplied(), d1);
  let applied = first.next;

  const b2 = { ...b, endpoints: eps(3, 10), clusterEndpoints: eps(3, 10), allReachableEndpoints: eps(3, 10) };
  const d2 = compile({ services: [a, b2] }, node).desired;
  const p = planPartial(applied, d2, new Set(['default/b']), fits)!;
  assert.ok(p);
  // one backend, one slot, one affinity member; b's three frontends get count 3
  assert.deepEqual(p.steps.map((s) => `${s.op} ${s.map}:${s.keys.length}`), ['update backends:1', 'update slots:1', 'update affinityMatch:1', 'update frontends:3']);
  assert.ok((p.steps.find((s) => s.map === 'frontends')!.keys as { addr: string }[]).every((k) => k.addr === '10.96.0.20'), 'only b\'s frontends');
  assert.deepEqual(p.usage, { slots: 1, backends: 1 });
  applied = p.next;

  const same = planPartial(applied, compile({ services: [a, { ...b2 }] }, node).desired, new Set(['default/b']), fits)!;
  assert.deepEqual([same.writes, same.usage], [0, { slots: 0 }], 'a no-op change writes nothing');
  applied = same.next;

  const gone = planPartial(applied, compile({ services: [b2] }, node).desired, new Set(['default/a']), fits)!;
  assert.deepEqual(gone.steps.map((s) => `${s.op} ${s.map}:${s.keys.length}`), ['delete frontends:3', 'delete slots:2', 'delete revnat:1', 'delete backends:2']);
  assert.deepEqual(gone.usage, { slots: -2, frontends: -3, backends: -2, revnat: -1 });
  applied = gone.next;

  assert.equal(planPartial(applied, compile({ services: [b2] }, { nodeAddresses: ['192.168.77.2'] }).desired, new Set(['default/b']), fits), null, 'another node address: full');
  const taker = servicePort('c', { clusterIPs: ['10.96.0.20'], endpoints: eps(1, 30) }); // b's ClusterIP, first in the state's order
  assert.equal(planPartial(applied, compile({ services: [taker, b2] }, node).desired, new Set(['default/c']), fits), null, 'c wins b\'s frontends (first in order): b must be replanned too');
  assert.equal(planPartial(appliedFromMaps(readMaps(new MemoryMaps())), d2, new Set(['default/b']), fits), null, 'state read back from the kernel: full');
  assert.equal(planPartial(applied, compile({ services: [a, b2] }, node).desired, new Set(['default/a']), () => false), null, 'might not fit: full, with admission');
});
