// A virtual packet walk through iptables-restore / iptables-save text, after kube-proxy's
// iptablesTracer (pkg/proxy/iptables/proxier_test.go, v1.28): nat KUBE-SERVICES (what
// PREROUTING/OUTPUT jump to), then the filter chains kube-proxy fills, then POSTROUTING for the
// masquerade decision. Every match module, option and target is parsed strictly: anything
// unknown throws, so a rule the tracer does not understand can never pass silently.
// Besides kube-proxy's walk (the unit tests' reference), a packet can follow the hooks a real
// packet meets (path 'pod' | 'external' | 'host', for `kube-xdp trace` on a live ruleset): then
// the builtin chains and their policies count, `--ctstate NEW` matches (and DNAT once
// translated), and a rule the tracer does not understand only fails the trace when reached.
// Pure: no I/O.
import { BlockList, isIP } from 'node:net';
import type { Packet, RuleVerdict, TraceFrom, TraceResult } from './types.js';

export type { Packet, TraceResult } from './types.js';

/** 'kube-proxy': kube-proxy's test walk; otherwise the hooks of a packet from there. */
export type IptablesTracePath = 'kube-proxy' | TraceFrom;

interface PacketState {
  src: string;
  proto: string;
  dst: string;
  dport: number;
  mark: number;
  /** Conntrack states a `--ctstate` sees; null: kube-proxy's walk, where no state ever matches. */
  states: Set<string> | null;
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
  /** Lenient parsing: why the rule could not be parsed (thrown when the walk reaches it). */
  error?: string;
  predicates: Predicate[];
  target: Target | null;
  /** `-m statistic`: the tracer follows every branch, so a terminal result below does not end this chain. */
  probabilistic: boolean;
}

type Table = Map<string, Rule[]>;

/** Policies of the builtin chains (iptables-save's `:INPUT DROP [0:0]`), by table. */
export type Policies = Map<string, Map<string, string>>;

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
          case '--ctstate': {
            // kube-proxy's walk: no connection state, so a state check never matches (negated or
            // not). A live walk: the first packet of a connection is NEW (and DNAT once translated).
            const wanted = v.split(',');
            const neg = negate;
            rule.predicates.push((p) => p.states !== null && wanted.some((s) => p.states!.has(s)) !== neg);
            break;
          }
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

/** Parses `*table`, `:CHAIN - [0:0]`, `-A`, `-X` and `COMMIT` lines; anything else throws.
 *  `lenient`: a rule that does not parse is kept with its error, thrown when a walk reaches it. */
export function parseRestoreText(text: string, localIPs: ReadonlySet<string>, lenient = false, policies?: Policies): Map<string, Table> {
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
      if (m[2] !== '-' && policies) {
        if (!policies.has(name)) policies.set(name, new Map());
        policies.get(name)!.set(m[1]!, m[2]!);
      }
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
    let parsed: { chain: string; rule: Rule };
    try {
      parsed = parseRule(line, name, localIPs);
    } catch (e) {
      const chainName = /^-A (\S+)/.exec(line)?.[1];
      if (!lenient || chainName === undefined) throw e;
      parsed = { chain: chainName, rule: { raw: line, error: (e as Error).message, predicates: [], target: null, probabilistic: false } };
    }
    const { chain, rule } = parsed;
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
 *
 * path 'kube-proxy' (default) is kube-proxy's walk: nat PREROUTING (or KUBE-SERVICES), the four
 * filter chains kube-proxy fills, nat POSTROUTING (or KUBE-POSTROUTING). The other paths follow
 * the hooks a real packet meets from there: 'pod' and 'external' nat PREROUTING, then filter
 * INPUT for a local destination or filter FORWARD and nat POSTROUTING; 'host' nat OUTPUT, filter
 * OUTPUT, nat POSTROUTING, and filter INPUT for a local destination. Those need the builtin
 * chains (an iptables-save), honour their policies, and fail only on a rule they reach.
 */
export function tracePacket(rulesText: string, packet: Packet, nodeIPs: readonly string[], path: IptablesTracePath = 'kube-proxy'): TraceResult {
  for (const ip of [packet.sourceIP, packet.destIP, ...nodeIPs]) if (isIP(ip) === 0) throw new Error(`bad IP in test case: ${ip}`);
  const localIPs = new Set(['127.0.0.1', '::1', ...nodeIPs]);
  const live = path !== 'kube-proxy';
  const policies: Policies = new Map();
  const tables = parseRestoreText(rulesText, localIPs, live, policies);
  const nat = tables.get('nat');
  const filter = tables.get('filter');
  if (!nat || !filter) throw new Error('rules need both *filter and *nat');

  const pkt: PacketState = {
    src: packet.sourceIP, proto: (packet.protocol ?? 'tcp').toLowerCase(), dst: packet.destIP, dport: packet.destPort, mark: 0,
    states: live ? new Set(['NEW']) : null,
  };
  const outputs: string[] = [];
  const matches: string[] = [];
  const chains: string[] = [];
  let masq = false;
  let verdict: RuleVerdict | null = null;

  const runChain = (tableName: string, table: Table, chain: string, depth: number): boolean => {
    const rules = table.get(chain);
    if (!rules) throw new Error(`jump to undeclared chain ${chain}`);
    if (depth > 32) throw new Error(`jump loop through ${chain}`);
    chains.push(`${tableName}/${chain}`);
    for (const rule of rules) {
      if (rule.error !== undefined) throw new Error(`cannot trace ${tableName} chain ${chain}: ${rule.error}`);
      if (!rule.target) continue; // e.g. the KUBE-FW "other traffic ... will be dropped" marker
      if (!rule.predicates.every((pred) => pred(pkt))) continue;
      matches.push(rule.raw);
      const t = rule.target;
      switch (t.kind) {
        case 'verdict':
          outputs.push(t.name);
          if (verdict === null || verdict === 'ACCEPT') verdict = t.name;
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
          const terminated = runChain(tableName, table, t.name, depth + 1);
          // A probabilistic jump keeps the walk going so every endpoint shows up.
          if (terminated && !rule.probabilistic) return true;
        }
      }
    }
    return false;
  };

  const result = (): TraceResult => ({ output: outputs.join(', '), masq: verdict === 'DROP' || verdict === 'REJECT' ? false : masq, matches, chains, verdict });

  if (!live) {
    // nat PREROUTING (kube-proxy installs "-A PREROUTING -j KUBE-SERVICES" outside the restore).
    runChain('nat', nat, (nat.get('PREROUTING')?.length ?? 0) > 0 ? 'PREROUTING' : 'KUBE-SERVICES', 0);
    // Pending DNAT rewrites the destination address (not the port) for the filter table.
    if (outputs.length > 0) pkt.dst = hostOf(outputs[0]!);
    // Which filter chains a packet sees depends on its path, which we do not know: run all four.
    for (const chain of ['KUBE-SERVICES', 'KUBE-EXTERNAL-SERVICES', 'KUBE-NODEPORTS', 'KUBE-PROXY-FIREWALL']) {
      if (filter.has(chain)) runChain('filter', filter, chain, 0);
    }
    // nat POSTROUTING turns the masquerade mark into MASQUERADE.
    const post = (nat.get('POSTROUTING')?.length ?? 0) > 0 ? 'POSTROUTING' : nat.has('KUBE-POSTROUTING') ? 'KUBE-POSTROUTING' : null;
    if (post) runChain('nat', nat, post, 0);
    return { output: outputs.join(', '), masq, matches, chains, verdict };
  }

  /** A builtin chain of a live ruleset; false when the packet goes on (its policy ACCEPTs it). */
  const hook = (tableName: 'nat' | 'filter', chain: string): boolean => {
    const table = tableName === 'nat' ? nat : filter;
    if (!table.has(chain)) return false;
    const dnats = outputs.length;
    if (runChain(tableName, table, chain, 0)) return verdict !== null && verdict !== 'ACCEPT';
    if (outputs.length > dnats) return false;
    const policy = policies.get(tableName)?.get(chain) ?? 'ACCEPT';
    if (policy === 'ACCEPT') return false;
    if (policy !== 'DROP') throw new Error(`unsupported policy ${policy} of ${tableName} ${chain}`);
    matches.push(`policy DROP of ${tableName} ${chain}`);
    outputs.push('DROP');
    verdict ??= 'DROP';
    return true;
  };
  const translate = () => {
    const dnat = outputs.find((o) => o !== 'ACCEPT' && o !== 'DROP' && o !== 'REJECT');
    if (dnat !== undefined) {
      pkt.dst = hostOf(dnat);
      pkt.states!.add('DNAT');
    }
  };
  if (path === 'host') {
    if (hook('nat', 'OUTPUT')) return result();
    translate();
    if (hook('filter', 'OUTPUT')) return result();
    if (hook('nat', 'POSTROUTING')) return result();
    if (localIPs.has(pkt.dst) || pkt.dst.startsWith('127.')) hook('filter', 'INPUT');
    return result();
  }
  if (hook('nat', 'PREROUTING')) return result();
  translate();
  if (localIPs.has(pkt.dst) || pkt.dst.startsWith('127.')) {
    hook('filter', 'INPUT');
    return result();
  }
  if (hook('filter', 'FORWARD')) return result();
  hook('nat', 'POSTROUTING');
  return result();
}
