// Pinned maps left by an earlier build or an earlier --bpf-map-sizes. libbpf reuses a pin only
// when its type, key and value sizes, max_entries and flags match the object's, and refuses to
// load otherwise. An upgrade must not lose established flows, nor leave Services unserved until
// the first sync, so a pin that differs only in max_entries is migrated: moved aside before
// the load, its entries copied into the new map after it (conntrack, Service maps and counters
// alike), then removed. A pin whose key or value layout changed cannot be copied: it is
// replaced by an empty map (logged with the difference); the controller refills the Service
// maps on its first sync, conntrack starts empty. A migration cut short (the process killed)
// resumes at the next start from the pins left aside.
import { join } from 'node:path';
import { existsSync, renameSync, rmSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Libkx } from '../../kernel/libkx.js';
import { KX_LIMITS } from './limits.js';
import { MAPS, STAT_NAMES, STATS_MAP } from './maps.js';
import type { MapSizes } from './map-sizes.js';

export interface MapLayout {
  readonly name: string; readonly type: number; readonly keySize: number; readonly valueSize: number;
  readonly maxEntries: number; readonly flags: number;
}

// Map types and flags of bpf/include/kx_map_defs.h (checked against the object's BTF by
// test/unit/btf-layout.test.ts).
const HASH = 1, ARRAY = 2, PERCPU_ARRAY = 6, LRU_HASH = 9, LPM_TRIE = 11, NO_PREALLOC = 1;
const KIND: Record<string, { type: number; flags: number }> = {
  frontends: { type: HASH, flags: NO_PREALLOC }, slots: { type: HASH, flags: NO_PREALLOC },
  backends: { type: HASH, flags: NO_PREALLOC }, revnat: { type: HASH, flags: NO_PREALLOC },
  ct: { type: LRU_HASH, flags: 0 }, ctNew: { type: LRU_HASH, flags: 0 }, config: { type: ARRAY, flags: 0 },
  srcRanges: { type: LPM_TRIE, flags: NO_PREALLOC }, clusterCidrs: { type: LPM_TRIE, flags: NO_PREALLOC },
  affinity: { type: LRU_HASH, flags: 0 }, affinityMatch: { type: HASH, flags: NO_PREALLOC },
};

/** What this build's object declares for every pinned map (the codecs are checked against its
 * BTF), with `sizes` applied. */
export function expectedLayouts(sizes: MapSizes = KX_LIMITS): MapLayout[] {
  const limits: Record<string, number> = { ...sizes, config: 1 };
  const maps = Object.entries(MAPS).map(([role, m]) => ({
    name: m.name, ...KIND[role]!, keySize: m.key.size, valueSize: m.value.size, maxEntries: limits[role]!,
  }));
  return [...maps, { name: STATS_MAP, type: PERCPU_ARRAY, flags: 0, keySize: 4, valueSize: 8, maxEntries: STAT_NAMES.length }];
}

/** Why a pinned map cannot be reused, or null when it can. */
export function layoutMismatch(want: MapLayout, got: Omit<MapLayout, 'name'>): string | null {
  const diffs = (['type', 'keySize', 'valueSize', 'maxEntries', 'flags'] as const)
    .filter((f) => want[f] !== got[f])
    .map((f) => `${f} ${got[f]} (this build: ${want[f]})`);
  return diffs.length === 0 ? null : diffs.join(', ');
}

// bpffs refuses dots in names
const ASIDE = '__migrating';

/** Before the load: pins of another max_entries are moved aside (to be copied), pins of another
 * layout removed. Returns the names of the maps to copy after the load. */
export function preparePins(lib: Libkx, pinDir: string, sizes: MapSizes, log: Logger): string[] {
  const migrating: string[] = [];
  for (const want of expectedLayouts(sizes)) {
    const path = join(pinDir, want.name);
    if (existsSync(path + ASIDE)) {
      // an earlier migration was cut short: the aside pin holds the entries, the new one may
      // be half-filled: copy again into a fresh map
      rmSync(path, { force: true });
      migrating.push(want.name);
      continue;
    }
    let fd: number;
    try {
      fd = lib.objGet(path);
    } catch {
      continue; // not pinned yet
    }
    let got: Omit<MapLayout, 'name'>;
    try {
      got = lib.mapInfo(fd);
    } finally {
      lib.close(fd);
    }
    const why = layoutMismatch(want, got);
    if (why === null) continue;
    if (got.type === want.type && got.keySize === want.keySize && got.valueSize === want.valueSize && got.flags === want.flags) {
      renameSync(path, path + ASIDE);
      migrating.push(want.name);
      log.info({ map: want.name, from: got.maxEntries, to: want.maxEntries }, `pinned map ${want.name} is resized (${why}): its entries are copied into the new map`);
      continue;
    }
    rmSync(path, { force: true });
    log.warn({ map: want.name, pin: path, mismatch: why }, `pinned map ${want.name} has another layout (${why}): replaced by an empty one`);
  }
  return migrating;
}

/** After the load: copies each aside pin's entries into the object's map, then removes it. */
export function finishMigration(lib: Libkx, handle: number, pinDir: string, names: readonly string[], log: Logger): void {
  for (const name of names) {
    const aside = join(pinDir, name + ASIDE);
    const from = { fd: lib.objGet(aside), label: aside };
    try {
      const to = { fd: lib.objMapFd(handle, name), label: name };
      const cap = lib.mapInfo(to).maxEntries;
      const d = lib.mapDump(from);
      const n = Math.min(d.count, cap);
      const info = lib.mapInfo(from);
      if (n > 0) lib.mapUpdateBatch(to, d.keys.subarray(0, n * info.keySize), d.values.subarray(0, n * info.valueStride), n);
      if (n < d.count) log.warn({ map: name, entries: d.count, maxEntries: cap }, `${name}: ${d.count - n} entries did not fit the smaller map and were dropped`);
      log.info({ map: name, copied: n }, `${name}: ${n} entries migrated`);
    } finally {
      lib.close(from.fd);
    }
    rmSync(aside, { force: true });
  }
}
