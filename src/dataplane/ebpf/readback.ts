// What the pinned maps hold -> AppliedState, so a restarted controller (or a periodic full
// sync) plans against the kernel's truth and rewrites only the difference. Pure.
import { IdAllocator } from './ids.js';
import { backendId, frontendId, revNatId } from './compile.js';
import { KX_LIMITS } from './limits.js';
import type { AppliedFrontend, AppliedState } from './plan.js';
import type {
  BackendValue, ConfigValue, FrontendKey, FrontendValue, RevNatValue, SlotKey, SlotValue,
} from './maps.js';

export interface MapDumps {
  readonly frontends: ReadonlyArray<readonly [FrontendKey, FrontendValue]>;
  readonly slots: ReadonlyArray<readonly [SlotKey, SlotValue]>;
  readonly backends: ReadonlyArray<readonly [number, BackendValue]>;
  readonly revnat: ReadonlyArray<readonly [number, RevNatValue]>;
  readonly config: ConfigValue | null;
}

/** Duplicates (two ids for one backend address, say) keep the first id; the rest is stale. */
function byIdentity<V>(entries: ReadonlyArray<readonly [number, V]>, identity: (v: V) => string) {
  const map = new Map<string, { id: number; value: V }>();
  const stale: number[] = [];
  for (const [id, value] of [...entries].sort((a, b) => a[0] - b[0])) {
    const k = identity(value);
    if (map.has(k)) stale.push(id);
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
  const frontends = new Map<string, AppliedFrontend>();
  for (const [key, value] of d.frontends) {
    frontends.set(frontendId(key), { key, value, slots: slotsBySvc.get(value.svcId) ?? [] });
  }
  const owned = new Set([...frontends.values()].map((f) => f.value.svcId));
  const staleSlots: SlotKey[] = d.slots.filter(([k]) => !owned.has(k.svcId)).map(([k]) => k);

  return {
    frontends,
    backends: backends.map,
    revnats: revnats.map,
    config: d.config,
    stale: { slots: staleSlots, backends: backends.stale, revnat: revnats.stale },
    ids: {
      svc: new IdAllocator(KX_LIMITS.frontends, [...owned, ...staleSlots.map((k) => k.svcId)], 'service ids (kx_frontends)'),
      backend: new IdAllocator(KX_LIMITS.backends, d.backends.map(([id]) => id), 'kx_backends ids'),
      revnat: new IdAllocator(KX_LIMITS.revnat, d.revnat.map(([id]) => id), 'kx_revnat ids'),
    },
  };
}
