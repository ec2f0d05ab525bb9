// `kube-xdp trace --mode iptables|nftables` against the current network namespace: read the live
// ruleset (iptables-save / nft -j list only, nothing is created or changed), walk it with the
// tracer, report. Also the mode detection for --mode auto (ebpf, nftables, iptables; IPVS is
// refused). The edge around the pure tracers.
import { isIP } from 'node:net';
import { readInterfaceAddresses } from '../dataplane/iptables/setup.js';
import { detectInspectMode, NothingToInspectError } from '../inspect/read.js';
import { Iptables, detectBackend } from '../kernel/iptables.js';
import { Nft, nftVersion } from '../kernel/nft.js';
import { NFT_TABLE } from '../dataplane/kube-names.js';
import { tracePacket } from './iptables.js';
import { nftJsonToView } from './nft-json.js';
import { traceNftPacket } from './nftables.js';
import { ruleTraceReport, type RuleMode, type RuleTracePacket, type RuleTraceReport } from './report.js';

export type TraceMode = 'ebpf' | RuleMode;

export class TraceModeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TraceModeError';
  }
}

/** --mode auto: inspect's detection (eBPF pins, else an nftables `kube-proxy` table, else IPVS
 *  state, else KUBE-SERVICES in iptables); IPVS is refused (trace does not support it). */
export function detectTraceMode(pinDir: string): { mode: TraceMode; why: string } {
  let found: ReturnType<typeof detectInspectMode>;
  try {
    found = detectInspectMode(pinDir);
  } catch (e) {
    if (e instanceof NothingToInspectError) throw new TraceModeError(e.message.replace('nothing to inspect', 'nothing to trace'));
    throw e;
  }
  if (found.mode === 'ipvs') throw new TraceModeError(`trace does not support the IPVS mode (found ${found.why}); it traces the ebpf, iptables and nftables modes`);
  return { mode: found.mode, why: found.why };
}

/** The LOCAL addresses of this netns for a family (what addrtype/fib type local match). */
export function localAddresses(v6: boolean): string[] {
  return readInterfaceAddresses()[v6 ? 'IPv6' : 'IPv4'];
}

export function traceIptablesLive(packet: RuleTracePacket): RuleTraceReport {
  const v6 = isIP(packet.dst) === 6;
  const { backend } = detectBackend();
  const ipt = new Iptables(v6 ? 'IPv6' : 'IPv4', backend);
  if (!ipt.available()) throw new TraceModeError(`${v6 ? 'ip6tables' : 'iptables'}-${backend} is not available`);
  const text = ipt.save('nat') + ipt.save('filter');
  if (!/^:KUBE-SERVICES /m.test(text)) throw new TraceModeError(`no KUBE-SERVICES chain in ${v6 ? 'ip6tables' : 'iptables'}-${backend}: kube-xdp/kube-proxy is not running in iptables mode for this family`);
  const nodeIPs = localAddresses(v6);
  const r = tracePacket(text, { sourceIP: packet.src, protocol: packet.proto, destIP: packet.dst, destPort: packet.dport }, nodeIPs, packet.from);
  const bin = `${v6 ? 'ip6tables' : 'iptables'}-${backend}-save`;
  return ruleTraceReport('iptables', `${bin} -t nat, ${bin} -t filter`, packet, nodeIPs, r);
}

export function traceNftablesLive(packet: RuleTracePacket): RuleTraceReport {
  const family = isIP(packet.dst) === 6 ? 'ip6' : 'ip';
  if (nftVersion() === null) throw new TraceModeError('nft does not run here (nftables mode needs the nft binary)');
  const doc = new Nft(family, NFT_TABLE).listTableJson();
  if (doc === null) throw new TraceModeError(`no nftables table ${family} ${NFT_TABLE}: kube-xdp/kube-proxy is not running in nftables mode for this family`);
  const view = nftJsonToView(doc, family, NFT_TABLE);
  // fib … type local: the netns's addresses (loopback too, as the kernel's fib does).
  const nodeIPs = localAddresses(family === 'ip6');
  const r = traceNftPacket(view, { sourceIP: packet.src, protocol: packet.proto, destIP: packet.dst, destPort: packet.dport }, nodeIPs, packet.from);
  return ruleTraceReport('nftables', `nft -j list table ${family} ${NFT_TABLE}`, packet, nodeIPs, r);
}
