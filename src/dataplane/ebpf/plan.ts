// (what the maps hold, what they should hold) -> ordered batch operations, plus the new
// "what the maps hold". Pure: the applier (apply.ts) is what talks to the kernel.
//
// Write order (DESIGN.md §2), so a reader never sees a count that points past written slots
// or a slot that points to a missing backend:
//   config, cluster CIDRs, backends, slots, reverse-NAT, source ranges, affinity members,
//   frontends (count last) -> delete frontends, surplus slots, unreferenced reverse-NAT,
//   unreferenced backends, source ranges, affinity members and cluster CIDRs no longer wanted.
// (A frontend never points to ranges not yet written: it would turn every client away.)
import { IdAllocator, MAX_ID } from './ids.js';
import { backendId, revNatId, type DesiredFrontend, type DesiredState } from './compile.js';
import { groupBy } from './group-by.js';
import { indexOf, type PlanIndex } from './plan-partial.js';
import { cidrKeyOf, clusterCidrsRole, srcRangeKeyOf, srcRangesRole } from './cidr-keys.js';
import {
  FE_AFFINITY, roleOf,
  type AffinityMatchKey, type BackendValue, type Config6Value, type ConfigValue, type FrontendKey, type FrontendValue, type MapRole,
  type RevNatValue, type SlotKey, type SlotValue, type SrcRangeKey,
} from './maps.js';

export interface AppliedFrontend {
  readonly key: FrontendKey;
  readonly value: FrontendValue;
}

/** A backend set: what the frontends sharing one svc_id point to. */
export interface AppliedSet {
  /** backend id per slot; holes possible only in state read back from the kernel */
  readonly slots: readonly (number | undefined)[];
  /** kx_src_ranges CIDRs (canonical) */
  readonly sourceRanges: readonly string[];
  /** kx_affinity_match backend ids */
  readonly affinityMembers: readonly number[];
}

export interface AppliedState {
  readonly frontends: ReadonlyMap<string, AppliedFrontend>;
  /** by svc_id */
  readonly sets: ReadonlyMap<number, AppliedSet>;
  readonly backends: ReadonlyMap<string, { readonly id: number; readonly value: BackendValue }>;
  readonly revnats: ReadonlyMap<string, { readonly id: number; readonly value: RevNatValue }>;
  readonly config: ConfigValue | null;
  readonly config6: Config6Value | null;
  /** kx_cluster_cidrs and kx_cluster_cidrs6 (canonical CIDRs) */
  readonly clusterCIDRs: readonly string[];
  /** entries found in the kernel that nothing references: the next plan deletes them */
  readonly stale: Stale;
  readonly ids: { readonly svc: IdAllocator; readonly backend: IdAllocator; readonly revnat: IdAllocator };
  /** Set by a full plan, kept by partial ones (plan-partial.ts); absent in state read back
   * from the kernel, whose next plan is a full one. */
  readonly index?: PlanIndex;
}

/** An id-keyed entry and the address that says which family's map holds it. */
export interface StaleId { readonly id: number; readonly addr: string }

export interface Stale {
  readonly slots: readonly SlotKey[]; readonly backends: readonly StaleId[]; readonly revnat: readonly StaleId[];
  readonly srcRanges: readonly SrcRangeKey[]; readonly affinityMatch: readonly AffinityMatchKey[];
}
/** Service ids held by stale entries: reserved until the plan deleting them ran. */
export const staleSvcIds = (s: Stale): Set<number> =>
  new Set([...s.slots, ...s.srcRanges, ...s.affinityMatch].map((k) => k.svcId));
const NO_STALE: Stale = { slots: [], backends: [], revnat: [], srcRanges: [], affinityMatch: [] };

export interface MapStep {
  readonly map: MapRole;
  readonly op: 'update' | 'delete';
  readonly keys: readonly unknown[];
  readonly values: readonly unknown[]; // empty for deletes
}

export interface Plan {
  readonly steps: readonly MapStep[];
  readonly next: AppliedState;
  readonly writes: number; // entries updated + deleted
}

export function emptyApplied(): AppliedState {
  return {
    frontends: new Map(), sets: new Map(), backends: new Map(), revnats: new Map(), config: null, config6: null, clusterCIDRs: [],
    stale: NO_STALE,
    ids: {
      svc: new IdAllocator(MAX_ID, [], 'service ids (kx_frontends)'),
      backend: new IdAllocator(MAX_ID, [], 'kx_backends ids'),
      revnat: new IdAllocator(MAX_ID, [], 'kx_revnat ids'),
    },
  };
}

export const sameRecord = (a: object | null | undefined, b: object): boolean => {
  if (!a) return false;
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  return Object.keys(rb).every((k) => ra[k] === rb[k]);
};

export class StepList {
  private readonly upd = new Map<MapRole, { keys: unknown[]; values: unknown[] }>();
  private readonly del = new Map<MapRole, unknown[]>();
  update(map: MapRole, key: unknown, value: unknown): void {
    const s = this.upd.get(map) ?? { keys: [], values: [] };
    s.keys.push(key);
    s.values.push(value);
    this.upd.set(map, s);
  }
  delete(map: MapRole, key: unknown): void {
    const s = this.del.get(map) ?? [];
    s.push(key);
    this.del.set(map, s);
  }
  ordered(): MapStep[] {
    const steps: MapStep[] = [];
    for (const map of ['config', 'config6', 'clusterCidrs', 'clusterCidrs6', 'backends', 'backends6', 'slots', 'revnat', 'revnat6',
      'srcRanges', 'srcRanges6', 'affinityMatch', 'frontends', 'frontends6'] as const) {
      const s = this.upd.get(map);
      if (s) steps.push({ map, op: 'update', keys: s.keys, values: s.values });
    }
    for (const map of ['frontends', 'frontends6', 'slots', 'revnat', 'revnat6', 'backends', 'backends6', 'srcRanges', 'srcRanges6',
      'affinityMatch', 'clusterCidrs', 'clusterCidrs6'] as const) {
      const keys = this.del.get(map);
      if (keys) steps.push({ map, op: 'delete', keys, values: [] });
    }
    return steps;
  }
}

/** Set-like maps (value 1): adds what is new, deletes what went; `map` picks each member's map. */
export function syncSet<T>(steps: StepList, map: (m: T) => MapRole, old: readonly T[], want: readonly T[], key: (m: T) => unknown): void {
  const had = new Set(old), wanted = new Set(want);
  for (const m of wanted) if (!had.has(m)) steps.update(map(m), key(m), 1);
  for (const m of had) if (!wanted.has(m)) steps.delete(map(m), key(m));
}
const AFFINITY_MATCH = (): MapRole => 'affinityMatch';

/** Where planning writes: the steps, the state after them, and the allocators. A full plan
 * fills fresh maps; a partial one (plan-partial.ts) updates the applied state's own. */
export interface Planning {
  readonly applied: AppliedState;
  readonly steps: StepList;
  readonly ids: AppliedState['ids'];
  readonly frontends: Map<string, AppliedFrontend>;
  readonly sets: Map<number, AppliedSet>;
  readonly backends: Map<string, { id: number; value: BackendValue }>;
  readonly revnats: Map<string, { id: number; value: RevNatValue }>;
  /** backends and reverse-NAT entries this pass already wrote, svc ids it gave a set */
  readonly seenBackends: Set<string>;
  readonly seenRevnats: Set<string>;
  readonly taken: Set<number>;
}

/** Plans one backend set (the frontends sharing it, in desired order): its backends, slots,
 * source ranges, affinity members, reverse-NAT entries and frontends. `mayKeep`: whether the
 * set may keep an applied svc id (a partial plan keeps only those of the ports it replans).
 * Returns the svc id and the set. */
export function planSet(pl: Planning, fes: readonly DesiredFrontend[], mayKeep: (svcId: number) => boolean = () => true): [number, AppliedSet] {
  const { applied, steps, ids } = pl;
  const first = fes[0]!;
  for (const b of first.backends) {
    const bid = backendId(b);
    if (pl.seenBackends.has(bid)) continue;
    pl.seenBackends.add(bid);
    const old = applied.backends.get(bid);
    const entry = { id: old?.id ?? ids.backend.allocate(), value: b };
    if (!sameRecord(old?.value, b)) steps.update(roleOf('backends', b.addr), entry.id, b);
    pl.backends.set(bid, entry);
  }
  // The set keeps the svc_id one of its frontends points to, unless another set took it.
  const kept = fes.map((fe) => applied.frontends.get(fe.id)?.value.svcId)
    .find((id) => id !== undefined && applied.sets.has(id) && !pl.taken.has(id) && mayKeep(id));
  const svcId = kept ?? ids.svc.allocate();
  pl.taken.add(svcId);
  const old = kept !== undefined ? applied.sets.get(kept) : undefined;
  const slots = first.backends.map((b) => pl.backends.get(backendId(b))!.id);
  slots.forEach((bid, slot) => {
    if (old?.slots[slot] !== bid) steps.update('slots', { svcId, slot }, { backendId: bid } satisfies SlotValue);
  });
  old?.slots.forEach((bid, slot) => {
    if (slot >= slots.length && bid !== undefined) steps.delete('slots', { svcId, slot } satisfies SlotKey);
  });
  const sourceRanges = [...new Set(fes.flatMap((fe) => fe.sourceRanges))].sort();
  const affinityMembers = first.flags & FE_AFFINITY ? [...new Set(slots)] : [];
  syncSet(steps, srcRangesRole, old?.sourceRanges ?? [], sourceRanges, (c) => srcRangeKeyOf(svcId, c));
  syncSet(steps, AFFINITY_MATCH, old?.affinityMembers ?? [], affinityMembers, (backendId) => ({ svcId, backendId }));
  const set: AppliedSet = { slots, sourceRanges, affinityMembers };

  for (const fe of fes) {
    const rid = revNatId(fe.revNat);
    if (!pl.seenRevnats.has(rid)) {
      pl.seenRevnats.add(rid);
      const oldRn = applied.revnats.get(rid);
      const entry = { id: oldRn?.id ?? ids.revnat.allocate(), value: fe.revNat };
      if (!sameRecord(oldRn?.value, fe.revNat)) steps.update(roleOf('revnat', fe.revNat.addr), entry.id, fe.revNat);
      pl.revnats.set(rid, entry);
    }
    const value: FrontendValue = {
      svcId, count: slots.length, flags: fe.flags, affinityTimeout: fe.affinityTimeout,
      revNatId: pl.revnats.get(rid)!.id,
    };
    if (!sameRecord(applied.frontends.get(fe.id)?.value, value)) steps.update(roleOf('frontends', fe.key.addr), fe.key, value);
    pl.frontends.set(fe.id, { key: fe.key, value });
  }
  return [svcId, set];
}

/** Deletes the entries of a set nothing plans any more and gives its svc id back. */
export function dropSet(steps: StepList, ids: AppliedState['ids'], svcId: number, old: AppliedSet): void {
  old.slots.forEach((bid, slot) => {
    if (bid !== undefined) steps.delete('slots', { svcId, slot } satisfies SlotKey);
  });
  syncSet(steps, srcRangesRole, old.sourceRanges, [], (c) => srcRangeKeyOf(svcId, c));
  syncSet(steps, AFFINITY_MATCH, old.affinityMembers, [], (backendId) => ({ svcId, backendId }));
  ids.svc.release(svcId);
}

export function plan(applied: AppliedState, desired: DesiredState): Plan {
  const ids = { svc: applied.ids.svc.clone(), backend: applied.ids.backend.clone(), revnat: applied.ids.revnat.clone() };
  const steps = new StepList();
  const pl: Planning = {
    applied, steps, ids, frontends: new Map(), sets: new Map(), backends: new Map(), revnats: new Map(),
    seenBackends: new Set(), seenRevnats: new Set(), taken: new Set(),
  };
  const { frontends, sets, backends, revnats } = pl;

  for (const fes of groupBy(desired.frontends.values(), (fe) => fe.set).values()) {
    const [svcId, set] = planSet(pl, fes);
    sets.set(svcId, set);
  }

  for (const [id, old] of applied.frontends) if (!frontends.has(id)) steps.delete(roleOf('frontends', old.key.addr), old.key);
  for (const [svcId, old] of applied.sets) if (!sets.has(svcId)) dropSet(steps, ids, svcId, old);
  for (const k of applied.stale.srcRanges) steps.delete(roleOf('srcRanges', k.addr), k);
  for (const k of applied.stale.affinityMatch) steps.delete('affinityMatch', k);
  syncSet(steps, clusterCidrsRole, applied.clusterCIDRs, desired.clusterCIDRs, cidrKeyOf);
  for (const k of applied.stale.slots) steps.delete('slots', k);
  for (const svcId of staleSvcIds(applied.stale)) ids.svc.release(svcId);
  for (const [bid, old] of applied.backends) {
    if (backends.has(bid)) continue;
    steps.delete(roleOf('backends', old.value.addr), old.id);
    ids.backend.release(old.id);
  }
  for (const { id, addr } of applied.stale.backends) {
    steps.delete(roleOf('backends', addr), id);
    ids.backend.release(id);
  }
  for (const [rid, old] of applied.revnats) {
    if (revnats.has(rid)) continue;
    steps.delete(roleOf('revnat', old.value.addr), old.id);
    ids.revnat.release(old.id);
  }
  for (const { id, addr } of applied.stale.revnat) {
    steps.delete(roleOf('revnat', addr), id);
    ids.revnat.release(id);
  }
  if (!sameRecord(applied.config, desired.config)) steps.update('config', 0, desired.config);
  if (!sameRecord(applied.config6, desired.config6)) steps.update('config6', 0, desired.config6);

  const ordered = steps.ordered();
  return {
    steps: ordered,
    writes: ordered.reduce((n, s) => n + s.keys.length, 0),
    next: {
      frontends, sets, backends, revnats, config: desired.config, config6: desired.config6, clusterCIDRs: desired.clusterCIDRs,
      stale: NO_STALE, ids, index: indexOf({ frontends, sets, backends }, desired),
    },
  };
}
