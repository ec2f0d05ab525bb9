// Packet fuzz (issue 16, part 7): ≥ 100,000 generated and mutated frames per program through
// the real XDP and tc programs (BPF_PROG_TEST_RUN). A frame must come out byte for byte as it
// went in, or — when it is a well-formed packet to a frontend of the program's scope —
// translated exactly: destination to the backend (and, behind SNAT, source to the node with a
// port in the SNAT range), IPv4 checksum valid, L4 checksum valid exactly when it was before,
// every other byte (padding included) untouched. The oracle (`expected`) states what
// "well-formed" means, independently of the C parser. Malformed frames must also create no
// conntrack entry. KX_FUZZ_SEED replays a run; KX_FUZZ_CASES sets the frames per program;
// KX_FUZZ_CASE runs one case (the loop, PRNG and knobs: fuzz-harness.ts, shared with the IPv6
// fuzz fuzz6.test.ts). Needs root; under CI=true a non-root run fails.
import type { MapState, Program } from './fixture.js';
import { buildFrame, checksum, SCTP, TCP, UDP } from './packet.js';
import {
  describeFuzz, frontendsOf, fuzzServices, l4Problem, mutateBytes, randomBytes, translationOracle, type Expect, type Rng,
} from './fuzz-harness.js';
import { BE_LOCAL } from '../../src/dataplane/ebpf/maps.js';

const NODE = '192.168.1.10';
const CIP = '10.96.0.10';
const BE_REMOTE = '10.244.2.30', BE_LOCAL_ADDR = '10.244.1.20';

const STATE: MapState = { nodeAddr: NODE, services: fuzzServices({ clusterIp: CIP, node: NODE, remote: BE_REMOTE, local: BE_LOCAL_ADDR }) };
const FRONTENDS = frontendsOf(STATE);

const ipAt = (b: Buffer, at: number) => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;

/** What the programs must do with a frame: the definition of a well-formed Service packet. */
function expected(f: Buffer, program: Program): Expect {
  const no = (why: string): Expect => ({ kind: 'untouched', why });
  if (f.length < 14 || f.readUInt16BE(12) !== 0x0800) return no('not IPv4');
  if (f.length < 34) return no('IPv4 header cut');
  const proto = f[23]!;
  if (proto !== TCP && proto !== UDP && proto !== SCTP) return no('not TCP/UDP/SCTP');
  if (f[14]! >> 4 !== 4 || (f[14]! & 15) < 5) return no('bad version/IHL');
  const hlen = (f[14]! & 15) * 4;
  const tot = f.readUInt16BE(16);
  if (tot < hlen || 14 + tot > f.length) return no('bad total length');
  if (checksum(f.subarray(14, 14 + hlen)) !== 0) return no('bad IPv4 checksum');
  if (f.readUInt16BE(20) & 0x3fff) return no('fragment');
  const l4 = 14 + hlen;
  const bad = l4Problem(f, l4, tot - hlen, proto);
  if (bad) return no(bad);
  const dst = ipAt(f, 30), dport = f.readUInt16BE(l4 + 2);
  const fe = FRONTENDS.find((x) => x.program === program && x.addr === dst && x.port === dport && x.protoNum === proto);
  if (!fe) return no('no frontend');
  const be = fe.backends[0];
  if (!be) return { kind: 'reject' };
  return { kind: 'nat', dst: be.addr, dport: be.port, snat: program === 'xdp' && !((be.flags ?? 0) & BE_LOCAL), l4, proto };
}

/** Checks one run against the oracle; returns a failure text or null. */
const check = translationOracle(expected, {
  srcAt: 26, dstAt: 30, addrLen: 4, text: ipAt, node: NODE, alsoChanged: [24, 25],
  headerProblem: (out) => (checksum(out.subarray(14, 14 + (out[14]! & 15) * 4)) === 0 ? null : 'IPv4 checksum invalid after translation'),
});

// ---- generators -------------------------------------------------------------------------

function fixIp(f: Buffer): Buffer {
  const hlen = Math.min((f[14]! & 15) * 4, f.length - 14);
  if (hlen < 12) return f;
  f.writeUInt16BE(0, 24);
  f.writeUInt16BE(checksum(f.subarray(14, 14 + hlen)), 24);
  return f;
}

/** A well-formed packet to a frontend of `program`'s scope (or near one: other port or address). */
function servicePacket(r: Rng, program: Program): Buffer {
  const fes = FRONTENDS.filter((x) => x.program === program);
  const fe = r.pick(fes);
  const near = r.next() < 0.15;
  const client = program === 'tc' ? `10.244.1.${r.int(2, 250)}` : `203.0.${r.int(0, 256)}.${r.int(1, 255)}`;
  return buildFrame({
    src: client, dst: near && r.next() < 0.5 ? '10.96.0.99' : fe.addr, sport: r.int(1024, 65536), dport: near ? fe.port + 1 : fe.port,
    proto: r.next() < 0.05 ? (fe.protoNum === TCP ? UDP : TCP) : fe.protoNum,
    payload: randomBytes(r, r.int(0, 64)),
    ipOptions: Buffer.from(Array.from({ length: r.int(0, 11) * 4 }, () => r.pick([0, 1, 7, 68, r.int(0, 256)]))),
    udpNoChecksum: r.next() < 0.1, tcpFlags: r.pick([0x02, 0x10, 0x18, 0x11, 0x04, r.int(0, 256)]),
  });
}

const l4Of = (f: Buffer) => 14 + (f[14]! & 15) * 4;

const CATEGORIES: Record<string, (r: Rng, p: Program) => Buffer> = {
  'valid Service packet': (r, p) => servicePacket(r, p),
  'random bytes': (r) => {
    const b = randomBytes(r, r.int(0, 160));
    if (b.length >= 14 && r.next() < 0.7) b.writeUInt16BE(0x0800, 12);
    if (b.length >= 34 && r.next() < 0.5) { b[14] = 0x45; b[23] = r.pick([TCP, UDP]); fixIp(b); }
    return b;
  },
  'truncated': (r, p) => { const f = servicePacket(r, p); return f.subarray(0, r.int(14, f.length)); },
  'truncated, total length kept consistent': (r, p) => {
    const f = servicePacket(r, p); const cut = Buffer.from(f.subarray(0, r.int(34, f.length)));
    cut.writeUInt16BE(cut.length - 14, 16); return fixIp(cut);
  },
  'bad IHL': (r, p) => { const f = servicePacket(r, p); f[14] = (f[14]! & 0xf0) | r.int(0, 16); return r.next() < 0.7 ? fixIp(f) : f; },
  'bad version': (r, p) => { const f = servicePacket(r, p); f[14] = (r.pick([0, 1, 2, 3, 5, 6, 7, 15]) << 4) | (f[14]! & 15); return fixIp(f); },
  'total length off': (r, p) => { const f = servicePacket(r, p); f.writeUInt16BE(Math.max(0, f.readUInt16BE(16) + r.pick([-30, -9, -3, -1, 1, 7, 1000])), 16); return fixIp(f); },
  'Ethernet padding (shorter datagram)': (r, p) => {
    const f = servicePacket(r, p);
    const padded = Buffer.concat([f, randomBytes(r, r.int(1, 40))]);
    if (r.next() < 0.5) { padded.writeUInt16BE(r.int(20, padded.readUInt16BE(16) + 1), 16); fixIp(padded); }
    return padded;
  },
  'bad TCP data offset': (r, p) => { const f = servicePacket(r, p); if (f[23] === TCP) f[l4Of(f) + 12] = (r.int(0, 16) << 4) | (f[l4Of(f) + 12]! & 15); return f; },
  'bad UDP length': (r, p) => { const f = servicePacket(r, p); if (f[23] === UDP) f.writeUInt16BE(r.pick([0, 7, 8, f.readUInt16BE(l4Of(f) + 4) - 1, f.readUInt16BE(l4Of(f) + 4) + 1, 65535]), l4Of(f) + 4); return f; },
  'bad IPv4 checksum': (r, p) => { const f = servicePacket(r, p); f.writeUInt16BE(f.readUInt16BE(24) ^ (1 << r.int(0, 16)), 24); return f; },
  'fragment': (r, p) => { const f = servicePacket(r, p); f.writeUInt16BE(r.next() < 0.5 ? 0x2000 | r.int(0, 0x2000) : r.int(1, 0x2000), 20); return fixIp(f); },
  'VLAN-tagged': (r, p) => { const f = servicePacket(r, p); return Buffer.concat([f.subarray(0, 12), Buffer.from([0x81, 0x00, 0, r.int(1, 255)]), f.subarray(12)]); },
  'IPv6 with extension headers': (r) => {
    const exts = Array.from({ length: r.int(0, 4) }, () => r.pick([0, 43, 60, 44]));
    const chain: number[] = [];
    for (let i = 0; i < exts.length; i++) chain.push(exts[i + 1] ?? r.pick([TCP, UDP]), 0, ...Array(6).fill(0));
    const l4 = Buffer.alloc(20); l4.writeUInt16BE(r.int(1, 65536), 0); l4.writeUInt16BE(r.pick([80, 53, 30080]), 2);
    const payload = Buffer.concat([Buffer.from(chain), l4]);
    const ip6 = Buffer.alloc(40); ip6[0] = 0x60; ip6.writeUInt16BE(payload.length, 4); ip6[6] = exts[0] ?? r.pick([TCP, UDP]); ip6[7] = 64;
    const eth = Buffer.alloc(14); eth.writeUInt16BE(0x86dd, 12);
    return Buffer.concat([eth, ip6, payload]).subarray(0, r.next() < 0.2 ? r.int(14, 54 + payload.length) : undefined);
  },
  'mutated Service packet': (r, p) => {
    const f = mutateBytes(r, servicePacket(r, p), 12);
    if (r.next() < 0.5) fixIp(f);
    return f;
  },
};
/** Categories that hold no well-formed packet at all: they must leave conntrack empty. */
const NEVER_VALID = new Set(['bad IPv4 checksum', 'fragment', 'VLAN-tagged', 'IPv6 with extension headers', 'bad version']);

describeFuzz('packet fuzz', 'kx-fuzz', STATE, { categories: CATEGORIES, neverValid: NEVER_VALID, check, counts: { fragment: { untrackable: 'all', malformed: 0 } } });
