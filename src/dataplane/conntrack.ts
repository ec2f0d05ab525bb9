// Which UDP conntrack entries a sync leaves stale (kube-proxy's pkg/proxy/conntrack
// CleanStaleEntries). UDP has no connection end, so an entry pointing at a removed endpoint, or
// created while a service had no endpoint, would keep black-holing its flow. Pure.
import { ipFamilyOf } from '../model/k8s.js';
import { endpointKey } from '../model/endpoints.js';
import type { Endpoint, IPFamily, ProxyState, ServicePort } from '../model/types.js';

export type ConntrackDeletion =
  /** Flows to a service address. */
  | { readonly kind: 'dst'; readonly ip: string }
  /** Flows to a NodePort. */
  | { readonly kind: 'port'; readonly port: number }
  /** Flows to a service address translated to an endpoint. */
  | { readonly kind: 'nat'; readonly dst: string; readonly endpointIP: string }
  /** Flows to a NodePort translated to an endpoint. */
  | { readonly kind: 'port-nat'; readonly port: number; readonly endpointIP: string };

const key = (sp: ServicePort) => `${sp.id}/${sp.protocol}`;
const serving = (eps: readonly Endpoint[]) => eps.filter((ep) => ep.serving);
const sameEndpoint = (a: Endpoint, b: Endpoint) => endpointKey(a) === endpointKey(b) && a.ready === b.ready && a.serving === b.serving && a.terminating === b.terminating && a.isLocal === b.isLocal;

export function staleUdpConntrack(prev: ProxyState | null, next: ProxyState, family: IPFamily): ConntrackDeletion[] {
  if (prev === null) return [];
  const ofFamily = (ip: string) => ipFamilyOf(ip) === family;
  const out = new Map<string, ConntrackDeletion>();
  const add = (d: ConntrackDeletion) => out.set(JSON.stringify(d), d);
  const addresses = (sp: ServicePort) => [...sp.clusterIPs, ...sp.externalIPs, ...sp.loadBalancerIPs].filter(ofFamily);

  const before = new Map(prev.services.filter((sp) => sp.protocol === 'UDP').map((sp) => [key(sp), sp]));
  const after = new Map(next.services.filter((sp) => sp.protocol === 'UDP').map((sp) => [key(sp), sp]));

  for (const [k, old] of before) {
    const cur = after.get(k);
    if (!cur) {
      for (const ip of old.clusterIPs.filter(ofFamily)) add({ kind: 'dst', ip });
      continue;
    }
    const oldEps = serving(old.endpoints).filter((ep) => ofFamily(ep.ip));
    const newEps = cur.endpoints.filter((ep) => ofFamily(ep.ip));
    for (const ep of oldEps) {
      if (newEps.some((n) => sameEndpoint(n, ep))) continue;
      for (const dst of addresses(cur)) add({ kind: 'nat', dst, endpointIP: ep.ip });
      if (cur.nodePort !== null) add({ kind: 'port-nat', port: cur.nodePort, endpointIP: ep.ip });
    }
  }
  for (const [k, cur] of after) {
    const old = before.get(k);
    const hadServing = old ? serving(old.endpoints).some((ep) => ofFamily(ep.ip)) : false;
    const hasServing = serving(cur.endpoints).some((ep) => ofFamily(ep.ip));
    // Newly active: entries made while it had no endpoint (rejected/dropped) would stick.
    if (hadServing || !hasServing) continue;
    for (const ip of addresses(cur)) add({ kind: 'dst', ip });
    if (cur.nodePort !== null) add({ kind: 'port', port: cur.nodePort });
  }
  return [...out.values()];
}
