// The partial plan: map operations for the Service ports that changed since the applied state
// was planned, at a cost proportional to them, not to every Service (Cilium's reconciler
// updates frontends the same way, with backend reference counts). The full plan (plan.ts)
// stays the safety net: the periodic full sync, the first sync, anything read back from the
// kernel, a node-level change, a frontend two ports claim, or a change that might not fit the
// maps (full admission decides then) take it instead. Same steps, in the same write order, as
// the full plan would make for these ports; ids may differ (allocation order).
//
// It updates the applied state's maps and allocators in place (copying them would be the
// O(Services) work it avoids): the caller hands `applied` over and uses the returned state.
import { backendId, revNatId, type DesiredFrontend, type DesiredState } from './compile.js';
import { groupBy } from './group-by.js';
import { dropSet, planSet, sameRecord, StepList, type AppliedFrontend, type AppliedSet, type AppliedState, type Plan, type Planning } from './plan.js';
import { roleOf, type BackendValue, type FamilyRole, type RevNatValue } from './maps.js';
import { serviceOfPort } from '../../model/tracker.js';
import type { IdAllocator } from './ids.js';

/** What the partial plan needs beyond the applied maps; a full plan builds it. */
export interface PlanIndex {
  /** The frontend ids each Service (namespace/name) owns, and the port owning each. */
  readonly frontendsOf: Map<string, string[]>;
  readonly ownerOf: Map<string, string>;
  /** The backends (by backendId) each set's slots hold, and how many sets hold each backend. */
  readonly setBackends: Map<number, string[]>;
  readonly backendRefs: Map<string, number>;
  /** The reverse-NAT entry (by revNatId) of each frontend, and how many frontends use each. */
  readonly revnatOf: Map<string, string>;
  readonly revnatRefs: Map<string, number>;
}

/** Entries added to (positive) or removed from (negative) the admitted maps, by role. */
export type UsageDelta = Partial<Record<'frontends' | 'frontends6' | 'slots' | 'backends' | 'backends6' | 'revnat' | 'revnat6' | 'srcRanges' | 'srcRanges6', number>>;
type Counted = keyof UsageDelta;
const bump = (d: UsageDelta, role: Counted, by: number) => { d[role] = (d[role] ?? 0) + by; };
const fam = (role: FamilyRole & Counted, addr: string) => roleOf(role, addr) as Counted;

const inc = (m: Map<string, number>, k: string, by: number): number => {
  const n = (m.get(k) ?? 0) + by;
  if (n === 0) m.delete(k);
  else m.set(k, n);
  return n;
};

/** The index of a fully planned state (desired: what it was planned from). */
export function indexOf(state: Pick<AppliedState, 'frontends' | 'sets' | 'backends'>, desired: DesiredState): PlanIndex {
  const index: PlanIndex = {
    frontendsOf: new Map(), ownerOf: new Map(), setBackends: new Map(), backendRefs: new Map(), revnatOf: new Map(), revnatRefs: new Map(),
  };
  for (const fe of desired.frontends.values()) {
    if (!state.frontends.has(fe.id)) continue;
    own(index, fe);
    const svcId = state.frontends.get(fe.id)!.value.svcId;
    if (!index.setBackends.has(svcId)) {
      const bids = fe.backends.map(backendId);
      index.setBackends.set(svcId, bids);
      for (const bid of bids) inc(index.backendRefs, bid, 1);
    }
  }
  return index;
}

/** Records a planned frontend of a port as its Service's. */
function own(index: PlanIndex, fe: DesiredFrontend): void {
  const svc = serviceOfPort(fe.service);
  const ids = index.frontendsOf.get(svc);
  if (ids) ids.push(fe.id);
  else index.frontendsOf.set(svc, [fe.id]);
  index.ownerOf.set(fe.id, fe.service);
  const rid = revNatId(fe.revNat);
  index.revnatOf.set(fe.id, rid);
  inc(index.revnatRefs, rid, 1);
}

export interface PartialPlan extends Plan {
  /** How the admitted maps' entry counts changed. */
  readonly usage: UsageDelta;
  /** The frontends planned (those of the changed Services). */
  readonly planned: readonly DesiredFrontend[];
}

/** `changed`: the Services (namespace/name) changed since `applied` was planned, as
 * ProxyState.changes names them; `changedFrontends`: their frontends in `desired` when the
 * caller has them (compileChanges), else they are looked for. `fits`: whether the maps can
 * take `adds` more entries at the sync's peak (writes come before deletes); an upper bound is
 * asked, a refusal means a full plan with admission. */
export function planPartial(applied: AppliedState, desired: DesiredState, changed: ReadonlySet<string>, fits: (adds: UsageDelta) => boolean,
  changedFrontends?: readonly DesiredFrontend[]): PartialPlan | null {
  // a port's frontends come one after another: its answer is kept for the next
  let lastPort = '', lastDirty = false;
  const dirty = { has: (port: string) => (port === lastPort ? lastDirty : (lastPort = port, lastDirty = changed.has(serviceOfPort(port)))) };
  const index = applied.index;
  if (!index || !sameRecord(applied.config, desired.config) || !sameRecord(applied.config6, desired.config6)
    || applied.clusterCIDRs.join() !== desired.clusterCIDRs.join()) return null;

  const before: string[] = [...changed].flatMap((svc) => index.frontendsOf.get(svc) ?? []);
  const after: DesiredFrontend[] = changedFrontends ? [...changedFrontends] : [];
  if (!changedFrontends) for (const fe of desired.frontends.values()) if (dirty.has(fe.service)) after.push(fe);
  // A frontend moving between a changed port and an unchanged one (a claim two ports make):
  // the unchanged one would need replanning too.
  for (const id of before) {
    const d = desired.frontends.get(id);
    if (d && !dirty.has(d.service)) return null;
  }
  for (const fe of after) {
    const owner = index.ownerOf.get(fe.id);
    if (owner !== undefined && !dirty.has(owner)) return null;
  }

  const sets = [...groupBy(after, (fe) => fe.set).values()];
  const adds: UsageDelta = {};
  const newBackends = new Set<string>(), newRevnats = new Set<string>();
  for (const fes of sets) {
    const first = fes[0]!;
    bump(adds, 'slots', first.backends.length);
    for (const c of new Set(fes.flatMap((fe) => fe.sourceRanges))) bump(adds, fam('srcRanges', c), 1);
    for (const b of first.backends) {
      const bid = backendId(b);
      if (!index.backendRefs.has(bid) && !newBackends.has(bid)) { newBackends.add(bid); bump(adds, fam('backends', b.addr), 1); }
    }
    for (const fe of fes) {
      if (!applied.frontends.has(fe.id)) bump(adds, fam('frontends', fe.key.addr), 1);
      const rid = revNatId(fe.revNat);
      if (!index.revnatRefs.has(rid) && !newRevnats.has(rid)) { newRevnats.add(rid); bump(adds, fam('revnat', fe.revNat.addr), 1); }
    }
  }
  if (!fits(adds)) return null;

  // From here on the applied state is updated in place.
  const frontends = applied.frontends as Map<string, AppliedFrontend>;
  const appliedSets = applied.sets as Map<number, AppliedSet>;
  const backends = applied.backends as Map<string, { id: number; value: BackendValue }>;
  const revnats = applied.revnats as Map<string, { id: number; value: RevNatValue }>;
  // New frontends, backends and reverse-NAT entries are exactly what `adds` counted (slots and
  // source ranges there are upper bounds: counted below from the sets).
  const usage: UsageDelta = Object.fromEntries(Object.entries(adds).filter(([role]) => role !== 'slots' && !role.startsWith('srcRanges')));
  // What the changed ports held, read before anything is replaced.
  const oldFrontends = new Map(before.map((id) => [id, frontends.get(id)!] as const));
  const oldRevnats = before.map((id) => index.revnatOf.get(id)!);
  const oldSets = new Map([...new Set(before.map((id) => oldFrontends.get(id)!.value.svcId))]
    .map((svcId) => [svcId, { set: appliedSets.get(svcId)!, bids: index.setBackends.get(svcId) ?? [] }] as const));

  const steps = new StepList();
  const pl: Planning = {
    applied, steps, ids: applied.ids, frontends, sets: appliedSets, backends, revnats,
    seenBackends: new Set(), seenRevnats: new Set(), taken: new Set(),
  };
  const planned = new Map<number, { set: AppliedSet; bids: string[] }>();
  for (const fes of sets) {
    const [svcId, set] = planSet(pl, fes, (id) => oldSets.has(id));
    planned.set(svcId, { set, bids: fes[0]!.backends.map(backendId) });
  }

  // Sets: the new ones in, the old ones nothing kept dropped; references moved.
  for (const [svcId, { set, bids }] of planned) {
    appliedSets.set(svcId, set);
    index.setBackends.set(svcId, bids);
    for (const bid of bids) inc(index.backendRefs, bid, 1);
    bump(usage, 'slots', set.slots.length);
    for (const c of set.sourceRanges) bump(usage, fam('srcRanges', c), 1);
  }
  for (const [svcId, { set, bids }] of oldSets) {
    for (const bid of bids) inc(index.backendRefs, bid, -1);
    bump(usage, 'slots', -set.slots.filter((s) => s !== undefined).length);
    for (const c of set.sourceRanges) bump(usage, fam('srcRanges', c), -1);
    if (planned.has(svcId)) continue;
    dropSet(steps, applied.ids, svcId, set);
    appliedSets.delete(svcId);
    index.setBackends.delete(svcId);
  }

  // Frontends: planSet wrote the new ones; those no port owns any more go.
  const owned = new Set(after.map((fe) => fe.id));
  for (const [id, old] of oldFrontends) {
    index.ownerOf.delete(id);
    index.revnatOf.delete(id);
    if (owned.has(id)) continue;
    steps.delete(roleOf('frontends', old.key.addr), old.key);
    frontends.delete(id);
    bump(usage, fam('frontends', old.key.addr), -1);
  }
  for (const rid of oldRevnats) inc(index.revnatRefs, rid, -1);
  for (const svc of changed) index.frontendsOf.delete(svc);
  for (const fe of after) own(index, fe);

  // Backends and reverse-NAT entries the changed ports used that nothing references any more.
  const drop = (role: 'backends' | 'revnat', entries: Map<string, { id: number; value: { addr: string } }>, refs: Map<string, number>, ids: IdAllocator, keys: Iterable<string>) => {
    for (const key of new Set(keys)) {
      if (refs.has(key)) continue;
      const old = entries.get(key)!;
      steps.delete(roleOf(role, old.value.addr), old.id);
      ids.release(old.id);
      entries.delete(key);
      bump(usage, fam(role, old.value.addr), -1);
    }
  };
  drop('backends', backends, index.backendRefs, applied.ids.backend, [...oldSets.values()].flatMap((o) => o.bids));
  drop('revnat', revnats, index.revnatRefs, applied.ids.revnat, oldRevnats);

  const ordered = steps.ordered();
  return { steps: ordered, writes: ordered.reduce((n, s) => n + s.keys.length, 0), next: applied, usage, planned: after };
}
