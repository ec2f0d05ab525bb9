// ProxyState -> the frontends the eBPF dataplane must serve, with their backend lists.
// Pure: no ids, no bytes, no kernel. Ids are the planner's business (plan.ts).
import { isIPv4 } from 'node:net';
import type { Endpoint, ProxyState, ServicePort } from '../../model/types.js';
import {
  BE_LOCAL, BE_TERMINATING, FE_LOCAL_ONLY, FE_NODEPORT, PROTO_NUMBER, SCOPE_EXT, SCOPE_INT,
  type BackendValue, type ConfigValue, type FrontendKey,
} from './maps.js';

export interface EbpfNodeConfig {
  /** The node's IPv4 addresses; the first is the SNAT source. NodePorts answer on those inside
   *  nodePortAddresses. */
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
}

export interface DesiredFrontend {
  readonly id: string; // frontendId(key)
  readonly key: FrontendKey;
  readonly flags: number;
  readonly affinityTimeout: number;
  readonly revNat: { readonly addr: string; readonly port: number };
  readonly backends: readonly BackendValue[]; // sorted by backendId(), so slot order is stable
  readonly service: string; // ServicePort id, for logs and inspect
}

export interface DesiredState {
  readonly frontends: ReadonlyMap<string, DesiredFrontend>;
  readonly config: ConfigValue;
}

export interface CompileProblem { readonly service: string; readonly reason: string }

export const frontendId = (k: FrontendKey): string => `${k.addr}:${k.port}/${k.proto}/${k.scope}`;
export const backendId = (b: { addr: string; port: number }): string => `${b.addr}:${b.port}`;
export const revNatId = (r: { addr: string; port: number }): string => `${r.addr}:${r.port}`;

function backendsOf(endpoints: readonly Endpoint[]): BackendValue[] {
  const byId = new Map<string, BackendValue>();
  for (const ep of endpoints) {
    if (!isIPv4(ep.ip)) continue;
    const flags = (ep.isLocal ? BE_LOCAL : 0) | (ep.terminating ? BE_TERMINATING : 0);
    byId.set(backendId({ addr: ep.ip, port: ep.port }), { addr: ep.ip, port: ep.port, flags });
  }
  return [...byId.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, v]) => v);
}

/** The endpoints each view of a Service uses, as kube-proxy picks them. */
function views(sp: ServicePort): { internal: Endpoint[]; external: Endpoint[]; externalFromPods: Endpoint[] } {
  const internal = sp.internalTrafficPolicy === 'Local' ? sp.localEndpoints : sp.clusterEndpoints;
  const external = sp.externalTrafficPolicy === 'Local' ? sp.localEndpoints : sp.clusterEndpoints;
  // Pods reaching an external address are short-circuited to the cluster-wide set, as
  // kube-proxy's KUBE-EXT chains do, unless the model computed none (both policies Local).
  const externalFromPods = sp.usesClusterEndpoints ? sp.clusterEndpoints : sp.localEndpoints;
  return { internal, external, externalFromPods };
}

export function compile(state: ProxyState, node: EbpfNodeConfig): { desired: DesiredState; problems: CompileProblem[] } {
  const frontends = new Map<string, DesiredFrontend>();
  const problems: CompileProblem[] = [];
  const add = (sp: ServicePort, addr: string, port: number, scope: number, flags: number, eps: Endpoint[]): void => {
    const proto = PROTO_NUMBER[sp.protocol as keyof typeof PROTO_NUMBER];
    const key: FrontendKey = { addr, port, proto, scope };
    const id = frontendId(key);
    const owner = frontends.get(id);
    if (owner) {
      problems.push({ service: sp.id, reason: `${sp.protocol} ${addr}:${port} is already served by ${owner.service}` });
      return;
    }
    frontends.set(id, {
      id, key, flags, service: sp.id,
      affinityTimeout: sp.sessionAffinityTimeoutSeconds ?? 0,
      revNat: { addr, port },
      backends: backendsOf(eps),
    });
  };

  for (const sp of state.services) {
    if (!(sp.protocol in PROTO_NUMBER)) {
      problems.push({ service: sp.id, reason: `protocol ${sp.protocol} is not supported by the eBPF dataplane` });
      continue;
    }
    const v = views(sp);
    const extFlags = FE_NODEPORT | (sp.externalTrafficPolicy === 'Local' ? FE_LOCAL_ONLY : 0);
    for (const ip of sp.clusterIPs.filter((a) => isIPv4(a))) add(sp, ip, sp.port, SCOPE_INT, 0, v.internal);
    const external = [...sp.externalIPs, ...sp.loadBalancerIPs].filter((a) => isIPv4(a));
    for (const ip of external) {
      add(sp, ip, sp.port, SCOPE_EXT, extFlags, v.external);
      add(sp, ip, sp.port, SCOPE_INT, FE_NODEPORT, v.externalFromPods);
    }
    if (sp.nodePort) {
      for (const ip of node.nodeAddresses) {
        add(sp, ip, sp.nodePort, SCOPE_EXT, extFlags, v.external);
        add(sp, ip, sp.nodePort, SCOPE_INT, FE_NODEPORT, v.externalFromPods);
      }
    }
  }
  return { desired: { frontends, config: { nodeAddr: node.nodeAddresses[0] ?? '0.0.0.0', flags: 0 } }, problems };
}
