// Map sizes (max_entries): the object's compiled-in defaults (KX_LIMITS, the KX_MAX_* of
// kx_maps.h), the IPv6 flow tables' idle size on a node without IPv6, or what --bpf-map-sizes
// sets, applied to the object before it is loaded.
import { ConfigError } from '../../config/flags.js';
import { KX_LIMITS } from './limits.js';
import { MAPS } from './maps.js';

export type SizedRole = keyof typeof KX_LIMITS;
export type MapSizes = Readonly<Record<SizedRole, number>>;

const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const ROLE_BY_FLAG_KEY = new Map((Object.keys(KX_LIMITS) as SizedRole[]).map((r) => [kebab(r), r]));

/** What --bpf-map-sizes set; laid over the node's defaults by sizesFor. */
export type MapSizeOverrides = Readonly<Partial<Record<SizedRole, number>>>;

/** "backends=1048576,ct=1048576" (keys: frontends, slots, backends, revnat, ct, ct-new,
 *  src-ranges, cluster-cidrs, affinity, affinity-match, and the IPv6 twins' names with "6":
 *  ct6, ct-new6, …). */
export function parseMapSizes(items: readonly string[], flag = 'bpf-map-sizes'): MapSizeOverrides {
  const sizes: Partial<Record<SizedRole, number>> = {};
  for (const item of items) {
    const m = /^([a-z][a-z0-9-]*)=(\d+)$/.exec(item.trim());
    const role = m ? ROLE_BY_FLAG_KEY.get(m[1]!) : undefined;
    if (!m || !role) {
      throw new ConfigError(flag, `${JSON.stringify(item)}: want MAP=ENTRIES with MAP one of ${[...ROLE_BY_FLAG_KEY.keys()].join(', ')}`);
    }
    const n = Number(m[2]);
    if (!Number.isSafeInteger(n) || n < 1 || n > 0x7fffffff) throw new ConfigError(flag, `${item}: entries must be in [1, 2147483647]`);
    sizes[role] = n;
  }
  return sizes;
}

/** The IPv6 flow tables: LRU maps, which the kernel preallocates whole (about 113 MiB at the
 *  defaults), where the other maps' memory follows their use. */
const IPV6_FLOW_ROLES = ['ct6', 'ctNew6', 'affinity6'] as const satisfies readonly SizedRole[];
/** Their size on a node without an IPv6 address: room for stray IPv6 Service traffic, not
 *  memory for a family the node does not have. */
export const IDLE_IPV6_FLOW_ENTRIES = 1024;

/** The sizes to load: the object's defaults, the IPv6 flow tables at IDLE_IPV6_FLOW_ENTRIES on
 *  a node without an IPv6 address, then what the operator set. An address gained later takes a
 *  restart, which migrates the pinned maps to the full size like any resize. */
export function sizesFor(overrides: MapSizeOverrides, node: { ipv6: boolean }): MapSizes {
  const out: Record<SizedRole, number> = { ...KX_LIMITS };
  if (!node.ipv6) for (const r of IPV6_FLOW_ROLES) out[r] = IDLE_IPV6_FLOW_ENTRIES;
  return { ...out, ...overrides };
}

/** max_entries by map name, for the loader. */
export function maxEntriesByName(sizes: MapSizes): Record<string, number> {
  return Object.fromEntries((Object.keys(KX_LIMITS) as SizedRole[]).map((r) => [MAPS[r].name, sizes[r]]));
}
