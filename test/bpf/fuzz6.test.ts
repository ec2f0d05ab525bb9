// IPv6 packet fuzz (issue 11): ≥ 100,000 generated and mutated IPv6 frames per program through
// the real XDP and tc programs (BPF_PROG_TEST_RUN), the IPv6 twin of fuzz.test.ts. A frame must
// come out byte for byte as it went in, or — when it is a well-formed IPv6 packet to a frontend
// of the program's scope — translated exactly (destination to the backend; behind SNAT, source
// to kx_config6's node address with a port in the SNAT range; L4 checksum over the IPv6
// pseudo-header valid exactly when it was; every other byte, extension headers and padding
// included, untouched), or — to a Service without endpoints — answered with an ICMPv6 port
// unreachable built from it (reject6Problem).
// The oracle (`expected`) states what a well-formed IPv6 Service packet is, by RFC 8200 and the
// limits the datapath documents (bpf/include/kx_parse.h), without reading the C:
//  - at most 4 hop-by-hop / routing / destination options headers of at most 256 bytes
//    together; more passes untouched, counted untrackable;
//  - any Fragment header (an atomic fragment too) makes a fragment: untouched, untrackable;
//  - payload length 0 (a jumbogram, with or without its hop-by-hop option) is not ours;
//  - a hop-by-hop options header may only come first, immediately after the IPv6 header (RFC
//    8200 sections 4.1, 4.3): any extension header naming hop-by-hop as its next header makes
//    the packet malformed (untouched; counted malformed);
//  - a routing header with segments left ≠ 0 (RFC 8200 section 4.4) means the IPv6 destination
//    is not the final one: not a Service packet (untouched; counted untrackable); with segments
//    left 0 it is passed over like any other walked header;
//  - a UDP checksum of 0 is invalid in IPv6 (RFC 8200 section 8.1), but the datapath does not
//    verify L4 checksums (kx_parse.h): such a datagram is translated like one with any other
//    bad checksum, its checksum left 0 (kx_xdp_l4's "0 stays 0", tc's BPF_F_MARK_MANGLED_0),
//    so it stays invalid and the receiver still discards it;
//  - malformed shapes (extension headers cut or past the payload, payload length past the
//    frame, bad TCP data offset, UDP length ≠ payload, version ≠ 6) pass untouched.
// Frames that can hold no well-formed packet run first and must leave conntrack (kx_ct6 and
// kx_ct_new6, and the IPv4 tables) empty; some categories must also move the counters by exactly
// one per frame (untrackable, malformed) or not at all (their chains stay within the walked
// limits, so the datapath reaches the header that decides). The state has no IPv4 frontend:
// every IPv4 frame is untouched. KX_FUZZ_SEED replays a run, KX_FUZZ_CASES sets the frames per program,
// KX_FUZZ_CASE runs one case (fuzz-harness.ts). Needs root; under CI=true a non-root run fails.
import type { MapState, Program } from './fixture.js';
import { buildFrame, buildFrame6, buildIcmp6Frame, ip6Str, ipv6Bytes, NEXTHDR, SCTP, TCP, UDP, type Ext6 } from './packet.js';
import {
  describeFuzz, frontendsOf, fuzzServices, l4Problem, mutateBytes, randomBytes, translationOracle, type Counts, type Expect, type Rng,
} from './fuzz-harness.js';
import { BE_LOCAL, FE_NODEPORT, FE_REJECT } from '../../src/dataplane/ebpf/maps.js';

const NODE4 = '192.168.1.10';
const NODE6 = 'fd00:c0a8:1::10';
const CIP6 = 'fd00:96::10';
const BE_REMOTE = 'fd00:244:2::30', BE_LOCAL_ADDR = 'fd00:10::5';

// fuzz.test.ts's Services in IPv6, plus UDP behind SNAT (its checksum-0 case) and an SCTP
// REJECT. Both node addresses are configured: IPv6 flows must SNAT to kx_config6's.
const STATE: MapState = {
  nodeAddr: NODE4,
  nodeAddr6: NODE6,
  services: [
    ...fuzzServices({ clusterIp: CIP6, node: NODE6, remote: BE_REMOTE, local: BE_LOCAL_ADDR }),
    { svcId: 10, addr: NODE6, port: 30054, proto: 'UDP', scope: 'EXT', flags: FE_NODEPORT, backends: [{ id: 10, addr: BE_REMOTE, port: 5353 }] },
    { svcId: 11, addr: CIP6, port: 36413, proto: 'SCTP', scope: 'INT', flags: FE_REJECT, backends: [] },
  ],
};
/** Addresses as ip6Str prints them (RFC 5952), to compare with what the oracle reads. */
const canon = (a: string): string => ip6Str(ipv6Bytes(a), 0);
const FRONTENDS = frontendsOf(STATE).map((fe) => ({ ...fe, addrBytes: ipv6Bytes(fe.addr) }));

// Frame offsets.
const ETH_TYPE = 12, IP6 = 14, PLEN = 18, NEXT = 20, SRC = 22, DST = 38, PAYLOAD = 54;
/** Extension headers the datapath walks (a fragment header ends the walk: see `expected`). */
const WALKED = new Set<number>([NEXTHDR.hop, NEXTHDR.routing, NEXTHDR.dest]);
const MAX_EXT = 4, MAX_EXT_BYTES = 256;

/** What the programs must do with a frame: the definition of a well-formed IPv6 Service packet. */
function expected(f: Buffer, program: Program): Expect {
  const no = (why: string): Expect => ({ kind: 'untouched', why });
  if (f.length < 14 || f.readUInt16BE(ETH_TYPE) !== 0x86dd) return no('not IPv6 (and no IPv4 frontend)');
  if (f.length < PAYLOAD) return no('IPv6 header cut');
  if (f[IP6]! >> 4 !== 6) return no('bad version');
  const plen = f.readUInt16BE(PLEN);
  if (plen === 0) return no('payload length 0 (jumbogram): not ours');
  const end = PAYLOAD + plen;
  if (end > f.length) return no('payload length past the frame');
  let nh = f[NEXT]!, off = PAYLOAD, count = 0;
  while (WALKED.has(nh) || nh === NEXTHDR.fragment) {
    if (nh === NEXTHDR.fragment) return no('fragment');
    if (off + 8 > end) return no('extension header cut');
    // RFC 8200 4.4: the IPv6 destination is not the final one (nor the pseudo-header's)
    if (nh === NEXTHDR.routing && f[off + 3] !== 0) return no('routing header with segments left');
    nh = f[off]!;
    // RFC 8200 4.1/4.3: hop-by-hop only immediately after the IPv6 header
    if (nh === NEXTHDR.hop) return no('hop-by-hop not first');
    off += (f[off + 1]! + 1) * 8;
    count++;
    if (off > end) return no('extension header past the payload');
  }
  if (count > MAX_EXT || off - PAYLOAD > MAX_EXT_BYTES) return no('more extension headers than walked');
  if (nh !== TCP && nh !== UDP && nh !== SCTP) return no('not TCP/UDP/SCTP');
  const bad = l4Problem(f, off, end - off, nh);
  if (bad) return no(bad);
  const dst = f.subarray(DST, DST + 16), dport = f.readUInt16BE(off + 2);
  const fe = FRONTENDS.find((x) => x.program === program && x.port === dport && x.protoNum === nh && x.addrBytes.equals(dst));
  if (!fe) return no('no frontend');
  const be = fe.backends[0];
  if (!be) return { kind: 'reject' };
  return { kind: 'nat', dst: canon(be.addr), dport: be.port, snat: program === 'xdp' && !((be.flags ?? 0) & BE_LOCAL), l4: off, proto: nh };
}

/** Checks one run against the oracle; returns a failure text or null. IPv6 has no header
 * checksum: only the addresses, ports and the L4 checksum may change. */
const check = translationOracle(expected, { srcAt: SRC, dstAt: DST, addrLen: 16, text: ip6Str, node: canon(NODE6) });

// ---- generators -------------------------------------------------------------------------

const hex = (n: number) => n.toString(16);

/** Splits `units` (8-byte units) into n headers of at least one unit each. */
function split(r: Rng, n: number, units: number): number[] {
  const parts = Array(n).fill(1) as number[];
  for (let u = units - n; u > 0; u--) parts[r.int(0, n)]!++;
  return parts;
}

/** Extension headers of these lengths (8-byte units), hop-by-hop only as the first (RFC 8200),
 * routing headers with 0 segments left (buildFrame6). */
const validChain = (r: Rng, units: number[]): Ext6[] =>
  units.map((u, i) => ({ type: i === 0 && r.next() < 0.4 ? 'hop' : r.pick(['dest', 'dest', 'routing'] as const), len: u * 8 }));

/** A chain of extension headers within the walked limits (4 headers, 256 bytes), hop-by-hop
 * first when present, routing headers with 0 segments left; a fifth of them exactly at both
 * limits. */
function walkedExt(r: Rng): Ext6[] {
  const atLimit = r.next() < 0.2;
  const n = atLimit ? MAX_EXT : r.pick([0, 0, 0, 1, 1, 2, 3, 4]);
  if (n === 0) return [];
  return validChain(r, split(r, n, atLimit ? MAX_EXT_BYTES / 8 : r.int(n, Math.min(MAX_EXT_BYTES / 8, n * 4) + 1)));
}

/** Frame offsets [start, end) of each extension header of a frame built with `ext`. */
function extSpans(ext: readonly Ext6[]): [number, number][] {
  let at = PAYLOAD;
  return ext.map((e) => { const len = e.type === 'fragment' ? 8 : e.len ?? 8; at += len; return [at - len, at] as [number, number]; });
}

/** proto: only frontends of that protocol, and the packet is of it. near: false for a packet to
 * the frontend itself. */
interface PacketOptions { proto?: number; ext?: Ext6[]; udpNoChecksum?: boolean; near?: boolean }

/** A well-formed packet to a frontend of `program`'s scope (or near one: another port, address,
 * protocol, or the other scope's frontend), behind a walked chain of extension headers with
 * random option bytes, random traffic class, flow label and hop limit. */
function servicePacket(r: Rng, program: Program, o: PacketOptions = {}): Buffer {
  const ofProto = FRONTENDS.filter((x) => o.proto === undefined || x.protoNum === o.proto);
  const fe = r.pick(ofProto.filter((x) => x.program === program));
  const near = o.near ?? r.next() < 0.15;
  const how = near ? r.int(0, o.proto === undefined ? 4 : 3) : -1; // 3: the other protocol
  const target = how === 2 ? r.pick(ofProto.filter((x) => x.program !== program)) : fe;
  const client = program === 'tc' ? `fd00:244:1::${hex(r.int(2, 0xffff))}` : `2001:db8:${hex(r.int(0, 0x10000))}::${hex(r.int(1, 0xffff))}`;
  const ext = o.ext ?? walkedExt(r);
  const proto = how === 3 ? (target.protoNum === TCP ? UDP : TCP) : target.protoNum;
  const f = buildFrame6({
    src: client, dst: how === 1 ? 'fd00:96::99' : target.addr, sport: r.int(1024, 65536), dport: how === 0 ? target.port + 1 : target.port,
    proto, payload: randomBytes(r, r.int(0, 64)), ext, hopLimit: r.int(0, 256),
    udpNoChecksum: o.udpNoChecksum ?? r.next() < 0.1, tcpFlags: r.pick([0x02, 0x10, 0x18, 0x11, 0x04, r.int(0, 256)]),
  });
  f[IP6] = 0x60 | r.int(0, 16); // traffic class and flow label: not the datapath's to change
  randomBytes(r, 3).copy(f, IP6 + 1);
  if (r.next() < 0.5) {
    // option bytes (routing: past its type and segments left) are never the datapath's to read
    extSpans(ext).forEach(([s, e], i) => { const from = s + (ext[i]!.type === 'routing' ? 4 : 2); randomBytes(r, e - from).copy(f, from); });
  }
  return f;
}

/** The frame offset of the L4 header of a servicePacket (its chain is well-formed). */
function l4Of(f: Buffer): number {
  let nh = f[NEXT]!, off = PAYLOAD;
  while (WALKED.has(nh)) { nh = f[off]!; off += (f[off + 1]! + 1) * 8; }
  return off;
}

/** Values a mutation likes to write: next-header values, version nibbles, 0 and 0xff. */
const mutableNext = [0, 0xff, TCP, UDP, SCTP, NEXTHDR.hop, NEXTHDR.routing, NEXTHDR.fragment, NEXTHDR.dest, 58, 59, 0x60, 1, 2, 4];

const CATEGORIES: Record<string, (r: Rng, p: Program) => Buffer> = {
  'valid Service packet': (r, p) => servicePacket(r, p),
  'UDP without checksum (0: invalid in IPv6)': (r, p) => servicePacket(r, p, { proto: UDP, udpNoChecksum: true }),
  'random bytes': (r) => {
    const b = randomBytes(r, r.int(0, 200));
    if (b.length >= 14 && r.next() < 0.8) b.writeUInt16BE(0x86dd, ETH_TYPE);
    if (b.length >= PAYLOAD && r.next() < 0.6) {
      b[IP6] = 0x60 | (b[IP6]! & 15);
      b[NEXT] = r.pick([TCP, UDP, SCTP, TCP, UDP, SCTP, NEXTHDR.hop, NEXTHDR.routing, NEXTHDR.dest, NEXTHDR.fragment, 58, 59, 51, r.int(0, 256)]);
      if (r.next() < 0.7) b.writeUInt16BE(r.next() < 0.8 ? b.length - PAYLOAD : r.int(0, b.length - PAYLOAD + 1), PLEN);
      if (r.next() < 0.5) {
        const fe = r.pick(FRONTENDS);
        ipv6Bytes(fe.addr).copy(b, DST);
        if (b.length >= PAYLOAD + 4) b.writeUInt16BE(fe.port, PAYLOAD + 2);
      }
    }
    return b;
  },
  'truncated': (r, p) => { const f = servicePacket(r, p); return f.subarray(0, r.int(14, f.length)); },
  'truncated, payload length kept consistent': (r, p) => {
    const f = servicePacket(r, p); const cut = Buffer.from(f.subarray(0, r.int(PAYLOAD, f.length)));
    cut.writeUInt16BE(cut.length - PAYLOAD, PLEN); return cut;
  },
  'bad version or EtherType': (r, p) => {
    const f = servicePacket(r, p);
    const how = r.next();
    if (how < 0.6) { f[IP6] = (r.pick([0, 1, 2, 3, 4, 5, 7, 8, 15]) << 4) | (f[IP6]! & 15); return f; }
    if (how < 0.8) { f.writeUInt16BE(0x0800, ETH_TYPE); return f; } // IPv6 packet said to be IPv4
    const v4 = buildFrame({ src: '203.0.113.7', dst: NODE4, sport: r.int(1024, 65536), dport: r.pick([80, 30080, 53]), proto: r.pick([TCP, UDP, SCTP]), payload: randomBytes(r, r.int(0, 40)) });
    v4.writeUInt16BE(0x86dd, ETH_TYPE); // IPv4 packet said to be IPv6
    return v4;
  },
  'payload length off': (r, p) => {
    const f = servicePacket(r, p);
    f.writeUInt16BE(Math.max(0, f.readUInt16BE(PLEN) + r.pick([-30, -9, -3, -1, 1, 7, 1000])), PLEN);
    return f;
  },
  'Ethernet padding (shorter payload)': (r, p) => {
    const f = servicePacket(r, p);
    const padded = Buffer.concat([f, randomBytes(r, r.int(1, 40))]);
    if (r.next() < 0.5) padded.writeUInt16BE(r.int(0, padded.readUInt16BE(PLEN) + 1), PLEN);
    return padded;
  },
  'bad TCP data offset': (r, p) => {
    const f = servicePacket(r, p, { proto: TCP });
    f[l4Of(f) + 12] = (r.int(0, 16) << 4) | (f[l4Of(f) + 12]! & 15);
    return f;
  },
  'bad UDP length': (r, p) => {
    const f = servicePacket(r, p, { proto: UDP });
    const at = l4Of(f) + 4, len = f.readUInt16BE(at);
    f.writeUInt16BE(r.pick([0, 7, 8, len - 1, len + 1, 65535]), at);
    return f;
  },
  'fragment': (r, p) => {
    const ext: Ext6[] = walkedExt(r).slice(0, r.int(0, MAX_EXT));
    const frag: Ext6 = { type: 'fragment', offset8: r.next() < 0.5 ? 0 : r.int(0, 0x2000), more: r.next() < 0.5, id: r.int(0, 2 ** 31) };
    ext.splice(r.int(0, ext.length + 1), 0, frag); // anywhere in the chain, the first header too
    return servicePacket(r, p, { ext, near: false });
  },
  'more extension headers than walked': (r, p) => { // valid chains otherwise (hop-by-hop first, no segments left)
    if (r.next() < 0.5) {
      const n = r.int(MAX_EXT + 1, 9); // 5 to 8 headers, 256 bytes at the most
      return servicePacket(r, p, { near: false, ext: validChain(r, split(r, n, r.int(n, MAX_EXT_BYTES / 8 + 1))) });
    }
    const n = r.int(1, MAX_EXT + 1); // 1 to 4 headers, more than 256 bytes
    const units = r.next() < 0.5 ? MAX_EXT_BYTES / 8 + 1 : r.int(MAX_EXT_BYTES / 8 + 1, 80);
    return servicePacket(r, p, { near: false, ext: validChain(r, split(r, n, units)) });
  },
  'jumbogram (payload length 0)': (r, p) => {
    const hop = r.next() < 0.8;
    const ext: Ext6[] = hop ? [{ type: 'hop', len: 8 }, ...walkedExt(r).slice(1).map((e) => ({ ...e, type: 'dest' as const }))] : walkedExt(r);
    const f = servicePacket(r, p, { ext, near: false });
    if (hop) { // RFC 2675: option 0xC2, 4 bytes: the payload's length
      f[PAYLOAD + 2] = 0xc2; f[PAYLOAD + 3] = 4; f.writeUInt32BE(f.length - PAYLOAD, PAYLOAD + 4);
    }
    f.writeUInt16BE(0, PLEN);
    return f;
  },
  'extension header cut or past the payload': (r, p) => {
    const ext = walkedExt(r);
    if (ext.length === 0) ext.push({ type: r.pick(['hop', 'dest', 'routing'] as const), len: 8 * r.int(1, 5) });
    const f = servicePacket(r, p, { ext, near: false });
    const [start, stop] = r.pick(extSpans(ext));
    const end = PAYLOAD + f.readUInt16BE(PLEN);
    if (r.next() < 0.5) { // its length runs past the payload's end
      f[start + 1] = r.int(Math.ceil((end - start + 1) / 8) - 1, 256);
      return f;
    }
    const cut = Buffer.from(f.subarray(0, r.int(Math.max(start, PAYLOAD + 1), stop))); // the payload ends inside it
    cut.writeUInt16BE(cut.length - PAYLOAD, PLEN);
    return r.next() < 0.3 ? Buffer.concat([cut, f.subarray(cut.length)]) : cut; // the rest as padding, or not
  },
  'behind a header the datapath does not walk (AH, ESP, no next header, mobility, ICMPv6)': (r, p) => {
    if (r.next() < 0.3) { // an ICMPv6 error quoting a Service packet nobody tracks (conntrack is empty)
      const quoted = servicePacket(r, p, { near: false, ext: [] });
      return buildIcmp6Frame({ src: 'fd00:244:2::1', dst: ip6Str(quoted, SRC), type: r.pick([1, 2, 3, 4]), code: r.int(0, 5), body: quoted.subarray(IP6, IP6 + r.int(48, quoted.length - IP6 + 1)) });
    }
    const ext: Ext6[] = [...walkedExt(r).slice(0, 3), { type: 'dest', len: 8 * r.int(1, 3) }];
    const f = servicePacket(r, p, { ext, near: false });
    const spans = extSpans(ext);
    f[spans.length > 1 ? spans[spans.length - 2]![0] : NEXT] = r.pick([51, 50, 59, 135, 139, 140, 58, 253]);
    return f;
  },
  'hop-by-hop not first': (r, p) => {
    // 2 to 4 headers within the walked limits, hop-by-hop anywhere after the first (the first
    // may be one too); or 4 valid walked headers and a hop-by-hop as the fifth
    const fifth = r.next() < 0.2;
    const n = fifth ? MAX_EXT : r.int(2, MAX_EXT + 1);
    const ext = validChain(r, split(r, n, r.int(n, MAX_EXT_BYTES / 8 + 1)));
    if (fifth) ext.push({ type: 'hop', len: 8 * r.int(1, 5) });
    else {
      ext.forEach((e, i) => { if (i > 0 && r.next() < 0.3) e.type = 'hop'; });
      ext[r.int(1, n)]!.type = 'hop';
    }
    return servicePacket(r, p, { ext });
  },
  'routing header with segments left (not the final destination)': (r, p) => {
    // 1 to 4 headers within the walked limits (hop-by-hop first when present), one routing
    // header or more, at least one with segments left ≠ 0, of any routing type
    const n = r.int(1, MAX_EXT + 1);
    const ext = validChain(r, split(r, n, r.int(n, MAX_EXT_BYTES / 8 + 1)));
    if (n === 1 && ext[0]!.type === 'hop') ext.push({ type: 'routing', len: 8 * r.int(1, 4) });
    const at = r.int(ext[0]!.type === 'hop' ? 1 : 0, ext.length); // never a first hop-by-hop
    ext[at]!.type = 'routing';
    const f = servicePacket(r, p, { ext });
    extSpans(ext).forEach(([s], i) => {
      if (ext[i]!.type !== 'routing') return;
      f[s + 2] = r.pick([0, 2, 3, 4, 253, r.int(0, 256)]); // RH0, Mobile IPv6, RPL, SRH, experimental
      f[s + 3] = i === at ? r.int(1, 256) : r.pick([0, r.int(0, 256)]);
    });
    return f;
  },
  'VLAN-tagged': (r, p) => { const f = servicePacket(r, p); return Buffer.concat([f.subarray(0, 12), Buffer.from([0x81, 0x00, 0, r.int(1, 255)]), f.subarray(12)]); },
  'mutated Service packet': (r, p) => {
    const f = servicePacket(r, p);
    // half the time only the headers (up to the L4 header's first 20 bytes) are hit
    const span = r.next() < 0.5 ? f : f.subarray(0, Math.min(f.length, l4Of(f) + 20));
    mutateBytes(r, span, 12, 5, mutableNext);
    return f;
  },
};
/** Categories that hold no well-formed packet at all: they must leave conntrack empty. */
const NEVER_VALID = new Set([
  'bad version or EtherType', 'fragment', 'more extension headers than walked', 'jumbogram (payload length 0)',
  'extension header cut or past the payload', 'behind a header the datapath does not walk (AH, ESP, no next header, mobility, ICMPv6)', 'VLAN-tagged',
  'hop-by-hop not first', 'routing header with segments left (not the final destination)',
]);
const NOTHING: Counts = { new_flow: 0, untrackable: 0, malformed: 0 };
/** What whole categories must add to the counters. */
const COUNTS: Record<string, Counts> = {
  'valid Service packet': { untrackable: 0, malformed: 0 },
  'fragment': { untrackable: 'all', malformed: 0, new_flow: 0 },
  'more extension headers than walked': { untrackable: 'all', malformed: 0, new_flow: 0 },
  'hop-by-hop not first': { malformed: 'all', untrackable: 0, new_flow: 0 },
  'routing header with segments left (not the final destination)': { untrackable: 'all', malformed: 0, new_flow: 0 },
  'jumbogram (payload length 0)': NOTHING,
  'behind a header the datapath does not walk (AH, ESP, no next header, mobility, ICMPv6)': { ...NOTHING, icmp_translated: 0 },
  'VLAN-tagged': NOTHING,
};

describeFuzz('IPv6 packet fuzz', 'kx-fuzz6', STATE, { categories: CATEGORIES, neverValid: NEVER_VALID, check, counts: COUNTS });
