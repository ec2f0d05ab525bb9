// Executes a plan against the maps: one batch call per step, so FFI calls per sync are
// O(maps), not O(entries). Also reads the maps back for restarts and full syncs.
import { decodeAll, encodeAll, type Codec } from './codec.js';
import { MAPS, ROLE6, type AffinityMatchKey, type CidrKey, type MapRole, type SrcRangeKey } from './maps.js';
import { KX_LIMITS } from './limits.js';
import type { Plan } from './plan.js';
import type { MapDumps } from './readback.js';

/** The kernel side of the maps, by map name. Implemented over libkx (kernel/) and by tests. */
export interface MapIO {
  updateBatch(map: string, keys: Buffer, values: Buffer, count: number): void;
  deleteBatch(map: string, keys: Buffer, count: number): void;
  /** Every entry, keys and values back to back. */
  dump(map: string, keySize: number, valueSize: number, max: number): { keys: Buffer; values: Buffer; count: number };
}

export interface ApplyCounts { readonly updates: Record<string, number>; readonly deletes: Record<string, number> }

export function applyPlan(io: MapIO, p: Plan): ApplyCounts {
  const updates: Record<string, number> = {};
  const deletes: Record<string, number> = {};
  for (const step of p.steps) {
    const spec = MAPS[step.map] as { name: string; key: Codec<unknown>; value: Codec<unknown> };
    const keys = encodeAll(spec.key, step.keys);
    if (step.op === 'update') {
      io.updateBatch(spec.name, keys, encodeAll(spec.value, step.values), step.keys.length);
      updates[spec.name] = (updates[spec.name] ?? 0) + step.keys.length;
    } else {
      io.deleteBatch(spec.name, keys, step.keys.length);
      deletes[spec.name] = (deletes[spec.name] ?? 0) + step.keys.length;
    }
  }
  return { updates, deletes };
}

/** The maps a sync plans (the datapath writes conntrack, affinity and the sockets' reverse
 * NAT; pins.ts the layout; prefilter.ts the prefilter; the loader the socket config). */
type OwnedRole = Exclude<MapRole, 'ct' | 'ctNew' | 'affinity' | 'ct6' | 'ctNew6' | 'affinity6' | 'layout' | 'vipBloom' | 'portBits'
  | 'sockRevnat' | 'sockRevnat6' | 'sockConfig'>;
const MAX_ENTRIES: Record<OwnedRole, number> = { ...KX_LIMITS, config: 1, config6: 1 };

export function dumpMap<K, V>(io: MapIO, role: OwnedRole): Array<[K, V]> {
  const spec = MAPS[role] as unknown as { name: string; key: Codec<K>; value: Codec<V> };
  const d = io.dump(spec.name, spec.key.size, spec.value.size, MAX_ENTRIES[role]);
  const keys = decodeAll(spec.key, d.keys, d.count);
  const values = decodeAll(spec.value, d.values, d.count);
  return keys.map((k, i) => [k, values[i]!]);
}

/** A map and its IPv6 twin, one list. */
function dumpBoth<K, V>(io: MapIO, role: keyof typeof ROLE6 & OwnedRole): Array<[K, V]> {
  return [...dumpMap<K, V>(io, role), ...dumpMap<K, V>(io, ROLE6[role] as OwnedRole)];
}

export function readMaps(io: MapIO): MapDumps {
  const config = dumpMap<number, MapDumps['config']>(io, 'config')[0]?.[1] ?? null;
  const config6 = dumpMap<number, MapDumps['config6']>(io, 'config6')[0]?.[1] ?? null;
  return {
    frontends: dumpBoth(io, 'frontends'),
    slots: dumpMap(io, 'slots'),
    backends: dumpBoth(io, 'backends'),
    revnat: dumpBoth(io, 'revnat'),
    srcRanges: dumpBoth<SrcRangeKey, number>(io, 'srcRanges').map(([k]) => k),
    clusterCidrs: dumpBoth<CidrKey, number>(io, 'clusterCidrs').map(([k]) => k),
    affinityMatch: dumpMap<AffinityMatchKey, number>(io, 'affinityMatch').map(([k]) => k),
    // An all-zero config entry is what an array map holds before the first write.
    config: config && config.nodeAddr !== '0.0.0.0' ? config : null,
    config6, // all-zero ('::') is also what the controller writes for a node without IPv6
  };
}
