// A virtual packet walk through an nftables ruleset, after kube-proxy's nftablesTracer
// (pkg/proxy/nftables/helpers_test.go, the sigs.k8s.io/knftables version that goes with
// proxier.go b0f823e6, as in kubernetes/kubernetes and aroradaman/kubernetes@7c37bd57:
// filter-prerouting, nat-prerouting, then filter-forward and filter-input).
// Like kube-proxy's it does not parse nftables in general: it recognises, by regex, the pieces
// of rules kube-proxy (and our renderer) writes. Unlike kube-proxy's it compiles every rule of
// every chain before tracing and throws on anything it does not recognise, on a jump to a chain
// or a lookup in a set/map that does not exist, and on a terminal statement that is not last,
// so a rule it does not understand can never pass silently.
//
// Differences from the Go tracer, all stricter or more literal:
//  - "jump mark-for-masquerade" is not special-cased: the chain's `mark set mark or M` runs, and
//    the masquerade decision is what nat-postrouting (masquerading: `mark and M == 0 return`,
//    `mark set mark xor M`, `masquerade fully-random`) does at the end. A packet dropped or
//    rejected on the way never gets there (kube-proxy's expectations for those are masq=false).
//  - `ip daddr { a, b }` matches when any element matches (Go's addressMatchesSet requires all
//    of them to, which only agrees for one-element sets, the only kind kube-proxy's tests use).
//  - set/map keys are compared as addresses/CIDRs, protocols and ports, not as strings.
//  - `ip saddr @affinity-…` (session affinity) is a real source lookup; a rendered affinity set
//    has no elements, so it never matches a first packet. `update @set { ip saddr }` is a no-op.
//  - numgen's `mod N` must equal the number of vmap entries, numbered 0..N-1.
// An optional 'netfilter' path (ours) walks the hooks a real packet meets instead, so the output
// chains (filter-output, nat-output, filter-output-post-dnat) are traced for host-originated
// packets; kube-proxy's walk skips them.
// The paths 'pod' | 'external' | 'host' (for `kube-xdp trace` on a live ruleset) are the
// 'netfilter' walk with the origin given instead of guessed from the source address.
// Result types are the iptables tracer's (src/trace/types.ts), so expectations are shared. Pure.
import { BlockList, isIP } from 'node:net';
import type { Packet, RuleVerdict, TraceFrom, TraceResult } from './types.js';

export type { Packet, TraceResult } from './types.js';

// ---- what the tracer reads: NftRuleset's shape (structurally) -------------------------------

export interface NftRuleView {
  readonly chains: ReadonlyMap<string, { readonly rules: readonly { readonly rule: string; readonly comment?: string }[] }>;
  readonly sets: ReadonlyMap<string, {
    readonly kind: 'set' | 'map';
    readonly elements: readonly { readonly key: readonly string[]; readonly value?: readonly string[]; readonly comment?: string }[];
  }>;
}

// ---- compiled rules -------------------------------------------------------------------------

interface PacketState {
  src: string;
  proto: string;
  dst: string;
  dport: number;
  mark: number;
}

type Step =
  | { k: 'match'; test: (p: PacketState, t: Tracer) => boolean }
  | { k: 'mark'; op: 'or' | 'xor' | 'set'; value: number }
  | { k: 'noop' }
  | { k: 'jump' | 'goto'; chain: string }
  | { k: 'verdict'; v: 'DROP' | 'REJECT' | 'ACCEPT' }
  | { k: 'return' }
  | { k: 'dnat'; to: string }
  | { k: 'masquerade' }
  | { k: 'numgen'; chains: string[] }
  | { k: 'vmap'; map: string; key: KeyPart[] };

type KeyPart = 'daddr' | 'saddr' | 'l4proto' | 'dport';

interface CompiledRule {
  raw: string;
  steps: Step[];
}

interface Tracer {
  nodeIPs: ReadonlySet<string>;
  sets: NftRuleView['sets'];
  /** Compiled values of verdict-map elements, by map name, in element order. */
  vmaps: Map<string, { key: readonly string[]; verdict: Step[]; comment?: string }[]>;
}

const TERMINAL = new Set<Step['k']>(['jump', 'goto', 'verdict', 'return', 'dnat', 'masquerade', 'numgen', 'vmap']);

// Regexes for the rule pieces (`^` anchored against what is left of the rule).
const IPX = String.raw`ip6?`;
const R = {
  comment: / *comment "[^"]*"$/,
  ctStateNew: /^ct state new\b/,
  destSourceLookup: new RegExp(String.raw`^${IPX} daddr \. meta l4proto \. th dport \. ${IPX} saddr @(\S+)`),
  destDispatch: new RegExp(String.raw`^${IPX} daddr \. meta l4proto \. th dport vmap @(\S+)$`),
  destLookup: new RegExp(String.raw`^${IPX} daddr \. meta l4proto \. th dport @(\S+)`),
  destPortDispatch: /^meta l4proto \. th dport vmap @(\S+)$/,
  destPortLookup: /^meta l4proto \. th dport @(\S+)/,
  addrLookup: new RegExp(String.raw`^${IPX} (daddr|saddr) @(\S+)`),
  addrAnon: new RegExp(String.raw`^${IPX} (daddr|saddr) (!= )?\{([^}]*)\}`),
  addrLiteral: new RegExp(String.raw`^${IPX} (daddr|saddr) (!= )?([0-9a-fA-F.:]+(?:/\d+)?)(?=\s|$)`),
  fibLocal: /^fib (daddr|saddr) type local\b/,
  protoPort: /^(tcp|udp|sctp) dport (\d+)\b/,
  thDport: /^th dport (\d+)\b/,
  l4proto: /^meta l4proto (tcp|udp|sctp)\b(?! *\.)/,
  markTest: /^(?:meta )?mark and (0x[0-9a-fA-F]+|\d+) (==|!=) (0x[0-9a-fA-F]+|\d+)\b/,
  markSet: /^(?:meta )?mark set (?:(?:meta )?mark (or|xor) )?(0x[0-9a-fA-F]+|\d+)\b/,
  affinityUpdate: new RegExp(String.raw`^update @(\S+) \{ ${IPX} saddr \}`),
  numgen: /^numgen random mod (\d+) vmap \{(.*)\}$/,
  numgenEntry: /^\s*(\d+) : goto (\S+)\s*$/,
  jump: /^(jump|goto) (\S+)$/,
  ret: /^return$/,
  verdict: /^(drop|reject|accept)$/,
  rejectWith: /^reject with \S+(?: \S+)*$/,
  dnat: new RegExp(String.raw`^(?:meta l4proto (tcp|udp|sctp) )?dnat (?:${IPX} )?to (\S+)$`),
  masquerade: /^masquerade(?: (?:fully-random|random|persistent)(?:,(?:fully-random|random|persistent))*)?$/,
};

function parseNumber(text: string): number {
  const n = /^0x/i.test(text) ? parseInt(text, 16) : Number(text);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`bad number ${JSON.stringify(text)}`);
  return n;
}

/** An address or CIDR from kube-proxy output, as a matcher of packet addresses. */
function addressMatcher(value: string, where: string): (ip: string) => boolean {
  const [addr, prefix] = value.trim().split('/') as [string, string | undefined];
  const fam = isIP(addr);
  if (fam === 0) throw new Error(`bad address ${JSON.stringify(value)} in ${where}`);
  const type = fam === 4 ? 'ipv4' : 'ipv6';
  const list = new BlockList();
  if (prefix === undefined) list.addAddress(addr, type);
  else {
    const bits = Number(prefix);
    if (!Number.isInteger(bits) || bits < 0 || bits > (fam === 4 ? 32 : 128)) throw new Error(`bad prefix ${JSON.stringify(value)} in ${where}`);
    list.addSubnet(addr, bits, type);
  }
  return (ip) => {
    const f = isIP(ip);
    return f === fam && list.check(ip, type);
  };
}

/** A set/map element key, one string per concatenated part. */
function keyParts(key: readonly string[]): string[] {
  return key.length === 1 ? key[0]!.split(' . ').map((s) => s.trim()) : key.map((s) => s.trim());
}

function keyPartMatches(part: KeyPart, elem: string, p: PacketState): boolean {
  switch (part) {
    case 'daddr':
      return addressMatcher(elem, 'set element')(p.dst);
    case 'saddr':
      return addressMatcher(elem, 'set element')(p.src);
    case 'l4proto':
      return elem.toLowerCase() === p.proto;
    case 'dport': {
      const m = /^(\d+)(?:-(\d+))?$/.exec(elem);
      if (!m) throw new Error(`bad port ${JSON.stringify(elem)} in set element`);
      const lo = Number(m[1]);
      const hi = m[2] === undefined ? lo : Number(m[2]);
      return p.dport >= lo && p.dport <= hi;
    }
  }
}

function compileRule(raw: string, view: NftRuleView, vmaps: Tracer['vmaps'], where: string): CompiledRule {
  const steps: Step[] = [];
  const fail = (why: string): never => {
    throw new Error(`${why} in ${where}: ${JSON.stringify(raw)}`);
  };
  const needSet = (name: string, kind: 'set' | 'map') => {
    const s = view.sets.get(name);
    if (!s) fail(`lookup in unknown ${kind} @${name}`);
    if (s!.kind !== kind) fail(`@${name} is a ${s!.kind}, used as a ${kind}`);
  };
  const needChain = (name: string) => {
    if (!view.chains.has(name)) fail(`jump/goto to unknown chain ${name}`);
  };
  const lookup = (name: string, key: KeyPart[]): Step => {
    needSet(name, 'set');
    return {
      k: 'match',
      test: (p, t) => t.sets.get(name)!.elements.some((e) => {
        const parts = keyParts(e.key);
        if (parts.length !== key.length) throw new Error(`@${name} element ${JSON.stringify(e.key)} does not have ${key.length} key parts (${where})`);
        return key.every((part, i) => keyPartMatches(part, parts[i]!, p));
      }),
    };
  };
  const vmap = (name: string, key: KeyPart[]): Step => {
    needSet(name, 'map');
    if (!vmaps.has(name)) {
      const compiled = view.sets.get(name)!.elements.map((e) => {
        const parts = keyParts(e.key);
        if (parts.length !== key.length) fail(`@${name} element ${JSON.stringify(e.key)} does not have ${key.length} key parts`);
        const v = e.value ?? [];
        if (v.length !== 1) fail(`@${name} element ${JSON.stringify(e.key)} has no single verdict value`);
        const verdict = compileRule(v[0]!, view, vmaps, `@${name} element ${parts.join(' . ')}`).steps;
        if (verdict.length !== 1 || !['jump', 'goto', 'verdict', 'return'].includes(verdict[0]!.k)) {
          fail(`@${name} element ${JSON.stringify(e.key)} value ${JSON.stringify(v[0])} is not a verdict`);
        }
        return { key: parts, verdict, ...(e.comment !== undefined ? { comment: e.comment } : {}) };
      });
      vmaps.set(name, compiled);
    }
    return { k: 'vmap', map: name, key };
  };

  let rule = raw.replace(R.comment, '').trim();
  while (rule !== '') {
    let m: RegExpExecArray | null;
    const take = (re: RegExp): RegExpExecArray | null => {
      const r = re.exec(rule);
      if (r) rule = rule.slice(r[0].length).trimStart();
      return r;
    };
    if (steps.length > 0 && TERMINAL.has(steps[steps.length - 1]!.k)) fail(`statements after a terminal one (${JSON.stringify(rule)})`);
    if (take(R.ctStateNew)) {
      // Only new connections are traced: always true, as kube-proxy's ignoredRegexp.
      continue;
    }
    if ((m = take(R.destSourceLookup))) {
      steps.push(lookup(m[1]!, ['daddr', 'l4proto', 'dport', 'saddr']));
    } else if ((m = take(R.destDispatch))) {
      steps.push(vmap(m[1]!, ['daddr', 'l4proto', 'dport']));
    } else if ((m = take(R.destLookup))) {
      steps.push(lookup(m[1]!, ['daddr', 'l4proto', 'dport']));
    } else if ((m = take(R.destPortDispatch))) {
      steps.push(vmap(m[1]!, ['l4proto', 'dport']));
    } else if ((m = take(R.destPortLookup))) {
      steps.push(lookup(m[1]!, ['l4proto', 'dport']));
    } else if ((m = take(R.addrLookup))) {
      steps.push(lookup(m[2]!, [m[1] as 'daddr' | 'saddr']));
    } else if ((m = take(R.addrAnon))) {
      const which = m[1]!;
      const negate = m[2] !== undefined;
      const elems = m[3]!.split(',').map((s) => s.trim());
      if (elems.some((e) => e === '')) fail('empty element in anonymous set');
      const matchers = elems.map((e) => addressMatcher(e, where));
      steps.push({ k: 'match', test: (p) => matchers.some((f) => f(which === 'daddr' ? p.dst : p.src)) !== negate });
    } else if ((m = take(R.addrLiteral))) {
      const which = m[1]!;
      const negate = m[2] !== undefined;
      const f = addressMatcher(m[3]!, where);
      steps.push({ k: 'match', test: (p) => f(which === 'daddr' ? p.dst : p.src) !== negate });
    } else if ((m = take(R.fibLocal))) {
      const which = m[1]!;
      steps.push({ k: 'match', test: (p, t) => t.nodeIPs.has(which === 'daddr' ? p.dst : p.src) });
    } else if ((m = take(R.protoPort))) {
      const proto = m[1]!;
      const port = Number(m[2]);
      steps.push({ k: 'match', test: (p) => p.proto === proto && p.dport === port });
    } else if ((m = take(R.thDport))) {
      const port = Number(m[1]);
      steps.push({ k: 'match', test: (p) => p.dport === port });
    } else if ((m = take(R.dnat))) {
      // Before the l4proto match: "meta l4proto tcp dnat to X" is kube-proxy's DNAT form.
      if (m[1] !== undefined) {
        const proto = m[1];
        steps.push({ k: 'match', test: (p) => p.proto === proto });
      }
      steps.push({ k: 'dnat', to: m[2]! });
    } else if ((m = take(R.l4proto))) {
      const proto = m[1]!;
      steps.push({ k: 'match', test: (p) => p.proto === proto });
    } else if ((m = take(R.markTest))) {
      const mask = parseNumber(m[1]!);
      const eq = m[2] === '==';
      const value = parseNumber(m[3]!);
      steps.push({ k: 'match', test: (p) => (((p.mark & mask) >>> 0) === value) === eq });
    } else if ((m = take(R.markSet))) {
      steps.push({ k: 'mark', op: (m[1] as 'or' | 'xor' | undefined) ?? 'set', value: parseNumber(m[2]!) });
    } else if ((m = take(R.affinityUpdate))) {
      needSet(m[1]!, 'set');
      steps.push({ k: 'noop' });
    } else if ((m = take(R.numgen))) {
      const mod = Number(m[1]);
      const entries = m[2]!.split(',').map((e) => R.numgenEntry.exec(e) ?? fail(`bad numgen vmap entry ${JSON.stringify(e)}`));
      if (entries.length !== mod) fail(`numgen mod ${mod} with ${entries.length} entries`);
      entries.forEach((e, i) => {
        if (Number(e[1]) !== i) fail(`numgen entry ${e[1]} where ${i} was expected`);
        needChain(e[2]!);
      });
      steps.push({ k: 'numgen', chains: entries.map((e) => e[2]!) });
    } else if ((m = take(R.jump))) {
      needChain(m[2]!);
      steps.push({ k: m[1] as 'jump' | 'goto', chain: m[2]! });
    } else if (take(R.ret)) {
      steps.push({ k: 'return' });
    } else if ((m = take(R.verdict)) || (m = take(R.rejectWith))) {
      const word = m[0].split(' ')[0]!;
      steps.push({ k: 'verdict', v: word.toUpperCase() as 'DROP' | 'REJECT' | 'ACCEPT' });
    } else if (take(R.masquerade)) {
      steps.push({ k: 'masquerade' });
    } else {
      fail(`unrecognised rule text ${JSON.stringify(rule)}`);
    }
  }
  if (steps.length === 0) fail('empty rule');
  return { raw, steps };
}

interface Compiled {
  chains: Map<string, CompiledRule[]>;
  vmaps: Tracer['vmaps'];
}

/** Compiles every rule of every chain and every verdict-map element; throws on the first thing
 *  the tracer does not understand. */
function compileRuleset(view: NftRuleView): Compiled {
  const vmaps: Tracer['vmaps'] = new Map();
  const chains = new Map<string, CompiledRule[]>();
  for (const [name, chain] of view.chains) {
    chains.set(name, chain.rules.map((r, i) => compileRule(r.rule, view, vmaps, `chain ${name} rule ${i + 1}`)));
  }
  // Maps no rule looks up: their values must still be verdicts.
  for (const [name, s] of view.sets) {
    if (s.kind !== 'map' || vmaps.has(name)) continue;
    for (const e of s.elements) {
      const v = e.value ?? [];
      if (v.length !== 1) throw new Error(`@${name} element ${JSON.stringify(e.key)} has no single verdict value`);
      compileRule(v[0]!, view, vmaps, `@${name} element ${keyParts(e.key).join(' . ')}`);
    }
  }
  return { chains, vmaps };
}

/** Checks that the tracer understands every rule of `view` (throws otherwise). */
export function checkNftRuleset(view: NftRuleView): void {
  compileRuleset(view);
}

function hostOf(dest: string): string {
  const m = /^\[(.+)\]:\d+$/.exec(dest) ?? /^([^:]+):\d+$/.exec(dest);
  if (!m) throw new Error(`bad DNAT destination ${JSON.stringify(dest)}`);
  return m[1]!;
}

/** Which hooks a traced packet meets (see traceNftPacket). */
export type NftTracePath = 'kube-proxy' | 'netfilter' | TraceFrom;

/**
 * What happens to the first packet of a connection: kube-proxy's nftables tracePacket.
 * `nodeIPs` are what `fib saddr/daddr type local` matches (kube-proxy passes testNodeIPs; no
 * loopback, as in kube-proxy's tracer).
 *
 * path 'kube-proxy' (default) is kube-proxy's walk: filter-prerouting, nat-prerouting,
 * filter-forward, filter-input, for every packet. path 'netfilter' is ours and follows the hooks
 * a real packet meets, so the output chains are exercised too: a packet from a node IP or
 * loopback is host-originated (filter-output, nat-output, filter-output-post-dnat,
 * nat-postrouting, and filter-input when its final destination is local); any other packet
 * takes filter-prerouting, nat-prerouting, then filter-input for a local destination or
 * filter-forward and nat-postrouting for a forwarded one.
 */
export function traceNftPacket(view: NftRuleView, packet: Packet, nodeIPs: readonly string[], path: NftTracePath = 'kube-proxy'): TraceResult {
  for (const ip of [packet.sourceIP, packet.destIP, ...nodeIPs]) if (isIP(ip) === 0) throw new Error(`bad IP in test case: ${ip}`);
  // Compiled afresh for every packet: an NftRuleset can change between traces (apply()).
  const { chains, vmaps } = compileRuleset(view);
  const tracer: Tracer = { nodeIPs: new Set(nodeIPs), sets: view.sets, vmaps };

  const pkt: PacketState = {
    src: packet.sourceIP, proto: (packet.protocol ?? 'tcp').toLowerCase(), dst: packet.destIP, dport: packet.destPort, mark: 0,
  };
  const outputs: string[] = [];
  const matches: string[] = [];
  const entered: string[] = [];
  let masq = false;
  let verdict: RuleVerdict | null = null;

  /** Runs `steps` (one rule, or a vmap element's verdict); 'next' = go on with the chain. */
  const runSteps = (steps: readonly Step[], raw: string, depth: number): 'next' | 'terminal' | 'return' => {
    for (const step of steps) {
      switch (step.k) {
        case 'match':
          if (!step.test(pkt, tracer)) return 'next';
          break;
        case 'noop':
          break;
        case 'mark':
          matches.push(raw);
          pkt.mark = (step.op === 'or' ? pkt.mark | step.value : step.op === 'xor' ? pkt.mark ^ step.value : step.value) >>> 0;
          break;
        case 'verdict':
          matches.push(raw);
          outputs.push(step.v);
          verdict = step.v;
          return 'terminal';
        case 'return':
          matches.push(raw);
          return 'return';
        case 'dnat':
          matches.push(raw);
          outputs.push(step.to);
          return 'terminal';
        case 'masquerade':
          matches.push(raw);
          masq = true;
          return 'terminal';
        case 'jump':
        case 'goto': {
          matches.push(raw);
          if (runChain(step.chain, depth + 1)) return 'terminal';
          // After a goto, return to our caller rather than going on with this chain.
          return step.k === 'goto' ? 'return' : 'next';
        }
        case 'numgen':
          // A random endpoint: follow every one, to gather all of them (kube-proxy does the same).
          for (const chain of step.chains) {
            matches.push(raw);
            runChain(chain, depth + 1);
          }
          return 'terminal';
        case 'vmap': {
          const element = vmaps.get(step.map)!.find((e) => step.key.every((part, i) => keyPartMatches(part, e.key[i]!, pkt)));
          if (!element) return 'next';
          const note = element.comment !== undefined ? ` ${JSON.stringify(element.comment)}` : '';
          return runSteps(element.verdict, `${raw}  [@${step.map}: ${element.key.join(' . ')}${note}]`, depth);
        }
      }
    }
    return 'next';
  };

  const runChain = (name: string, depth: number): boolean => {
    const rules = chains.get(name);
    if (!rules) throw new Error(`unknown chain ${JSON.stringify(name)}`);
    if (depth > 32) throw new Error(`jump loop through ${name}`);
    entered.push(name);
    for (const rule of rules) {
      const r = runSteps(rule.steps, rule.raw, depth);
      if (r === 'terminal') return true;
      if (r === 'return') return false;
    }
    return false;
  };

  const result = (): TraceResult => ({
    output: outputs.join(', '), masq: verdict === null || verdict === 'ACCEPT' ? masq : false, matches, chains: entered, verdict,
  });

  const dnatDestination = () => {
    // After the (pre)routing NAT, a pending DNAT changes the destination later rules see.
    if (outputs.length > 0) pkt.dst = hostOf(outputs[0]!);
  };

  if (path !== 'kube-proxy') {
    const loopback = (ip: string) => ip === '::1' || (isIP(ip) === 4 && ip.startsWith('127.'));
    const isLocal = (ip: string) => tracer.nodeIPs.has(ip) || loopback(ip);
    if (path === 'host' || (path === 'netfilter' && isLocal(pkt.src))) {
      if (runChain('filter-output', 0)) return result();
      runChain('nat-output', 0);
      if (verdict !== null) return result();
      dnatDestination();
      if (runChain('filter-output-post-dnat', 0)) return result();
      runChain('nat-postrouting', 0);
      if (verdict === null && isLocal(pkt.dst)) runChain('filter-input', 0);
      return result();
    }
    if (runChain('filter-prerouting', 0)) return result();
    runChain('nat-prerouting', 0);
    if (verdict !== null) return result();
    dnatDestination();
    if (isLocal(pkt.dst)) {
      runChain('filter-input', 0);
      return result();
    }
    if (runChain('filter-forward', 0)) return result();
    runChain('nat-postrouting', 0);
    return result();
  }

  // kube-proxy's walk: filter-prerouting goes first, then nat-prerouting if not terminated.
  if (runChain('filter-prerouting', 0)) return result();
  runChain('nat-prerouting', 0);
  if (verdict !== null) return result();
  dnatDestination();
  // As kube-proxy's tracer: filter-forward, and unless that terminated, filter-input (each
  // ought to be redundant with the other for the flows tested; the output chains are skipped
  // as redundant with the prerouting ones).
  if (runChain('filter-forward', 0)) return result();
  runChain('filter-input', 0);
  if (verdict !== null) return result();
  // nat-postrouting turns the masquerade mark into masquerade (kube-proxy's tracer reads the
  // mark-for-masquerade jump instead).
  runChain('nat-postrouting', 0);
  return result();
}

// ---- knftables-style dump text → NftRuleView (for static rulesets in tests) ----------------

interface MutableView {
  chains: Map<string, { rules: { rule: string; comment?: string }[] }>;
  sets: Map<string, { kind: 'set' | 'map'; elements: { key: string[]; value?: string[]; comment?: string }[] }>;
}

/**
 * Parses the `add table|chain|rule|set|map|element` lines knftables' Fake.Dump() and kube-proxy's
 * expected-rules strings use (`# comments` and blank lines skipped). Anything else throws.
 */
export function parseNftDump(text: string): NftRuleView {
  const view: MutableView = { chains: new Map(), sets: new Map() };
  let table: string | null = null;
  for (const rawLine of text.split('\n')) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^add (table|chain|rule|set|map|element) (ip6?|inet) (\S+)(?: (.*))?$/.exec(line);
    if (!m) throw new Error(`unsupported line: ${line}`);
    const [, what, , tbl, rest = ''] = m as unknown as [string, string, string, string, string | undefined];
    if (what === 'table') {
      table = tbl;
      continue;
    }
    if (table !== null && tbl !== table) throw new Error(`line for table ${tbl} in a dump of ${table}: ${line}`);
    const nm = /^(\S+)(?: (.*))?$/.exec(rest);
    if (!nm) throw new Error(`no object name: ${line}`);
    const name = nm[1]!;
    const tail = nm[2] ?? '';
    switch (what) {
      case 'chain':
        if (tail !== '' && !/^\{.*\}$/.test(tail)) throw new Error(`bad chain spec: ${line}`);
        if (!view.chains.has(name)) view.chains.set(name, { rules: [] });
        break;
      case 'rule': {
        const chain = view.chains.get(name);
        if (!chain) throw new Error(`rule for an undeclared chain: ${line}`);
        if (tail === '') throw new Error(`empty rule: ${line}`);
        chain.rules.push({ rule: tail });
        break;
      }
      case 'set':
      case 'map':
        if (!/^\{.*\}$/.test(tail)) throw new Error(`bad ${what} spec: ${line}`);
        if (view.sets.has(name)) throw new Error(`${what} declared twice: ${line}`);
        view.sets.set(name, { kind: what, elements: [] });
        break;
      case 'element': {
        const s = view.sets.get(name);
        if (!s) throw new Error(`element for an undeclared set/map: ${line}`);
        const em = /^\{ (.*?)(?: comment "([^"]*)")?(?: : (.*))? \}$/.exec(tail);
        if (!em) throw new Error(`bad element: ${line}`);
        const key = em[1]!.split(' . ').map((k) => k.trim());
        if ((em[3] !== undefined) !== (s.kind === 'map')) throw new Error(`element value does not fit a ${s.kind}: ${line}`);
        s.elements.push({ key, ...(em[3] !== undefined ? { value: [em[3].trim()] } : {}), ...(em[2] !== undefined ? { comment: em[2] } : {}) });
        break;
      }
    }
  }
  return view;
}
