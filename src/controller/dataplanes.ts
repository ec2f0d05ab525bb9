// The dataplane of each mode, built from the run configuration once the source has synced
// (the Node's addresses are known then).
import { isIPv4 } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Logger } from 'pino';
import type { RunConfig } from '../config/run-config.js';
import { EbpfDataplane } from '../dataplane/ebpf/dataplane.js';
import { IDLE_IPV6_FLOW_ENTRIES, sizesFor } from '../dataplane/ebpf/map-sizes.js';
import { IptablesDataplane } from '../dataplane/iptables/dataplane.js';
import { iptablesConfigs, proxyFamilies, readHostFacts, readInterfaceAddresses, ruleModeConfig } from '../dataplane/iptables/setup.js';
import { IpvsDataplane } from '../dataplane/ipvs/dataplane.js';
import { NftablesDataplane } from '../dataplane/nftables/dataplane.js';
import { ipvsConfigs, readNodeAddresses } from '../dataplane/ipvs/setup.js';
import { Iptables, detectBackend } from '../kernel/iptables.js';
import { Libkx } from '../kernel/libkx.js';
import { cgroup2Mount } from '../kernel/mounts.js';
import type { Metrics } from '../observe/metrics.js';
import type { ConcreteMode, ModeCheck } from '../cli/mode.js';
import type { BuiltDataplane } from './controller.js';

/** eBPF mode: the addresses NodePorts answer on, per family: --node-ip or the Node's, else the
 *  external interfaces' (IPv6 link-local ones never: a NodePort is not served on fe80::/10). */
export function nodeAddresses(cfg: Pick<RunConfig, 'proxy' | 'externalInterfaces'>): string[] {
  const ifs = networkInterfaces();
  const ofInterfaces = (family: 'IPv4' | 'IPv6') => cfg.externalInterfaces.flatMap((name) => (ifs[name] ?? [])
    .filter((a) => a.family === family && !(family === 'IPv6' && /^fe[89ab]/i.test(a.address))).map((a) => a.address));
  return (['IPv4', 'IPv6'] as const).flatMap((family) => {
    const given = cfg.proxy.nodeIPs.filter((ip) => (family === 'IPv4') === isIPv4(ip));
    return given.length > 0 ? given : ofInterfaces(family);
  });
}

/** --cgroup-root, else the cgroup2 mount's root; null: no socket hooks (host-network clients
 *  are then not served, as without kube-proxy). */
function socketHookCgroup(cfg: RunConfig, log: Logger): string | null {
  if (cfg.cgroupRoot === '') return null;
  const root = cfg.cgroupRoot ?? cgroup2Mount();
  if (root === null) log.warn('no cgroup v2 mount in /proc/mounts: socket hooks off, host-network clients cannot reach Services (mount cgroup2 or give --cgroup-root)');
  return root;
}

function ebpfDataplane(cfg: RunConfig, log: Logger, metrics: Metrics, check: ModeCheck): BuiltDataplane {
  const addresses = nodeAddresses(cfg);
  if (addresses.length === 0) throw new Error(`no IP address on ${cfg.externalInterfaces.join(', ')}: give --node-ip`);
  log.info({ node: cfg.proxy.nodeName, nodeAddresses: addresses, pinDir: cfg.pinDir, source: cfg.source }, 'starting kube-xdp (eBPF mode)');
  const ipv6 = addresses.some((ip) => !isIPv4(ip));
  const mapSizes = sizesFor(cfg.mapSizes, { ipv6 });
  if (!ipv6) log.info({ entries: IDLE_IPV6_FLOW_ENTRIES }, 'no IPv6 node address: IPv6 conntrack and affinity maps at their idle size unless --bpf-map-sizes sets them');
  const dataplane = new EbpfDataplane(new Libkx(), log, metrics, {
    objectPath: cfg.objectPath, pinDir: cfg.pinDir, externalInterfaces: cfg.externalInterfaces,
    podInterfaces: cfg.podInterfaces, xdpMode: cfg.xdpMode, tcMode: cfg.tcMode, nodeAddresses: addresses,
    nodePortAddresses: cfg.proxy.nodePortAddresses, clusterCIDRs: cfg.proxy.clusterCIDRs,
    masqueradeAll: cfg.proxy.masqueradeAll, masqueradeLocalEndpoints: cfg.proxy.masqueradeLocalEndpoints, fibForward: cfg.proxy.fibForward,
    localhostNodePorts: cfg.proxy.localhostNodePorts, mapSizes, cgroupRoot: socketHookCgroup(cfg, log),
    ...(check.probe ? { probe: check.probe } : {}),
  });
  dataplane.start();
  return { dataplane, families: ['IPv4', 'IPv6'] };
}

/** What both iptables-using modes start from: the backend (--iptables-backend or detected), the
 *  families, and the host's facts read through that backend. */
function iptablesFacts(cfg: RunConfig) {
  const detected = cfg.iptablesBackend === 'auto' ? detectBackend() : { backend: cfg.iptablesBackend, reason: '--iptables-backend' };
  return { detected, families: proxyFamilies(cfg.proxy), host: readHostFacts(new Iptables('IPv4', detected.backend)) };
}

function iptablesDataplane(cfg: RunConfig, log: Logger, metrics: Metrics): BuiltDataplane {
  const { detected, families, host } = iptablesFacts(cfg);
  const configs = iptablesConfigs(cfg.proxy, families, host);
  log.info({ node: cfg.proxy.nodeName, backend: detected.backend, backendReason: detected.reason, families, source: cfg.source,
    configs: configs.map(({ localAddresses: _, ...c }) => c) }, 'starting kube-xdp (iptables mode)');
  const dataplane = new IptablesDataplane({ families: configs, backend: detected.backend, staleChainScanPeriodMs: cfg.syncPeriodMs }, log, metrics);
  return { dataplane, families };
}

function ipvsDataplane(cfg: RunConfig, log: Logger, metrics: Metrics): BuiltDataplane {
  const { detected, families, host } = iptablesFacts(cfg);
  const configs = ipvsConfigs(cfg.proxy, families, host, readNodeAddresses());
  log.info({ node: cfg.proxy.nodeName, backend: detected.backend, backendReason: detected.reason, families, source: cfg.source,
    ipvs: cfg.proxy.ipvs, configs: configs.map(({ nodeAddresses: _, ...c }) => c) }, 'starting kube-xdp (IPVS mode)');
  const dataplane = new IpvsDataplane({
    families: configs, backend: detected.backend, ipvs: cfg.proxy.ipvs, drainCheckPeriodMs: cfg.ipvsDrainCheckPeriodMs,
  }, log, metrics);
  return { dataplane, families };
}

function nftablesDataplane(cfg: RunConfig, log: Logger, metrics: Metrics): BuiltDataplane {
  const families = proxyFamilies(cfg.proxy);
  const local = readInterfaceAddresses();
  const configs = families.map((family) => ruleModeConfig(cfg.proxy, family, local[family]));
  log.info({ node: cfg.proxy.nodeName, families, source: cfg.source, configs: configs.map(({ localAddresses: _, ...c }) => c) }, 'starting kube-xdp (nftables mode)');
  return { dataplane: new NftablesDataplane(configs, log, metrics), families };
}

export const DATAPLANES: Record<ConcreteMode, typeof ebpfDataplane> = { ebpf: ebpfDataplane, iptables: iptablesDataplane, ipvs: ipvsDataplane, nftables: nftablesDataplane };
