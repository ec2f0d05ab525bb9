// What the pinned maps hold -> AppliedState, so a restarted controller (or a periodic full
// sync) plans against the kernel's truth and rewrites only the difference. Pure.
import { IdAllocator, MAX_ID } from './ids.js';
import { backendId, frontendId, revNatId } from './compile.js';
import { staleSvcIds, type AppliedFrontend, type AppliedSet, type AppliedState } from './plan.js';
import { cidrOfKey, cidrOfSrcRangeKey } from './cidr-keys.js';
import { groupBy } from './group-by.js';
import type {
  AffinityMatchKey, BackendValue, CidrKey, Config6Value, ConfigValue, FrontendKey, FrontendValue, RevNatValue, SlotKey, SlotValue, SrcRangeKey,
} from './maps.js';

/** Both families' entries of each map (an IPv6 twin's entries follow the IPv4 map's). */
export interface MapDumps {
  readonly frontends: ReadonlyArray<readonly [FrontendKey, FrontendValue]>;
  readonly slots: ReadonlyArray<readonly [SlotKey, SlotValue]>;
  readonly backends: ReadonlyArray<readonly [number, BackendValue]>;
  readonly revnat: ReadonlyArray<readonly [number, RevNatValue]>;
  readonly srcRanges: readonly SrcRangeKey[];
  readonly clusterCidrs: readonly CidrKey[];
  readonly affinityMatch: readonly AffinityMatchKey[];
  readonly config: ConfigValue | null;
  readonly config6: Config6Value | null;
}

/** Duplicates (two ids for one backend address, say) keep the first id; the rest is stale. */
function byIdentity<V extends { addr: string }>(entries: ReadonlyArray<readonly [number, V]>, identity: (v: V) => string) {
  const map = new Map<string, { id: number; value: V }>();
  const stale: { id: number; addr: string }[] = [];
  for (const [id, value] of [...entries].sort((a, b) => a[0] - b[0])) {
    const k = identity(value);
    if (map.has(k)) stale.push({ id, addr: value.addr });
    else map.set(k, { id, value });
  }
  return { map, stale };
}

export function appliedFromMaps(d: MapDumps): AppliedState {
  const backends = byIdentity(d.backends, (v) => backendId(v));
  const revnats = byIdentity(d.revnat, (v) => revNatId(v));

  const slotsBySvc = new Map<number, (number | undefined)[]>();
  for (const [k, v] of d.slots) {
    const list = slotsBySvc.get(k.svcId) ?? [];
    list[k.slot] = v.backendId;
    slotsBySvc.set(k.svcId, list);
  }
  const rangesBySvc = groupBy(d.srcRanges, (k) => k.svcId, cidrOfSrcRangeKey);
  const membersBySvc = groupBy(d.affinityMatch, (k) => k.svcId, (k) => k.backendId);
  const frontends = new Map<string, AppliedFrontend>();
  const sets = new Map<number, AppliedSet>();
  for (const [key, value] of d.frontends) {
    frontends.set(frontendId(key), { key, value });
    sets.set(value.svcId, {
      slots: slotsBySvc.get(value.svcId) ?? [],
      sourceRanges: rangesBySvc.get(value.svcId) ?? [], affinityMembers: membersBySvc.get(value.svcId) ?? [],
    });
  }
  const owned = new Set(sets.keys());
  const staleSlots: SlotKey[] = d.slots.filter(([k]) => !owned.has(k.svcId)).map(([k]) => k);

  const stale = {
    slots: staleSlots, backends: backends.stale, revnat: revnats.stale,
    srcRanges: d.srcRanges.filter((k) => !owned.has(k.svcId)),
    affinityMatch: d.affinityMatch.filter((k) => !owned.has(k.svcId)),
  };
  return {
    frontends,
    sets,
    backends: backends.map,
    revnats: revnats.map,
    config: d.config,
    config6: d.config6,
    clusterCIDRs: d.clusterCidrs.map(cidrOfKey),
    stale,
    ids: {
      svc: new IdAllocator(MAX_ID, [...owned, ...staleSvcIds(stale)], 'service ids (kx_frontends)'),
      backend: new IdAllocator(MAX_ID, d.backends.map(([id]) => id), 'kx_backends ids'),
      revnat: new IdAllocator(MAX_ID, d.revnat.map(([id]) => id), 'kx_revnat ids'),
    },
  };
}
