// What the iptables renderer needs besides the ProxyState: one address family's node facts and
// kube-proxy's iptables settings (KubeProxyConfiguration names in the comments).
import type { IPFamily } from '../../model/types.js';

export interface IptablesConfig {
  /** kube-proxy runs one proxier per family; so does the renderer (iptables or ip6tables). */
  readonly family: IPFamily;
  /** kube-proxy's nodeIP of this family: a LoadBalancer source range containing it also admits
   *  traffic sourced from the LB IPs (node → own VIP). null when unknown. */
  readonly nodeIP: string | null;
  /** This family's addresses on the host's interfaces (loopback included): nodePortAddresses
   *  CIDRs are matched against them, as kube-proxy's GetNodeIPs does. */
  readonly localAddresses: readonly string[];
  /** detectLocalMode ClusterCIDR: traffic from these CIDRs is pod traffic. Empty: no detector. */
  readonly clusterCIDRs: readonly string[];
  /** masqueradeAll. */
  readonly masqueradeAll: boolean;
  /** The mark kube-proxy's Proxier holds: `masqueradeMarkFor(iptables.masqueradeBit)`, e.g.
   *  "0x00004000" (kube-proxy's own test fake sets "0x4000" directly). */
  readonly masqueradeMark: string;
  /** iptables.localhostNodePorts (IPv4 only; default true). */
  readonly localhostNodePorts: boolean;
  /** nodePortAddresses as CIDRs; empty = every local address (`-m addrtype --dst-type LOCAL`). */
  readonly nodePortAddresses: readonly string[];
  /** The iptables binary supports MASQUERADE --random-fully. */
  readonly randomFully: boolean;
  /** net.netfilter.nf_conntrack_tcp_be_liberal is set: no DROP of INVALID packets in KUBE-FORWARD. */
  readonly conntrackTCPLiberal: boolean;
}

export const DEFAULT_MASQUERADE_BIT = 14;

/** Go's fmt.Sprintf("%#08x", 1<<bit), as kube-proxy derives it: bit 14 → "0x00004000". */
export function masqueradeMarkFor(bit: number): string {
  return `0x${(2 ** bit).toString(16).padStart(8, '0')}`;
}
