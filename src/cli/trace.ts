// `kube-xdp trace`: where does this packet go? eBPF mode: answered by the loaded programs
// themselves, run on a scratch copy of the live maps (src/dataplane/ebpf/trace-run.ts).
// iptables / nftables modes: by walking the live ruleset (iptables-save, nft -j list) with the
// rule tracers (src/trace/live.ts). As text or JSON; --mode auto picks what runs here.
import { ConfigError, readFlags } from '../config/flags.js';
import { DEFAULT_OBJECT, DEFAULT_PIN_DIR } from '../config/run-config.js';
import { formatTrace, parseTracePacket } from '../dataplane/ebpf/trace.js';
import { traceLive } from '../dataplane/ebpf/trace-run.js';
import { Libkx } from '../kernel/libkx.js';
import { detectTraceMode, localAddresses, traceIptablesLive, traceNftablesLive, type TraceMode } from '../trace/live.js';
import { formatRuleTrace, type RuleTracePacket } from '../trace/report.js';

const MODES = ['auto', 'ebpf', 'iptables', 'nftables'] as const;

export function trace(argv: string[]): void {
  const { values } = readFlags(argv, {
    src: { type: 'string' },
    dst: { type: 'string' },
    from: { type: 'string', default: 'pod' },
    mode: { type: 'string', default: 'auto' },
    'bpf-pin-dir': { type: 'string', default: DEFAULT_PIN_DIR },
    'bpf-object': { type: 'string', default: DEFAULT_OBJECT },
    output: { type: 'string', short: 'o', default: 'text' },
  });
  if (values.output !== 'text' && values.output !== 'json') throw new ConfigError('output', `must be text or json, not ${JSON.stringify(values.output)}`);
  const modeFlag = values.mode as string;
  if (modeFlag === 'ipvs') throw new ConfigError('mode', 'trace does not support the IPVS mode (it traces ebpf, iptables and nftables)');
  if (!(MODES as readonly string[]).includes(modeFlag)) throw new ConfigError('mode', `must be one of ${MODES.join(', ')}, not ${JSON.stringify(modeFlag)}`);
  const packet = parseTracePacket({ src: values.src as string | undefined, dst: values.dst as string | undefined, from: values.from as string });
  const pinDir = values['bpf-pin-dir'] as string;
  const mode: TraceMode = modeFlag === 'auto' ? detectTraceMode(pinDir).mode : (modeFlag as TraceMode);
  const json = values.output === 'json';
  if (mode === 'ebpf') {
    const r = traceLive(new Libkx(), { pinDir, objectPath: values['bpf-object'] as string, packet });
    process.stdout.write(json ? `${JSON.stringify(r, null, 2)}\n` : formatTrace(r));
    return;
  }
  // --from host without --src: the node's own address of that family (it only matters for
  // rules on the source, e.g. masquerading of local traffic).
  let src = packet.src;
  if (!values.src) {
    const own = localAddresses(packet.dst.includes(':')).filter((a) => a !== '127.0.0.1' && a !== '::1');
    src = own[0] ?? (packet.dst.includes(':') ? '::1' : '127.0.0.1');
  }
  const p: RuleTracePacket = { from: packet.from, proto: packet.proto, src, sport: packet.sport, dst: packet.dst, dport: packet.dport };
  const r = mode === 'iptables' ? traceIptablesLive(p) : traceNftablesLive(p);
  process.stdout.write(json ? `${JSON.stringify(r, null, 2)}\n` : formatRuleTrace(r));
}
