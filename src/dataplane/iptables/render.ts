// ProxyState → the iptables-restore input kube-proxy's iptables proxier would write
// (pkg/proxy/iptables/proxier.go syncProxyRules, v1.29): the same chains, rules, comments and
// order, so runbooks and greps written for kube-proxy keep working. Pure.
import { cidrContains, cidrString, parseCidr } from '../../model/cidr.js';
import { endpointKey } from '../../model/endpoints.js';
import { familyView } from '../../model/family.js';
import type { Endpoint, ProxyState, ServicePort } from '../../model/types.js';
import {
  KUBE_EXTERNAL_SERVICES, KUBE_FIREWALL, KUBE_FORWARD, KUBE_MARK_MASQ, KUBE_NODEPORTS, KUBE_POSTROUTING,
  KUBE_PROXY_FIREWALL, KUBE_SERVICES, endpointChain, isServiceChainName, serviceChains, servicePortName,
} from '../kube-names.js';
import type { IptablesConfig } from './config.js';
import { probability } from './go-format.js';
import { nodePortDestinations } from './node-ports.js';

export interface RenderOptions {
  /** Partial sync: only these Services ("namespace/name") get their KUBE-SVC/SVL/EXT/FW/SEP
   *  chains and rules written; every other service chain stays as it is in the kernel.
   *  null/undefined: full sync. */
  readonly changedServices?: ReadonlySet<string> | null;
  /** NAT chains that exist now (from iptables-save). Service chains among them that are no
   *  longer used are flushed and deleted (`-X`). null/undefined: nothing is deleted. */
  readonly existingNatChains?: ReadonlySet<string> | null;
}

export interface IptablesRender {
  /** `*filter … COMMIT` then `*nat … COMMIT`, newline-terminated. */
  readonly text: string;
  /** Every service NAT chain the state uses (written or, in a partial sync, skipped). */
  readonly activeNatChains: ReadonlySet<string>;
  /** Stale service chains this restore deletes. */
  readonly deletedChains: readonly string[];
  readonly filterRules: number;
  /** NAT rules written (the `-X` of deleted chains not counted, as in kube-proxy's metrics), and
   *  those a partial sync left out. */
  readonly natRules: number;
  readonly skippedNatRules: number;
  /** More than 1000 endpoints: per-endpoint comments are left out, as kube-proxy does. */
  readonly largeClusterMode: boolean;
  /** Service ports with a Local policy and no local endpoint (kube-proxy's sync_proxy_rules_no_local_endpoints_total). */
  readonly noLocalEndpoints: { readonly internal: number; readonly external: number };
  /** Problems the renderer survived (say, nodePortAddresses matching no address), for the log. */
  readonly warnings: readonly string[];
}

/** kube-proxy's largeClusterEndpointsThreshold. */
export const LARGE_CLUSTER_ENDPOINTS = 1000;

type Arg = string | readonly string[];

/** kube-proxy's LineBuffer: words joined by spaces, one rule per line. */
class Lines {
  readonly lines: string[] = [];
  write(...args: Arg[]): void {
    this.lines.push(args.flat().join(' '));
  }
}

const q = (s: string) => `"${s}"`;
const chainLine = (chain: string) => `:${chain} - [0:0]`;

export function renderIptables(state: ProxyState, cfg: IptablesConfig, opts: RenderOptions = {}): IptablesRender {
  const mark = cfg.masqueradeMark;
  const isIPv6 = cfg.family === 'IPv6';
  const clusterCIDR = cfg.clusterCIDRs.map(parseCidr).find((c) => c !== null && c.bits === (isIPv6 ? 128 : 32)) ?? null;
  const ifLocal = clusterCIDR ? ['-s', cidrString(clusterCIDR)] : null;
  const ifNotLocal = clusterCIDR ? ['!', '-s', cidrString(clusterCIDR)] : null;
  const nodePorts = nodePortDestinations(cfg);

  const filterChains = new Lines();
  const filterRules = new Lines();
  const natChains = new Lines();
  const natRules = new Lines();
  const skipped = { chains: new Lines(), rules: new Lines() };

  for (const c of [KUBE_SERVICES, KUBE_EXTERNAL_SERVICES, KUBE_FORWARD, KUBE_NODEPORTS, KUBE_PROXY_FIREWALL]) filterChains.write(chainLine(c));
  for (const c of [KUBE_SERVICES, KUBE_NODEPORTS, KUBE_POSTROUTING, KUBE_MARK_MASQ]) natChains.write(chainLine(c));

  natRules.write('-A', KUBE_POSTROUTING, '-m', 'mark', '!', '--mark', `${mark}/${mark}`, '-j', 'RETURN');
  // Clear the mark so a packet that traverses the stack again is not masqueraded twice.
  natRules.write('-A', KUBE_POSTROUTING, '-j', 'MARK', '--xor-mark', mark);
  natRules.write('-A', KUBE_POSTROUTING, '-m', 'comment', '--comment', q('kubernetes service traffic requiring SNAT'), '-j', 'MASQUERADE',
    cfg.randomFully ? ['--random-fully'] : []);
  natRules.write('-A', KUBE_MARK_MASQ, '-j', 'MARK', '--or-mark', mark);

  if (!isIPv6 && nodePorts.localhostNodePorts) {
    // route_localnet opens 127.0.0.0/8 to the network (https://issue.k8s.io/90259); kubelet
    // writes the same rule.
    filterChains.write(chainLine(KUBE_FIREWALL));
    filterRules.write('-A', KUBE_FIREWALL, '-m', 'comment', '--comment', q('block incoming localnet connections'),
      '-d', '127.0.0.0/8', '!', '-s', '127.0.0.0/8', '-m', 'conntrack', '!', '--ctstate', 'RELATED,ESTABLISHED,DNAT', '-j', 'DROP');
  }

  const services = state.services.map((sp) => familyView(sp, cfg.family)).filter((sp): sp is ServicePort => sp !== null);
  const totalEndpoints = services.reduce((n, sp) => n + sp.endpoints.length, 0);
  const largeClusterMode = totalEndpoints > LARGE_CLUSTER_ENDPOINTS;
  const withComment = (args: string[], comment: string): string[] => (largeClusterMode ? args : [...args, '-m', 'comment', '--comment', comment]);

  const activeNatChains = new Set<string>();
  const noLocal = { internal: 0, external: 0 };

  for (const sp of services) {
    const protocol = sp.protocol.toLowerCase();
    const spn = servicePortName(sp);
    const chains = serviceChains(spn, protocol);
    const clusterIP = sp.clusterIPs[0]!;
    const port = String(sp.port);
    const proto = ['-m', protocol, '-p', protocol];
    const hasEndpoints = sp.hasAnyEndpoints;

    const usesClusterPolicyChain = sp.clusterEndpoints.length > 0 && sp.usesClusterEndpoints;
    const usesLocalPolicyChain = sp.localEndpoints.length > 0 && sp.usesLocalEndpoints;

    let internalTrafficChain = chains.cluster;
    let hasInternalEndpoints = hasEndpoints;
    if (sp.internalTrafficPolicy === 'Local') {
      internalTrafficChain = chains.local;
      if (sp.localEndpoints.length === 0) hasInternalEndpoints = false;
    }
    let externalPolicyChain = chains.cluster;
    let hasExternalEndpoints = hasEndpoints;
    const externalPolicyLocal = sp.externalTrafficPolicy === 'Local';
    if (externalPolicyLocal) {
      externalPolicyChain = chains.local;
      if (sp.localEndpoints.length === 0) hasExternalEndpoints = false;
    }
    // Needed even without externally usable endpoints: the short-circuit rules for local sources.
    const usesExternalTrafficChain = hasEndpoints && sp.externallyAccessible;
    const usesFWChain = hasEndpoints && sp.loadBalancerIPs.length > 0 && sp.loadBalancerSourceRanges.length > 0;
    const loadBalancerTrafficChain = usesFWChain ? chains.firewall : chains.external;

    let internalFilter = { target: '', comment: '' };
    let externalFilter = { target: '', comment: '' };
    if (!hasEndpoints) {
      internalFilter = { target: 'REJECT', comment: q(`${spn} has no endpoints`) };
      externalFilter = internalFilter;
    } else {
      if (!hasInternalEndpoints) {
        internalFilter = { target: 'DROP', comment: q(`${spn} has no local endpoints`) };
        noLocal.internal++;
      }
      if (!hasExternalEndpoints) {
        externalFilter = { target: 'DROP', comment: q(`${spn} has no local endpoints`) };
        noLocal.external++;
      }
    }

    // Service capture rules live in shared chains: always written.
    if (hasInternalEndpoints) {
      natRules.write('-A', KUBE_SERVICES, '-m', 'comment', '--comment', q(`${spn} cluster IP`), proto, '-d', clusterIP, '--dport', port, '-j', internalTrafficChain);
    } else {
      filterRules.write('-A', KUBE_SERVICES, '-m', 'comment', '--comment', internalFilter.comment, proto, '-d', clusterIP, '--dport', port, '-j', internalFilter.target);
    }
    for (const ip of sp.externalIPs) {
      if (hasEndpoints) {
        natRules.write('-A', KUBE_SERVICES, '-m', 'comment', '--comment', q(`${spn} external IP`), proto, '-d', ip, '--dport', port, '-j', chains.external);
      }
      if (!hasExternalEndpoints) {
        filterRules.write('-A', KUBE_EXTERNAL_SERVICES, '-m', 'comment', '--comment', externalFilter.comment, proto, '-d', ip, '--dport', port, '-j', externalFilter.target);
      }
    }
    for (const ip of sp.loadBalancerIPs) {
      if (hasEndpoints) {
        natRules.write('-A', KUBE_SERVICES, '-m', 'comment', '--comment', q(`${spn} loadbalancer IP`), proto, '-d', ip, '--dport', port, '-j', loadBalancerTrafficChain);
      }
      if (usesFWChain) {
        filterRules.write('-A', KUBE_PROXY_FIREWALL, '-m', 'comment', '--comment', q(`${spn} traffic not accepted by ${chains.firewall}`), proto, '-d', ip, '--dport', port, '-j', 'DROP');
      }
    }
    if (!hasExternalEndpoints) {
      for (const ip of sp.loadBalancerIPs) {
        filterRules.write('-A', KUBE_EXTERNAL_SERVICES, '-m', 'comment', '--comment', externalFilter.comment, proto, '-d', ip, '--dport', port, '-j', externalFilter.target);
      }
    }
    if (sp.nodePort !== null) {
      const nodePort = String(sp.nodePort);
      if (hasEndpoints) {
        // NodePorts are not subject to loadBalancerSourceRanges (kube-proxy cannot change that).
        natRules.write('-A', KUBE_NODEPORTS, '-m', 'comment', '--comment', spn, proto, '--dport', nodePort, '-j', chains.external);
      }
      if (!hasExternalEndpoints) {
        filterRules.write('-A', KUBE_EXTERNAL_SERVICES, '-m', 'comment', '--comment', externalFilter.comment,
          '-m', 'addrtype', '--dst-type', 'LOCAL', proto, '--dport', nodePort, '-j', externalFilter.target);
      }
    }
    if (sp.healthCheckNodePort !== null) {
      filterRules.write('-A', KUBE_NODEPORTS, '-m', 'comment', '--comment', q(`${spn} health check node port`),
        '-m', 'tcp', '-p', 'tcp', '--dport', String(sp.healthCheckNodePort), '-j', 'ACCEPT');
    }

    // Per-service chains: a partial sync computes but discards those of unchanged Services.
    const changed = !opts.changedServices || opts.changedServices.has(`${sp.namespace}/${sp.name}`);
    const svcChains = changed ? natChains : skipped.chains;
    const svcRules = changed ? natRules : skipped.rules;
    const declare = (chain: string) => {
      svcChains.write(chainLine(chain));
      activeNatChains.add(chain);
    };

    if (hasInternalEndpoints) {
      const args = ['-m', 'comment', '--comment', q(`${spn} cluster IP`), ...proto, '-d', clusterIP, '--dport', port];
      if (cfg.masqueradeAll) svcRules.write('-A', internalTrafficChain, args, '-j', KUBE_MARK_MASQ);
      // Off-cluster sources reaching a ClusterIP (a static route to the service range via any
      // node) may bounce off-node: masquerade them.
      else if (ifNotLocal) svcRules.write('-A', internalTrafficChain, args, ifNotLocal, '-j', KUBE_MARK_MASQ);
    }

    if (usesExternalTrafficChain) {
      declare(chains.external);
      if (!externalPolicyLocal) {
        svcRules.write('-A', chains.external, '-m', 'comment', '--comment', q(`masquerade traffic for ${spn} external destinations`), '-j', KUBE_MARK_MASQ);
      } else {
        // Pods reaching an external address are subject to neither policy, as if they had gone
        // out to the load balancer and come back.
        if (ifLocal) {
          svcRules.write('-A', chains.external, '-m', 'comment', '--comment', q(`pod traffic for ${spn} external destinations`), ifLocal, '-j', chains.cluster);
        }
        // The node itself picks the VIP as source: masquerade, and use the cluster chain.
        svcRules.write('-A', chains.external, '-m', 'comment', '--comment', q(`masquerade LOCAL traffic for ${spn} external destinations`),
          '-m', 'addrtype', '--src-type', 'LOCAL', '-j', KUBE_MARK_MASQ);
        svcRules.write('-A', chains.external, '-m', 'comment', '--comment', q(`route LOCAL traffic for ${spn} external destinations`),
          '-m', 'addrtype', '--src-type', 'LOCAL', '-j', chains.cluster);
      }
      if (hasExternalEndpoints) svcRules.write('-A', chains.external, '-j', externalPolicyChain);
    }

    if (usesFWChain) {
      declare(chains.firewall);
      const args = ['-A', chains.firewall, '-m', 'comment', '--comment', q(`${spn} loadbalancer IP`)];
      let allowFromNode = false;
      for (const text of sp.loadBalancerSourceRanges) {
        const cidr = parseCidr(text);
        if (!cidr) continue;
        svcRules.write(args, '-s', cidrString(cidr), '-j', chains.external);
        if (cfg.nodeIP !== null && cidrContains(cidr, cfg.nodeIP)) allowFromNode = true;
      }
      // A VIP-like LB's IP is often local: a node reaching it loops back with the VIP as source.
      if (allowFromNode) for (const ip of sp.loadBalancerIPs) svcRules.write(args, '-s', ip, '-j', chains.external);
      // What falls off the end was not DNATed and is dropped by KUBE-PROXY-FIREWALL.
      svcRules.write('-A', chains.firewall, '-m', 'comment', '--comment', q(`other traffic to ${spn} will be dropped by KUBE-PROXY-FIREWALL`));
    }

    if (usesClusterPolicyChain) {
      declare(chains.cluster);
      writeServiceToEndpointRules(svcRules, spn, protocol, sp, chains.cluster, sp.clusterEndpoints, withComment);
    }
    if (usesLocalPolicyChain) {
      declare(chains.local);
      writeServiceToEndpointRules(svcRules, spn, protocol, sp, chains.local, sp.localEndpoints, withComment);
    }

    for (const ep of sp.allReachableEndpoints) {
      const chain = endpointChain(spn, protocol, ep);
      declare(chain);
      const args = withComment(['-A', chain], spn);
      // Hairpin: a pod reaching itself through the service must be masqueraded, or its reply
      // would go straight back to it with the wrong source.
      svcRules.write(args, '-s', ep.ip, '-j', KUBE_MARK_MASQ);
      const affinity = sp.sessionAffinityTimeoutSeconds !== null ? ['-m', 'recent', '--name', chain, '--set'] : [];
      svcRules.write(args, affinity, proto, '-j', 'DNAT', '--to-destination', endpointKey(ep));
    }
  }

  const deletedChains: string[] = [];
  if (opts.existingNatChains) {
    for (const chain of [...opts.existingNatChains].sort()) {
      if (activeNatChains.has(chain) || !isServiceChainName(chain)) continue;
      // A chain line flushes it; then it can go.
      natChains.write(chainLine(chain));
      natRules.write('-X', chain);
      deletedChains.push(chain);
    }
  }

  // The NodePort tail-call must be the last rule of KUBE-SERVICES.
  const nodePortsComment = q('kubernetes service nodeports; NOTE: this must be the last rule in this chain');
  if (nodePorts.matchAll) {
    const dst = ['-m', 'addrtype', '--dst-type', 'LOCAL'];
    // Localhost NodePorts never work on IPv6, and on IPv4 only with route_localnet.
    if (isIPv6) dst.push('!', '-d', '::1/128');
    else if (!nodePorts.localhostNodePorts) dst.push('!', '-d', '127.0.0.0/8');
    natRules.write('-A', KUBE_SERVICES, '-m', 'comment', '--comment', nodePortsComment, dst, '-j', KUBE_NODEPORTS);
  } else {
    for (const ip of nodePorts.addresses) natRules.write('-A', KUBE_SERVICES, '-m', 'comment', '--comment', nodePortsComment, '-d', ip, '-j', KUBE_NODEPORTS);
  }

  // INVALID packets would reset connections unless nf_conntrack_tcp_be_liberal is set
  // (kubernetes/kubernetes#74839, #117924).
  if (!cfg.conntrackTCPLiberal) filterRules.write('-A', KUBE_FORWARD, '-m', 'conntrack', '--ctstate', 'INVALID', '-j', 'DROP');
  // Marked traffic is forwarded even where the FORWARD policy is not ACCEPT.
  filterRules.write('-A', KUBE_FORWARD, '-m', 'comment', '--comment', q('kubernetes forwarding rules'), '-m', 'mark', '--mark', `${mark}/${mark}`, '-j', 'ACCEPT');
  filterRules.write('-A', KUBE_FORWARD, '-m', 'comment', '--comment', q('kubernetes forwarding conntrack rule'), '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'ACCEPT');

  const text = ['*filter', ...filterChains.lines, ...filterRules.lines, 'COMMIT', '*nat', ...natChains.lines, ...natRules.lines, 'COMMIT', ''].join('\n');
  return {
    text,
    activeNatChains,
    deletedChains,
    filterRules: filterRules.lines.length,
    natRules: natRules.lines.length - deletedChains.length,
    skippedNatRules: skipped.rules.lines.length,
    largeClusterMode,
    noLocalEndpoints: noLocal,
    warnings: nodePorts.warnings,
  };
}

/** Session-affinity rules first, then one `statistic` jump per endpoint with probability 1/(n-i). */
function writeServiceToEndpointRules(
  rules: Lines, spn: string, protocol: string, sp: ServicePort, chain: string, endpoints: readonly Endpoint[],
  withComment: (args: string[], comment: string) => string[],
): void {
  if (sp.sessionAffinityTimeoutSeconds !== null) {
    for (const ep of endpoints) {
      const epChain = endpointChain(spn, protocol, ep);
      rules.write(withComment(['-A', chain], q(`${spn} -> ${endpointKey(ep)}`)),
        '-m', 'recent', '--name', epChain, '--rcheck', '--seconds', String(sp.sessionAffinityTimeoutSeconds), '--reap', '-j', epChain);
    }
  }
  endpoints.forEach((ep, i) => {
    const args = withComment(['-A', chain], q(`${spn} -> ${endpointKey(ep)}`));
    const stat = i < endpoints.length - 1 ? ['-m', 'statistic', '--mode', 'random', '--probability', probability(endpoints.length - i)] : [];
    rules.write(args, stat, '-j', endpointChain(spn, protocol, ep));
  });
}
