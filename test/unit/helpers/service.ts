// Builders for model objects in unit tests: a ServicePort with kube-proxy's defaults.
import type { Endpoint, ServicePort } from '../../../src/model/types.js';

export function endpoint(ip: string, port: number, o: Partial<Endpoint> = {}): Endpoint {
  return {
    ip, port, nodeName: o.isLocal ? 'node1' : 'node2', zone: null, zoneHints: null, nodeHints: null,
    ready: true, serving: true, terminating: false, isLocal: false, ...o,
  };
}

export function servicePort(name: string, o: Partial<ServicePort> = {}): ServicePort {
  const eps = o.endpoints ?? [];
  return {
    id: `default/${name}:http`, namespace: 'default', name, portName: 'http',
    type: 'ClusterIP', protocol: 'TCP', port: 80, nodePort: null, families: ['IPv4'],
    clusterIPs: ['10.96.0.10'], externalIPs: [], loadBalancerIPs: [], loadBalancerSourceRanges: [],
    externalTrafficPolicy: 'Cluster', internalTrafficPolicy: 'Cluster',
    sessionAffinityTimeoutSeconds: null, healthCheckNodePort: null,
    externallyAccessible: false, usesClusterEndpoints: true, usesLocalEndpoints: false,
    endpoints: eps, clusterEndpoints: eps, localEndpoints: eps.filter((e) => e.isLocal),
    allReachableEndpoints: eps, hasAnyEndpoints: eps.length > 0, familiesWithEndpoints: eps.length > 0 ? ['IPv4'] : [],
    ...o,
  };
}
