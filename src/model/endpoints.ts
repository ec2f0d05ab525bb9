// Endpoint selection — the one place it happens, with kube-proxy's semantics
// (pkg/proxy/endpointslicecache.go for merging slices, pkg/proxy/topology.go CategorizeEndpoints
// for choosing). Pure functions over plain data.

import { ipFamilyOf, type EndpointSliceRecord } from './k8s.js';
import type { Endpoint, IPFamily, NodeFacts, Protocol } from './types.js';

/** kube-proxy's Endpoint.String(): "ip:port", "[ip]:port" for IPv6. */
export function endpointKey(ep: { ip: string; port: number }): string {
  return ep.ip.includes(':') ? `[${ep.ip}]:${ep.port}` : `${ep.ip}:${ep.port}`;
}

/** Order by the endpoint string, as kube-proxy sorts (so "10.0.0.10:80" < "10.0.0.9:80"). */
export function compareEndpoints(a: { ip: string; port: number }, b: { ip: string; port: number }): number {
  const ka = endpointKey(a);
  const kb = endpointKey(b);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/** kube-proxy's UsesClusterEndpoints: internal policy Cluster, or any external access
 *  (even with externalTrafficPolicy Local, cluster endpoints serve short-circuited traffic). */
export function usesClusterEndpoints(internalTrafficPolicy: 'Cluster' | 'Local', externallyAccessible: boolean): boolean {
  return internalTrafficPolicy !== 'Local' || externallyAccessible;
}

/** kube-proxy's UsesLocalEndpoints. */
export function usesLocalEndpoints(
  internalTrafficPolicy: 'Cluster' | 'Local',
  externalTrafficPolicy: 'Cluster' | 'Local',
  externallyAccessible: boolean,
): boolean {
  return internalTrafficPolicy === 'Local' || (externalTrafficPolicy === 'Local' && externallyAccessible);
}

/**
 * The endpoints of one Service port, merged over the Service's slices: slices of the wanted
 * families only, slice ports matched by name and protocol (the port number comes from the
 * slice, which resolves named target ports), deduplicated by "ip:port" (a local copy wins, as in
 * kube-proxy; otherwise the first in slice-name order), sorted by "ip:port".
 */
export function collectEndpoints(
  port: { name: string; protocol: Protocol },
  slices: readonly EndpointSliceRecord[],
  node: Pick<NodeFacts, 'nodeName'>,
  families: readonly IPFamily[],
): Endpoint[] {
  const byKey = new Map<string, Endpoint>();
  const ordered = [...slices].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const slice of ordered) {
    if (!families.includes(slice.addressType)) continue;
    for (const sp of slice.ports) {
      if (sp.name !== port.name || sp.protocol !== port.protocol) continue;
      for (const e of slice.endpoints) {
        const isLocal = node.nodeName !== '' && e.nodeName === node.nodeName;
        const ep: Endpoint = {
          ip: e.address,
          port: sp.port,
          nodeName: e.nodeName,
          zone: e.zone,
          zoneHints: e.zoneHints,
          nodeHints: e.nodeHints,
          ready: e.ready,
          serving: e.serving,
          terminating: e.terminating,
          isLocal,
        };
        const key = endpointKey(ep);
        if (!byKey.has(key) || isLocal) byKey.set(key, ep);
      }
    }
  }
  return [...byKey.values()].sort(compareEndpoints);
}

export interface EndpointCategories {
  /** Usable Cluster-policy endpoints (topology applied); [] when the port never uses them. */
  clusterEndpoints: Endpoint[];
  /** Usable Local-policy endpoints; [] when the port never uses them. */
  localEndpoints: Endpoint[];
  /** Union of the two. */
  allReachableEndpoints: Endpoint[];
  /** Some usable endpoint exists anywhere in the cluster (even if none is reachable here). */
  hasAnyEndpoints: boolean;
  /** The address families in which hasAnyEndpoints holds (kube-proxy decides it per family). */
  familiesWithEndpoints: IPFamily[];
}

type TopologyMode = '' | 'PreferSameNode' | 'PreferSameZone';

/** Hints apply only when every ready endpoint has them and one names this node/zone. */
export function topologyMode(endpoints: readonly Endpoint[], node: Pick<NodeFacts, 'nodeName' | 'zone'>): TopologyMode {
  let anyReady = false;
  let allNodeHints = true;
  let forNode = false;
  let allZoneHints = true;
  let forZone = false;
  for (const ep of endpoints) {
    if (!ep.ready) continue;
    anyReady = true;
    if (ep.nodeHints === null || ep.nodeHints.length === 0) allNodeHints = false;
    else if (ep.nodeHints.includes(node.nodeName)) forNode = true;
    if (ep.zoneHints === null || ep.zoneHints.length === 0) allZoneHints = false;
    else if (node.zone !== null && ep.zoneHints.includes(node.zone)) forZone = true;
  }
  if (!anyReady) return '';
  if (allNodeHints && forNode) return 'PreferSameNode';
  if (allZoneHints && forZone) return 'PreferSameZone';
  return '';
}

function availableForTopology(ep: Endpoint, mode: TopologyMode, node: Pick<NodeFacts, 'nodeName' | 'zone'>): boolean {
  if (mode === 'PreferSameNode') return ep.nodeHints?.includes(node.nodeName) ?? false;
  if (mode === 'PreferSameZone') return node.zone !== null && (ep.zoneHints?.includes(node.zone) ?? false);
  return true;
}

/** CategorizeEndpoints for endpoints of a single address family. */
function categorizeOneFamily(
  endpoints: readonly Endpoint[],
  uses: { usesClusterEndpoints: boolean; usesLocalEndpoints: boolean },
  node: Pick<NodeFacts, 'nodeName' | 'zone'>,
): EndpointCategories {
  const out: EndpointCategories = { clusterEndpoints: [], localEndpoints: [], allReachableEndpoints: [], hasAnyEndpoints: false, familiesWithEndpoints: [] };
  if (endpoints.length === 0) return out;
  const family = ipFamilyOf(endpoints[0]!.ip);
  const done = (): EndpointCategories => {
    if (out.hasAnyEndpoints && family !== null) out.familiesWithEndpoints = [family];
    return out;
  };

  let mode: TopologyMode = '';
  if (uses.usesClusterEndpoints) {
    mode = topologyMode(endpoints, node);
    out.clusterEndpoints = endpoints.filter((ep) => ep.ready && availableForTopology(ep, mode, node));
    // No ready endpoint anywhere (topology is already ignored when its zone/node has none):
    // fall back to serving+terminating ones.
    if (out.clusterEndpoints.length === 0) out.clusterEndpoints = endpoints.filter((ep) => ep.serving && ep.terminating);
    if (out.clusterEndpoints.length > 0) out.hasAnyEndpoints = true;
  }
  if (!uses.usesLocalEndpoints) {
    out.allReachableEndpoints = out.clusterEndpoints;
    return done();
  }

  let localReady = false;
  let localServingTerminating = false;
  for (const ep of endpoints) {
    if (ep.ready) {
      out.hasAnyEndpoints = true;
      if (ep.isLocal) localReady = true;
    } else if (ep.serving && ep.terminating) {
      out.hasAnyEndpoints = true;
      if (ep.isLocal) localServingTerminating = true;
    }
  }
  if (localReady) out.localEndpoints = endpoints.filter((ep) => ep.isLocal && ep.ready);
  else if (localServingTerminating) out.localEndpoints = endpoints.filter((ep) => ep.isLocal && ep.serving && ep.terminating);

  if (!uses.usesClusterEndpoints) {
    out.allReachableEndpoints = out.localEndpoints;
    return done();
  }
  if (mode === '' && !localServingTerminating) {
    // Cluster endpoints are every ready endpoint, a superset of the local ones.
    out.allReachableEndpoints = out.clusterEndpoints;
    return done();
  }
  out.allReachableEndpoints = mergeEndpoints(out.clusterEndpoints, out.localEndpoints);
  return done();
}

function mergeEndpoints(...lists: (readonly Endpoint[])[]): Endpoint[] {
  const byKey = new Map<string, Endpoint>();
  for (const list of lists) for (const ep of list) byKey.set(endpointKey(ep), ep);
  return [...byKey.values()].sort(compareEndpoints);
}

/**
 * kube-proxy's CategorizeEndpoints. kube-proxy runs one proxier per address family, so the
 * ready → serving+terminating fallback and topology are worked out per family here too, and the
 * results merged (sorted by "ip:port"). `endpoints` are one service port's endpoints.
 */
export function categorizeEndpoints(
  endpoints: readonly Endpoint[],
  uses: { usesClusterEndpoints: boolean; usesLocalEndpoints: boolean },
  node: Pick<NodeFacts, 'nodeName' | 'zone'>,
): EndpointCategories {
  const byFamily = new Map<IPFamily | null, Endpoint[]>();
  for (const ep of endpoints) {
    const fam = ipFamilyOf(ep.ip);
    const list = byFamily.get(fam);
    if (list) list.push(ep);
    else byFamily.set(fam, [ep]);
  }
  if (byFamily.size <= 1) {
    const only = categorizeOneFamily([...endpoints].sort(compareEndpoints), uses, node);
    return only;
  }
  const parts = [...byFamily.values()].map((list) => categorizeOneFamily(list.sort(compareEndpoints), uses, node));
  return {
    clusterEndpoints: mergeEndpoints(...parts.map((p) => p.clusterEndpoints)),
    localEndpoints: mergeEndpoints(...parts.map((p) => p.localEndpoints)),
    allReachableEndpoints: mergeEndpoints(...parts.map((p) => p.allReachableEndpoints)),
    hasAnyEndpoints: parts.some((p) => p.hasAnyEndpoints),
    familiesWithEndpoints: parts.flatMap((p) => p.familiesWithEndpoints),
  };
}
