// What the nftables renderer needs besides the ProxyState: one address family's node facts and
// kube-proxy's settings (KubeProxyConfiguration names in the comments). The Service CIDRs come
// from ProxyState.serviceCIDRs.
import type { IPFamily } from '../../model/types.js';

export { masqueradeMarkFor } from '../iptables/config.js';

export interface NftablesConfig {
  /** kube-proxy runs one proxier per family (table `ip kube-proxy` or `ip6 kube-proxy`). */
  readonly family: IPFamily;
  /** kube-proxy's nodeIP of this family: a LoadBalancer source range containing it also admits
   *  traffic sourced from the LB IPs (node → own VIP). null when unknown. */
  readonly nodeIP: string | null;
  /** This family's addresses on the host's interfaces (loopback included): nodePortAddresses
   *  CIDRs are matched against them, as kube-proxy's GetNodeIPs does. */
  readonly localAddresses: readonly string[];
  /** detectLocalMode ClusterCIDR: `ip saddr 10.0.0.0/8` / `ip saddr != …`. Empty: no detector. */
  readonly clusterCIDRs: readonly string[];
  /** masqueradeAll. */
  readonly masqueradeAll: boolean;
  /** The mark as kube-proxy formats it: `masqueradeMarkFor(masqueradeBit)`, e.g. "0x00004000"
   *  (kube-proxy's own test fake sets "0x4000"). */
  readonly masqueradeMark: string;
  /** nodePortAddresses as CIDRs; empty = every local address (no nodeport-ips set,
   *  `fib daddr type local`). */
  readonly nodePortAddresses: readonly string[];
}
