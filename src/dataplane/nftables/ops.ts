// The operations of an nftables transaction as kube-proxy builds them with knftables, and
// their text: the lines knftables writes to `nft -f -` (the same syntax as knftables' fake
// Dump()). Formats learned from sigs.k8s.io/knftables objects.go; this is our own code. Pure.

export type { NftFamily } from '../../kernel/nft.js';
import type { NftFamily } from '../../kernel/nft.js';

export type NftObject =
  | { readonly kind: 'table'; readonly comment?: string }
  | {
      readonly kind: 'chain';
      readonly name: string;
      /** Base chains only (with hook and priority). */
      readonly type?: 'filter' | 'nat';
      readonly hook?: string;
      /** Numeric, as knftables writes it (kube-proxy's "dstnat-10" is -110). */
      readonly priority?: number;
      readonly comment?: string;
    }
  | {
      readonly kind: 'set' | 'map';
      readonly name: string;
      /** Required for add: "ipv4_addr", "ipv4_addr . inet_proto . inet_service : verdict". */
      readonly type?: string;
      readonly flags?: readonly string[];
      readonly timeoutSeconds?: number;
      readonly comment?: string;
    }
  | { readonly kind: 'rule'; readonly chain: string; readonly rule: string; readonly comment?: string }
  | {
      readonly kind: 'element';
      readonly container: 'set' | 'map';
      /** The set or map. */
      readonly name: string;
      readonly key: readonly string[];
      /** Map elements (required for add); ignored by delete. */
      readonly value?: readonly string[];
      readonly comment?: string;
    };

export type NftVerb = 'add' | 'flush' | 'delete';

export interface NftOp {
  readonly verb: NftVerb;
  readonly obj: NftObject;
}

/** Go's %q for the strings kube-proxy puts in comments. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\r') out += '\\r';
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

/** One transaction line, without its newline. Throws for an operation knftables cannot write
 *  (a rule flushed or deleted without a handle, an add missing its type or value). */
export function opText(family: NftFamily, table: string, op: NftOp): string {
  const { verb, obj } = op;
  const add = verb === 'add';
  switch (obj.kind) {
    case 'table': {
      let s = `${verb} table ${family} ${table}`;
      if (add && obj.comment !== undefined) s += ` { comment ${goQuote(obj.comment)} ; }`;
      return s;
    }
    case 'chain': {
      let s = `${verb} chain ${family} ${table} ${obj.name}`;
      if (add && (obj.type !== undefined || obj.comment !== undefined)) {
        s += ' {';
        if (obj.type !== undefined) {
          if (obj.hook === undefined || obj.priority === undefined) throw new Error(`base chain ${JSON.stringify(obj.name)} must specify hook and priority`);
          s += ` type ${obj.type} hook ${obj.hook} priority ${obj.priority} ;`;
        }
        if (obj.comment !== undefined) s += ` comment ${goQuote(obj.comment)} ;`;
        s += ' }';
      }
      return s;
    }
    case 'set':
    case 'map': {
      let s = `${verb} ${obj.kind} ${family} ${table} ${obj.name}`;
      if (add) {
        if (!obj.type) throw new Error(`${obj.kind} ${JSON.stringify(obj.name)} must specify its type`);
        s += ` { type ${obj.type} ;`;
        if (obj.flags && obj.flags.length > 0) s += ` flags ${obj.flags.join(',')} ;`;
        if (obj.timeoutSeconds !== undefined) s += ` timeout ${Math.trunc(obj.timeoutSeconds)}s ;`;
        if (obj.comment !== undefined) s += ` comment ${goQuote(obj.comment)} ;`;
        s += ' }';
      }
      return s;
    }
    case 'rule': {
      if (!add) throw new Error(`cannot ${verb} a rule without its handle`);
      let s = `add rule ${family} ${table} ${obj.chain} ${obj.rule}`;
      if (obj.comment !== undefined) s += ` comment ${goQuote(obj.comment)}`;
      return s;
    }
    case 'element': {
      if (verb === 'flush') throw new Error('cannot flush an element');
      let s = `${verb} element ${family} ${table} ${obj.name} { ${obj.key.join(' . ')}`;
      if (add) {
        if (obj.comment !== undefined) s += ` comment ${goQuote(obj.comment)}`;
        if (obj.container === 'map') {
          if (!obj.value || obj.value.length === 0) throw new Error(`map element of ${JSON.stringify(obj.name)} without a value`);
          s += ` : ${obj.value.join(' . ')}`;
        }
      }
      return `${s} }`;
    }
  }
}

/** The whole transaction, one operation a line, newline-terminated ("" for no operations). */
export function transactionText(family: NftFamily, table: string, ops: readonly NftOp[]): string {
  return ops.map((op) => `${opText(family, table, op)}\n`).join('');
}

/** nft's family for an IP family. */
export const nftFamilyOf = (family: 'IPv4' | 'IPv6'): NftFamily => (family === 'IPv4' ? 'ip' : 'ip6');
