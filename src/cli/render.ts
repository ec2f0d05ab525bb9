// `kube-xdp render --mode iptables|ipvs|nftables`: Services and EndpointSlices (a file, or stdin) plus
// node facts → exactly what a sync would program on an empty node. Nothing touches the kernel.
import { readFileSync } from 'node:fs';
import { ConfigError, readFlags } from '../config/flags.js';
import { expandNodePortAddresses } from '../config/kube-proxy-config.js';
import { PROXY_FLAGS, proxySettings } from '../config/run-config.js';
import { renderIptables } from '../dataplane/iptables/render.js';
import { iptablesConfigs, proxyFamilies, readHostFacts, ruleModeConfig } from '../dataplane/iptables/setup.js';
import { ipsetRestoreText } from '../dataplane/ipvs/ipsets.js';
import { renderIpvs } from '../dataplane/ipvs/render.js';
import { renderNftablesFull } from '../dataplane/nftables/render.js';
import { ipvsConfigs } from '../dataplane/ipvs/setup.js';
import { ipvsadmRestoreText } from '../dataplane/ipvs/virtual-servers.js';
import { KUBE_IPVS_DEVICE } from '../dataplane/kube-names.js';
import { Iptables } from '../kernel/iptables.js';
import { ipFamilyOf, objectRef } from '../model/k8s.js';
import { ChangeTracker } from '../model/tracker.js';
import type { ObjectKind } from '../model/types.js';
import { parseObjects } from '../source/file-source.js';

const KINDS = new Set<string>(['Service', 'EndpointSlice', 'ServiceCIDR']);

export function render(argv: string[], out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): void {
  const { values: v } = readFlags(argv, { ...PROXY_FLAGS, source: { type: 'string', default: '-' } });
  const settings = proxySettings(v);
  for (const w of settings.warnings) err.write(`warning: ${w}\n`);
  const proxy = { ...settings, nodePortAddresses: expandNodePortAddresses(settings.nodePortAddresses, settings.nodeIPs) };
  if (proxy.mode !== 'iptables' && proxy.mode !== 'ipvs' && proxy.mode !== 'nftables') {
    throw new ConfigError('mode', `render supports iptables, ipvs and nftables (got ${JSON.stringify(proxy.mode)})`);
  }
  const source = v.source as string;
  const text = readFileSync(source === '-' ? 0 : source, 'utf8');

  const tracker = new ChangeTracker({ onInvalid: (p) => err.write(`${p.text}\n`) });
  const parsed = parseObjects(text, source === '-' ? 'stdin' : source);
  for (const problem of parsed.problems) err.write(`${problem.message}\n`);
  for (const object of parsed.objects) {
    const kind = object['kind'];
    if (typeof kind !== 'string' || !KINDS.has(kind)) {
      err.write(`${JSON.stringify(kind ?? null)} ${JSON.stringify(objectRef(object)?.name ?? '(unnamed)')}: not a kind render reads (${[...KINDS].join(', ')}): ignored\n`);
      continue;
    }
    tracker.update({ kind: kind as ObjectKind, type: 'ADDED', object });
  }
  const families = proxyFamilies(proxy);
  const state = tracker.snapshot({ nodeName: proxy.nodeName, zone: null, ipFamilies: families });

  // The node is described by the flags, not by this machine: its addresses are the --node-ip
  // values plus loopback. The iptables version (for --random-fully) and the conntrack sysctl
  // are read from this machine, as a sync here would.
  const ipt = new Iptables('IPv4', 'nft');
  const host = readHostFacts(ipt.available() ? ipt : null);
  const localAddresses = {
    IPv4: ['127.0.0.1', ...proxy.nodeIPs.filter((ip) => ipFamilyOf(ip) === 'IPv4')],
    IPv6: ['::1', ...proxy.nodeIPs.filter((ip) => ipFamilyOf(ip) === 'IPv6')],
  };
  if (proxy.mode === 'nftables') {
    // knftables' Dump() of the full-sync transaction applied to an empty table, per family.
    for (const family of families) {
      const r = renderNftablesFull(state, ruleModeConfig(proxy, family, localAddresses[family]));
      for (const w of r.warnings) err.write(`warning: ${w}\n`);
      out.write(`# ${family}:\n${r.ruleset.dump()}`);
    }
    return;
  }
  if (proxy.mode === 'ipvs') {
    const renders = ipvsConfigs(proxy, families, host, localAddresses).map((cfg) => ({ cfg, r: renderIpvs(state, cfg) }));
    out.write(`# ipvsadm --restore\n${ipvsadmRestoreText(renders.flatMap(({ r }) => r.virtualServers))}`);
    for (const { cfg, r } of renders) out.write(`# ${cfg.family}: ipset restore\n${ipsetRestoreText(r.ipsets, cfg.family, null)}`);
    for (const { cfg, r } of renders) out.write(`# ${cfg.family}: ${cfg.family === 'IPv6' ? 'ip6tables' : 'iptables'}-restore --noflush\n${r.iptables}`);
    out.write(`# ${KUBE_IPVS_DEVICE} addresses\n${renders.flatMap(({ r }) => r.bindAddresses).map((ip) => `${ip}\n`).join('')}`);
    return;
  }
  for (const cfg of iptablesConfigs(proxy, families, { ...host, localAddresses })) {
    const r = renderIptables(state, cfg);
    for (const w of r.warnings) err.write(`warning: ${w}\n`);
    if (families.length > 1) out.write(`# ${cfg.family}: ${cfg.family === 'IPv6' ? 'ip6tables' : 'iptables'}-restore --noflush input\n`);
    out.write(r.text);
  }
}
