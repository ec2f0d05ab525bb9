// kube-proxy's names, in one place for every rule-emitting mode: chain names (hashed from the
// ServicePortName, pkg/proxy/iptables/proxier.go), comments' service string, fixed chains.
import { createHash } from 'node:crypto';
import { endpointKey } from '../model/endpoints.js';
import type { ServicePort } from '../model/types.js';

export const KUBE_SERVICES = 'KUBE-SERVICES';
export const KUBE_EXTERNAL_SERVICES = 'KUBE-EXTERNAL-SERVICES';
export const KUBE_NODEPORTS = 'KUBE-NODEPORTS';
export const KUBE_POSTROUTING = 'KUBE-POSTROUTING';
export const KUBE_MARK_MASQ = 'KUBE-MARK-MASQ';
export const KUBE_FORWARD = 'KUBE-FORWARD';
export const KUBE_PROXY_FIREWALL = 'KUBE-PROXY-FIREWALL';
export const KUBE_PROXY_CANARY = 'KUBE-PROXY-CANARY';
/** kubelet's chain with the anti-martian rule for localhost NodePorts; kube-proxy writes a copy. */
export const KUBE_FIREWALL = 'KUBE-FIREWALL';

// IPVS mode's fixed chains (pkg/proxy/ipvs/proxier.go).
export const KUBE_NODE_PORT = 'KUBE-NODE-PORT';
export const KUBE_LOAD_BALANCER = 'KUBE-LOAD-BALANCER';
export const KUBE_SOURCE_RANGES_FIREWALL = 'KUBE-SOURCE-RANGES-FIREWALL';
export const KUBE_IPVS_FILTER = 'KUBE-IPVS-FILTER';
export const KUBE_IPVS_OUT_FILTER = 'KUBE-IPVS-OUT-FILTER';
/** The dummy interface IPVS-mode kube-proxy binds service addresses to. */
export const KUBE_IPVS_DEVICE = 'kube-ipvs0';

const SVC = 'KUBE-SVC-';
const SVL = 'KUBE-SVL-';
const FW = 'KUBE-FW-';
const EXT = 'KUBE-EXT-';
const SEP = 'KUBE-SEP-';
const SERVICE_CHAIN_PREFIXES = [SVC, SVL, SEP, FW, EXT];

/** kube-proxy's ServicePortName.String(): "ns/name:port", or "ns/name" for an unnamed port. */
export function servicePortName(sp: Pick<ServicePort, 'namespace' | 'name' | 'portName'>): string {
  return `${sp.namespace}/${sp.name}${sp.portName ? `:${sp.portName}` : ''}`;
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** The first `length` characters of base32(sha256(text)) (RFC 4648 alphabet, as Go's
 *  base32.StdEncoding; only whole 5-bit groups of the digest's leading bytes are used). */
function hashBase32(text: string, length: number): string {
  const bytes = createHash('sha256').update(text).digest();
  let out = '';
  let acc = 0;
  let bits = 0;
  for (const b of bytes.subarray(0, Math.ceil((length * 5) / 8))) {
    acc = ((acc << 8) | b) & 0xffff;
    bits += 8;
    while (bits >= 5 && out.length < length) {
      bits -= 5;
      out += BASE32[(acc >> bits) & 31];
    }
  }
  return out;
}

/** First 16 characters of base32(sha256(text)): iptables chain names. */
function hash16(text: string): string {
  return hashBase32(text, 16);
}

export interface ServiceChains {
  /** KUBE-SVC-: Cluster policy endpoints. */
  readonly cluster: string;
  /** KUBE-SVL-: Local policy endpoints. */
  readonly local: string;
  /** KUBE-FW-: loadBalancerSourceRanges. */
  readonly firewall: string;
  /** KUBE-EXT-: external destinations. */
  readonly external: string;
}

/** The per-service-port chains; `protocol` in lower case, as kube-proxy hashes it. */
export function serviceChains(spn: string, protocol: string): ServiceChains {
  const h = hash16(spn + protocol);
  return { cluster: SVC + h, local: SVL + h, firewall: FW + h, external: EXT + h };
}

/** KUBE-SEP- chain of one endpoint ("ip:port" / "[ip]:port"). */
export function endpointChain(spn: string, protocol: string, ep: { ip: string; port: number }): string {
  return SEP + hash16(spn + protocol + endpointKey(ep));
}

/** A per-service chain kube-proxy owns (and deletes when stale). */
export function isServiceChainName(chain: string): boolean {
  return SERVICE_CHAIN_PREFIXES.some((p) => chain.startsWith(p));
}

// ---- nftables mode (pkg/proxy/nftables/proxier.go) ----------------------------------------

/** kube-proxy's nftables table (one per family: `ip kube-proxy`, `ip6 kube-proxy`). */
export const NFT_TABLE = 'kube-proxy';

// Base chains ("${type}-${hook}").
export const NFT_FILTER_PREROUTING = 'filter-prerouting';
export const NFT_FILTER_INPUT = 'filter-input';
export const NFT_FILTER_FORWARD = 'filter-forward';
export const NFT_FILTER_OUTPUT = 'filter-output';
export const NFT_FILTER_OUTPUT_POST_DNAT = 'filter-output-post-dnat';
export const NFT_NAT_PREROUTING = 'nat-prerouting';
export const NFT_NAT_OUTPUT = 'nat-output';
export const NFT_NAT_POSTROUTING = 'nat-postrouting';
// Service dispatch.
export const NFT_SERVICES = 'services';
export const NFT_SERVICE_IPS = 'service-ips';
export const NFT_SERVICE_NODEPORTS = 'service-nodeports';
export const NFT_NODEPORT_IPS = 'nodeport-ips';
export const NFT_CLUSTER_IPS = 'cluster-ips';
// Services without endpoints.
export const NFT_SERVICE_ENDPOINTS_CHECK = 'service-endpoints-check';
export const NFT_NODEPORT_ENDPOINTS_CHECK = 'nodeport-endpoints-check';
export const NFT_NO_ENDPOINT_SERVICES = 'no-endpoint-services';
export const NFT_NO_ENDPOINT_NODEPORTS = 'no-endpoint-nodeports';
export const NFT_REJECT_CHAIN = 'reject-chain';
// Unallocated ClusterIPs and undefined ports of ClusterIPs.
export const NFT_CLUSTER_IPS_CHECK = 'cluster-ips-check';
// loadBalancerSourceRanges.
export const NFT_FIREWALL_IPS = 'firewall-ips';
export const NFT_FIREWALL_CHECK = 'firewall-check';
// Masquerading.
export const NFT_MARK_MASQ = 'mark-for-masquerade';
export const NFT_MASQUERADING = 'masquerading';

/** knftables.NameLengthMax minus the longest prefix ("endpoint-" etc. fit in 16). */
const NFT_CHAIN_NAME_BASE_MAX = 256 - 16;

/** kube-proxy's hashAndTruncate: "HASH8-name", cut to 240 characters ending in "..." when longer. */
export function nftHashAndTruncate(name: string): string {
  const full = `${hashBase32(name, 8)}-${name}`;
  return full.length > NFT_CHAIN_NAME_BASE_MAX ? `${full.slice(0, NFT_CHAIN_NAME_BASE_MAX - 3)}...` : full;
}

type PortName = Pick<ServicePort, 'namespace' | 'name' | 'portName'>;

/** servicePortChainNameBase: "HASH-ns/name/protocol/portName"; `protocol` in lower case. */
export function nftServicePortChainNameBase(sp: PortName, protocol: string): string {
  return nftHashAndTruncate(`${sp.namespace}/${sp.name}/${protocol}/${sp.portName}`);
}

/** servicePortEndpointChainNameBase: "HASH-ns/name/protocol/portName__ip/port" (IPv6 colons as dots). */
export function nftEndpointChainNameBase(sp: PortName, protocol: string, ep: { ip: string; port: number }): string {
  return nftHashAndTruncate(`${sp.namespace}/${sp.name}/${protocol}/${sp.portName}__${ep.ip.replaceAll(':', '.')}/${ep.port}`);
}

export interface NftServiceChains {
  /** service-: Cluster policy endpoints. */
  readonly cluster: string;
  /** local-: Local policy endpoints. */
  readonly local: string;
  /** external-: external destinations. */
  readonly external: string;
  /** firewall-: loadBalancerSourceRanges. */
  readonly firewall: string;
}

export function nftServiceChains(sp: PortName, protocol: string): NftServiceChains {
  const base = nftServicePortChainNameBase(sp, protocol);
  return { cluster: `service-${base}`, local: `local-${base}`, external: `external-${base}`, firewall: `firewall-${base}` };
}

/** endpoint- chain of one endpoint. */
export function nftEndpointChain(sp: PortName, protocol: string, ep: { ip: string; port: number }): string {
  return `endpoint-${nftEndpointChainNameBase(sp, protocol, ep)}`;
}

/** affinity- set (ClientIP session affinity) of one endpoint. */
export function nftAffinitySet(sp: PortName, protocol: string, ep: { ip: string; port: number }): string {
  return `affinity-${nftEndpointChainNameBase(sp, protocol, ep)}`;
}

/** A per-service chain kube-proxy owns (every hashed name has a "/"; no fixed one does). */
export function isNftServiceChainName(chain: string): boolean {
  return chain.includes('/');
}

/** A per-endpoint affinity set kube-proxy owns. */
export function isNftAffinitySetName(set: string): boolean {
  return set.startsWith('affinity-');
}
