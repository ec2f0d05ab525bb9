// What the packet fuzz tests share (fuzz.test.ts for IPv4, fuzz6.test.ts for IPv6): the seeded
// PRNG, generic byte mutations, the environment knobs, and the loop that runs every generated
// frame through one program and holds it to an oracle. The oracle and the generators (what a
// well-formed packet of the family is) stay in each test.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { statsDelta, TC_ACT_REDIRECT, XDP_TX, type Dataplane, type Program, type StatName } from './fixture.js';

export const isRoot = process.getuid?.() === 0;
/** KX_FUZZ_SEED replays a run; KX_FUZZ_CASES sets the frames per program; KX_FUZZ_CASE runs
 * only that case of the sequence (the others are still generated, so it is the same frame). */
export const SEED = Number(process.env.KX_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
export const CASES = Number(process.env.KX_FUZZ_CASES ?? 100_000);
export const ONLY_CASE = process.env.KX_FUZZ_CASE === undefined ? null : Number(process.env.KX_FUZZ_CASE);

/** Under CI=true a run without root fails instead of skipping. */
export function failWithoutRootUnderCi(name: string): void {
  if (!isRoot && process.env.CI === 'true') test(name, () => assert.fail('CI=true requires root'));
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
  /** Mixed into SEED per program, so the two programs see different frames. */
  seedOf?: (program: Program) => number;
}

type Seen = { n: number; translated: number; rejected: number; refused: number };

/** Runs CASES frames (categories in equal blocks, never-valid ones first) through `program` and
 * fails on the first the oracle rejects, printing how to replay it. Conntrack is emptied before,
 * checked empty after the never-valid blocks, and emptied every 1,000 frames after that: the SNAT
 * ports of a NodePort with a remote backend would run out (each held by an unreplied flow for
 * 3 s), a dropped flow is correct then, but not what a fuzz is about. */
export function fuzzProgram(t: TestContext, dp: Dataplane, program: Program, spec: FuzzSpec): void {
  const r = prng(spec.seedOf ? spec.seedOf(program) : SEED ^ (program === 'tc' ? 0x7c : 0));
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
