// Test-side frame helpers around src/dataplane/ebpf/frames.ts (re-exported): ARP and ICMPv6
// frames, and the checks of a REJECT answer.
import {
  ETH_HEADER_MACS, ICMP, ICMPV6, NEXTHDR, checksum, extChain, ipv6Header, parseFrame, parseIcmp6Frame, parseIcmpFrame, pseudoSum,
  type Ext6, type Icmp6Frame,
} from '../../src/dataplane/ebpf/frames.js';

export * from '../../src/dataplane/ebpf/frames.js';

/** An ARP frame: not ours, must pass untouched. */
export function arpFrame(): Buffer {
  const b = Buffer.alloc(42);
  b.writeUInt16BE(0x0806, 12);
  return b;
}

export interface Icmp6Spec {
  src: string; dst: string; type: number; code: number;
  /** The 4 bytes after the checksum: MTU of a packet too big, 0 for other errors. */
  rest?: number;
  /** The message body: an error's quote, a neighbour solicitation's target and options. */
  body: Buffer;
  hopLimit?: number;
  /** Extension headers before the ICMPv6 header. */
  ext?: Ext6[];
}

/** Ethernet/IPv6/ICMPv6 with its checksum over the pseudo-header (buildFrame's MACs). */
export function buildIcmp6Frame(s: Icmp6Spec): Buffer {
  const msg = Buffer.concat([Buffer.alloc(8), s.body]);
  msg[0] = s.type;
  msg[1] = s.code;
  msg.writeUInt32BE(s.rest ?? 0, 4);
  const exts = s.ext ?? [];
  const chain = extChain(exts, ICMPV6);
  const ip = ipv6Header(s.src, s.dst, exts.length ? NEXTHDR[exts[0]!.type] : ICMPV6, chain.length + msg.length, s.hopLimit ?? 64);
  msg.writeUInt16BE(checksum(msg, pseudoSum(ip, ICMPV6, msg.length)), 2);
  return Buffer.concat([ETH_HEADER_MACS, Buffer.from([0x86, 0xdd]), ip, chain, msg]);
}

/** What is wrong with a REJECT answer, or null: an ICMP port unreachable back to the client, from
 * the address it dialled, quoting its IPv4 header and the first 8 bytes of its L4 header. An
 * IPv6 packet's answer is checked by reject6Problem. */
export function rejectProblem(input: Buffer, out: Buffer): string | null {
  if (input.readUInt16BE(12) === 0x86dd) return reject6Problem(input, out);
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

/** What is wrong with an IPv6 REJECT answer, or null: an ICMPv6 destination unreachable, port
 * unreachable (1/4) back to the client (Ethernet addresses swapped), from the address it dialled,
 * hop limit 64, no extension headers, traffic class and flow label 0, its checksum valid over
 * the pseudo-header, quoting exactly the IPv6 header, the extension headers and the first 8
 * bytes of the L4 header, and nothing after the quote. */
export function reject6Problem(input: Buffer, out: Buffer): string | null {
  if (input.readUInt16BE(12) !== 0x86dd) return 'answer to a non-IPv6 packet';
  let g: Icmp6Frame;
  try {
    g = parseIcmp6Frame(out);
  } catch (e) {
    return (e as Error).message;
  }
  const sent = parseFrame(input);
  const quoteLen = sent.l4Off - 14 + 8;
  const checks: [boolean, string][] = [
    [g.ethDst.equals(input.subarray(6, 12)) && g.ethSrc.equals(input.subarray(0, 6)), 'Ethernet addresses not swapped'],
    [g.etherType === 0x86dd && g.version === 6, 'not IPv6'],
    [g.word0 === 0x60000000, `traffic class / flow label not 0 (first word 0x${g.word0.toString(16)})`],
    [g.nextHeader === ICMPV6, `next header ${g.nextHeader}`],
    [g.payloadLength === 8 + quoteLen, `payload length ${g.payloadLength}, expected ${8 + quoteLen}`],
    [out.length === 14 + 40 + g.payloadLength, `frame of ${out.length} bytes for payload length ${g.payloadLength}`],
    [g.hopLimit === 64, `hop limit ${g.hopLimit}`],
    [g.src === sent.dst && g.dst === sent.src, `addresses ${g.src} → ${g.dst}`],
    [g.type === 1 && g.code === 4, `ICMPv6 type ${g.type} code ${g.code}`],
    [g.rest === 0, `unused field 0x${g.rest.toString(16)}`],
    [g.icmpChecksumOk, 'bad ICMPv6 checksum'],
    [g.quote.equals(input.subarray(14, 14 + quoteLen)), 'quote is not the IPv6 header + extension headers + 8 bytes of L4'],
  ];
  return checks.find(([ok]) => !ok)?.[1] ?? null;
}
