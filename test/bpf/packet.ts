// Builds and parses Ethernet/IPv4/TCP/UDP frames for BPF_PROG_TEST_RUN fixtures, and checks
// checksums from scratch (not incrementally), so a wrong incremental update is caught.
import { writeIPv4 } from '../../src/dataplane/ebpf/codec.js';
import { crc32cTable } from '../../scripts/gen-crc32c-tables.js';

export const TCP = 6;
export const UDP = 17;

export interface FrameSpec {
  src: string; dst: string; sport: number; dport: number; proto: number;
  payload?: Buffer;
  ipOptions?: Buffer;       // multiple of 4 bytes
  fragment?: { offset8: number; more: boolean };
  udpNoChecksum?: boolean;  // UDP checksum 0 = none
  tcpFlags?: number;        // default SYN
}

export function checksum(buf: Buffer, initial = 0): number {
  let sum = initial;
  for (let i = 0; i + 1 < buf.length; i += 2) sum += buf.readUInt16BE(i);
  if (buf.length % 2) sum += buf[buf.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return (~sum) & 0xffff;
}

export function pseudoSum(ip: Buffer, proto: number, l4len: number): number {
  const p = Buffer.alloc(12);
  ip.copy(p, 0, 12, 20);
  p[9] = proto;
  p.writeUInt16BE(l4len, 10);
  return (~checksum(p)) & 0xffff;
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

export function buildFrame(s: FrameSpec): Buffer {
  const payload = s.payload ?? Buffer.from('kube-xdp');
  const opts = s.ipOptions ?? Buffer.alloc(0);
  const ihl = 5 + opts.length / 4;
  if (s.proto === SCTP) return buildIp(s, ihl, opts, sctpSegment(s.sport, s.dport, payload));
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
  const seg = Buffer.concat([l4, payload]);
  return buildIp(s, ihl, opts, seg, (ip) => {
    if (!(s.proto === UDP && s.udpNoChecksum)) {
      let c = checksum(seg, pseudoSum(ip, s.proto, seg.length));
      if (s.proto === UDP && c === 0) c = 0xffff;
      seg.writeUInt16BE(c, s.proto === TCP ? 16 : 6);
    }
  });
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
  const eth = Buffer.from('02000000000202000000000108 00'.replace(/ /g, ''), 'hex');
  return Buffer.concat([eth, ip, seg]);
}

export interface ParsedFrame {
  src: string; dst: string; sport: number; dport: number; proto: number;
  ipChecksumOk: boolean; l4ChecksumOk: boolean; l4Checksum: number; payload: Buffer;
}

const ipStr = (b: Buffer, at: number) => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;

export function parseFrame(f: Buffer): ParsedFrame {
  const ip = f.subarray(14);
  const ihl = (ip[0]! & 0xf) * 4;
  const total = ip.readUInt16BE(2);
  const proto = ip[9]!;
  const seg = ip.subarray(ihl, total);
  if (proto === SCTP) {
    const zeroed = Buffer.from(seg);
    zeroed.writeUInt32LE(0, 8);
    return {
      src: ipStr(ip, 12), dst: ipStr(ip, 16), sport: seg.readUInt16BE(0), dport: seg.readUInt16BE(2), proto,
      ipChecksumOk: checksum(ip.subarray(0, ihl)) === 0, l4ChecksumOk: seg.readUInt32LE(8) === crc32c(zeroed),
      l4Checksum: seg.readUInt32LE(8), payload: seg.subarray(28),
    };
  }
  const csumAt = proto === TCP ? 16 : 6;
  const l4Checksum = seg.readUInt16BE(csumAt);
  const zeroed = Buffer.from(seg);
  zeroed.writeUInt16BE(0, csumAt);
  let expect = checksum(zeroed, pseudoSum(ip, proto, seg.length));
  if (proto === UDP && expect === 0) expect = 0xffff;
  return {
    src: ipStr(ip, 12), dst: ipStr(ip, 16), sport: seg.readUInt16BE(0), dport: seg.readUInt16BE(2), proto,
    ipChecksumOk: checksum(ip.subarray(0, ihl)) === 0,
    l4ChecksumOk: proto === UDP && l4Checksum === 0 ? true : l4Checksum === expect,
    l4Checksum,
    payload: seg.subarray(proto === TCP ? (seg[12]! >> 4) * 4 : 8),
  };
}

/** A minimal IPv6/UDP frame and an ARP frame: not ours, must pass untouched. */
export function ipv6Frame(): Buffer {
  const b = Buffer.alloc(14 + 40 + 8);
  b.writeUInt16BE(0x86dd, 12);
  b[14] = 0x60;
  b.writeUInt16BE(8, 18);
  b[20] = UDP;
  b[21] = 64;
  return b;
}

export function arpFrame(): Buffer {
  const b = Buffer.alloc(42);
  b.writeUInt16BE(0x0806, 12);
  return b;
}

export const ICMP = 1;
export const SCTP = 132;

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

/** The 16 bytes of an IPv6 address ("::" expanded). */
function ipv6Bytes(addr: string): Buffer {
  const [head, tail] = addr.includes('::') ? addr.split('::') as [string, string] : [addr, null];
  const words = (s: string) => (s === '' ? [] : s.split(':').map((w) => parseInt(w, 16)));
  const h = words(head);
  const t = tail === null ? [] : words(tail);
  const all = tail === null ? h : [...h, ...new Array(8 - h.length - t.length).fill(0), ...t];
  if (all.length !== 8 || all.some((w) => !(w >= 0 && w <= 0xffff))) throw new Error(`bad IPv6 address ${addr}`);
  const b = Buffer.alloc(16);
  all.forEach((w, i) => b.writeUInt16BE(w, i * 2));
  return b;
}

/** Ethernet/IPv6 with buildFrame's TCP or UDP segment (same layout), its checksum over the IPv6
 * pseudo-header. No IP options or fragments. */
export function buildFrame6(s: Pick<FrameSpec, 'src' | 'dst' | 'sport' | 'dport' | 'proto' | 'payload' | 'tcpFlags'>): Buffer {
  const v4 = buildFrame({ ...s, src: '0.0.0.0', dst: '0.0.0.0' });
  const seg = Buffer.from(v4.subarray(14 + 20));
  const csumAt = s.proto === TCP ? 16 : 6;
  seg.writeUInt16BE(0, csumAt);
  const ip = Buffer.alloc(40);
  ip[0] = 0x60;
  ip.writeUInt16BE(seg.length, 4);
  ip[6] = s.proto;
  ip[7] = 64;
  ipv6Bytes(s.src).copy(ip, 8);
  ipv6Bytes(s.dst).copy(ip, 24);
  const pseudo = Buffer.alloc(40);
  ip.copy(pseudo, 0, 8, 40);
  pseudo.writeUInt32BE(seg.length, 32);
  pseudo[39] = s.proto;
  let c = checksum(Buffer.concat([pseudo, seg]));
  if (s.proto === UDP && c === 0) c = 0xffff;
  seg.writeUInt16BE(c, csumAt);
  return Buffer.concat([v4.subarray(0, 12), Buffer.from([0x86, 0xdd]), ip, seg]); // buildFrame's MACs, EtherType IPv6
}

/** What is wrong with a REJECT answer, or null: an ICMP port unreachable back to the client, from
 * the address it dialled, quoting its IPv4 header and the first 8 bytes of its L4 header. */
export function rejectProblem(input: Buffer, out: Buffer): string | null {
  if (input.readUInt16BE(12) !== 0x0800) return 'answer to a non-IPv4 packet';
  let g;
  try {
    g = parseIcmpFrame(out);
  } catch (e) {
    return (e as Error).message;
  }
  const sent = parseFrame(input);
  const quoteLen = (input[14]! & 0xf) * 4 + 8;
  const checks: [boolean, string][] = [
    [g.ethDst.equals(input.subarray(6, 12)) && g.ethSrc.equals(input.subarray(0, 6)), 'Ethernet addresses not swapped'],
    [g.etherType === 0x0800 && g.version === 4 && g.ihl >= 20, 'not IPv4'],
    [g.totalLength <= out.length - 14, `IPv4 total length ${g.totalLength} past the frame`],
    [g.ipChecksumOk, 'bad IPv4 header checksum'],
    [g.src === sent.dst && g.dst === sent.src, `addresses ${g.src} → ${g.dst}`],
    [g.proto === ICMP, `protocol ${g.proto}`],
    [g.type === 3 && g.code === 3, `ICMP type ${g.type} code ${g.code}`],
    [g.icmpChecksumOk, 'bad ICMP checksum'],
    [g.quote.equals(input.subarray(14, 14 + quoteLen)), 'quote is not the IPv4 header + 8 bytes of L4'],
  ];
  return checks.find(([ok]) => !ok)?.[1] ?? null;
}
