// What a reflector keeps of each object: only the fields the proxier reads (no managedFields,
// no selectors, no pod references), so 10k Services cost kilobytes of fields, not whole
// objects. Pure; the result is plain JSON the tracker parses like the file source's objects.
import { isObj } from '../../model/k8s.js';
import type { NodeInfo, ObjectKind } from '../../model/types.js';

type Obj = Record<string, unknown>;

export type WatchedKind = ObjectKind | 'Node';

/** kube-proxy's topology label, and the trigger-time annotation its programming latency starts at. */
export const ZONE_LABEL = 'topology.kubernetes.io/zone';
export const CHANGE_TRIGGER_ANNOTATION = 'endpoints.kubernetes.io/last-change-trigger-time';

function pick(o: unknown, keys: readonly string[]): Obj | undefined {
  if (!isObj(o)) return undefined;
  const out: Obj = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

function meta(o: Obj, annotations: readonly string[]): Obj {
  const m = isObj(o['metadata']) ? o['metadata'] : {};
  const out = pick(m, ['name', 'namespace', 'resourceVersion', 'uid', 'labels'])!;
  const kept = pick(m['annotations'], annotations);
  if (kept && Object.keys(kept).length) out['annotations'] = kept;
  return out;
}

const SERVICE_SPEC = [
  'type', 'clusterIP', 'clusterIPs', 'ipFamilies', 'ipFamilyPolicy', 'ports', 'externalIPs', 'sessionAffinity',
  'sessionAffinityConfig', 'loadBalancerSourceRanges', 'externalTrafficPolicy', 'internalTrafficPolicy',
  'healthCheckNodePort', 'publishNotReadyAddresses', 'trafficDistribution',
] as const;
const ENDPOINT = ['addresses', 'conditions', 'nodeName', 'zone', 'hints'] as const;

const API_VERSION: Record<WatchedKind, string> = { Service: 'v1', EndpointSlice: 'discovery.k8s.io/v1', Node: 'v1', ServiceCIDR: 'networking.k8s.io/v1' };

/** The object reduced to what kube-xdp uses; kind/apiVersion set (list items carry none). */
export function trimObject(kind: WatchedKind, o: Obj): Obj {
  const base: Obj = { apiVersion: API_VERSION[kind], kind };
  if (kind === 'Service') {
    const status = pick(o['status'], ['loadBalancer']);
    return { ...base, metadata: meta(o, []), spec: pick(o['spec'], SERVICE_SPEC) ?? o['spec'], ...(status?.['loadBalancer'] ? { status } : {}) };
  }
  if (kind === 'EndpointSlice') {
    // Malformed values are kept as they are: the tracker reports them with their field names.
    const eps = o['endpoints'];
    return {
      ...base,
      metadata: meta(o, [CHANGE_TRIGGER_ANNOTATION]),
      addressType: o['addressType'],
      endpoints: Array.isArray(eps) ? eps.map((e) => pick(e, ENDPOINT) ?? e) : eps,
      ports: o['ports'],
    };
  }
  if (kind === 'ServiceCIDR') return { ...base, metadata: meta(o, []), spec: pick(o['spec'], ['cidrs']) ?? o['spec'] };
  const m = meta(o, []);
  const labels = pick(m['labels'], [ZONE_LABEL]);
  const deletion = pick(o['metadata'], ['deletionTimestamp']);
  const taints = (pick(o['spec'], ['taints']) ?? {})['taints'];
  return {
    ...base, metadata: { ...m, labels, ...deletion },
    ...(Array.isArray(taints) ? { spec: { taints: taints.map((t) => pick(t, ['key', 'effect']) ?? t) } } : {}),
    status: { addresses: (pick(o['status'], ['addresses']) ?? {})['addresses'] ?? [] },
  };
}

export function nodeInfo(node: Obj): NodeInfo {
  const m = isObj(node['metadata']) ? node['metadata'] : {};
  const labels = isObj(m['labels']) ? m['labels'] : {};
  const zone = typeof labels[ZONE_LABEL] === 'string' && labels[ZONE_LABEL] !== '' ? (labels[ZONE_LABEL] as string) : null;
  const all = isObj(node['status']) && Array.isArray(node['status']['addresses']) ? (node['status']['addresses'] as unknown[]) : [];
  const of = (type: string) => all.filter((a): a is Obj => isObj(a) && a['type'] === type && typeof a['address'] === 'string').map((a) => a['address'] as string);
  const spec = isObj(node['spec']) ? node['spec'] : {};
  const taints = Array.isArray(spec['taints']) ? spec['taints'].flatMap((t) => (isObj(t) && typeof t['key'] === 'string' ? [t['key']] : [])) : [];
  const deletionTimestamp = typeof m['deletionTimestamp'] === 'string' ? m['deletionTimestamp'] : null;
  return { name: String(m['name'] ?? ''), zone, addresses: [...of('InternalIP'), ...of('ExternalIP')], taints, deletionTimestamp };
}

/** Milliseconds since the epoch of an EndpointSlice's last-change-trigger-time, or null. */
export function changeTriggerTime(o: unknown): number | null {
  const a = isObj(o) && isObj(o['metadata']) && isObj(o['metadata']['annotations']) ? o['metadata']['annotations'][CHANGE_TRIGGER_ANNOTATION] : undefined;
  if (typeof a !== 'string') return null;
  const t = Date.parse(a);
  return Number.isNaN(t) ? null : t;
}
