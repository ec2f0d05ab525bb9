// kube-proxy's IPVS-mode ipsets (pkg/proxy/ipvs ipsetInfo): names, types, comments, the KUBE-6-
// names of the IPv6 proxier, entry strings, and `ipset restore` input. Pure.
import type { IPFamily } from '../../model/types.js';

export type SetType = 'hash:ip' | 'hash:ip,port' | 'hash:ip,port,ip' | 'hash:ip,port,net' | 'bitmap:port';

/** In kube-proxy's ipsetInfo order; `name` is the IPv4 name. */
export const IPSETS = {
  loopBack: { name: 'KUBE-LOOP-BACK', type: 'hash:ip,port,ip', comment: 'Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose' },
  clusterIP: { name: 'KUBE-CLUSTER-IP', type: 'hash:ip,port', comment: 'Kubernetes service cluster ip + port for masquerade purpose' },
  externalIP: { name: 'KUBE-EXTERNAL-IP', type: 'hash:ip,port', comment: 'Kubernetes service external ip + port for masquerade and filter purpose' },
  externalIPLocal: { name: 'KUBE-EXTERNAL-IP-LOCAL', type: 'hash:ip,port', comment: 'Kubernetes service external ip + port with externalTrafficPolicy=local' },
  loadBalancer: { name: 'KUBE-LOAD-BALANCER', type: 'hash:ip,port', comment: 'Kubernetes service lb portal' },
  loadBalancerFW: { name: 'KUBE-LOAD-BALANCER-FW', type: 'hash:ip,port', comment: 'Kubernetes service load balancer ip + port for load balancer with sourceRange' },
  loadBalancerLocal: { name: 'KUBE-LOAD-BALANCER-LOCAL', type: 'hash:ip,port', comment: 'Kubernetes service load balancer ip + port with externalTrafficPolicy=local' },
  loadBalancerSourceIP: { name: 'KUBE-LOAD-BALANCER-SOURCE-IP', type: 'hash:ip,port,ip', comment: 'Kubernetes service load balancer ip + port + source IP for packet filter purpose' },
  loadBalancerSourceCIDR: { name: 'KUBE-LOAD-BALANCER-SOURCE-CIDR', type: 'hash:ip,port,net', comment: 'Kubernetes service load balancer ip + port + source cidr for packet filter purpose' },
  nodePortTCP: { name: 'KUBE-NODE-PORT-TCP', type: 'bitmap:port', comment: 'Kubernetes nodeport TCP port for masquerade purpose' },
  nodePortLocalTCP: { name: 'KUBE-NODE-PORT-LOCAL-TCP', type: 'bitmap:port', comment: 'Kubernetes nodeport TCP port with externalTrafficPolicy=local' },
  nodePortUDP: { name: 'KUBE-NODE-PORT-UDP', type: 'bitmap:port', comment: 'Kubernetes nodeport UDP port for masquerade purpose' },
  nodePortLocalUDP: { name: 'KUBE-NODE-PORT-LOCAL-UDP', type: 'bitmap:port', comment: 'Kubernetes nodeport UDP port with externalTrafficPolicy=local' },
  nodePortSCTP: { name: 'KUBE-NODE-PORT-SCTP-HASH', type: 'hash:ip,port', comment: "Kubernetes nodeport SCTP port for masquerade purpose with type 'hash ip:port'" },
  nodePortLocalSCTP: { name: 'KUBE-NODE-PORT-LOCAL-SCTP-HASH', type: 'hash:ip,port', comment: "Kubernetes nodeport SCTP port with externalTrafficPolicy=local with type 'hash ip:port'" },
  healthCheckNodePort: { name: 'KUBE-HEALTH-CHECK-NODE-PORT', type: 'bitmap:port', comment: 'Kubernetes health check node port' },
  ipvsIPs: { name: 'KUBE-IPVS-IPS', type: 'hash:ip', comment: 'Addresses on the ipvs interface' },
} as const satisfies Record<string, { name: string; type: SetType; comment: string }>;

export type SetId = keyof typeof IPSETS;
export const SET_IDS = Object.keys(IPSETS) as SetId[];

/** Entries per set; every set is present (kube-proxy creates them all, empty or not). */
export type IpsetContents = ReadonlyMap<SetId, ReadonlySet<string>>;

const MAX_NAME = 31;

/** The IPv6 proxier's sets are "KUBE-6-…", cut to ipset's 31 characters, as kube-proxy's NewIPSet does. */
export function setName(id: SetId, family: IPFamily): string {
  const name = IPSETS[id].name;
  return family === 'IPv6' ? name.replace(/^KUBE-/, 'KUBE-6-').slice(0, MAX_NAME) : name;
}

/** `ipset create` arguments of kube-proxy's createSet (hash sets get a family, bitmap:port a range). */
export function createArgs(id: SetId, family: IPFamily): string {
  const { type } = IPSETS[id];
  const shape = type === 'bitmap:port' ? 'range 0-65535' : `family ${family === 'IPv6' ? 'inet6' : 'inet'} hashsize 1024 maxelem 65536`;
  return `${setName(id, family)} ${type} ${shape} comment`;
}

// Entry strings, as kube-proxy's Entry.String() writes them.
export const ipPortEntry = (ip: string, protocol: string, port: number) => `${ip},${protocol}:${port}`;
export const ipPortIPEntry = (ip: string, protocol: string, port: number, ip2: string) => `${ip},${protocol}:${port},${ip2}`;
export const ipPortNetEntry = (ip: string, protocol: string, port: number, cidr: string) => `${ip},${protocol}:${port},${cidr}`;

/** ipset prints a host-sized net (/32 IPv4, /128 IPv6) without its prefix length: compare entries in that form. */
export const normalizeEntry = (e: string) => e.replace(/,([0-9.]+)\/32$/, ',$1').replace(/,([0-9a-fA-F:]*:[0-9a-fA-F:]*)\/128$/, ',$1');

/**
 * `ipset restore` input: every set created (-exist keeps existing ones), then the entries.
 * With `current` (from parseIpsetSave) only the difference is written, so a set is never empty
 * in between; without it, every entry is added.
 */
export function ipsetRestoreText(desired: IpsetContents, family: IPFamily, current: ReadonlyMap<string, ReadonlySet<string>> | null): string {
  const lines: string[] = [];
  for (const id of SET_IDS) lines.push(`create ${createArgs(id, family)}${current ? ' -exist' : ''}`);
  for (const id of SET_IDS) {
    const name = setName(id, family);
    const want = [...(desired.get(id) ?? [])].map(normalizeEntry);
    const have = current?.get(name) ?? new Set<string>();
    const wantSet = new Set(want);
    for (const e of [...have].sort()) if (!wantSet.has(e)) lines.push(`del ${name} ${e} -exist`);
    for (const e of want.sort()) if (!have.has(e)) lines.push(`add ${name} ${e}${current ? ' -exist' : ''}`);
  }
  return lines.map((l) => `${l}\n`).join('');
}

/** `ipset save` → set name → entries. */
export function parseIpsetSave(text: string): Map<string, Set<string>> {
  const sets = new Map<string, Set<string>>();
  for (const line of text.split('\n')) {
    const w = line.trim().split(/\s+/);
    if (w[0] === 'create' && w[1]) sets.set(w[1], sets.get(w[1]) ?? new Set());
    else if (w[0] === 'add' && w[1] && w[2]) (sets.get(w[1]) ?? sets.set(w[1], new Set()).get(w[1])!).add(normalizeEntry(w[2]));
  }
  return sets;
}
