// ProxyState -> the frontends the eBPF dataplane must serve, with their backend lists.
// Pure: no ids, no bytes, no kernel. Ids are the planner's business (plan.ts).
import { canonicalAddress, cidrContains, cidrString, parseCidr, type Cidr } from '../../model/cidr.js';
import { familyView } from '../../model/family.js';
import type { Endpoint, IPFamily, ProxyState, ServicePort } from '../../model/types.js';
import { serviceOfPort } from '../../model/tracker.js';
import {
  BE_LOCAL, BE_TERMINATING, CFG_FIB_FORWARD, FE_AFFINITY, FE_LOCAL_ONLY, FE_MASQ_ALL, FE_MASQ_LOCAL, FE_MASQ_OFF_CLUSTER, FE_NODEPORT,
  FE_REJECT, FE_SRC_RANGES, PROTO_NAME, PROTO_NUMBER, SCOPE_EXT, SCOPE_HOST, SCOPE_INT,
  type BackendValue, type Config6Value, type ConfigValue, type FrontendKey,
} from './maps.js';

export interface EbpfNodeConfig {
  /** The node's addresses, either family; the first of each family is its SNAT source. NodePorts
   *  answer on those inside nodePortAddresses. */
  readonly nodeAddresses: readonly string[];
  /** kube-proxy's nodePortAddresses (CIDRs); empty or absent: every node address. */
  readonly nodePortAddresses?: readonly string[];
  /** kube-proxy's clusterCIDR (its LocalDetector): traffic to a ClusterIP from outside them is
   *  masqueraded; absent: no detector. */
  readonly clusterCIDRs?: readonly string[];
  /** kube-proxy's masqueradeAll: every Service packet is source-NATed to the node. */
  readonly masqueradeAll?: boolean;
  /** Masquerade external traffic (externalTrafficPolicy Cluster) to local endpoints too, as
   *  kube-proxy does; off by default: kube-xdp keeps the client address where it can. */
  readonly masqueradeLocalEndpoints?: boolean;
  /** --bpf-fib-forward: the programs forward translated packets themselves (kx_fib.h). */
  readonly fibForward?: boolean;
  /** kube-proxy's iptables.localhostNodePorts (default true): the node's own sockets reach
   *  NodePorts on 127.0.0.1 too (IPv4 only, and only where nodePortAddresses allow loopback). */
  readonly localhostNodePorts?: boolean;
  /** Frontends of scope host, for the socket hooks (default true); false when no hook is
   *  attached: no map entry nothing reads. */
  readonly hostScope?: boolean;
}

export interface DesiredFrontend {
  readonly id: string; // frontendId(key)
  readonly key: FrontendKey;
  readonly flags: number;
  readonly affinityTimeout: number;
  readonly revNat: { readonly addr: string; readonly port: number };
  readonly backends: readonly BackendValue[]; // sorted by backendId(), so slot order is stable
  /** The backend set (Service port and view): frontends of one set share one svc_id, its
   *  slots, source ranges and affinity, as every address of a kube-proxy chain does. */
  readonly set: string;
  /** loadBalancerSourceRanges (canonical CIDRs) when FE_SRC_RANGES is set, else []. */
  readonly sourceRanges: readonly string[];
  readonly service: string; // ServicePort id, for logs and inspect
}

export interface DesiredState {
  readonly frontends: ReadonlyMap<string, DesiredFrontend>;
  readonly config: ConfigValue;
  readonly config6: Config6Value;
  /** kx_cluster_cidrs and kx_cluster_cidrs6: the clusterCIDRs, canonical. */
  readonly clusterCIDRs: readonly string[];
}

export interface CompileProblem { readonly service: string; readonly reason: string }

export const frontendId = (k: FrontendKey): string => `${k.addr}:${k.port}/${k.proto}/${k.scope}`;
export const backendId = (b: { addr: string; port: number }): string => `${b.addr}:${b.port}`;
export const revNatId = (r: { addr: string; port: number }): string => `${r.addr}:${r.port}`;

/** IPv6 addresses in the canonical text the maps read back (an IPv4 one is canonical already:
 *  the model validated it). */
const canonical = (ip: string): string => (ip.includes(':') ? canonicalAddress(ip) ?? ip : ip);

function backendsOf(endpoints: readonly Endpoint[]): BackendValue[] {
  const byId = new Map<string, BackendValue>();
  for (const ep of endpoints) {
    const flags = (ep.isLocal ? BE_LOCAL : 0) | (ep.terminating ? BE_TERMINATING : 0);
    const addr = canonical(ep.ip);
    byId.set(backendId({ addr, port: ep.port }), { addr, port: ep.port, flags });
  }
  return [...byId.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, v]) => v);
}

const FAMILIES: readonly IPFamily[] = ['IPv4', 'IPv6'];
/** Packet rewriting choices, meaningless to the socket hooks (no packet to rewrite). */
const PACKET_ONLY_FLAGS = FE_NODEPORT | FE_LOCAL_ONLY | FE_MASQ_ALL | FE_MASQ_OFF_CLUSTER | FE_MASQ_LOCAL;
const BITS: Record<IPFamily, 32 | 128> = { IPv4: 32, IPv6: 128 };
const familyOf = (ip: string): IPFamily => (ip.includes(':') ? 'IPv6' : 'IPv4');
const cidrsOf = (list: readonly string[] | undefined, family: IPFamily): Cidr[] =>
  (list ?? []).map((c) => parseCidr(c)).filter((c): c is Cidr => c !== null && c.bits === BITS[family]);

/**
 * One view of a Service port as kube-proxy's chains treat it: which endpoints, and whether
 * the packet is masqueraded (its KUBE-MARK-MASQ jumps).
 *  - ClusterIP (KUBE-SVC/SVL by internalTrafficPolicy): masqueradeAll, or sources outside the
 *    clusterCIDRs when they are known (its LocalDetector).
 *  - External address from outside the node (KUBE-EXT): externalTrafficPolicy Cluster
 *    masquerades (kube-xdp: only for remote endpoints unless masqueradeLocalEndpoints), Local
 *    keeps the client and uses local endpoints only.
 *  - External address from a pod: with a detector, short-circuited to the cluster-wide set
 *    without masquerade when the policy is Local; otherwise as from outside.
 *  - External address from the node itself (its KUBE-EXT "LOCAL traffic" rules): always the
 *    cluster-wide set, whatever the policy. The socket hooks serve it; masquerade flags do not
 *    matter there (the node's socket already has a node source address).
 */
interface View { readonly name: string; readonly endpoints: readonly Endpoint[]; readonly flags: number }

function views(sp: ServicePort, family: IPFamily, node: EbpfNodeConfig): { cluster: View; external: View; externalFromPods: View; externalFromNode: View } {
  const detector = cidrsOf(node.clusterCIDRs, family).length > 0; // kube-proxy's detector is per family
  const clusterMasq = node.masqueradeAll ? FE_MASQ_ALL : detector ? FE_MASQ_OFF_CLUSTER : 0;
  const internal = sp.internalTrafficPolicy === 'Local' ? sp.localEndpoints : sp.clusterEndpoints;
  const extLocal = sp.externalTrafficPolicy === 'Local';
  const extFlags = extLocal ? FE_NODEPORT | FE_LOCAL_ONLY : FE_NODEPORT | (node.masqueradeLocalEndpoints ? FE_MASQ_LOCAL : 0);
  const external: View = { name: 'external', endpoints: extLocal ? sp.localEndpoints : sp.clusterEndpoints, flags: extFlags };
  // kube-proxy's KUBE-EXT short-circuit for pods (eTP Local with a detector): the cluster-wide
  // set, unless the model computed none (both policies Local).
  const shortCircuit = extLocal && detector;
  const externalFromPods: View = shortCircuit
    ? { name: 'from-pods', endpoints: sp.usesClusterEndpoints ? sp.clusterEndpoints : sp.localEndpoints, flags: 0 }
    : external;
  const clusterWide = sp.usesClusterEndpoints ? sp.clusterEndpoints : sp.localEndpoints;
  const externalFromNode: View = !extLocal ? external : shortCircuit ? externalFromPods : { name: 'from-node', endpoints: clusterWide, flags: 0 };
  return { cluster: { name: 'cluster', endpoints: internal, flags: clusterMasq }, external, externalFromPods, externalFromNode };
}

/** What every Service port's frontends depend on besides the port: the node's addresses. */
interface NodeContext {
  readonly node: EbpfNodeConfig;
  readonly nodeAddresses: readonly string[];
  readonly nodePorts: Record<IPFamily, readonly string[]>;
  readonly hostNodePorts: Record<IPFamily, readonly string[]>;
}

function nodeContext(node: EbpfNodeConfig): NodeContext {
  const nodeAddresses = node.nodeAddresses.map(canonical);
  const nodePortAddresses = (family: IPFamily): string[] => {
    // As kube-proxy's NodePortAddresses: no CIDR of this family means every address of it.
    const cidrs = cidrsOf(node.nodePortAddresses, family);
    return nodeAddresses.filter((ip) => familyOf(ip) === family && (cidrs.length === 0 || cidrs.some((c) => cidrContains(c, ip))));
  };
  const nodePorts = { IPv4: nodePortAddresses('IPv4'), IPv6: nodePortAddresses('IPv6') };
  // kube-proxy's localhost NodePorts: IPv4 only, when nodePortAddresses match all or loopback
  const npCidrs4 = cidrsOf(node.nodePortAddresses, 'IPv4');
  const localhostNodePort = (node.localhostNodePorts ?? true) &&
    (npCidrs4.length === 0 || npCidrs4.some((c) => cidrContains(c, '127.0.0.1')));
  const hostNodePorts = { IPv4: localhostNodePort ? [...nodePorts.IPv4, '127.0.0.1'] : nodePorts.IPv4, IPv6: nodePorts.IPv6 };
  return { node, nodeAddresses, nodePorts, hostNodePorts };
}

/** One Service port's frontends, both families, in the order they claim their keys (a key
 *  claimed twice, here or by another port, is the compiler's to report). */
function frontendsOf(full: ServicePort, ctx: NodeContext): DesiredFrontend[] {
  const { node, nodeAddresses, nodePorts, hostNodePorts } = ctx;
  const out: DesiredFrontend[] = [];
  for (const family of FAMILIES) {
    const sp = familyView(full, family);
    if (!sp) continue;
    const proto = PROTO_NUMBER[sp.protocol];
    // kube-proxy REJECTs when no endpoint exists anywhere (in this family); a view that only
    // lacks local endpoints DROPs.
    const reject = sp.hasAnyEndpoints ? 0 : FE_REJECT;
    const affinity = sp.sessionAffinityTimeoutSeconds !== null ? FE_AFFINITY : 0;
    const ranges = sp.hasAnyEndpoints
      ? cidrsOf(sp.loadBalancerSourceRanges, family).map(cidrString)
      : [];
    // kube-proxy lets a node inside the ranges reach the LB IP with the LB IP as source (a VIP
    // that is local to the node loops back with it).
    const rangeCidrs = ranges.map((r) => parseCidr(r)!);
    const nodeInsideRanges = nodeAddresses.some((ip) => rangeCidrs.some((c) => cidrContains(c, ip)));
    const rangesWithNode = (lbIP: string) => (nodeInsideRanges ? [...ranges, `${lbIP}/${BITS[family]}`] : ranges);
    const add = (ip: string, port: number, scope: number, view: View, sourceRanges: readonly string[] = []): void => {
      if (scope === SCOPE_HOST && node.hostScope === false) return;
      const addr = canonical(ip);
      const key: FrontendKey = { addr, port, proto, scope };
      const backends = backendsOf(view.endpoints);
      out.push({
        id: frontendId(key), key, service: sp.id,
        flags: (scope === SCOPE_HOST ? view.flags & ~PACKET_ONLY_FLAGS : view.flags) | affinity | (backends.length === 0 ? reject : 0) | (sourceRanges.length ? FE_SRC_RANGES : 0),
        affinityTimeout: sp.sessionAffinityTimeoutSeconds ?? 0,
        revNat: { addr, port },
        backends,
        set: `${sp.id}/${sp.protocol}/${family}/${view.name}`,
        sourceRanges,
      });
    };

    const v = views(sp, family, node);
    // The node's sockets reach an LB IP whose source ranges leave the node out nowhere, as
    // kube-proxy's KUBE-FW drops them.
    const lbFromNode: View = ranges.length === 0 || nodeInsideRanges ? v.externalFromNode : { name: 'from-node-denied', endpoints: [], flags: 0 };
    // ClusterIPs answer pods (tc), clients beyond the node (XDP) and the node itself alike.
    for (const ip of sp.clusterIPs) {
      add(ip, sp.port, SCOPE_INT, v.cluster);
      add(ip, sp.port, SCOPE_EXT, v.cluster);
      add(ip, sp.port, SCOPE_HOST, v.cluster);
    }
    for (const ip of sp.externalIPs) {
      add(ip, sp.port, SCOPE_EXT, v.external);
      add(ip, sp.port, SCOPE_INT, v.externalFromPods);
      add(ip, sp.port, SCOPE_HOST, v.externalFromNode);
    }
    for (const ip of sp.loadBalancerIPs) {
      const r = rangesWithNode(ip);
      add(ip, sp.port, SCOPE_EXT, v.external, r);
      add(ip, sp.port, SCOPE_INT, v.externalFromPods, r);
      add(ip, sp.port, SCOPE_HOST, lbFromNode);
    }
    if (sp.nodePort) {
      for (const ip of nodePorts[family]) {
        add(ip, sp.nodePort, SCOPE_EXT, v.external);
        add(ip, sp.nodePort, SCOPE_INT, v.externalFromPods);
      }
      for (const ip of hostNodePorts[family]) add(ip, sp.nodePort, SCOPE_HOST, v.externalFromNode);
    }
  }
  return out;
}

/** Each Service port's frontends, kept while the (immutable, tracker-shared) port object lives:
 *  a sync recompiles only the ports that changed. One per node configuration. */
export type CompileMemo = WeakMap<ServicePort, readonly DesiredFrontend[]>;

/** What a compile produced, with the index compileChanges needs: each Service's frontends. */
export interface Compiled {
  readonly desired: DesiredState;
  readonly problems: CompileProblem[];
  readonly ofService: Map<string, DesiredFrontend[]>;
}

/** The compile of a state from `prev` (the compile of the state the change set starts from):
 * only `changes.ports`, the changed Services' ports, are compiled; `prev`'s frontends map and
 * index are updated in place (prev is handed over), and their frontends are returned too. Null
 * when a full compile is needed: prev had problems (a frontend two ports claim: which one wins
 * depends on every port), or a changed port claims a frontend another port holds. */
export function compileChanges(prev: Compiled, changes: { services: ReadonlySet<string>; ports: readonly ServicePort[] }, node: EbpfNodeConfig, memo: CompileMemo)
  : (Compiled & { readonly changedFrontends: readonly DesiredFrontend[] }) | null {
  if (prev.problems.length > 0) return null;
  const changed = changes.services;
  const ctx = nodeContext(node);
  const fresh = changes.ports.map((sp) => {
    const own = memo.get(sp) ?? frontendsOf(sp, ctx);
    memo.set(sp, own);
    return own;
  });
  const frontends = prev.desired.frontends as Map<string, DesiredFrontend>;
  const gone = [...changed].flatMap((svc) => prev.ofService.get(svc) ?? []);
  for (const fe of gone) frontends.delete(fe.id);
  const added: DesiredFrontend[] = [];
  for (const own of fresh) {
    for (const fe of own) {
      if (frontends.has(fe.id)) { // another port's: put back what was there and start over
        for (const a of added) frontends.delete(a.id);
        for (const g of gone) frontends.set(g.id, g);
        return null;
      }
      frontends.set(fe.id, fe);
      added.push(fe);
    }
  }
  for (const svc of changed) prev.ofService.delete(svc);
  for (const fe of added) {
    const svc = serviceOfPort(fe.service);
    const list = prev.ofService.get(svc);
    if (list) list.push(fe);
    else prev.ofService.set(svc, [fe]);
  }
  return { desired: prev.desired, problems: [], ofService: prev.ofService, changedFrontends: added };
}

export function compile(state: ProxyState, node: EbpfNodeConfig, memo?: CompileMemo): Compiled {
  const frontends = new Map<string, DesiredFrontend>();
  const ofService = new Map<string, DesiredFrontend[]>();
  const problems: CompileProblem[] = [];
  const ctx = nodeContext(node);
  for (const sp of state.services) {
    let own = memo?.get(sp);
    if (!own) {
      own = frontendsOf(sp, ctx);
      memo?.set(sp, own);
    }
    const svc = `${sp.namespace}/${sp.name}`;
    for (const fe of own) {
      const owner = frontends.get(fe.id);
      if (!owner) {
        frontends.set(fe.id, fe);
        const list = ofService.get(svc);
        if (list) list.push(fe);
        else ofService.set(svc, [fe]);
        continue;
      }
      const reason = `${PROTO_NAME[fe.key.proto]} ${fe.key.addr}:${fe.key.port} is already served by ${owner.service}`;
      if (!problems.some((p) => p.service === fe.service && p.reason === reason)) problems.push({ service: fe.service, reason });
    }
  }
  return {
    desired: {
      frontends,
      config: { nodeAddr: ctx.nodeAddresses.find((ip) => familyOf(ip) === 'IPv4') ?? '0.0.0.0', flags: node.fibForward ? CFG_FIB_FORWARD : 0 },
      config6: { nodeAddr: ctx.nodeAddresses.find((ip) => familyOf(ip) === 'IPv6') ?? '::' },
      clusterCIDRs: FAMILIES.flatMap((f) => cidrsOf(node.clusterCIDRs, f).map(cidrString)),
    },
    problems,
    ofService,
  };
}
