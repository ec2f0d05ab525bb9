// The maps of bpf/kube_xdp.bpf.c: names, key/value codecs and the constants of kx_maps.h.
import { type Codec, structCodec, u32Codec, u64Codec, u8Codec } from './codec.js';

export const SCOPE_EXT = 0;
export const SCOPE_INT = 1;
/** The node's own sockets (the cgroup socket hooks). */
export const SCOPE_HOST = 2;

export const FE_NODEPORT = 0x0001;
export const FE_LOCAL_ONLY = 0x0002;
export const FE_AFFINITY = 0x0004;
export const FE_REJECT = 0x0008;
export const FE_SRC_RANGES = 0x0010;
export const FE_MASQ_ALL = 0x0020;
export const FE_MASQ_OFF_CLUSTER = 0x0040;
export const FE_MASQ_LOCAL = 0x0080;

/** config_value.flags */
export const CFG_FIB_FORWARD = 0x1;

export const BE_LOCAL = 0x01;
export const BE_TERMINATING = 0x02;

export const CT_FWD = 0;
export const CT_REPLY = 1;
export const CT_SNAT = 0x0001;
export const CT_REPLIED = 0x0002;
export const CT_FIN_FWD = 0x0004;
export const CT_FIN_REPLY = 0x0008;
export const CT_RST = 0x0010;

/** KX_SNAT_PORT_MIN / KX_SNAT_PORT_SPAN of kx_maps.h. */
export const SNAT_PORTS = { min: 61000, max: 65535 } as const;

export const PROTO_NUMBER = { TCP: 6, UDP: 17, SCTP: 132 } as const;
export const PROTO_NAME: Record<number, string> = { 6: 'TCP', 17: 'UDP', 132: 'SCTP' };

export interface FrontendKey { addr: string; port: number; proto: number; scope: number }
export interface FrontendValue { svcId: number; count: number; flags: number; affinityTimeout: number; revNatId: number }
export interface SlotKey { svcId: number; slot: number }
export interface SlotValue { backendId: number }
export interface BackendValue { addr: string; port: number; flags: number }
export interface RevNatValue { addr: string; port: number }
export interface CtKey { saddr: string; daddr: string; sport: number; dport: number; proto: number }
export interface CtValue {
  backendId: number; revNatId: number; natAddr: string; natPort: number; flags: number;
  backendAddr: string; backendPort: number; dir: number; lastSeenNs: bigint;
}
export interface ConfigValue { nodeAddr: string; flags: number }
export interface Config6Value { nodeAddr: string }
/** A CIDR of one frontend's loadBalancerSourceRanges; prefixlen = 32 (svcId) + the CIDR's. */
export interface SrcRangeKey { prefixlen: number; svcId: number; addr: string }
export interface CidrKey { prefixlen: number; addr: string }
export interface AffinityKey { client: string; svcId: number }
export interface AffinityMatchKey { svcId: number; backendId: number }
export interface AffinityValue { backendId: number; lastNs: bigint }
export interface SockRevNatKey { cookie: bigint; addr: string; port: number }
export interface SockConfig { hostNetnsCookie: bigint }

export const frontendKey = structCodec<FrontendKey>('frontend_key', 8, [
  { name: 'addr', type: 'ipv4', offset: 0 },
  { name: 'port', type: 'be16', offset: 4 },
  { name: 'proto', type: 'u8', offset: 6 },
  { name: 'scope', type: 'u8', offset: 7 },
]);
export const frontendValue = structCodec<FrontendValue>('frontend_value', 16, [
  { name: 'svcId', type: 'u32', offset: 0 },
  { name: 'count', type: 'u16', offset: 4 },
  { name: 'flags', type: 'u16', offset: 6 },
  { name: 'affinityTimeout', type: 'u32', offset: 8 },
  { name: 'revNatId', type: 'u32', offset: 12 },
]);
export const slotKey = structCodec<SlotKey>('slot_key', 8, [
  { name: 'svcId', type: 'u32', offset: 0 },
  { name: 'slot', type: 'u32', offset: 4 },
]);
export const slotValue = structCodec<SlotValue>('slot_value', 4, [
  { name: 'backendId', type: 'u32', offset: 0 },
]);
export const backendValue = structCodec<BackendValue>('backend_value', 8, [
  { name: 'addr', type: 'ipv4', offset: 0 },
  { name: 'port', type: 'be16', offset: 4 },
  { name: 'flags', type: 'u8', offset: 6 },
]);
export const revNatValue = structCodec<RevNatValue>('revnat_value', 8, [
  { name: 'addr', type: 'ipv4', offset: 0 },
  { name: 'port', type: 'be16', offset: 4 },
]);
export const ctKey = structCodec<CtKey>('ct_key', 16, [
  { name: 'saddr', type: 'ipv4', offset: 0 },
  { name: 'daddr', type: 'ipv4', offset: 4 },
  { name: 'sport', type: 'be16', offset: 8 },
  { name: 'dport', type: 'be16', offset: 10 },
  { name: 'proto', type: 'u8', offset: 12 },
]);
export const ctValue = structCodec<CtValue>('ct_value', 32, [
  { name: 'backendId', type: 'u32', offset: 0 },
  { name: 'revNatId', type: 'u32', offset: 4 },
  { name: 'natAddr', type: 'ipv4', offset: 8 },
  { name: 'natPort', type: 'be16', offset: 12 },
  { name: 'flags', type: 'u16', offset: 14 },
  { name: 'backendAddr', type: 'ipv4', offset: 16 },
  { name: 'backendPort', type: 'be16', offset: 20 },
  { name: 'dir', type: 'u8', offset: 22 },
  { name: 'lastSeenNs', type: 'u64', offset: 24 },
]);
export const configValue = structCodec<ConfigValue>('config_value', 8, [
  { name: 'nodeAddr', type: 'ipv4', offset: 0 },
  { name: 'flags', type: 'u32', offset: 4 },
]);

export const srcRangeKey = structCodec<SrcRangeKey>('src_range_key', 12, [
  { name: 'prefixlen', type: 'u32', offset: 0 },
  { name: 'svcId', type: 'u32', offset: 4 },
  { name: 'addr', type: 'ipv4', offset: 8 },
]);
export const cidrKey = structCodec<CidrKey>('cidr_key', 8, [
  { name: 'prefixlen', type: 'u32', offset: 0 },
  { name: 'addr', type: 'ipv4', offset: 4 },
]);
export const affinityKey = structCodec<AffinityKey>('affinity_key', 8, [
  { name: 'client', type: 'ipv4', offset: 0 },
  { name: 'svcId', type: 'u32', offset: 4 },
]);
export const affinityMatchKey = structCodec<AffinityMatchKey>('affinity_match_key', 8, [
  { name: 'svcId', type: 'u32', offset: 0 },
  { name: 'backendId', type: 'u32', offset: 4 },
]);
export const affinityValue = structCodec<AffinityValue>('affinity_value', 16, [
  { name: 'backendId', type: 'u32', offset: 0 },
  { name: 'lastNs', type: 'u64', offset: 8 },
]);
export const sockRevNatKey = structCodec<SockRevNatKey>('sock_revnat_key', 16, [
  { name: 'cookie', type: 'u64', offset: 0 },
  { name: 'addr', type: 'ipv4', offset: 8 },
  { name: 'port', type: 'be16', offset: 12 },
]);
export const sockConfig = structCodec<SockConfig>('sock_config', 8, [
  { name: 'hostNetnsCookie', type: 'u64', offset: 0 },
]);

// IPv6 twins (kx_maps.h): the same TypeScript shapes, 16-byte addresses.
export const frontendKey6 = structCodec<FrontendKey>('frontend_key6', 20, [
  { name: 'addr', type: 'ipv6', offset: 0 },
  { name: 'port', type: 'be16', offset: 16 },
  { name: 'proto', type: 'u8', offset: 18 },
  { name: 'scope', type: 'u8', offset: 19 },
]);
export const backendValue6 = structCodec<BackendValue>('backend_value6', 20, [
  { name: 'addr', type: 'ipv6', offset: 0 },
  { name: 'port', type: 'be16', offset: 16 },
  { name: 'flags', type: 'u8', offset: 18 },
]);
export const revNatValue6 = structCodec<RevNatValue>('revnat_value6', 20, [
  { name: 'addr', type: 'ipv6', offset: 0 },
  { name: 'port', type: 'be16', offset: 16 },
]);
export const ctKey6 = structCodec<CtKey>('ct_key6', 40, [
  { name: 'saddr', type: 'ipv6', offset: 0 },
  { name: 'daddr', type: 'ipv6', offset: 16 },
  { name: 'sport', type: 'be16', offset: 32 },
  { name: 'dport', type: 'be16', offset: 34 },
  { name: 'proto', type: 'u8', offset: 36 },
]);
export const ctValue6 = structCodec<CtValue>('ct_value6', 56, [
  { name: 'backendId', type: 'u32', offset: 0 },
  { name: 'revNatId', type: 'u32', offset: 4 },
  { name: 'natAddr', type: 'ipv6', offset: 8 },
  { name: 'natPort', type: 'be16', offset: 24 },
  { name: 'flags', type: 'u16', offset: 26 },
  { name: 'backendAddr', type: 'ipv6', offset: 28 },
  { name: 'backendPort', type: 'be16', offset: 44 },
  { name: 'dir', type: 'u8', offset: 46 },
  { name: 'lastSeenNs', type: 'u64', offset: 48 },
]);
export const srcRangeKey6 = structCodec<SrcRangeKey>('src_range_key6', 24, [
  { name: 'prefixlen', type: 'u32', offset: 0 },
  { name: 'svcId', type: 'u32', offset: 4 },
  { name: 'addr', type: 'ipv6', offset: 8 },
]);
export const cidrKey6 = structCodec<CidrKey>('cidr_key6', 20, [
  { name: 'prefixlen', type: 'u32', offset: 0 },
  { name: 'addr', type: 'ipv6', offset: 4 },
]);
export const affinityKey6 = structCodec<AffinityKey>('affinity_key6', 20, [
  { name: 'client', type: 'ipv6', offset: 0 },
  { name: 'svcId', type: 'u32', offset: 16 },
]);
export const sockRevNatKey6 = structCodec<SockRevNatKey>('sock_revnat_key6', 32, [
  { name: 'cookie', type: 'u64', offset: 0 },
  { name: 'addr', type: 'ipv6', offset: 8 },
  { name: 'port', type: 'be16', offset: 24 },
]);
export const configValue6 = structCodec<Config6Value>('config_value6', 16, [
  { name: 'nodeAddr', type: 'ipv6', offset: 0 },
]);

export interface MapSpec<K, V> { readonly name: string; readonly key: Codec<K>; readonly value: Codec<V> }

function spec<K, V>(name: string, key: Codec<K>, value: Codec<V>): MapSpec<K, V> {
  return { name, key, value };
}

/** Every map the controller writes or reads, by role. */
export const MAPS = {
  frontends: spec('kx_frontends', frontendKey, frontendValue),
  slots: spec('kx_slots', slotKey, slotValue),
  backends: spec('kx_backends', u32Codec, backendValue),
  revnat: spec('kx_revnat', u32Codec, revNatValue),
  ct: spec('kx_ct', ctKey, ctValue),
  ctNew: spec('kx_ct_new', ctKey, ctValue),
  config: spec('kx_config', u32Codec, configValue),
  srcRanges: spec('kx_src_ranges', srcRangeKey, u8Codec),
  clusterCidrs: spec('kx_cluster_cidrs', cidrKey, u8Codec),
  affinityMatch: spec('kx_affinity_match', affinityMatchKey, u8Codec),
  affinity: spec('kx_affinity', affinityKey, affinityValue),
  layout: spec('kx_layout', u32Codec, u32Codec),
  vipBloom: spec('kx_vip_bloom', u32Codec, u64Codec),
  portBits: spec('kx_port_bits', u32Codec, u64Codec),
  frontends6: spec('kx_frontends6', frontendKey6, frontendValue),
  backends6: spec('kx_backends6', u32Codec, backendValue6),
  revnat6: spec('kx_revnat6', u32Codec, revNatValue6),
  ct6: spec('kx_ct6', ctKey6, ctValue6),
  ctNew6: spec('kx_ct_new6', ctKey6, ctValue6),
  config6: spec('kx_config6', u32Codec, configValue6),
  srcRanges6: spec('kx_src_ranges6', srcRangeKey6, u8Codec),
  clusterCidrs6: spec('kx_cluster_cidrs6', cidrKey6, u8Codec),
  affinity6: spec('kx_affinity6', affinityKey6, affinityValue),
  sockRevnat: spec('kx_sock_revnat', sockRevNatKey, revNatValue),
  sockRevnat6: spec('kx_sock_revnat6', sockRevNatKey6, revNatValue6),
  sockConfig: spec('kx_sock_config', u32Codec, sockConfig),
} as const;

/** The IPv6 twin of each address-keyed map role. */
export const ROLE6 = {
  frontends: 'frontends6', backends: 'backends6', revnat: 'revnat6', ct: 'ct6', ctNew: 'ctNew6', config: 'config6',
  srcRanges: 'srcRanges6', clusterCidrs: 'clusterCidrs6', affinity: 'affinity6', sockRevnat: 'sockRevnat6',
} as const satisfies Record<string, MapRole>;
export type FamilyRole = keyof typeof ROLE6;
/** The role of the map that holds `addr`'s family (IPv6 text has a colon, IPv4 text never). */
export const roleOf = (role: FamilyRole, addr: string): MapRole => (addr.includes(':') ? ROLE6[role] : role);

/** KX_LAYOUT_VERSION of kx_maps.h: what the pinned maps mean (pins.ts converts older ones). */
export const LAYOUT_VERSION = 2;

export type MapRole = keyof typeof MAPS;

/** Index names of the kx_stats per-CPU counters (enum kx_stat in bpf/include/kx_stats.h). */
export const STAT_NAMES = [
  'new_flow', 'established', 'reply', 'no_backend', 'snat_exhausted', 'untrackable', 'malformed', 'ct_lost', 'promoted', 'snat_reclaimed', 'ct_expired',
  'rejected', 'denied', 'icmp_translated', 'fib_forwarded', 'fib_kernel', 'sock_translated',
] as const;
export const STATS_MAP = 'kx_stats';
