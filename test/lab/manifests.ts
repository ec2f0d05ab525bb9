// Services and EndpointSlices for lab pods, as `kubectl get -o json` prints them, and an
// atomic writer for the file source (write + rename, as an editor or ConfigMap update does).
import { renameSync, writeFileSync } from 'node:fs';
import type { LabPod } from './lab.js';

export interface LabService {
  name: string;
  clusterIP: string;
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
  /** One Service port per protocol, named after it. */
  protocols?: Array<'TCP' | 'UDP'>;
  endpoints: LabPod[];
}

export function serviceObjects(s: LabService): object[] {
  const protocols = s.protocols ?? ['TCP', 'UDP'];
  const service = {
    apiVersion: 'v1', kind: 'Service',
    metadata: { name: s.name, namespace: 'default', uid: `uid-${s.name}`, resourceVersion: '1' },
    spec: {
      type: s.type ?? 'ClusterIP', clusterIP: s.clusterIP, clusterIPs: [s.clusterIP],
      ipFamilies: ['IPv4'], ipFamilyPolicy: 'SingleStack',
      ...(s.affinityTimeoutS
        ? { sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: s.affinityTimeoutS } } }
        : { sessionAffinity: 'None' }),
      internalTrafficPolicy: 'Cluster',
      ...(s.type === 'NodePort' || s.type === 'LoadBalancer' ? { externalTrafficPolicy: s.externalTrafficPolicy ?? 'Cluster' } : {}),
      ...(s.sourceRanges ? { loadBalancerSourceRanges: s.sourceRanges } : {}),
      ports: protocols.map((p) => ({
        name: p.toLowerCase(), protocol: p, port: s.port, targetPort: s.targetPort,
        ...(s.nodePort ? { nodePort: s.nodePort } : {}),
      })),
    },
    status: { loadBalancer: s.loadBalancerIP ? { ingress: [{ ip: s.loadBalancerIP }] } : {} },
  };
  const slice = {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4',
    metadata: {
      name: `${s.name}-abcde`, namespace: 'default', resourceVersion: '1',
      labels: { 'kubernetes.io/service-name': s.name, 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' },
    },
    ports: protocols.map((p) => ({ name: p.toLowerCase(), protocol: p, port: s.targetPort })),
    endpoints: s.endpoints.map((p) => ({
      addresses: [p.ip], conditions: { ready: true, serving: true, terminating: false },
      nodeName: p.node, targetRef: { kind: 'Pod', namespace: 'default', name: p.name },
    })),
  };
  return [service, slice];
}

export function writeSource(path: string, services: LabService[]): void {
  const list = { apiVersion: 'v1', kind: 'List', items: services.flatMap(serviceObjects) };
  writeFileSync(`${path}.tmp`, JSON.stringify(list, null, 2));
  renameSync(`${path}.tmp`, path);
}
