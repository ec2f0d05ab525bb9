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
import { MAPS, roleOf, type BackendValue, type FamilyRole } from './maps.js';

const ADMITTED = ['frontends', 'frontends6', 'slots', 'backends', 'backends6', 'revnat', 'revnat6', 'srcRanges', 'srcRanges6'] as const;
type AdmittedRole = (typeof ADMITTED)[number];
export type CapacityLimits = Readonly<Record<AdmittedRole, number>>;
/** The limits admission works against: the sizes the maps were loaded with. */
export const capacityLimits = (sizes: MapSizes): CapacityLimits =>
  Object.fromEntries(ADMITTED.map((r) => [r, sizes[r]])) as CapacityLimits;
export const MAP_LIMITS: CapacityLimits = capacityLimits(KX_LIMITS);
/** Entries of one family's map: IPv6 addresses count against the IPv6 twin. */
const fam = (role: FamilyRole & AdmittedRole, addr: string) => roleOf(role, addr) as AdmittedRole;

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

type Usage = Record<AdmittedRole, number>;
const zero = (): Usage => Object.fromEntries(ADMITTED.map((r) => [r, 0])) as Usage;
function count<T>(u: Usage, items: Iterable<T>, role: (t: T) => AdmittedRole): void {
  for (const t of items) u[role(t)] += 1;
}

const appliedSetOf = (applied: AppliedState, fe: DesiredFrontend): AppliedSet | undefined => {
  const svcId = applied.frontends.get(fe.id)?.value.svcId;
  return svcId === undefined ? undefined : applied.sets.get(svcId);
};

/** Entries each admitted map holds in `applied`, stale ones included (by role). */
export function mapUsage(applied: AppliedState): Record<AdmittedRole, number> {
  const used = zero();
  count(used, applied.frontends.values(), (fe) => fam('frontends', fe.key.addr));
  used.slots = [...applied.sets.values()].reduce((n, set) => n + set.slots.filter((s) => s !== undefined).length, 0) + applied.stale.slots.length;
  count(used, [...[...applied.backends.values()].map((b) => b.value.addr), ...applied.stale.backends.map((b) => b.addr)], (a) => fam('backends', a));
  count(used, [...[...applied.revnats.values()].map((r) => r.value.addr), ...applied.stale.revnat.map((r) => r.addr)], (a) => fam('revnat', a));
  count(used, [...[...applied.sets.values()].flatMap((set) => set.sourceRanges), ...applied.stale.srcRanges.map((k) => k.addr)], (a) => fam('srcRanges', a));
  return used;
}

export function admit(applied: AppliedState, desired: DesiredState, limits: CapacityLimits = MAP_LIMITS): Admission {
  const byService = groupBy(desired.frontends.values(), (fe) => fe.service);
  const programmed = (fes: DesiredFrontend[]) => fes.some((fe) => applied.frontends.has(fe.id));
  const order = [...byService.keys()].sort((a, b) => {
    const pa = programmed(byService.get(a)!), pb = programmed(byService.get(b)!);
    return pa !== pb ? (pa ? -1 : 1) : a < b ? -1 : a > b ? 1 : 0;
  });

  // Everything programmed stays in the maps until the deletes at the end of the sync.
  const used = mapUsage(applied);
  const demand: Usage = { ...used };
  const backends = new Set(applied.backends.keys());
  const revnats = new Set(applied.revnats.keys());
  const frontends = new Map<string, DesiredFrontend>();
  const refused = new Map<AdmittedRole, string[]>();
  const leftOut: string[] = [];
  let byId: Map<number, BackendValue> | undefined;

  for (const service of order) {
    const fes = byService.get(service)!;
    const extra = zero();
    const newBackends = new Map<string, string>(), newRevnats = new Map<string, string>(); // id -> address
    const setsSeen = new Set<string>();
    for (const fe of fes) {
      extra[fam('frontends', fe.key.addr)] += applied.frontends.has(fe.id) ? 0 : 1;
      if (!setsSeen.has(fe.set)) {
        // A set's entries are written once for all its frontends (plan.ts keeps its svc_id).
        setsSeen.add(fe.set);
        const members = fes.filter((f) => f.set === fe.set);
        const old = members.map((f) => appliedSetOf(applied, f)).find((x) => x !== undefined);
        extra.slots += Math.max(0, fe.backends.length - (old?.slots.length ?? 0));
        count(extra, new Set(members.flatMap((f) => f.sourceRanges).filter((r) => !old?.sourceRanges.includes(r))), (r) => fam('srcRanges', r));
      }
      for (const b of fe.backends) if (!backends.has(backendId(b))) newBackends.set(backendId(b), b.addr);
      if (!revnats.has(revNatId(fe.revNat))) newRevnats.set(revNatId(fe.revNat), fe.revNat.addr);
    }
    count(extra, newBackends.values(), (a) => fam('backends', a));
    count(extra, newRevnats.values(), (a) => fam('revnat', a));
    const over = ADMITTED.filter((m) => used[m] + extra[m] > limits[m]);
    for (const m of ADMITTED) demand[m] += extra[m];
    if (over.length === 0) {
      for (const m of ADMITTED) used[m] += extra[m];
      newBackends.forEach((_, b) => backends.add(b));
      newRevnats.forEach((_, r) => revnats.add(r));
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

  const shortfalls = [...refused].map(([m, services]) => ({ map: MAPS[m].name, limit: limits[m], demand: demand[m], services: services.sort() }));
  return { desired: { ...desired, frontends }, shortfalls, leftOut: leftOut.sort() };
}
