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

/** First 16 characters of base32(sha256(text)) (RFC 4648 alphabet, as Go's StdEncoding). */
function hash16(text: string): string {
  const bytes = createHash('sha256').update(text).digest();
  let out = '';
  let acc = 0;
  let bits = 0;
  for (const b of bytes.subarray(0, 10)) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += BASE32[(acc >> bits) & 31];
    }
  }
  return out;
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
