// Address and CIDR arithmetic for the rule renderers (nodePortAddresses, source ranges). Pure.
import { isIP } from 'node:net';

/** An address as a number of its family's width, or null if it is not a plain IPv4/IPv6 address. */
function toBigInt(ip: string): { value: bigint; bits: 32 | 128 } | null {
  const v = isIP(ip);
  if (v === 4) return { value: ip.split('.').reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n), bits: 32 };
  if (v !== 6) return null;
  let text = ip;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const n = toBigInt(v4[1]!)!.value;
    text = `${text.slice(0, -v4[1]!.length)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return { value: groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n), bits: 128 };
}

/** 127.0.0.0/8 or ::1. */
export const isLoopback = (ip: string) => ip === '::1' || ip.startsWith('127.');

export interface Cidr {
  readonly text: string;
  readonly network: bigint;
  readonly prefix: number;
  readonly bits: 32 | 128;
}

/** "a.b.c.d/n" or "x::/n"; null when malformed. */
export function parseCidr(text: string): Cidr | null {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(text.trim());
  if (!m) return null;
  const addr = toBigInt(m[1]!);
  const prefix = Number(m[2]);
  if (!addr || prefix > addr.bits) return null;
  const mask = ((1n << BigInt(prefix)) - 1n) << BigInt(addr.bits - prefix);
  return { text, network: addr.value & mask, prefix, bits: addr.bits };
}

export function cidrContains(cidr: Cidr, ip: string): boolean {
  const addr = toBigInt(ip);
  if (!addr || addr.bits !== cidr.bits) return false;
  const mask = ((1n << BigInt(cidr.prefix)) - 1n) << BigInt(cidr.bits - cidr.prefix);
  return (addr.value & mask) === cidr.network;
}

function formatAddress(value: bigint, bits: 32 | 128): string {
  if (bits === 32) return [24n, 16n, 8n, 0n].map((s) => Number((value >> s) & 0xffn)).join('.');
  const groups = Array.from({ length: 8 }, (_, i) => Number((value >> BigInt(112 - 16 * i)) & 0xffffn));
  // Longest run (≥ 2) of zero groups becomes "::", the first one on a tie (RFC 5952, as Go).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = (gs: number[]) => gs.map((g) => g.toString(16)).join(':');
  if (best < 0) return hex(groups);
  return `${hex(groups.slice(0, best))}::${hex(groups.slice(best + bestLen))}`;
}

/** An address in canonical form (RFC 5952 for IPv6, as Go prints it); null when malformed. */
export function canonicalAddress(ip: string): string | null {
  const a = toBigInt(ip);
  return a ? formatAddress(a.value, a.bits) : null;
}

/** An address as its 4 or 16 bytes in network order; null when malformed. */
export function addressBytes(ip: string): Buffer | null {
  const a = toBigInt(ip);
  if (!a) return null;
  const out = Buffer.alloc(a.bits / 8);
  for (let i = 0; i < out.length; i++) out[i] = Number((a.value >> BigInt(8 * (out.length - 1 - i))) & 0xffn);
  return out;
}

/** The canonical text of 4 or 16 address bytes. */
export function addressText(bytes: Uint8Array): string {
  const value = [...bytes].reduce((acc, b) => (acc << 8n) | BigInt(b), 0n);
  return formatAddress(value, bytes.length === 4 ? 32 : 128);
}

/** The network in canonical form, as Go's net.IPNet.String(): "192.168.0.0/16", "2001:db8::/32". */
export function cidrString(c: Cidr): string {
  return `${formatAddress(c.network, c.bits)}/${c.prefix}`;
}
