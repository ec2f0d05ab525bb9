// BPF_PROG_TEST_RUN fixtures for bpf/kube_xdp.bpf.c, as a table (Katran's habit): each row is
// {description, program, map state, input frame, expected verdict, expected output}, with
// optional follow-up packets (`then`) for replies and established flows. Every rewritten
// packet is checked field by field (src, dst, sport, dport), byte by byte outside those
// fields, and with checksums recomputed from scratch; 'unchanged' means byte-identical.
// Counters (kx_stats) are checked as deltas over the fixture: unlisted ones must not move.
// Needs root; under CI=true a non-root run fails instead of skipping.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  Dataplane, ensureBpffs, statsDelta, KX_OBJ, TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT, XDP_DROP, XDP_PASS, XDP_TX,
  verifyPacket, ktimeNs, zeroAddr, type CtTable, type Fields, type MapState, type Program, type ServiceSpec, type StatName,
} from './fixture.js';
import {
  buildFrame, buildFrame6, buildIcmp6Frame, frameOf, parseFrame, parseIcmp6Frame, arpFrame, checksum, ipv6Bytes, rejectProblem,
  reject6Problem, ip6Str, ICMPV6, NEXTHDR, SCTP, TCP, UDP, type Ext6, type FrameSpec, type ParsedFrame,
} from './packet.js';
import {
  affinityKey6, affinityValue, MAPS, SNAT_PORTS, STAT_NAMES, BE_LOCAL, CT_FWD, CT_FIN_FWD, CT_FIN_REPLY, CT_REPLIED, CT_REPLY, CT_RST,
  CT_SNAT, FE_AFFINITY, FE_LOCAL_ONLY, FE_NODEPORT, FE_REJECT, FE_SRC_RANGES, type CtKey, type CtValue,
} from '../../src/dataplane/ebpf/maps.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot && process.env.CI === 'true') {
  test('datapath fixtures', () => assert.fail('CI=true requires root for the BPF_PROG_TEST_RUN fixtures'));
}

// ---- addresses of the little world the fixtures live in ----
const NODE = '192.168.1.10';        // this node (kx_config.node_addr)
const CLIENT = '203.0.113.7';       // an external client
const LB_IP = '198.51.100.20';      // a LoadBalancer / external IP (not the node's address)
const POD = '10.244.1.5';           // a client pod on this node
const BE_L1 = '10.244.1.20';        // backends on this node
const BE_L2 = '10.244.1.21';
const BE_R1 = '10.244.2.30';        // backends on another node
const BE_R2 = '10.244.2.31';
const CIP = '10.96.0.10';           // a ClusterIP
const SNAT_MIN = SNAT_PORTS.min, SNAT_END = SNAT_PORTS.max + 1;

// ---- table types ----

interface History {
  /** Parsed output of each packet sent so far (null when unchanged or a REJECT answer). */
  out: (ParsedFrame | null)[];
  /** Raw output frames. */
  raw: Buffer[];
  /** Free-form notes a step records for later steps (e.g. the backend it saw). */
  note: Record<string, string | number>;
}
type Lazy<T> = T | ((h: History) => T);

interface Packet {
  program: Program;
  /** Map changes made just before this packet is sent. */
  before?: (dp: Dataplane, h: History) => void;
  /** A FrameSpec is built by its source address's family (frameOf). */
  input: Lazy<FrameSpec | Buffer>;
  verdict: number;
  /** 'unchanged': the output equals the input byte for byte; 'reject': the output is the
   * ICMP / ICMPv6 port unreachable answering it (rejectProblem / reject6Problem). */
  expect: 'unchanged' | 'reject' | Lazy<Fields>;
  /** The exact L4 checksum field expected in the output (UDP 0 / 0xffff cases). */
  l4Checksum?: Lazy<number>;
  /** Extra checks after the packet (conntrack entries, ...). */
  check?: (dp: Dataplane, h: History) => void;
}

interface Fixture extends Packet {
  description: string;
  state: MapState;
  /** Follow-up packets (replies, established flow, after map changes). */
  then?: (Packet & { note?: string })[];
  /** Expected counter deltas over the whole fixture; unlisted counters must stay put. */
  stats: Partial<Record<StatName, number>>;
  /** Marks a known dataplane bug: the row runs, and its failure is reported as todo. */
  todo?: string;
}

const lazy = <T>(v: Lazy<T>, h: History): T => (typeof v === 'function' ? (v as (h: History) => T)(h) : v);

// ---- frames ----
const tcp = (src: string, sport: number, dst: string, dport: number, o: Partial<FrameSpec> = {}): FrameSpec =>
  ({ src, dst, sport, dport, proto: TCP, ...o });
const udp = (src: string, sport: number, dst: string, dport: number, o: Partial<FrameSpec> = {}): FrameSpec =>
  ({ src, dst, sport, dport, proto: UDP, ...o });
const ACK = 0x10;

/** Rewrites bytes of the IPv4 header (frame offset 14) and recomputes its checksum. */
function withIpHeader(f: Buffer, edit: (ip: Buffer) => void, fixChecksum = true): Buffer {
  const out = Buffer.from(f);
  const ip = out.subarray(14);
  edit(ip);
  if (fixChecksum) {
    const ihl = Math.max(5, ip[0]! & 0xf) * 4;
    ip.writeUInt16BE(0, 10);
    ip.writeUInt16BE(checksum(ip.subarray(0, Math.min(ihl, ip.length))), 10);
  }
  return out;
}

/** Rewrites bytes of the L4 header (after the IPv4 header), checksums left as they are. */
function withL4(f: Buffer, edit: (l4: Buffer) => void): Buffer {
  const out = Buffer.from(f);
  edit(out.subarray(14 + (out[14]! & 0xf) * 4));
  return out;
}

/** Pads a frame with zeros to Ethernet's 60-byte minimum, as a NIC does. */
const pad60 = (f: Buffer): Buffer => Buffer.concat([f, Buffer.alloc(Math.max(0, 60 - f.length))]);

/** Ethernet/IPv4/ICMP echo request. */
function icmpFrame(src: string, dst: string): Buffer {
  const f = buildFrame(udp(src, 1, dst, 80));
  const out = withIpHeader(f, (ip) => { ip[9] = 1; });
  const icmp = out.subarray(34);
  icmp.fill(0, 0, 8);
  icmp[0] = 8; // echo request
  icmp.writeUInt16BE(0x4242, 4);
  icmp.writeUInt16BE(checksum(icmp), 2);
  return out;
}

/** IPv4 options of n bytes: NOPs then EOL; 40 bytes is a Record Route option (type 7). */
function ipOptions(n: number): Buffer {
  if (n === 0) return Buffer.alloc(0);
  const b = Buffer.alloc(n, 1);
  if (n === 40) {
    b.fill(0);
    b[0] = 7; b[1] = 39; b[2] = 4; // record route, length 39, pointer 4
    for (let i = 3; i < 39; i++) b[i] = 0xa0 + i; // recognisable bytes that must survive
  } else {
    b[n - 1] = 0;
  }
  return b;
}

/** A payload for `out` (either family) such that its UDP checksum computes to 0 (so must be
 * sent as 0xffff). */
function payloadZeroingUdpChecksum(out: FrameSpec): Buffer {
  const payload = Buffer.from('kx-zero-csum');
  payload.writeUInt16BE(0, 0);
  const f = frameOf({ ...out, payload });
  const at = parseFrame(f).l4Off + 6;
  const c = f.readUInt16BE(at);
  const s0 = (~c) & 0xffff;
  payload.writeUInt16BE((0xffff - s0) & 0xffff, 0);
  const check = frameOf({ ...out, payload });
  assert.equal(check.readUInt16BE(at), 0xffff, 'crafted payload must make the UDP checksum 0 (sent as 0xffff)');
  return payload;
}

const SHORT_FRAMES = {
  ethOnly: buildFrame(tcp(POD, 40012, CIP, 80)).subarray(0, 14),
  ipCut: buildFrame(tcp(POD, 40013, CIP, 80)).subarray(0, 30),
};

// ---- services ----
const svc = (o: Partial<ServiceSpec> & Pick<ServiceSpec, 'backends'>): ServiceSpec =>
  ({ svcId: 1, addr: CIP, port: 80, proto: 'TCP', scope: 'INT', ...o });
const clusterIp = (backends: ServiceSpec['backends'], o: Partial<ServiceSpec> = {}): MapState =>
  ({ nodeAddr: NODE, services: [svc({ backends, ...o })] });
const nodePort = (backends: ServiceSpec['backends'], o: Partial<ServiceSpec> = {}): MapState =>
  ({ nodeAddr: NODE, services: [svc({ svcId: 4, addr: NODE, port: 30080, scope: 'EXT', flags: FE_NODEPORT, backends, ...o })] });

/** A conntrack key (the packet's tuple) with the direction its entry must record. */
type DirKey = CtKey & { dir: number };
const ctKey = (saddr: string, daddr: string, sport: number, dport: number, proto: number, dir: number): DirKey =>
  ({ saddr, daddr, sport, dport, proto, dir });

/** A conntrack entry: its table, its direction and every field but the time, which must be recent. */
function assertCt(dp: Dataplane, key: DirKey, want: Omit<CtValue, 'lastSeenNs' | 'backendAddr' | 'backendPort' | 'dir'> & Partial<CtValue> & { table: CtTable }): void {
  const got = dp.ctLookup(key);
  assert.ok(got, `conntrack entry ${JSON.stringify(key)} missing`);
  const { lastSeenNs, ...rest } = got;
  assert.deepEqual(rest, { backendAddr: zeroAddr(key.saddr), backendPort: 0, dir: key.dir, ...want }, `conntrack entry ${JSON.stringify(key)}`);
  assert.ok(lastSeenNs > 0n && lastSeenNs <= ktimeNs(), 'conntrack last_seen_ns set to bpf_ktime_get_ns()');
}

/** Every counter: the given ones, the others 0. */
const counters = (c: Partial<Record<StatName, number>>): Record<StatName, number> =>
  Object.fromEntries(STAT_NAMES.map((n) => [n, c[n] ?? 0])) as Record<StatName, number>;

/** A last_seen_ns that bpf_ktime_get_ns() is `seconds` past. The kernel subtracts in u64, so
 * this holds even when the machine (a fresh VM) has been up for less than that. */
const idleFor = (seconds: number): bigint => BigInt.asUintN(64, ktimeNs() - BigInt(seconds) * 1_000_000_000n);

/** Fills kx_ct with a REPLY entry for every SNAT port of (BE_R1:8080, NODE), last seen at `seen`. */
function occupySnatPorts(dp: Dataplane, seen: bigint, flags = CT_REPLIED, table: CtTable = 'ct'): void {
  const keys: CtKey[] = [];
  const values: CtValue[] = [];
  for (let port = SNAT_MIN; port < SNAT_END; port++) {
    keys.push(ctKey(BE_R1, NODE, 8080, port, TCP, CT_REPLY));
    values.push({ backendId: 41, revNatId: 99, natAddr: '10.0.0.1', natPort: 1, flags: CT_SNAT | flags, backendAddr: '0.0.0.0', backendPort: 0, dir: CT_REPLY, lastSeenNs: seen });
  }
  dp.updateBatch(MAPS[table].name, MAPS.ct.key, MAPS.ct.value, keys, values);
}

// ---- the table ----
const V = { xdp: { pass: XDP_PASS, drop: XDP_DROP, reject: XDP_TX }, tc: { pass: TC_ACT_OK, drop: TC_ACT_SHOT, reject: TC_ACT_REDIRECT } } as const;
const both = (f: (p: Program) => Fixture): Fixture[] => [f('xdp'), f('tc')];
const one = (id: number, addr: string, port: number, flags = 0) => [{ id, addr, port, flags }];

const FIXTURES: Fixture[] = [
  // 1. ClusterIP TCP via tc, with conntrack and an established second packet.
  {
    description: 'TCP ClusterIP hit via tc: dst -> backend ip:port, src kept; CT FWD+REPLY created; next packet established',
    state: clusterIp(one(11, BE_R1, 8080)),
    program: 'tc', input: tcp(POD, 40001, CIP, 80), verdict: TC_ACT_OK,
    expect: { src: POD, sport: 40001, dst: BE_R1, dport: 8080 },
    check: (dp) => {
      assertCt(dp, ctKey(POD, CIP, 40001, 80, TCP, CT_FWD), { backendId: 11, revNatId: 1, natAddr: '0.0.0.0', natPort: 0, flags: 0, backendAddr: BE_R1, backendPort: 8080, table: 'ctNew' });
      assertCt(dp, ctKey(BE_R1, POD, 8080, 40001, TCP, CT_REPLY), { backendId: 11, revNatId: 1, natAddr: '0.0.0.0', natPort: 0, flags: 0, table: 'ctNew' });
      assert.equal(dp.ctEntries(64).length, 2, 'exactly two conntrack entries');
    },
    then: [{
      note: 'second packet of the flow (ACK): established',
      program: 'tc', input: tcp(POD, 40001, CIP, 80, { tcpFlags: ACK, payload: Buffer.from('GET / HTTP/1.1\r\n') }), verdict: TC_ACT_OK,
      expect: { src: POD, sport: 40001, dst: BE_R1, dport: 8080 },
      check: (dp) => assert.equal(dp.ctEntries(64).length, 2, 'no new conntrack entries'),
    }],
    stats: { new_flow: 1, established: 1 },
  },
  // 2. UDP.
  {
    description: 'UDP ClusterIP hit via tc: dst -> backend, checksum valid; CT created',
    state: clusterIp(one(12, BE_R2, 5353), { proto: 'UDP', port: 53 }),
    program: 'tc', input: udp(POD, 41000, CIP, 53), verdict: TC_ACT_OK,
    expect: { src: POD, sport: 41000, dst: BE_R2, dport: 5353 },
    check: (dp) => {
      assertCt(dp, ctKey(POD, CIP, 41000, 53, UDP, CT_FWD), { backendId: 12, revNatId: 1, natAddr: '0.0.0.0', natPort: 0, flags: 0, backendAddr: BE_R2, backendPort: 5353, table: 'ctNew' });
      assertCt(dp, ctKey(BE_R2, POD, 5353, 41000, UDP, CT_REPLY), { backendId: 12, revNatId: 1, natAddr: '0.0.0.0', natPort: 0, flags: 0, table: 'ctNew' });
    },
    stats: { new_flow: 1 },
  },
  ...both((p): Fixture => ({
    description: `UDP without checksum (0) via ${p}: rewritten, checksum stays 0`,
    state: p === 'tc'
      ? clusterIp(one(12, BE_R2, 5353), { proto: 'UDP', port: 53 })
      : { nodeAddr: NODE, services: [svc({ addr: LB_IP, port: 53, proto: 'UDP', scope: 'EXT', backends: one(13, BE_L1, 5353, BE_LOCAL) })] },
    program: p,
    input: p === 'tc' ? udp(POD, 41001, CIP, 53, { udpNoChecksum: true }) : udp(CLIENT, 41001, LB_IP, 53, { udpNoChecksum: true }),
    verdict: V[p].pass,
    expect: p === 'tc' ? { src: POD, sport: 41001, dst: BE_R2, dport: 5353 } : { src: CLIENT, sport: 41001, dst: BE_L1, dport: 5353 },
    l4Checksum: 0,
    stats: { new_flow: 1 },
  })),
  {
    description: 'UDP via XDP to an external IP with a local backend: dst rewritten, client kept',
    state: { nodeAddr: NODE, services: [svc({ addr: LB_IP, port: 53, proto: 'UDP', scope: 'EXT', flags: FE_NODEPORT, backends: one(13, BE_L1, 5353, BE_LOCAL) })] },
    program: 'xdp', input: udp(CLIENT, 41002, LB_IP, 53, { payload: Buffer.from('some dns query bytes') }), verdict: XDP_PASS,
    expect: { src: CLIENT, sport: 41002, dst: BE_L1, dport: 5353 },
    stats: { new_flow: 1 },
  },
  ...both((p): Fixture => {
    const dst = p === 'tc' ? { src: POD, sport: 41003, dst: BE_R2, dport: 5353 } : { src: CLIENT, sport: 41003, dst: BE_L1, dport: 5353 };
    const payload = payloadZeroingUdpChecksum(udp(dst.src, dst.sport, dst.dst, dst.dport));
    return {
      description: `UDP whose checksum becomes 0 after the rewrite via ${p}: sent as 0xffff`,
      state: p === 'tc'
        ? clusterIp(one(12, BE_R2, 5353), { proto: 'UDP', port: 53 })
        : { nodeAddr: NODE, services: [svc({ addr: LB_IP, port: 53, proto: 'UDP', scope: 'EXT', backends: one(13, BE_L1, 5353, BE_LOCAL) })] },
      program: p,
      input: p === 'tc' ? udp(POD, 41003, CIP, 53, { payload }) : udp(CLIENT, 41003, LB_IP, 53, { payload }),
      verdict: V[p].pass, expect: dst, l4Checksum: 0xffff,
      stats: { new_flow: 1 },
    };
  }),
  // 3. NodePort to a local backend, and that backend's reply leaving through its veth (tc).
  {
    description: 'NodePort via XDP to a local backend: only dst rewritten (client address kept); reply via tc -> node:nodePort',
    state: nodePort(one(31, BE_L1, 8080, BE_LOCAL)),
    program: 'xdp', input: tcp(CLIENT, 51000, NODE, 30080), verdict: XDP_PASS,
    expect: { src: CLIENT, sport: 51000, dst: BE_L1, dport: 8080 },
    check: (dp) => {
      assertCt(dp, ctKey(CLIENT, NODE, 51000, 30080, TCP, CT_FWD), { backendId: 31, revNatId: 4, natAddr: '0.0.0.0', natPort: 0, flags: 0, backendAddr: BE_L1, backendPort: 8080, table: 'ctNew' });
      assertCt(dp, ctKey(BE_L1, CLIENT, 8080, 51000, TCP, CT_REPLY), { backendId: 31, revNatId: 4, natAddr: '0.0.0.0', natPort: 0, flags: 0, table: 'ctNew' });
    },
    then: [{
      note: 'the local backend answers through its veth',
      program: 'tc', input: tcp(BE_L1, 8080, CLIENT, 51000, { tcpFlags: 0x12 }), verdict: TC_ACT_OK,
      expect: { src: NODE, sport: 30080, dst: CLIENT, dport: 51000 },
    }],
    stats: { new_flow: 1, reply: 1, promoted: 1 },
  },
  // 4. NodePort to a remote backend: SNAT, and the reply translated back.
  {
    description: 'NodePort via XDP to a remote backend: SNAT to node:[61000,65535]; reply via XDP -> node:nodePort to client:port',
    state: nodePort(one(41, BE_R1, 8080)),
    program: 'xdp', input: tcp(CLIENT, 51001, NODE, 30080), verdict: XDP_PASS,
    expect: { src: NODE, sport: { range: [SNAT_MIN, SNAT_END] }, dst: BE_R1, dport: 8080 },
    check: (dp, h) => {
      const snat = h.out[0]!.sport;
      assertCt(dp, ctKey(CLIENT, NODE, 51001, 30080, TCP, CT_FWD), { backendId: 41, revNatId: 4, natAddr: NODE, natPort: snat, flags: CT_SNAT, backendAddr: BE_R1, backendPort: 8080, table: 'ctNew' });
      assertCt(dp, ctKey(BE_R1, NODE, 8080, snat, TCP, CT_REPLY), { backendId: 41, revNatId: 4, natAddr: CLIENT, natPort: 51001, flags: CT_SNAT, table: 'ctNew' });
    },
    then: [{
      note: 'established: same SNAT port again',
      program: 'xdp', input: tcp(CLIENT, 51001, NODE, 30080, { tcpFlags: ACK }), verdict: XDP_PASS,
      expect: (h) => ({ src: NODE, sport: h.out[0]!.sport, dst: BE_R1, dport: 8080 }),
    }, {
      note: 'the backend answers node:snatport, arriving on the external interface',
      program: 'xdp', input: (h) => tcp(BE_R1, 8080, NODE, h.out[0]!.sport, { tcpFlags: 0x12 }), verdict: XDP_PASS,
      expect: { src: NODE, sport: 30080, dst: CLIENT, dport: 51001 },
    }],
    stats: { new_flow: 1, established: 1, reply: 1, promoted: 1 },
  },
  {
    description: 'LoadBalancer IP via XDP to a remote backend: SNAT source is kx_config.node_addr, not the frontend address',
    state: { nodeAddr: NODE, services: [svc({ svcId: 5, addr: LB_IP, port: 443, scope: 'EXT', flags: FE_NODEPORT, backends: one(51, BE_R1, 8443) })] },
    program: 'xdp', input: tcp(CLIENT, 51002, LB_IP, 443), verdict: XDP_PASS,
    expect: { src: NODE, sport: { range: [SNAT_MIN, SNAT_END] }, dst: BE_R1, dport: 8443 },
    then: [{
      note: 'reply -> LB_IP:443 to the client',
      program: 'xdp', input: (h) => tcp(BE_R1, 8443, NODE, h.out[0]!.sport, { tcpFlags: 0x12 }), verdict: XDP_PASS,
      expect: { src: LB_IP, sport: 443, dst: CLIENT, dport: 51002 },
    }],
    stats: { new_flow: 1, reply: 1, promoted: 1 },
  },
  {
    description: 'NodePort with every SNAT port held by a live flow: dropped, snat_exhausted counted',
    state: nodePort(one(41, BE_R1, 8080)),
    before: (dp) => occupySnatPorts(dp, ktimeNs()),
    program: 'xdp', input: tcp(CLIENT, 51003, NODE, 30080), verdict: XDP_DROP, expect: 'unchanged',
    check: (dp) => assert.equal(dp.ctLookup(ctKey(CLIENT, NODE, 51003, 30080, TCP, CT_FWD)), null, 'no FWD entry for a dropped flow'),
    stats: { snat_exhausted: 1 },
  },
  ...([['established', CT_REPLIED, 86400], ['reset', CT_REPLIED | CT_RST, 10], ['half-closed', CT_REPLIED | CT_FIN_FWD, 3600], ['never replied', 0, 60]] as const).map(([state, flags, lifetime]): Fixture => ({
    description: `NodePort with every SNAT port held by an expired ${state} flow (idle > ${lifetime} s): ports come back, the flow gets one`,
    state: nodePort(one(41, BE_R1, 8080)),
    before: (dp) => occupySnatPorts(dp, idleFor(lifetime + 1), flags),
    program: 'xdp', input: tcp(CLIENT, 51005, NODE, 30080), verdict: XDP_PASS,
    expect: { src: NODE, sport: { range: [SNAT_MIN, SNAT_END] }, dst: BE_R1, dport: 8080 },
    then: [{
      note: 'the reply reaches the new client, not the expired one',
      program: 'xdp', input: (h) => tcp(BE_R1, 8080, NODE, h.out[0]!.sport, { tcpFlags: 0x12 }), verdict: XDP_PASS,
      expect: { src: NODE, sport: 30080, dst: CLIENT, dport: 51005 },
    }],
    stats: { new_flow: 1, reply: 1, promoted: 1 },
  })),
  ...([[1, 'held: dropped', XDP_DROP], [4, 'one is reclaimed', XDP_PASS]] as const).map(([idle, what, verdict]): Fixture => ({
    description: `NodePort with every SNAT port held by a flow unreplied for ${idle} s (SYN flood): ${what}`,
    state: nodePort(one(41, BE_R1, 8080)),
    before: (dp) => occupySnatPorts(dp, idleFor(idle), 0, 'ctNew'),
    program: 'xdp', input: tcp(CLIENT, 51008, NODE, 30080), verdict,
    expect: verdict === XDP_DROP ? 'unchanged' : { src: NODE, sport: { range: [SNAT_MIN, SNAT_END] }, dst: BE_R1, dport: 8080 },
    stats: verdict === XDP_DROP ? { snat_exhausted: 1 } : { snat_reclaimed: 1, new_flow: 1 },
  })),
  {
    description: 'NodePort with every SNAT port held by an established flow idle for an hour (< 24 h): still held, dropped',
    state: nodePort(one(41, BE_R1, 8080)),
    before: (dp) => occupySnatPorts(dp, idleFor(3600)),
    program: 'xdp', input: tcp(CLIENT, 51007, NODE, 30080), verdict: XDP_DROP, expect: 'unchanged',
    stats: { snat_exhausted: 1 },
  },
  {
    description: 'NodePort with live SNAT ports but one expiring just now: a flow still gets through (expiry, not eviction, frees it)',
    state: nodePort(one(41, BE_R1, 8080)),
    before: (dp) => {
      occupySnatPorts(dp, ktimeNs());
      // Expire every port of the probe sequence the first packet of this tuple will try.
      const keys: CtKey[] = [];
      for (let port = SNAT_MIN; port < SNAT_END; port++) keys.push(ctKey(BE_R1, NODE, 8080, port, TCP, CT_REPLY));
      const old = { backendId: 41, revNatId: 99, natAddr: '10.0.0.1', natPort: 1, flags: CT_SNAT | CT_REPLIED, backendAddr: '0.0.0.0', backendPort: 0, lastSeenNs: idleFor(86401) };
      dp.updateBatch(MAPS.ct.name, MAPS.ct.key, MAPS.ct.value, keys.filter((_, i) => i % 2 === 0), keys.filter((_, i) => i % 2 === 0).map(() => old));
    },
    program: 'xdp', input: tcp(CLIENT, 51006, NODE, 30080), verdict: XDP_PASS,
    expect: { src: NODE, sport: { range: [SNAT_MIN, SNAT_END] }, dst: BE_R1, dport: 8080 },
    check: (_dp, h) => assert.equal((h.out[0]!.sport - SNAT_MIN) % 2, 0, 'the port is one of the expired ones'),
    stats: { new_flow: 1 },
  },
  // 5. externalTrafficPolicy Local.
  {
    description: 'NodePort with externalTrafficPolicy Local to a remote backend: no SNAT, client address kept',
    state: nodePort(one(42, BE_R1, 8080), { flags: FE_NODEPORT | FE_LOCAL_ONLY }),
    program: 'xdp', input: tcp(CLIENT, 51004, NODE, 30080), verdict: XDP_PASS,
    expect: { src: CLIENT, sport: 51004, dst: BE_R1, dport: 8080 },
    check: (dp) => assertCt(dp, ctKey(CLIENT, NODE, 51004, 30080, TCP, CT_FWD), { backendId: 42, revNatId: 4, natAddr: '0.0.0.0', natPort: 0, flags: 0, backendAddr: BE_R1, backendPort: 8080, table: 'ctNew' }),
    stats: { new_flow: 1 },
  },
  // 6. ClusterIP replies.
  {
    description: 'ClusterIP reply via tc (local backend): src -> ClusterIP:port, dst unchanged',
    state: clusterIp(one(14, BE_L1, 8080, BE_LOCAL)),
    program: 'tc', input: tcp(POD, 40002, CIP, 80), verdict: TC_ACT_OK,
    expect: { src: POD, sport: 40002, dst: BE_L1, dport: 8080 },
    then: [{
      program: 'tc', input: tcp(BE_L1, 8080, POD, 40002, { tcpFlags: 0x12, payload: Buffer.from('HTTP/1.1 200 OK\r\n') }), verdict: TC_ACT_OK,
      expect: { src: CIP, sport: 80, dst: POD, dport: 40002 },
    }],
    stats: { new_flow: 1, reply: 1, promoted: 1 },
  },
  {
    description: 'ClusterIP reply via XDP (backend on another node): src -> ClusterIP:port, dst unchanged',
    state: clusterIp(one(15, BE_R1, 8080)),
    program: 'tc', input: tcp(POD, 40003, CIP, 80), verdict: TC_ACT_OK,
    expect: { src: POD, sport: 40003, dst: BE_R1, dport: 8080 },
    then: [{
      program: 'xdp', input: tcp(BE_R1, 8080, POD, 40003, { tcpFlags: 0x12 }), verdict: XDP_PASS,
      expect: { src: CIP, sport: 80, dst: POD, dport: 40003 },
    }],
    stats: { new_flow: 1, reply: 1, promoted: 1 },
  },
  // 7. Misses.
  ...both((p): Fixture => ({
    description: `miss via ${p}: no frontend for the address -> pass, unchanged`,
    state: clusterIp(one(11, BE_R1, 8080)),
    program: p, input: tcp(POD, 40004, '10.96.0.99', 80), verdict: V[p].pass, expect: 'unchanged',
    check: (dp) => assert.equal(dp.ctEntries(64).length, 0, 'no conntrack entry for a miss'),
    stats: {},
  })),
  {
    description: 'miss: frontend address, other port -> unchanged',
    state: clusterIp(one(11, BE_R1, 8080)),
    program: 'tc', input: tcp(POD, 40005, CIP, 81), verdict: TC_ACT_OK, expect: 'unchanged', stats: {},
  },
  {
    description: 'miss: frontend address and port, other protocol (UDP to a TCP-only frontend) -> unchanged',
    state: clusterIp(one(11, BE_R1, 8080)),
    program: 'tc', input: udp(POD, 40006, CIP, 80), verdict: TC_ACT_OK, expect: 'unchanged', stats: {},
  },
  {
    description: 'miss: EXT-only frontend hit from tc (internal scope) -> unchanged',
    state: { nodeAddr: NODE, services: [svc({ addr: LB_IP, port: 443, scope: 'EXT', flags: FE_NODEPORT, backends: one(51, BE_R1, 8443) })] },
    program: 'tc', input: tcp(POD, 40007, LB_IP, 443), verdict: TC_ACT_OK, expect: 'unchanged', stats: {},
  },
  {
    description: 'miss: INT-only frontend (ClusterIP) hit from XDP (external scope) -> unchanged',
    state: clusterIp(one(11, BE_R1, 8080)),
    program: 'xdp', input: tcp(CLIENT, 40008, CIP, 80), verdict: XDP_PASS, expect: 'unchanged', stats: {},
  },
  // 8. Conntrack stickiness: a flow keeps its backend when the slots change (the endpoint turned
  //    terminating) and, for TCP, when the backend is removed, as kube-proxy's conntrack keeps it;
  //    UDP is re-balanced once its backend is gone, as kube-proxy clears stale UDP entries.
  ...(['TCP', 'UDP'] as const).map((proto): Fixture => {
    const ids: Record<string, number> = { [BE_L1]: 21, [BE_L2]: 22, [BE_R1]: 23 };
    const pkt = (flags?: number) => proto === 'TCP' ? tcp(POD, 40009, CIP, 80, flags === undefined ? {} : { tcpFlags: flags }) : udp(POD, 40009, CIP, 80);
    const P = proto === 'TCP' ? TCP : UDP;
    return {
      description: `${proto}: an established flow keeps its backend when it leaves the slots (terminating); ${proto === 'TCP' ? 'and when its backend entry is deleted (removed endpoint)' : 're-balanced once its backend entry is deleted'}`,
      state: clusterIp([{ id: 21, addr: BE_L1, port: 8080 }, { id: 22, addr: BE_L2, port: 8080 }, { id: 23, addr: BE_R1, port: 8080 }], { proto }),
      program: 'tc', input: pkt(), verdict: TC_ACT_OK,
      expect: { src: POD, sport: 40009, dst: { oneOf: [BE_L1, BE_L2, BE_R1] }, dport: 8080 },
      check: (_dp, h) => { h.note.first = h.out[0]!.dst; },
      then: [{
        note: 'slots rewritten without the chosen backend (its backend entry kept, flagged terminating): still goes there',
        before: (dp, h) => {
          const others = Object.entries(ids).filter(([a]) => a !== h.note.first).map(([, id]) => id);
          dp.setSlot(1, 0, others[0]!);
          dp.setSlot(1, 1, others[1]!);
          dp.deleteSlot(1, 2);
          dp.setFrontend({ addr: CIP, port: 80, proto: P, scope: 1 }, { svcId: 1, count: 2, flags: 0, affinityTimeout: 0, revNatId: 1 });
        },
        program: 'tc', input: pkt(ACK), verdict: TC_ACT_OK,
        expect: (h) => ({ src: POD, sport: 40009, dst: h.note.first!, dport: 8080 }),
      }, {
        note: proto === 'TCP' ? 'backend entry deleted (endpoint removed): TCP stays on the address it chose' : 'backend entry deleted: UDP is re-balanced to a current backend',
        before: (dp, h) => { dp.deleteBackend(ids[h.note.first!]!); },
        program: 'tc', input: pkt(ACK), verdict: TC_ACT_OK,
        expect: (h) => proto === 'TCP'
          ? { src: POD, sport: 40009, dst: h.note.first!, dport: 8080 }
          : { src: POD, sport: 40009, dst: { oneOf: [BE_L1, BE_L2, BE_R1].filter((a) => a !== h.note.first) }, dport: 8080 },
        check: (dp, h) => {
          const ct = dp.ctLookup(ctKey(POD, CIP, 40009, 80, P, CT_FWD));
          assert.equal(ct?.backendAddr, String(h.out[2]!.dst), 'FWD entry names the backend the packet went to');
        },
      }, {
        note: 'and stays there',
        program: 'tc', input: pkt(ACK), verdict: TC_ACT_OK,
        expect: (h) => ({ src: POD, sport: 40009, dst: h.out[2]!.dst, dport: 8080 }),
      }],
      stats: proto === 'TCP' ? { new_flow: 1, established: 3 } : { new_flow: 2, established: 2 },
    };
  }),
  // 8b. TCP state: a reply moves the flow to kx_ct, FIN/RST are recorded on both entries, and a
  //     SYN on the closed tuple (a client reusing its port) starts a fresh flow.
  ...([['FIN from both sides', [0x11, 0x11], CT_FIN_FWD | CT_FIN_REPLY], ['RST from the backend', [null, 0x14], CT_RST]] as const).map(([how, [fin1, fin2], closed]): Fixture => ({
    description: `TCP flow through tc closed by ${how}: state on both entries; a new SYN on the same tuple is a new flow`,
    state: clusterIp(one(14, BE_L1, 8080, BE_LOCAL)),
    program: 'tc', input: tcp(POD, 40040, CIP, 80), verdict: TC_ACT_OK,
    expect: { src: POD, sport: 40040, dst: BE_L1, dport: 8080 },
    then: [
      { note: 'SYN-ACK: promoted', program: 'tc', input: tcp(BE_L1, 8080, POD, 40040, { tcpFlags: 0x12 }), verdict: TC_ACT_OK,
        expect: { src: CIP, sport: 80, dst: POD, dport: 40040 },
        check: (dp) => assertCt(dp, ctKey(POD, CIP, 40040, 80, TCP, CT_FWD), { backendId: 14, revNatId: 1, natAddr: '0.0.0.0', natPort: 0, flags: CT_REPLIED, backendAddr: BE_L1, backendPort: 8080, table: 'ct' }) },
      ...(fin1 === null ? [] : [{ note: 'client FIN', program: 'tc' as const, input: tcp(POD, 40040, CIP, 80, { tcpFlags: fin1 }), verdict: TC_ACT_OK,
        expect: { src: POD, sport: 40040, dst: BE_L1, dport: 8080 } }]),
      { note: 'backend closes', program: 'tc', input: tcp(BE_L1, 8080, POD, 40040, { tcpFlags: fin2 }), verdict: TC_ACT_OK,
        expect: { src: CIP, sport: 80, dst: POD, dport: 40040 },
        check: (dp) => {
          for (const k of [ctKey(POD, CIP, 40040, 80, TCP, CT_FWD), ctKey(BE_L1, POD, 8080, 40040, TCP, CT_REPLY)]) {
            assert.equal(dp.ctLookup(k)?.flags, CT_REPLIED | closed, `flags of ${JSON.stringify(k)}`);
          }
        } },
      { note: 'a new SYN on the same tuple', program: 'tc', input: tcp(POD, 40040, CIP, 80), verdict: TC_ACT_OK,
        expect: { src: POD, sport: 40040, dst: BE_L1, dport: 8080 },
        check: (dp) => {
          assertCt(dp, ctKey(POD, CIP, 40040, 80, TCP, CT_FWD), { backendId: 14, revNatId: 1, natAddr: '0.0.0.0', natPort: 0, flags: 0, backendAddr: BE_L1, backendPort: 8080, table: 'ctNew' });
          assert.equal(dp.ctEntries(64).length, 2, 'the closed flow\'s entries are gone');
        } },
    ],
    stats: { new_flow: 2, reply: 2, promoted: 1, established: fin1 === null ? 0 : 1 },
  })),
  // 8c. The same client port through two ClusterIPs to one backend: both flows would have the
  //     reply key backend -> client:port. The second gets another source port (netfilter's
  //     unique tuple), so each reply goes back to the frontend its client dialled; the first
  //     flow open (two sockets, one port, two Services) or closed (a port reused at once).
  ...(['open', 'closed'] as const).map((first): Fixture => {
    const CIP2 = '10.96.0.11';
    return {
      description: `same client port to two ClusterIPs sharing a backend, the first flow ${first}: the second is given another source port, replies reach each flow's frontend`,
      state: { nodeAddr: NODE, services: [svc({ backends: one(14, BE_L1, 8080, BE_LOCAL) }), svc({ svcId: 2, addr: CIP2, backends: one(15, BE_L1, 8080, BE_LOCAL) })] },
      program: 'tc', input: tcp(POD, 40041, CIP, 80), verdict: TC_ACT_OK,
      expect: { src: POD, sport: 40041, dst: BE_L1, dport: 8080 },
      then: [
        { program: 'tc', input: tcp(BE_L1, 8080, POD, 40041, { tcpFlags: 0x12 }), verdict: TC_ACT_OK, expect: { src: CIP, sport: 80, dst: POD, dport: 40041 } },
        ...(first === 'closed' ? [
          { note: 'client FIN', program: 'tc' as const, input: tcp(POD, 40041, CIP, 80, { tcpFlags: 0x11 }), verdict: TC_ACT_OK, expect: { src: POD, sport: 40041, dst: BE_L1, dport: 8080 } },
          { note: 'backend FIN', program: 'tc' as const, input: tcp(BE_L1, 8080, POD, 40041, { tcpFlags: 0x11 }), verdict: TC_ACT_OK, expect: { src: CIP, sport: 80, dst: POD, dport: 40041 } },
        ] : []),
        { note: 'the same port to the second ClusterIP: another source port, the client address kept', program: 'tc', input: tcp(POD, 40041, CIP2, 80), verdict: TC_ACT_OK,
          expect: { src: POD, sport: { range: [SNAT_MIN, SNAT_END] }, dst: BE_L1, dport: 8080 },
          check: (dp, h) => {
            const port = h.out[first === 'closed' ? 4 : 2]!.sport;
            assertCt(dp, ctKey(POD, CIP2, 40041, 80, TCP, CT_FWD), { backendId: 15, revNatId: 2, natAddr: POD, natPort: port, flags: CT_SNAT, backendAddr: BE_L1, backendPort: 8080, table: 'ctNew' });
            h.note.port = port;
          } },
        { note: 'its SYN-ACK comes from the second ClusterIP to the original port', program: 'tc', input: (h) => tcp(BE_L1, 8080, POD, Number(h.note.port), { tcpFlags: 0x12 }), verdict: TC_ACT_OK,
          expect: { src: CIP2, sport: 80, dst: POD, dport: 40041 } },
        { note: 'the first flow\'s replies still come from the first ClusterIP', program: 'tc', input: tcp(BE_L1, 8080, POD, 40041, { tcpFlags: first === 'closed' ? 0x10 : 0x18 }), verdict: TC_ACT_OK,
          expect: { src: CIP, sport: 80, dst: POD, dport: 40041 } },
      ],
      stats: first === 'closed' ? { new_flow: 2, reply: 4, promoted: 2, established: 1 } : { new_flow: 2, reply: 3, promoted: 2 },
    };
  }),
  // 9. No usable endpoint.
  ...both((p): Fixture => ({
    description: `no usable endpoint (frontend count 0) via ${p} -> ${p === 'xdp' ? 'XDP_DROP' : 'TC_ACT_SHOT'}, no_backend counted`,
    state: p === 'tc' ? clusterIp([], { count: 0 }) : nodePort([], { count: 0 }),
    program: p, input: p === 'tc' ? tcp(POD, 40010, CIP, 80) : tcp(CLIENT, 40010, NODE, 30080),
    verdict: V[p].drop, expect: 'unchanged',
    check: (dp) => assert.equal(dp.ctEntries(64).length, 0, 'no conntrack entry'),
    stats: { no_backend: 1 },
  })),
  {
    description: 'slot pointing at a missing backend entry -> TC_ACT_SHOT, no_backend counted',
    state: clusterIp(one(16, BE_R1, 8080)),
    before: (dp) => { dp.deleteBackend(16); },
    program: 'tc', input: tcp(POD, 40011, CIP, 80), verdict: TC_ACT_SHOT, expect: 'unchanged',
    stats: { no_backend: 1 },
  },
  // 10. Not ours (IPv6 frames are ours now: see FIXTURES6).
  ...both((p): Fixture => ({
    description: `ARP frame via ${p} -> pass, unchanged`,
    state: clusterIp(one(11, BE_R1, 8080)),
    program: p, input: arpFrame(), verdict: V[p].pass, expect: 'unchanged', stats: {},
  })),
  ...both((p): Fixture => ({
    description: `ICMP echo to a Service address via ${p} -> pass, unchanged`,
    state: { nodeAddr: NODE, services: [svc({ backends: one(11, BE_R1, 8080) }), svc({ svcId: 2, scope: 'EXT', backends: one(17, BE_R1, 8080) })] },
    program: p, input: icmpFrame(p === 'tc' ? POD : CLIENT, CIP), verdict: V[p].pass, expect: 'unchanged', stats: {},
  })),
  // 11. Short and malformed IPv4.
  // XDP only: the kernel's skb test_run refuses an IPv4 frame shorter than 14 + 20 bytes
  // (EINVAL, checked below), so these two cannot reach kx_tc_pod through BPF_PROG_TEST_RUN.
  {
    description: 'Ethernet header only (14 bytes, EtherType IPv4) via xdp -> pass unchanged, malformed',
    state: clusterIp(one(11, BE_R1, 8080)),
    program: 'xdp', input: SHORT_FRAMES.ethOnly, verdict: XDP_PASS, expect: 'unchanged',
    stats: { malformed: 1 },
  },
  {
    description: 'IP header cut (30 bytes of a TCP frame) via xdp -> pass unchanged, malformed',
    state: clusterIp(one(11, BE_R1, 8080)),
    program: 'xdp', input: SHORT_FRAMES.ipCut, verdict: XDP_PASS, expect: 'unchanged',
    stats: { malformed: 1 },
  },
  ...both((p): Fixture => ({
    description: `TCP header cut (10 of 20 bytes, IP total length consistent) via ${p} -> pass unchanged, malformed`,
    state: clusterIp(one(11, BE_R1, 8080)),
    program: p,
    input: withIpHeader(buildFrame(tcp(POD, 40014, CIP, 80)).subarray(0, 14 + 20 + 10), (ip) => ip.writeUInt16BE(30, 2)),
    verdict: V[p].pass, expect: 'unchanged',
    stats: { malformed: 1 },
  })),
  ...both((p): Fixture => ({
    description: `UDP header cut (6 of 8 bytes, IP total length consistent) via ${p} -> pass unchanged, malformed`,
    state: clusterIp(one(11, BE_R1, 8080), { proto: 'UDP' }),
    program: p,
    input: withIpHeader(buildFrame(udp(POD, 40015, CIP, 80)).subarray(0, 14 + 20 + 6), (ip) => ip.writeUInt16BE(26, 2)),
    verdict: V[p].pass, expect: 'unchanged',
    stats: { malformed: 1 },
  })),
  ...both((p): Fixture => ({
    description: `IP total length larger than the frame via ${p} -> pass unchanged, malformed`,
    state: clusterIp(one(11, BE_R1, 8080)),
    program: p,
    input: withIpHeader(buildFrame(tcp(POD, 40016, CIP, 80)), (ip) => ip.writeUInt16BE(ip.readUInt16BE(2) + 100, 2)),
    verdict: V[p].pass, expect: 'unchanged',
    stats: { malformed: 1 },
  })),
  ...both((p): Fixture => ({
    description: `ihl < 5 (ihl 4) via ${p} -> pass unchanged, malformed`,
    state: clusterIp(one(11, BE_R1, 8080)),
    program: p,
    input: withIpHeader(buildFrame(tcp(POD, 40017, CIP, 80)), (ip) => { ip[0] = 0x44; }),
    verdict: V[p].pass, expect: 'unchanged',
    stats: { malformed: 1 },
  })),
  // 12. IP options.
  ...([6, 15] as const).flatMap((ihl) => both((p): Fixture => ({
    description: `IP options (ihl ${ihl}) + Service hit via ${p}: ports found after the options, options unchanged`,
    state: p === 'tc' ? clusterIp(one(11, BE_R1, 8080)) : nodePort(one(31, BE_L1, 8080, BE_LOCAL)),
    program: p,
    input: p === 'tc'
      ? tcp(POD, 40018, CIP, 80, { ipOptions: ipOptions((ihl - 5) * 4) })
      : tcp(CLIENT, 40018, NODE, 30080, { ipOptions: ipOptions((ihl - 5) * 4) }),
    verdict: V[p].pass,
    expect: p === 'tc' ? { src: POD, sport: 40018, dst: BE_R1, dport: 8080 } : { src: CLIENT, sport: 40018, dst: BE_L1, dport: 8080 },
    stats: { new_flow: 1 },
  }))),
  ...both((p): Fixture => ({
    description: `minimum-size frame with Ethernet padding (IP total length < frame) via ${p}: rewritten, padding untouched`,
    state: p === 'tc' ? clusterIp(one(11, BE_R1, 8080)) : nodePort(one(31, BE_L1, 8080, BE_LOCAL)),
    program: p,
    input: Buffer.concat([buildFrame(p === 'tc' ? tcp(POD, 40019, CIP, 80, { payload: Buffer.alloc(0) }) : tcp(CLIENT, 40019, NODE, 30080, { payload: Buffer.alloc(0) })), Buffer.alloc(6)]),
    verdict: V[p].pass,
    expect: p === 'tc' ? { src: POD, sport: 40019, dst: BE_R1, dport: 8080 } : { src: CLIENT, sport: 40019, dst: BE_L1, dport: 8080 },
    stats: { new_flow: 1 },
  })),
  // 12b. Lengths and checksums that do not add up: untouched, counted, no conntrack entry. The
  //      L4 header is bounded by the IP total length, not by the frame (the rest is padding).
  ...([
    ['UDP with IP total length 23 (3 of 8 UDP header bytes in the datagram), padded to 60 bytes', 'UDP',
      (f: Buffer) => pad60(withIpHeader(f.subarray(0, 14 + 23), (ip) => ip.writeUInt16BE(23, 2)))],
    ['TCP with IP total length 23, padded to 60 bytes', 'TCP',
      (f: Buffer) => pad60(withIpHeader(f.subarray(0, 14 + 23), (ip) => ip.writeUInt16BE(23, 2)))],
    ['TCP with IP total length 36 (16 of 20 TCP header bytes), padded to 60 bytes', 'TCP',
      (f: Buffer) => pad60(withIpHeader(f.subarray(0, 14 + 36), (ip) => ip.writeUInt16BE(36, 2)))],
    ['a bad IPv4 header checksum', 'TCP', (f: Buffer) => withIpHeader(f, (ip) => { ip[10]! ^= 0x40; }, false)],
    ['a bad IPv4 header checksum (UDP)', 'UDP', (f: Buffer) => withIpHeader(f, (ip) => { ip[10]! ^= 0x01; }, false)],
    ['TCP data offset 4 (< 5)', 'TCP', (f: Buffer) => withL4(f, (l4) => { l4[12] = 0x40; })],
    ['TCP data offset 15 (60 bytes) beyond a 20-byte segment', 'TCP', (f: Buffer) => withL4(f, (l4) => { l4[12] = 0xf0; })],
    ['UDP length larger than the datagram', 'UDP', (f: Buffer) => withL4(f, (l4) => { l4.writeUInt16BE(l4.readUInt16BE(4) + 1, 4); })],
    ['UDP length smaller than the datagram', 'UDP', (f: Buffer) => withL4(f, (l4) => { l4.writeUInt16BE(l4.readUInt16BE(4) - 1, 4); })],
    ['UDP length below 8', 'UDP', (f: Buffer) => withL4(f, (l4) => { l4.writeUInt16BE(7, 4); })],
  ] as const).flatMap(([what, proto, mangle]) => both((p): Fixture => ({
    description: `${what} via ${p} -> pass unchanged, malformed, no conntrack entry`,
    state: p === 'tc' ? clusterIp(one(11, BE_R1, 8080), { proto }) : nodePort(one(41, BE_R1, 8080), { proto }),
    program: p,
    input: mangle(buildFrame(p === 'tc'
      ? (proto === 'TCP' ? tcp : udp)(POD, 40030, CIP, 80, { payload: Buffer.alloc(0) })
      : (proto === 'TCP' ? tcp : udp)(CLIENT, 40030, NODE, 30080, { payload: Buffer.alloc(0) }))),
    verdict: V[p].pass, expect: 'unchanged',
    check: (dp) => assert.equal(dp.ctEntries(64).length, 0, 'no conntrack entry'),
    stats: { malformed: 1 },
  }))),
  // 13. Fragments.
  ...both((p): Fixture => ({
    description: `first fragment (MF set) to a frontend via ${p} -> unchanged, untrackable`,
    state: p === 'tc' ? clusterIp(one(11, BE_R1, 8080), { proto: 'UDP' }) : nodePort(one(31, BE_L1, 8080, BE_LOCAL), { proto: 'UDP' }),
    program: p,
    input: p === 'tc' ? udp(POD, 40020, CIP, 80, { fragment: { offset8: 0, more: true } }) : udp(CLIENT, 40020, NODE, 30080, { fragment: { offset8: 0, more: true } }),
    verdict: V[p].pass, expect: 'unchanged',
    stats: { untrackable: 1 },
  })),
  ...both((p): Fixture => ({
    description: `later fragment (offset > 0) to a frontend via ${p} -> unchanged, untrackable`,
    state: p === 'tc' ? clusterIp(one(11, BE_R1, 8080), { proto: 'UDP' }) : nodePort(one(31, BE_L1, 8080, BE_LOCAL), { proto: 'UDP' }),
    program: p,
    // It still carries what looks like a UDP header with the Service's port: must not matter.
    input: p === 'tc' ? udp(POD, 40021, CIP, 80, { fragment: { offset8: 185, more: false } }) : udp(CLIENT, 40021, NODE, 30080, { fragment: { offset8: 185, more: false } }),
    verdict: V[p].pass, expect: 'unchanged',
    stats: { untrackable: 1 },
  })),
  // 14. Hairpin.
  {
    description: 'hairpin via tc: a pod reaching a ClusterIP whose only backend is itself -> src node:snatport, dst itself; reply translated back',
    state: clusterIp([{ id: 18, addr: POD, port: 8080, flags: BE_LOCAL }], { svcId: 6, addr: '10.96.0.20' }),
    program: 'tc', input: tcp(POD, 40022, '10.96.0.20', 80), verdict: TC_ACT_OK,
    expect: { src: NODE, sport: { range: [SNAT_MIN, SNAT_END] }, dst: POD, dport: 8080 },
    check: (dp, h) => {
      const snat = h.out[0]!.sport;
      assertCt(dp, ctKey(POD, '10.96.0.20', 40022, 80, TCP, CT_FWD), { backendId: 18, revNatId: 6, natAddr: NODE, natPort: snat, flags: CT_SNAT, backendAddr: POD, backendPort: 8080, table: 'ctNew' });
      assertCt(dp, ctKey(POD, NODE, 8080, snat, TCP, CT_REPLY), { backendId: 18, revNatId: 6, natAddr: POD, natPort: 40022, flags: CT_SNAT, table: 'ctNew' });
    },
    then: [{
      note: 'the pod answers node:snatport through its veth',
      program: 'tc', input: (h) => tcp(POD, 8080, NODE, h.out[0]!.sport, { tcpFlags: 0x12 }), verdict: TC_ACT_OK,
      expect: { src: '10.96.0.20', sport: 80, dst: POD, dport: 40022 },
    }],
    stats: { new_flow: 1, reply: 1, promoted: 1 },
  },
  // 15. DNS: TCP and UDP on one address/port.
  {
    description: 'DNS: TCP and UDP frontends on the same address:port each go to their own backend',
    state: {
      nodeAddr: NODE, services: [
        svc({ svcId: 7, port: 53, proto: 'TCP', backends: one(71, BE_L1, 1053) }),
        svc({ svcId: 8, port: 53, proto: 'UDP', backends: one(81, BE_R1, 2053) }),
      ],
    },
    program: 'tc', input: tcp(POD, 40023, CIP, 53), verdict: TC_ACT_OK,
    expect: { src: POD, sport: 40023, dst: BE_L1, dport: 1053 },
    then: [{
      program: 'tc', input: udp(POD, 40023, CIP, 53), verdict: TC_ACT_OK,
      expect: { src: POD, sport: 40023, dst: BE_R1, dport: 2053 },
      check: (dp) => {
        assertCt(dp, ctKey(POD, CIP, 40023, 53, TCP, CT_FWD), { backendId: 71, revNatId: 7, natAddr: '0.0.0.0', natPort: 0, flags: 0, backendAddr: BE_L1, backendPort: 1053, table: 'ctNew' });
        assertCt(dp, ctKey(POD, CIP, 40023, 53, UDP, CT_FWD), { backendId: 81, revNatId: 8, natAddr: '0.0.0.0', natPort: 0, flags: 0, backendAddr: BE_R1, backendPort: 2053, table: 'ctNew' });
      },
    }, {
      note: 'UDP reply gets the Service address back, port 53',
      program: 'xdp', input: udp(BE_R1, 2053, POD, 40023), verdict: XDP_PASS,
      expect: { src: CIP, sport: 53, dst: POD, dport: 40023 },
    }],
    stats: { new_flow: 2, reply: 1, promoted: 1 },
  },
];

// ---- IPv6: the same world with IPv6 addresses, in the IPv6 twin maps ----
const NODE6 = 'fd00:c0a8:1::10';      // this node (kx_config6.node_addr)
const NODE6_B = 'fd00:c0a8:1::11';    // another address of this node
const CLIENT6 = '2001:db8:7::7';      // an external client, inside 2001:db8:7::/64
const CLIENT6_NEAR = '2001:db8:7:1::7'; // shares the /48 but not the /64
const LB6 = '2001:db8:100::20';       // a LoadBalancer IP
const POD6 = 'fd00:244:1::5';         // a client pod on this node
const ROUTER6 = 'fd00:c0a8:1::1';     // a router on the node's network
const ROUTER_POD6 = 'fd00:244:1::1';  // a router behind a pod's veth (a VPN pod)
const BE6_L1 = 'fd00:10::5';          // backends on this node
const BE6_L2 = 'fd00:10::6';
const BE6_R1 = 'fd00:244:2::30';      // backends on another node
const BE6_R2 = 'fd00:244:2::31';
const CIP6 = 'fd00:96::10';           // a ClusterIP
const Z6 = '::';

const svc6 = (o: Partial<ServiceSpec> & Pick<ServiceSpec, 'backends'>): ServiceSpec =>
  ({ svcId: 61, addr: CIP6, port: 80, proto: 'TCP', scope: 'INT', ...o });
/** Both families' node addresses are configured: IPv6 flows must use kx_config6's. */
const clusterIp6 = (backends: ServiceSpec['backends'], o: Partial<ServiceSpec> = {}): MapState =>
  ({ nodeAddr: NODE, nodeAddr6: NODE6, services: [svc6({ backends, ...o })] });
const nodePort6 = (backends: ServiceSpec['backends'], o: Partial<ServiceSpec> = {}): MapState =>
  ({ nodeAddr: NODE, nodeAddr6: NODE6, services: [svc6({ svcId: 64, addr: NODE6, port: 30080, scope: 'EXT', flags: FE_NODEPORT, backends, ...o })] });
const sctp = (src: string, sport: number, dst: string, dport: number, o: Partial<FrameSpec> = {}): FrameSpec =>
  ({ src, dst, sport, dport, proto: SCTP, ...o });

/** Conntrack entries per family: IPv6 flows must leave nothing in the IPv4 tables. */
const ctCount = (dp: Dataplane) => ({ v4: dp.ctEntries(64, 4).length, v6: dp.ctEntries(64, 6).length });
const noCt = (dp: Dataplane): void => assert.deepEqual(ctCount(dp), { v4: 0, v6: 0 }, 'no conntrack entry');

/** A copy of a frame with bytes edited (frame offsets); IPv6 has no header checksum to fix. */
const edited = (f: Buffer, edit: (b: Buffer) => void): Buffer => { const o = Buffer.from(f); edit(o); return o; };
/** Frame offset of a (valid) frame's L4 header. */
const l4At = (f: Buffer): number => parseFrame(f).l4Off;
const IP6_PLEN = 14 + 4; // frame offset of the IPv6 payload length
const HOP_DEST: Ext6[] = [{ type: 'hop', len: 8 }, { type: 'dest', len: 16 }];

/** An IPv6 neighbour solicitation for `target` to its solicited-node multicast address, with a
 * source link-layer address option. */
function neighbourSolicitation(src: string, target: string, dst?: string): Buffer {
  const t = ipv6Bytes(target);
  const sn = `ff02::1:ff${t[13]!.toString(16).padStart(2, '0')}:${t.readUInt16BE(14).toString(16)}`;
  const body = Buffer.concat([t, Buffer.from([1, 1, 2, 0, 0, 0, 0, 1])]);
  return buildIcmp6Frame({ src, dst: dst ?? sn, type: 135, code: 0, body, hopLimit: 255 });
}

/** The three endpoint sets and their ids, for the IPv6 rows' frames in both scopes. */
const p6 = (p: Program) => p === 'tc'
  ? { client: POD6, fe: CIP6, port: 80 }
  : { client: CLIENT6, fe: NODE6, port: 30080 };
/** A frontend of `p`'s scope (ClusterIP for tc, NodePort for XDP) with one remote backend. */
const state6 = (p: Program, proto: ServiceSpec['proto'] = 'TCP', o: Partial<ServiceSpec> = {}): MapState =>
  p === 'tc' ? clusterIp6(one(611, BE6_R1, 8080), { proto, ...o }) : nodePort6(one(641, BE6_R1, 8080), { proto, ...o });
const frame6 = (p: Program, proto: number, sport: number, o: Partial<FrameSpec> = {}): Buffer =>
  buildFrame6({ src: p6(p).client, dst: p6(p).fe, sport, dport: p6(p).port, proto, ...o });

const FIXTURES6: Fixture[] = [
  // 1. ClusterIP via tc, TCP and UDP, with the reply leaving the local backend through its veth.
  ...(['TCP', 'UDP'] as const).map((proto): Fixture => {
    const P = proto === 'TCP' ? TCP : UDP;
    const [fport, bport] = proto === 'TCP' ? [80, 8080] : [53, 5353];
    const pkt = proto === 'TCP' ? tcp : udp;
    return {
      description: `IPv6 ${proto} ClusterIP via tc: ${CIP6}:${fport} -> ${BE6_L1}:${bport}, src kept; CT in kx_ct_new6; next packet established; reply via tc -> ClusterIP, flow moves to kx_ct6`,
      state: clusterIp6(one(611, BE6_L1, bport, BE_LOCAL), { proto, port: fport }),
      program: 'tc', input: pkt(POD6, 40001, CIP6, fport), verdict: TC_ACT_OK,
      expect: { src: POD6, sport: 40001, dst: BE6_L1, dport: bport },
      check: (dp) => {
        assertCt(dp, ctKey(POD6, CIP6, 40001, fport, P, CT_FWD), { backendId: 611, revNatId: 61, natAddr: Z6, natPort: 0, flags: 0, backendAddr: BE6_L1, backendPort: bport, table: 'ctNew' });
        assertCt(dp, ctKey(BE6_L1, POD6, bport, 40001, P, CT_REPLY), { backendId: 611, revNatId: 61, natAddr: Z6, natPort: 0, flags: 0, table: 'ctNew' });
        assert.deepEqual(ctCount(dp), { v4: 0, v6: 2 }, 'two IPv6 conntrack entries, none in the IPv4 tables');
      },
      then: [{
        note: 'second packet of the flow: established',
        program: 'tc', input: pkt(POD6, 40001, CIP6, fport, { tcpFlags: ACK, payload: Buffer.from('GET / HTTP/1.1\r\n') }), verdict: TC_ACT_OK,
        expect: { src: POD6, sport: 40001, dst: BE6_L1, dport: bport },
        check: (dp) => assert.deepEqual(ctCount(dp), { v4: 0, v6: 2 }, 'no new conntrack entries'),
      }, {
        note: 'the local backend answers through its veth',
        program: 'tc', input: pkt(BE6_L1, bport, POD6, 40001, { tcpFlags: 0x12, payload: Buffer.from('HTTP/1.1 200 OK\r\n') }), verdict: TC_ACT_OK,
        expect: { src: CIP6, sport: fport, dst: POD6, dport: 40001 },
        check: (dp) => {
          assertCt(dp, ctKey(POD6, CIP6, 40001, fport, P, CT_FWD), { backendId: 611, revNatId: 61, natAddr: Z6, natPort: 0, flags: CT_REPLIED, backendAddr: BE6_L1, backendPort: bport, table: 'ct' });
          assertCt(dp, ctKey(BE6_L1, POD6, bport, 40001, P, CT_REPLY), { backendId: 611, revNatId: 61, natAddr: Z6, natPort: 0, flags: CT_REPLIED, table: 'ct' });
          assert.deepEqual(ctCount(dp), { v4: 0, v6: 2 }, 'kx_ct_new6 emptied by the promotion');
        },
      }],
      stats: { new_flow: 1, established: 1, reply: 1, promoted: 1 },
    };
  }),
  {
    description: 'IPv6 ClusterIP reply via XDP (backend on another node): src -> ClusterIP:port, dst unchanged',
    state: clusterIp6(one(612, BE6_R1, 8080)),
    program: 'tc', input: tcp(POD6, 40003, CIP6, 80), verdict: TC_ACT_OK,
    expect: { src: POD6, sport: 40003, dst: BE6_R1, dport: 8080 },
    then: [{
      program: 'xdp', input: tcp(BE6_R1, 8080, POD6, 40003, { tcpFlags: 0x12 }), verdict: XDP_PASS,
      expect: { src: CIP6, sport: 80, dst: POD6, dport: 40003 },
    }],
    stats: { new_flow: 1, reply: 1, promoted: 1 },
  },
  // 2. NodePort to a remote backend: SNAT to kx_config6's address, the reply translated back.
  {
    description: 'IPv6 NodePort via XDP to a remote backend: SNAT to kx_config6 node address:[61000,65535]; established; reply via XDP -> node:nodePort to client:port',
    state: nodePort6(one(641, BE6_R1, 8080)),
    program: 'xdp', input: tcp(CLIENT6, 51001, NODE6, 30080), verdict: XDP_PASS,
    expect: { src: NODE6, sport: { range: [SNAT_MIN, SNAT_END] }, dst: BE6_R1, dport: 8080 },
    check: (dp, h) => {
      const snat = h.out[0]!.sport;
      assertCt(dp, ctKey(CLIENT6, NODE6, 51001, 30080, TCP, CT_FWD), { backendId: 641, revNatId: 64, natAddr: NODE6, natPort: snat, flags: CT_SNAT, backendAddr: BE6_R1, backendPort: 8080, table: 'ctNew' });
      assertCt(dp, ctKey(BE6_R1, NODE6, 8080, snat, TCP, CT_REPLY), { backendId: 641, revNatId: 64, natAddr: CLIENT6, natPort: 51001, flags: CT_SNAT, table: 'ctNew' });
      assert.deepEqual(ctCount(dp), { v4: 0, v6: 2 });
    },
    then: [{
      note: 'established: same SNAT port again',
      program: 'xdp', input: tcp(CLIENT6, 51001, NODE6, 30080, { tcpFlags: ACK }), verdict: XDP_PASS,
      expect: (h) => ({ src: NODE6, sport: h.out[0]!.sport, dst: BE6_R1, dport: 8080 }),
    }, {
      note: 'the backend answers node:snatport, arriving on the external interface',
      program: 'xdp', input: (h) => tcp(BE6_R1, 8080, NODE6, h.out[0]!.sport, { tcpFlags: 0x12 }), verdict: XDP_PASS,
      expect: { src: NODE6, sport: 30080, dst: CLIENT6, dport: 51001 },
      check: (dp, h) => assertCt(dp, ctKey(BE6_R1, NODE6, 8080, h.out[0]!.sport, TCP, CT_REPLY), { backendId: 641, revNatId: 64, natAddr: CLIENT6, natPort: 51001, flags: CT_SNAT | CT_REPLIED, table: 'ct' }),
    }],
    stats: { new_flow: 1, established: 1, reply: 1, promoted: 1 },
  },
  {
    description: 'IPv6 LoadBalancer IP via XDP to a remote backend: SNAT source is kx_config6.node_addr (not the dialled address, not kx_config\'s IPv4 one); reply -> LB IP',
    state: { nodeAddr: NODE, nodeAddr6: NODE6, services: [svc6({ svcId: 65, addr: LB6, port: 443, scope: 'EXT', flags: FE_NODEPORT, backends: one(651, BE6_R1, 8443) })] },
    program: 'xdp', input: tcp(CLIENT6, 51002, LB6, 443), verdict: XDP_PASS,
    expect: { src: NODE6, sport: { range: [SNAT_MIN, SNAT_END] }, dst: BE6_R1, dport: 8443 },
    then: [{
      program: 'xdp', input: (h) => tcp(BE6_R1, 8443, NODE6, h.out[0]!.sport, { tcpFlags: 0x12 }), verdict: XDP_PASS,
      expect: { src: LB6, sport: 443, dst: CLIENT6, dport: 51002 },
    }],
    stats: { new_flow: 1, reply: 1, promoted: 1 },
  },
  {
    description: 'IPv6 NodePort on a second node address without kx_config6 (::): SNAT source is the dialled address; reply translated back',
    state: { nodeAddr: NODE, services: [svc6({ svcId: 66, addr: NODE6_B, port: 30080, proto: 'UDP', scope: 'EXT', flags: FE_NODEPORT, backends: one(661, BE6_R2, 8080) })] },
    program: 'xdp', input: udp(CLIENT6, 51003, NODE6_B, 30080), verdict: XDP_PASS,
    expect: { src: NODE6_B, sport: { range: [SNAT_MIN, SNAT_END] }, dst: BE6_R2, dport: 8080 },
    check: (dp, h) => assertCt(dp, ctKey(CLIENT6, NODE6_B, 51003, 30080, UDP, CT_FWD), { backendId: 661, revNatId: 66, natAddr: NODE6_B, natPort: h.out[0]!.sport, flags: CT_SNAT, backendAddr: BE6_R2, backendPort: 8080, table: 'ctNew' }),
    then: [{
      program: 'xdp', input: (h) => udp(BE6_R2, 8080, NODE6_B, h.out[0]!.sport), verdict: XDP_PASS,
      expect: { src: NODE6_B, sport: 30080, dst: CLIENT6, dport: 51003 },
    }],
    stats: { new_flow: 1, reply: 1, promoted: 1 },
  },
  {
    description: 'IPv6 NodePort to a local backend: only dst rewritten (client kept); the reply leaves through the backend\'s veth (tc) -> node:nodePort',
    state: nodePort6(one(643, BE6_L1, 8080, BE_LOCAL)),
    program: 'xdp', input: tcp(CLIENT6, 51009, NODE6, 30080), verdict: XDP_PASS,
    expect: { src: CLIENT6, sport: 51009, dst: BE6_L1, dport: 8080 },
    then: [{
      program: 'tc', input: tcp(BE6_L1, 8080, CLIENT6, 51009, { tcpFlags: 0x12 }), verdict: TC_ACT_OK,
      expect: { src: NODE6, sport: 30080, dst: CLIENT6, dport: 51009 },
    }],
    stats: { new_flow: 1, reply: 1, promoted: 1 },
  },
  // 3. externalTrafficPolicy Local.
  {
    description: 'IPv6 NodePort with externalTrafficPolicy Local (FE_LOCAL_ONLY) to a remote backend: no SNAT, client address kept; reply translated back',
    state: nodePort6(one(642, BE6_R1, 8080), { flags: FE_NODEPORT | FE_LOCAL_ONLY }),
    program: 'xdp', input: tcp(CLIENT6, 51004, NODE6, 30080), verdict: XDP_PASS,
    expect: { src: CLIENT6, sport: 51004, dst: BE6_R1, dport: 8080 },
    check: (dp) => {
      assertCt(dp, ctKey(CLIENT6, NODE6, 51004, 30080, TCP, CT_FWD), { backendId: 642, revNatId: 64, natAddr: Z6, natPort: 0, flags: 0, backendAddr: BE6_R1, backendPort: 8080, table: 'ctNew' });
      assertCt(dp, ctKey(BE6_R1, CLIENT6, 8080, 51004, TCP, CT_REPLY), { backendId: 642, revNatId: 64, natAddr: Z6, natPort: 0, flags: 0, table: 'ctNew' });
    },
    then: [{
      program: 'xdp', input: tcp(BE6_R1, 8080, CLIENT6, 51004, { tcpFlags: 0x12 }), verdict: XDP_PASS,
      expect: { src: NODE6, sport: 30080, dst: CLIENT6, dport: 51004 },
    }],
    stats: { new_flow: 1, reply: 1, promoted: 1 },
  },
  // 4. SCTP: ports rewritten, CRC32c updated (no pseudo-header: addresses do not enter it).
  ...[0, 3, 100, 1000].map((size): Fixture => {
    const payload = Buffer.from(Array.from({ length: size }, (_, i) => (i * 13 + size) & 0xff));
    return {
      description: `IPv6 SCTP NodePort via XDP (${size}-byte chunk data), remote backend: SNAT, CRC32c valid after the rewrite; reply translated back`,
      state: nodePort6(one(644, BE6_R1, 36412), { proto: 'SCTP', port: 30412 }),
      program: 'xdp', input: sctp(CLIENT6, 40700 + size, NODE6, 30412, { payload }), verdict: XDP_PASS,
      expect: { src: NODE6, sport: { range: [SNAT_MIN, SNAT_END] }, dst: BE6_R1, dport: 36412 },
      check: (dp, h) => assertCt(dp, ctKey(CLIENT6, NODE6, 40700 + size, 30412, SCTP, CT_FWD), { backendId: 644, revNatId: 64, natAddr: NODE6, natPort: h.out[0]!.sport, flags: CT_SNAT, backendAddr: BE6_R1, backendPort: 36412, table: 'ctNew' }),
      then: [{
        program: 'xdp', input: (h) => sctp(BE6_R1, 36412, NODE6, h.out[0]!.sport, { payload }), verdict: XDP_PASS,
        expect: { src: NODE6, sport: 30412, dst: CLIENT6, dport: 40700 + size },
      }],
      stats: { new_flow: 1, reply: 1, promoted: 1 },
    };
  }),
  {
    description: 'IPv6 SCTP ClusterIP via tc behind a destination options header: CRC32c valid, extension header untouched; reply via tc',
    state: clusterIp6(one(613, BE6_L1, 38412, BE_LOCAL), { proto: 'SCTP', port: 36412 }),
    program: 'tc', input: sctp(POD6, 40710, CIP6, 36412, { ext: [{ type: 'dest', len: 24 }], payload: Buffer.from('sctp over ipv6') }), verdict: TC_ACT_OK,
    expect: { src: POD6, sport: 40710, dst: BE6_L1, dport: 38412 },
    then: [{
      program: 'tc', input: sctp(BE6_L1, 38412, POD6, 40710, { ext: [{ type: 'hop', len: 8 }] }), verdict: TC_ACT_OK,
      expect: { src: CIP6, sport: 36412, dst: POD6, dport: 40710 },
    }],
    stats: { new_flow: 1, reply: 1, promoted: 1 },
  },
  // 5. Extension headers: walked, never touched.
  {
    description: 'IPv6 TCP ClusterIP via tc behind hop-by-hop (8) + destination options (16): translated, extension headers untouched; reply with destination options (24) translated back',
    state: clusterIp6(one(614, BE6_L1, 8080, BE_LOCAL)),
    program: 'tc', input: tcp(POD6, 40020, CIP6, 80, { ext: HOP_DEST, payload: Buffer.from('behind options') }), verdict: TC_ACT_OK,
    expect: { src: POD6, sport: 40020, dst: BE6_L1, dport: 8080 },
    check: (dp) => assertCt(dp, ctKey(POD6, CIP6, 40020, 80, TCP, CT_FWD), { backendId: 614, revNatId: 61, natAddr: Z6, natPort: 0, flags: 0, backendAddr: BE6_L1, backendPort: 8080, table: 'ctNew' }),
    then: [{
      program: 'tc', input: tcp(BE6_L1, 8080, POD6, 40020, { tcpFlags: 0x12, ext: [{ type: 'dest', len: 24 }] }), verdict: TC_ACT_OK,
      expect: { src: CIP6, sport: 80, dst: POD6, dport: 40020 },
    }],
    stats: { new_flow: 1, reply: 1, promoted: 1 },
  },
  {
    description: 'IPv6 UDP NodePort via XDP behind hop-by-hop (16) + routing (8, 0 segments left) + destination options (8): SNAT, headers untouched; reply behind hop-by-hop translated back',
    state: nodePort6(one(645, BE6_R1, 5353), { proto: 'UDP', port: 30053 }),
    program: 'xdp', input: udp(CLIENT6, 40021, NODE6, 30053, { ext: [{ type: 'hop', len: 16 }, { type: 'routing', len: 8 }, { type: 'dest', len: 8 }], payload: Buffer.from('dns?') }),
    verdict: XDP_PASS,
    expect: { src: NODE6, sport: { range: [SNAT_MIN, SNAT_END] }, dst: BE6_R1, dport: 5353 },
    then: [{
      program: 'xdp', input: (h) => udp(BE6_R1, 5353, NODE6, h.out[0]!.sport, { ext: [{ type: 'hop', len: 8 }] }), verdict: XDP_PASS,
      expect: { src: NODE6, sport: 30053, dst: CLIENT6, dport: 40021 },
    }],
    stats: { new_flow: 1, reply: 1, promoted: 1 },
  },
  ...both((p): Fixture => ({
    description: `IPv6 via ${p} behind 4 extension headers of 256 bytes together (the most walked): translated, headers untouched`,
    state: state6(p),
    program: p, input: frame6(p, TCP, 40022, { ext: [{ type: 'hop', len: 64 }, { type: 'dest', len: 64 }, { type: 'routing', len: 64 }, { type: 'dest', len: 64 }] }),
    verdict: V[p].pass,
    expect: p === 'tc' ? { src: POD6, sport: 40022, dst: BE6_R1, dport: 8080 } : { src: NODE6, sport: { range: [SNAT_MIN, SNAT_END] }, dst: BE6_R1, dport: 8080 },
    stats: { new_flow: 1 },
  })),
  ...both((p): Fixture => {
    const dst = p === 'tc' ? { src: POD6, sport: 41003, dst: BE6_R1, dport: 8080 } : { src: CLIENT6, sport: 41003, dst: BE6_L1, dport: 5353 };
    const payload = payloadZeroingUdpChecksum(udp(dst.src, dst.sport, dst.dst, dst.dport));
    return {
      description: `IPv6 UDP whose checksum becomes 0 after the rewrite via ${p}: sent as 0xffff`,
      state: p === 'tc' ? clusterIp6(one(611, BE6_R1, 8080), { proto: 'UDP', port: 53 }) : nodePort6(one(646, BE6_L1, 5353, BE_LOCAL), { proto: 'UDP', port: 30053 }),
      program: p,
      input: p === 'tc' ? udp(POD6, 41003, CIP6, 53, { payload }) : udp(CLIENT6, 41003, NODE6, 30053, { payload }),
      verdict: V[p].pass, expect: dst, l4Checksum: 0xffff,
      stats: { new_flow: 1 },
    };
  }),
  // 6. REJECT: ICMPv6 destination unreachable, port unreachable, from the Service address.
  ...([
    ['TCP', TCP, undefined],
    ['UDP behind hop-by-hop + destination options (quoted too)', UDP, HOP_DEST],
    ['SCTP behind 256 bytes of extension headers (the longest quote)', SCTP, [{ type: 'hop', len: 128 }, { type: 'dest', len: 128 }] as Ext6[]],
  ] as const).flatMap(([what, proto, ext]) => both((p): Fixture => ({
    description: `IPv6 ${what} to a Service without endpoints (count 0, FE_REJECT) via ${p}: ICMPv6 port unreachable from the Service address, ${p === 'xdp' ? 'XDP_TX' : 'TC_ACT_REDIRECT'}`,
    state: state6(p, proto === TCP ? 'TCP' : proto === UDP ? 'UDP' : 'SCTP', { backends: [], count: 0, flags: (p === 'xdp' ? FE_NODEPORT : 0) | FE_REJECT }),
    program: p, input: frame6(p, proto, 40030, { ext: ext ? [...ext] : undefined, payload: Buffer.alloc(300, 0x5a) }),
    verdict: V[p].reject, expect: 'reject',
    check: (dp, h) => {
      const input = frame6(p, proto, 40030, { ext: ext ? [...ext] : undefined, payload: Buffer.alloc(300, 0x5a) });
      const g = parseIcmp6Frame(h.raw[0]!);
      const quoteLen = l4At(input) - 14 + 8;
      assert.equal(h.raw[0]!.length, 14 + 40 + 8 + quoteLen, 'frame: Ethernet + IPv6 + ICMPv6 header + quote, nothing more');
      assert.deepEqual({ src: g.src, dst: g.dst, type: g.type, code: g.code, hopLimit: g.hopLimit, nextHeader: g.nextHeader, ok: g.icmpChecksumOk },
        { src: p6(p).fe, dst: p6(p).client, type: 1, code: 4, hopLimit: 64, nextHeader: ICMPV6, ok: true });
      assert.ok(g.quote.equals(input.subarray(14, 14 + quoteLen)), 'quote = IPv6 header + extension headers + 8 bytes of L4');
      assert.equal(reject6Problem(input, h.raw[0]!), null);
      noCt(dp);
    },
    stats: { no_backend: 1, rejected: 1 },
  }))),
  ...both((p): Fixture => ({
    description: `IPv6 to a Service without endpoints and without FE_REJECT via ${p}: dropped, no_backend counted`,
    state: state6(p, 'TCP', { backends: [], count: 0 }),
    program: p, input: frame6(p, TCP, 40031), verdict: V[p].drop, expect: 'unchanged',
    check: noCt,
    stats: { no_backend: 1 },
  })),
  // 7. loadBalancerSourceRanges (kx_src_ranges6: prefixlen = 32 + the CIDR's).
  ...([
    [CLIENT6, 'inside 2001:db8:7::/64: served'],
    ['2001:db8:7::ffff:1', 'inside 2001:db8:7::/64 (another host): served'],
    ['2001:db8:55::1', 'the /128 range: served'],
    [CLIENT6_NEAR, 'shares the /48 only: denied'],
    ['2001:db8:55::2', 'next to the /128: denied'],
  ] as const).map(([client, what]): Fixture => {
    const served = what.endsWith('served');
    return {
      description: `IPv6 loadBalancerSourceRanges [2001:db8:7::/64, 2001:db8:55::1/128] via XDP, client ${client} (${what})`,
      state: { nodeAddr6: NODE6, services: [svc6({ svcId: 68, addr: LB6, port: 443, scope: 'EXT', flags: FE_NODEPORT | FE_SRC_RANGES, srcRanges: ['2001:db8:7::/64', '2001:db8:55::1/128'], backends: one(681, BE6_R1, 8443) })] },
      program: 'xdp', input: tcp(client, 51010, LB6, 443),
      verdict: served ? XDP_PASS : XDP_DROP,
      expect: served ? { src: NODE6, sport: { range: [SNAT_MIN, SNAT_END] }, dst: BE6_R1, dport: 8443 } : 'unchanged',
      check: (dp) => { if (!served) noCt(dp); },
      stats: served ? { new_flow: 1 } : { denied: 1 },
    };
  }),
  {
    description: 'IPv6 source ranges written but FE_SRC_RANGES not set: not looked at, an outside client is served',
    state: { nodeAddr6: NODE6, services: [svc6({ svcId: 68, addr: LB6, port: 443, scope: 'EXT', flags: FE_NODEPORT, srcRanges: ['2001:db8:7::/64'], backends: one(681, BE6_R1, 8443) })] },
    program: 'xdp', input: tcp(CLIENT6_NEAR, 51011, LB6, 443), verdict: XDP_PASS,
    expect: { src: NODE6, sport: { range: [SNAT_MIN, SNAT_END] }, dst: BE6_R1, dport: 8443 },
    stats: { new_flow: 1 },
  },
  // 8. Misses.
  ...both((p): Fixture => ({
    description: `IPv6 miss via ${p}: no frontend for the address (the IPv4 frontend on the same port does not count) -> pass, unchanged`,
    state: { nodeAddr: NODE, nodeAddr6: NODE6, services: [svc6({ backends: one(611, BE6_R1, 8080) }), svc({ svcId: 2, addr: CIP, backends: one(11, BE_R1, 8080) })] },
    program: p, input: tcp(p === 'tc' ? POD6 : CLIENT6, 40004, 'fd00:96::99', 80), verdict: V[p].pass, expect: 'unchanged',
    check: noCt,
    stats: {},
  })),
  {
    description: 'IPv6 miss: ClusterIP (internal scope) hit from XDP -> unchanged',
    state: clusterIp6(one(611, BE6_R1, 8080)),
    program: 'xdp', input: tcp(CLIENT6, 40008, CIP6, 80), verdict: XDP_PASS, expect: 'unchanged', check: noCt, stats: {},
  },
  // 9. Malformed: untouched, counted, no conntrack entry.
  ...([
    ['an extension header cut (payload length 6: a hop-by-hop header takes at least 8)', (f: Buffer) =>
      edited(f.subarray(0, 14 + 40 + 6), (b) => { b.writeUInt16BE(6, IP6_PLEN); b[20] = NEXTHDR.hop; b[54] = TCP; b[55] = 0; })],
    ['a hop-by-hop header (16 bytes) longer than the payload (12 bytes)', (f: Buffer) =>
      edited(f.subarray(0, 14 + 40 + 12), (b) => { b.writeUInt16BE(12, IP6_PLEN); b[20] = NEXTHDR.hop; b[54] = TCP; b[55] = 1; })],
    ['an extension header running past the payload into the TCP header (length 48 of a 28-byte payload)', (f: Buffer) =>
      edited(f, (b) => { b[55] = 5; }), [{ type: 'hop', len: 8 }]],
    ['an extension header running past the payload into Ethernet padding that holds the TCP header', (f: Buffer) => {
      // hop-by-hop says 48 bytes: the "L4 header" would be 20 bytes past the payload's end
      const padding = Buffer.alloc(64);
      f.copy(padding, 20, l4At(f), l4At(f) + 20);
      return Buffer.concat([edited(f, (b) => { b[55] = 5; }), padding]);
    }, [{ type: 'hop', len: 8 }]],
    ['the payload length past the frame (by 1)', (f: Buffer) => edited(f, (b) => b.writeUInt16BE(b.readUInt16BE(IP6_PLEN) + 1, IP6_PLEN))],
    ['the payload length past the frame (by 1000), behind extension headers', (f: Buffer) => edited(f, (b) => b.writeUInt16BE(b.readUInt16BE(IP6_PLEN) + 1000, IP6_PLEN)), HOP_DEST],
    ['TCP data offset 15 (60 bytes) beyond a 20-byte segment', (f: Buffer) => edited(f, (b) => { b[l4At(f) + 12] = 0xf0; })],
    ['TCP data offset 4 (< 5)', (f: Buffer) => edited(f, (b) => { b[l4At(f) + 12] = 0x40; })],
    ['TCP header cut (payload length 10)', (f: Buffer) => edited(f.subarray(0, 14 + 40 + 10), (b) => b.writeUInt16BE(10, IP6_PLEN))],
    ['version 4 in the IPv6 header', (f: Buffer) => edited(f, (b) => { b[14] = 0x40; })],
  ] as const).flatMap(([what, mangle, ext]) => both((p): Fixture => ({
    description: `IPv6 TCP with ${what} via ${p} -> pass unchanged, malformed, no conntrack entry`,
    state: state6(p),
    program: p, input: mangle(frame6(p, TCP, 40040, { payload: Buffer.alloc(0), ext: ext ? [...ext] : undefined })),
    verdict: V[p].pass, expect: 'unchanged', check: noCt,
    stats: { malformed: 1 },
  }))),
  ...([
    ['UDP length larger than the payload', (f: Buffer) => edited(f, (b) => b.writeUInt16BE(b.readUInt16BE(l4At(f) + 4) + 1, l4At(f) + 4))],
    ['UDP length smaller than the payload', (f: Buffer) => edited(f, (b) => b.writeUInt16BE(b.readUInt16BE(l4At(f) + 4) - 1, l4At(f) + 4))],
    ['UDP length below 8, behind extension headers', (f: Buffer) => edited(f, (b) => b.writeUInt16BE(7, l4At(f) + 4)), HOP_DEST],
  ] as const).flatMap(([what, mangle, ext]) => both((p): Fixture => ({
    description: `IPv6 ${what} via ${p} -> pass unchanged, malformed, no conntrack entry`,
    state: state6(p, 'UDP'),
    program: p, input: mangle(frame6(p, UDP, 40041, { ext: ext ? [...ext] : undefined })),
    verdict: V[p].pass, expect: 'unchanged', check: noCt,
    stats: { malformed: 1 },
  }))),
  ...both((p): Fixture => ({
    description: `IPv6 SCTP of 12 bytes (common header only, no chunk header) via ${p} -> pass unchanged, malformed`,
    state: state6(p, 'SCTP'),
    program: p, input: edited(frame6(p, SCTP, 40042).subarray(0, 14 + 40 + 12), (b) => b.writeUInt16BE(12, IP6_PLEN)),
    verdict: V[p].pass, expect: 'unchanged', check: noCt,
    stats: { malformed: 1 },
  })),
  ...both((p): Fixture => ({
    // RFC 8200 4.1/4.3: hop-by-hop only immediately after the IPv6 header (the kernel answers
    // this with a parameter problem); the same chain with hop-by-hop first is translated
    description: `IPv6 TCP to a frontend behind destination options (8) + hop-by-hop (8), hop-by-hop not first, via ${p} -> pass unchanged, malformed, no conntrack entry`,
    state: state6(p),
    program: p, input: frame6(p, TCP, 40044, { ext: [{ type: 'dest', len: 8 }, { type: 'hop', len: 8 }] }),
    verdict: V[p].pass, expect: 'unchanged', check: noCt,
    stats: { malformed: 1 },
  })),
  // XDP only: the kernel's skb test_run refuses an IPv6 frame shorter than 14 + 40 bytes.
  {
    description: 'IPv6 header cut (14 + 30 bytes) via xdp -> pass unchanged, malformed',
    state: state6('xdp'),
    program: 'xdp', input: frame6('xdp', TCP, 40043).subarray(0, 14 + 30), verdict: XDP_PASS, expect: 'unchanged',
    stats: { malformed: 1 },
  },
  // 10. Untrackable: fragments, more extension headers than the parser walks, a routing header
  // with segments left.
  ...([
    ['a first fragment (fragment header, M set)', [{ type: 'fragment', offset8: 0, more: true }]],
    ['an atomic fragment (fragment header, offset 0, M clear)', [{ type: 'fragment', offset8: 0, more: false }]],
    ['a later fragment behind hop-by-hop (offset 185)', [{ type: 'hop', len: 8 }, { type: 'fragment', offset8: 185, more: false }]],
    ['5 extension headers (4 are walked)', [{ type: 'hop', len: 8 }, { type: 'dest', len: 8 }, { type: 'routing', len: 8 }, { type: 'dest', len: 8 }, { type: 'dest', len: 8 }]],
    ['4 extension headers of 264 bytes together (256 are walked)', [{ type: 'hop', len: 72 }, { type: 'dest', len: 64 }, { type: 'routing', len: 64 }, { type: 'dest', len: 64 }]],
    ['one destination options header of 264 bytes', [{ type: 'dest', len: 264 }]],
  ] as const).flatMap(([what, ext]) => both((p): Fixture => ({
    description: `IPv6 UDP with ${what} to a frontend via ${p} -> unchanged, untrackable, no conntrack entry`,
    state: state6(p, 'UDP'),
    program: p, input: frame6(p, UDP, 40050, { ext: ext.map((e) => ({ ...e })) as Ext6[] }),
    verdict: V[p].pass, expect: 'unchanged', check: noCt,
    stats: { untrackable: 1 },
  }))),
  ...both((p): Fixture => ({
    // RFC 8200 4.4: segments left 1, the IPv6 destination (the frontend) is not the final one:
    // a Mobile IPv6 type 2 routing header whose home address is the packet's final destination
    description: `IPv6 UDP to a frontend behind a routing header with segments left 1 (type 2, home address ${BE6_R2}) via ${p} -> unchanged, untrackable, no conntrack entry`,
    state: state6(p, 'UDP'),
    program: p, input: edited(frame6(p, UDP, 40051, { ext: [{ type: 'routing', len: 24 }] }), (b) => {
      b[56] = 2; b[57] = 1; b.fill(0, 58, 62); ipv6Bytes(BE6_R2).copy(b, 62);
    }),
    verdict: V[p].pass, expect: 'unchanged', check: noCt,
    stats: { untrackable: 1 },
  })),
  // 11. Not ours: a jumbogram, ICMPv6 that is no error about a flow.
  ...both((p): Fixture => ({
    description: `IPv6 jumbogram (payload length 0, hop-by-hop) to a frontend via ${p} -> not ours: unchanged, nothing counted`,
    state: state6(p),
    program: p, input: edited(frame6(p, TCP, 40060, { ext: [{ type: 'hop', len: 8 }] }), (b) => b.writeUInt16BE(0, IP6_PLEN)),
    verdict: V[p].pass, expect: 'unchanged', check: noCt, stats: {},
  })),
  ...both((p): Fixture => ({
    description: `ICMPv6 neighbour solicitations (multicast, and unicast for the Service address) via ${p} -> pass unchanged, nothing counted`,
    state: state6(p),
    program: p, input: neighbourSolicitation(p6(p).client, p6(p).fe), verdict: V[p].pass, expect: 'unchanged',
    then: [{ program: p, input: neighbourSolicitation(p6(p).client, p6(p).fe, p6(p).fe), verdict: V[p].pass, expect: 'unchanged' }],
    stats: {},
  })),
  ...both((p): Fixture => ({
    description: `ICMPv6 echo request to a Service address via ${p} -> pass unchanged`,
    state: state6(p),
    program: p, input: buildIcmp6Frame({ src: p6(p).client, dst: p6(p).fe, type: 128, code: 0, rest: 0x42420001, body: Buffer.from('ping') }),
    verdict: V[p].pass, expect: 'unchanged', stats: {},
  })),
];

// ---- running the table ----

/** The dataplane object loaded for one describe block, closed (pins removed) after it. */
function loadedDataplane(): { readonly current: Dataplane | null } {
  const holder: { current: Dataplane | null } = { current: null };
  before(() => {
    ensureBpffs();
    holder.current = new Dataplane(KX_OBJ, 'kx-fixture');
  });
  after(() => holder.current?.close());
  return holder;
}


/** Runs one table row on a cleared dataplane: every packet checked, then the counter deltas. */
function runFixture(dp: Dataplane, fx: Fixture): void {
  dp.clearAll(65536);
  dp.writeState(fx.state);
  const h: History = { out: [], raw: [], note: {} };
  const s0 = dp.stats();
  const packets: (Packet & { note?: string })[] = [fx, ...(fx.then ?? [])];
  packets.forEach((pk, i) => {
    const where = `packet ${i + 1}${pk.note ? ` (${pk.note})` : ''} via ${pk.program}`;
    pk.before?.(dp, h);
    const spec = lazy(pk.input, h);
    const input = Buffer.isBuffer(spec) ? spec : frameOf(spec);
    const inputCopy = Buffer.from(input);
    const r = dp.run(pk.program, input);
    assert.deepEqual(input, inputCopy, 'test_run must not modify the caller\'s buffer');
    try {
      assert.equal(r.verdict, pk.verdict, 'verdict');
      if (pk.expect === 'reject') {
        assert.equal(rejectProblem(input, r.out), null, 'REJECT answer');
        h.out.push(null);
      } else {
        const expect = pk.expect === 'unchanged' ? 'unchanged' : lazy(pk.expect, h);
        const l4 = pk.l4Checksum === undefined ? undefined : lazy(pk.l4Checksum, h);
        h.out.push(verifyPacket(input, r.out, expect, l4));
      }
      h.raw.push(r.out);
      pk.check?.(dp, h);
    } catch (e) {
      if (e instanceof Error) e.message = `${where}: ${e.message}\n  in:  ${input.toString('hex')}\n  out: ${r.out.toString('hex')}`;
      throw e;
    }
  });
  const delta = statsDelta(s0, dp.stats());
  const want = Object.fromEntries(STAT_NAMES.map((n) => [n, fx.stats[n] ?? 0]));
  assert.deepEqual(delta, want, 'kx_stats deltas over the fixture');
}

describe('datapath fixtures (BPF_PROG_TEST_RUN)', { skip: isRoot ? false : 'needs root (BPF_PROG_TEST_RUN, bpffs)' }, () => {
  const loaded = loadedDataplane();

  test('the table has at least 20 fixtures', () => assert.ok(FIXTURES.length >= 20, `${FIXTURES.length} fixtures`));

  for (const fx of FIXTURES) {
    test(fx.description, fx.todo ? { todo: fx.todo } : {}, () => {
      const dp = loaded.current;
      assert.ok(dp, 'dataplane loaded');
      runFixture(dp, fx);
    });
  }

  test('test_run with repeat reruns the program on the rewritten buffer (the rewrite persists)', () => {
    const dp = loaded.current;
    assert.ok(dp);
    dp.clearAll(65536);
    dp.writeState(clusterIp(one(11, BE_R1, 8080)));
    const s0 = dp.stats();
    const r = dp.run('tc', buildFrame(tcp(POD, 40100, CIP, 80)), 10);
    verifyPacket(buildFrame(tcp(POD, 40100, CIP, 80)), r.out, { src: POD, sport: 40100, dst: BE_R1, dport: 8080 });
    // Runs 2..10 saw POD -> BE_R1:8080, which is neither a frontend nor a tracked tuple.
    assert.deepEqual(statsDelta(s0, dp.stats()), counters({ new_flow: 1 }));
  });

  test('tc: the kernel\'s skb test_run refuses IPv4 frames shorter than an IP header (so those rows are XDP-only)', () => {
    const dp = loaded.current;
    assert.ok(dp);
    dp.clearAll(65536);
    dp.writeState(clusterIp(one(11, BE_R1, 8080)));
    const s0 = dp.stats();
    for (const f of [SHORT_FRAMES.ethOnly, SHORT_FRAMES.ipCut]) {
      assert.throws(() => dp!.run('tc', f), (e: unknown) => (e as { code?: string }).code === 'EINVAL', `${f.length}-byte frame`);
    }
    assert.deepEqual(statsDelta(s0, dp.stats()), counters({}));
  });

  test('randomized: 400 flows (TCP/UDP, random clients, ports, payload lengths, IP options) and their replies, checksums from scratch', () => {
    const dp = loaded.current;
    assert.ok(dp);
    const seed = Number(process.env.KX_FIXTURE_SEED ?? 0x6b78);
    const rnd = mulberry32(seed);
    const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo)); // [lo, hi)
    dp.clearAll(65536);
    dp.writeState({
      nodeAddr: NODE,
      services: [
        svc({ svcId: 4, addr: NODE, port: 30080, scope: 'EXT', flags: FE_NODEPORT, backends: one(41, BE_R1, 8080) }),
        svc({ svcId: 5, addr: NODE, port: 30080, proto: 'UDP', scope: 'EXT', flags: FE_NODEPORT, backends: one(42, BE_R2, 8053) }),
        svc({ svcId: 6, backends: one(43, BE_R1, 8080) }),
        svc({ svcId: 7, proto: 'UDP', backends: one(44, BE_R2, 8053) }),
      ],
    });
    const s0 = dp.stats();
    const N = 400;
    let lost = 0; // TCP flows whose first packet is not a bare SYN
    for (let i = 0; i < N; i++) {
      dp.clearCt(64);
      const program: Program = rnd() < 0.5 ? 'xdp' : 'tc';
      const proto = rnd() < 0.5 ? TCP : UDP;
      const client = `${int(1, 224)}.${int(0, 256)}.${int(0, 256)}.${int(1, 255)}`;
      const sport = int(1, 65536);
      const o = (): Partial<FrameSpec> => ({
        payload: Buffer.from(Array.from({ length: int(0, 91) }, () => int(0, 256))),
        ipOptions: ipOptions(int(0, 11) * 4),
        udpNoChecksum: proto === UDP && rnd() < 0.15,
        tcpFlags: int(0, 256),
      });
      const be = proto === TCP ? { addr: BE_R1, port: 8080 } : { addr: BE_R2, port: 8053 };
      const fe = program === 'xdp' ? { addr: NODE, port: 30080 } : { addr: CIP, port: 80 };
      const ctx = `seed ${seed} flow ${i} (${program} ${proto === TCP ? 'TCP' : 'UDP'} ${client}:${sport})`;
      const fwdSpec: FrameSpec = { src: client, dst: fe.addr, sport, dport: fe.port, proto, ...o() };
      if (proto === TCP && ((fwdSpec.tcpFlags ?? 0) & 0x12) !== 0x02) lost++;
      const fwdIn = buildFrame(fwdSpec);
      const fwd = dp.run(program, fwdIn);
      assert.equal(fwd.verdict, V[program].pass, ctx);
      const out = verifyPacket(fwdIn, fwd.out, program === 'xdp'
        ? { src: NODE, sport: { range: [SNAT_MIN, SNAT_END] }, dst: be.addr, dport: be.port }
        : { src: client, sport, dst: be.addr, dport: be.port });
      assert.ok(out, ctx);
      const replyIn = buildFrame({ src: be.addr, dst: out.src, sport: be.port, dport: out.sport, proto, ...o() });
      const reply = dp.run(program, replyIn);
      assert.equal(reply.verdict, V[program].pass, ctx);
      verifyPacket(replyIn, reply.out, { src: fe.addr, sport: fe.port, dst: client, dport: sport });
    }
    assert.deepEqual(statsDelta(s0, dp.stats()), counters({ new_flow: N, reply: N, promoted: N, ct_lost: lost }));
  });
});

// ---- gaps found by the fixtures: fixed ones assert, open ones run and report as todo ----

describe('gaps found by the fixtures (open ones report as todo)', { skip: isRoot ? false : 'needs root (BPF_PROG_TEST_RUN, bpffs)' }, () => {
  const loaded = loadedDataplane();

  test('NodePort SNAT ports avoid the node\'s own ephemeral ports (net.ipv4.ip_local_port_range)', () => {
    const dp = loaded.current;
    assert.ok(dp);
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number) as [number, number];
    const reserved = readFileSync('/proc/sys/net/ipv4/ip_local_reserved_ports', 'utf8').trim();
    dp.clearAll(65536);
    dp.writeState(nodePort(one(41, BE_R1, 8080)));
    const clashes: number[] = [];
    for (let i = 0; i < 50; i++) {
      const r = dp.run('xdp', buildFrame(tcp(CLIENT, 20000 + i, NODE, 30080)));
      const port = parseFrame(r.out).sport;
      if (port >= lo && port <= hi) clashes.push(port);
    }
    assert.equal(clashes.length, 0, `${clashes.length} of 50 SNAT ports inside ip_local_port_range ${lo}-${hi} (reserved: "${reserved}"), e.g. ${clashes.slice(0, 5).join(", ")}`);
  });

  test('SCTP: ports rewritten with the CRC32c updated incrementally, at every packet size, both programs, SNAT and reverse NAT', () => {
    const dp = loaded.current;
    assert.ok(dp);
    dp.clearAll(65536);
    dp.writeState({ nodeAddr: NODE, services: [
      svc({ proto: 'SCTP', port: 80, backends: one(11, BE_R1, 8080) }),
      svc({ svcId: 4, addr: NODE, port: 30080, proto: 'SCTP', scope: 'EXT', flags: FE_NODEPORT, backends: one(12, BE_R2, 9090) }),
    ] });
    const s0 = dp.stats();
    let n = 0;
    for (const size of [0, 1, 3, 4, 100, 511, 512, 1000, 1400]) {
      const payload = Buffer.from(Array.from({ length: size }, (_, i) => (i * 7 + size) & 0xff));
      // pod -> ClusterIP (tc): destination address and port
      const a = buildFrame({ src: POD, dst: CIP, sport: 40700 + size, dport: 80, proto: SCTP, payload });
      verifyPacket(a, dp.run('tc', a).out, { src: POD, sport: 40700 + size, dst: BE_R1, dport: 8080 });
      // outside -> NodePort (XDP) to a remote backend: SNAT too, and the reply translated back
      const b = buildFrame({ src: CLIENT, dst: NODE, sport: 40700 + size, dport: 30080, proto: SCTP, payload });
      const out = verifyPacket(b, dp.run('xdp', b).out, { src: NODE, sport: { range: [SNAT_MIN, SNAT_END] }, dst: BE_R2, dport: 9090 })!;
      const reply = buildFrame({ src: BE_R2, dst: NODE, sport: 9090, dport: out.sport, proto: SCTP, payload });
      verifyPacket(reply, dp.run('xdp', reply).out, { src: NODE, sport: 30080, dst: CLIENT, dport: 40700 + size });
      n++;
    }
    assert.deepEqual(statsDelta(s0, dp.stats()), counters({ new_flow: 2 * n, reply: n, promoted: n }));
  });

  test('prefilter: a packet to no frontend address and from no backend port never reaches conntrack; its bits let it in', () => {
    const dp = loaded.current;
    assert.ok(dp);
    dp.clearAll(65536);
    dp.writeState(clusterIp(one(11, BE_R1, 8080)));
    // a tracked flow whose backend port 9999 the prefilter does not know (as after an upgrade
    // from pins without it, before the controller seeds it from conntrack)
    dp.updateBatch(MAPS.ct.name, MAPS.ct.key, MAPS.ct.value, [ctKey(BE_R2, POD, 9999, 40600, TCP, CT_REPLY)],
      [{ backendId: 11, revNatId: 1, natAddr: '0.0.0.0', natPort: 0, flags: CT_REPLIED, backendAddr: '0.0.0.0', backendPort: 0, dir: CT_REPLY, lastSeenNs: ktimeNs() }]);
    const reply = buildFrame(tcp(BE_R2, 9999, POD, 40600, { tcpFlags: 0x10 }));
    const s0 = dp.stats();
    assert.ok(dp.run('xdp', reply).out.equals(reply), 'filtered out: untouched');
    assert.deepEqual(statsDelta(s0, dp.stats()), counters({}), 'not even counted');
    dp.allow([], [9999]);
    verifyPacket(reply, dp.run('xdp', reply).out, { src: CIP, sport: 80, dst: POD, dport: 40600 });
  });

  /** The error's outer and quoted headers, every checksum recomputed from scratch. */
  const icmpView = (f: Buffer) => {
    const o = f.subarray(14), inner = o.subarray(28), ip = (b: Buffer, at: number) => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
    return {
      outerSrc: ip(o, 12), outerDst: ip(o, 16), innerSrc: ip(inner, 12), innerDst: ip(inner, 16),
      innerSport: inner.readUInt16BE(20), innerDport: inner.readUInt16BE(22),
      outerCsum: checksum(o.subarray(0, 20)) === 0, icmpCsum: checksum(o.subarray(20, o.readUInt16BE(2))) === 0,
      innerCsum: checksum(inner.subarray(0, 20)) === 0,
    };
  };
  const ok = { outerCsum: true, icmpCsum: true, innerCsum: true };

  test('ICMP errors about translated flows are translated back (PMTU discovery through a Service)', () => {
    const dp = loaded.current;
    assert.ok(dp);
    dp.clearAll(65536);
    dp.writeState({ nodeAddr: NODE, services: [
      svc({ backends: one(11, BE_R1, 8080) }),
      svc({ svcId: 4, addr: NODE, port: 30080, scope: 'EXT', flags: FE_NODEPORT, backends: one(12, BE_R2, 8080) }),
      svc({ svcId: 5, addr: CIP, port: 53, proto: 'UDP', backends: one(13, BE_L1, 5353, BE_LOCAL) }),
    ] });
    const s0 = dp.stats();

    // pod -> ClusterIP, remote backend: the backend's node answers "fragmentation needed" to the
    // pod (no SNAT), from the backend's address; it comes in through XDP.
    const fwd = dp.run('tc', buildFrame(tcp(POD, 40300, CIP, 80, { payload: Buffer.alloc(1400) })));
    assert.equal(parseFrame(fwd.out).dst, BE_R1);
    let r = dp.run('xdp', icmpError(BE_R1, POD, fwd.out.subarray(14, 14 + 28)));
    assert.equal(r.verdict, XDP_PASS);
    assert.deepEqual(icmpView(r.out), { outerSrc: CIP, outerDst: POD, innerSrc: POD, innerDst: CIP, innerSport: 40300, innerDport: 80, ...ok });

    // a router on the way says so instead: its own address stays the outer source
    r = dp.run('xdp', icmpError('192.168.1.1', POD, fwd.out.subarray(14, 14 + 28)));
    assert.deepEqual(icmpView(r.out), { outerSrc: '192.168.1.1', outerDst: POD, innerSrc: POD, innerDst: CIP, innerSport: 40300, innerDport: 80, ...ok });

    // outside client -> NodePort, remote backend behind SNAT: the error comes to the node's
    // address and must go to the client, quoting the client's own packet; the whole quoted TCP
    // header is there, so its checksum is translated too (and stays valid)
    const ext = dp.run('xdp', buildFrame(tcp(CLIENT, 40400, NODE, 30080, { payload: Buffer.alloc(1400) })));
    const natted = parseFrame(ext.out);
    assert.equal(natted.src, NODE);
    r = dp.run('xdp', icmpError('192.168.1.1', NODE, ext.out.subarray(14, 14 + 20 + 20 + 8)));
    assert.deepEqual(icmpView(r.out), { outerSrc: '192.168.1.1', outerDst: CLIENT, innerSrc: CLIENT, innerDst: NODE, innerSport: 40400, innerDport: 30080, ...ok });
    const quotedTcp = r.out.subarray(14 + 28 + 20, 14 + 28 + 20 + 20);
    const pseudo = Buffer.alloc(12);
    pseudo.set(r.out.subarray(14 + 28 + 12, 14 + 28 + 20), 0); pseudo[9] = TCP; pseudo.writeUInt16BE(20 + 1400, 10);
    const orig = buildFrame(tcp(CLIENT, 40400, NODE, 30080, { payload: Buffer.alloc(1400) }));
    assert.equal(quotedTcp.readUInt16BE(16), orig.readUInt16BE(14 + 20 + 16), 'quoted TCP checksum = the one the client sent');

    // a local backend (pod on this node) answers a UDP flow with port unreachable: through tc;
    // the quoted UDP checksum is translated back to the client's
    const q = dp.run('tc', buildFrame(udp(POD, 40500, CIP, 53)));
    assert.equal(parseFrame(q.out).dst, BE_L1);
    r = dp.run('tc', icmpError(BE_L1, POD, q.out.subarray(14, 14 + 28), 3));
    assert.equal(r.verdict, TC_ACT_OK);
    assert.deepEqual(icmpView(r.out), { outerSrc: CIP, outerDst: POD, innerSrc: POD, innerDst: CIP, innerSport: 40500, innerDport: 53, ...ok });
    assert.equal(r.out.readUInt16BE(14 + 28 + 20 + 6), buildFrame(udp(POD, 40500, CIP, 53)).readUInt16BE(14 + 20 + 6), 'quoted UDP checksum = the one the client sent');

    // an error about a flow nobody tracks, and a mangled one, pass untouched
    const stray = icmpError(BE_R1, POD, buildFrame(tcp(POD, 1, BE_R1, 9)).subarray(14, 42));
    assert.ok(dp.run('xdp', stray).out.equals(stray));
    const mangled = icmpError(BE_R1, POD, fwd.out.subarray(14, 14 + 28));
    mangled.writeUInt8(mangled[14 + 28 + 10]! ^ 0xff, 14 + 28 + 10); // quoted IPv4 checksum broken
    assert.ok(dp.run('xdp', mangled).out.equals(mangled));
    assert.deepEqual(statsDelta(s0, dp.stats()), counters({ new_flow: 3, icmp_translated: 4 }));
  });
});

// ---- IPv6 ----

describe('IPv6 datapath fixtures (BPF_PROG_TEST_RUN)', { skip: isRoot ? false : 'needs root (BPF_PROG_TEST_RUN, bpffs)' }, () => {
  const loaded = loadedDataplane();

  for (const fx of FIXTURES6) {
    test(fx.description, fx.todo ? { todo: fx.todo } : {}, () => {
      const dp = loaded.current;
      assert.ok(dp, 'dataplane loaded');
      runFixture(dp, fx);
    });
  }

  test('ICMPv6 errors about translated flows are translated back (packet too big, unreachable, time exceeded), in XDP and in tc', () => {
    const dp = loaded.current;
    assert.ok(dp);
    dp.clearAll(65536);
    dp.writeState({ nodeAddr: NODE, nodeAddr6: NODE6, services: [
      svc6({ svcId: 61, backends: one(611, BE6_R1, 8080) }),
      svc6({ svcId: 62, port: 53, proto: 'UDP', backends: one(621, BE6_L1, 5353, BE_LOCAL) }),
      svc6({ svcId: 63, port: 81, backends: one(631, BE6_L1, 8081, BE_LOCAL) }),
      svc6({ svcId: 64, addr: NODE6, port: 30080, scope: 'EXT', flags: FE_NODEPORT, backends: one(641, BE6_R1, 8080) }),
      svc6({ svcId: 66, addr: NODE6, port: 30053, proto: 'UDP', scope: 'EXT', flags: FE_NODEPORT, backends: one(661, BE6_R2, 5353) }),
    ] });
    const s0 = dp.stats();
    const big = Buffer.from(Array.from({ length: 1400 }, (_, i) => (i * 31) & 0xff));
    /** Sends the client's packet; returns it and the translated packet as it left the node. */
    const flow = (program: Program, spec: FrameSpec, want: Partial<ParsedFrame>) => {
      const sent = frameOf(spec);
      const r = dp!.run(program, sent);
      const got = parseFrame(r.out);
      for (const [k, v] of Object.entries(want)) assert.equal(got[k as keyof ParsedFrame], v, `translated ${k}`);
      return { sent, out: r.out };
    };
    /** Runs an ICMPv6 error quoting `quoteLen` bytes of the translated packet and checks that the
     * output is, byte for byte, the same error built from scratch about the client's own packet
     * (outer source `outerSrc`, to the client): quoted addresses, ports and L4 checksum back to
     * what the client sent, the ICMPv6 checksum valid over the pseudo-header. */
    const translated = (program: Program, f: { sent: Buffer; out: Buffer }, err: { src: string; dst: string; type: number; code: number; rest?: number },
      quoteLen: number, outerSrc: string, client: string) => {
      const input = buildIcmp6Frame({ ...err, body: f.out.subarray(14, 14 + quoteLen) });
      const r = dp!.run(program, input);
      assert.equal(r.verdict, V[program].pass, 'verdict');
      const want = buildIcmp6Frame({ ...err, src: outerSrc, dst: client, body: f.sent.subarray(14, 14 + quoteLen) });
      const g = parseIcmp6Frame(r.out);
      assert.ok(g.icmpChecksumOk, 'ICMPv6 checksum valid (recomputed from scratch over the pseudo-header)');
      assert.deepEqual({ src: g.src, dst: g.dst, type: g.type, code: g.code, rest: g.rest }, { src: outerSrc, dst: client, type: err.type, code: err.code, rest: err.rest ?? 0 });
      const q = g.quote;
      const orig = parseFrame(f.sent);
      assert.deepEqual({ src: ip6Str(q, 8), dst: ip6Str(q, 24), sport: q.readUInt16BE(40), dport: q.readUInt16BE(42) },
        { src: orig.src, dst: orig.dst, sport: orig.sport, dport: orig.dport }, 'quoted tuple = client -> Service');
      const csumAt = l4At(f.sent) - 14 + (orig.proto === TCP ? 16 : 6);
      if (quoteLen >= csumAt + 2) assert.equal(g.quote.readUInt16BE(csumAt), f.sent.readUInt16BE(14 + csumAt), 'quoted L4 checksum = the one the client sent');
      assert.equal(r.out.toString('hex'), want.toString('hex'), 'the error about the client\'s own packet, byte for byte');
    };

    // XDP, NodePort behind SNAT (TCP): a router says "packet too big" to the node's address;
    // the whole TCP header is quoted, so its checksum is translated too.
    const np = flow('xdp', tcp(CLIENT6, 51100, NODE6, 30080, { payload: big }), { src: NODE6, dst: BE6_R1 });
    translated('xdp', np, { src: ROUTER6, dst: NODE6, type: 2, code: 0, rest: 1280 }, 40 + 20 + 64, ROUTER6, CLIENT6);
    // XDP, NodePort behind SNAT (UDP): time exceeded from a router, 8 bytes of UDP quoted (its checksum among them)
    const npu = flow('xdp', udp(CLIENT6, 51101, NODE6, 30053, { payload: big }), { src: NODE6, dst: BE6_R2 });
    translated('xdp', npu, { src: ROUTER6, dst: NODE6, type: 3, code: 0 }, 48, ROUTER6, CLIENT6);
    // XDP, pod -> ClusterIP -> remote backend: the backend itself answers unreachable: the outer
    // source becomes the Service address
    const ci = flow('tc', tcp(POD6, 40300, CIP6, 80, { payload: big }), { src: POD6, dst: BE6_R1 });
    translated('xdp', ci, { src: BE6_R1, dst: POD6, type: 1, code: 1 }, 48, CIP6, POD6);
    // ... and "packet too big" from a router on the way: its address stays
    translated('xdp', ci, { src: ROUTER6, dst: POD6, type: 2, code: 0, rest: 1400 }, 40 + 20 + 8, ROUTER6, POD6);
    // tc, pod -> ClusterIP -> local backend (UDP): the backend's packet too big through its veth
    const cu = flow('tc', udp(POD6, 40301, CIP6, 53, { payload: big }), { src: POD6, dst: BE6_L1 });
    translated('tc', cu, { src: BE6_L1, dst: POD6, type: 2, code: 0, rest: 1280 }, 48, CIP6, POD6);
    // tc, TCP with the whole header quoted, from a router behind a pod's veth (the quoted TCP
    // checksum goes through tc's second store)
    const ct = flow('tc', tcp(POD6, 40302, CIP6, 81, { payload: big }), { src: POD6, dst: BE6_L1 });
    translated('tc', ct, { src: ROUTER_POD6, dst: POD6, type: 2, code: 0, rest: 1280 }, 40 + 20 + 32, ROUTER_POD6, POD6);
    translated('tc', ct, { src: BE6_L1, dst: POD6, type: 1, code: 4 }, 40 + 20 + 32, CIP6, POD6);

    // untouched: about a flow nobody tracks, a quote that is not IPv6, an outer header with an
    // extension header, a quote with an extension header, a type that is no error of the three
    const untouched = [
      buildIcmp6Frame({ src: ROUTER6, dst: POD6, type: 2, code: 0, rest: 1280, body: buildFrame6(tcp(POD6, 1, BE6_R2, 9)).subarray(14, 14 + 48) }),
      buildIcmp6Frame({ src: ROUTER6, dst: NODE6, type: 2, code: 0, rest: 1280, body: edited(np.out, (b) => { b[14] = 0x45; }).subarray(14, 14 + 48) }),
      buildIcmp6Frame({ src: ROUTER6, dst: NODE6, type: 2, code: 0, rest: 1280, body: np.out.subarray(14, 14 + 48), ext: [{ type: 'hop', len: 8 }] }),
      buildIcmp6Frame({ src: ROUTER6, dst: POD6, type: 2, code: 0, rest: 1280,
        body: buildFrame6(tcp(POD6, 40300, BE6_R1, 8080, { ext: [{ type: 'dest', len: 8 }] })).subarray(14, 14 + 56) }),
      buildIcmp6Frame({ src: ROUTER6, dst: NODE6, type: 4, code: 0, rest: 40, body: np.out.subarray(14, 14 + 48) }),
    ];
    for (const [i, f] of untouched.entries()) {
      for (const program of ['xdp', 'tc'] as const) {
        const r = dp.run(program, f);
        assert.equal(r.verdict, V[program].pass, `untouched ${i} via ${program}: verdict`);
        assert.equal(r.out.toString('hex'), f.toString('hex'), `untouched ${i} via ${program}`);
      }
    }
    assert.deepEqual(statsDelta(s0, dp.stats()), counters({ new_flow: 5, icmp_translated: 7 }));
  });

  test('IPv6 sessionAffinity ClientIP (kx_affinity6): 20 new flows from one client reach one backend; 20 clients reach more than one', () => {
    const dp = loaded.current;
    assert.ok(dp);
    dp.clearAll(65536);
    const ids: Record<string, number> = { [BE6_L1]: 671, [BE6_L2]: 672, [BE6_R1]: 673 };
    dp.writeState({ nodeAddr: NODE, nodeAddr6: NODE6, services: [svc6({
      svcId: 67, flags: FE_AFFINITY, affinityTimeout: 600,
      backends: Object.entries(ids).map(([addr, id]) => ({ id, addr, port: 8080 })),
    })] });
    const s0 = dp.stats();
    const t0 = ktimeNs();
    const connect = (client: string, sport: number): string => {
      const input = buildFrame6(tcp(client, sport, CIP6, 80));
      const r = dp!.run('tc', input);
      assert.equal(r.verdict, TC_ACT_OK);
      return verifyPacket(input, r.out, { src: client, sport, dst: { oneOf: Object.keys(ids) }, dport: 8080 })!.dst;
    };
    const affinity6 = (client: string) => {
      const k = Buffer.alloc(affinityKey6.size), v = Buffer.alloc(affinityValue.size);
      affinityKey6.encode({ client, svcId: 67 }, k, 0);
      return dp!.kx.mapLookup(dp!.map(MAPS.affinity6.name), k, v) ? affinityValue.decode(v, 0) : null;
    };
    const reached = new Set(Array.from({ length: 20 }, (_, i) => connect(POD6, 42000 + i)));
    assert.equal(reached.size, 1, `one client reached ${[...reached].join(' ')}`);
    const a = affinity6(POD6);
    assert.ok(a, 'kx_affinity6 entry for the client');
    assert.equal(a.backendId, ids[[...reached][0]!], 'the entry names the backend reached');
    assert.ok(a.lastNs >= t0 && a.lastNs <= ktimeNs(), 'last_ns set by the last flow');
    assert.equal(dp.kx.mapDump(dp.map(MAPS.affinity.name), 1024).count, 0, 'nothing in the IPv4 kx_affinity');
    const many = new Set(Array.from({ length: 20 }, (_, i) => connect(`fd00:244:1::${(0x100 + i).toString(16)}`, 43000)));
    assert.ok(many.size > 1, `20 clients all reached ${[...many].join(' ')}`);
    assert.equal(dp.kx.mapDump(dp.map(MAPS.affinity6.name), 1024).count, 21, 'one kx_affinity6 entry per client');
    assert.deepEqual(statsDelta(s0, dp.stats()), counters({ new_flow: 40 }));
  });

  test('IPv6 randomized: 200 flows (TCP/UDP/SCTP, random clients, ports, payloads, extension headers) and their replies, checksums from scratch', () => {
    const dp = loaded.current;
    assert.ok(dp);
    const seed = Number(process.env.KX_FIXTURE_SEED ?? 0x6b78);
    const rnd = mulberry32(seed ^ 6);
    const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo)); // [lo, hi)
    dp.clearAll(65536);
    const protos = ['TCP', 'UDP', 'SCTP'] as const;
    dp.writeState({
      nodeAddr: NODE, nodeAddr6: NODE6,
      services: protos.flatMap((proto, i) => [
        svc6({ svcId: 70 + i, addr: NODE6, port: 30080, proto, scope: 'EXT', flags: FE_NODEPORT, backends: one(700 + i, BE6_R1, 8080 + i) }),
        svc6({ svcId: 80 + i, proto, backends: one(800 + i, BE6_R2, 9080 + i) }),
      ]),
    });
    const s0 = dp.stats();
    const N = 200;
    let lost = 0;
    const ext = (): Ext6[] => Array.from({ length: int(0, 4) }, () => ({ type: (['hop', 'dest', 'routing'] as const)[int(0, 3)]!, len: 8 * int(1, 9) }))
      .filter((e, i) => e.type !== 'hop' || i === 0);
    for (let i = 0; i < N; i++) {
      dp.clearCt(64);
      const program: Program = rnd() < 0.5 ? 'xdp' : 'tc';
      const pi = int(0, 3);
      const proto = [TCP, UDP, SCTP][pi]!;
      const w = () => int(0, 0x10000).toString(16);
      const client = `2001:db8:${w()}:${w()}::${w()}`;
      const sport = int(1, 65536);
      const o = (): Partial<FrameSpec> => ({
        payload: Buffer.from(Array.from({ length: int(0, 91) }, () => int(0, 256))),
        ext: ext(), tcpFlags: int(0, 256),
      });
      const be = program === 'xdp' ? { addr: BE6_R1, port: 8080 + pi } : { addr: BE6_R2, port: 9080 + pi };
      const fe = program === 'xdp' ? { addr: NODE6, port: 30080 } : { addr: CIP6, port: 80 };
      const ctx = `seed ${seed} flow ${i} (${program} ${proto} ${client}:${sport})`;
      const fwdSpec: FrameSpec = { src: client, dst: fe.addr, sport, dport: fe.port, proto, ...o() };
      if (proto === TCP && ((fwdSpec.tcpFlags ?? 0) & 0x12) !== 0x02) lost++;
      const fwdIn = buildFrame6(fwdSpec);
      const fwd = dp.run(program, fwdIn);
      assert.equal(fwd.verdict, V[program].pass, ctx);
      const out = verifyPacket(fwdIn, fwd.out, program === 'xdp'
        ? { src: NODE6, sport: { range: [SNAT_MIN, SNAT_END] }, dst: be.addr, dport: be.port }
        : { src: client, sport, dst: be.addr, dport: be.port });
      assert.ok(out, ctx);
      const replyIn = buildFrame6({ src: be.addr, dst: out.src, sport: be.port, dport: out.sport, proto, ...o() });
      const reply = dp.run(program, replyIn);
      assert.equal(reply.verdict, V[program].pass, ctx);
      verifyPacket(replyIn, reply.out, { src: fe.addr, sport: fe.port, dst: client, dport: sport });
    }
    assert.deepEqual(statsDelta(s0, dp.stats()), counters({ new_flow: N, reply: N, promoted: N, ct_lost: lost }));
  });
});

/** ICMP destination unreachable, fragmentation needed (3/4, MTU 1400) or another code, quoting `quoted`. */
function icmpError(src: string, dst: string, quoted: Buffer, code = 4): Buffer {
  const f = Buffer.alloc(14 + 20 + 8 + quoted.length);
  buildFrame(udp(src, 1, dst, 1)).copy(f, 0, 0, 34);
  const ip = f.subarray(14, 34);
  ip.writeUInt16BE(20 + 8 + quoted.length, 2);
  ip[6] = 0; ip[9] = 1; // no DF, ICMP
  ip.writeUInt16BE(0, 10);
  ip.writeUInt16BE(checksum(ip), 10);
  const icmp = f.subarray(34);
  icmp[0] = 3; icmp[1] = code;
  if (code === 4) icmp.writeUInt16BE(1400, 6);
  quoted.copy(icmp, 8);
  icmp.writeUInt16BE(checksum(icmp), 2);
  return f;
}

/** A small seeded PRNG, so a failing randomized run can be replayed (KX_FIXTURE_SEED). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('the checker itself', () => {
  const good = buildFrame(tcp(POD, 40200, BE_R1, 8080, { payload: Buffer.from('checked') }));
  const input = buildFrame(tcp(POD, 40200, CIP, 80, { payload: Buffer.from('checked') }));
  const expect: Fields = { src: POD, sport: 40200, dst: BE_R1, dport: 8080 };

  test('accepts a correctly rewritten frame', () => {
    assert.ok(verifyPacket(input, good, expect));
  });
  test('parseFrame flags a corrupted IP checksum', () => {
    const bad = Buffer.from(good);
    bad.writeUInt16BE(bad.readUInt16BE(24) ^ 0x0100, 24);
    assert.equal(parseFrame(bad).ipChecksumOk, false);
    assert.throws(() => verifyPacket(input, bad, expect), /IPv4 header checksum/);
  });
  test('parseFrame flags a corrupted TCP checksum, and a stale one after a rewrite without fix-up', () => {
    const bad = Buffer.from(good);
    bad.writeUInt16BE(bad.readUInt16BE(50) ^ 0x0001, 50);
    assert.equal(parseFrame(bad).l4ChecksumOk, false);
    assert.throws(() => verifyPacket(input, bad, expect), /TCP checksum/);
    const stale = Buffer.from(good);
    input.copy(stale, 50, 50, 52); // the input's L4 checksum: pseudo-header change not applied
    assert.equal(parseFrame(stale).l4ChecksumOk, false);
  });
  test('flags a wrong field, a changed payload byte and a stray byte change', () => {
    assert.throws(() => verifyPacket(input, good, { ...expect, dport: 8081 }), /dport/);
    const ttl = Buffer.from(good);
    ttl[22] = 63; // TTL changed and IP checksum fixed: valid frame, but a stray change
    ttl.writeUInt16BE(0, 24);
    ttl.writeUInt16BE(checksum(ttl.subarray(14, 34)), 24);
    assert.throws(() => verifyPacket(input, ttl, expect), /no byte changed outside/);
    const udpIn = buildFrame(udp(POD, 1, CIP, 53, { udpNoChecksum: true }));
    const udpOut = buildFrame(udp(POD, 1, BE_R1, 53));
    assert.throws(() => verifyPacket(udpIn, udpOut, { src: POD, sport: 1, dst: BE_R1, dport: 53 }), /stays 0/);
  });
  // IPv6: the same checks over the IPv6 pseudo-header, extension headers among the bytes that
  // must not change.
  const in6 = buildFrame6(tcp(POD6, 40200, CIP6, 80, { ext: HOP_DEST, payload: Buffer.from('checked') }));
  const good6 = buildFrame6(tcp(POD6, 40200, BE6_R1, 8080, { ext: HOP_DEST, payload: Buffer.from('checked') }));
  const expect6: Fields = { src: POD6, sport: 40200, dst: BE6_R1, dport: 8080 };
  test('IPv6: accepts a correctly rewritten frame; flags a stale TCP checksum (addresses not folded in)', () => {
    assert.equal(verifyPacket(in6, good6, expect6)!.l4Off, 14 + 40 + 24);
    // the checksum of the frame with only the port rewritten: the address change not folded in
    const at = l4At(good6) + 16;
    const portOnly = buildFrame6(tcp(POD6, 40200, CIP6, 8080, { ext: HOP_DEST, payload: Buffer.from('checked') }));
    const stale = Buffer.from(good6);
    stale.writeUInt16BE(portOnly.readUInt16BE(at), at);
    assert.equal(parseFrame(stale).l4ChecksumOk, false);
    assert.throws(() => verifyPacket(in6, stale, expect6), /over the IPv6 pseudo-header/);
  });
  test('IPv6: flags a changed extension header byte, a changed hop limit and a UDP checksum of 0', () => {
    const opt = Buffer.from(good6);
    opt[14 + 40 + 5] = opt[14 + 40 + 5]! ^ 1; // inside the hop-by-hop option data
    assert.throws(() => verifyPacket(in6, opt, expect6), /no byte changed outside/);
    const hl = Buffer.from(good6);
    hl[14 + 7] = 63;
    assert.throws(() => verifyPacket(in6, hl, expect6), /no byte changed outside/);
    const u = buildFrame6(udp(POD6, 1, BE6_R1, 53));
    u.writeUInt16BE(0, l4At(u) + 6);
    assert.equal(parseFrame(u).l4ChecksumOk, false, 'IPv6 UDP checksum 0 is invalid');
  });
  test('reject6Problem: accepts a correct ICMPv6 port unreachable, flags a bad checksum, quote, code and hop limit', () => {
    const sent = buildFrame6(udp(POD6, 40201, CIP6, 53, { ext: HOP_DEST }));
    const quote = sent.subarray(14, 14 + 40 + 24 + 8);
    const answer = buildIcmp6Frame({ src: CIP6, dst: POD6, type: 1, code: 4, body: quote });
    const swapped = Buffer.concat([sent.subarray(6, 12), sent.subarray(0, 6), answer.subarray(12)]);
    assert.equal(reject6Problem(sent, swapped), null);
    assert.equal(rejectProblem(sent, swapped), null, 'rejectProblem hands IPv6 to reject6Problem');
    assert.match(reject6Problem(sent, answer) ?? '', /Ethernet/);
    const bad = (edit: (b: Buffer) => void) => reject6Problem(sent, edited(swapped, edit));
    assert.match(bad((b) => { b[14 + 40 + 2] = b[14 + 40 + 2]! ^ 1; }) ?? '', /checksum/);
    assert.match(bad((b) => { b[b.length - 1] = b[b.length - 1]! ^ 1; }) ?? '', /checksum|quote/);
    assert.match(bad((b) => { b[14 + 40 + 1] = 3; }) ?? '', /code/);
    assert.match(bad((b) => { b[14 + 7] = 255; }) ?? '', /hop limit/);
    const short = buildIcmp6Frame({ src: CIP6, dst: POD6, type: 1, code: 4, body: quote.subarray(0, 48) });
    assert.match(reject6Problem(sent, Buffer.concat([swapped.subarray(0, 14), short.subarray(14)])) ?? '', /payload length/);
  });
  test('unchanged means byte-identical', () => {
    const flipped = Buffer.from(input);
    flipped.writeUInt8(flipped.readUInt8(flipped.length - 1) ^ 1, flipped.length - 1);
    assert.throws(() => verifyPacket(input, flipped, 'unchanged'), /equal the input/);
  });
});
