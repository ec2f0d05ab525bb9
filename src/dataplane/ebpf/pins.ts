// Pinned maps left by an earlier build. libbpf reuses a pin only when its type, key and value
// sizes and max_entries match the object's, and refuses to load otherwise; an upgrade that
// changes a layout (kx_ct's value grew, kx_stats got counters) would then fail at start. Such a
// pin is removed before loading, so the new build creates its map: the controller refills the
// Service maps on its first sync; conntrack and counters start empty (established flows
// through this node are re-balanced once, as after a node reboot).
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Libkx } from '../../kernel/libkx.js';
import { KX_LIMITS } from './limits.js';
import { MAPS, STAT_NAMES, STATS_MAP } from './maps.js';

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

/** What this build's object declares for every pinned map (the codecs are checked against its BTF). */
export function expectedLayouts(): MapLayout[] {
  const limits: Record<string, number> = { ...KX_LIMITS, config: 1 };
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

/** Removes the pins under pinDir that this build cannot reuse; returns their names. */
export function dropIncompatiblePins(lib: Libkx, pinDir: string, log: Logger): string[] {
  const dropped: string[] = [];
  for (const want of expectedLayouts()) {
    const path = join(pinDir, want.name);
    let fd: number;
    try {
      fd = lib.objGet(path);
    } catch {
      continue; // not pinned yet
    }
    let why: string | null;
    try {
      why = layoutMismatch(want, lib.mapInfo(fd));
    } finally {
      lib.close(fd);
    }
    if (why === null) continue;
    rmSync(path, { force: true });
    dropped.push(want.name);
    log.warn({ map: want.name, pin: path, mismatch: why }, `pinned map ${want.name} has another layout (${why}): replaced by an empty one`);
  }
  return dropped;
}
