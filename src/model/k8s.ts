// Parse and validate v1 Service and discovery.k8s.io/v1 EndpointSlice objects (raw JSON, as
// `kubectl get -o json|yaml` prints them) into the minimal records the proxier needs.
// Pure: problems are returned, never thrown or logged here.

import { isIP } from 'node:net';
import { cidrString, parseCidr } from './cidr.js';
import type { IPFamily, Protocol } from './types.js';

export type ProblemAction = 'rejected' | 'skipped' | 'dropped' | 'ignored';

/** One validation problem. `text` is the ready-to-log line, e.g.
 *  `Service default/web: spec.ports[0].port: 70000 is not a valid port (port skipped)`. */
export interface Problem {
  kind: string;
  namespace: string;
  name: string;
  /** Field path, e.g. `spec.ports[0].port`. */
  field: string;
  value: unknown;
  reason: string;
  /** What happened: the object was rejected, a port skipped, an endpoint/address dropped, a value ignored. */
  action: ProblemAction;
  text: string;
}

export interface ServicePortRecord {
  name: string;
  protocol: Protocol;
  port: number;
  nodePort: number | null;
}

export interface ServiceRecord {
  namespace: string;
  name: string;
  type: 'ClusterIP' | 'NodePort' | 'LoadBalancer';
  /** All families, primary first (spec.clusterIPs, or spec.clusterIP for old objects). */
  clusterIPs: string[];
  externalIPs: string[];
  /** VIP-mode load-balancer ingress IPs. */
  loadBalancerIPs: string[];
  loadBalancerSourceRanges: string[];
  /** Effective: Local only for an externally reachable Service (NodePort, LoadBalancer, externalIPs). */
  externalTrafficPolicy: 'Cluster' | 'Local';
  internalTrafficPolicy: 'Cluster' | 'Local';
  sessionAffinityTimeoutSeconds: number | null;
  /** Only for LoadBalancer + externalTrafficPolicy Local. */
  healthCheckNodePort: number | null;
  /** Sorted by name. Names are unique. */
  ports: ServicePortRecord[];
}

export interface SlicePortRecord {
  name: string;
  protocol: Protocol;
  port: number;
}

export interface SliceEndpointRecord {
  /** addresses[0]; the other addresses are ignored, as kube-proxy does. */
  address: string;
  nodeName: string | null;
  zone: string | null;
  zoneHints: string[] | null;
  nodeHints: string[] | null;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
}

export interface EndpointSliceRecord {
  namespace: string;
  name: string;
  /** The `kubernetes.io/service-name` label. */
  serviceName: string;
  addressType: IPFamily;
  /** Sorted by port number (then name). */
  ports: SlicePortRecord[];
  /** Sorted by address. */
  endpoints: SliceEndpointRecord[];
}

/** `record` is null when the object was rejected or produces nothing for the proxier
 *  (headless / ExternalName Service, FQDN EndpointSlice). */
export interface Parsed<T> {
  record: T | null;
  problems: Problem[];
}

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
export const DEFAULT_AFFINITY_TIMEOUT_SECONDS = 10800;
const MAX_AFFINITY_TIMEOUT_SECONDS = 86400;

// ---- small helpers ----------------------------------------------------------------------

type Obj = Record<string, unknown>;

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** IPv4/IPv6 family of a plain address (no zone, no surrounding spaces), or null. */
export function ipFamilyOf(ip: string): IPFamily | null {
  if (typeof ip !== 'string' || ip.includes('%')) return null;
  const v = isIP(ip);
  return v === 4 ? 'IPv4' : v === 6 ? 'IPv6' : null;
}

/** Family of a CIDR "addr/prefix", or null when it is not one. */
export function cidrFamilyOf(cidr: string): IPFamily | null {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(cidr);
  if (!m) return null;
  const fam = ipFamilyOf(m[1]!);
  const bits = Number(m[2]);
  if (fam === null || bits > (fam === 'IPv4' ? 32 : 128)) return null;
  return fam;
}

export function isValidPort(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535;
}

/** Structural equality of plain JSON-like data. */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => deepEqual(x, bb[i]));
  }
  const ao = a as Obj;
  const bo = b as Obj;
  const ak = Object.keys(ao).filter((k) => ao[k] !== undefined);
  const bk = Object.keys(bo).filter((k) => bo[k] !== undefined);
  return ak.length === bk.length && ak.every((k) => Object.prototype.hasOwnProperty.call(bo, k) && deepEqual(ao[k], bo[k]));
}

/** namespace/name of a raw object (namespace defaults to "default"), or null without a name. */
export function objectRef(obj: unknown): { namespace: string; name: string } | null {
  const meta = isObj(obj) ? obj['metadata'] : undefined;
  if (!isObj(meta)) return null;
  const name = meta['name'];
  if (typeof name !== 'string' || name === '') return null;
  const ns = meta['namespace'];
  return { namespace: typeof ns === 'string' && ns !== '' ? ns : 'default', name };
}

/** Longest user value quoted in a problem or a log line: a 50 MB field must not become a
 * 50 MB log line. */
export const MAX_QUOTED = 200;

/** `s` cut to MAX_QUOTED characters, saying how long it was. */
export function clip(s: string, max = MAX_QUOTED): string {
  return s.length <= max ? s : `${s.slice(0, max)}…(${s.length} chars)`;
}

/** A value as a problem carries it: strings clipped, structures clipped as JSON when long. */
function displayValue(v: unknown): unknown {
  if (typeof v === 'string') return clip(v);
  if (v === null || typeof v !== 'object') return v;
  try {
    const s = JSON.stringify(v);
    return s.length > MAX_QUOTED ? clip(s) : v;
  } catch {
    return String(v);
  }
}

function showValue(v: unknown): string {
  if (v === undefined) return '<missing>';
  try {
    return JSON.stringify(v);
  } catch {
    return String(v);
  }
}

// Object names as the API server validates them (apimachinery's validation package).
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
type NameRule = { readonly re: RegExp; readonly max: number; readonly what: string };
const NAMESPACE_RULE: NameRule = { re: DNS1123_LABEL, max: 63, what: 'a DNS-1123 label (lower-case alphanumerics and "-", at most 63)' };
const SERVICE_NAME_RULE: NameRule = { re: DNS1035_LABEL, max: 63, what: 'a DNS-1035 label (a lower-case letter, then lower-case alphanumerics and "-", at most 63)' };
const SLICE_NAME_RULE: NameRule = { re: DNS1123_SUBDOMAIN, max: 253, what: 'a DNS-1123 subdomain (lower-case alphanumerics, "-" and ".", at most 253)' };
const nameOk = (v: string, r: NameRule) => v.length <= r.max && r.re.test(v);

const ACTION_TEXT: Record<ProblemAction, string> = {
  rejected: 'object rejected',
  skipped: 'port skipped',
  dropped: 'dropped',
  ignored: 'ignored',
};

/** The log line of a problem whose namespace, name and value are already clipped. */
export function formatProblem(p: Omit<Problem, 'text'>): string {
  return `${p.kind} ${p.namespace}/${p.name}: ${p.field}: ${showValue(p.value)} ${p.reason} (${ACTION_TEXT[p.action]})`;
}

class Problems {
  readonly list: Problem[] = [];
  constructor(readonly kind: string, readonly namespace: string, readonly name: string) {}
  add(field: string, value: unknown, reason: string, action: ProblemAction): void {
    const p = { kind: this.kind, namespace: clip(this.namespace), name: clip(this.name), field, value: displayValue(value), reason, action };
    this.list.push({ ...p, text: formatProblem(p) });
  }
  reject(field: string, value: unknown, reason: string): Parsed<never> {
    this.add(field, value, reason, 'rejected');
    return { record: null, problems: this.list };
  }
}

/** Common checks: an object with apiVersion/kind and a valid metadata.name/namespace. */
function start(obj: unknown, kind: string, apiVersion: string, nameRule: NameRule): { p: Problems; o: Obj } | Parsed<never> {
  const ref = objectRef(obj);
  const p = new Problems(kind, ref?.namespace ?? 'default', ref?.name ?? '<unnamed>');
  if (!isObj(obj)) return p.reject('(object)', obj, 'is not an object');
  if (obj['kind'] !== kind) return p.reject('kind', obj['kind'], `is not ${kind}`);
  if (obj['apiVersion'] !== apiVersion) return p.reject('apiVersion', obj['apiVersion'], `is not ${apiVersion}`);
  if (ref === null) return p.reject('metadata.name', isObj(obj['metadata']) ? obj['metadata']['name'] : undefined, 'is required');
  if (!nameOk(ref.name, nameRule)) return p.reject('metadata.name', ref.name, `is not ${nameRule.what}`);
  if (!nameOk(ref.namespace, NAMESPACE_RULE)) return p.reject('metadata.namespace', ref.namespace, `is not ${NAMESPACE_RULE.what}`);
  return { p, o: obj };
}

function protocolOf(v: unknown): Protocol | null {
  if (v === undefined || v === null) return 'TCP';
  return v === 'TCP' || v === 'UDP' || v === 'SCTP' ? v : null;
}

/** name ("" when missing), protocol (TCP when missing) and port of a Service or
 * EndpointSlice port; null, with the problem reported, when the port cannot be used. */
function portBasics(p: Problems, raw: Record<string, unknown>, f: string): { name: string; protocol: Protocol; port: number } | null {
  const name = raw['name'] ?? '';
  if (typeof name !== 'string') {
    p.add(`${f}.name`, name, 'is not a string', 'skipped');
    return null;
  }
  const protocol = protocolOf(raw['protocol']);
  if (protocol === null) {
    p.add(`${f}.protocol`, raw['protocol'], 'is not TCP, UDP or SCTP', 'skipped');
    return null;
  }
  const port = raw['port'];
  if (!isValidPort(port)) {
    p.add(`${f}.port`, port, 'is not a valid port', 'skipped');
    return null;
  }
  return { name, protocol, port };
}

function arrayAt(p: Problems, v: unknown, field: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (Array.isArray(v)) return v;
  p.add(field, v, 'is not a list', 'ignored');
  return [];
}

function optString(v: unknown): string | null {
  return typeof v === 'string' && v !== '' ? v : null;
}

function hintNames(v: unknown): string[] | null {
  if (!Array.isArray(v)) return null;
  const names = [...new Set(v.map((h) => (isObj(h) ? h['name'] : undefined)).filter((n): n is string => typeof n === 'string' && n !== ''))];
  return names.length > 0 ? names.sort() : null;
}

function boolOr(v: unknown, dflt: boolean): boolean {
  return typeof v === 'boolean' ? v : dflt;
}

// ---- Service ----------------------------------------------------------------------------

export function parseService(obj: unknown): Parsed<ServiceRecord> {
  const s = start(obj, 'Service', 'v1', SERVICE_NAME_RULE);
  if (!('p' in s)) return s;
  const { p, o } = s;
  const ref = objectRef(o)!;
  const spec = isObj(o['spec']) ? o['spec'] : {};

  const rawType = spec['type'] ?? 'ClusterIP';
  if (rawType === 'ExternalName') return { record: null, problems: p.list };
  if (rawType !== 'ClusterIP' && rawType !== 'NodePort' && rawType !== 'LoadBalancer') {
    return p.reject('spec.type', rawType, 'is not a valid Service type');
  }
  const type = rawType;

  // Cluster IPs: headless → nothing to proxy; missing or invalid → rejected.
  const rawIPs = Array.isArray(spec['clusterIPs']) && spec['clusterIPs'].length > 0 ? spec['clusterIPs'] : undefined;
  const clusterIP = spec['clusterIP'];
  if (clusterIP === 'None' || rawIPs?.[0] === 'None') return { record: null, problems: p.list };
  if (rawIPs === undefined && (clusterIP === undefined || clusterIP === null || clusterIP === '')) {
    return p.reject('spec.clusterIP', clusterIP ?? undefined, 'is required (allocated by the API server; "None" for headless)');
  }
  const ipList = rawIPs ?? [clusterIP];
  const field = rawIPs ? 'spec.clusterIPs' : 'spec.clusterIP';
  const seen = new Set<IPFamily>();
  for (const [i, ip] of ipList.entries()) {
    const fam = typeof ip === 'string' ? ipFamilyOf(ip) : null;
    const f = rawIPs ? `${field}[${i}]` : field;
    if (fam === null) return p.reject(f, ip, 'is not a valid IP address');
    if (seen.has(fam)) return p.reject(f, ip, `repeats the ${fam} family`);
    seen.add(fam);
  }
  if (rawIPs && typeof clusterIP === 'string' && clusterIP !== '' && clusterIP !== rawIPs[0]) {
    return p.reject('spec.clusterIP', clusterIP, `does not match spec.clusterIPs[0] ${JSON.stringify(rawIPs[0])}`);
  }
  const clusterIPs = ipList as string[];

  // Policies and affinity: values the API server would refuse reject the object rather than guess.
  const etpRaw = spec['externalTrafficPolicy'];
  let etp: 'Cluster' | 'Local';
  if (etpRaw === undefined || etpRaw === null || etpRaw === '' || etpRaw === 'Cluster' || etpRaw === 'Global') etp = 'Cluster';
  else if (etpRaw === 'Local') etp = 'Local';
  else return p.reject('spec.externalTrafficPolicy', etpRaw, 'is not Cluster or Local');
  const itpRaw = spec['internalTrafficPolicy'];
  let itp: 'Cluster' | 'Local';
  if (itpRaw === undefined || itpRaw === null || itpRaw === '' || itpRaw === 'Cluster') itp = 'Cluster';
  else if (itpRaw === 'Local') itp = 'Local';
  else return p.reject('spec.internalTrafficPolicy', itpRaw, 'is not Cluster or Local');

  let affinity: number | null = null;
  const sa = spec['sessionAffinity'];
  if (sa === 'ClientIP') {
    const cfg = spec['sessionAffinityConfig'];
    const t = isObj(cfg) && isObj(cfg['clientIP']) ? cfg['clientIP']['timeoutSeconds'] : undefined;
    if (t === undefined || t === null) affinity = DEFAULT_AFFINITY_TIMEOUT_SECONDS;
    else if (typeof t === 'number' && Number.isInteger(t) && t >= 1 && t <= MAX_AFFINITY_TIMEOUT_SECONDS) affinity = t;
    else return p.reject('spec.sessionAffinityConfig.clientIP.timeoutSeconds', t, `is not an integer in 1..${MAX_AFFINITY_TIMEOUT_SECONDS}`);
  } else if (sa !== undefined && sa !== null && sa !== '' && sa !== 'None') {
    return p.reject('spec.sessionAffinity', sa, 'is not None or ClientIP');
  }

  const externalIPs: string[] = [];
  for (const [i, ip] of arrayAt(p, spec['externalIPs'], 'spec.externalIPs').entries()) {
    if (typeof ip === 'string' && ipFamilyOf(ip) !== null) externalIPs.push(ip);
    else p.add(`spec.externalIPs[${i}]`, ip, 'is not a valid IP address', 'ignored');
  }

  const loadBalancerSourceRanges: string[] = [];
  for (const [i, r] of arrayAt(p, spec['loadBalancerSourceRanges'], 'spec.loadBalancerSourceRanges').entries()) {
    const cidr = typeof r === 'string' ? r.trim() : '';
    if (cidrFamilyOf(cidr) !== null) loadBalancerSourceRanges.push(cidr);
    else p.add(`spec.loadBalancerSourceRanges[${i}]`, r, 'is not a valid CIDR', 'ignored');
  }

  const loadBalancerIPs: string[] = [];
  const status = isObj(o['status']) ? o['status'] : {};
  const lb = isObj(status['loadBalancer']) ? status['loadBalancer'] : {};
  for (const [i, ing] of arrayAt(p, lb['ingress'], 'status.loadBalancer.ingress').entries()) {
    if (!isObj(ing)) continue;
    const ip = ing['ip'];
    if (ip === undefined || ip === null || ip === '') continue; // hostname-only ingress
    if (ing['ipMode'] === 'Proxy') continue; // the load balancer proxies; no VIP rules
    if (typeof ip === 'string' && ipFamilyOf(ip) !== null) loadBalancerIPs.push(ip);
    else p.add(`status.loadBalancer.ingress[${i}].ip`, ip, 'is not a valid IP address', 'ignored');
  }

  // kube-proxy's apiservice.ExternalPolicyLocal / NeedsHealthCheck.
  const externallyAccessible = type !== 'ClusterIP' || externalIPs.length > 0;
  const externalTrafficPolicy = externallyAccessible ? etp : 'Cluster';
  let healthCheckNodePort: number | null = null;
  if (type === 'LoadBalancer' && externalTrafficPolicy === 'Local') {
    const h = spec['healthCheckNodePort'];
    if (isValidPort(h)) healthCheckNodePort = h;
    else p.add('spec.healthCheckNodePort', h, 'is not a valid port (required for a LoadBalancer with externalTrafficPolicy Local)', 'ignored');
  }

  const ports: ServicePortRecord[] = [];
  const names = new Set<string>();
  for (const [i, raw] of arrayAt(p, spec['ports'], 'spec.ports').entries()) {
    const f = `spec.ports[${i}]`;
    if (!isObj(raw)) {
      p.add(f, raw, 'is not an object', 'skipped');
      continue;
    }
    const basic = portBasics(p, raw, f);
    if (basic === null) continue;
    const { name, protocol } = basic;
    if (names.has(name)) {
      p.add(`${f}.name`, name, 'repeats an earlier port name', 'skipped');
      continue;
    }
    let nodePort: number | null = null;
    const np = raw['nodePort'];
    if (type !== 'ClusterIP' && np !== undefined && np !== null && np !== 0) {
      if (!isValidPort(np)) {
        p.add(`${f}.nodePort`, np, 'is not a valid port', 'skipped');
        continue;
      }
      nodePort = np;
    }
    names.add(name);
    ports.push({ name, protocol, port: basic.port, nodePort });
  }
  ports.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  return {
    record: {
      namespace: ref.namespace,
      name: ref.name,
      type,
      clusterIPs,
      externalIPs,
      loadBalancerIPs,
      loadBalancerSourceRanges,
      externalTrafficPolicy,
      internalTrafficPolicy: itp,
      sessionAffinityTimeoutSeconds: affinity,
      healthCheckNodePort,
      ports,
    },
    problems: p.list,
  };
}

// ---- EndpointSlice ----------------------------------------------------------------------

export function parseEndpointSlice(obj: unknown): Parsed<EndpointSliceRecord> {
  const s = start(obj, 'EndpointSlice', 'discovery.k8s.io/v1', SLICE_NAME_RULE);
  if (!('p' in s)) return s;
  const { p, o } = s;
  const ref = objectRef(o)!;
  const meta = o['metadata'] as Obj;
  const labels = isObj(meta['labels']) ? meta['labels'] : {};
  const serviceName = labels[SERVICE_NAME_LABEL];
  if (typeof serviceName !== 'string' || serviceName === '') {
    return p.reject(`metadata.labels["${SERVICE_NAME_LABEL}"]`, serviceName, 'is required');
  }

  const at = o['addressType'];
  if (at === 'FQDN') return { record: null, problems: p.list };
  if (at !== 'IPv4' && at !== 'IPv6') return p.reject('addressType', at, 'is not IPv4, IPv6 or FQDN');
  const addressType: IPFamily = at;

  const ports: SlicePortRecord[] = [];
  for (const [i, raw] of arrayAt(p, o['ports'], 'ports').entries()) {
    const f = `ports[${i}]`;
    if (!isObj(raw)) {
      p.add(f, raw, 'is not an object', 'skipped');
      continue;
    }
    // kube-proxy skips a nil name; a hand-written slice usually omits it for an unnamed
    // Service port, so a missing name counts as "" here (portBasics).
    const basic = portBasics(p, raw, f);
    if (basic !== null) ports.push(basic);
  }
  ports.sort((a, b) => a.port - b.port || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) || (a.protocol < b.protocol ? -1 : a.protocol > b.protocol ? 1 : 0));

  const endpoints: SliceEndpointRecord[] = [];
  for (const [i, raw] of arrayAt(p, o['endpoints'], 'endpoints').entries()) {
    const f = `endpoints[${i}]`;
    if (!isObj(raw)) {
      p.add(f, raw, 'is not an object', 'dropped');
      continue;
    }
    const addrs = raw['addresses'];
    const address = Array.isArray(addrs) ? addrs[0] : undefined;
    if (typeof address !== 'string' || ipFamilyOf(address) === null) {
      p.add(`${f}.addresses[0]`, address, 'is not a valid IP address', 'dropped');
      continue;
    }
    if (ipFamilyOf(address) !== addressType) {
      p.add(`${f}.addresses[0]`, address, `is not an ${addressType} address (addressType)`, 'dropped');
      continue;
    }
    const cond = isObj(raw['conditions']) ? raw['conditions'] : {};
    const hints = isObj(raw['hints']) ? raw['hints'] : {};
    endpoints.push({
      address,
      nodeName: optString(raw['nodeName']),
      zone: optString(raw['zone']),
      zoneHints: hintNames(hints['forZones']),
      nodeHints: hintNames(hints['forNodes']),
      ready: boolOr(cond['ready'], true),
      serving: boolOr(cond['serving'], true),
      terminating: boolOr(cond['terminating'], false),
    });
  }
  endpoints.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));

  return {
    record: { namespace: ref.namespace, name: ref.name, serviceName, addressType, ports, endpoints },
    problems: p.list,
  };
}

/** A ServiceCIDR's spec.cidrs, each checked (a bad one is dropped and reported), in canonical form. */
export function parseServiceCIDR(obj: unknown): Parsed<string[]> {
  const ref = objectRef(obj) ?? { namespace: '', name: '<unnamed>' };
  const problems: Problem[] = [];
  const spec = isObj(obj) ? obj['spec'] : undefined;
  const raw = isObj(spec) ? spec['cidrs'] : undefined;
  const report = (field: string, value: unknown, reason: string, action: ProblemAction) => {
    const p = { kind: 'ServiceCIDR', namespace: '', name: clip(ref.name), field, value: displayValue(value), reason, action };
    problems.push({ ...p, text: formatProblem(p) });
  };
  if (!Array.isArray(raw)) {
    report('spec.cidrs', raw, 'is not a list', 'rejected');
    return { record: null, problems };
  }
  const cidrs: string[] = [];
  raw.forEach((c, i) => {
    const parsed = typeof c === 'string' ? parseCidr(c) : null;
    if (parsed === null) report(`spec.cidrs[${i}]`, c, 'is not a CIDR', 'dropped');
    else cidrs.push(cidrString(parsed));
  });
  return { record: cidrs, problems };
}