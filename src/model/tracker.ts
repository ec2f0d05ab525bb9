// A change tracker like kube-proxy's ServiceChangeTracker/EndpointsChangeTracker: it keeps the
// current Services and EndpointSlices (as minimal records), remembers per object the record as
// of the last snapshot, drops changes that are undone or change nothing the proxier uses, and
// builds the immutable ProxyState. Pure: no I/O; problems go to an injected callback.

import { categorizeEndpoints, collectEndpoints, usesClusterEndpoints, usesLocalEndpoints } from './endpoints.js';
import {
  cidrFamilyOf,
  deepEqual,
  ipFamilyOf,
  objectRef,
  parseEndpointSlice,
  parseService,
  formatProblem,
  type EndpointSliceRecord,
  type Problem,
  type ServiceRecord,
} from './k8s.js';
import type { IPFamily, NodeFacts, ObjectEvent, ObjectKind, ProxyState, ServicePort } from './types.js';

export interface TrackerOptions {
  /** Called for every problem found in an incoming object (the caller logs and counts). */
  onInvalid?: (problem: Problem) => void;
}

type AnyRecord = ServiceRecord | EndpointSliceRecord;

const API_VERSION: Record<ObjectKind, string> = { Service: 'v1', EndpointSlice: 'discovery.k8s.io/v1' };

export class ChangeTracker {
  private readonly services = new Map<string, ServiceRecord>(); // "ns/name"
  private readonly slices = new Map<string, EndpointSliceRecord>(); // "ns/sliceName"
  /** Record as of the last snapshot (null = absent), for each object changed since; key "Kind/ns/name". */
  private readonly previous = new Map<string, AnyRecord | null>();
  private readonly onInvalid: (p: Problem) => void;
  private isSynced = false;
  private last: { node: NodeFacts; state: ProxyState } | null = null;

  constructor(opts: TrackerOptions = {}) {
    this.onInvalid = opts.onInvalid ?? (() => {});
  }

  /** Apply one watch event. Returns pending(). Never throws on bad input. */
  update(e: ObjectEvent): boolean {
    const obj = withTypeMeta(e);
    const ref = objectRef(obj);
    if (ref === null) {
      const p = { kind: e.kind, namespace: '', name: '<unnamed>', field: 'metadata.name', value: undefined, reason: 'is required', action: 'rejected' as const };
      this.onInvalid({ ...p, text: formatProblem(p) });
      return this.pending();
    }
    const key = `${ref.namespace}/${ref.name}`;
    let record: AnyRecord | null = null;
    if (e.type !== 'DELETED') {
      const parsed = e.kind === 'Service' ? parseService(obj) : parseEndpointSlice(obj);
      for (const p of parsed.problems) this.onInvalid(p);
      record = parsed.record; // rejected or not proxied (headless, FQDN): treated as absent
    }
    const store: Map<string, AnyRecord> = e.kind === 'Service' ? this.services : this.slices;
    const changeKey = `${e.kind}/${key}`;
    const before = store.get(key) ?? null;
    if (!this.previous.has(changeKey)) this.previous.set(changeKey, before);
    if (record === null) store.delete(key);
    else store.set(key, record);
    if (deepEqual(this.previous.get(changeKey), record)) this.previous.delete(changeKey);
    return this.pending();
  }

  /** The source has delivered its initial list. */
  markSynced(): void {
    this.isSynced = true;
  }

  synced(): boolean {
    return this.isSynced;
  }

  /** Whether a snapshot now would differ from the last one (true before the first snapshot). */
  pending(): boolean {
    return this.last === null || this.previous.size > 0;
  }

  /** "namespace/name" of every Service whose Service or EndpointSlices changed since the last snapshot. */
  changedServices(): string[] {
    const out = new Set<string>();
    for (const [changeKey, prev] of this.previous) {
      const [kind, ...rest] = changeKey.split('/');
      const key = rest.join('/');
      if (kind === 'Service') out.add(key);
      else {
        const ns = key.slice(0, key.indexOf('/'));
        const cur = this.slices.get(key);
        if (prev) out.add(`${ns}/${(prev as EndpointSliceRecord).serviceName}`);
        if (cur) out.add(`${ns}/${cur.serviceName}`);
      }
    }
    return [...out].sort();
  }

  /** Build the immutable state for this node and mark every change as applied. The same state
   *  object is returned again when nothing changed and the node facts are equal. */
  snapshot(node: NodeFacts): ProxyState {
    if (this.last !== null && this.previous.size === 0 && deepEqual(this.last.node, node)) return this.last.state;
    const state = buildProxyState(this.services.values(), this.slices.values(), node);
    this.previous.clear();
    this.last = { node: deepFreeze(structuredClone(node)), state };
    return state;
  }
}

/** Objects in list responses carry no kind/apiVersion; the event says what they are. */
function withTypeMeta(e: ObjectEvent): unknown {
  const o = e.object;
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return o;
  const r = o as Record<string, unknown>;
  if (r['kind'] !== undefined) return o;
  return { ...r, kind: e.kind, apiVersion: r['apiVersion'] ?? API_VERSION[e.kind] };
}

/** ProxyState from Service and EndpointSlice records, for one node. Pure; result deeply frozen. */
export function buildProxyState(
  services: Iterable<ServiceRecord>,
  slices: Iterable<EndpointSliceRecord>,
  node: NodeFacts,
): ProxyState {
  const slicesByService = new Map<string, EndpointSliceRecord[]>();
  for (const s of slices) {
    const key = `${s.namespace}/${s.serviceName}`;
    const list = slicesByService.get(key);
    if (list) list.push(s);
    else slicesByService.set(key, [s]);
  }

  const out: ServicePort[] = [];
  for (const svc of services) {
    const clusterIPs = svc.clusterIPs.filter((ip) => node.ipFamilies.includes(ipFamilyOf(ip)!));
    if (clusterIPs.length === 0) continue; // not a family this node serves
    const families = clusterIPs.map((ip) => ipFamilyOf(ip)!);
    const inFamilies = (fam: IPFamily | null): boolean => fam !== null && families.includes(fam);
    const externalIPs = svc.externalIPs.filter((ip) => inFamilies(ipFamilyOf(ip)));
    const loadBalancerIPs = svc.loadBalancerIPs.filter((ip) => inFamilies(ipFamilyOf(ip)));
    const loadBalancerSourceRanges = svc.loadBalancerSourceRanges.filter((c) => inFamilies(cidrFamilyOf(c)));
    const svcSlices = slicesByService.get(`${svc.namespace}/${svc.name}`) ?? [];

    for (const port of svc.ports) {
      const externallyAccessible = port.nodePort !== null || externalIPs.length > 0 || loadBalancerIPs.length > 0;
      const uses = {
        usesClusterEndpoints: usesClusterEndpoints(svc.internalTrafficPolicy, externallyAccessible),
        usesLocalEndpoints: usesLocalEndpoints(svc.internalTrafficPolicy, svc.externalTrafficPolicy, externallyAccessible),
      };
      const endpoints = collectEndpoints(port, svcSlices, node, families);
      const cat = categorizeEndpoints(endpoints, uses, node);
      out.push({
        id: `${svc.namespace}/${svc.name}:${port.name}`,
        namespace: svc.namespace,
        name: svc.name,
        portName: port.name,
        type: svc.type,
        protocol: port.protocol,
        port: port.port,
        nodePort: port.nodePort,
        families,
        clusterIPs,
        externalIPs,
        loadBalancerIPs,
        loadBalancerSourceRanges,
        externalTrafficPolicy: svc.externalTrafficPolicy,
        internalTrafficPolicy: svc.internalTrafficPolicy,
        sessionAffinityTimeoutSeconds: svc.sessionAffinityTimeoutSeconds,
        healthCheckNodePort: svc.healthCheckNodePort,
        externallyAccessible,
        ...uses,
        endpoints,
        ...cat,
      });
    }
  }
  out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : a.protocol < b.protocol ? -1 : a.protocol > b.protocol ? 1 : 0));
  return deepFreeze({ services: out });
}

/** Object.freeze, recursively (shared sub-objects are frozen once). */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as object)) deepFreeze(v);
  }
  return value;
}
