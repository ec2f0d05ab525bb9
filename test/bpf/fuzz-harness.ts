// What the packet fuzz tests share (fuzz.test.ts for IPv4, fuzz6.test.ts for IPv6): the seeded
// PRNG, generic byte mutations, the environment knobs, and the loop that runs every generated
// frame through one program and holds it to an oracle. The oracle and the generators (what a
// well-formed packet of the family is) stay in each test.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import {
  Dataplane, ensureBpffs, statsDelta, TC_ACT_OK, TC_ACT_REDIRECT, XDP_PASS, XDP_TX, type MapState, type Program, type ServiceSpec, type StatName,
} from './fixture.js';
import { parseFrame, rejectProblem, SCTP, TCP, UDP } from './packet.js';
import { BE_LOCAL, FE_NODEPORT, FE_REJECT, PROTO_NUMBER, SNAT_PORTS } from '../../src/dataplane/ebpf/maps.js';

export const isRoot = process.getuid?.() === 0;
/** KX_FUZZ_SEED replays a run; KX_FUZZ_CASES sets the frames per program; KX_FUZZ_CASE runs
 * only that case of the sequence (the others are still generated, so it is the same frame). */
export const SEED = Number(process.env.KX_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
export const CASES = Number(process.env.KX_FUZZ_CASES ?? 100_000);
export const ONLY_CASE = process.env.KX_FUZZ_CASE === undefined ? null : Number(process.env.KX_FUZZ_CASE);


/** The Services of both fuzz tests, in one family's addresses: a ClusterIP (internal scope:
 * tc) and NodePorts on the node address (external scope: XDP) over TCP, UDP and SCTP, to a
 * remote backend and a local one, and two REJECT frontends. One backend per frontend, so a
 * translation is determined by the frontend alone. */
export function fuzzServices(a: { clusterIp: string; node: string; remote: string; local: string }): ServiceSpec[] {
  return [
    { svcId: 1, addr: a.clusterIp, port: 80, proto: 'TCP', scope: 'INT', backends: [{ id: 1, addr: a.remote, port: 8080 }] },
    { svcId: 2, addr: a.clusterIp, port: 53, proto: 'UDP', scope: 'INT', backends: [{ id: 2, addr: a.remote, port: 5353 }] },
    { svcId: 3, addr: a.node, port: 30080, proto: 'TCP', scope: 'EXT', flags: FE_NODEPORT, backends: [{ id: 3, addr: a.local, port: 8080, flags: BE_LOCAL }] },
    { svcId: 4, addr: a.node, port: 30053, proto: 'UDP', scope: 'EXT', flags: FE_NODEPORT, backends: [{ id: 4, addr: a.local, port: 5353, flags: BE_LOCAL }] },
    { svcId: 5, addr: a.node, port: 30081, proto: 'TCP', scope: 'EXT', flags: FE_NODEPORT, backends: [{ id: 5, addr: a.remote, port: 8080 }] },
    // no endpoints: kube-proxy's REJECT, an ICMP(v6) port unreachable built from the packet
    { svcId: 6, addr: a.node, port: 30082, proto: 'TCP', scope: 'EXT', flags: FE_NODEPORT | FE_REJECT, backends: [] },
    { svcId: 7, addr: a.clusterIp, port: 54, proto: 'UDP', scope: 'INT', flags: FE_REJECT, backends: [] },
    // SCTP: its CRC32c is updated incrementally when the port changes
    { svcId: 8, addr: a.clusterIp, port: 36412, proto: 'SCTP', scope: 'INT', backends: [{ id: 8, addr: a.remote, port: 38412 }] },
    { svcId: 9, addr: a.node, port: 30412, proto: 'SCTP', scope: 'EXT', flags: FE_NODEPORT, backends: [{ id: 9, addr: a.remote, port: 36412 }] },
  ];
}

/** Each frontend with its protocol number and the program whose scope it is in. */
export const frontendsOf = (state: MapState) =>
  state.services.map((s) => ({ ...s, protoNum: PROTO_NUMBER[s.proto], program: (s.scope === 'INT' ? 'tc' : 'xdp') as Program }));

/** Why the L4 header at frame offset l4, with l4len bytes of IP payload from it, is malformed
 * (TCP data offset, SCTP common + chunk header, UDP length = IP payload), or null. */
export function l4Problem(f: Buffer, l4: number, l4len: number, proto: number): string | null {
  if (proto === TCP) {
    if (l4len < 20) return 'TCP header cut';
    const doff = (f[l4 + 12]! >> 4) * 4;
    if (doff < 20 || doff > l4len) return 'bad TCP data offset';
  } else if (proto === SCTP) {
    if (l4len < 16) return 'SCTP header and chunk header cut';
  } else {
    if (l4len < 8) return 'UDP header cut';
    if (f.readUInt16BE(l4 + 4) !== l4len) return 'bad UDP length';
  }
  return null;
}

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
export function prng(seed: number) {
  let s = seed >>> 0 || 1;
  const next = () => { s = (s + 0x6d2b79f5) >>> 0; let t = s; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32; };
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo)); // [lo, hi)
  return { next, int, pick: <T>(xs: readonly T[]): T => xs[int(0, xs.length)]! };
}
export type Rng = ReturnType<typeof prng>;

/** n random bytes. */
export const randomBytes = (r: Rng, n: number): Buffer => Buffer.from(Array.from({ length: n }, () => r.int(0, 256)));

/** Overwrites 1 to maxCount - 1 random bytes at offsets [from, f.length) in place: with a random
 * value, or (when `interesting` is given, half the time) one of those values. */
export function mutateBytes(r: Rng, f: Buffer, from: number, maxCount = 5, interesting?: readonly number[]): Buffer {
  if (f.length <= from) return f;
  for (let k = r.int(1, maxCount); k > 0; k--) {
    const at = r.int(from, f.length);
    f[at] = interesting && r.next() < 0.5 ? r.pick(interesting) : r.int(0, 256);
  }
  return f;
}

/** test_run refuses frames shorter than an Ethernet header, and for skb programs shorter than
 * the IPv4 / IPv6 header their EtherType announces: no such frame reaches the programs. */
export function refusedByTestRun(frame: Buffer, program: Program): boolean {
  const type = frame.length >= 14 ? frame.readUInt16BE(12) : 0;
  return frame.length < 14 || (program === 'tc' && ((type === 0x0800 && frame.length < 34) || (type === 0x86dd && frame.length < 54)));
}

/** What a program must do with a frame, as a family's oracle states it. nat: the L4 header at
 * frame offset l4; the destination becomes dst:dport; with snat the source becomes the node
 * address and a port of the SNAT range. */
export type Expect = { kind: 'untouched'; why: string } | { kind: 'reject' }
  | { kind: 'nat'; l4: number; proto: number; dst: string; dport: number; snat: boolean };

/** Where a family keeps what a translation may change. */
export interface FamilyLayout {
  srcAt: number; dstAt: number; addrLen: number;
  /** The address at a frame offset, as text comparable with Expect's dst and `node`. */
  text: (b: Buffer, at: number) => string;
  /** The SNAT source address. */
  node: string;
  /** Other bytes a translation may change (IPv4's header checksum). */
  alsoChanged?: readonly number[];
  /** What is wrong with a translated frame's IP header (IPv4: its checksum), or null. */
  headerProblem?: (out: Buffer) => string | null;
}

/** The check of one run against a family's `expected`: untouched byte for byte; or rejected
 * (XDP_TX / TC_ACT_REDIRECT) with a valid ICMP(v6) port unreachable (rejectProblem); or
 * translated exactly: the destination, the source (SNAT) or not, no other byte changed, the L4
 * checksum (recomputed from scratch by parseFrame: a UDP 0 is valid in IPv4 only) valid exactly
 * when it was, and a UDP checksum of 0 left 0. */
export function translationOracle(expected: (f: Buffer, p: Program) => Expect, fam: FamilyLayout) {
  const { srcAt, dstAt, addrLen } = fam;
  const range = (at: number, n: number) => Array.from({ length: n }, (_, i) => at + i);
  return (input: Buffer, out: Buffer, verdict: number, program: Program): string | null => {
    const pass = program === 'xdp' ? XDP_PASS : TC_ACT_OK;
    const e = expected(input, program);
    if (e.kind === 'reject') {
      const want = program === 'xdp' ? XDP_TX : TC_ACT_REDIRECT;
      if (verdict !== want) return `verdict ${verdict}, expected ${want} (reject)`;
      const bad = rejectProblem(input, out);
      return bad ? `reject: ${bad}` : null;
    }
    if (verdict !== pass) return `verdict ${verdict}, expected pass (${e.kind === 'untouched' ? e.why : 'translation'})`;
    if (e.kind === 'untouched') return out.equals(input) ? null : `rewritten although ${e.why}`;
    if (out.length !== input.length) return `length ${out.length} != ${input.length}`;
    const csum = e.proto === TCP ? range(e.l4 + 16, 2) : e.proto === SCTP ? range(e.l4 + 8, 4) : range(e.l4 + 6, 2);
    const changed = new Set<number>([...range(dstAt, addrLen), e.l4 + 2, e.l4 + 3, ...csum, ...(fam.alsoChanged ?? [])]);
    if (e.snat) [...range(srcAt, addrLen), e.l4, e.l4 + 1].forEach((i) => changed.add(i));
    for (let i = 0; i < input.length; i++) if (!changed.has(i) && out[i] !== input[i]) return `byte ${i} changed (${input[i]} -> ${out[i]})`;
    const dst = fam.text(out, dstAt), dport = out.readUInt16BE(e.l4 + 2);
    if (dst !== e.dst || dport !== e.dport) return `dst ${dst}:${dport}, expected ${e.dst}:${e.dport}`;
    if (e.snat) {
      const src = fam.text(out, srcAt), sport = out.readUInt16BE(e.l4);
      if (src !== fam.node || sport < SNAT_PORTS.min || sport > SNAT_PORTS.max) return `SNAT source ${src}:${sport}`;
    } else if (!out.subarray(srcAt, srcAt + addrLen).equals(input.subarray(srcAt, srcAt + addrLen)) || out.readUInt16BE(e.l4) !== input.readUInt16BE(e.l4)) return 'source changed without SNAT';
    const header = fam.headerProblem?.(out);
    if (header) return header;
    if (e.proto === UDP && input.readUInt16BE(e.l4 + 6) === 0 && out.readUInt16BE(e.l4 + 6) !== 0) return 'UDP checksum 0 (none) was filled in';
    const before = parseFrame(input).l4ChecksumOk, after = parseFrame(out).l4ChecksumOk;
    if (before !== after) return `L4 checksum ${before ? 'broken' : 'repaired'} by the translation`;
    return null;
  };
}

export type Generator = (r: Rng, p: Program) => Buffer;
/** What a category's frames must add to the counters: 'all' = one per frame run, or a number. */
export type Counts = Partial<Record<StatName, 'all' | number>>;

export interface FuzzSpec {
  categories: Record<string, Generator>;
  /** Categories that hold no well-formed packet at all: run first, they must leave conntrack
   * (both families' tables) empty. */
  neverValid: ReadonlySet<string>;
  /** The oracle: a failure text, or null. */
  check: (input: Buffer, out: Buffer, verdict: number, program: Program) => string | null;
  /** Counter deltas required of a whole category (checked when every frame of it ran). */
  counts?: Record<string, Counts>;
}

type Seen = { n: number; translated: number; rejected: number; refused: number };

/** Runs CASES frames (categories in equal blocks, never-valid ones first) through `program` and
 * fails on the first the oracle rejects, printing how to replay it. Conntrack is emptied before,
 * checked empty after the never-valid blocks, and emptied every 1,000 frames after that: the SNAT
 * ports of a NodePort with a remote backend would run out (each held by an unreplied flow for
 * 3 s), a dropped flow is correct then, but not what a fuzz is about. */
export function fuzzProgram(t: TestContext, dp: Dataplane, program: Program, spec: FuzzSpec): void {
  const r = prng(SEED ^ (program === 'tc' ? 0x7c : 0));
  const names = Object.keys(spec.categories);
  const order = [...names.filter((n) => spec.neverValid.has(n)), ...names.filter((n) => !spec.neverValid.has(n))];
  const seen: Record<string, Seen> = {};
  const reject = program === 'xdp' ? XDP_TX : TC_ACT_REDIRECT;
  const replay = (i: number) => `replay: KX_FUZZ_SEED=${SEED} KX_FUZZ_CASE=${i}`;
  let block = null as { cat: string; before: ReturnType<Dataplane['stats']> } | null; // set in closeBlock's closure too
  const closeBlock = () => {
    if (!block) return;
    const want = spec.counts?.[block.cat];
    if (want) {
      const d = statsDelta(block.before, dp.stats());
      const ran = seen[block.cat] ? seen[block.cat]!.n - seen[block.cat]!.refused : 0;
      for (const [name, n] of Object.entries(want) as [StatName, 'all' | number][]) {
        const expect = n === 'all' ? ran : n;
        assert.equal(d[name], expect, `${program} ${block.cat}: counter ${name} ${d[name]}, expected ${expect} (seed ${SEED})`);
      }
    }
    block = null;
  };
  dp.clearCt(1 << 20);
  let ctChecked = false;
  for (let i = 0; i < CASES; i++) {
    const cat = order[Math.floor((i * order.length) / CASES)]!;
    if (block?.cat !== cat) {
      closeBlock();
      block = { cat, before: dp.stats() };
    }
    if (!ctChecked && !spec.neverValid.has(cat)) {
      const left = dp.ctEntries(1 << 20);
      assert.equal(left.length, 0, `malformed frames created conntrack entries: ${JSON.stringify(left.slice(0, 2).map((e) => e.key))}`);
      ctChecked = true;
    }
    if (ctChecked && i % 1000 === 0) dp.clearCt(1 << 20);
    const frame = spec.categories[cat]!(r, program);
    if (ONLY_CASE !== null && i !== ONLY_CASE) continue;
    const s = (seen[cat] ??= { n: 0, translated: 0, rejected: 0, refused: 0 });
    s.n++;
    let out: { verdict: number; out: Buffer };
    try {
      out = dp.run(program, frame);
    } catch (e) {
      if ((e as { code?: string }).code === 'EINVAL' && refusedByTestRun(frame, program)) { s.refused++; continue; }
      throw new Error(`${(e as Error).message} on ${frame.toString('hex')} (${replay(i)})`);
    }
    const why = spec.check(frame, out.out, out.verdict, program);
    if (why !== null) {
      assert.fail(`${program} case ${i} (${cat}): ${why}\n  ${replay(i)}\n  in:  ${frame.toString('hex')}\n  out: ${out.out.toString('hex')}`);
    }
    if (out.verdict === reject) s.rejected++;
    else if (!out.out.equals(frame)) s.translated++;
  }
  closeBlock();
  t.diagnostic(`seed ${SEED}: ${Object.entries(seen).map(([k, v]) => `${k} ${v.n} (${v.translated} translated, ${v.rejected} rejected${v.refused ? `, ${v.refused} refused by test_run` : ''})`).join('; ')}`);
  if (ONLY_CASE === null) {
    assert.ok(seen['valid Service packet']!.translated > 0, 'some packets were translated');
    assert.ok(seen['valid Service packet']!.rejected > 0, 'some packets were rejected');
  }
}

/** The fuzz test of one family: `state` loaded on a fixture of its own (pin dir removed after),
 * then fuzzProgram for XDP and tc. Needs root; under CI=true a run without root fails. */
export function describeFuzz(name: string, pinPrefix: string, state: MapState, spec: FuzzSpec): void {
  if (!isRoot && process.env.CI === 'true') test(name, () => assert.fail('CI=true requires root'));
  describe(`${name}: ${CASES} frames per program (seed ${SEED})`, { skip: isRoot ? false : 'needs root (BPF_PROG_TEST_RUN, bpffs)' }, () => {
    let dp: Dataplane | null = null;
    before(() => { ensureBpffs(); dp = new Dataplane(undefined, pinPrefix); dp.writeState(state); });
    after(() => dp?.close());

    for (const program of ['xdp', 'tc'] as const) {
      test(`${program}: every frame untouched, translated exactly or rejected`, (t) => {
        assert.ok(dp);
        fuzzProgram(t, dp, program, spec);
      });
    }
  });
}
