// `kube-xdp trace`, the pure part: the packet a user describes, what a program's test run did
// to it (verdict, backend, SNAT), the host scope's answer computed from the maps, and the
// report as text. The run itself is in trace-run.ts.
import { ConfigError } from '../../config/flags.js';
import { canonicalAddress } from '../../model/cidr.js';
import type { DescribedBackend, DescribedFrontend, Description } from './describe.js';
import { ICMP, ICMPV6, frameOf, parseFrame, parseIcmp6Frame, parseIcmpFrame } from './frames.js';
import { TC_PROGRAM, XDP_PROGRAM } from './loader.js';
import { PROTO_NUMBER } from './maps.js';

export const TRACE_FROM = ['pod', 'external', 'host'] as const;
export type TraceFrom = (typeof TRACE_FROM)[number];
export type TraceProto = keyof typeof PROTO_NUMBER;

/** A client port when --src has none: below the SNAT range, above the usual service ports. */
export const DEFAULT_SOURCE_PORT = 40000;

export interface TracePacket {
  readonly from: TraceFrom; readonly proto: TraceProto;
  readonly src: string; readonly sport: number; readonly dst: string; readonly dport: number;
}

/** The program each origin's packets meet (host: the socket hooks, not run). */
export const TRACE_PROGRAM: Record<TraceFrom, string> = { pod: TC_PROGRAM, external: XDP_PROGRAM, host: 'the socket hooks (connect, sendmsg)' };
const SCOPE_OF: Record<TraceFrom, DescribedFrontend['scope']> = { pod: 'internal', external: 'external', host: 'host' };

/** "IP", "IP:PORT", "[IPv6]:PORT" or a bare IPv6 address → address (canonical) and port. */
function splitHostPort(flag: string, text: string, portRequired: boolean): { addr: string; port: number | null } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(text) ?? /^([^:]+)(?::(\d+))?$/.exec(text) ?? /^([0-9a-fA-F:.]+)()$/.exec(text);
  const addr = m ? canonicalAddress(m[1]!) : null;
  if (!m || !addr) throw new ConfigError(flag, `${JSON.stringify(text)} is not IP${portRequired ? ':PORT' : '[:PORT]'} (IPv6 as [IP]:PORT)`);
  if (!m[2]) {
    if (portRequired) throw new ConfigError(flag, `${JSON.stringify(text)} has no port`);
    return { addr, port: null };
  }
  const port = Number(m[2]);
  if (port < 1 || port > 65535) throw new ConfigError(flag, `port ${port} is not in [1, 65535]`);
  return { addr, port };
}

/** The packet of `--src IP[:PORT] --dst IP:PORT/PROTO --from pod|external|host`. --src may be
 *  left out for host (the node's own socket; its address only matters for affinity). */
export function parseTracePacket(v: { src?: string; dst?: string; from?: string }): TracePacket {
  const from = v.from ?? 'pod';
  if (!(TRACE_FROM as readonly string[]).includes(from)) throw new ConfigError('from', `must be one of ${TRACE_FROM.join(', ')}, not ${JSON.stringify(from)}`);
  if (!v.dst) throw new ConfigError('dst', 'is required (IP:PORT/PROTO, e.g. 10.96.0.10:80/TCP)');
  const slash = v.dst.lastIndexOf('/');
  const proto = slash < 0 ? '' : v.dst.slice(slash + 1).toUpperCase();
  if (!(proto in PROTO_NUMBER)) throw new ConfigError('dst', `${JSON.stringify(v.dst)}: the protocol after / must be TCP, UDP or SCTP`);
  const dst = splitHostPort('dst', v.dst.slice(0, slash), true);
  if (!v.src && from !== 'host') throw new ConfigError('src', 'is required (IP[:PORT]) unless --from host');
  const src = v.src ? splitHostPort('src', v.src, false) : { addr: dst.addr.includes(':') ? '::' : '0.0.0.0', port: null };
  if (src.addr.includes(':') !== dst.addr.includes(':')) throw new ConfigError('src', `${src.addr} and ${dst.addr} are of different families`);
  return { from: from as TraceFrom, proto: proto as TraceProto, src: src.addr, sport: src.port ?? DEFAULT_SOURCE_PORT, dst: dst.addr, dport: dst.port! };
}

/** The frame a program is run on: Ethernet, IP, and a TCP SYN (a new connection) or a datagram. */
export function traceFrame(p: TracePacket): Buffer {
  return frameOf({ src: p.src, dst: p.dst, sport: p.sport, dport: p.dport, proto: PROTO_NUMBER[p.proto] });
}

export type Verdict = 'translated' | 'pass' | 'reject' | 'drop';
export type TraceOutput =
  | { readonly src: string; readonly sport: number; readonly dst: string; readonly dport: number }
  | { readonly src: string; readonly dst: string; readonly icmp: { readonly type: number; readonly code: number } };

const XDP_ACTIONS = ['XDP_ABORTED', 'XDP_DROP', 'XDP_PASS', 'XDP_TX', 'XDP_REDIRECT'];
const TC_ACTIONS: Record<number, string> = { 0: 'TC_ACT_OK', 2: 'TC_ACT_SHOT', 7: 'TC_ACT_REDIRECT' };

/** What a program's test run did: dropped, answered with an ICMP error (REJECT), rewrote the
 *  addresses or ports, or left the packet as it was. */
export function runOutcome(from: 'pod' | 'external', retval: number, input: Buffer, out: Buffer): { verdict: Verdict; action: string; output: TraceOutput | null } {
  const action = (from === 'external' ? XDP_ACTIONS[retval] : TC_ACTIONS[retval]) ?? `return value ${retval}`;
  if (from === 'external' ? retval <= 1 : retval === 2) return { verdict: 'drop', action, output: null };
  const v6 = out.length >= 14 && out.readUInt16BE(12) === 0x86dd;
  const outProto = v6 ? out[14 + 6] : out[14 + 9];
  if (outProto === (v6 ? ICMPV6 : ICMP)) {
    const e = v6 ? parseIcmp6Frame(out) : parseIcmpFrame(out);
    return { verdict: 'reject', action, output: { src: e.src, dst: e.dst, icmp: { type: e.type, code: e.code } } };
  }
  const [a, b] = [parseFrame(input), parseFrame(out)];
  const output = { src: b.src, sport: b.sport, dst: b.dst, dport: b.dport };
  const same = a.src === b.src && a.sport === b.sport && a.dst === b.dst && a.dport === b.dport;
  return { verdict: same ? 'pass' : 'translated', action, output };
}

export interface TraceResult {
  readonly packet: TracePacket;
  readonly program: string;
  /** false: the answer is computed from the maps (the socket hooks cannot be test-run). */
  readonly ran: boolean;
  readonly verdict: Verdict;
  /** The program's return value by name, or what the socket call does. */
  readonly action: string;
  /** The frontend {address, port, protocol, scope} the packet matched, with its backend set. */
  readonly frontend: DescribedFrontend | null;
  /** The other frontends of the same backend set (the Service's other addresses of this view). */
  readonly alsoAt: readonly string[];
  readonly candidates: readonly DescribedBackend[];
  readonly chosen: { readonly address: string; readonly port: number; readonly id: number | null; readonly flags: readonly string[] } | null;
  readonly snat: { readonly address: string; readonly port: number } | null;
  /** The live conntrack table that holds this tuple (copied for the run), or null: a new flow. */
  readonly conntrack: { readonly table: string; readonly dir: 'forward' | 'reply' } | null;
  readonly output: TraceOutput | null;
  /** kx_stats counters the run moved (on the scratch copy), by name. */
  readonly counters: Readonly<Record<string, number>>;
}

const hostPort = (ip: string, port: number) => (ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`);
const frontendText = (f: DescribedFrontend) => `${f.protocol} ${hostPort(f.address, f.port)} ${f.scope}`;

/** The frontend a packet from `from` meets: each hook looks up its own scope only. */
export function matchFrontend(d: Description, p: TracePacket): { frontend: DescribedFrontend | null; alsoAt: string[] } {
  const frontend = d.frontends.find((f) => f.address === p.dst && f.port === p.dport && f.protocol === p.proto && f.scope === SCOPE_OF[p.from]) ?? null;
  const alsoAt = frontend ? d.frontends.filter((f) => f.svcId === frontend.svcId && f !== frontend).map(frontendText) : [];
  return { frontend, alsoAt };
}

/** A test run's result joined with the maps it ran on. */
export function runTrace(
  p: TracePacket & { from: 'pod' | 'external' }, d: Description, run: { retval: number; input: Buffer; out: Buffer },
  conntrack: TraceResult['conntrack'], counters: Record<string, number>,
): TraceResult {
  const { verdict, action, output } = runOutcome(p.from, run.retval, run.input, run.out);
  const { frontend, alsoAt } = matchFrontend(d, p);
  const candidates = frontend?.backends ?? [];
  // a reply is translated back to the client: no backend is chosen for it
  const forward = verdict === 'translated' && output && 'dport' in output && conntrack?.dir !== 'reply';
  const chosen = forward ? candidates.find((b) => b.address === output.dst && b.port === output.dport) ?? { address: output.dst, port: output.dport, id: null, flags: [] } : null;
  const snat = forward && (output.src !== p.src || output.sport !== p.sport) ? { address: output.src, port: output.sport } : null;
  return { packet: p, program: TRACE_PROGRAM[p.from], ran: true, verdict, action, frontend, alsoAt, candidates, chosen, snat, conntrack, output, counters };
}

/** The socket hooks' decision for a node process's connect()/sendmsg(), from the maps (as
 *  kx_sock_af.h decides: frontend of scope host; none: unchanged; no backend: refused or
 *  unreachable; else a backend of the set, at random or by affinity). */
export function hostTrace(p: TracePacket, d: Description): TraceResult {
  const { frontend, alsoAt } = matchFrontend(d, p);
  const base = { packet: p, program: TRACE_PROGRAM.host, ran: false, frontend, alsoAt, chosen: null, snat: null, conntrack: null, output: null, counters: {} };
  if (!frontend) return { ...base, verdict: 'pass', action: 'connect() unchanged', candidates: [] };
  if (frontend.backends.length === 0) {
    return frontend.flags.includes('reject')
      ? { ...base, verdict: 'reject', action: 'connect() fails with ECONNREFUSED', candidates: [] }
      : { ...base, verdict: 'drop', action: 'connect() fails with EHOSTUNREACH', candidates: [] };
  }
  return {
    ...base, verdict: 'translated', candidates: frontend.backends,
    action: `connect() goes to one of the candidates (${frontend.flags.includes('affinity') ? "the node's affinity choice while it lasts, else " : ''}random per connect())`,
  };
}

/** The report as text. */
export function formatTrace(r: TraceResult): string {
  const p = r.packet;
  const how = r.ran ? 'run with BPF_PROG_TEST_RUN on a scratch copy of the maps' : 'computed from the maps: BPF_PROG_TEST_RUN cannot run socket hooks';
  const lines = [
    `packet     ${p.proto} ${hostPort(p.src, p.sport)} -> ${hostPort(p.dst, p.dport)} from ${p.from === 'host' ? 'the node' : p.from === 'pod' ? 'a pod' : 'outside'} (${r.program}, ${how})`,
    `verdict    ${r.verdict} (${r.action})`,
  ];
  if (r.conntrack) lines.push(`conntrack  a live flow: ${r.conntrack.dir} entry in ${r.conntrack.table}`);
  const f = r.frontend;
  if (f) {
    lines.push(`frontend   ${frontendText(f)}, backend set ${f.svcId}${f.flags.length ? `, ${f.flags.join(',')}` : ''}${f.revNat ? `, replies from ${f.revNat}` : ''}`);
    lines.push(`service    ${r.alsoAt.length ? `also at ${r.alsoAt.join('; ')}` : 'no other address in this backend set'} (the maps hold no namespace/name)`);
  } else {
    lines.push(`frontend   none of scope ${SCOPE_OF[p.from]} for ${p.proto} ${hostPort(p.dst, p.dport)}: not a Service packet here`);
  }
  if (f) {
    lines.push(`backends   ${r.candidates.length} candidate${r.candidates.length === 1 ? '' : 's'}`);
    for (const b of r.candidates) lines.push(`  -> ${hostPort(b.address, b.port).padEnd(28)} id ${String(b.id).padEnd(6)} ${b.flags.join(',')}`.trimEnd());
  }
  if (r.chosen) lines.push(`chosen     ${hostPort(r.chosen.address, r.chosen.port)}${r.chosen.id === null ? ' (not a current candidate)' : ` (id ${r.chosen.id})`}`);
  if (r.ran && r.verdict === 'translated' && r.conntrack?.dir !== 'reply') lines.push(`snat       ${r.snat ? hostPort(r.snat.address, r.snat.port) : 'none (the backend sees the client address)'}`);
  const o = r.output;
  if (o) lines.push(`output     ${'icmp' in o ? `ICMP type ${o.icmp.type} code ${o.icmp.code} ${o.src} -> ${o.dst}` : `${p.proto} ${hostPort(o.src, o.sport)} -> ${hostPort(o.dst, o.dport)}`}`);
  if (r.ran) {
    const moved = Object.entries(r.counters);
    lines.push(`counters   ${moved.length ? moved.map(([n, v]) => `${n} +${v}`).join(' ') : 'none moved'}`);
  }
  return `${lines.join('\n')}\n`;
}
