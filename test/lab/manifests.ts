// Services and EndpointSlices for lab pods, as `kubectl get -o json` prints them, and an
// atomic writer for the file source (write + rename, as an editor or ConfigMap update does).
import { renameSync, writeFileSync } from 'node:fs';
import type { LabPod } from './lab.js';

export type LabIPFamily = 'IPv4' | 'IPv6';

export interface LabService {
  name: string;
  /** The primary ClusterIP (spec.clusterIP). */
  clusterIP: string;
  /** Dual-stack: every ClusterIP, the primary first (spec.clusterIPs; default [clusterIP]).
   *  ipFamilies follow them; each family gets an EndpointSlice of its own, of the pods'
   *  addresses in that family (LabPod.ip6 for IPv6: a dualStack lab). */
  clusterIPs?: string[];
  /** Default: SingleStack with one ClusterIP, RequireDualStack with two. */
  ipFamilyPolicy?: 'SingleStack' | 'PreferDualStack' | 'RequireDualStack';
  port: number;
  targetPort: number;
  type?: 'ClusterIP' | 'NodePort' | 'LoadBalancer';
  nodePort?: number;
  /** LoadBalancer: status.loadBalancer.ingress[0].ip, and spec.loadBalancerSourceRanges. */
  loadBalancerIP?: string;
  sourceRanges?: string[];
  /** sessionAffinity ClientIP with this timeout (seconds). */
  affinityTimeoutS?: number;
  externalTrafficPolicy?: 'Cluster' | 'Local';
  /** spec.healthCheckNodePort (a LoadBalancer with externalTrafficPolicy Local). */
  healthCheckNodePort?: number;
  /** One Service port per protocol, named after it. */
  protocols?: Array<'TCP' | 'UDP'>;
  endpoints: LabPod[];
}

const familyOf = (ip: string): LabIPFamily => (ip.includes(':') ? 'IPv6' : 'IPv4');

/** The Service, then one EndpointSlice per IP family (IPv4's named `<name>-abcde`, IPv6's
 *  `<name>-v6xyz`), primary family first, as the EndpointSlice controller makes them. */
export function serviceObjects(s: LabService): object[] {
  const protocols = s.protocols ?? ['TCP', 'UDP'];
  const clusterIPs = s.clusterIPs ?? [s.clusterIP];
  if (clusterIPs[0] !== s.clusterIP) throw new Error(`${s.name}: clusterIPs[0] must be clusterIP ${s.clusterIP}`);
  const ipFamilies = clusterIPs.map(familyOf);
  if (new Set(ipFamilies).size !== ipFamilies.length) throw new Error(`${s.name}: two ClusterIPs of one family`);
  const service = {
    apiVersion: 'v1', kind: 'Service',
    metadata: { name: s.name, namespace: 'default', uid: `uid-${s.name}`, resourceVersion: '1' },
    spec: {
      type: s.type ?? 'ClusterIP', clusterIP: s.clusterIP, clusterIPs,
      ipFamilies, ipFamilyPolicy: s.ipFamilyPolicy ?? (clusterIPs.length > 1 ? 'RequireDualStack' : 'SingleStack'),
      ...(s.affinityTimeoutS
        ? { sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: s.affinityTimeoutS } } }
        : { sessionAffinity: 'None' }),
      internalTrafficPolicy: 'Cluster',
      ...(s.type === 'NodePort' || s.type === 'LoadBalancer' ? { externalTrafficPolicy: s.externalTrafficPolicy ?? 'Cluster' } : {}),
      ...(s.sourceRanges ? { loadBalancerSourceRanges: s.sourceRanges } : {}),
      ...(s.healthCheckNodePort ? { healthCheckNodePort: s.healthCheckNodePort } : {}),
      ports: protocols.map((p) => ({
        name: p.toLowerCase(), protocol: p, port: s.port, targetPort: s.targetPort,
        ...(s.nodePort ? { nodePort: s.nodePort } : {}),
      })),
    },
    status: { loadBalancer: s.loadBalancerIP ? { ingress: [{ ip: s.loadBalancerIP }] } : {} },
  };
  const slice = (addressType: LabIPFamily) => ({
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType,
    metadata: {
      name: `${s.name}-${addressType === 'IPv4' ? 'abcde' : 'v6xyz'}`, namespace: 'default', resourceVersion: '1',
      labels: { 'kubernetes.io/service-name': s.name, 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' },
    },
    ports: protocols.map((p) => ({ name: p.toLowerCase(), protocol: p, port: s.targetPort })),
    endpoints: s.endpoints.map((p) => {
      const address = addressType === 'IPv4' ? p.ip : p.ip6;
      if (!address) throw new Error(`${s.name}: pod ${p.name} has no ${addressType} address (a lab without dualStack?)`);
      return {
        addresses: [address], conditions: { ready: true, serving: true, terminating: false },
        nodeName: p.node, targetRef: { kind: 'Pod', namespace: 'default', name: p.name },
      };
    }),
  });
  return [service, ...ipFamilies.map(slice)];
}

export function writeSource(path: string, services: LabService[]): void {
  const list = { apiVersion: 'v1', kind: 'List', items: services.flatMap(serviceObjects) };
  writeFileSync(`${path}.tmp`, JSON.stringify(list, null, 2));
  renameSync(`${path}.tmp`, path);
}
