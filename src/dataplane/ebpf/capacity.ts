// Admission against the maps' capacity, between compile and plan. Pure.
//
// A sync writes new entries before it deletes old ones (plan.ts), so while it runs a map holds
// what was programmed plus what is new: that peak, not the final size, must fit, or a batch
// update fails half-way with E2BIG. Services are admitted whole (every frontend of a Service
// port, or none) in a fixed order — those already programmed first, then by name — while every
// map's peak stays within its limit. A Service left out keeps what it had programmed, less the
// endpoints that are gone (nothing is lost, nothing stale is served); a new one waits. Each map that turned a Service away is reported with its limit,
// the demand and the Services left out.
import { backendId, revNatId, type DesiredFrontend, type DesiredState } from './compile.js';
import { KX_LIMITS } from './limits.js';
import type { MapSizes } from './map-sizes.js';
import { groupBy } from './group-by.js';
import type { AppliedSet, AppliedState } from './plan.js';
import type { BackendValue } from './maps.js';

export type CapacityLimits = {
  readonly frontends: number; readonly slots: number; readonly backends: number; readonly revnat: number; readonly srcRanges: number;
};
/** The limits admission works against: the sizes the maps were loaded with. */
export const capacityLimits = (sizes: MapSizes): CapacityLimits => ({
  frontends: sizes.frontends, slots: sizes.slots, backends: sizes.backends, revnat: sizes.revnat, srcRanges: sizes.srcRanges,
});
export const MAP_LIMITS: CapacityLimits = capacityLimits(KX_LIMITS);
const MAP_NAMES: Record<keyof CapacityLimits, string> = {
  frontends: 'kx_frontends', slots: 'kx_slots', backends: 'kx_backends', revnat: 'kx_revnat', srcRanges: 'kx_src_ranges',
};

export interface Shortfall {
  readonly map: string;
  readonly limit: number;
  /** Entries the map would need at the sync's peak with every Service admitted. */
  readonly demand: number;
  /** Service ports left out because of this map (sorted). */
  readonly services: readonly string[];
}

export interface Admission {
  readonly desired: DesiredState;
  readonly shortfalls: readonly Shortfall[];
  /** Every Service port left out (sorted). */
  readonly leftOut: readonly string[];
}

type Usage = Record<keyof CapacityLimits, number>;

const appliedSetOf = (applied: AppliedState, fe: DesiredFrontend): AppliedSet | undefined => {
  const svcId = applied.frontends.get(fe.id)?.value.svcId;
  return svcId === undefined ? undefined : applied.sets.get(svcId);
};

export function admit(applied: AppliedState, desired: DesiredState, limits: CapacityLimits = MAP_LIMITS): Admission {
  const byService = groupBy(desired.frontends.values(), (fe) => fe.service);
  const programmed = (fes: DesiredFrontend[]) => fes.some((fe) => applied.frontends.has(fe.id));
  const order = [...byService.keys()].sort((a, b) => {
    const pa = programmed(byService.get(a)!), pb = programmed(byService.get(b)!);
    return pa !== pb ? (pa ? -1 : 1) : a < b ? -1 : a > b ? 1 : 0;
  });

  // Everything programmed stays in the maps until the deletes at the end of the sync.
  const used: Usage = {
    frontends: applied.frontends.size,
    slots: [...applied.sets.values()].reduce((n, set) => n + set.slots.filter((s) => s !== undefined).length, 0) + applied.stale.slots.length,
    backends: applied.backends.size + applied.stale.backends.length,
    revnat: applied.revnats.size + applied.stale.revnat.length,
    srcRanges: [...applied.sets.values()].reduce((n, set) => n + set.sourceRanges.length, 0) + applied.stale.srcRanges.length,
  };
  const demand: Usage = { ...used };
  const backends = new Set(applied.backends.keys());
  const revnats = new Set(applied.revnats.keys());
  const frontends = new Map<string, DesiredFrontend>();
  const refused = new Map<keyof CapacityLimits, string[]>();
  const leftOut: string[] = [];
  let byId: Map<number, BackendValue> | undefined;

  for (const service of order) {
    const fes = byService.get(service)!;
    const extra: Usage = { frontends: 0, slots: 0, backends: 0, revnat: 0, srcRanges: 0 };
    const newBackends = new Set<string>(), newRevnats = new Set<string>();
    const setsSeen = new Set<string>();
    for (const fe of fes) {
      extra.frontends += applied.frontends.has(fe.id) ? 0 : 1;
      if (!setsSeen.has(fe.set)) {
        // A set's entries are written once for all its frontends (plan.ts keeps its svc_id).
        setsSeen.add(fe.set);
        const members = fes.filter((f) => f.set === fe.set);
        const old = members.map((f) => appliedSetOf(applied, f)).find((x) => x !== undefined);
        extra.slots += Math.max(0, fe.backends.length - (old?.slots.length ?? 0));
        extra.srcRanges += new Set(members.flatMap((f) => f.sourceRanges).filter((r) => !old?.sourceRanges.includes(r))).size;
      }
      for (const b of fe.backends) if (!backends.has(backendId(b))) newBackends.add(backendId(b));
      if (!revnats.has(revNatId(fe.revNat))) newRevnats.add(revNatId(fe.revNat));
    }
    extra.backends = newBackends.size;
    extra.revnat = newRevnats.size;
    const over = (Object.keys(limits) as (keyof CapacityLimits)[]).filter((m) => used[m] + extra[m] > limits[m]);
    for (const m of Object.keys(demand) as (keyof CapacityLimits)[]) demand[m] += extra[m];
    if (over.length === 0) {
      for (const m of Object.keys(used) as (keyof CapacityLimits)[]) used[m] += extra[m];
      newBackends.forEach((b) => backends.add(b));
      newRevnats.forEach((r) => revnats.add(r));
      for (const fe of fes) frontends.set(fe.id, fe);
      continue;
    }
    leftOut.push(service);
    for (const m of over) refused.set(m, [...(refused.get(m) ?? []), service]);
    // It keeps what it had programmed (counted in `used` already), less the endpoints that are
    // gone: a removal never needs room, and traffic must not reach a removed endpoint.
    for (const fe of fes) {
      const old = appliedSetOf(applied, fe);
      if (!old) continue;
      byId ??= new Map([...applied.backends.values()].map((b) => [b.id, b.value]));
      const wanted = new Set(fe.backends.map(backendId));
      const kept = old.slots.flatMap((id) => {
        const b = id === undefined ? undefined : byId!.get(id);
        return b && wanted.has(backendId(b)) ? [b] : [];
      });
      frontends.set(fe.id, { ...fe, backends: kept });
    }
  }

  const shortfalls = [...refused].map(([m, services]) => ({ map: MAP_NAMES[m], limit: limits[m], demand: demand[m], services: services.sort() }));
  return { desired: { ...desired, frontends }, shortfalls, leftOut: leftOut.sort() };
}
