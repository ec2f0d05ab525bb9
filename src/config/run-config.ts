// `kube-xdp run` configuration: flags and env -> a validated RunConfig.
import { hostname } from 'node:os';
import { isIPv4 } from 'node:net';
import { fileURLToPath } from 'node:url';
import { ConfigError, oneOf, parseDuration, readFlags, type FlagSpec } from './flags.js';

export const DEFAULT_PIN_DIR = '/sys/fs/bpf/kube-xdp';
export const DEFAULT_OBJECT = fileURLToPath(new URL('../../../build/kube_xdp.bpf.o', import.meta.url));

export const RUN_FLAGS: FlagSpec = {
  source: { type: 'string' },
  'node-name': { type: 'string' },
  'external-interfaces': { type: 'string', multiple: true },
  'node-ip': { type: 'string', multiple: true },
  'pod-interfaces': { type: 'string', multiple: true, default: 'lxc*,cali*' },
  'bpf-pin-dir': { type: 'string', default: DEFAULT_PIN_DIR },
  'bpf-object': { type: 'string', default: DEFAULT_OBJECT },
  'xdp-mode': { type: 'string', default: 'auto' },
  'tc-mode': { type: 'string', default: 'auto' },
  'min-sync-period': { type: 'string', default: '0s' },
  'sync-period': { type: 'string', default: '30s' },
  'interface-scan-period': { type: 'string', default: '1s' },
  'metrics-bind-address': { type: 'string', default: '127.0.0.1:10249' },
  'log-level': { type: 'string', default: 'info' },
};

export interface RunConfig {
  readonly source: { readonly kind: 'file'; readonly path: string };
  readonly nodeName: string;
  readonly externalInterfaces: readonly string[];
  /** Explicit NodePort/SNAT addresses; empty = the external interfaces' IPv4 addresses. */
  readonly nodeIPs: readonly string[];
  readonly podInterfaces: readonly string[];
  readonly pinDir: string;
  readonly objectPath: string;
  readonly xdpMode: 'auto' | 'native' | 'generic';
  readonly tcMode: 'auto' | 'tcx' | 'clsact';
  readonly minSyncPeriodMs: number;
  readonly syncPeriodMs: number;
  readonly interfaceScanPeriodMs: number;
  readonly metricsBindAddress: string;
  readonly logLevel: string;
}

export function parseSource(v: string | undefined): RunConfig['source'] {
  if (!v) throw new ConfigError('source', 'is required (file:PATH)');
  const m = /^file:(.+)$/.exec(v);
  if (!m) throw new ConfigError('source', `${JSON.stringify(v)} is not supported: want file:PATH (the Kubernetes API source comes with issue 5)`);
  return { kind: 'file', path: m[1]! };
}

export function runConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): RunConfig {
  const { values: v } = readFlags(argv, RUN_FLAGS, env);
  const str = (k: string) => v[k] as string;
  const list = (k: string) => v[k] as string[];
  const nodeIPs = list('node-ip');
  for (const ip of nodeIPs) if (!isIPv4(ip)) throw new ConfigError('node-ip', `${JSON.stringify(ip)} is not an IPv4 address`);
  const externalInterfaces = list('external-interfaces');
  if (externalInterfaces.length === 0) throw new ConfigError('external-interfaces', 'at least one interface is required');
  return {
    source: parseSource(v.source as string | undefined),
    nodeName: (v['node-name'] as string | undefined) ?? env.NODE_NAME ?? hostname(),
    externalInterfaces,
    nodeIPs,
    podInterfaces: list('pod-interfaces'),
    pinDir: str('bpf-pin-dir'),
    objectPath: str('bpf-object'),
    xdpMode: oneOf('xdp-mode', str('xdp-mode'), ['auto', 'native', 'generic'] as const),
    tcMode: oneOf('tc-mode', str('tc-mode'), ['auto', 'tcx', 'clsact'] as const),
    minSyncPeriodMs: parseDuration('min-sync-period', str('min-sync-period')),
    syncPeriodMs: parseDuration('sync-period', str('sync-period')),
    interfaceScanPeriodMs: parseDuration('interface-scan-period', str('interface-scan-period')),
    metricsBindAddress: str('metrics-bind-address'),
    logLevel: str('log-level'),
  };
}
