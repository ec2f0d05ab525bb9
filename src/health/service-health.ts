// kube-proxy's service health (pkg/proxy/healthcheck/service_health.go), the pure part: which
// healthCheckNodePort listeners a state wants, on which addresses, and what they answer.
import { nodePortDestinations } from '../dataplane/iptables/node-ports.js';
import type { IPFamily, ProxyState } from '../model/types.js';
import { JSON_HEADERS, type HttpAnswer } from './answer.js';

export interface HealthCheckService {
  readonly namespace: string;
  readonly name: string;
  readonly port: number;
  /** Distinct IPs of this node's ready endpoints over all the Service's ports. */
  readonly localEndpoints: number;
}

/** One entry per Service with a healthCheckNodePort (the model sets it only for an externally
 *  reachable Service with externalTrafficPolicy Local), sorted by namespace/name. As kube-proxy's
 *  LocalReadyEndpoints: ready endpoints only (a node left with terminating ones fails the
 *  check, so load balancers drain it), counted by IP (one pod serving two ports is one). */
export function healthCheckServices(state: ProxyState): HealthCheckService[] {
  const byName = new Map<string, { namespace: string; name: string; port: number; ips: Set<string> }>();
  for (const sp of state.services) {
    if (sp.healthCheckNodePort === null) continue;
    const key = `${sp.namespace}/${sp.name}`;
    let s = byName.get(key);
    if (!s) byName.set(key, (s = { namespace: sp.namespace, name: sp.name, port: sp.healthCheckNodePort, ips: new Set() }));
    for (const ep of sp.endpoints) if (ep.isLocal && ep.ready) s.ips.add(ep.ip);
  }
  return [...byName].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, s]) => ({ namespace: s.namespace, name: s.name, port: s.port, localEndpoints: s.ips.size }));
}

const WILDCARD: Record<IPFamily, string> = { IPv4: '0.0.0.0', IPv6: '::' };

/** Where the listeners bind, per family with an address on this host: kube-proxy's
 *  nodePortAddresses (no CIDR of the family, or a zero one: the family's wildcard address;
 *  otherwise the host's addresses inside the CIDRs). */
export function healthCheckAddresses(nodePortAddresses: readonly string[], localAddresses: Readonly<Record<IPFamily, readonly string[]>>): string[] {
  return (['IPv4', 'IPv6'] as const).flatMap((family) => {
    if (localAddresses[family].length === 0) return [];
    const d = nodePortDestinations({ family, nodePortAddresses, localAddresses: localAddresses[family], localhostNodePorts: true });
    return d.matchAll ? [WILDCARD[family]] : [...d.addresses];
  });
}

/** kube-proxy's answer: 200 when the node has a ready local endpoint and the proxy is healthy
 *  (a load balancer must not send traffic to a node whose rules are stale), else 503. */
export function serviceHealthAnswer(svc: Pick<HealthCheckService, 'namespace' | 'name'>, localEndpoints: number, proxyHealthy: boolean): HttpAnswer {
  // kube-proxy prints this tab-indented.
  const body = JSON.stringify({ service: { namespace: svc.namespace, name: svc.name }, localEndpoints, serviceProxyHealthy: proxyHealthy }, null, '\t');
  return { status: localEndpoints > 0 && proxyHealthy ? 200 : 503, headers: JSON_HEADERS, body };
}
