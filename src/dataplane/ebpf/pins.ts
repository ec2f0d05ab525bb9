// Pinned maps left by an earlier build or an earlier --bpf-map-sizes. libbpf reuses a pin only
// when its type, key and value sizes, max_entries and flags match the object's, and refuses to
// load otherwise. An upgrade must not lose established flows, nor leave Services unserved until
// the first sync, so a pin that differs only in max_entries is migrated: moved aside before
// the load, its entries copied into the new map after it (conntrack, Service maps and counters
// alike), then removed; those the programs write (conntrack, affinity) only once this build's
// programs are attached, after a second copy of the entries the previous programs added
// meanwhile (flows opened during the switch). A pin whose key or value layout changed cannot be copied: it is
// replaced by an empty map (logged with the difference); the controller refills the Service
// maps on its first sync, conntrack starts empty. A migration cut short (the process killed)
// resumes at the next start from the pins left aside. A map whose sizes are unchanged but whose
// meaning changed between releases (kx_layout holds the version, KX_LAYOUT_VERSION) is
// migrated through a converter.
import { join } from 'node:path';
import { existsSync, renameSync, rmSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Libkx } from '../../kernel/libkx.js';
import { KX_LIMITS } from './limits.js';
import { LAYOUT_VERSION, MAPS, ROLE6, STAT_NAMES, STATS_MAP } from './maps.js';
import type { MapSizes } from './map-sizes.js';
import { PREFILTER_WORDS } from './prefilter.js';

export interface MapLayout {
  readonly name: string; readonly type: number; readonly keySize: number; readonly valueSize: number;
  readonly maxEntries: number; readonly flags: number;
}

// Map types and flags of bpf/include/kx_map_defs.h (checked against the object's BTF by
// test/unit/btf-layout.test.ts).
const HASH = 1, ARRAY = 2, PERCPU_ARRAY = 6, LRU_HASH = 9, LPM_TRIE = 11, NO_PREALLOC = 1;
/** Maps the controller rebuilds at start (the prefilter): replaced, never copied (another size
 * means another hash). */
const DERIVED = new Set([MAPS.vipBloom.name, MAPS.portBits.name]);
const KIND: Record<string, { type: number; flags: number }> = {
  frontends: { type: HASH, flags: NO_PREALLOC }, slots: { type: HASH, flags: NO_PREALLOC },
  backends: { type: HASH, flags: NO_PREALLOC }, revnat: { type: HASH, flags: NO_PREALLOC },
  ct: { type: LRU_HASH, flags: 0 }, ctNew: { type: LRU_HASH, flags: 0 }, config: { type: ARRAY, flags: 0 },
  srcRanges: { type: LPM_TRIE, flags: NO_PREALLOC }, clusterCidrs: { type: LPM_TRIE, flags: NO_PREALLOC },
  affinity: { type: LRU_HASH, flags: 0 }, affinityMatch: { type: HASH, flags: NO_PREALLOC },
  layout: { type: ARRAY, flags: 0 }, vipBloom: { type: ARRAY, flags: 0 }, portBits: { type: ARRAY, flags: 0 },
  sockRevnat: { type: LRU_HASH, flags: 0 }, sockConfig: { type: ARRAY, flags: 0 },
};
for (const [role, twin] of Object.entries(ROLE6)) KIND[twin] = KIND[role]!;

/** What this build's object declares for every pinned map (the codecs are checked against its
 * BTF), with `sizes` applied. */
export function expectedLayouts(sizes: MapSizes = KX_LIMITS): MapLayout[] {
  const limits: Record<string, number> = { ...sizes, config: 1, config6: 1, layout: 1, sockConfig: 1, ...PREFILTER_WORDS };
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

/** Converts one entry (key and value, in place) from layout version `from` to `from + 1`. */
type Converter = (key: Buffer, value: Buffer) => void;

/** Maps whose meaning changed, by the version they had before the change. */
const CONVERTERS: Record<number, Record<string, Converter>> = {
  // v1 -> v2: the direction moved from ct_key (byte 13) to ct_value (byte 22, a pad before)
  1: Object.fromEntries([MAPS.ct.name, MAPS.ctNew.name].map((name) => [name, (key: Buffer, value: Buffer) => {
    value[22] = key[13]!;
    key[13] = 0;
  }])),
};

export interface Migration { readonly name: string; readonly from: number }

// bpffs refuses dots in names; the suffix records the layout version of the entries aside
const aside = (pinDir: string, m: Migration) => join(pinDir, `${m.name}__v${m.from}`);

/** The layout version of the pins under pinDir: kx_layout's, 1 when older pins lack it (the
 *  release before it existed), null when nothing is pinned. */
function pinnedVersion(lib: Libkx, pinDir: string): number | null {
  let fd: number;
  try {
    fd = lib.objGet(join(pinDir, MAPS.layout.name));
  } catch {
    return existsSync(join(pinDir, MAPS.frontends.name)) ? 1 : null;
  }
  try {
    const v = Buffer.alloc(4);
    return lib.mapLookup(fd, Buffer.alloc(4), v) && v.readUInt32LE(0) > 0 ? v.readUInt32LE(0) : null;
  } finally {
    lib.close(fd);
  }
}

/** Before the load: pins of an older layout version with a converter, or of another
 * max_entries or flags, are moved aside (to be copied after the load); pins of another key or
 * value size, and prefilter maps that differ, are removed. Returns what finishMigration must
 * copy. */
export function preparePins(lib: Libkx, pinDir: string, sizes: MapSizes, log: Logger): Migration[] {
  const migrating: Migration[] = [];
  const version = pinnedVersion(lib, pinDir) ?? LAYOUT_VERSION;
  for (const want of expectedLayouts(sizes)) {
    const path = join(pinDir, want.name);
    const cutShort = [...Array(LAYOUT_VERSION).keys()].map((i) => ({ name: want.name, from: i + 1 })).find((m) => existsSync(aside(pinDir, m)));
    if (cutShort) {
      // an earlier migration was cut short: the aside pin holds the entries, the new map may
      // be half-filled: copy again into a fresh one
      rmSync(path, { force: true });
      migrating.push(cutShort);
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
    const convert = version < LAYOUT_VERSION && CONVERTERS[version]?.[want.name] !== undefined;
    if (why === null && !convert) continue;
    // entries copy across sizes and flags (an LRU's list kind, preallocation), not across layouts
    if (!DERIVED.has(want.name) && got.type === want.type && got.keySize === want.keySize && got.valueSize === want.valueSize) {
      const m = { name: want.name, from: version };
      renameSync(path, aside(pinDir, m));
      migrating.push(m);
      log.info({ map: want.name, layoutVersion: `${version} -> ${LAYOUT_VERSION}`, maxEntries: `${got.maxEntries} -> ${want.maxEntries}` },
        `pinned map ${want.name} ${convert ? `has layout version ${version}` : `is resized (${why})`}: its entries are copied into the new map`);
      continue;
    }
    rmSync(path, { force: true });
    log.warn({ map: want.name, pin: path, mismatch: why }, `pinned map ${want.name} has another layout (${why}): replaced by an empty one`);
  }
  return migrating;
}

/** The maps the programs write (conntrack, affinity, socket rev-NAT: the LRU ones). The
 * previous programs keep writing theirs until this build's programs replace them. */
const DATAPATH_WRITTEN = new Set(Object.entries(KIND).filter(([, k]) => k.type === LRU_HASH).map(([role]) => MAPS[role as keyof typeof MAPS].name));

/** An aside pin's entries, each converted up to this layout version. */
function readAside(lib: Libkx, path: string, m: Migration): { count: number; keys: Buffer; values: Buffer; keySize: number; valueStride: number } {
  const from = { fd: lib.objGet(path), label: path };
  try {
    const info = lib.mapInfo(from);
    const d = lib.mapDump(from);
    for (let v = m.from; v < LAYOUT_VERSION; v++) {
      const convert = CONVERTERS[v]?.[m.name];
      if (!convert) continue;
      for (let i = 0; i < d.count; i++) {
        convert(d.keys.subarray(i * info.keySize, (i + 1) * info.keySize), d.values.subarray(i * info.valueStride, (i + 1) * info.valueStride));
      }
    }
    return { ...d, keySize: info.keySize, valueStride: info.valueStride };
  } finally {
    lib.close(from.fd);
  }
}

/** After the load: records this layout version, then copies each aside pin's entries (each
 * converted up to this version) into the object's map. Aside pins of maps the programs write
 * are kept and returned: the previous programs still run on them until this build's attach
 * (catchUpMigration copies what they wrote meanwhile); the others are removed. */
export function finishMigration(lib: Libkx, handle: number, pinDir: string, migrations: readonly Migration[], log: Logger): Migration[] {
  const version = Buffer.alloc(4);
  version.writeUInt32LE(LAYOUT_VERSION);
  lib.mapUpdate({ fd: lib.objMapFd(handle, MAPS.layout.name), label: MAPS.layout.name }, Buffer.alloc(4), version);
  const pending: Migration[] = [];
  for (const m of migrations) {
    const path = aside(pinDir, m);
    const d = readAside(lib, path, m);
    const to = { fd: lib.objMapFd(handle, m.name), label: m.name };
    const cap = lib.mapInfo(to).maxEntries;
    const n = Math.min(d.count, cap);
    if (n > 0) lib.mapUpdateBatch(to, d.keys.subarray(0, n * d.keySize), d.values.subarray(0, n * d.valueStride), n);
    if (n < d.count) log.warn({ map: m.name, entries: d.count, maxEntries: cap }, `${m.name}: ${d.count - n} entries did not fit the smaller map and were dropped`);
    log.info({ map: m.name, copied: n }, `${m.name}: ${n} entries migrated`);
    if (DATAPATH_WRITTEN.has(m.name)) pending.push(m);
    else rmSync(path, { force: true });
  }
  return pending;
}

/** Once this build's programs are attached (the previous ones no longer write): copies the
 * entries the previous programs added to the aside pins after finishMigration's copy (flows
 * opened during the switch), never over an entry this build's programs wrote since, then
 * removes the aside pins. */
export function catchUpMigration(lib: Libkx, handle: number, pinDir: string, pending: readonly Migration[], log: Logger): void {
  for (const m of pending) {
    const path = aside(pinDir, m);
    const d = readAside(lib, path, m);
    const to = { fd: lib.objMapFd(handle, m.name), label: m.name };
    let added = 0;
    for (let i = 0; i < d.count; i++) {
      if (lib.mapInsert(to, d.keys.subarray(i * d.keySize, (i + 1) * d.keySize), d.values.subarray(i * d.valueStride, (i + 1) * d.valueStride))) added++;
    }
    log.info({ map: m.name, copied: added }, `${m.name}: ${added} entries written by the previous programs during the switch copied`);
    rmSync(path, { force: true });
  }
}
