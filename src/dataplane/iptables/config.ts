// What the iptables renderer needs besides the ProxyState: one address family's node facts and
// kube-proxy's iptables settings (KubeProxyConfiguration names in the comments); the part the
// nftables renderer shares is RuleModeConfig.
import type { IPFamily } from '../../model/types.js';

/** What every rule-writing proxier (iptables, nftables) takes for one family. */
export interface RuleModeConfig {
  /** kube-proxy runs one proxier per family; so does each renderer (iptables or ip6tables, the
   *  `ip` or `ip6` nftables table). */
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
  /** The mark kube-proxy's Proxier holds: `masqueradeMarkFor(masqueradeBit)`, e.g.
   *  "0x00004000" (kube-proxy's own test fakes set "0x4000" directly). */
  readonly masqueradeMark: string;
  /** nodePortAddresses as CIDRs; empty = every local address (iptables: `-m addrtype
   *  --dst-type LOCAL`; nftables: no nodeport-ips set, `fib daddr type local`). */
  readonly nodePortAddresses: readonly string[];
}

export interface IptablesConfig extends RuleModeConfig {
  /** iptables.localhostNodePorts (IPv4 only; default true). */
  readonly localhostNodePorts: boolean;
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
