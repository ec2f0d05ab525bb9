// A kubeproxy.config.k8s.io/v1alpha1 KubeProxyConfiguration file (`--config`), read as kube-proxy
// reads it: strict decoding (an unknown or mistyped field is an error naming it), then
// SetDefaults_KubeProxyConfiguration (every zero value → kube-proxy's default), then validation
// with errors that name the field. kubeadm writes every field at its zero value, so a zero must
// mean "default" here exactly as in kube-proxy.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { parse } from 'yaml';
import { cidrFamilyOf, isObj } from '../model/k8s.js';
import { ConfigError, suggest } from './flags.js';
import { LOG_FORMATS, type LogFormat } from '../observe/log.js';

export const PROXY_MODES = ['ebpf', 'iptables', 'ipvs', 'nftables', 'auto'] as const;
export type ProxyMode = (typeof PROXY_MODES)[number];

/** What kube-proxy's mode names (and "") mean to kube-xdp; null: kube-xdp's default mode. */
export function proxyModeOf(flag: string, v: string, prefix = ''): ProxyMode | null {
  if (v === '') return null;
  if ((PROXY_MODES as readonly string[]).includes(v)) return v as ProxyMode;
  const why = v === 'kernelspace' ? 'kernelspace is the Windows mode' : 'unknown mode';
  throw new ConfigError(flag, `${prefix}${JSON.stringify(v)} is not supported: ${why} (want ${PROXY_MODES.join(', ')} or "")`);
}

/** The configuration after defaulting: what kube-xdp takes from the file. */
export interface KubeProxyConfiguration {
  /** null: "" (kube-xdp's default mode). */
  readonly mode: ProxyMode | null;
  /** '' = none. */
  readonly hostnameOverride: string;
  /** kube-proxy's idea of the node's primary IP (0.0.0.0 / :: = not set). */
  readonly bindAddress: string;
  readonly clusterCIDRs: readonly string[];
  /** CIDRs and the keywords primary, all, localhost (expandNodePortAddresses). */
  readonly nodePortAddresses: readonly string[];
  readonly masqueradeAll: boolean;
  readonly masqueradeBit: number;
  readonly localhostNodePorts: boolean;
  /** iptables.minSyncPeriod / syncPeriod (also the eBPF mode's). */
  readonly minSyncPeriodMs: number;
  readonly syncPeriodMs: number;
  /** clientConnection.kubeconfig; '' = none. */
  readonly kubeconfig: string;
  readonly metricsBindAddress: string;
  readonly healthzBindAddress: string;
  readonly oomScoreAdj: number;
  /** logging.verbosity (klog's -v). */
  readonly verbosity: number;
  /** logging.format: '' is kube-proxy's default, text. */
  readonly logFormat: LogFormat;
  readonly ipvs: IpvsConfiguration;
  /** The `nftables` section (kube-proxy's KubeProxyNFTablesConfiguration), defaulted: what the
   *  nftables mode uses instead of the iptables section's masquerade settings and periods. */
  readonly nftables: NftablesConfiguration;
  /** Fields set to something kube-xdp does not honour, one sentence each (logged at start). */
  readonly warnings: readonly string[];
}

/** The `ipvs` section (kube-proxy's KubeProxyIPVSConfiguration), defaulted. */
export interface IpvsConfiguration {
  readonly scheduler: string;
  readonly minSyncPeriodMs: number;
  readonly syncPeriodMs: number;
  readonly excludeCIDRs: readonly string[];
  readonly strictARP: boolean;
  /** Whole seconds; 0 leaves the kernel's value. */
  readonly tcpTimeoutS: number;
  readonly tcpFinTimeoutS: number;
  readonly udpTimeoutS: number;
}

export interface NftablesConfiguration {
  readonly masqueradeAll: boolean;
  readonly masqueradeBit: number;
  readonly minSyncPeriodMs: number;
  readonly syncPeriodMs: number;
}

const API_VERSION = 'kubeproxy.config.k8s.io/v1alpha1';

/** Go's time.ParseDuration: "30s", "1m0s", "-1h30m", "250ms", "0". */
export function parseGoDuration(field: string, v: unknown): number {
  const bad = () => new ConfigError('config', `${field}: ${JSON.stringify(v)} is not a duration (e.g. 1s, 30s, 1m0s)`);
  if (typeof v !== 'string' || v === '') throw bad();
  const sign = v.startsWith('-') ? -1 : 1;
  const body = v.replace(/^[-+]/, '');
  if (body === '0') return 0;
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let ms = 0;
  const rest = body.replace(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g, (_, n: string, u: string) => {
    ms += Number(n) * units[u]!;
    return '';
  });
  if (rest !== '' || body === '') throw bad();
  return sign * ms;
}

// The v1alpha1 schema, field by field (staging/src/k8s.io/kube-proxy/config/v1alpha1/types.go).
// 'scalar' is a string or a number (resource.Quantity, TimeOrMetaDuration); 'any' is not looked into.
type Kind = 'string' | 'bool' | 'int' | 'number' | 'duration' | 'strings' | 'boolMap' | 'scalar' | 'any' | Schema;
interface Schema { readonly [field: string]: Kind }

const LOG_FORMAT_OPTIONS: Schema = { infoBufferSize: 'scalar', splitStream: 'bool' };
const SCHEMA: Schema = {
  apiVersion: 'string', kind: 'string',
  featureGates: 'boolMap',
  clientConnection: { kubeconfig: 'string', acceptContentTypes: 'string', contentType: 'string', qps: 'number', burst: 'int' },
  logging: { format: 'string', flushFrequency: 'scalar', verbosity: 'int', vmodule: 'any', options: { text: LOG_FORMAT_OPTIONS, json: LOG_FORMAT_OPTIONS } },
  hostnameOverride: 'string', bindAddress: 'string', healthzBindAddress: 'string', metricsBindAddress: 'string',
  bindAddressHardFail: 'bool', enableProfiling: 'bool', showHiddenMetricsForVersion: 'string',
  mode: 'string',
  iptables: { masqueradeBit: 'int', masqueradeAll: 'bool', localhostNodePorts: 'bool', snatNodeInternalIP: 'bool', syncPeriod: 'duration', minSyncPeriod: 'duration' },
  ipvs: {
    syncPeriod: 'duration', minSyncPeriod: 'duration', scheduler: 'string', excludeCIDRs: 'strings', strictARP: 'bool',
    tcpTimeout: 'duration', tcpFinTimeout: 'duration', udpTimeout: 'duration',
  },
  nftables: { masqueradeBit: 'int', masqueradeAll: 'bool', syncPeriod: 'duration', minSyncPeriod: 'duration' },
  winkernel: { networkName: 'string', sourceVip: 'string', enableDSR: 'bool', rootHnsEndpointName: 'string', forwardHealthCheckVip: 'bool' },
  detectLocalMode: 'string',
  detectLocal: { bridgeInterface: 'string', interfaceNamePrefix: 'string' },
  clusterCIDR: 'string',
  nodePortAddresses: 'strings',
  oomScoreAdj: 'int',
  conntrack: {
    maxPerCore: 'int', min: 'int', tcpEstablishedTimeout: 'duration', tcpCloseWaitTimeout: 'duration', tcpBeLiberal: 'bool',
    udpTimeout: 'duration', udpStreamTimeout: 'duration',
  },
  configSyncPeriod: 'duration',
  portRange: 'string',
  windowsRunAsService: 'bool',
};

/** Fields earlier kube-proxy releases wrote and later ones dropped. kube-proxy still starts with
 *  them (its lenient fallback for v1alpha1, which logs them), so an older kubeadm ConfigMap runs
 *  here too, with a warning; every other unknown field is an error. */
const RETIRED = new Set(['udpIdleTimeout', 'resourceContainer', 'conntrack.max']);

const CHECKS: Record<Exclude<Kind, Schema>, [(v: unknown) => boolean, string]> = {
  string: [(v) => typeof v === 'string', 'a string'],
  bool: [(v) => typeof v === 'boolean', 'true or false'],
  int: [(v) => typeof v === 'number' && Number.isInteger(v), 'an integer'],
  number: [(v) => typeof v === 'number', 'a number'],
  duration: [(v) => typeof v === 'string', 'a duration (e.g. 1s, 30s, 1m0s)'],
  strings: [(v) => Array.isArray(v) && v.every((s) => typeof s === 'string'), 'a list of strings'],
  boolMap: [(v) => isObj(v) && Object.values(v).every((b) => typeof b === 'boolean'), 'a map of names to true or false'],
  scalar: [(v) => typeof v === 'string' || typeof v === 'number', 'a string or a number'],
  any: [() => true, ''],
};

/** Strict decoding: every field known and of its type; null is the zero value (Go's encoding/json). */
function decode(doc: Record<string, unknown>, schema: Schema, path: string, warnings: string[]): void {
  for (const [name, v] of Object.entries(doc)) {
    const field = `${path}${name}`;
    const kind = schema[name];
    if (kind === undefined) {
      if (RETIRED.has(field)) {
        warnings.push(`${field}: no longer a KubeProxyConfiguration field (kube-proxy ignores it too)`);
        continue;
      }
      throw new ConfigError('config', `${field}: unknown field${suggest(name, Object.keys(schema))}`);
    }
    if (v === null) continue;
    if (typeof kind === 'object') {
      if (!isObj(v)) throw new ConfigError('config', `${field}: ${JSON.stringify(v)} is not an object`);
      decode(v, kind, `${field}.`, warnings);
      continue;
    }
    const [ok, want] = CHECKS[kind];
    if (!ok(v)) throw new ConfigError('config', `${field}: ${JSON.stringify(v)} is not ${want}`);
    if (kind === 'duration') parseGoDuration(field, v);
  }
}

type Obj = Record<string, unknown>;
const section = (doc: Obj, name: string): Obj => (isObj(doc[name]) ? doc[name] : {});
/** A duration field; absent, null and "0s" are all zero, as in Go. */
const durationMs = (s: Obj, path: string, name: string): number => (typeof s[name] === 'string' ? parseGoDuration(`${path}${name}`, s[name]) : 0);

/** kube-proxy's AppendPortIfNeeded: an IP alone gets the default port. */
export function withDefaultPort(flag: string, prefix: string, v: string, port: number): string {
  if (isIP(v) === 4) return `${v}:${port}`;
  if (isIP(v.replace(/^\[|\]$/g, '')) === 6) return `[${v.replace(/^\[|\]$/g, '')}]:${port}`;
  const m = /^(.*):(\d+)$/.exec(v);
  const host = m?.[1]?.replace(/^\[|\]$/g, '');
  if (!m || !host || !isIP(host) || Number(m[2]) > 65535) throw new ConfigError(flag, `${prefix}${JSON.stringify(v)} is not IP or IP:PORT`);
  return v;
}

const NODE_PORT_KEYWORDS = ['primary', 'all', 'localhost'];

/** A nodePortAddresses entry: a CIDR or one of kube-proxy's keywords. */
export function validNodePortAddress(flag: string, v: string, prefix = ''): string {
  if (cidrFamilyOf(v) === null && !NODE_PORT_KEYWORDS.includes(v)) {
    throw new ConfigError(flag, `${prefix}${JSON.stringify(v)} is not a CIDR or one of ${NODE_PORT_KEYWORDS.join(', ')}`);
  }
  return v;
}

/** kube-proxy's keywords as CIDRs: primary → the node's IPs (its Node object's, or --node-ip),
 *  all → every address, localhost → loopback. An empty result means every address. */
export function expandNodePortAddresses(list: readonly string[], nodeIPs: readonly string[]): string[] {
  return [...new Set(list.flatMap((e) => {
    if (e === 'primary') return nodeIPs.map((ip) => `${ip}/${isIP(ip) === 6 ? 128 : 32}`);
    if (e === 'all') return ['0.0.0.0/0', '::/0'];
    if (e === 'localhost') return ['127.0.0.0/8', '::1/128'];
    return [e];
  }))];
}

const LOCAL_MODES = ['ClusterCIDR', 'NodeCIDR', 'BridgeInterface', 'InterfaceNamePrefix'];

/** Validates a parsed KubeProxyConfiguration and applies kube-proxy's defaults. */
export function parseKubeProxyConfiguration(doc: unknown): KubeProxyConfiguration {
  if (!isObj(doc)) throw new ConfigError('config', 'is not a KubeProxyConfiguration object');
  if (doc['apiVersion'] !== API_VERSION) throw new ConfigError('config', `apiVersion: ${JSON.stringify(doc['apiVersion'])} is not ${API_VERSION}`);
  if (doc['kind'] !== 'KubeProxyConfiguration') throw new ConfigError('config', `kind: ${JSON.stringify(doc['kind'])} is not KubeProxyConfiguration`);
  const warnings: string[] = [];
  decode(doc, SCHEMA, '', warnings);
  const str = (s: Obj, name: string) => (typeof s[name] === 'string' ? s[name] : '');
  const ipt = section(doc, 'iptables');
  const ipvs = section(doc, 'ipvs');
  const conn = section(doc, 'clientConnection');

  const clusterCIDR = str(doc, 'clusterCIDR');
  const clusterCIDRs = clusterCIDR === '' ? [] : clusterCIDR.split(',').map((c) => c.trim());
  clusterCIDRs.forEach((c, i) => {
    if (cidrFamilyOf(c) === null) throw new ConfigError('config', `clusterCIDR: ${JSON.stringify(c)} (entry ${i}) is not a CIDR`);
  });
  const nodePortAddresses = (doc['nodePortAddresses'] as string[] | null | undefined) ?? [];
  nodePortAddresses.forEach((c, i) => validNodePortAddress('config', c, `nodePortAddresses[${i}]: `));
  const bindAddress = str(doc, 'bindAddress') || '0.0.0.0';
  if (!isIP(bindAddress)) throw new ConfigError('config', `bindAddress: ${JSON.stringify(bindAddress)} is not an IP address`);
  // getDefaultAddresses: an IPv6 bindAddress moves both defaults to IPv6.
  const v6 = isIP(bindAddress) === 6;
  const bind = (name: string, dflt: string, port: number) => (str(doc, name) === '' ? dflt : withDefaultPort('config', `${name}: `, str(doc, name), port));

  const oomScoreAdj = typeof doc['oomScoreAdj'] === 'number' ? doc['oomScoreAdj'] : -999;
  if (oomScoreAdj < -1000 || oomScoreAdj > 1000) throw new ConfigError('config', `oomScoreAdj: ${oomScoreAdj} must be in [-1000, 1000]`);
  const detectLocalMode = str(doc, 'detectLocalMode') || 'ClusterCIDR';
  if (!LOCAL_MODES.includes(detectLocalMode)) throw new ConfigError('config', `detectLocalMode: ${JSON.stringify(detectLocalMode)} is not one of ${LOCAL_MODES.join(', ')}`);

  const out: KubeProxyConfiguration = {
    mode: proxyModeOf('config', str(doc, 'mode'), 'mode: '),
    hostnameOverride: str(doc, 'hostnameOverride').trim(),
    bindAddress,
    clusterCIDRs,
    nodePortAddresses,
    masqueradeAll: ipt['masqueradeAll'] === true,
    masqueradeBit: validMasqueradeBit(typeof ipt['masqueradeBit'] === 'number' ? ipt['masqueradeBit'] : 14, 'config', 'iptables.masqueradeBit: '),
    localhostNodePorts: ipt['localhostNodePorts'] !== false,
    minSyncPeriodMs: nonNegative('iptables.minSyncPeriod', durationMs(ipt, 'iptables.', 'minSyncPeriod'), 1000),
    syncPeriodMs: positive('iptables.syncPeriod', durationMs(ipt, 'iptables.', 'syncPeriod'), 30_000),
    kubeconfig: str(conn, 'kubeconfig'),
    metricsBindAddress: bind('metricsBindAddress', v6 ? '[::1]:10249' : '127.0.0.1:10249', 10249),
    healthzBindAddress: bind('healthzBindAddress', v6 ? '[::]:10256' : '0.0.0.0:10256', 10256),
    oomScoreAdj,
    verbosity: typeof section(doc, 'logging')['verbosity'] === 'number' ? section(doc, 'logging')['verbosity'] as number : 0,
    logFormat: logFormatOf(section(doc, 'logging')['format']),
    ipvs: parseIpvsSection(ipvs),
    nftables: parseNftablesSection(section(doc, 'nftables')),
    warnings,
  };
  if (detectLocalMode !== 'ClusterCIDR') warnings.push(`detectLocalMode: ${detectLocalMode} is not supported by kube-xdp: traffic is local when its source is in clusterCIDR`);
  for (const [field, v] of unhonoured(doc)) warnings.push(`${field}: ${JSON.stringify(v)} is accepted but not honoured by kube-xdp`);
  return out;
}

/** kube-proxy behaviours kube-xdp does not have; set to anything but their zero value they are
 *  warned about (kubeadm writes them all at zero, which must stay quiet). */
const UNHONOURED = [
  'featureGates', 'clientConnection.acceptContentTypes', 'clientConnection.contentType', 'clientConnection.qps', 'clientConnection.burst',
  'logging.flushFrequency', 'logging.vmodule', 'bindAddressHardFail', 'enableProfiling', 'showHiddenMetricsForVersion',
  'iptables.snatNodeInternalIP', 'conntrack.maxPerCore', 'conntrack.min', 'conntrack.tcpEstablishedTimeout', 'conntrack.tcpCloseWaitTimeout',
  'conntrack.tcpBeLiberal', 'conntrack.udpTimeout', 'conntrack.udpStreamTimeout', 'configSyncPeriod', 'detectLocal.bridgeInterface',
  'detectLocal.interfaceNamePrefix',
];

function isZero(v: unknown): boolean {
  return v === undefined || v === null || v === '' || v === 0 || v === false || v === '0' || v === '0s'
    || (Array.isArray(v) && v.length === 0) || (isObj(v) && Object.keys(v).length === 0);
}

function unhonoured(doc: Obj): [string, unknown][] {
  return UNHONOURED.flatMap((path) => {
    const v = path.split('.').reduce<unknown>((o, k) => (isObj(o) ? o[k] : undefined), doc);
    return isZero(v) ? [] : [[path, v] as [string, unknown]];
  });
}

function logFormatOf(v: unknown): LogFormat {
  if (v === undefined || v === null || v === '') return 'text';
  if (typeof v === 'string' && (LOG_FORMATS as readonly string[]).includes(v)) return v as LogFormat;
  throw new ConfigError('config', `logging.format: ${JSON.stringify(v)} is not a logging format (${LOG_FORMATS.join(', ')})`);
}

/** Zero → the default (SetDefaults); below zero → an error naming the field. */
function positive(field: string, ms: number, dflt: number): number {
  if (ms < 0) throw new ConfigError('config', `${field}: must be greater than 0`);
  return ms === 0 ? dflt : ms;
}
function nonNegative(field: string, ms: number, dflt: number): number {
  if (ms < 0) throw new ConfigError('config', `${field}: must be greater than or equal to 0`);
  return ms === 0 ? dflt : ms;
}

/** SetDefaults_KubeProxyConfiguration for the nftables section: bit 14, 1 s and 30 s. */
function parseNftablesSection(nft: Obj): NftablesConfiguration {
  return {
    masqueradeAll: nft['masqueradeAll'] === true,
    masqueradeBit: validMasqueradeBit(typeof nft['masqueradeBit'] === 'number' ? nft['masqueradeBit'] : 14, 'config', 'nftables.masqueradeBit: '),
    minSyncPeriodMs: nonNegative('nftables.minSyncPeriod', durationMs(nft, 'nftables.', 'minSyncPeriod'), 1000),
    syncPeriodMs: positive('nftables.syncPeriod', durationMs(nft, 'nftables.', 'syncPeriod'), 30_000),
  };
}

function parseIpvsSection(ipvs: Obj): IpvsConfiguration {
  const scheduler = typeof ipvs['scheduler'] === 'string' && ipvs['scheduler'] !== '' ? validScheduler(ipvs['scheduler'], 'config', 'ipvs.scheduler: ') : 'rr';
  const exclude = (ipvs['excludeCIDRs'] as string[] | null | undefined) ?? [];
  exclude.forEach((c, i) => {
    if (cidrFamilyOf(c) === null) throw new ConfigError('config', `ipvs.excludeCIDRs[${i}]: ${JSON.stringify(c)} is not a CIDR`);
  });
  // IPVS timeouts are whole seconds; 0 leaves the kernel's value.
  const seconds = (name: string) => {
    const ms = durationMs(ipvs, 'ipvs.', name);
    if (ms < 0 || ms % 1000 !== 0) throw new ConfigError('config', `ipvs.${name}: ${JSON.stringify(ipvs[name])} must be whole seconds, 0 or more`);
    return ms / 1000;
  };
  const minSync = durationMs(ipvs, 'ipvs.', 'minSyncPeriod');
  if (minSync < 0) throw new ConfigError('config', 'ipvs.minSyncPeriod: must be greater than or equal to 0');
  return {
    scheduler,
    // SetDefaults leaves ipvs.minSyncPeriod at 0 (sync at once); only syncPeriod is defaulted.
    minSyncPeriodMs: minSync,
    syncPeriodMs: positive('ipvs.syncPeriod', durationMs(ipvs, 'ipvs.', 'syncPeriod'), 30_000),
    excludeCIDRs: exclude,
    strictARP: ipvs['strictARP'] === true,
    tcpTimeoutS: seconds('tcpTimeout'),
    tcpFinTimeoutS: seconds('tcpFinTimeout'),
    udpTimeoutS: seconds('udpTimeout'),
  };
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
    // uniqueKeys (the default): a field given twice is an error, as in kube-proxy's strict decoding.
    doc = parse(text);
  } catch (err) {
    throw new ConfigError('config', `${path}: ${(err as Error).message}`);
  }
  return parseKubeProxyConfiguration(doc);
}
