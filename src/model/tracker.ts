// A change tracker like kube-proxy's ServiceChangeTracker/EndpointsChangeTracker: it keeps the
// current Services and EndpointSlices (as minimal records), remembers per object the record as
// of the last snapshot, drops changes that are undone or change nothing the proxier uses, and
// builds the immutable ProxyState: only the changed Services' ports are rebuilt, the others are
// the previous snapshot's (frozen) objects, and the state names what changed. Pure: no I/O;
// problems go to an injected callback.

import { categorizeEndpoints, collectEndpoints, usesClusterEndpoints, usesLocalEndpoints } from './endpoints.js';
import {
  cidrFamilyOf,
  deepEqual,
  ipFamilyOf,
  objectRef,
  parseEndpointSlice,
  parseService,
  parseServiceCIDR,
  formatProblem,
  type EndpointSliceRecord,
  type Problem,
  type ServiceRecord,
} from './k8s.js';
import type { IPFamily, NodeFacts, ObjectEvent, ObjectKind, ProxyState, ServicePort } from './types.js';

/** A ServicePort's id, "namespace/name:port" (a port name has no colon), and the Service key
 *  ("namespace/name", what ProxyState.changes names) it belongs to. */
export const portId = (namespace: string, name: string, port: string): string => `${namespace}/${name}:${port}`;
export const serviceOfPort = (id: string): string => id.slice(0, id.lastIndexOf(':'));

/** The Services (namespace/name) of `next` that differ from `applied` (the tracker's change
 *  set) and their ports in `next`, or null when the two are not consecutive snapshots: then
 *  everything is rewritten. */
export function changesSince(applied: ProxyState, next: ProxyState): { services: ReadonlySet<string>; ports: readonly ServicePort[] } | null {
  if (next === applied) return { services: new Set(), ports: [] };
  if (applied.generation === undefined || next.changes?.since !== applied.generation) return null;
  return next.changes;
}

/** The Services changesSince names, or null. */
export const changedSince = (applied: ProxyState, next: ProxyState): ReadonlySet<string> | null => changesSince(applied, next)?.services ?? null;

export interface TrackerOptions {
  /** Called for every problem found in an incoming object (the caller logs and counts). */
  onInvalid?: (problem: Problem) => void;
}

type AnyRecord = ServiceRecord | EndpointSliceRecord;

const API_VERSION: Record<ObjectKind, string> = { Service: 'v1', EndpointSlice: 'discovery.k8s.io/v1', ServiceCIDR: 'networking.k8s.io/v1' };

export class ChangeTracker {
  private readonly services = new Map<string, ServiceRecord>(); // "ns/name"
  private readonly slices = new Map<string, EndpointSliceRecord>(); // "ns/sliceName"
  /** "ns/serviceName" -> its slices' keys ("ns/sliceName") */
  private readonly slicesOf = new Map<string, Set<string>>();
  /** Record as of the last snapshot (null = absent), for each object changed since; key "Kind/ns/name". */
  private readonly previous = new Map<string, AnyRecord | null>();
  /** ServiceCIDR name → its valid spec.cidrs. */
  private readonly serviceCIDRs = new Map<string, readonly string[]>();
  private readonly onInvalid: (p: Problem) => void;
  private isSynced = false;
  private last: { node: NodeFacts; state: ProxyState; ports: Map<string, readonly ServicePort[]> } | null = null;
  private generation = 0;

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
    if (e.kind === 'ServiceCIDR') {
      this.updateServiceCIDR(ref.name, e.type === 'DELETED' ? null : obj);
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
    if (e.kind === 'EndpointSlice') this.indexSlice(key, before as EndpointSliceRecord | null, record as EndpointSliceRecord | null);
    if (record === null) store.delete(key);
    else store.set(key, record);
    if (deepEqual(this.previous.get(changeKey), record)) this.previous.delete(changeKey);
    return this.pending();
  }

  /** ServiceCIDRs are cluster-scoped and few; a change to them is a node-level change (every
   *  Service may be affected: dataplanes sync fully). */
  private updateServiceCIDR(name: string, obj: unknown): void {
    if (obj === null) this.serviceCIDRs.delete(name);
    else {
      const parsed = parseServiceCIDR(obj);
      for (const p of parsed.problems) this.onInvalid(p);
      if (parsed.record === null) this.serviceCIDRs.delete(name);
      else this.serviceCIDRs.set(name, parsed.record);
    }
  }

  /** Every ServiceCIDR's cidrs, sorted and unique. */
  private allServiceCIDRs(): string[] {
    return [...new Set([...this.serviceCIDRs.values()].flat())].sort();
  }

  private indexSlice(key: string, before: EndpointSliceRecord | null, after: EndpointSliceRecord | null): void {
    const owner = (s: EndpointSliceRecord) => `${s.namespace}/${s.serviceName}`;
    if (before) {
      const set = this.slicesOf.get(owner(before));
      set?.delete(key);
      if (set?.size === 0) this.slicesOf.delete(owner(before));
    }
    if (after) {
      const set = this.slicesOf.get(owner(after)) ?? new Set();
      this.slicesOf.set(owner(after), set.add(key));
    }
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
    return this.last === null || this.previous.size > 0 || !deepEqual(this.last.state.serviceCIDRs ?? [], this.allServiceCIDRs());
  }

  /** Services and EndpointSlices changed since the last snapshot, undone changes not counted
   *  (kube-proxy's sync_proxy_rules_service/endpoint_changes_pending). */
  pendingChanges(): { services: number; endpointSlices: number } {
    let services = 0;
    for (const changeKey of this.previous.keys()) if (changeKey.startsWith('Service/')) services++;
    return { services, endpointSlices: this.previous.size - services };
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
   *  object is returned again when nothing changed and the node facts are equal; with equal
   *  node facts only the changed Services are rebuilt. */
  snapshot(node: NodeFacts): ProxyState {
    const last = this.last;
    const serviceCIDRs = this.allServiceCIDRs();
    const sameCIDRs = last !== null && deepEqual(last.state.serviceCIDRs ?? [], serviceCIDRs);
    if (last !== null && this.previous.size === 0 && sameCIDRs && deepEqual(last.node, node)) return last.state;
    const generation = ++this.generation;
    let state: ProxyState, ports: Map<string, readonly ServicePort[]>;
    if (last === null || !sameCIDRs || !deepEqual(last.node, node)) {
      ports = new Map();
      for (const [key, svc] of this.services) ports.set(key, this.portsOf(svc, node));
      state = deepFreeze({ services: sortPorts([...ports.values()].flat()), generation, serviceCIDRs });
    } else {
      const changed = new Set(this.changedServices());
      ports = last.ports;
      for (const key of changed) {
        const svc = this.services.get(key);
        if (svc) ports.set(key, this.portsOf(svc, node));
        else ports.delete(key);
      }
      // the previous order without the changed Services, then theirs put in place
      const kept = last.state.services.filter((sp) => !changed.has(`${sp.namespace}/${sp.name}`));
      const fresh = [...changed].flatMap((key) => ports.get(key) ?? []);
      const sorted = sortPorts(fresh);
      state = deepFreeze({ services: mergeSorted(kept, sorted), generation, serviceCIDRs, changes: { since: last.state.generation!, services: changed, ports: sorted } });
    }
    this.previous.clear();
    this.last = { node: deepFreeze(structuredClone(node)), state, ports };
    return state;
  }

  private portsOf(svc: ServiceRecord, node: NodeFacts): ServicePort[] {
    const keys = this.slicesOf.get(`${svc.namespace}/${svc.name}`) ?? [];
    return servicePorts(svc, [...keys].map((k) => this.slices.get(k)!), node);
  }
}

const comparePorts = (a: ServicePort, b: ServicePort): number =>
  a.id < b.id ? -1 : a.id > b.id ? 1 : a.protocol < b.protocol ? -1 : a.protocol > b.protocol ? 1 : 0;
const sortPorts = (list: ServicePort[]): ServicePort[] => list.sort(comparePorts);

/** Two sorted lists as one. */
function mergeSorted(a: readonly ServicePort[], b: readonly ServicePort[]): ServicePort[] {
  const out: ServicePort[] = new Array(a.length + b.length);
  let i = 0, j = 0, k = 0;
  while (i < a.length && j < b.length) out[k++] = comparePorts(a[i]!, b[j]!) <= 0 ? a[i++]! : b[j++]!;
  while (i < a.length) out[k++] = a[i++]!;
  while (j < b.length) out[k++] = b[j++]!;
  return out;
}

/** Objects in list responses carry no kind/apiVersion; the event says what they are. */
function withTypeMeta(e: ObjectEvent): unknown {
  const o = e.object;
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return o;
  const r = o as Record<string, unknown>;
  if (r['kind'] !== undefined) return o;
  return { ...r, kind: e.kind, apiVersion: r['apiVersion'] ?? API_VERSION[e.kind] };
}

/** The ServicePorts of one Service with its EndpointSlices, for one node (none when no ClusterIP
 *  is of a family the node serves). Pure; not frozen. */
function servicePorts(svc: ServiceRecord, svcSlices: readonly EndpointSliceRecord[], node: NodeFacts): ServicePort[] {
  const clusterIPs = svc.clusterIPs.filter((ip) => node.ipFamilies.includes(ipFamilyOf(ip)!));
  if (clusterIPs.length === 0) return []; // not a family this node serves
  const families = clusterIPs.map((ip) => ipFamilyOf(ip)!);
  const inFamilies = (fam: IPFamily | null): boolean => fam !== null && families.includes(fam);
  const externalIPs = svc.externalIPs.filter((ip) => inFamilies(ipFamilyOf(ip)));
  const loadBalancerIPs = svc.loadBalancerIPs.filter((ip) => inFamilies(ipFamilyOf(ip)));
  const loadBalancerSourceRanges = svc.loadBalancerSourceRanges.filter((c) => inFamilies(cidrFamilyOf(c)));
  return svc.ports.map((port) => {
    const externallyAccessible = port.nodePort !== null || externalIPs.length > 0 || loadBalancerIPs.length > 0;
    const uses = {
      usesClusterEndpoints: usesClusterEndpoints(svc.internalTrafficPolicy, externallyAccessible),
      usesLocalEndpoints: usesLocalEndpoints(svc.internalTrafficPolicy, svc.externalTrafficPolicy, externallyAccessible),
    };
    const endpoints = collectEndpoints(port, svcSlices, node, families);
    const cat = categorizeEndpoints(endpoints, uses, node);
    return {
      id: portId(svc.namespace, svc.name, port.name),
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
    };
  });
}

/** Object.freeze, recursively (shared sub-objects are frozen once). */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as object)) deepFreeze(v);
  }
  return value;
}
