// A harness around the compiled dataplane for BPF_PROG_TEST_RUN fixtures and the bench:
// loads build/kube_xdp.bpf.o under a private pin root, writes map state through the codecs,
// runs a program on a frame, and reads conntrack and the per-CPU counters back.
import { existsSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { DumpScratch, Libkx } from '../../src/kernel/libkx.js';
import { CT_GC_PROGRAM, SOCKET_HOOKS } from '../../src/dataplane/ebpf/loader.js';
import { parseFrame, SCTP, TCP, type ParsedFrame } from './packet.js';
import { encodeAll, u32Codec, type Codec } from '../../src/dataplane/ebpf/codec.js';
import type { MapIO } from '../../src/dataplane/ebpf/apply.js';
import { Prefilter } from '../../src/dataplane/ebpf/prefilter.js';
import { ownerFileForPins, removeOwnerFile } from '../../src/inspect/owners.js';
import {
  MAPS, STAT_NAMES, STATS_MAP, PROTO_NUMBER, SCOPE_EXT, SCOPE_INT, FE_AFFINITY, roleOf,
  type BackendValue, type CtKey, type CtValue, type FrontendKey, type FrontendValue, type MapRole, type SrcRangeKey,
} from '../../src/dataplane/ebpf/maps.js';

export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
/** KUBE_XDP_BPF_OBJ overrides the object under test (e.g. a deliberately broken build). */
export const KX_OBJ = process.env.KUBE_XDP_BPF_OBJ ?? `${REPO}build/kube_xdp.bpf.o`;
export const EMPTY_OBJ = `${REPO}build/empty.bpf.o`;

export const XDP_DROP = 1;
export const XDP_PASS = 2;
export const XDP_TX = 3;
export const TC_ACT_OK = 0;
export const TC_ACT_SHOT = 2;
export const TC_ACT_REDIRECT = 7;

export type Program = 'xdp' | 'tc';
export const PROGRAM_NAME: Record<Program, string> = { xdp: 'kx_xdp_ext', tc: 'kx_tc_pod' };
export type StatName = (typeof STAT_NAMES)[number];
/** The conntrack tables: flows that have seen a reply, and flows waiting for their first one. */
export const CT_TABLES = ['ct', 'ctNew'] as const;
export type CtTable = (typeof CT_TABLES)[number];
/** bpf_ktime_get_ns()'s clock (CLOCK_MONOTONIC, as libuv's hrtime): for conntrack times. */
export const ktimeNs = (): bigint => process.hrtime.bigint();
export type Stats = Record<StatName, bigint>;

export { ensureBpffs } from '../../src/kernel/mounts.js';

export function uniquePinRoot(prefix: string): string {
  return `/sys/fs/bpf/${prefix}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** Removes a pin root and the owner file a controller's dataplane wrote for it (inspect's
 * names, under /run/kube-xdp). */
export function removePinRoot(pinDir: string): void {
  rmSync(pinDir, { recursive: true, force: true });
  removeOwnerFile(ownerFileForPins(pinDir));
}

/** One backend of a Service as a fixture writes it: its id is the kx_backends key. */
export interface BackendSpec { id: number; addr: string; port: number; flags?: number }

/** One frontend (Service address in one scope) with its slots, backends and reverse NAT. Its
 * family is its address's (IPv6 text has a colon): the entries go to that family's maps. */
export interface ServiceSpec {
  svcId: number;
  addr: string;
  port: number;
  proto: 'TCP' | 'UDP' | 'SCTP';
  scope: 'EXT' | 'INT';
  flags?: number;
  /** Reverse-NAT id; defaults to svcId. The reverse-NAT entry is {addr, port}. */
  revNatId?: number;
  /** Slot i holds backends[i]; count defaults to backends.length (0 = no usable endpoint). */
  backends: BackendSpec[];
  count?: number;
  /** sessionAffinity ClientIP timeout (frontend_value.affinity_timeout); with FE_AFFINITY in
   * flags, every backend is also written to kx_affinity_match. */
  affinityTimeout?: number;
  /** loadBalancerSourceRanges CIDRs, written to kx_src_ranges(6) (flags need FE_SRC_RANGES for
   * the programs to look). */
  srcRanges?: string[];
}

/** nodeAddr: kx_config (or kx_config6 when it is IPv6); nodeAddr6: kx_config6. */
export interface MapState { nodeAddr?: string; nodeAddr6?: string; services: ServiceSpec[] }

/** Is this address IPv6 (text with a colon)? */
export const isV6 = (addr: string): boolean => addr.includes(':');
/** The unspecified address of `addr`'s family, as the codecs decode it. */
export const zeroAddr = (addr: string): string => (isV6(addr) ? '::' : '0.0.0.0');

function encodeOne<T>(codec: Codec<T>, v: T): Buffer {
  const b = Buffer.alloc(codec.size);
  codec.encode(v, b, 0);
  return b;
}

export class Dataplane {
  readonly kx: Libkx;
  readonly pinRoot: string;
  private handle: number | null;
  private readonly fds: Record<string, { fd: number; label: string }> = {};
  private readonly progs: Record<Program, { fd: number; label: string }>;
  private readonly gcProg: { fd: number; label: string };
  readonly nCpus: number;

  private readonly keepPins: boolean;
  /** Dump buffers shared by every dump of this fixture (decoded or deleted before the next). */
  private readonly scratch = new DumpScratch();

  /** Loads the object under a fresh pin root; on any failure the pin root is removed.
   * shared.pinRoot: load on an existing pin root instead (libbpf reuses the maps pinned there
   * by name, e.g. a running controller's), which close() then leaves in place. */
  constructor(objPath = KX_OBJ, pinPrefix = 'kx-fixture', kx = new Libkx(), shared?: { pinRoot: string }) {
    if (!existsSync(objPath)) throw new Error(`${objPath} missing: run make build/kube_xdp.bpf.o build/libkx.so`);
    this.kx = kx;
    this.pinRoot = shared?.pinRoot ?? uniquePinRoot(pinPrefix);
    this.keepPins = shared !== undefined;
    this.handle = null;
    try {
      this.handle = kx.objOpenLoad(objPath, this.pinRoot);
      for (const name of [...Object.values(MAPS).map((m) => m.name), STATS_MAP]) {
        this.fds[name] = { fd: kx.objMapFd(this.handle, name), label: name };
      }
      this.progs = {
        xdp: { fd: kx.objProgFd(this.handle, PROGRAM_NAME.xdp), label: PROGRAM_NAME.xdp },
        tc: { fd: kx.objProgFd(this.handle, PROGRAM_NAME.tc), label: PROGRAM_NAME.tc },
      };
      this.gcProg = { fd: kx.objProgFd(this.handle, CT_GC_PROGRAM), label: CT_GC_PROGRAM };
      this.nCpus = kx.mapInfo(this.map(STATS_MAP)).valueStride / 8;
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** Closes the object and removes the pin root unless it was shared (safe to call twice). */
  close(): void {
    try {
      if (this.handle !== null) this.kx.objClose(this.handle);
    } finally {
      this.handle = null;
      if (!this.keepPins) rmSync(this.pinRoot, { recursive: true, force: true });
    }
  }

  /** The socket hooks on a cgroup (links pinned under the pin root, so close() detaches them). */
  attachSocketHooks(cgroup: string): void {
    if (this.handle === null) throw new Error('fixture closed');
    for (const h of SOCKET_HOOKS) {
      this.kx.attachCgroup({ fd: this.kx.objProgFd(this.handle, h.program), label: h.program }, cgroup, h.attachType, join(this.pinRoot, 'links', `cgroup-${h.hook}`));
    }
  }

  map(name: string): { fd: number; label: string } {
    const m = this.fds[name];
    if (!m) throw new Error(`no map ${name}`);
    return m;
  }

  prog(p: Program): { fd: number; label: string } {
    return this.progs[p];
  }

  // ---- writing state ----

  /** The maps as the applier's MapIO. */
  io(): MapIO {
    return {
      updateBatch: (m, keys, values, n) => { this.kx.mapUpdateBatch(this.map(m), keys, values, n); },
      deleteBatch: (m, keys, n) => { this.kx.mapDeleteBatch(this.map(m), keys, n); },
      dump: (m, _k, _v, max) => this.kx.mapDump(this.map(m), max, this.scratch),
    };
  }

  /** Lets packets to these frontend addresses and from these backend ports past the prefilter,
   * as the controller does before it programs them. */
  allow(frontendAddrs: readonly string[], backendPorts: readonly number[]): void {
    const f = new Prefilter();
    f.readFrom(this.io());
    frontendAddrs.forEach((a) => f.addFrontend(a));
    backendPorts.forEach((p) => f.addBackendPort(p));
    f.writeTo(this.io());
  }

  /** Writes whole services: backends -> slots -> reverse NAT -> frontends, one batch per map
   * (each family's to its own map; slots and affinity matches are shared), then source ranges. */
  writeState(s: MapState): void {
    if (s.nodeAddr !== undefined) this.setConfig(s.nodeAddr);
    if (s.nodeAddr6 !== undefined) this.setConfig(s.nodeAddr6);
    this.allow(s.services.map((x) => x.addr), s.services.flatMap((x) => x.backends.map((b) => b.port)));
    const byFamily = <T>() => ({ v4: [] as T[], v6: [] as T[] });
    const fam = (addr: string) => (isV6(addr) ? 'v6' : 'v4');
    const backends = { v4: new Map<number, BackendValue>(), v6: new Map<number, BackendValue>() };
    const slotKeys: { svcId: number; slot: number }[] = [];
    const slotVals: { backendId: number }[] = [];
    const revKeys = byFamily<number>();
    const revVals = byFamily<{ addr: string; port: number }>();
    const feKeys = byFamily<FrontendKey>();
    const feVals = byFamily<FrontendValue>();
    const matchKeys: { svcId: number; backendId: number }[] = [];
    const ranges = byFamily<SrcRangeKey>();
    for (const svc of s.services) {
      const f = fam(svc.addr);
      svc.backends.forEach((b, i) => {
        if (fam(b.addr) !== f) throw new Error(`backend ${b.addr} of frontend ${svc.addr}: families differ`);
        backends[f].set(b.id, { addr: b.addr, port: b.port, flags: b.flags ?? 0 });
        slotKeys.push({ svcId: svc.svcId, slot: i });
        slotVals.push({ backendId: b.id });
        if ((svc.flags ?? 0) & FE_AFFINITY) matchKeys.push({ svcId: svc.svcId, backendId: b.id });
      });
      const revNatId = svc.revNatId ?? svc.svcId;
      revKeys[f].push(revNatId);
      revVals[f].push({ addr: svc.addr, port: svc.port });
      feKeys[f].push(frontendKeyOf(svc));
      feVals[f].push({
        svcId: svc.svcId, count: svc.count ?? svc.backends.length, flags: svc.flags ?? 0,
        affinityTimeout: svc.affinityTimeout ?? 0, revNatId,
      });
      for (const cidr of svc.srcRanges ?? []) {
        const [addr, len] = cidr.split('/') as [string, string];
        if (fam(addr) !== f) throw new Error(`source range ${cidr} of frontend ${svc.addr}: families differ`);
        ranges[f].push({ prefixlen: 32 + Number(len), svcId: svc.svcId, addr });
      }
    }
    for (const f of ['v4', 'v6'] as const) {
      const [be, rev, fe, sr] = f === 'v6'
        ? [MAPS.backends6, MAPS.revnat6, MAPS.frontends6, MAPS.srcRanges6]
        : [MAPS.backends, MAPS.revnat, MAPS.frontends, MAPS.srcRanges];
      this.updateBatch(be.name, u32Codec, be.value, [...backends[f].keys()], [...backends[f].values()]);
      if (f === 'v4') this.updateBatch(MAPS.slots.name, MAPS.slots.key, MAPS.slots.value, slotKeys, slotVals);
      this.updateBatch(rev.name, u32Codec, rev.value, revKeys[f], revVals[f]);
      this.updateBatch(fe.name, fe.key, fe.value, feKeys[f], feVals[f]);
      this.updateBatch(sr.name, sr.key, sr.value, ranges[f], ranges[f].map(() => 1));
    }
    this.updateBatch(MAPS.affinityMatch.name, MAPS.affinityMatch.key, MAPS.affinityMatch.value, matchKeys, matchKeys.map(() => 1));
  }

  updateBatch<K, V>(mapName: string, kc: Codec<K>, vc: Codec<V>, keys: K[], values: V[]): void {
    if (keys.length === 0) return;
    const n = this.kx.mapUpdateBatch(this.map(mapName), encodeAll(kc, keys), encodeAll(vc, values), keys.length);
    if (n !== keys.length) throw new Error(`${mapName}: batch wrote ${n} of ${keys.length}`);
  }

  /** kx_config's node address (flags 0), or kx_config6's for an IPv6 address. */
  setConfig(nodeAddr: string): void {
    if (isV6(nodeAddr)) {
      this.kx.mapUpdate(this.map(MAPS.config6.name), encodeOne(u32Codec, 0), encodeOne(MAPS.config6.value, { nodeAddr }));
      return;
    }
    this.kx.mapUpdate(this.map(MAPS.config.name), encodeOne(u32Codec, 0),
      encodeOne(MAPS.config.value, { nodeAddr, flags: 0 }));
  }

  /** One frontend, in the map of its address's family. */
  setFrontend(key: FrontendKey, value: FrontendValue): void {
    this.allow([key.addr], []);
    const fe = MAPS[roleOf('frontends', key.addr) as 'frontends' | 'frontends6'];
    this.kx.mapUpdate(this.map(fe.name), encodeOne(fe.key, key), encodeOne(fe.value, value));
  }

  setSlot(svcId: number, slot: number, backendId: number): void {
    this.kx.mapUpdate(this.map(MAPS.slots.name), encodeOne(MAPS.slots.key, { svcId, slot }), encodeOne(MAPS.slots.value, { backendId }));
  }

  deleteSlot(svcId: number, slot: number): boolean {
    return this.kx.mapDelete(this.map(MAPS.slots.name), encodeOne(MAPS.slots.key, { svcId, slot }));
  }

  /** Deletes backend `id` from the map of `family`, or from both (ids are one space for both
   * families); true when an entry was deleted. */
  deleteBackend(id: number, family?: 4 | 6): boolean {
    let deleted = false;
    if (family !== 6) deleted = this.kx.mapDelete(this.map(MAPS.backends.name), encodeOne(u32Codec, id)) || deleted;
    if (family !== 4) deleted = this.kx.mapDelete(this.map(MAPS.backends6.name), encodeOne(u32Codec, id)) || deleted;
    return deleted;
  }

  /** Empties one hash map (dump + batch delete); returns how many entries it held.
   * max bounds the dump buffer (default: the map's max_entries; more entries throw ENOSPC). */
  clearMap(name: string, max?: number): number {
    const m = this.map(name);
    const d = this.kx.mapDump(m, max, this.scratch);
    if (d.count > 0) this.kx.mapDeleteBatch(m, d.keys, d.count);
    return d.count;
  }

  /** Empties both conntrack tables (established and new flows) of both families. */
  clearCt(max?: number): number {
    return [MAPS.ct, MAPS.ctNew, MAPS.ct6, MAPS.ctNew6].reduce((n, m) => n + this.clearMap(m.name, max), 0);
  }

  /** Every map a fixture writes emptied (both families; affinity and source ranges too) and
   * both configs zeroed: the state before any fixture. The prefilter bits stay (as in the
   * controller, they are only ever set). */
  clearAll(max?: number): void {
    const roles: MapRole[] = [
      'frontends', 'slots', 'backends', 'revnat', 'ct', 'ctNew',
      'frontends6', 'backends6', 'revnat6', 'ct6', 'ctNew6',
      'affinity', 'affinity6', 'affinityMatch', 'srcRanges', 'srcRanges6',
    ];
    for (const r of roles) this.clearMap(MAPS[r].name, max);
    this.setConfig('0.0.0.0');
    this.setConfig('::');
  }

  // ---- reading state ----

  /** A conntrack entry from either table of the key's family; `table` says which (kx_ct(6) or
   * kx_ct_new(6)). */
  ctLookup(key: CtKey): (CtValue & { table: CtTable }) | null {
    for (const table of CT_TABLES) {
      const m = MAPS[roleOf(table, key.saddr) as CtTable | 'ct6' | 'ctNew6'];
      const v = Buffer.alloc(m.value.size);
      if (this.kx.mapLookup(this.map(m.name), encodeOne(m.key, key), v)) return { ...m.value.decode(v, 0), table };
    }
    return null;
  }

  /** Every conntrack entry of both tables, IPv4's then IPv6's (max bounds each dump buffer, as
   * in clearMap); `family` keeps one family's. */
  ctEntries(max?: number, family?: 4 | 6): { key: CtKey; value: CtValue; table: CtTable }[] {
    const out: { key: CtKey; value: CtValue; table: CtTable }[] = [];
    for (const fam of [4, 6] as const) {
      if (family !== undefined && family !== fam) continue;
      for (const table of CT_TABLES) {
        const m = MAPS[fam === 6 ? roleOf(table, '::') as 'ct6' | 'ctNew6' : table];
        const d = this.kx.mapDump(this.map(m.name), max, this.scratch);
        for (let i = 0; i < d.count; i++) {
          out.push({ key: m.key.decode(d.keys, i * m.key.size), value: m.value.decode(d.values, i * m.value.size), table });
        }
      }
    }
    return out;
  }

  /** The per-CPU counters of kx_stats, summed over CPUs. */
  stats(): Stats {
    const m = this.map(STATS_MAP);
    const v = Buffer.alloc(this.nCpus * 8);
    const out = {} as Stats;
    STAT_NAMES.forEach((name, i) => {
      if (!this.kx.mapLookup(m, encodeOne(u32Codec, i), v)) throw new Error(`kx_stats[${i}] missing`);
      let sum = 0n;
      for (let c = 0; c < this.nCpus; c++) sum += v.readBigUInt64LE(c * 8);
      out[name] = sum;
    });
    return out;
  }

  // ---- running ----

  /** BPF_PROG_TEST_RUN: the frame as the program left it, and its verdict. */
  /** One conntrack garbage collection (kx_ct_gc), as the controller runs it. */
  gc(): void {
    this.kx.progTestRun(this.gcProg, Buffer.alloc(64));
  }

  run(p: Program, frame: Buffer, repeat = 1): { verdict: number; out: Buffer; durationNs: number } {
    const r = this.kx.progTestRun(this.progs[p], frame, repeat);
    return { verdict: r.retval, out: Buffer.from(r.data), durationNs: r.durationNs };
  }
}

export function frontendKeyOf(svc: Pick<ServiceSpec, 'addr' | 'port' | 'proto' | 'scope'>): FrontendKey {
  return { addr: svc.addr, port: svc.port, proto: PROTO_NUMBER[svc.proto], scope: svc.scope === 'EXT' ? SCOPE_EXT : SCOPE_INT };
}

export function statsDelta(before: Stats, after: Stats): Record<StatName, number> {
  const d = {} as Record<StatName, number>;
  for (const n of STAT_NAMES) d[n] = Number(after[n] - before[n]);
  return d;
}

// ---- checking one output packet ----

/** An expected field: exact, one of several (random backend choice), or in [lo, hi). */
export type Match = number | string | { oneOf: readonly (number | string)[] } | { range: readonly [number, number] };
export interface Fields { src: Match; dst: Match; sport: Match; dport: Match }

function matches(want: Match, got: number | string): boolean {
  if (typeof want === 'object') {
    if ('oneOf' in want) return want.oneOf.includes(got);
    return typeof got === 'number' && got >= want.range[0] && got < want.range[1];
  }
  return want === got;
}

/** Byte offsets a NAT may change: IPv4 checksum (IPv6 has none), addresses, ports, L4 checksum. */
function rewritableOffsets(input: Buffer): Set<number> {
  const p = parseFrame(input);
  const l4 = p.l4Off;
  const csum = l4 + (p.proto === TCP ? 16 : p.proto === SCTP ? 8 : 6);
  const csumLen = p.proto === SCTP ? 4 : 2; // SCTP's CRC32c is 4 bytes
  const ip = p.family === 6 ? Array.from({ length: 32 }, (_, i) => 22 + i) : [24, 25, 26, 27, 28, 29, 30, 31, 32, 33];
  return new Set([...ip, l4, l4 + 1, l4 + 2, l4 + 3, ...Array.from({ length: csumLen }, (_, i) => csum + i)]);
}

/** Checks one output against its expectation; throws AssertionError naming what differs. */
export function verifyPacket(input: Buffer, out: Buffer, expect: 'unchanged' | Fields, l4Checksum?: number): ParsedFrame | null {
  if (expect === 'unchanged') {
    assert.equal(out.toString('hex'), input.toString('hex'), 'output bytes must equal the input bytes');
    return null;
  }
  assert.equal(out.length, input.length, 'frame length unchanged');
  const got = parseFrame(out);
  const sent = parseFrame(input);
  assert.ok(sent.ipChecksumOk && sent.l4ChecksumOk, 'fixture input has valid checksums');
  for (const f of ['src', 'dst', 'sport', 'dport'] as const) {
    assert.ok(matches(expect[f], got[f]), `${f}: expected ${JSON.stringify(expect[f])}, got ${JSON.stringify(got[f])}`);
  }
  assert.equal(got.proto, sent.proto, 'protocol unchanged');
  assert.equal(got.family, sent.family, 'family unchanged');
  assert.deepEqual(got.ext, sent.ext, 'IPv6 extension headers unchanged');
  assert.ok(got.ipChecksumOk, 'IPv4 header checksum valid (recomputed from scratch)');
  assert.ok(got.l4ChecksumOk, `${got.proto === TCP ? 'TCP' : got.proto === SCTP ? 'SCTP (CRC32c)' : 'UDP'} checksum valid (recomputed from scratch${got.family === 6 ? ' over the IPv6 pseudo-header' : ''}): field 0x${got.l4Checksum.toString(16)}`);
  if (sent.proto !== TCP && sent.proto !== SCTP && sent.l4Checksum === 0) assert.equal(got.l4Checksum, 0, 'UDP checksum 0 (none) stays 0');
  if (l4Checksum !== undefined) assert.equal(got.l4Checksum, l4Checksum, `L4 checksum field 0x${l4Checksum.toString(16)}`);
  assert.deepEqual(got.payload, sent.payload, 'payload unchanged');
  const allowed = rewritableOffsets(input);
  const stray: number[] = [];
  for (let i = 0; i < input.length; i++) if (input[i] !== out[i] && !allowed.has(i)) stray.push(i);
  assert.deepEqual(stray, [], 'no byte changed outside addresses, ports and checksums (options, extension headers, TTL / hop limit, flags, padding, payload)');
  return got;
}

