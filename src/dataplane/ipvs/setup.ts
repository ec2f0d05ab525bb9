// From the proxy settings and the host's facts to one IpvsConfig per family (pure), the node's
// addresses as IPVS mode sees them (every interface but kube-ipvs0), and kube-proxy's sysctls.
import type { ProxySettings } from '../../config/run-config.js';
import { cidrFamilyOf } from '../../model/k8s.js';
import type { IPFamily } from '../../model/types.js';
import { masqueradeMarkFor } from '../iptables/config.js';
import { proxyNodeIP, readInterfaceAddresses, type HostFacts } from '../iptables/setup.js';
import { KUBE_IPVS_DEVICE } from '../kube-names.js';
import type { IpvsConfig } from './render.js';

export type NodeAddresses = Readonly<Record<IPFamily, readonly string[]>>;

/** Addresses on the host's interfaces except kube-ipvs0 (kube-proxy's GetAllLocalAddressesExcept). */
export const readNodeAddresses = (): NodeAddresses => readInterfaceAddresses(KUBE_IPVS_DEVICE);

export function ipvsConfigs(
  proxy: ProxySettings, families: readonly IPFamily[], host: Pick<HostFacts, 'randomFully'>, nodeAddresses: NodeAddresses,
): IpvsConfig[] {
  return families.map((family) => ({
    family,
    nodeIP: proxyNodeIP(proxy, family, nodeAddresses[family]),
    nodeAddresses: nodeAddresses[family],
    nodePortAddresses: proxy.nodePortAddresses,
    clusterCIDRs: proxy.clusterCIDRs.filter((c) => cidrFamilyOf(c) === family),
    masqueradeAll: proxy.masqueradeAll,
    masqueradeMark: masqueradeMarkFor(proxy.masqueradeBit),
    randomFully: host.randomFully,
    scheduler: proxy.ipvs.scheduler,
  }));
}

/**
 * The sysctls kube-proxy's IPVS proxier sets (NewProxier). conn_reuse_mode=0 only on kernels
 * 4.1 ≤ k < 5.9: older ones lack it, newer ones fixed the reuse delay it works around.
 */
export function ipvsSysctls(kernelRelease: string, strictARP: boolean): [key: string, value: string][] {
  const [major = 0, minor = 0] = kernelRelease.split(/[.-]/).map(Number);
  const k = major * 1000 + minor;
  return [
    ['net/ipv4/vs/conntrack', '1'],
    ...(k >= 4001 && k < 5009 ? [['net/ipv4/vs/conn_reuse_mode', '0'] as [string, string]] : []),
    ['net/ipv4/vs/expire_nodest_conn', '1'],
    ['net/ipv4/vs/expire_quiescent_template', '1'],
    ['net/ipv4/ip_forward', '1'],
    // strictARP: do not answer ARP for kube-ipvs0's addresses on other interfaces (MetalLB needs it).
    ...(strictARP ? [['net/ipv4/conf/all/arp_ignore', '1'], ['net/ipv4/conf/all/arp_announce', '2']] as [string, string][] : []),
  ];
}
