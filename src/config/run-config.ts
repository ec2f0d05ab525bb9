// `kube-xdp run` configuration: flags and env -> a validated RunConfig.
import { hostname } from 'node:os';
import { isIP } from 'node:net';
import { fileURLToPath } from 'node:url';
import { DEFAULT_MASQUERADE_BIT } from '../dataplane/iptables/config.js';
import { cidrFamilyOf } from '../model/k8s.js';
import { parseMapSizes, type MapSizeOverrides } from '../dataplane/ebpf/map-sizes.js';
import { splitHostPort } from '../observe/http.js';
import { LOG_FORMATS, LOG_LEVELS, type LogFormat } from '../observe/log.js';
import { ConfigError, oneOf, parseDuration, readFlags, type FlagSpec } from './flags.js';
import {
  parseGoDuration, proxyModeOf, readKubeProxyConfiguration, validMasqueradeBit, validNodePortAddress, validScheduler, withDefaultPort,
  type KubeProxyConfiguration, type ProxyMode,
} from './kube-proxy-config.js';

export const DEFAULT_PIN_DIR = '/sys/fs/bpf/kube-xdp';
export const DEFAULT_OBJECT = fileURLToPath(new URL('../../../build/kube_xdp.bpf.o', import.meta.url));

/** Settings every mode's renderer shares (kube-proxy's flags of the same names; --mode is
 *  kube-xdp's name for --proxy-mode). */
export const PROXY_FLAGS: FlagSpec = {
  config: { type: 'string' },
  mode: { type: 'string' },
  'proxy-mode': { type: 'string' },
  'bind-address': { type: 'string' },
  'node-name': { type: 'string' },
  'hostname-override': { type: 'string' },
  'node-ip': { type: 'string', multiple: true },
  'cluster-cidr': { type: 'string', multiple: true },
  'nodeport-addresses': { type: 'string', multiple: true },
  'masquerade-all': { type: 'boolean' },
  'masquerade-local-endpoints': { type: 'boolean' },
  'bpf-fib-forward': { type: 'boolean' },
  'iptables-masquerade-bit': { type: 'string' },
  'iptables-localhost-nodeports': { type: 'string' },
  'ipvs-scheduler': { type: 'string' },
  'ipvs-strict-arp': { type: 'boolean' },
  'ipvs-exclude-cidrs': { type: 'string', multiple: true },
  'iptables-sync-period': { type: 'string' },
  'iptables-min-sync-period': { type: 'string' },
  'ipvs-sync-period': { type: 'string' },
  'ipvs-min-sync-period': { type: 'string' },
  'ipvs-tcp-timeout': { type: 'string' },
  'ipvs-tcpfin-timeout': { type: 'string' },
  'ipvs-udp-timeout': { type: 'string' },
};

/** kube-proxy's IPVS settings (flags --ipvs-*, config section `ipvs`). */
export interface IpvsSettings {
  /** ipvs.scheduler; "" in kube-proxy's config means rr. */
  readonly scheduler: string;
  /** Virtual servers in these CIDRs are not kube-xdp's: a sync never deletes them. */
  readonly excludeCIDRs: readonly string[];
  /** arp_ignore=1 / arp_announce=2, so the node does not answer ARP for kube-ipvs0's addresses. */
  readonly strictARP: boolean;
  /** `ipvsadm --set tcp tcpfin udp` in seconds; 0 leaves the kernel's value. */
  readonly tcpTimeoutS: number;
  readonly tcpFinTimeoutS: number;
  readonly udpTimeoutS: number;
}

export interface ProxySettings {
  readonly mode: ProxyMode;
  readonly nodeName: string;
  /** Explicit node addresses (NodePort/SNAT in eBPF mode; kube-proxy's nodeIP in iptables mode). */
  readonly nodeIPs: readonly string[];
  readonly clusterCIDRs: readonly string[];
  readonly nodePortAddresses: readonly string[];
  readonly masqueradeAll: boolean;
  /** eBPF mode: masquerade external traffic to local endpoints too (kube-proxy's behaviour; by
   *  default kube-xdp keeps the client address there). */
  readonly masqueradeLocalEndpoints: boolean;
  /** eBPF mode: translated packets forwarded by the programs (bpf_fib_lookup), skipping the
   *  host's netfilter FORWARD chain; off by default. */
  readonly fibForward: boolean;
  readonly masqueradeBit: number;
  readonly localhostNodePorts: boolean;
  readonly ipvs: IpvsSettings;
  /** From the KubeProxyConfiguration, when it sets them (its `ipvs` section's in IPVS mode). */
  readonly minSyncPeriodMs: number | null;
  readonly syncPeriodMs: number | null;
  readonly kubeconfig: string | null;
  readonly metricsBindAddress: string | null;
  readonly healthzBindAddress: string | null;
  /** logging.verbosity, logging.format and oomScoreAdj of the --config file (null without one). */
  readonly verbosity: number | null;
  readonly logFormat: LogFormat | null;
  readonly oomScoreAdj: number | null;
  /** Settings given that kube-xdp accepts but does not honour, one sentence each, for the log. */
  readonly warnings: readonly string[];
}

function boolFlag(flag: string, v: string): boolean {
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new ConfigError(flag, `${JSON.stringify(v)} is not true or false`);
}

/** A kube-proxy duration flag (Go's syntax: 1s, 1m0s). */
function goDuration(flag: string, v: string): number {
  try {
    return parseGoDuration(flag, v);
  } catch {
    throw new ConfigError(flag, `${JSON.stringify(v)} is not a duration (e.g. 1s, 30s, 1m0s)`);
  }
}

/** IPVS timeouts are whole seconds. */
function ipvsSeconds(flag: string, v: string): number {
  const ms = goDuration(flag, v);
  if (ms < 0 || ms % 1000 !== 0) throw new ConfigError(flag, `${JSON.stringify(v)} must be whole seconds, 0 or more`);
  return ms / 1000;
}

/** Flags win over the --config file, which wins over the defaults (as in kube-proxy). Without a
 *  file, a setting no flag gives is null here and takes kube-xdp's default. */
export function proxySettings(v: Record<string, string | string[] | boolean | undefined>, env: NodeJS.ProcessEnv = process.env): ProxySettings {
  const kpc: KubeProxyConfiguration | null = typeof v.config === 'string' ? readKubeProxyConfiguration(v.config) : null;
  const list = (k: string) => (v[k] as string[] | undefined) ?? [];
  const str = (k: string) => v[k] as string | undefined;
  const bindAddress = str('bind-address') ?? kpc?.bindAddress;
  if (bindAddress !== undefined && !isIP(bindAddress)) throw new ConfigError('bind-address', `${JSON.stringify(bindAddress)} is not an IP address`);
  // kube-proxy's bindAddress is its idea of the node's primary IP; 0.0.0.0 and :: mean "not set".
  const nodeIPs = list('node-ip').length ? list('node-ip') : bindAddress && !/^(0\.0\.0\.0|::)$/.test(bindAddress) ? [bindAddress] : [];
  for (const ip of nodeIPs) if (!isIP(ip)) throw new ConfigError('node-ip', `${JSON.stringify(ip)} is not an IP address`);
  const clusterCIDRs = list('cluster-cidr').length ? list('cluster-cidr') : kpc?.clusterCIDRs ?? [];
  for (const c of clusterCIDRs) if (cidrFamilyOf(c) === null) throw new ConfigError('cluster-cidr', `${JSON.stringify(c)} is not a CIDR`);
  const modeFlag = str('proxy-mode') !== undefined ? 'proxy-mode' : 'mode';
  const mode = (str(modeFlag) !== undefined ? proxyModeOf(modeFlag, str(modeFlag)!) : kpc?.mode) ?? 'ebpf';
  const givenNodePortAddresses = list('nodeport-addresses').length ? list('nodeport-addresses') : kpc?.nodePortAddresses ?? [];
  // kube-proxy's nftables mode defaults nodePortAddresses to "primary" (the node's own IPs).
  const nodePortAddresses = givenNodePortAddresses.length === 0 && mode === 'nftables' ? ['primary'] : givenNodePortAddresses;
  for (const c of list('nodeport-addresses')) validNodePortAddress('nodeport-addresses', c);
  const bit = str('iptables-masquerade-bit');
  const lh = str('iptables-localhost-nodeports');
  const exclude = list('ipvs-exclude-cidrs').length ? list('ipvs-exclude-cidrs') : kpc?.ipvs.excludeCIDRs ?? [];
  for (const c of exclude) if (cidrFamilyOf(c) === null) throw new ConfigError('ipvs-exclude-cidrs', `${JSON.stringify(c)} is not a CIDR`);
  const scheduler = str('ipvs-scheduler');
  // Both modes' flags are checked whichever mode runs, so a typo in either is never silent.
  const periods = (['iptables', 'ipvs', 'nftables'] as const).map((section) => {
    const fromConfig = section === 'ipvs' ? kpc?.ipvs : section === 'nftables' ? kpc?.nftables : kpc ?? undefined;
    const [sync, min] = [`${section}-sync-period`, `${section}-min-sync-period`];
    const syncPeriodMs = str(sync) !== undefined ? goDuration(sync, str(sync)!) : fromConfig?.syncPeriodMs ?? null;
    if (syncPeriodMs !== null && syncPeriodMs <= 0) throw new ConfigError(sync, 'must be greater than 0');
    const minSyncPeriodMs = str(min) !== undefined ? goDuration(min, str(min)!) : fromConfig?.minSyncPeriodMs ?? null;
    if (minSyncPeriodMs !== null && minSyncPeriodMs < 0) throw new ConfigError(min, 'must be greater than or equal to 0');
    return { syncPeriodMs, minSyncPeriodMs };
  });
  const { syncPeriodMs, minSyncPeriodMs } = periods[mode === 'ipvs' ? 1 : mode === 'nftables' ? 2 : 0]!;
  // The nftables mode reads its own config section; the flags set both (as kube-proxy's do).
  const masq = mode === 'nftables' ? kpc?.nftables : kpc;
  const timeout = (flag: string, fromConfig: number | undefined) => (str(flag) !== undefined ? ipvsSeconds(flag, str(flag)!) : fromConfig ?? 0);
  return {
    mode,
    nodeName: str('hostname-override') ?? str('node-name') ?? (kpc?.hostnameOverride || undefined) ?? env.NODE_NAME ?? hostname(),
    nodeIPs,
    clusterCIDRs,
    nodePortAddresses,
    masqueradeAll: v['masquerade-all'] === true || (masq?.masqueradeAll ?? false),
    masqueradeLocalEndpoints: v['masquerade-local-endpoints'] === true,
    fibForward: v['bpf-fib-forward'] === true,
    masqueradeBit: bit !== undefined ? validMasqueradeBit(Number(bit), 'iptables-masquerade-bit') : masq?.masqueradeBit ?? DEFAULT_MASQUERADE_BIT,
    localhostNodePorts: lh !== undefined ? boolFlag('iptables-localhost-nodeports', lh) : kpc?.localhostNodePorts ?? true,
    ipvs: {
      scheduler: scheduler ? validScheduler(scheduler, 'ipvs-scheduler') : kpc?.ipvs.scheduler ?? 'rr',
      excludeCIDRs: exclude,
      strictARP: v['ipvs-strict-arp'] === true || (kpc?.ipvs.strictARP ?? false),
      tcpTimeoutS: timeout('ipvs-tcp-timeout', kpc?.ipvs.tcpTimeoutS),
      tcpFinTimeoutS: timeout('ipvs-tcpfin-timeout', kpc?.ipvs.tcpFinTimeoutS),
      udpTimeoutS: timeout('ipvs-udp-timeout', kpc?.ipvs.udpTimeoutS),
    },
    minSyncPeriodMs,
    syncPeriodMs,
    kubeconfig: kpc?.kubeconfig || null,
    metricsBindAddress: kpc?.metricsBindAddress ?? null,
    healthzBindAddress: kpc?.healthzBindAddress ?? null,
    verbosity: kpc?.verbosity ?? null,
    logFormat: kpc?.logFormat ?? null,
    oomScoreAdj: kpc?.oomScoreAdj ?? null,
    warnings: kpc ? kpc.warnings.map((w) => `${v.config}: ${w}`) : [],
  };
}

/** kube-proxy flags kube-xdp accepts so its command lines run unchanged, but does not honour:
 *  each one given is warned about at start, never dropped silently. */
export const UNHONOURED_FLAGS: FlagSpec = {
  'conntrack-max-per-core': { type: 'string' },
  'conntrack-min': { type: 'string' },
  'conntrack-tcp-timeout-established': { type: 'string' },
  'conntrack-tcp-timeout-close-wait': { type: 'string' },
  'conntrack-tcp-be-liberal': { type: 'boolean' },
  'conntrack-udp-timeout': { type: 'string' },
  'conntrack-udp-timeout-stream': { type: 'string' },
  'kube-api-qps': { type: 'string' },
  'kube-api-burst': { type: 'string' },
  'kube-api-content-type': { type: 'string' },
  'config-sync-period': { type: 'string' },
  profiling: { type: 'boolean' },
  'bind-address-hard-fail': { type: 'boolean' },
  'detect-local-mode': { type: 'string' },
  'pod-bridge-interface': { type: 'string' },
  'pod-interface-name-prefix': { type: 'string' },
  'feature-gates': { type: 'string' },
  'show-hidden-metrics-for-version': { type: 'string' },
  'proxy-port-range': { type: 'string' },
  'log-flush-frequency': { type: 'string' },
  vmodule: { type: 'string' },
};

function unhonouredFlags(v: Record<string, string | string[] | boolean | undefined>): string[] {
  return Object.keys(UNHONOURED_FLAGS).flatMap((flag) => {
    const given = v[flag];
    if (given === undefined || given === false) return [];
    // kube-xdp's local-traffic detection is kube-proxy's default one.
    if (flag === 'detect-local-mode' && given === 'ClusterCIDR') return [];
    return [`--${flag}${given === true ? '' : `=${String(given)}`} is accepted but not honoured by kube-xdp`];
  });
}

/** klog's -v as a log level: kube-proxy logs its details at 4 and more, its traces at 6 and more. */
function logLevelOf(v: Record<string, unknown>, kpc: number | null): string {
  if (typeof v['log-level'] === 'string') return oneOf('log-level', v['log-level'], LOG_LEVELS);
  const given = v['v'] as string | undefined;
  if (given !== undefined && !/^\d+$/.test(given)) throw new ConfigError('v', `${JSON.stringify(given)} is not a log verbosity (0, 1, 2, …)`);
  const level = given !== undefined ? Number(given) : kpc ?? 0;
  return level >= 6 ? 'trace' : level >= 4 ? 'debug' : 'info';
}

export const RUN_FLAGS: FlagSpec = {
  ...PROXY_FLAGS,
  ...UNHONOURED_FLAGS,
  cleanup: { type: 'boolean' },
  v: { type: 'string' },
  'logging-format': { type: 'string' },
  'oom-score-adj': { type: 'string' },
  source: { type: 'string', default: 'kubernetes' },
  kubeconfig: { type: 'string' },
  'api-server': { type: 'string' },
  master: { type: 'string' },
  'api-request-timeout': { type: 'string', default: '60s' },
  'api-watch-inactivity': { type: 'string', default: '2m' },
  'api-relist-period': { type: 'string', default: '30m' },
  'api-max-backoff': { type: 'string', default: '30s' },
  'iptables-backend': { type: 'string', default: 'auto' },
  'external-interfaces': { type: 'string', multiple: true },
  'pod-interfaces': { type: 'string', multiple: true, default: 'lxc*,cali*' },
  'bpf-pin-dir': { type: 'string', default: DEFAULT_PIN_DIR },
  'bpf-object': { type: 'string', default: DEFAULT_OBJECT },
  'bpf-map-sizes': { type: 'string', multiple: true },
  'cgroup-root': { type: 'string' },
  'xdp-mode': { type: 'string', default: 'auto' },
  'tc-mode': { type: 'string', default: 'auto' },
  'min-sync-period': { type: 'string' },
  'sync-period': { type: 'string' },
  'interface-scan-period': { type: 'string', default: '1s' },
  'ipvs-drain-check-period': { type: 'string', default: '1m' },
  'metrics-bind-address': { type: 'string' },
  'healthz-bind-address': { type: 'string' },
  'log-level': { type: 'string' },
};

export type SourceConfig =
  | { readonly kind: 'file'; readonly path: string }
  | {
      readonly kind: 'kubernetes';
      /** --kubeconfig, else the config file's clientConnection.kubeconfig; $KUBECONFIG and in-cluster are resolved at start. */
      readonly kubeconfig?: string;
      readonly apiServer?: string;
      readonly requestTimeoutMs: number;
      readonly inactivityMs: number;
      readonly relistPeriodMs: number;
      readonly maxBackoffMs: number;
    };

export interface RunConfig {
  readonly source: SourceConfig;
  readonly proxy: ProxySettings;
  readonly iptablesBackend: 'auto' | 'nft' | 'legacy';
  /** eBPF mode: where XDP attaches (NodePort/SNAT addresses default to theirs). */
  readonly externalInterfaces: readonly string[];
  readonly podInterfaces: readonly string[];
  readonly pinDir: string;
  readonly objectPath: string;
  /** eBPF mode: the cgroup v2 directory the socket hooks attach to (host-network clients);
   *  undefined: the cgroup2 mount's root, found at start; '': socket hooks off. */
  readonly cgroupRoot: string | undefined;
  /** max_entries of the eBPF maps that --bpf-map-sizes sets (sizesFor adds the defaults). */
  readonly mapSizes: MapSizeOverrides;
  readonly xdpMode: 'auto' | 'native' | 'generic';
  readonly tcMode: 'auto' | 'tcx' | 'clsact';
  readonly minSyncPeriodMs: number;
  readonly syncPeriodMs: number;
  readonly interfaceScanPeriodMs: number;
  /** IPVS: how often real servers at weight 0 are checked for remaining connections (kube-proxy: 1m). */
  readonly ipvsDrainCheckPeriodMs: number;
  /** '' = off. */
  readonly metricsBindAddress: string;
  /** /healthz for the kubelet's probes (kube-proxy's 0.0.0.0:10256); '' = off. */
  readonly healthzBindAddress: string;
  readonly logLevel: string;
  /** --logging-format (kube-proxy's), else the config file's logging.format: klog text or JSON lines. */
  readonly logFormat: LogFormat;
  /** --cleanup (kube-proxy's): remove what every mode left and exit. */
  readonly cleanup: boolean;
  /** Written to /proc/self/oom_score_adj at start; null: left as inherited. */
  readonly oomScoreAdj: number | null;
  /** What was given but is not honoured, one sentence each (logged at start). */
  readonly warnings: readonly string[];
}

/** --source: `kubernetes` (the API server) or `file:PATH` (a file or directory of objects). */
export function parseSource(v: Record<string, string | string[] | boolean | undefined>, proxy: ProxySettings): SourceConfig {
  const src = v.source as string;
  const file = /^file:(.+)$/.exec(src);
  if (file) return { kind: 'file', path: file[1]! };
  if (src !== 'kubernetes') throw new ConfigError('source', `${JSON.stringify(src)} is not supported: want kubernetes or file:PATH`);
  const duration = (flag: string) => {
    const ms = parseDuration(flag, v[flag] as string);
    if (ms <= 0) throw new ConfigError(flag, 'must be greater than 0');
    return ms;
  };
  const kubeconfig = (v.kubeconfig as string | undefined) ?? proxy.kubeconfig ?? undefined;
  // kube-proxy's --master is --api-server.
  const apiServer = (v['api-server'] ?? v.master) as string | undefined;
  return {
    kind: 'kubernetes',
    ...(kubeconfig ? { kubeconfig } : {}),
    ...(apiServer ? { apiServer: validApiServer(apiServer) } : {}),
    requestTimeoutMs: duration('api-request-timeout'),
    inactivityMs: duration('api-watch-inactivity'),
    relistPeriodMs: duration('api-relist-period'),
    maxBackoffMs: duration('api-max-backoff'),
  };
}

/** Checks --api-server: an http(s) URL without path, query or credentials. */
export function validApiServer(v: string): string {
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    throw new ConfigError('api-server', `${JSON.stringify(v)} is not a URL (want https://HOST:PORT)`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ConfigError('api-server', `${JSON.stringify(v)}: scheme must be https or http`);
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.username) {
    throw new ConfigError('api-server', `${JSON.stringify(v)}: want only scheme, host and port`);
  }
  return url.origin;
}

/** IP:PORT or '' (off); flag > config file > default. An IP alone takes the default port, as
 *  in kube-proxy. */
function bindAddress(flag: string, v: Record<string, unknown>, fromConfig: string | null, dflt: string): string {
  const given = v[flag] as string | undefined;
  if (given === '') return '';
  return given === undefined ? fromConfig ?? dflt : withDefaultPort(flag, '', given, Number(dflt.slice(dflt.lastIndexOf(':') + 1)));
}

function oomScoreAdj(v: Record<string, unknown>, fromConfig: number | null): number | null {
  const given = v['oom-score-adj'] as string | undefined;
  if (given === undefined) return fromConfig;
  const n = Number(given);
  if (!/^-?\d+$/.test(given) || n < -1000 || n > 1000) throw new ConfigError('oom-score-adj', `${JSON.stringify(given)} must be an integer in [-1000, 1000]`);
  return n;
}

export function runConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): RunConfig {
  const { values: v } = readFlags(argv, RUN_FLAGS, env);
  const str = (k: string) => v[k] as string;
  const list = (k: string) => v[k] as string[];
  const proxy = proxySettings(v, env);
  const externalInterfaces = list('external-interfaces');
  const cleanup = v.cleanup === true;
  if (proxy.mode === 'ebpf' && !cleanup) {
    if (externalInterfaces.length === 0) throw new ConfigError('external-interfaces', 'at least one interface is required in eBPF mode');
  }
  const duration = (flag: string, fromConfig: number | null, dflt: string) =>
    v[flag] !== undefined ? parseDuration(flag, str(flag)) : fromConfig ?? parseDuration(flag, dflt);
  return {
    source: parseSource(v, proxy),
    proxy,
    iptablesBackend: oneOf('iptables-backend', str('iptables-backend'), ['auto', 'nft', 'legacy'] as const),
    externalInterfaces,
    podInterfaces: list('pod-interfaces'),
    pinDir: str('bpf-pin-dir'),
    objectPath: str('bpf-object'),
    mapSizes: parseMapSizes(list('bpf-map-sizes')),
    cgroupRoot: v['cgroup-root'] as string | undefined,
    xdpMode: oneOf('xdp-mode', str('xdp-mode'), ['auto', 'native', 'generic'] as const),
    tcMode: oneOf('tc-mode', str('tc-mode'), ['auto', 'tcx', 'clsact'] as const),
    minSyncPeriodMs: duration('min-sync-period', proxy.minSyncPeriodMs, '0s'),
    syncPeriodMs: duration('sync-period', proxy.syncPeriodMs, '30s'),
    interfaceScanPeriodMs: parseDuration('interface-scan-period', str('interface-scan-period')),
    ipvsDrainCheckPeriodMs: parseDuration('ipvs-drain-check-period', str('ipvs-drain-check-period')),
    metricsBindAddress: bindAddress('metrics-bind-address', v, proxy.metricsBindAddress, '127.0.0.1:10249'),
    healthzBindAddress: bindAddress('healthz-bind-address', v, proxy.healthzBindAddress, '0.0.0.0:10256'),
    logLevel: logLevelOf(v, proxy.verbosity),
    logFormat: v['logging-format'] !== undefined ? oneOf('logging-format', str('logging-format'), LOG_FORMATS) : proxy.logFormat ?? 'text',
    cleanup,
    oomScoreAdj: oomScoreAdj(v, proxy.oomScoreAdj),
    warnings: [...proxy.warnings, ...unhonouredFlags(v)],
  };
}
