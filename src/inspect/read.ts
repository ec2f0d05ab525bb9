// Reading the kernel state `inspect` shows, in the current network namespace: which mode's
// state is there (--mode auto), and each mode's reader (eBPF, nftables, IPVS, iptables). The
// edge around the pure readers.
import { existsSync, readFileSync } from 'node:fs';
import { readMaps } from '../dataplane/ebpf/apply.js';
import { CONTROLLED_MAPS } from '../dataplane/ebpf/dataplane.js';
import { describeMaps } from '../dataplane/ebpf/describe.js';
import { KernelMaps } from '../dataplane/ebpf/kernel-maps.js';
import { MAPS, STAT_NAMES, STATS_MAP } from '../dataplane/ebpf/maps.js';
import { parseIpsetSave } from '../dataplane/ipvs/ipsets.js';
import { parseIpvsadmList } from '../dataplane/ipvs/virtual-servers.js';
import { KUBE_IPVS_DEVICE, KUBE_SERVICES, NFT_TABLE } from '../dataplane/kube-names.js';
import { runCommand } from '../kernel/command.js';
import { Iptables, detectBackend } from '../kernel/iptables.js';
import { saveIpsets } from '../kernel/ipset.js';
import { listIpvs, listIpvsStats } from '../kernel/ipvsadm.js';
import { Libkx } from '../kernel/libkx.js';
import { Nft, nftVersion, type NftFamily } from '../kernel/nft.js';
import { ebpfView } from './ebpf.js';
import { iptablesView, parseIptablesSave } from './iptables.js';
import { ipvsView, parseIpvsStats } from './ipvs.js';
import { nftablesView } from './nftables.js';
import { ownerFileForNetns, ownerFileForPins, readOwnerFile } from './owners.js';
import type { InspectMode, InspectView } from './view.js';

export class NothingToInspectError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NothingToInspectError';
  }
}

const noPins = (pinDir: string) => `kube-xdp is not running in eBPF mode on this node (no pins at ${pinDir})`;
const hasPins = (pinDir: string) => existsSync(`${pinDir}/${MAPS.frontends.name}`);

/** kube-ipvs0 (both kube-proxy and kube-xdp create it) or a virtual server in this netns's
 *  /proc/net/ip_vs; not ipvsadm, which would load ip_vs on a node without IPVS. */
function hasIpvs(): boolean {
  if (runCommand('ip', ['-o', 'link', 'show', 'dev', KUBE_IPVS_DEVICE]).code === 0) return true;
  try {
    return /^(TCP|UDP|SCTP)\s/m.test(readFileSync('/proc/self/net/ip_vs', 'utf8'));
  } catch {
    return false;
  }
}

const NFT_FAMILIES: readonly NftFamily[] = ['ip', 'ip6'];

/** The `kube-proxy` nftables tables of this netns, as families; [] when the nft binary does not
 *  run (or cannot list: not root), as on a node without nftables. */
function nftTables(): NftFamily[] {
  if (nftVersion() === null) return [];
  // `nft list tables`, not the table itself: listing 100,000 chains takes seconds
  const r = runCommand('nft', ['list', 'tables']);
  if (r.code !== 0) return [];
  return NFT_FAMILIES.filter((family) => r.stdout.split('\n').some((l) => l.trim() === `table ${family} ${NFT_TABLE}`));
}

/** --mode auto: pins present → eBPF, a `kube-proxy` nftables table → nftables, IPVS state →
 *  ipvs, KUBE-SERVICES → iptables (the IPVS mode writes that chain too, so it is looked at last). */
export function detectInspectMode(pinDir: string): { mode: InspectMode; why: string } {
  if (hasPins(pinDir)) return { mode: 'ebpf', why: `maps pinned at ${pinDir}` };
  const nft = nftTables();
  if (nft.length) return { mode: 'nftables', why: nft.map((f) => `nftables table ${f} ${NFT_TABLE}`).join(', ') };
  if (hasIpvs()) return { mode: 'ipvs', why: `IPVS virtual servers or ${KUBE_IPVS_DEVICE}` };
  const { backend } = detectBackend();
  const ipt = new Iptables('IPv4', backend);
  if (ipt.available() && ipt.chains('nat').has(KUBE_SERVICES)) return { mode: 'iptables', why: `${KUBE_SERVICES} in iptables-${backend}` };
  throw new NothingToInspectError(`nothing to inspect in this network namespace: ${noPins(pinDir)}, no nftables table ip/ip6 ${NFT_TABLE}, ` +
    `no IPVS virtual servers and no ${KUBE_SERVICES} chain`);
}

export interface Read { readonly view: InspectView; readonly extra: Readonly<Record<string, unknown>> }

export function readEbpf(pinDir: string): Read {
  if (!hasPins(pinDir)) throw new NothingToInspectError(noPins(pinDir));
  const maps = KernelMaps.openPinned(new Libkx(), pinDir, [...CONTROLLED_MAPS, STATS_MAP]);
  try {
    const d = describeMaps(readMaps(maps));
    const sums = maps.sumPerCpu(STATS_MAP, STAT_NAMES.length);
    const stats = Object.fromEntries(STAT_NAMES.map((n, i) => [n, Number(sums[i])]));
    const ownerPath = ownerFileForPins(pinDir);
    // the raw frontends and stats stay in JSON/YAML as before (scripts read them)
    return { view: ebpfView(d, stats, readOwnerFile(ownerPath), `${pinDir} (names: ${ownerPath})`), extra: { ...d, stats } };
  } finally {
    maps.close();
  }
}

export function readIptables(): Read {
  const { backend } = detectBackend();
  const text: string[] = [];
  for (const family of ['IPv4', 'IPv6'] as const) {
    const ipt = new Iptables(family, backend);
    if (!ipt.available()) continue;
    text.push(ipt.save('nat', true), ipt.save('filter', true));
  }
  return { view: iptablesView(parseIptablesSave(text.join('')), `iptables-${backend}-save and ip6tables-${backend}-save`), extra: {} };
}

export function readIpvs(): Read {
  const ownerPath = ownerFileForNetns();
  const view = ipvsView(parseIpvsadmList(listIpvs()), parseIpvsStats(listIpvsStats()), parseIpsetSave(saveIpsets()),
    readOwnerFile(ownerPath), `ipvsadm -Ln, ipset save (names: ${ownerPath})`);
  return { view, extra: {} };
}

/** Both families' `kube-proxy` tables (`nft -j list table`); absent ones are left out. */
export function readNftables(): Read {
  if (nftVersion() === null) throw new NothingToInspectError('the nft binary does not run here (Debian: apt-get install nftables)');
  const docs = NFT_FAMILIES.map((family) => new Nft(family, NFT_TABLE).listTableJson());
  if (docs.every((d) => d === null)) throw new NothingToInspectError(`no nftables table ip/ip6 ${NFT_TABLE} in this network namespace`);
  return { view: nftablesView(docs, `nft -j list table ip ${NFT_TABLE} and ip6 ${NFT_TABLE}`), extra: {} };
}

export function readMode(mode: InspectMode, pinDir: string): Read {
  switch (mode) {
    case 'ebpf': return readEbpf(pinDir);
    case 'ipvs': return readIpvs();
    case 'nftables': return readNftables();
    case 'iptables': return readIptables();
  }
}
