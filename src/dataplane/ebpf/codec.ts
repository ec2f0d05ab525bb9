// A codec turns one C struct of bpf/include/kx_maps.h into a plain object and back.
// The field table is also what test/unit/btf-layout.test.ts compares with the object's BTF.
import { addressBytes, addressText } from '../../model/cidr.js';

export type FieldType = 'u8' | 'u16' | 'u32' | 'u64' | 'be16' | 'ipv4' | 'ipv6';

export interface FieldSpec {
  readonly name: string;
  readonly type: FieldType;
  readonly offset: number;
}

export const FIELD_SIZE: Record<FieldType, number> = { u8: 1, u16: 2, u32: 4, u64: 8, be16: 2, ipv4: 4, ipv6: 16 };

export interface Codec<T> {
  readonly struct: string; // C name, e.g. "struct frontend_key" or "__u32"
  readonly size: number;
  readonly fields: readonly FieldSpec[];
  encode(value: T, buf: Buffer, offset: number): void;
  decode(buf: Buffer, offset: number): T;
}

type FieldValue = number | bigint | string;

function writeField(buf: Buffer, at: number, type: FieldType, v: FieldValue): void {
  switch (type) {
    case 'u8': buf.writeUInt8(v as number, at); break;
    case 'u16': buf.writeUInt16LE(v as number, at); break;
    case 'u32': buf.writeUInt32LE(v as number, at); break;
    case 'u64': buf.writeBigUInt64LE(BigInt(v), at); break;
    case 'be16': buf.writeUInt16BE(v as number, at); break;
    case 'ipv4': writeIPv4(buf, at, v as string); break;
    case 'ipv6': writeIPv6(buf, at, v as string); break;
  }
}

function readField(buf: Buffer, at: number, type: FieldType): FieldValue {
  switch (type) {
    case 'u8': return buf.readUInt8(at);
    case 'u16': return buf.readUInt16LE(at);
    case 'u32': return buf.readUInt32LE(at);
    case 'u64': return buf.readBigUInt64LE(at);
    case 'be16': return buf.readUInt16BE(at);
    case 'ipv4': return `${buf[at]}.${buf[at + 1]}.${buf[at + 2]}.${buf[at + 3]}`;
    case 'ipv6': return addressText(buf.subarray(at, at + 16));
  }
}

/** Writes a dotted-quad IPv4 address in network order; throws on anything else. */
export function writeIPv4(buf: Buffer, at: number, ip: string): void {
  const parts = ip.split('.');
  if (parts.length !== 4) throw new Error(`not an IPv4 address: ${JSON.stringify(ip)}`);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    const n = Number(p);
    if (!/^\d{1,3}$/.test(p) || n > 255) throw new Error(`not an IPv4 address: ${JSON.stringify(ip)}`);
    buf[at + i] = n;
  }
}

/** Writes an IPv6 address (any RFC 4291 text form) in network order; throws on anything else. */
export function writeIPv6(buf: Buffer, at: number, ip: string): void {
  const bytes = ip.includes(':') ? addressBytes(ip) : null;
  if (!bytes || bytes.length !== 16) throw new Error(`not an IPv6 address: ${JSON.stringify(ip)}`);
  bytes.copy(buf, at);
}

/** A codec for a struct: fields not listed (padding) are written as zero. */
export function structCodec<T extends object>(struct: string, size: number, fields: FieldSpec[]): Codec<T> {
  return {
    struct,
    size,
    fields,
    encode(value, buf, offset) {
      buf.fill(0, offset, offset + size);
      const rec = value as Record<string, FieldValue>;
      for (const f of fields) writeField(buf, offset + f.offset, f.type, rec[f.name]!);
    },
    decode(buf, offset) {
      const out: Record<string, FieldValue> = {};
      for (const f of fields) out[f.name] = readField(buf, offset + f.offset, f.type);
      return out as T;
    },
  };
}

/** A codec for a bare __u32 key (backend id, rev-NAT id, array index). */
export const u32Codec: Codec<number> = {
  struct: '__u32',
  size: 4,
  fields: [],
  encode(value, buf, offset) { buf.writeUInt32LE(value, offset); },
  decode(buf, offset) { return buf.readUInt32LE(offset); },
};

/** A codec for a bare __u64 value (bitmap words). */
export const u64Codec: Codec<bigint> = {
  struct: '__u64',
  size: 8,
  fields: [],
  encode(value, buf, offset) { buf.writeBigUInt64LE(value, offset); },
  decode(buf, offset) { return buf.readBigUInt64LE(offset); },
};

/** A codec for a bare __u8 value (the "present" value of set-like maps). */
export const u8Codec: Codec<number> = {
  struct: '__u8',
  size: 1,
  fields: [],
  encode(value, buf, offset) { buf.writeUInt8(value, offset); },
  decode(buf, offset) { return buf.readUInt8(offset); },
};

/** Encodes entries back to back, as the batch map calls want them. */
export function encodeAll<T>(codec: Codec<T>, values: readonly T[]): Buffer {
  const buf = Buffer.alloc(codec.size * values.length);
  values.forEach((v, i) => codec.encode(v, buf, i * codec.size));
  return buf;
}

export function decodeAll<T>(codec: Codec<T>, buf: Buffer, count: number): T[] {
  const out: T[] = [];
  for (let i = 0; i < count; i++) out.push(codec.decode(buf, i * codec.size));
  return out;
}
