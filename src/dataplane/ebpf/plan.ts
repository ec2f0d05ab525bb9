// (what the maps hold, what they should hold) -> ordered batch operations, plus the new
// "what the maps hold". Pure: the applier (apply.ts) is what talks to the kernel.
//
// Write order (DESIGN.md §2), so a reader never sees a count that points past written slots
// or a slot that points to a missing backend:
//   config, backends, slots, reverse-NAT, frontends (count last) ->
//   delete frontends, surplus slots, unreferenced reverse-NAT, unreferenced backends.
import { IdAllocator } from './ids.js';
import { backendId, revNatId, type DesiredState } from './compile.js';
import { KX_LIMITS } from './limits.js';
import type {
  BackendValue, ConfigValue, FrontendKey, FrontendValue, MapRole, RevNatValue, SlotKey, SlotValue,
} from './maps.js';

export interface AppliedFrontend {
  readonly key: FrontendKey;
  readonly value: FrontendValue;
  /** backend id per slot; holes possible only in state read back from the kernel */
  readonly slots: readonly (number | undefined)[];
}

export interface AppliedState {
  readonly frontends: ReadonlyMap<string, AppliedFrontend>;
  readonly backends: ReadonlyMap<string, { readonly id: number; readonly value: BackendValue }>;
  readonly revnats: ReadonlyMap<string, { readonly id: number; readonly value: RevNatValue }>;
  readonly config: ConfigValue | null;
  /** entries found in the kernel that nothing references: the next plan deletes them */
  readonly stale: { readonly slots: readonly SlotKey[]; readonly backends: readonly number[]; readonly revnat: readonly number[] };
  readonly ids: { readonly svc: IdAllocator; readonly backend: IdAllocator; readonly revnat: IdAllocator };
}

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
    frontends: new Map(), backends: new Map(), revnats: new Map(), config: null,
    stale: { slots: [], backends: [], revnat: [] },
    ids: {
      svc: new IdAllocator(KX_LIMITS.frontends, [], 'service ids (kx_frontends)'),
      backend: new IdAllocator(KX_LIMITS.backends, [], 'kx_backends ids'),
      revnat: new IdAllocator(KX_LIMITS.revnat, [], 'kx_revnat ids'),
    },
  };
}

const sameRecord = (a: object | null | undefined, b: object): boolean => {
  if (!a) return false;
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  return Object.keys(rb).every((k) => ra[k] === rb[k]);
};

class StepList {
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
    for (const map of ['config', 'backends', 'slots', 'revnat', 'frontends'] as const) {
      const s = this.upd.get(map);
      if (s) steps.push({ map, op: 'update', keys: s.keys, values: s.values });
    }
    for (const map of ['frontends', 'slots', 'revnat', 'backends'] as const) {
      const keys = this.del.get(map);
      if (keys) steps.push({ map, op: 'delete', keys, values: [] });
    }
    return steps;
  }
}

export function plan(applied: AppliedState, desired: DesiredState): Plan {
  const ids = { svc: applied.ids.svc.clone(), backend: applied.ids.backend.clone(), revnat: applied.ids.revnat.clone() };
  const steps = new StepList();

  const backends = new Map<string, { id: number; value: BackendValue }>();
  const revnats = new Map<string, { id: number; value: RevNatValue }>();
  const frontends = new Map<string, AppliedFrontend>();

  for (const fe of desired.frontends.values()) {
    for (const b of fe.backends) {
      const bid = backendId(b);
      if (backends.has(bid)) continue;
      const old = applied.backends.get(bid);
      const entry = { id: old?.id ?? ids.backend.allocate(), value: b };
      if (!sameRecord(old?.value, b)) steps.update('backends', entry.id, b);
      backends.set(bid, entry);
    }
    const rid = revNatId(fe.revNat);
    if (!revnats.has(rid)) {
      const old = applied.revnats.get(rid);
      const entry = { id: old?.id ?? ids.revnat.allocate(), value: fe.revNat };
      if (!sameRecord(old?.value, fe.revNat)) steps.update('revnat', entry.id, fe.revNat);
      revnats.set(rid, entry);
    }

    const old = applied.frontends.get(fe.id);
    const svcId = old?.value.svcId ?? ids.svc.allocate();
    const slots = fe.backends.map((b) => backends.get(backendId(b))!.id);
    slots.forEach((bid, slot) => {
      if (old?.slots[slot] !== bid) steps.update('slots', { svcId, slot }, { backendId: bid } satisfies SlotValue);
    });
    old?.slots.forEach((bid, slot) => {
      if (slot >= slots.length && bid !== undefined) steps.delete('slots', { svcId, slot } satisfies SlotKey);
    });
    const value: FrontendValue = {
      svcId, count: slots.length, flags: fe.flags, affinityTimeout: fe.affinityTimeout,
      revNatId: revnats.get(rid)!.id,
    };
    if (!sameRecord(old?.value, value)) steps.update('frontends', fe.key, value);
    frontends.set(fe.id, { key: fe.key, value, slots });
  }

  for (const [id, old] of applied.frontends) {
    if (frontends.has(id)) continue;
    steps.delete('frontends', old.key);
    old.slots.forEach((bid, slot) => {
      if (bid !== undefined) steps.delete('slots', { svcId: old.value.svcId, slot } satisfies SlotKey);
    });
    ids.svc.release(old.value.svcId);
  }
  for (const k of applied.stale.slots) steps.delete('slots', k);
  for (const svcId of new Set(applied.stale.slots.map((k) => k.svcId))) ids.svc.release(svcId);
  for (const [bid, old] of applied.backends) {
    if (backends.has(bid)) continue;
    steps.delete('backends', old.id);
    ids.backend.release(old.id);
  }
  for (const id of applied.stale.backends) {
    steps.delete('backends', id);
    ids.backend.release(id);
  }
  for (const [rid, old] of applied.revnats) {
    if (revnats.has(rid)) continue;
    steps.delete('revnat', old.id);
    ids.revnat.release(old.id);
  }
  for (const id of applied.stale.revnat) {
    steps.delete('revnat', id);
    ids.revnat.release(id);
  }
  if (!sameRecord(applied.config, desired.config)) steps.update('config', 0, desired.config);

  const ordered = steps.ordered();
  return {
    steps: ordered,
    writes: ordered.reduce((n, s) => n + s.keys.length, 0),
    next: {
      frontends, backends, revnats, config: desired.config,
      stale: { slots: [], backends: [], revnat: [] }, ids,
    },
  };
}
