// Ethernet/IPv4 and Ethernet/IPv6 (with extension headers) TCP/UDP/SCTP frames: built for
// BPF_PROG_TEST_RUN (`kube-xdp trace`, the fixtures, the bench) and parsed back with every
// checksum recomputed from scratch (not incrementally), so a wrong incremental update is caught.
import { writeIPv4 } from './codec.js';
import { addressBytes, addressText } from '../../model/cidr.js';

export const TCP = 6;
export const UDP = 17;
export const ICMPV6 = 58;
export const ICMP = 1;
export const SCTP = 132;
/** IPv6 next-header values of the extension headers the datapath knows. */
export const NEXTHDR = { hop: 0, routing: 43, fragment: 44, dest: 60 } as const;

/** One IPv6 extension header. hop / dest / routing: `len` bytes (a multiple of 8, default 8);
 * options are unknown-but-skippable TLVs (type 0x1e) of recognisable bytes, the routing header
 * has an experimental type (253) with 0 segments left (so the final destination is the IPv6
 * destination). fragment: 8 bytes. */
export type Ext6 =
  | { type: 'hop' | 'dest' | 'routing'; len?: number }
  | { type: 'fragment'; offset8?: number; more?: boolean; id?: number };

export interface FrameSpec {
  src: string; dst: string; sport: number; dport: number; proto: number;
  payload?: Buffer;
  ipOptions?: Buffer;       // IPv4 only: multiple of 4 bytes
  fragment?: { offset8: number; more: boolean }; // IPv4 only
  udpNoChecksum?: boolean;  // UDP checksum 0 = none
  tcpFlags?: number;        // default SYN
  ext?: Ext6[];             // IPv6 only: extension headers, in order
  hopLimit?: number;        // IPv6 only: default 64
}

export function checksum(buf: Buffer, initial = 0): number {
  let sum = initial;
  for (let i = 0; i + 1 < buf.length; i += 2) sum += buf.readUInt16BE(i);
  if (buf.length % 2) sum += buf[buf.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return (~sum) & 0xffff;
}

/** The one's complement sum of the pseudo-header of the IP header `ip` (IPv4, or IPv6 by its
 * version nibble: source, destination, upper-layer length, next header), to seed `checksum`. */
export function pseudoSum(ip: Buffer, proto: number, l4len: number): number {
  if (ip[0]! >> 4 === 6) return pseudoSum6(ip.subarray(8, 24), ip.subarray(24, 40), proto, l4len);
  const p = Buffer.alloc(12);
  ip.copy(p, 0, 12, 20);
  p[9] = proto;
  p.writeUInt16BE(l4len, 10);
  return (~checksum(p)) & 0xffff;
}

/** RFC 8200 section 8.1: the IPv6 pseudo-header's sum (16-byte addresses as stored). */
export function pseudoSum6(src: Buffer, dst: Buffer, proto: number, l4len: number): number {
  const p = Buffer.alloc(40);
  src.copy(p, 0, 0, 16);
  dst.copy(p, 16, 0, 16);
  p.writeUInt32BE(l4len, 32);
  p[39] = proto;
  return (~checksum(p)) & 0xffff;
}

const CRC32C_POLY = 0x82f63b78;

/** CRC32c's byte table (Castagnoli, reflected): SCTP's checksum here and in bpf/include/kx_crc32c_tables.h. */
export function crc32cTable(): number[] {
  return Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ CRC32C_POLY : c >>> 1;
    return c >>> 0;
  });
}

/** CRC32c as SCTP stores it (RFC 4960 appendix B: the final value, little-endian). */
export function crc32c(buf: Buffer): number {
  let c = 0xffffffff;
  for (const b of buf) c = (CRC32C_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8)) >>> 0;
  return (c ^ 0xffffffff) >>> 0;
}
const CRC32C_TABLE = crc32cTable();

/** SCTP: the common header (checksum at 8, stored little-endian) and one DATA chunk. */
function sctpSegment(sport: number, dport: number, payload: Buffer): Buffer {
  const padded = Buffer.concat([payload, Buffer.alloc((4 - (payload.length % 4)) % 4)]);
  const seg = Buffer.alloc(12 + 16 + padded.length);
  seg.writeUInt16BE(sport, 0);
  seg.writeUInt16BE(dport, 2);
  seg.writeUInt32BE(0x12345678, 4); // verification tag
  seg[12] = 0; seg[13] = 3; seg.writeUInt16BE(16 + payload.length, 14); // DATA, B+E, length
  seg.writeUInt32BE(1, 16); // TSN
  padded.copy(seg, 28);
  seg.writeUInt32LE(crc32c(seg), 8);
  return seg;
}

/** The L4 segment of a frame: SCTP complete (its CRC32c has no pseudo-header); TCP and UDP with
 * the checksum field 0, at `csumAt`, for the family's pseudo-header to fill. */
function l4Segment(s: FrameSpec): { seg: Buffer; csumAt: number | null } {
  const payload = s.payload ?? Buffer.from('kube-xdp');
  if (s.proto === SCTP) return { seg: sctpSegment(s.sport, s.dport, payload), csumAt: null };
  const l4 = s.proto === TCP ? Buffer.alloc(20) : Buffer.alloc(8);
  l4.writeUInt16BE(s.sport, 0);
  l4.writeUInt16BE(s.dport, 2);
  if (s.proto === TCP) {
    l4.writeUInt32BE(1000, 4);
    l4[12] = 5 << 4;
    l4[13] = s.tcpFlags ?? 0x02;
    l4.writeUInt16BE(64240, 14);
  } else {
    l4.writeUInt16BE(8 + payload.length, 4);
  }
  return { seg: Buffer.concat([l4, payload]), csumAt: s.proto === TCP ? 16 : 6 };
}

/** Fills a TCP/UDP checksum from the pseudo-header sum (UDP: 0 is sent as 0xffff). */
function fillChecksum(s: FrameSpec, seg: Buffer, csumAt: number | null, pseudo: number): void {
  if (csumAt === null || (s.proto === UDP && s.udpNoChecksum)) return;
  let c = checksum(seg, pseudo);
  if (s.proto === UDP && c === 0) c = 0xffff;
  seg.writeUInt16BE(c, csumAt);
}

/** Ethernet/IPv4 (buildFrame) or Ethernet/IPv6 (buildFrame6), by the source address's family. */
export function frameOf(s: FrameSpec): Buffer {
  return s.src.includes(':') ? buildFrame6(s) : buildFrame(s);
}

export function buildFrame(s: FrameSpec): Buffer {
  if (s.ext !== undefined || s.hopLimit !== undefined) throw new Error('ext / hopLimit are IPv6 fields: use buildFrame6');
  const opts = s.ipOptions ?? Buffer.alloc(0);
  const ihl = 5 + opts.length / 4;
  const { seg, csumAt } = l4Segment(s);
  return buildIp(s, ihl, opts, seg, (ip) => fillChecksum(s, seg, csumAt, pseudoSum(ip, s.proto, seg.length)));
}

/** Ethernet + IPv4 around an L4 segment; `fill` completes the segment once the header exists. */
function buildIp(s: FrameSpec, ihl: number, opts: Buffer, seg: Buffer, fill: (ip: Buffer) => void = () => {}): Buffer {
  const ip = Buffer.alloc(ihl * 4);
  ip[0] = 0x40 | ihl;
  ip.writeUInt16BE(ip.length + seg.length, 2);
  ip.writeUInt16BE(0x1234, 4);
  const frag = s.fragment ? (s.fragment.more ? 0x2000 : 0) | s.fragment.offset8 : 0x4000; // DF when unfragmented
  ip.writeUInt16BE(frag, 6);
  ip[8] = 64;
  ip[9] = s.proto;
  writeIPv4(ip, 12, s.src);
  writeIPv4(ip, 16, s.dst);
  opts.copy(ip, 20);
  ip.writeUInt16BE(checksum(ip), 10);
  fill(ip);
  return Buffer.concat([ETH_HEADER_MACS, Buffer.from([0x08, 0x00]), ip, seg]);
}

/** The MAC addresses of every built frame: destination 02:00:00:00:00:02, source ...:01. */
export const ETH_HEADER_MACS = Buffer.from('020000000002020000000001', 'hex');

/** The bytes of one extension header whose Next Header is `next`. */
export function extHeader(e: Ext6, next: number): Buffer {
  if (e.type === 'fragment') {
    const b = Buffer.alloc(8);
    b[0] = next;
    b.writeUInt16BE((((e.offset8 ?? 0) & 0x1fff) << 3) | (e.more ? 1 : 0), 2);
    b.writeUInt32BE(e.id ?? 0x6b780001, 4);
    return b;
  }
  const len = e.len ?? 8;
  if (len < 8 || len % 8 !== 0 || len > 2048) throw new Error(`extension header length ${len}: a multiple of 8 in [8, 2048]`);
  const b = Buffer.alloc(len);
  b[0] = next;
  b[1] = len / 8 - 1;
  let o = 2;
  if (e.type === 'routing') {
    b[2] = 253; // experimental routing type (RFC 4727)
    b[3] = 0;   // segments left: the IPv6 destination is the final one
    for (o = 4; o < len; o++) b[o] = (0xa0 + o) & 0xff;
    return b;
  }
  while (o < len) {
    const left = len - o;
    if (left === 1) { b[o++] = 0; break; } // Pad1
    const n = Math.min(left - 2, 255);
    b[o] = 0x1e; // unassigned option type, high bits 00: skip it
    b[o + 1] = n;
    for (let i = 0; i < n; i++) b[o + 2 + i] = (0xa0 + o + i) & 0xff; // recognisable bytes that must survive
    o += n + 2;
  }
  return b;
}

/** The chain of extension headers, each naming the next one, the last naming `proto`. */
export function extChain(exts: readonly Ext6[], proto: number): Buffer {
  return Buffer.concat(exts.map((e, i) => extHeader(e, i + 1 < exts.length ? NEXTHDR[exts[i + 1]!.type] : proto)));
}

/** A 40-byte IPv6 header. */
export function ipv6Header(src: string, dst: string, nextHeader: number, payloadLength: number, hopLimit = 64): Buffer {
  const ip = Buffer.alloc(40);
  ip[0] = 0x60;
  ip.writeUInt16BE(payloadLength, 4);
  ip[6] = nextHeader;
  ip[7] = hopLimit;
  ipv6Bytes(src).copy(ip, 8);
  ipv6Bytes(dst).copy(ip, 24);
  return ip;
}

/** Ethernet/IPv6, optional extension headers, and buildFrame's TCP, UDP or SCTP segment (same
 * layout), its checksum over the IPv6 pseudo-header. No IPv4 options or fragments (an IPv6
 * fragment is an `ext` of type 'fragment'). */
export function buildFrame6(s: FrameSpec): Buffer {
  if (s.ipOptions !== undefined || s.fragment !== undefined) throw new Error('ipOptions / fragment are IPv4 fields: use ext');
  const { seg, csumAt } = l4Segment(s);
  const exts = s.ext ?? [];
  const chain = extChain(exts, s.proto);
  const ip = ipv6Header(s.src, s.dst, exts.length ? NEXTHDR[exts[0]!.type] : s.proto, chain.length + seg.length, s.hopLimit);
  fillChecksum(s, seg, csumAt, pseudoSum(ip, s.proto, seg.length));
  return Buffer.concat([ETH_HEADER_MACS, Buffer.from([0x86, 0xdd]), ip, chain, seg]);
}

export interface ParsedFrame {
  family: 4 | 6;
  src: string; dst: string; sport: number; dport: number; proto: number;
  /** IPv4: the header checksum recomputed from scratch; IPv6 (no header checksum): true. */
  ipChecksumOk: boolean; l4ChecksumOk: boolean; l4Checksum: number; payload: Buffer;
  /** Frame offset of the L4 header (after IPv4 options or IPv6 extension headers). */
  l4Off: number;
  /** IPv6: the extension headers' next-header values, in order (IPv4: []). */
  ext: number[];
}

const ipStr = (b: Buffer, at: number) => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
/** The canonical (RFC 5952) text of the IPv6 address at `at`. */
export const ip6Str = (b: Buffer, at: number): string => addressText(b.subarray(at, at + 16));

/** The L4 fields of `seg` and its checksum recomputed from scratch (pseudo: the pseudo-header sum;
 * `zeroOk`: a UDP checksum of 0 means none, valid in IPv4 only). */
function parseL4(seg: Buffer, proto: number, pseudo: number, zeroOk: boolean) {
  if (proto === SCTP) {
    const zeroed = Buffer.from(seg);
    zeroed.writeUInt32LE(0, 8);
    return {
      sport: seg.readUInt16BE(0), dport: seg.readUInt16BE(2),
      l4ChecksumOk: seg.readUInt32LE(8) === crc32c(zeroed), l4Checksum: seg.readUInt32LE(8), payload: seg.subarray(28),
    };
  }
  const csumAt = proto === TCP ? 16 : 6;
  const l4Checksum = seg.readUInt16BE(csumAt);
  const zeroed = Buffer.from(seg);
  zeroed.writeUInt16BE(0, csumAt);
  let expect = checksum(zeroed, pseudo);
  if (proto === UDP && expect === 0) expect = 0xffff;
  return {
    sport: seg.readUInt16BE(0), dport: seg.readUInt16BE(2),
    l4ChecksumOk: proto === UDP && l4Checksum === 0 ? zeroOk : l4Checksum === expect,
    l4Checksum,
    payload: seg.subarray(proto === TCP ? (seg[12]! >> 4) * 4 : 8),
  };
}

/** An Ethernet/IPv4 or Ethernet/IPv6 (by EtherType) TCP/UDP/SCTP frame, checksums recomputed. */
export function parseFrame(f: Buffer): ParsedFrame {
  if (f.readUInt16BE(12) === 0x86dd) return parseFrame6(f);
  const ip = f.subarray(14);
  const ihl = (ip[0]! & 0xf) * 4;
  const total = ip.readUInt16BE(2);
  const proto = ip[9]!;
  const seg = ip.subarray(ihl, total);
  return {
    family: 4, src: ipStr(ip, 12), dst: ipStr(ip, 16), proto, l4Off: 14 + ihl, ext: [],
    ipChecksumOk: checksum(ip.subarray(0, ihl)) === 0,
    ...parseL4(seg, proto, proto === SCTP ? 0 : pseudoSum(ip, proto, seg.length), true),
  };
}

/** IPv6: the extension headers (hop-by-hop, routing, destination options, fragment) are walked
 * to the L4 header, which runs to the end of the payload length. A UDP checksum of 0 is invalid
 * (RFC 8200 section 8.1). */
function parseFrame6(f: Buffer): ParsedFrame {
  const ip = f.subarray(14);
  if (ip.length < 40 || ip[0]! >> 4 !== 6) throw new Error('not an IPv6 packet');
  const end = 40 + ip.readUInt16BE(4);
  let nh = ip[6]!, off = 40;
  const ext: number[] = [];
  while (nh === NEXTHDR.hop || nh === NEXTHDR.routing || nh === NEXTHDR.dest || nh === NEXTHDR.fragment) {
    ext.push(nh);
    const next = ip[off]!;
    off += nh === NEXTHDR.fragment ? 8 : (ip[off + 1]! + 1) * 8;
    nh = next;
  }
  const seg = ip.subarray(off, end);
  return {
    family: 6, src: ip6Str(ip, 8), dst: ip6Str(ip, 24), proto: nh, l4Off: 14 + off, ext,
    ipChecksumOk: true,
    ...parseL4(seg, nh, nh === SCTP ? 0 : pseudoSum(ip, nh, seg.length), false),
  };
}

/** An Ethernet/IPv4/ICMP frame, parsed for the checks of an ICMP error a program built. */
export interface IcmpFrame {
  ethDst: Buffer; ethSrc: Buffer; etherType: number;
  version: number; ihl: number; totalLength: number; ipChecksumOk: boolean; proto: number; src: string; dst: string;
  type: number; code: number; icmpChecksumOk: boolean;
  /** What follows the 8-byte ICMP header: for an error, the offending datagram's start. */
  quote: Buffer;
}

export function parseIcmpFrame(f: Buffer): IcmpFrame {
  if (f.length < 14 + 20 + 8) throw new Error(`frame of ${f.length} bytes is too short for IPv4 + ICMP`);
  const ip = f.subarray(14);
  const ihl = (ip[0]! & 0xf) * 4;
  const totalLength = ip.readUInt16BE(2);
  const icmp = ip.subarray(ihl, Math.min(totalLength, ip.length));
  return {
    ethDst: f.subarray(0, 6), ethSrc: f.subarray(6, 12), etherType: f.readUInt16BE(12),
    version: ip[0]! >> 4, ihl, totalLength, ipChecksumOk: checksum(ip.subarray(0, ihl)) === 0, proto: ip[9]!,
    src: ipStr(ip, 12), dst: ipStr(ip, 16),
    type: icmp[0] ?? -1, code: icmp[1] ?? -1, icmpChecksumOk: icmp.length >= 8 && checksum(icmp) === 0,
    quote: icmp.subarray(8),
  };
}

/** An Ethernet/IPv6/ICMPv6 frame (no extension headers expected), parsed for the checks of an
 * ICMPv6 message: its checksum recomputed from scratch over the pseudo-header and the message. */
export interface Icmp6Frame {
  ethDst: Buffer; ethSrc: Buffer; etherType: number;
  version: number;
  /** The first 32-bit word: version, traffic class, flow label. */
  word0: number;
  payloadLength: number; nextHeader: number; hopLimit: number; src: string; dst: string;
  type: number; code: number;
  /** The 4 bytes after the checksum (packet too big: the MTU; other errors: unused, 0). */
  rest: number;
  icmpChecksumOk: boolean;
  /** What follows the 8-byte ICMPv6 header: for an error, the offending packet's start. */
  quote: Buffer;
}

export function parseIcmp6Frame(f: Buffer): Icmp6Frame {
  if (f.length < 14 + 40 + 8) throw new Error(`frame of ${f.length} bytes is too short for IPv6 + ICMPv6`);
  const ip = f.subarray(14);
  const payloadLength = ip.readUInt16BE(4);
  const msg = ip.subarray(40, Math.min(40 + payloadLength, ip.length));
  if (msg.length < 8) throw new Error(`ICMPv6 message of ${msg.length} bytes (payload length ${payloadLength}, frame ${f.length})`);
  return {
    ethDst: f.subarray(0, 6), ethSrc: f.subarray(6, 12), etherType: f.readUInt16BE(12),
    version: ip[0]! >> 4, word0: ip.readUInt32BE(0), payloadLength, nextHeader: ip[6]!, hopLimit: ip[7]!,
    src: ip6Str(ip, 8), dst: ip6Str(ip, 24),
    type: msg[0]!, code: msg[1]!, rest: msg.readUInt32BE(4),
    icmpChecksumOk: msg.length === payloadLength && checksum(msg, pseudoSum(ip, ICMPV6, msg.length)) === 0,
    quote: msg.subarray(8),
  };
}

/** The 16 bytes of an IPv6 address (any RFC 4291 text form). */
export function ipv6Bytes(addr: string): Buffer {
  const b = addr.includes(':') ? addressBytes(addr) : null;
  if (!b || b.length !== 16) throw new Error(`bad IPv6 address ${addr}`);
  return b;
}
