// `nft -j list table ip|ip6 kube-proxy` (libnftables-json(5)) → the NftRuleView the nftables
// tracer walks: every rule back in the text knftables writes for kube-proxy's rule forms
// (src/dataplane/nftables/render.ts), every set/map with its elements. Only those forms are
// converted: any other expression or statement throws, naming the chain and the JSON, so a
// ruleset the tracer would misread can never give a silent wrong answer. Pure.
import type { NftRuleView } from './nftables.js';

type J = unknown;

export class NftJsonError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NftJsonError';
  }
}

const isObj = (x: J): x is Record<string, J> => typeof x === 'object' && x !== null && !Array.isArray(x);
/** The single key of `{ "kind": body }`, or null. */
function only(x: J): [string, J] | null {
  if (!isObj(x)) return null;
  const keys = Object.keys(x);
  return keys.length === 1 ? [keys[0]!, x[keys[0]!]] : null;
}

const hex = (n: number) => `0x${n.toString(16)}`;
const ADDRESS_FIELDS = new Set(['saddr', 'daddr']);

interface Ctx { readonly where: string; readonly family: 'ip' | 'ip6' }

function fail(ctx: Ctx, what: string, x: J): never {
  throw new NftJsonError(`cannot trace ${ctx.where}: unsupported ${what} ${JSON.stringify(x)}`);
}

/** A value or expression on either side of a match, a key of a map lookup, a set element. */
function expr(x: J, ctx: Ctx, opts: { markValue?: boolean } = {}): string {
  if (typeof x === 'string') return x;
  if (typeof x === 'number') return opts.markValue ? hex(x) : String(x);
  const o = only(x);
  if (!o) return fail(ctx, 'expression', x);
  const [k, v] = o;
  switch (k) {
    case 'payload': {
      if (!isObj(v) || typeof v.protocol !== 'string' || typeof v.field !== 'string') break;
      const { protocol, field } = v as { protocol: string; field: string };
      if ((protocol === 'ip' || protocol === 'ip6') && ADDRESS_FIELDS.has(field)) return `${protocol} ${field}`;
      if (['tcp', 'udp', 'sctp', 'th'].includes(protocol) && field === 'dport') return `${protocol} dport`;
      break;
    }
    case 'meta':
      if (isObj(v) && v.key === 'l4proto') return 'meta l4proto';
      if (isObj(v) && v.key === 'mark') return 'mark';
      break;
    case 'ct':
      if (isObj(v) && v.key === 'state' && v.dir === undefined) return 'ct state';
      break;
    case 'fib': {
      if (!isObj(v) || v.result !== 'type') break;
      const flags = Array.isArray(v.flags) ? v.flags : [v.flags];
      if (flags.length === 1 && (flags[0] === 'saddr' || flags[0] === 'daddr')) return `fib ${flags[0]} type`;
      break;
    }
    case 'concat':
      if (Array.isArray(v) && v.length > 1) return v.map((e) => expr(e, ctx)).join(' . ');
      break;
    case 'prefix':
      if (isObj(v) && typeof v.addr === 'string' && typeof v.len === 'number') return `${v.addr}/${v.len}`;
      break;
    case 'range':
      if (Array.isArray(v) && v.length === 2) return `${expr(v[0], ctx)}-${expr(v[1], ctx)}`;
      break;
    case 'set':
      // An anonymous set of addresses/CIDRs (`ip saddr != { a, b }`).
      if (Array.isArray(v) && v.length > 0) return `{ ${v.map((e) => expr(e, ctx)).join(', ')} }`;
      if (typeof v === 'string' || typeof v === 'number') return `{ ${expr(v, ctx)} }`;
      break;
    case '&':
      if (Array.isArray(v) && v.length === 2) return `${expr(v[0], ctx)} and ${expr(v[1], ctx, { markValue: true })}`;
      break;
    case 'numgen':
      if (isObj(v) && v.mode === 'random' && typeof v.mod === 'number' && (v.offset ?? 0) === 0) return `numgen random mod ${v.mod}`;
      break;
    default:
      break;
  }
  return fail(ctx, 'expression', x);
}

/** accept / drop / return / jump X / goto X (a statement, or a verdict map's value). */
function verdict(x: J, ctx: Ctx): string | null {
  const o = only(x);
  if (!o) return null;
  const [k, v] = o;
  if ((k === 'accept' || k === 'drop' || k === 'return') && (v === null || v === undefined)) return k;
  if ((k === 'jump' || k === 'goto') && isObj(v) && typeof v.target === 'string' && Object.keys(v).length === 1) return `${k} ${v.target}`;
  if (k === 'jump' || k === 'goto') fail(ctx, 'verdict', x);
  return null;
}

function statement(x: J, ctx: Ctx): string {
  const vd = verdict(x, ctx);
  if (vd !== null) return vd;
  const o = only(x);
  if (!o) return fail(ctx, 'statement', x);
  const [k, v] = o;
  switch (k) {
    case 'match': {
      if (!isObj(v)) break;
      const left = expr(v.left, ctx);
      const markTest = only(v.left)?.[0] === '&';
      if (v.op === 'in') {
        // `ct state new` (nft prints a bitmask match as "in").
        if (left !== 'ct state') break;
        const states = Array.isArray(v.right) ? v.right : [v.right];
        if (!states.every((s) => typeof s === 'string')) break;
        return `ct state ${states.join(',')}`;
      }
      const right = expr(v.right, ctx, { markValue: false });
      if (v.op === '==') return markTest ? `${left} == ${right}` : `${left} ${right}`;
      if (v.op === '!=') return `${left} != ${right}`;
      break;
    }
    case 'reject': {
      const dflt = ctx.family === 'ip' ? 'icmp' : 'icmpv6';
      if (v === null || v === undefined) return 'reject';
      if (isObj(v) && (v.type === dflt || v.type === undefined) && (v.expr === 'port-unreachable' || v.expr === undefined)) return 'reject';
      if (isObj(v) && typeof v.type === 'string' && typeof v.expr === 'string') return `reject with ${v.type} ${v.expr}`;
      if (isObj(v) && v.type === 'tcp reset' && v.expr === undefined) return 'reject with tcp reset';
      break;
    }
    case 'mangle': {
      // mark set mark or|xor M, mark set M
      if (!isObj(v) || expr(v.key, ctx) !== 'mark') break;
      if (typeof v.value === 'number') return `mark set ${hex(v.value)}`;
      const op = only(v.value);
      if (op && (op[0] === '|' || op[0] === '^') && Array.isArray(op[1]) && op[1].length === 2 && expr(op[1][0], ctx) === 'mark' && typeof op[1][1] === 'number') {
        return `mark set mark ${op[0] === '|' ? 'or' : 'xor'} ${hex(op[1][1])}`;
      }
      break;
    }
    case 'masquerade': {
      if (v === null || v === undefined) return 'masquerade';
      if (!isObj(v) || Object.keys(v).some((key) => key !== 'flags')) break;
      const flags = Array.isArray(v.flags) ? v.flags : [v.flags];
      if (!flags.every((f) => typeof f === 'string')) break;
      return `masquerade ${flags.join(',')}`;
    }
    case 'dnat': {
      if (!isObj(v) || typeof v.addr !== 'string' || Object.keys(v).some((key) => !['addr', 'port', 'family'].includes(key))) break;
      const addr = v.addr.includes(':') ? `[${v.addr}]` : v.addr;
      return typeof v.port === 'number' ? `dnat to ${addr}:${v.port}` : `dnat to ${v.addr}`;
    }
    case 'vmap': {
      if (!isObj(v)) break;
      const key = expr(v.key, ctx);
      if (typeof v.data === 'string' && v.data.startsWith('@')) return `${key} vmap ${v.data}`;
      const set = only(v.data);
      if (set?.[0] === 'set' && Array.isArray(set[1])) {
        const entries = set[1].map((e) => {
          if (!Array.isArray(e) || e.length !== 2) return fail(ctx, 'verdict map entry', e);
          return `${expr(e[0], ctx)} : ${verdict(e[1], ctx) ?? fail(ctx, 'verdict', e[1])}`;
        });
        return `${key} vmap { ${entries.join(', ')} }`;
      }
      break;
    }
    case 'set': {
      // update @affinity-… { ip saddr }
      if (!isObj(v) || v.op !== 'update' || typeof v.set !== 'string') break;
      return `update ${v.set} { ${expr(v.elem, ctx)} }`;
    }
    default:
      break;
  }
  return fail(ctx, 'statement', x);
}

/** One set/map element: key parts, value (a verdict, for a map), comment. */
function element(x: J, isMap: boolean, ctx: Ctx): { key: string[]; value?: string[]; comment?: string } {
  let keyJ: J = x;
  let valueJ: J | undefined;
  if (isMap) {
    if (!Array.isArray(x) || x.length !== 2) return fail(ctx, 'map element', x);
    [keyJ, valueJ] = x as [J, J];
  }
  let comment: string | undefined;
  const wrapped = only(keyJ);
  if (wrapped?.[0] === 'elem' && isObj(wrapped[1])) {
    const e = wrapped[1];
    if (typeof e.comment === 'string') comment = e.comment;
    keyJ = e.val;
  }
  const c = only(keyJ);
  const key = c?.[0] === 'concat' && Array.isArray(c[1]) ? c[1].map((p) => expr(p, ctx)) : [expr(keyJ, ctx)];
  const out: { key: string[]; value?: string[]; comment?: string } = { key };
  if (isMap) out.value = [verdict(valueJ, ctx) ?? fail(ctx, 'map value', valueJ)];
  if (comment !== undefined) out.comment = comment;
  return out;
}

/**
 * Converts one table of an `nft -j list table` document. Chains in document order, rules in
 * order within each, sets and maps with their elements. Throws NftJsonError on the first thing
 * it does not know (naming the chain or set and the JSON).
 */
export function nftJsonToView(doc: J, family: 'ip' | 'ip6', table: string): NftRuleView {
  const chains = new Map<string, { rules: { rule: string; comment?: string }[] }>();
  const sets = new Map<string, { kind: 'set' | 'map'; elements: { key: string[]; value?: string[]; comment?: string }[] }>();
  const items = isObj(doc) && Array.isArray(doc.nftables) ? doc.nftables : null;
  if (!items) throw new NftJsonError('not an nft -j document (no "nftables" array)');
  let sawTable = false;
  for (const item of items) {
    const o = only(item);
    if (!o || !isObj(o[1])) continue;
    const [kind, body] = o as [string, Record<string, J>];
    if (kind === 'metainfo') continue;
    if (body.family !== family || (kind === 'table' ? body.name : body.table) !== table) continue;
    switch (kind) {
      case 'table':
        sawTable = true;
        break;
      case 'chain':
        if (typeof body.name === 'string' && !chains.has(body.name)) chains.set(body.name, { rules: [] });
        break;
      case 'rule': {
        const chain = String(body.chain);
        const ctx: Ctx = { where: `chain ${chain}${typeof body.handle === 'number' ? ` (rule handle ${body.handle})` : ''}`, family };
        if (!chains.has(chain)) chains.set(chain, { rules: [] });
        if (!Array.isArray(body.expr) || body.expr.length === 0) fail(ctx, 'rule', body);
        const rule = (body.expr as J[]).map((s) => statement(s, ctx)).join(' ');
        chains.get(chain)!.rules.push(typeof body.comment === 'string' ? { rule, comment: body.comment } : { rule });
        break;
      }
      case 'set':
      case 'map': {
        const name = String(body.name);
        const ctx: Ctx = { where: `${kind} @${name}`, family };
        if (kind === 'map' && body.map !== 'verdict') fail(ctx, 'map data type', body.map);
        const elems = Array.isArray(body.elem) ? body.elem : [];
        sets.set(name, { kind, elements: elems.map((e) => element(e, kind === 'map', ctx)) });
        break;
      }
      default:
        // flowtables, counters, quotas, ct helpers…: kube-proxy writes none.
        throw new NftJsonError(`cannot trace table ${family} ${table}: unsupported object ${kind} ${JSON.stringify(body)}`);
    }
  }
  if (!sawTable) throw new NftJsonError(`no table ${family} ${table} in the nft -j document`);
  return { chains, sets };
}
