// ProxyState → what kube-proxy's IPVS proxier (pkg/proxy/ipvs/proxier.go syncProxyRules and
// writeIptablesRules, v1.31) programs for one address family: virtual servers, ipset entries, the
// iptables-restore input, and the addresses bound to kube-ipvs0. Pure.
import { cidrContains, cidrString, isLoopback, parseCidr } from '../../model/cidr.js';
import { familyView } from '../../model/family.js';
import type { Endpoint, IPFamily, ProxyState, ServicePort } from '../../model/types.js';
import {
  KUBE_FORWARD, KUBE_IPVS_FILTER, KUBE_IPVS_OUT_FILTER, KUBE_LOAD_BALANCER, KUBE_MARK_MASQ, KUBE_NODE_PORT, KUBE_POSTROUTING,
  KUBE_PROXY_FIREWALL, KUBE_SERVICES, KUBE_SOURCE_RANGES_FIREWALL,
} from '../kube-names.js';
import { IPSETS, SET_IDS, ipPortEntry, ipPortIPEntry, ipPortNetEntry, setName, type IpsetContents, type SetId } from './ipsets.js';
import { vsKey, type VirtualServer } from './virtual-servers.js';

export interface IpvsConfig {
  readonly family: IPFamily;
  /** kube-proxy's nodeIP of this family: a LoadBalancer source range containing it admits the node. */
  readonly nodeIP: string | null;
  /** This family's addresses on the node's interfaces other than kube-ipvs0, loopback included. */
  readonly nodeAddresses: readonly string[];
  /** nodePortAddresses CIDRs (any family); empty = every node address. */
  readonly nodePortAddresses: readonly string[];
  /** detectLocalMode ClusterCIDR; empty = no detector. */
  readonly clusterCIDRs: readonly string[];
  readonly masqueradeAll: boolean;
  /** e.g. "0x00004000" (config.ts masqueradeMarkFor). */
  readonly masqueradeMark: string;
  readonly randomFully: boolean;
  /** ipvs.scheduler. */
  readonly scheduler: string;
}

export interface IpvsRender {
  readonly virtualServers: readonly VirtualServer[];
  readonly ipsets: IpsetContents;
  /** `*nat … COMMIT` then `*filter … COMMIT`, for iptables-restore --noflush. */
  readonly iptables: string;
  /** What kube-ipvs0 carries (also the KUBE-IPVS-IPS set), sorted. */
  readonly bindAddresses: readonly string[];
  /** Where NodePort virtual servers are, sorted. */
  readonly nodePortIPs: readonly string[];
}

const q = (s: string) => `"${s}"`;
const isLinkLocal6 = (ip: string) => /^fe[89ab][0-9a-f]:/i.test(ip);

/** kube-proxy's node IPs for NodePorts: every node address (or those in nodePortAddresses), no loopback. */
export function nodePortIPs(cfg: Pick<IpvsConfig, 'family' | 'nodeAddresses' | 'nodePortAddresses'>): string[] {
  const bits = cfg.family === 'IPv4' ? 32 : 128;
  const cidrs = cfg.nodePortAddresses.map(parseCidr).filter((c) => c !== null && c.bits === bits);
  const matchAll = cidrs.length === 0 || cidrs.some((c) => c!.prefix === 0);
  const ips = cfg.nodeAddresses.filter((ip) => !isLoopback(ip) && !isLinkLocal6(ip) && (matchAll || cidrs.some((c) => cidrContains(c!, ip))));
  return [...new Set(ips)].sort();
}

/** kube-proxy's endpoint choice for one virtual server (syncEndpoint): the local endpoints when
 *  the policy is Local and there are some, else the cluster endpoints. Weight is always 1. */
function realServersOf(sp: ServicePort, onlyLocal: boolean) {
  const eps: readonly Endpoint[] = onlyLocal && sp.localEndpoints.length > 0 ? sp.localEndpoints : sp.clusterEndpoints;
  return eps.map((ep) => ({ address: ep.ip, port: ep.port, weight: 1 }));
}

export function renderIpvs(state: ProxyState, cfg: IpvsConfig): IpvsRender {
  const sets = new Map<SetId, Set<string>>(SET_IDS.map((id) => [id, new Set<string>()]));
  const add = (id: SetId, entry: string) => sets.get(id)!.add(entry);
  // One virtual server per address/port/protocol: the first Service address that claims it wins
  // (an externalIP equal to a LoadBalancer IP, say), as kube-proxy's second syncService finds it applied.
  const servers = new Map<string, VirtualServer>();
  const bind = new Set<string>();
  const npIPs = nodePortIPs(cfg);
  // kube-proxy's node address set (GetAllLocalAddressesExcept) leaves out loopback and link-local.
  const nodeAddressSet = new Set(cfg.nodeAddresses.filter((ip) => !isLoopback(ip) && !isLinkLocal6(ip)));
  const outFilterDrops: string[][] = [];

  const services = state.services.map((sp) => familyView(sp, cfg.family)).filter((sp): sp is ServicePort => sp !== null);
  for (const sp of services) {
    const protocol = sp.protocol.toLowerCase();
    const port = sp.port;
    const virtual = (address: string, vsPort: number, onlyLocal: boolean): void => {
      const vs: VirtualServer = {
        protocol: sp.protocol, address, port: vsPort, scheduler: cfg.scheduler,
        persistenceTimeout: sp.sessionAffinityTimeoutSeconds,
        schedFlags: cfg.scheduler === 'mh' ? ['mh-port'] : [],
        realServers: realServersOf(sp, onlyLocal),
      };
      if (!servers.has(vsKey(vs))) servers.set(vsKey(vs), vs);
    };

    // Hairpin: a local endpoint reaching its own service is masqueraded (KUBE-POSTROUTING).
    for (const ep of sp.endpoints) if (ep.isLocal) add('loopBack', ipPortIPEntry(ep.ip, protocol, ep.port, ep.ip));

    const clusterIP = sp.clusterIPs[0]!;
    add('clusterIP', ipPortEntry(clusterIP, protocol, port));
    virtual(clusterIP, port, sp.internalTrafficPolicy === 'Local');
    bind.add(clusterIP);

    const externalLocal = sp.externalTrafficPolicy === 'Local';
    for (const ip of sp.externalIPs) {
      add(externalLocal ? 'externalIPLocal' : 'externalIP', ipPortEntry(ip, protocol, port));
      virtual(ip, port, externalLocal);
      if (!nodeAddressSet.has(ip)) bind.add(ip);
    }

    for (const ip of sp.loadBalancerIPs) {
      const entry = ipPortEntry(ip, protocol, port);
      add('loadBalancer', entry);
      if (externalLocal) add('loadBalancerLocal', entry);
      if (sp.loadBalancerSourceRanges.length > 0) {
        add('loadBalancerFW', entry);
        let allowFromNode = false;
        for (const range of sp.loadBalancerSourceRanges) {
          const cidr = parseCidr(range);
          if (!cidr) continue;
          add('loadBalancerSourceCIDR', ipPortNetEntry(ip, protocol, port, cidrString(cidr)));
          if (cfg.nodeIP !== null && cidrContains(cidr, cfg.nodeIP)) allowFromNode = true;
        }
        // The node reaches its own LB IP with that IP as the source (the address is local).
        if (allowFromNode) add('loadBalancerSourceIP', ipPortIPEntry(ip, protocol, port, ip));
        else outFilterDrops.push(['-s', ip, '-m', 'ipvs', '--vaddr', ip, '--vproto', protocol, '--vport', String(port)]);
      }
      virtual(ip, port, externalLocal);
      if (!nodeAddressSet.has(ip)) bind.add(ip);
    }

    if (sp.nodePort !== null && npIPs.length > 0) {
      const np = sp.nodePort;
      const [all, local]: [SetId, SetId] = sp.protocol === 'TCP' ? ['nodePortTCP', 'nodePortLocalTCP']
        : sp.protocol === 'UDP' ? ['nodePortUDP', 'nodePortLocalUDP'] : ['nodePortSCTP', 'nodePortLocalSCTP'];
      // bitmap:port for TCP and UDP; SCTP's set is hash:ip,port with one entry per node IP.
      const entries = sp.protocol === 'SCTP' ? npIPs.map((ip) => ipPortEntry(ip, protocol, np)) : [String(np)];
      for (const e of entries) {
        add(all, e);
        if (externalLocal) add(local, e);
      }
      for (const ip of npIPs) virtual(ip, np, externalLocal);
    }

    if (sp.healthCheckNodePort !== null) add('healthCheckNodePort', String(sp.healthCheckNodePort));
  }
  for (const ip of bind) add('ipvsIPs', ip);

  return {
    virtualServers: [...servers.values()],
    ipsets: sets,
    iptables: iptablesText(cfg, sets, outFilterDrops),
    bindAddresses: [...bind].sort(),
    nodePortIPs: npIPs,
  };
}

/** ipsetWithIptablesChain: rules emitted only while their set has entries, in this order. */
const SET_JUMPS: readonly { set: SetId; table: 'nat' | 'filter'; from: string; to: string; match: string; proto?: string }[] = [
  { set: 'loopBack', table: 'nat', from: KUBE_POSTROUTING, to: 'MASQUERADE', match: 'dst,dst,src' },
  { set: 'loadBalancer', table: 'nat', from: KUBE_SERVICES, to: KUBE_LOAD_BALANCER, match: 'dst,dst' },
  { set: 'loadBalancerLocal', table: 'nat', from: KUBE_LOAD_BALANCER, to: 'RETURN', match: 'dst,dst' },
  { set: 'nodePortLocalTCP', table: 'nat', from: KUBE_NODE_PORT, to: 'RETURN', match: 'dst', proto: 'tcp' },
  { set: 'nodePortTCP', table: 'nat', from: KUBE_NODE_PORT, to: KUBE_MARK_MASQ, match: 'dst', proto: 'tcp' },
  { set: 'nodePortLocalUDP', table: 'nat', from: KUBE_NODE_PORT, to: 'RETURN', match: 'dst', proto: 'udp' },
  { set: 'nodePortUDP', table: 'nat', from: KUBE_NODE_PORT, to: KUBE_MARK_MASQ, match: 'dst', proto: 'udp' },
  { set: 'nodePortLocalSCTP', table: 'nat', from: KUBE_NODE_PORT, to: 'RETURN', match: 'dst,dst', proto: 'sctp' },
  { set: 'nodePortSCTP', table: 'nat', from: KUBE_NODE_PORT, to: KUBE_MARK_MASQ, match: 'dst,dst', proto: 'sctp' },
  { set: 'loadBalancerFW', table: 'filter', from: KUBE_PROXY_FIREWALL, to: KUBE_SOURCE_RANGES_FIREWALL, match: 'dst,dst' },
  { set: 'loadBalancerSourceCIDR', table: 'filter', from: KUBE_SOURCE_RANGES_FIREWALL, to: 'RETURN', match: 'dst,dst,src' },
  { set: 'loadBalancerSourceIP', table: 'filter', from: KUBE_SOURCE_RANGES_FIREWALL, to: 'RETURN', match: 'dst,dst,src' },
];

export const IPVS_NAT_CHAINS = [KUBE_SERVICES, KUBE_POSTROUTING, KUBE_NODE_PORT, KUBE_LOAD_BALANCER, KUBE_MARK_MASQ] as const;
export const IPVS_FILTER_CHAINS = [KUBE_FORWARD, KUBE_NODE_PORT, KUBE_PROXY_FIREWALL, KUBE_SOURCE_RANGES_FIREWALL, KUBE_IPVS_FILTER, KUBE_IPVS_OUT_FILTER] as const;

function iptablesText(cfg: IpvsConfig, sets: ReadonlyMap<SetId, ReadonlySet<string>>, outFilterDrops: readonly string[][]): string {
  const nat: string[][] = [];
  const filter: string[][] = [];
  const name = (id: SetId) => setName(id, cfg.family);
  const has = (id: SetId) => sets.get(id)!.size > 0;
  const comment = (id: SetId) => ['-m', 'comment', '--comment', q(IPSETS[id].comment)];
  const matchSet = (id: SetId, match: string) => ['-m', 'set', '--match-set', name(id), match];
  const mark = cfg.masqueradeMark;
  const bits = cfg.family === 'IPv4' ? 32 : 128;
  const clusterCIDR = cfg.clusterCIDRs.map(parseCidr).find((c) => c !== null && c.bits === bits) ?? null;

  // Traffic from localhost to a VIP is left alone (kube-proxy's "dismiss" rule).
  nat.push(['-A', KUBE_SERVICES, '-s', cfg.family === 'IPv4' ? '127.0.0.0/8' : '::1/128', '-j', 'RETURN']);
  for (const j of SET_JUMPS) {
    if (!has(j.set)) continue;
    (j.table === 'nat' ? nat : filter).push(['-A', j.from, ...(j.proto ? ['-p', j.proto] : []), ...comment(j.set), ...matchSet(j.set, j.match), '-j', j.to]);
  }
  if (has('clusterIP')) {
    const base = ['-A', KUBE_SERVICES, ...comment('clusterIP'), '-m', 'set', '--match-set', name('clusterIP')];
    if (cfg.masqueradeAll) nat.push([...base, 'dst,dst', '-j', KUBE_MARK_MASQ]);
    else if (clusterCIDR) nat.push([...base, 'dst,dst', '!', '-s', cidrString(clusterCIDR), '-j', KUBE_MARK_MASQ]);
    // Without a detector, masquerade node-originated traffic whose source is a VIP on kube-ipvs0.
    else nat.push([...base, 'src,dst', '-j', KUBE_MARK_MASQ]);
  }
  const externalIPRules = (args: string[]) => {
    // From off the node (not a bridge port, not a local source) ...
    nat.push([...args, '-m', 'physdev', '!', '--physdev-is-in', '-m', 'addrtype', '!', '--src-type', 'LOCAL', '-j', 'ACCEPT']);
    // ... or to an external IP that is a local address (a GCE-style LB VIP).
    nat.push([...args, '-m', 'addrtype', '--dst-type', 'LOCAL', '-j', 'ACCEPT']);
  };
  if (has('externalIP')) {
    const args = ['-A', KUBE_SERVICES, ...comment('externalIP'), ...matchSet('externalIP', 'dst,dst')];
    nat.push([...args, '-j', KUBE_MARK_MASQ]);
    externalIPRules(args);
  }
  if (has('externalIPLocal')) externalIPRules(['-A', KUBE_SERVICES, ...comment('externalIPLocal'), ...matchSet('externalIPLocal', 'dst,dst')]);
  nat.push(['-A', KUBE_SERVICES, '-m', 'addrtype', '--dst-type', 'LOCAL', '-j', KUBE_NODE_PORT]);
  nat.push(['-A', KUBE_LOAD_BALANCER, '-j', KUBE_MARK_MASQ]);
  filter.push(['-A', KUBE_SOURCE_RANGES_FIREWALL, '-j', 'DROP']);
  for (const d of outFilterDrops) filter.push(['-A', KUBE_IPVS_OUT_FILTER, ...d, '-j', 'DROP']);
  // Accept what IPVS will take, in case later rules would drop it.
  for (const id of ['clusterIP', 'loadBalancer'] as const) {
    if (has(id)) nat.push(['-A', KUBE_SERVICES, ...matchSet(id, 'dst,dst'), '-j', 'ACCEPT']);
  }
  filter.push(['-A', KUBE_FORWARD, '-m', 'comment', '--comment', q('kubernetes forwarding rules'), '-m', 'mark', '--mark', `${mark}/${mark}`, '-j', 'ACCEPT']);
  filter.push(['-A', KUBE_FORWARD, '-m', 'comment', '--comment', q('kubernetes forwarding conntrack rule'), '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'ACCEPT']);
  filter.push(['-A', KUBE_NODE_PORT, ...comment('healthCheckNodePort'), ...matchSet('healthCheckNodePort', 'dst'), '-j', 'ACCEPT']);
  // No access to other ports of the host through a VIP (kubernetes#72236).
  for (const id of ['loadBalancer', 'clusterIP', 'externalIP', 'externalIPLocal'] as const) filter.push(['-A', KUBE_IPVS_FILTER, ...matchSet(id, 'dst,dst'), '-j', 'RETURN']);
  filter.push(['-A', KUBE_IPVS_FILTER, ...matchSet('healthCheckNodePort', 'dst'), '-j', 'RETURN']);
  filter.push(['-A', KUBE_IPVS_FILTER, '-m', 'conntrack', '--ctstate', 'NEW', ...matchSet('ipvsIPs', 'dst'), '-j', 'REJECT']);
  nat.push(['-A', KUBE_POSTROUTING, '-m', 'mark', '!', '--mark', `${mark}/${mark}`, '-j', 'RETURN']);
  // Clear the mark so a packet that traverses the stack again is not masqueraded twice.
  nat.push(['-A', KUBE_POSTROUTING, '-j', 'MARK', '--xor-mark', mark]);
  nat.push(['-A', KUBE_POSTROUTING, '-m', 'comment', '--comment', q('kubernetes service traffic requiring SNAT'), '-j', 'MASQUERADE', ...(cfg.randomFully ? ['--random-fully'] : [])]);
  nat.push(['-A', KUBE_MARK_MASQ, '-j', 'MARK', '--or-mark', mark]);

  const lines = [
    '*nat', ...IPVS_NAT_CHAINS.map((c) => `:${c} - [0:0]`), ...nat.map((r) => r.join(' ')), 'COMMIT',
    '*filter', ...IPVS_FILTER_CHAINS.map((c) => `:${c} - [0:0]`), ...filter.map((r) => r.join(' ')), 'COMMIT',
  ];
  return lines.map((l) => `${l}\n`).join('');
}
