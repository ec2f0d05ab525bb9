// A kubeproxy.config.k8s.io/v1alpha1 KubeProxyConfiguration file (`--config`): the fields
// kube-xdp uses, validated with errors that name the field. Unknown fields are ignored, as
// kube-proxy's lenient decoding does for fields of other versions.
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { cidrFamilyOf, isObj } from '../model/k8s.js';
import { ConfigError } from './flags.js';

export const PROXY_MODES = ['ebpf', 'iptables', 'ipvs', 'auto'] as const;
export type ProxyMode = (typeof PROXY_MODES)[number];

export interface KubeProxyConfiguration {
  mode?: ProxyMode;
  hostnameOverride?: string;
  clusterCIDRs?: string[];
  nodePortAddresses?: string[];
  masqueradeAll?: boolean;
  masqueradeBit?: number;
  localhostNodePorts?: boolean;
  minSyncPeriodMs?: number;
  syncPeriodMs?: number;
  /** clientConnection.kubeconfig */
  kubeconfig?: string;
  metricsBindAddress?: string;
  healthzBindAddress?: string;
  ipvs?: IpvsConfiguration;
}

/** The `ipvs` section (kube-proxy's KubeProxyIPVSConfiguration). */
export interface IpvsConfiguration {
  scheduler?: string;
  minSyncPeriodMs?: number;
  syncPeriodMs?: number;
  excludeCIDRs?: string[];
  strictARP?: boolean;
  tcpTimeoutS?: number;
  tcpFinTimeoutS?: number;
  udpTimeoutS?: number;
}

const API_VERSION = 'kubeproxy.config.k8s.io/v1alpha1';

/** Go's time.ParseDuration for the forms configs use: "30s", "1m0s", "1h30m", "250ms". */
export function parseGoDuration(field: string, v: unknown): number {
  const bad = () => new ConfigError('config', `${field}: ${JSON.stringify(v)} is not a duration (e.g. 1s, 30s, 1m0s)`);
  if (typeof v !== 'string' || v === '') throw bad();
  if (v === '0') return 0;
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let ms = 0;
  const rest = v.replace(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g, (_, n: string, u: string) => {
    ms += Number(n) * units[u]!;
    return '';
  });
  if (rest !== '') throw bad();
  return ms;
}

type Obj = Record<string, unknown>;

function field<T>(obj: Obj, path: string, name: string, check: (v: unknown) => v is T, want: string): T | undefined {
  const v = obj[name];
  if (v === undefined || v === null) return undefined;
  if (!check(v)) throw new ConfigError('config', `${path}${name}: ${JSON.stringify(v)} is not ${want}`);
  return v;
}
const isString = (v: unknown): v is string => typeof v === 'string';
const isBool = (v: unknown): v is boolean => typeof v === 'boolean';
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every(isString);

/** Validates a parsed KubeProxyConfiguration object. */
export function parseKubeProxyConfiguration(doc: unknown): KubeProxyConfiguration {
  if (!isObj(doc)) throw new ConfigError('config', 'is not a KubeProxyConfiguration object');
  if (doc['apiVersion'] !== API_VERSION) throw new ConfigError('config', `apiVersion: ${JSON.stringify(doc['apiVersion'])} is not ${API_VERSION}`);
  if (doc['kind'] !== 'KubeProxyConfiguration') throw new ConfigError('config', `kind: ${JSON.stringify(doc['kind'])} is not KubeProxyConfiguration`);
  const out: KubeProxyConfiguration = {};

  const mode = field(doc, '', 'mode', isString, 'a string');
  if (mode !== undefined && mode !== '') {
    if (!(PROXY_MODES as readonly string[]).includes(mode)) throw new ConfigError('config', `mode: ${JSON.stringify(mode)} is not supported (want ${PROXY_MODES.join(' or ')})`);
    out.mode = mode as ProxyMode;
  }
  const host = field(doc, '', 'hostnameOverride', isString, 'a string');
  if (host) out.hostnameOverride = host;

  const cidrs = field(doc, '', 'clusterCIDR', isString, 'a string');
  if (cidrs) {
    out.clusterCIDRs = cidrs.split(',').map((c) => c.trim());
    out.clusterCIDRs.forEach((c, i) => {
      if (cidrFamilyOf(c) === null) throw new ConfigError('config', `clusterCIDR: ${JSON.stringify(c)} (entry ${i}) is not a CIDR`);
    });
  }
  const npa = field(doc, '', 'nodePortAddresses', isStrings, 'a list of CIDRs');
  if (npa) {
    npa.forEach((c, i) => {
      if (cidrFamilyOf(c) === null) throw new ConfigError('config', `nodePortAddresses[${i}]: ${JSON.stringify(c)} is not a CIDR`);
    });
    out.nodePortAddresses = npa;
  }

  // Bind addresses are checked with the flags of the same names (run-config.ts).
  const metrics = field(doc, '', 'metricsBindAddress', isString, 'a string');
  if (metrics !== undefined) out.metricsBindAddress = metrics;
  const healthz = field(doc, '', 'healthzBindAddress', isString, 'a string');
  if (healthz !== undefined) out.healthzBindAddress = healthz;
  const conn = doc['clientConnection'];
  if (conn !== undefined && conn !== null) {
    if (!isObj(conn)) throw new ConfigError('config', 'clientConnection: is not an object');
    const kubeconfig = field(conn, 'clientConnection.', 'kubeconfig', isString, 'a string');
    if (kubeconfig) out.kubeconfig = kubeconfig;
  }

  const ipt = doc['iptables'];
  if (ipt !== undefined && ipt !== null) {
    if (!isObj(ipt)) throw new ConfigError('config', 'iptables: is not an object');
    const all = field(ipt, 'iptables.', 'masqueradeAll', isBool, 'true or false');
    if (all !== undefined) out.masqueradeAll = all;
    const bit = field(ipt, 'iptables.', 'masqueradeBit', isInt, 'an integer');
    if (bit !== undefined) out.masqueradeBit = validMasqueradeBit(bit, 'config', 'iptables.masqueradeBit: ');
    const lh = field(ipt, 'iptables.', 'localhostNodePorts', isBool, 'true or false');
    if (lh !== undefined) out.localhostNodePorts = lh;
    if (ipt['minSyncPeriod'] !== undefined) out.minSyncPeriodMs = parseGoDuration('iptables.minSyncPeriod', ipt['minSyncPeriod']);
    if (ipt['syncPeriod'] !== undefined) out.syncPeriodMs = positiveDuration('iptables.syncPeriod', ipt['syncPeriod']);
  }
  const ipvs = doc['ipvs'];
  if (ipvs !== undefined && ipvs !== null) out.ipvs = parseIpvsSection(ipvs);
  return out;
}

function positiveDuration(field: string, v: unknown): number {
  const ms = parseGoDuration(field, v);
  if (ms <= 0) throw new ConfigError('config', `${field}: ${JSON.stringify(v)} must be greater than 0`);
  return ms;
}

function parseIpvsSection(ipvs: unknown): IpvsConfiguration {
  if (!isObj(ipvs)) throw new ConfigError('config', 'ipvs: is not an object');
  const out: IpvsConfiguration = {};
  const scheduler = field(ipvs, 'ipvs.', 'scheduler', isString, 'a string');
  if (scheduler) out.scheduler = validScheduler(scheduler, 'config', 'ipvs.scheduler: ');
  if (ipvs['minSyncPeriod'] !== undefined) out.minSyncPeriodMs = parseGoDuration('ipvs.minSyncPeriod', ipvs['minSyncPeriod']);
  if (ipvs['syncPeriod'] !== undefined) out.syncPeriodMs = positiveDuration('ipvs.syncPeriod', ipvs['syncPeriod']);
  const exclude = field(ipvs, 'ipvs.', 'excludeCIDRs', isStrings, 'a list of CIDRs');
  if (exclude) {
    exclude.forEach((c, i) => {
      if (cidrFamilyOf(c) === null) throw new ConfigError('config', `ipvs.excludeCIDRs[${i}]: ${JSON.stringify(c)} is not a CIDR`);
    });
    out.excludeCIDRs = exclude;
  }
  const strictARP = field(ipvs, 'ipvs.', 'strictARP', isBool, 'true or false');
  if (strictARP !== undefined) out.strictARP = strictARP;
  // IPVS timeouts are whole seconds; 0 leaves the kernel's value.
  for (const [name, key] of [['tcpTimeout', 'tcpTimeoutS'], ['tcpFinTimeout', 'tcpFinTimeoutS'], ['udpTimeout', 'udpTimeoutS']] as const) {
    if (ipvs[name] === undefined) continue;
    const ms = parseGoDuration(`ipvs.${name}`, ipvs[name]);
    if (ms % 1000 !== 0) throw new ConfigError('config', `ipvs.${name}: ${JSON.stringify(ipvs[name])} must be whole seconds`);
    out[key] = ms / 1000;
  }
  return out;
}

/** IPVS schedulers of Linux (ip_vs_<name>), the ones kube-proxy's ipvs.scheduler accepts. */
export const IPVS_SCHEDULERS = ['rr', 'wrr', 'lc', 'wlc', 'lblc', 'lblcr', 'dh', 'sh', 'sed', 'nq', 'mh', 'fo', 'ovf', 'twos'] as const;

export function validScheduler(s: string, flag: string, prefix = ''): string {
  if (!(IPVS_SCHEDULERS as readonly string[]).includes(s)) throw new ConfigError(flag, `${prefix}${JSON.stringify(s)} is not an IPVS scheduler (${IPVS_SCHEDULERS.join(', ')})`);
  return s;
}

export function validMasqueradeBit(bit: number, flag: string, prefix = ''): number {
  if (!Number.isInteger(bit) || bit < 0 || bit > 31) throw new ConfigError(flag, `${prefix}${bit} must be an integer in [0, 31]`);
  return bit;
}

export function readKubeProxyConfiguration(path: string): KubeProxyConfiguration {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError('config', `cannot read ${path}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new ConfigError('config', `${path}: ${(err as Error).message}`);
  }
  return parseKubeProxyConfiguration(doc);
}
