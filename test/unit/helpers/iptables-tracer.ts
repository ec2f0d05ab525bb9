// A virtual packet walk through iptables-restore text, after kube-proxy's iptablesTracer
// (pkg/proxy/iptables/proxier_test.go, v1.28): nat KUBE-SERVICES (what PREROUTING/OUTPUT jump
// to), then the filter chains kube-proxy fills, then POSTROUTING for the masquerade decision.
// Every match module, option and target is parsed strictly: anything unknown throws, so a
// rule the tracer does not understand can never pass silently.
import assert from 'node:assert/strict';
import { BlockList, isIP } from 'node:net';

export interface Packet {
  sourceIP: string;
  /** "TCP" | "UDP" | "SCTP" (any case); default tcp, as kube-proxy's runPacketFlowTests. */
  protocol?: string;
  destIP: string;
  destPort: number;
}

export interface TraceResult {
  /** DNAT destinations and filter verdicts, joined by ", " ("" when nothing matched). */
  output: string;
  masq: boolean;
  /** The rules that matched, in order, for failure messages. */
  matches: string[];
}

export interface PacketFlowTest extends Packet {
  name: string;
  output: string;
  masq?: boolean;
}

interface PacketState {
  src: string;
  proto: string;
  dst: string;
  dport: number;
  mark: number;
}

type Predicate = (p: PacketState) => boolean;

type Target =
  | { kind: 'verdict'; name: 'ACCEPT' | 'DROP' | 'REJECT' }
  | { kind: 'return' }
  | { kind: 'dnat'; to: string }
  | { kind: 'mark'; op: 'or' | 'xor' | 'set'; value: number; mask: number }
  | { kind: 'masquerade' }
  | { kind: 'chain'; name: string };

interface Rule {
  raw: string;
  predicates: Predicate[];
  target: Target | null;
  /** `-m statistic`: the tracer follows every branch, so a terminal result below does not end this chain. */
  probabilistic: boolean;
}

type Table = Map<string, Rule[]>;

/** Which `-m` module each match option belongs to. */
const OPTION_MODULES: Record<string, readonly string[]> = {
  '--comment': ['comment'],
  '--dport': ['tcp', 'udp', 'sctp'],
  '--src-type': ['addrtype'],
  '--dst-type': ['addrtype'],
  '--mode': ['statistic'],
  '--probability': ['statistic'],
  '--name': ['recent'],
  '--set': ['recent'],
  '--rcheck': ['recent'],
  '--seconds': ['recent'],
  '--reap': ['recent'],
  '--mask': ['recent'],
  '--rsource': ['recent'],
  '--mark': ['mark'],
  '--ctstate': ['conntrack'],
  '--nfacct-name': ['nfacct'],
};
const MODULES = new Set(Object.values(OPTION_MODULES).flat());
const FLAG_OPTIONS = new Set(['--set', '--rcheck', '--reap', '--rsource']);

/** Words of a rule; a double-quoted string is one word (iptables-restore's quoting). */
function words(line: string): string[] {
  const out: string[] = [];
  for (const m of line.matchAll(/"([^"]*)"|(\S+)/g)) out.push(m[1] ?? m[2]!);
  return out;
}

function parseNumber(text: string, what: string): number {
  const n = /^0x[0-9a-f]+$/i.test(text) ? parseInt(text, 16) : /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n)) throw new Error(`bad ${what} ${JSON.stringify(text)}`);
  return n;
}

/** `-s`/`-d` value: an address or a CIDR, as kube-proxy's addressMatches. */
function addressPredicate(value: string, get: (p: PacketState) => string): (p: PacketState) => boolean {
  const [addr, prefixText] = value.split('/') as [string, string | undefined];
  const family = isIP(addr);
  if (family === 0) throw new Error(`bad address ${JSON.stringify(value)}`);
  const type = family === 4 ? 'ipv4' : 'ipv6';
  const list = new BlockList();
  if (prefixText === undefined) list.addAddress(addr, type);
  else list.addSubnet(addr, parseNumber(prefixText, 'prefix length'), type);
  return (p) => {
    const ip = get(p);
    const f = isIP(ip);
    return f !== 0 && list.check(ip, f === 4 ? 'ipv4' : 'ipv6');
  };
}

const MARK_OPS: Record<string, 'or' | 'xor' | 'set'> = { '--or-mark': 'or', '--xor-mark': 'xor', '--set-xmark': 'set', '--set-mark': 'set' };

function parseTarget(name: string, opts: string[], table: string, raw: string): Target {
  const fail = (why: string): never => {
    throw new Error(`${why} for -j ${name} in ${JSON.stringify(raw)}`);
  };
  const optionsAre = (...allowed: string[][]) => {
    if (!allowed.some((a) => a.length === opts.length && a.every((o, i) => o === '*' || o === opts[i]))) fail('unexpected options');
  };
  const onlyIn = (t: string) => {
    if (table !== t) fail(`not valid in table ${table}`);
  };
  switch (name) {
    case 'ACCEPT':
    case 'DROP':
      optionsAre([]);
      return { kind: 'verdict', name };
    case 'REJECT':
      onlyIn('filter');
      optionsAre([], ['--reject-with', '*']);
      return { kind: 'verdict', name };
    case 'RETURN':
      optionsAre([]);
      return { kind: 'return' };
    case 'DNAT':
      onlyIn('nat');
      optionsAre(['--to-destination', '*']);
      return { kind: 'dnat', to: opts[1]! };
    case 'MASQUERADE':
      onlyIn('nat');
      optionsAre([], ['--random-fully']);
      return { kind: 'masquerade' };
    case 'MARK': {
      optionsAre(['*', '*']);
      const op = MARK_OPS[opts[0]!] ?? fail('unsupported MARK option');
      const [v, m] = opts[1]!.split('/') as [string, string | undefined];
      return { kind: 'mark', op, value: parseNumber(v, 'mark'), mask: m === undefined ? 0xffffffff : parseNumber(m, 'mark mask') };
    }
    default:
      // Anything else must be a user chain (checked to exist when jumped to).
      if (!/^[A-Z0-9][A-Z0-9-]*$/.test(name) || ['SNAT', 'LOG', 'NOTRACK', 'CT', 'TPROXY', 'REDIRECT', 'CONNMARK', 'NFLOG'].includes(name)) {
        fail('unsupported target');
      }
      optionsAre([]);
      return { kind: 'chain', name };
  }
}

function parseRule(line: string, table: string, localIPs: ReadonlySet<string>): { chain: string; rule: Rule } {
  const w = words(line);
  if (w[0] !== '-A' || w.length < 2) throw new Error(`not an -A rule: ${line}`);
  const chain = w[1]!;
  const rule: Rule = { raw: line, predicates: [], target: null, probabilistic: false };
  const modules = new Set<string>();
  let protocol: string | null = null;
  let negate = false;
  let i = 2;
  const value = (opt: string): string => {
    const v = w[++i];
    if (v === undefined) throw new Error(`${opt} needs a value: ${line}`);
    return v;
  };
  const add = (pred: Predicate) => {
    const neg = negate;
    rule.predicates.push(neg ? (p) => !pred(p) : pred);
  };
  for (; i < w.length; i++) {
    const word = w[i]!;
    if (word === '!') {
      if (negate) throw new Error(`double negation: ${line}`);
      negate = true;
      continue;
    }
    if (word === '-j') {
      if (negate) throw new Error(`cannot negate -j: ${line}`);
      const name = value(word);
      rule.target = parseTarget(name, w.slice(i + 1), table, line);
      break;
    }
    switch (word) {
      case '-m': {
        const m = value(word);
        if (!MODULES.has(m)) throw new Error(`unsupported match module -m ${m}: ${line}`);
        modules.add(m);
        break;
      }
      case '-p': {
        const v = value(word).toLowerCase();
        if (!['tcp', 'udp', 'sctp'].includes(v)) throw new Error(`unsupported protocol ${v}: ${line}`);
        protocol = v;
        add((p) => p.proto === v);
        break;
      }
      case '-s':
        add(addressPredicate(value(word), (p) => p.src));
        break;
      case '-d':
        add(addressPredicate(value(word), (p) => p.dst));
        break;
      default: {
        const owners = OPTION_MODULES[word];
        if (!owners) throw new Error(`unsupported option ${word}: ${line}`);
        if (!owners.some((m) => modules.has(m))) throw new Error(`${word} without -m ${owners.join('|')}: ${line}`);
        const v = FLAG_OPTIONS.has(word) ? '' : value(word);
        if (negate && !['--src-type', '--dst-type', '--dport', '--mark', '--ctstate'].includes(word)) {
          throw new Error(`cannot negate ${word}: ${line}`);
        }
        switch (word) {
          case '--dport': {
            // kube-proxy writes single ports; the packet's protocol must carry ports.
            if (protocol === null) throw new Error(`--dport without -p: ${line}`);
            const port = parseNumber(v, 'port');
            add((p) => p.dport === port);
            break;
          }
          case '--src-type':
          case '--dst-type': {
            // Only LOCAL is used by kube-proxy; it is the node's addresses plus loopback.
            if (v !== 'LOCAL') throw new Error(`unsupported address type ${v}: ${line}`);
            const get = word === '--src-type' ? (p: PacketState) => p.src : (p: PacketState) => p.dst;
            add((p) => localIPs.has(get(p)));
            break;
          }
          case '--mode':
            if (v !== 'random') throw new Error(`unsupported statistic mode ${v}: ${line}`);
            break;
          case '--probability': {
            const prob = Number(v);
            if (!(prob > 0 && prob <= 1)) throw new Error(`bad probability ${v}: ${line}`);
            // Every branch is followed (kube-proxy: "matches (at least probabilistically)").
            rule.probabilistic = true;
            break;
          }
          case '--rcheck':
            // Affinity needs a previous packet; a traced packet is always the first one.
            add(() => false);
            break;
          case '--mark': {
            const [mv, mm] = v.split('/') as [string, string | undefined];
            const markValue = parseNumber(mv, 'mark');
            const mask = mm === undefined ? 0xffffffff : parseNumber(mm, 'mark mask');
            add((p) => (p.mark & mask) >>> 0 === markValue);
            break;
          }
          case '--ctstate':
            // As kube-proxy's tracer: no connection state, so a state check never matches
            // (negated or not).
            rule.predicates.push(() => false);
            break;
          case '--seconds':
            parseNumber(v, 'seconds');
            break;
          default:
            // --comment, --name, --set, --reap, --mask, --rsource, --nfacct-name: no effect
            // on where a first packet goes.
            break;
        }
      }
    }
    negate = false;
  }
  if (negate) throw new Error(`dangling "!": ${line}`);
  if (rule.probabilistic && !modules.has('statistic')) throw new Error(`--probability without statistic: ${line}`);
  return { chain, rule };
}

/** Parses `*table`, `:CHAIN - [0:0]`, `-A`, `-X` and `COMMIT` lines; anything else throws. */
export function parseRestoreText(text: string, localIPs: ReadonlySet<string>): Map<string, Table> {
  const tables = new Map<string, Table>();
  let table: Table | null = null;
  let name = '';
  for (const rawLine of text.split('\n')) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('*')) {
      if (table) throw new Error(`table ${line} before COMMIT of *${name}`);
      name = line.slice(1);
      if (name !== 'filter' && name !== 'nat') throw new Error(`unsupported table ${line}`);
      if (tables.has(name)) throw new Error(`table ${line} appears twice`);
      table = new Map();
      tables.set(name, table);
      continue;
    }
    if (!table) throw new Error(`line outside a table: ${line}`);
    if (line === 'COMMIT') {
      table = null;
      continue;
    }
    let m = /^:(\S+) (\S+) \[\d+:\d+\]$/.exec(line);
    if (m) {
      if (m[2] !== '-' && !['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'].includes(m[1]!)) {
        throw new Error(`policy on a user chain: ${line}`);
      }
      // A chain line in iptables-restore input also flushes the chain.
      table.set(m[1]!, []);
      continue;
    }
    m = /^-X (\S+)$/.exec(line);
    if (m) {
      const rules = table.get(m[1]!);
      if (!rules) throw new Error(`-X of an undeclared chain: ${line}`);
      if (rules.length > 0) throw new Error(`-X of a chain with rules: ${line}`);
      table.delete(m[1]!);
      continue;
    }
    const { chain, rule } = parseRule(line, name, localIPs);
    const rules = table.get(chain);
    if (!rules) throw new Error(`rule for an undeclared chain ${chain}: ${line}`);
    rules.push(rule);
  }
  if (table) throw new Error(`no COMMIT for *${name}`);
  return tables;
}

function hostOf(dest: string): string {
  const m = /^\[(.+)\]:\d+$/.exec(dest) ?? /^([^:]+):\d+$/.exec(dest);
  if (!m) throw new Error(`bad DNAT destination ${JSON.stringify(dest)}`);
  return m[1]!;
}

/**
 * What happens to the first packet of a connection: kube-proxy's tracePacket. `nodeIPs` are
 * treated as LOCAL for `-m addrtype`, together with 127.0.0.1 and ::1.
 */
export function tracePacket(rulesText: string, packet: Packet, nodeIPs: readonly string[]): TraceResult {
  for (const ip of [packet.sourceIP, packet.destIP, ...nodeIPs]) if (isIP(ip) === 0) throw new Error(`bad IP in test case: ${ip}`);
  const localIPs = new Set(['127.0.0.1', '::1', ...nodeIPs]);
  const tables = parseRestoreText(rulesText, localIPs);
  const nat = tables.get('nat');
  const filter = tables.get('filter');
  if (!nat || !filter) throw new Error('rules need both *filter and *nat');

  const pkt: PacketState = {
    src: packet.sourceIP, proto: (packet.protocol ?? 'tcp').toLowerCase(), dst: packet.destIP, dport: packet.destPort, mark: 0,
  };
  const outputs: string[] = [];
  const matches: string[] = [];
  let masq = false;

  const runChain = (table: Table, chain: string, depth: number): boolean => {
    const rules = table.get(chain);
    if (!rules) throw new Error(`jump to undeclared chain ${chain}`);
    if (depth > 32) throw new Error(`jump loop through ${chain}`);
    for (const rule of rules) {
      if (!rule.target) continue; // e.g. the KUBE-FW "other traffic ... will be dropped" marker
      if (!rule.predicates.every((pred) => pred(pkt))) continue;
      matches.push(rule.raw);
      const t = rule.target;
      switch (t.kind) {
        case 'verdict':
          outputs.push(t.name);
          return true;
        case 'dnat':
          outputs.push(t.to);
          return true;
        case 'masquerade':
          masq = true;
          return true;
        case 'return':
          return false;
        case 'mark':
          if (t.op === 'or') pkt.mark = (pkt.mark | t.value) >>> 0;
          else if (t.op === 'xor') pkt.mark = (pkt.mark ^ t.value) >>> 0;
          else pkt.mark = ((pkt.mark & ~t.mask) ^ t.value) >>> 0;
          continue;
        case 'chain': {
          const terminated = runChain(table, t.name, depth + 1);
          // A probabilistic jump keeps the walk going so every endpoint shows up.
          if (terminated && !rule.probabilistic) return true;
        }
      }
    }
    return false;
  };

  // nat PREROUTING (kube-proxy installs "-A PREROUTING -j KUBE-SERVICES" outside the restore).
  runChain(nat, (nat.get('PREROUTING')?.length ?? 0) > 0 ? 'PREROUTING' : 'KUBE-SERVICES', 0);
  // Pending DNAT rewrites the destination address (not the port) for the filter table.
  if (outputs.length > 0) pkt.dst = hostOf(outputs[0]!);
  // Which filter chains a packet sees depends on its path, which we do not know: run all four.
  for (const chain of ['KUBE-SERVICES', 'KUBE-EXTERNAL-SERVICES', 'KUBE-NODEPORTS', 'KUBE-PROXY-FIREWALL']) {
    if (filter.has(chain)) runChain(filter, chain, 0);
  }
  // nat POSTROUTING turns the masquerade mark into MASQUERADE.
  const post = (nat.get('POSTROUTING')?.length ?? 0) > 0 ? 'POSTROUTING' : nat.has('KUBE-POSTROUTING') ? 'KUBE-POSTROUTING' : null;
  if (post) runChain(nat, post, 0);
  return { output: outputs.join(', '), masq, matches };
}

/** kube-proxy's runPacketFlowTests: every case is checked, then all failures are reported at once. */
export function runPacketFlowTests(rulesText: string, nodeIPs: readonly string[], cases: readonly PacketFlowTest[]): void {
  const failures: string[] = [];
  for (const tc of cases) {
    const r = tracePacket(rulesText, tc, nodeIPs);
    const errors: string[] = [];
    if (r.output !== tc.output) errors.push(`wrong output: expected ${JSON.stringify(tc.output)} got ${JSON.stringify(r.output)}`);
    if (r.masq !== (tc.masq ?? false)) errors.push(`wrong masq: expected ${tc.masq ?? false} got ${r.masq}`);
    if (errors.length > 0) {
      failures.push(`${JSON.stringify(tc.name)}: ${(tc.protocol ?? 'tcp').toLowerCase()} ${tc.sourceIP} -> ${tc.destIP}:${tc.destPort}\n  ${errors.join('\n  ')}\n  by matching:\n    ${r.matches.join('\n    ')}`);
    }
  }
  assert.equal(failures.length, 0, `${failures.length} packet flow case(s) failed:\n${failures.join('\n')}\n\nrules:\n${rulesText}`);
}
