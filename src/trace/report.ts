// `kube-xdp trace --mode iptables|nftables`, the pure part: a tracer's walk (src/trace/iptables.ts,
// src/trace/nftables.ts) turned into the answer (verdict, Service, candidate endpoints,
// masquerade, chains) and that answer as text.
import type { RuleVerdict, TraceFrom, TraceResult } from './types.js';

export type RuleMode = 'iptables' | 'nftables';

export interface RuleTracePacket {
  readonly from: TraceFrom; readonly proto: string;
  readonly src: string; readonly sport: number; readonly dst: string; readonly dport: number;
}

export interface RuleTraceReport {
  readonly mode: RuleMode;
  /** What was read (the commands). */
  readonly source: string;
  readonly packet: RuleTracePacket;
  /** What counts as LOCAL (addrtype / fib … type local): this netns's interface addresses. */
  readonly nodeIPs: readonly string[];
  /** DROP or REJECT when a rule says so, else ACCEPT (the packet goes on, translated or not). */
  readonly verdict: RuleVerdict;
  /** "namespace/name:port" of the Service the rules matched (comments, chain names), or null. */
  readonly service: string | null;
  /** DNAT destinations: every endpoint the random choice may pick (all branches are followed). */
  readonly candidates: readonly string[];
  readonly masquerade: boolean;
  readonly chains: readonly string[];
  readonly rules: readonly string[];
}

const SERVICE_IN_COMMENT = /^([a-z0-9][-a-z0-9.]*\/[a-z0-9][-a-z0-9.]*(?::[-A-Za-z0-9_.]+)?)(?=\s|$)/;
// kube-proxy nftables chain names: service-HASH-ns/name/proto/port, external-…, firewall-…, endpoint-…__ip/port
const SERVICE_CHAIN = /^(?:service|external|firewall|endpoint)-[A-Z0-9]+-([^/]+)\/([^/]+)\/(?:tcp|udp|sctp)\/([^_/]*)/;

function iptablesComments(rule: string): string[] {
  return [...rule.matchAll(/--comment (?:"((?:[^"\\]|\\.)*)"|(\S+))/g)].map((m) => m[1] ?? m[2]!);
}

/** The Service a walk went through: iptables from the rules' comments ("ns/svc:port cluster IP",
 *  "ns/svc:port has no endpoints"), nftables from chain names and map element comments. */
export function serviceOf(mode: RuleMode, r: TraceResult): string | null {
  if (mode === 'nftables') {
    for (const c of r.chains) {
      const m = SERVICE_CHAIN.exec(c);
      if (m) return `${m[1]}/${m[2]}${m[3] ? `:${m[3]}` : ''}`;
    }
    for (const rule of r.matches) {
      const m = /\[@\S+: [^\]"]*"([^"]*)"\]$/.exec(rule);
      const s = m ? SERVICE_IN_COMMENT.exec(m[1]!) : null;
      if (s) return s[1]!;
    }
    return null;
  }
  for (const rule of r.matches) {
    for (const c of iptablesComments(rule)) {
      const s = SERVICE_IN_COMMENT.exec(c);
      if (s) return s[1]!;
    }
  }
  return null;
}

export function ruleTraceReport(mode: RuleMode, source: string, packet: RuleTracePacket, nodeIPs: readonly string[], r: TraceResult): RuleTraceReport {
  const verdict: RuleVerdict = r.verdict === 'DROP' || r.verdict === 'REJECT' ? r.verdict : 'ACCEPT';
  const candidates = r.output === '' ? [] : r.output.split(', ').filter((o) => o !== 'ACCEPT' && o !== 'DROP' && o !== 'REJECT');
  return {
    mode, source, packet, nodeIPs, verdict, service: serviceOf(mode, r), candidates: [...new Set(candidates)],
    masquerade: verdict === 'ACCEPT' && r.masq, chains: r.chains, rules: r.matches,
  };
}

const hostPort = (a: string, p: number) => (a.includes(':') ? `[${a}]:${p}` : `${a}:${p}`);
const FROM_TEXT: Record<TraceFrom, string> = { pod: 'a pod', external: 'outside', host: 'the node' };

export function formatRuleTrace(r: RuleTraceReport): string {
  const p = r.packet;
  const lines = [
    `packet     ${p.proto} ${hostPort(p.src, p.sport)} -> ${hostPort(p.dst, p.dport)} from ${FROM_TEXT[p.from]} (${r.mode}: traced over ${r.source}, no state created)`,
    `local     ${r.nodeIPs.length ? ` ${r.nodeIPs.join(' ')}` : ' (none)'}`,
    `verdict    ${r.verdict}${r.verdict === 'ACCEPT' ? (r.candidates.length ? ' (translated)' : ' (passed on untranslated)') : ''}`,
    `service    ${r.service ?? 'none: not a Service packet here'}`,
  ];
  if (r.candidates.length > 0 || r.service !== null) {
    lines.push(`endpoints  ${r.candidates.length} candidate${r.candidates.length === 1 ? '' : 's'}${r.candidates.length > 1 ? ' (one is picked at random)' : ''}`);
    for (const c of r.candidates) lines.push(`  -> ${c}`);
  }
  lines.push(`masquerade ${r.masquerade ? 'yes (SNAT to the node address)' : 'no'}`);
  lines.push(`chains     ${r.chains.join(' -> ')}`);
  lines.push('rules');
  for (const rule of r.rules) lines.push(`  ${rule}`);
  return `${lines.join('\n')}\n`;
}
