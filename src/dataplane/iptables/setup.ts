// From the proxy settings and the host's facts to one IptablesConfig per family. The facts are
// read here (interfaces, a sysctl, the iptables version); the combination is pure.
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import type { ProxySettings } from '../../config/run-config.js';
import type { Iptables } from '../../kernel/iptables.js';
import { isLoopback } from '../../model/cidr.js';
import { cidrFamilyOf, ipFamilyOf } from '../../model/k8s.js';
import type { IPFamily } from '../../model/types.js';
import { masqueradeMarkFor, type IptablesConfig, type RuleModeConfig } from './config.js';

export interface HostFacts {
  /** Interface addresses per family, loopback included. */
  readonly localAddresses: Readonly<Record<IPFamily, readonly string[]>>;
  readonly randomFully: boolean;
  readonly conntrackTCPLiberal: boolean;
}

/** IPv4 always; IPv6 as well when a node IP or cluster CIDR says the node is dual-stack. */
export function proxyFamilies(proxy: Pick<ProxySettings, 'nodeIPs' | 'clusterCIDRs'>): IPFamily[] {
  const v6 = proxy.nodeIPs.some((ip) => ipFamilyOf(ip) === 'IPv6') || proxy.clusterCIDRs.some((c) => cidrFamilyOf(c) === 'IPv6');
  return v6 ? ['IPv4', 'IPv6'] : ['IPv4'];
}

/** kube-proxy's nodeIP of a family: the given one, else the first non-loopback local address. */
export function proxyNodeIP(proxy: Pick<ProxySettings, 'nodeIPs'>, family: IPFamily, localAddresses: readonly string[]): string | null {
  return proxy.nodeIPs.find((ip) => ipFamilyOf(ip) === family) ?? localAddresses.find((ip) => !isLoopback(ip)) ?? null;
}

export function ruleModeConfig(proxy: ProxySettings, family: IPFamily, localAddresses: readonly string[]): RuleModeConfig {
  return {
    family,
    nodeIP: proxyNodeIP(proxy, family, localAddresses),
    localAddresses,
    clusterCIDRs: proxy.clusterCIDRs.filter((c) => cidrFamilyOf(c) === family),
    masqueradeAll: proxy.masqueradeAll,
    masqueradeMark: masqueradeMarkFor(proxy.masqueradeBit),
    nodePortAddresses: proxy.nodePortAddresses,
  };
}

export function iptablesConfigs(proxy: ProxySettings, families: readonly IPFamily[], host: HostFacts): IptablesConfig[] {
  return families.map((family) => ({
    ...ruleModeConfig(proxy, family, host.localAddresses[family]),
    localhostNodePorts: proxy.localhostNodePorts,
    randomFully: host.randomFully,
    conntrackTCPLiberal: host.conntrackTCPLiberal,
  }));
}

/** The facts of the host (of the current network namespace). `ipt` absent: assume a current iptables. */
export function readHostFacts(ipt: Iptables | null): HostFacts {
  const localAddresses = readInterfaceAddresses();
  let conntrackTCPLiberal = false;
  try {
    conntrackTCPLiberal = readFileSync('/proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal', 'utf8').trim() !== '0';
  } catch {
    // nf_conntrack not loaded: kube-proxy then also installs the INVALID drop rule.
  }
  return { localAddresses, randomFully: ipt ? ipt.hasRandomFully() : true, conntrackTCPLiberal };
}

/** The addresses on this netns's interfaces per family (loopback included, IPv6 link-local not),
 *  leaving out the interface named `except` (IPVS mode: kube-ipvs0 holds service addresses). */
export function readInterfaceAddresses(except?: string): Record<IPFamily, string[]> {
  const out: Record<IPFamily, string[]> = { IPv4: [], IPv6: [] };
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    if (name === except) continue;
    for (const a of addrs ?? []) {
      if (a.family === 'IPv4') out.IPv4.push(a.address);
      else if (!a.address.startsWith('fe80:')) out.IPv6.push(a.address);
    }
  }
  return out;
}
