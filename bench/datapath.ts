// Datapath benchmark: ns/packet of kx_xdp_ext under BPF_PROG_TEST_RUN, for an established
// flow and for new flows, at 1 / 1,000 / 10,000 / 100,000 Services (3 backends each), beside
// an empty XDP program (build/empty.bpf.o, kx_empty_xdp) measured the same way.
//
// How (test_run reruns the program on the SAME buffer, and a rewrite persists between
// repetitions — checked below before anything is measured):
//  - established: one call with repeat = ESTABLISHED_REPEAT on a frame that ping-pongs between
//    two frontends whose translations map into each other (A = VIP:80 -> B = 172.16.1.1:8080,
//    and a frontend keyed at B:8080 -> A), so after two priming runs every repetition is an
//    established-flow hit with a real rewrite. The counters must show `established` = repeat.
//  - new flow: NEW_FLOW_CALLS calls with repeat = 1, each with a distinct source address/port
//    and a random Service, so every packet misses conntrack; the kernel's duration then
//    includes its timer overhead, so the baseline is measured the same way and subtracted.
//    kx_ct is emptied every CT_CLEAR_EVERY calls (outside the timed region) so it never fills.
//  - established, repeat=1 (extra): the same NEW_FLOW_CALLS calls cycling over ESTABLISHED_FLOWS
//    flows created beforehand, so an established hit is compared with a new flow on equal
//    terms (same timer overhead, conntrack no longer hot in the cache as it is under repeat).
// A timing is a number to look at, not a pass/fail; correctness checks (counters, verdicts)
// do fail the run. Results: bench/results/datapath.json and a table on stdout.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { cpus, release } from 'node:os';
import { Libkx } from '../src/kernel/libkx.js';
import { Dataplane, EMPTY_OBJ, KX_OBJ, REPO, XDP_PASS, ensureBpffs, statsDelta, uniquePinRoot, type ServiceSpec, type Stats } from '../test/bpf/fixture.js';
import { buildFrame, checksum, parseFrame, TCP } from '../test/bpf/packet.js';

const SERVICE_COUNTS = [1, 1_000, 10_000, 100_000];
const BACKENDS_PER_SERVICE = 3;
/** Distinct backends at most: kx_backends holds 262,144 (KX_MAX_BACKENDS), fewer than
 * 100k × 3, so at 100k Services backends are shared (as pods behind several Services are:
 * backend ids are per address:port). Up to 10k Services every backend is distinct. */
const BACKEND_POOL = 200_000;
const ESTABLISHED_REPEAT = 2_000_000;
const ESTABLISHED_TRIALS = 3; // median of
const NEW_FLOW_CALLS = 1_000_000;
/** Established flows revisited by the repeat=1 established measurement. */
const ESTABLISHED_FLOWS = 100_000;
const CALL_TRIALS = 3; // median of, each NEW_FLOW_CALLS calls
const WARMUP_CALLS = 20_000;
const CT_CLEAR_EVERY = 200_000;
const RESULTS = `${REPO}bench/results/datapath.json`;

const A_VIP = '172.16.0.1', A_PORT = 80;
const B_ADDR = '172.16.1.1', B_PORT = 8080;
const CLIENT = '100.64.0.1';

const ipOf = (n: number): string => `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
const VIP_BASE = 0x0a600001; // 10.96.0.1
const BACKEND_BASE = 0x0a800001; // 10.128.0.1
const CLIENT_BASE = 0x64400001; // 100.64.0.1

// ---- many packets per FFI call ----

const CHUNK = 50_000; // frames per kx_prog_test_run_each call (divides CT_CLEAR_EVERY)

/** Runs `calls` packets once each; frame k is the template with fill(frame, k) applied.
 * beforeChunk(k) runs outside the timed region. Durations are the kernel's. */
function runEach(kx: Libkx, prog: { fd: number; label: string }, template: Buffer, calls: number,
  fill: (frame: Buffer, k: number) => void, expect: number, beforeChunk?: (k: number) => void): { ns: number; matched: number } {
  const size = template.length;
  const chunk = Buffer.alloc(size * CHUNK);
  let total = 0;
  let matched = 0;
  for (let k0 = 0; k0 < calls; k0 += CHUNK) {
    beforeChunk?.(k0);
    const n = Math.min(CHUNK, calls - k0);
    for (let i = 0; i < n; i++) {
      const f = chunk.subarray(i * size, (i + 1) * size);
      template.copy(f);
      fill(f, k0 + i);
    }
    const r = kx.progTestRunEach(prog, chunk, size, n, expect);
    total += r.totalNs;
    matched += r.matched;
  }
  return { ns: total / calls, matched };
}

// ---- scenarios ----

interface Row {
  services: number;
  mode: 'established' | 'established_calls' | 'new_flow';
  repeat: number;
  calls: number;
  ns_per_packet: number;
  baseline_ns: number;
  net_ns: number;
  counters: Record<string, number>;
  /** Per-trial ns/packet; ns_per_packet is their median. */
  trials_ns: number[];
  fill_ms?: number;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d;

function services(n: number): ServiceSpec[] {
  const out: ServiceSpec[] = [];
  for (let i = 0; i < n; i++) {
    const backends = [];
    for (let k = 0; k < BACKENDS_PER_SERVICE; k++) {
      const id = ((i * BACKENDS_PER_SERVICE + k) % BACKEND_POOL) + 1;
      backends.push({ id, addr: ipOf(BACKEND_BASE + id - 1), port: 8080 });
    }
    out.push({ svcId: i + 1, addr: ipOf(VIP_BASE + i), port: 80, proto: 'TCP', scope: 'EXT', backends });
  }
  // The ping-pong pair for the established-flow measurement.
  const idA = BACKEND_POOL + 1;
  out.push({ svcId: n + 1, addr: A_VIP, port: A_PORT, proto: 'TCP', scope: 'EXT', backends: [{ id: idA, addr: B_ADDR, port: B_PORT }] });
  out.push({ svcId: n + 2, addr: B_ADDR, port: B_PORT, proto: 'TCP', scope: 'EXT', backends: [{ id: idA + 1, addr: A_VIP, port: A_PORT }] });
  return out;
}

function expectCounters(what: string, got: Record<string, number>, want: Record<string, number>): void {
  for (const [k, v] of Object.entries(got)) {
    if (v !== (want[k] ?? 0)) throw new Error(`${what}: counter ${k} = ${v}, expected ${want[k] ?? 0} (all: ${JSON.stringify(got)})`);
  }
}

function delta(dp: Dataplane, s0: Stats): Record<string, number> {
  return statsDelta(s0, dp.stats());
}

/** The subtlety this bench is built around: a rewrite persists across repetitions. */
function checkRewritePersists(dp: Dataplane): void {
  dp.clearCt();
  const s0 = dp.stats();
  // A frame to A, 100 repetitions in one call. Were the buffer reset before each repetition,
  // every run would see the same C -> A packet: 1 new flow + 99 established, output to B.
  const r = dp.kx.progTestRun(dp.prog('xdp'), buildFrame({ src: '100.127.0.1', dst: A_VIP, sport: 999, dport: A_PORT, proto: TCP }), 100);
  const d = delta(dp, s0);
  const out = parseFrame(r.data);
  // Run 1: new flow to B. Run 2: B:8080 is the pair's other frontend: new flow back to A.
  // Runs 3..100: the frame alternates A <-> B as established hits.
  expectCounters('rewrite persistence check', d, { new_flow: 2, established: 98 });
  if (out.dst !== A_VIP || out.dport !== A_PORT || !out.ipChecksumOk || !out.l4ChecksumOk) {
    throw new Error(`rewrite persistence check: after 100 runs expected a valid frame to ${A_VIP}:${A_PORT}, got ${JSON.stringify(out)}`);
  }
  dp.clearCt();
}

function established(dp: Dataplane, n: number, baselineNs: number): Row {
  dp.clearCt();
  const frame = buildFrame({ src: CLIENT, dst: A_VIP, sport: 40000, dport: A_PORT, proto: TCP, tcpFlags: 0x10 });
  const s0 = dp.stats();
  const prime = dp.kx.progTestRun(dp.prog('xdp'), frame, 2); // CT for C->A and for C->B
  // Both flows start with an ACK (the frame is replayed as is), which counts as ct_lost; they
  // stay in kx_ct_new, since no reply ever comes.
  expectCounters(`established/${n}: priming`, delta(dp, s0), { new_flow: 2, ct_lost: 2 });
  if (prime.retval !== XDP_PASS) throw new Error(`established/${n}: priming verdict ${prime.retval}`);
  const times: number[] = [];
  const s1 = dp.stats();
  for (let t = 0; t < ESTABLISHED_TRIALS; t++) {
    const s2 = dp.stats();
    const r = dp.kx.progTestRun(dp.prog('xdp'), frame, ESTABLISHED_REPEAT);
    expectCounters(`established/${n}`, delta(dp, s2), { established: ESTABLISHED_REPEAT });
    const out = parseFrame(r.data);
    if (r.retval !== XDP_PASS || !out.ipChecksumOk || !out.l4ChecksumOk || out.dst !== A_VIP) {
      throw new Error(`established/${n}: after ${ESTABLISHED_REPEAT} rewrites expected a valid frame to ${A_VIP}, got verdict ${r.retval} ${JSON.stringify(out)}`);
    }
    times.push(r.durationNs);
  }
  const ns = median(times);
  return {
    services: n, mode: 'established', repeat: ESTABLISHED_REPEAT, calls: 1, trials_ns: times,
    ns_per_packet: ns, baseline_ns: baselineNs, net_ns: ns - baselineNs,
    counters: delta(dp, s1),
  };
}

/** Recomputes the IPv4 header checksum, which the programs verify (the TCP checksum is left
 * stale: the programs do not verify it, and its incremental fix-up costs the same either way). */
function fixIpChecksum(f: Buffer): void {
  f.writeUInt16BE(0, 24);
  f.writeUInt16BE(checksum(f.subarray(14, 34)), 24);
}

/** Writes source address/port and destination into a TCP frame. */
function setTuple(f: Buffer, saddr: number, sport: number, daddr: number): void {
  f.writeUInt32BE(saddr >>> 0, 26);
  f.writeUInt32BE(daddr >>> 0, 30);
  f.writeUInt16BE(sport, 34);
  fixIpChecksum(f);
}

/** The flow of call k: a distinct client address:port per k, a random Service. */
function flowTuples(n: number): (frame: Buffer, k: number) => void {
  let rnd = 0x2545f491;
  const pick = (): number => { // xorshift32
    rnd ^= rnd << 13; rnd >>>= 0; rnd ^= rnd >>> 17; rnd ^= rnd << 5; rnd >>>= 0;
    return rnd % n;
  };
  return (frame, k) => setTuple(frame, CLIENT_BASE + Math.floor(k / 60_000) + 256, 1024 + (k % 60_000), VIP_BASE + pick());
}

function establishedCalls(dp: Dataplane, n: number, baselineNs: number): Row {
  dp.clearCt();
  const frame = buildFrame({ src: CLIENT, dst: ipOf(VIP_BASE), sport: 1024, dport: 80, proto: TCP, tcpFlags: 0x10 });
  const prog = dp.prog('xdp');
  // Create the flows: call k of a trial carries the tuple of flow k mod ESTABLISHED_FLOWS.
  const tuples: Buffer[] = [];
  const next = flowTuples(n);
  for (let k = 0; k < ESTABLISHED_FLOWS; k++) {
    next(frame, k);
    tuples.push(Buffer.from(frame.subarray(26, 36)));
  }
  const withTuple = (f: Buffer, k: number) => { tuples[k % ESTABLISHED_FLOWS]!.copy(f, 26); fixIpChecksum(f); };
  // Each flow as a real one: a SYN, then the backend's SYN-ACK, which moves it to kx_ct.
  const s0 = dp.stats();
  const syn = buildFrame({ src: CLIENT, dst: ipOf(VIP_BASE), sport: 1024, dport: 80, proto: TCP });
  for (let k = 0; k < ESTABLISHED_FLOWS; k++) {
    withTuple(syn, k);
    const out = parseFrame(dp.kx.progTestRun(prog, syn).data);
    const reply = buildFrame({ src: out.dst, dst: out.src, sport: out.dport, dport: out.sport, proto: TCP, tcpFlags: 0x12 });
    if (dp.kx.progTestRun(prog, reply).retval !== XDP_PASS) throw new Error(`established_calls/${n}: reply of flow ${k} not passed`);
  }
  expectCounters(`established_calls/${n}: creating flows`, delta(dp, s0), { new_flow: ESTABLISHED_FLOWS, reply: ESTABLISHED_FLOWS, promoted: ESTABLISHED_FLOWS });
  const s1 = dp.stats();
  const trials: number[] = [];
  let passed = 0;
  for (let t = 0; t < CALL_TRIALS; t++) {
    const r = runEach(dp.kx, prog, frame, NEW_FLOW_CALLS, withTuple, XDP_PASS);
    passed += r.matched;
    trials.push(round(r.ns));
  }
  const counters = delta(dp, s1);
  expectCounters(`established_calls/${n}`, counters, { established: NEW_FLOW_CALLS * CALL_TRIALS });
  if (passed !== NEW_FLOW_CALLS * CALL_TRIALS) throw new Error(`established_calls/${n}: ${NEW_FLOW_CALLS * CALL_TRIALS - passed} packets not XDP_PASS`);
  dp.clearCt();
  const ns = median(trials);
  return {
    services: n, mode: 'established_calls', repeat: 1, calls: NEW_FLOW_CALLS, trials_ns: trials,
    ns_per_packet: ns, baseline_ns: baselineNs, net_ns: round(ns - baselineNs), counters,
  };
}

function newFlows(dp: Dataplane, n: number, baselineNs: number): Row {
  const frame = buildFrame({ src: CLIENT, dst: ipOf(VIP_BASE), sport: 1024, dport: 80, proto: TCP });
  const prog = dp.prog('xdp');
  const next = flowTuples(n);
  // Warm-up from another client range, then a clean conntrack.
  runEach(dp.kx, prog, frame, WARMUP_CALLS, (f, k) => { next(f, k); f.writeUInt32BE(0x64500000 + k, 26); fixIpChecksum(f); }, XDP_PASS);
  const trials: number[] = [];
  let passed = 0;
  const s0 = dp.stats();
  for (let t = 0; t < CALL_TRIALS; t++) {
    dp.clearCt(); // each trial reuses the tuples of the previous one: they must miss again
    const r = runEach(dp.kx, prog, frame, NEW_FLOW_CALLS, next, XDP_PASS, (k) => { if (k > 0 && k % CT_CLEAR_EVERY === 0) dp.clearCt(); });
    passed += r.matched;
    trials.push(round(r.ns));
  }
  const counters = delta(dp, s0);
  expectCounters(`new_flow/${n}`, counters, { new_flow: NEW_FLOW_CALLS * CALL_TRIALS });
  if (passed !== NEW_FLOW_CALLS * CALL_TRIALS) throw new Error(`new_flow/${n}: ${NEW_FLOW_CALLS * CALL_TRIALS - passed} packets not XDP_PASS`);
  dp.clearCt();
  const ns = median(trials);
  return {
    services: n, mode: 'new_flow', repeat: 1, calls: NEW_FLOW_CALLS, trials_ns: trials,
    ns_per_packet: ns, baseline_ns: baselineNs, net_ns: round(ns - baselineNs), counters,
  };
}

// ---- baseline: the empty XDP program, measured both ways ----

function baseline(kx: Libkx): { repeatNs: number; repeatTrials: number[]; callNs: number; callTrials: number[] } {
  const pinRoot = uniquePinRoot('kx-bench-empty');
  const handle = kx.objOpenLoad(EMPTY_OBJ, pinRoot);
  try {
    const prog = { fd: kx.objProgFd(handle, 'kx_empty_xdp'), label: 'kx_empty_xdp' };
    const frame = buildFrame({ src: CLIENT, dst: A_VIP, sport: 40000, dport: A_PORT, proto: TCP });
    const times: number[] = [];
    for (let t = 0; t < ESTABLISHED_TRIALS; t++) times.push(kx.progTestRun(prog, frame, ESTABLISHED_REPEAT).durationNs);
    const tuple = (f: Buffer, k: number) => setTuple(f, CLIENT_BASE + Math.floor(k / 60_000), 1024 + (k % 60_000), VIP_BASE);
    runEach(kx, prog, frame, WARMUP_CALLS, tuple, XDP_PASS);
    const trials: number[] = [];
    for (let t = 0; t < CALL_TRIALS; t++) trials.push(round(runEach(kx, prog, frame, NEW_FLOW_CALLS, tuple, XDP_PASS).ns));
    return { repeatNs: median(times), repeatTrials: times, callNs: median(trials), callTrials: trials };
  } finally {
    kx.objClose(handle);
    rmPin(pinRoot);
  }
}

function rmPin(p: string): void {
  rmSync(p, { recursive: true, force: true });
}

// ---- main ----

function main(): void {
  if (process.getuid?.() !== 0) {
    console.error('bench/datapath: needs root (BPF_PROG_TEST_RUN, bpffs)');
    process.exit(1);
  }
  ensureBpffs();
  const started = Date.now();
  const kx = new Libkx();
  const base = baseline(kx);
  console.error(`baseline (kx_empty_xdp): ${base.repeatNs} ns/packet at repeat=${ESTABLISHED_REPEAT}, ${base.callNs} ns/call at repeat=1`);

  const rows: Row[] = [];
  let open: Dataplane | null = null;
  const cleanup = () => { open?.close(); open = null; };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => { cleanup(); process.exit(130); });
  try {
    for (const n of SERVICE_COUNTS) {
      const dp: Dataplane = new Dataplane(KX_OBJ, 'kx-bench', kx);
      open = dp;
      const t0 = performance.now();
      dp.writeState({ nodeAddr: '192.168.1.10', services: services(n) }); // one batch update per map
      const fillMs = round(performance.now() - t0);
      if (n === SERVICE_COUNTS[0]) checkRewritePersists(dp);
      const e = established(dp, n, base.repeatNs);
      e.fill_ms = fillMs;
      const c = establishedCalls(dp, n, base.callNs);
      c.fill_ms = fillMs;
      const f = newFlows(dp, n, base.callNs);
      f.fill_ms = fillMs;
      rows.push(e, c, f);
      console.error(`${n} services: filled in ${fillMs} ms; established ${e.ns_per_packet} ns (repeat), ${c.ns_per_packet} ns (calls); new flow ${f.ns_per_packet} ns`);
      cleanup();
    }
  } finally {
    cleanup();
  }

  const at = (mode: Row['mode'], n: number) => rows.find((r) => r.mode === mode && r.services === n)!;
  const first = SERVICE_COUNTS[0]!, last = SERVICE_COUNTS[SERVICE_COUNTS.length - 1]!;
  const flat = (mode: Row['mode']) => ({
    measured: round(at(mode, last).ns_per_packet / at(mode, first).ns_per_packet, 2),
    net: round(at(mode, last).net_ns / at(mode, first).net_ns, 2),
  });
  const result = {
    kernel: release(),
    date: new Date().toISOString(),
    node: process.version,
    cpu: `${cpus().length} × ${cpus()[0]?.model ?? 'unknown'}`,
    program: 'kx_xdp_ext (build/kube_xdp.bpf.o), external scope, no SNAT',
    baseline_program: 'kx_empty_xdp (build/empty.bpf.o)',
    backends_per_service: BACKENDS_PER_SERVICE,
    backend_pool: `${BACKEND_POOL} distinct backends at most (kx_backends max_entries 262144): shared only at 100k Services`,
    method: {
      established: `one BPF_PROG_TEST_RUN call with repeat=${ESTABLISHED_REPEAT} (median of ${ESTABLISHED_TRIALS}); the frame ping-pongs between two frontends that translate into each other, so every repetition is an established hit with a rewrite (counters checked)`,
      established_calls: `${NEW_FLOW_CALLS} calls with repeat=1 cycling over ${ESTABLISHED_FLOWS} established flows (random Services), net of the same baseline as new_flow`,
      new_flow: `${NEW_FLOW_CALLS} calls with repeat=1, distinct source address:port, random Service each; duration_ns includes the kernel's timer overhead, so the baseline is the empty program measured the same way; kx_ct emptied every ${CT_CLEAR_EVERY} calls outside the timed region`,
      ffi: 'kx_prog_test_run_each: one FFI call per ' + CHUNK + ' packets',
    },
    baseline: {
      repeat: { repeat: ESTABLISHED_REPEAT, calls: 1, ns_per_packet: base.repeatNs, trials_ns: base.repeatTrials },
      calls: { repeat: 1, calls: NEW_FLOW_CALLS, ns_per_packet: base.callNs, trials_ns: base.callTrials },
    },
    scenarios: rows,
    flatness_100k_over_1: { established: flat('established'), established_calls: flat('established_calls'), new_flow: flat('new_flow') },
    wall_s: round((Date.now() - started) / 1000),
  };
  mkdirSync(dirname(RESULTS), { recursive: true });
  writeFileSync(RESULTS, `${JSON.stringify(result, null, 2)}\n`);

  const pad = (s: string | number, w: number) => String(s).padStart(w);
  const fl = result.flatness_100k_over_1;
  const lines = [
    `kube-xdp datapath: ns/packet under BPF_PROG_TEST_RUN (net = minus the empty XDP program) — kernel ${result.kernel}, ${result.cpu}`,
    `${pad('', 9)} | ${pad('established (repeat)', 20)} | ${pad(`established (${ESTABLISHED_FLOWS / 1000}k flows, calls)`, 30)} | ${pad('new flow (calls)', 18)} |`,
    `${pad('services', 9)} | ${pad('ns', 9)} ${pad('net', 10)} | ${pad('ns', 15)} ${pad('net', 14)} | ${pad('ns', 8)} ${pad('net', 9)} | ${pad('fill ms', 8)}`,
    `${pad('empty', 9)} | ${pad(base.repeatNs, 9)} ${pad('-', 10)} | ${pad(base.callNs, 15)} ${pad('-', 14)} | ${pad(base.callNs, 8)} ${pad('-', 9)} |`,
    ...SERVICE_COUNTS.map((n) => {
      const e = at('established', n), c = at('established_calls', n), f = at('new_flow', n);
      return `${pad(n.toLocaleString('en-US'), 9)} | ${pad(e.ns_per_packet, 9)} ${pad(e.net_ns, 10)} | ${pad(c.ns_per_packet, 15)} ${pad(c.net_ns, 14)} | ${pad(f.ns_per_packet, 8)} ${pad(f.net_ns, 9)} | ${pad(e.fill_ms ?? '', 8)}`;
    }),
    `${pad('100k / 1', 9)} | ${pad(fl.established.measured, 9)} ${pad(fl.established.net, 10)} | ${pad(fl.established_calls.measured, 15)} ${pad(fl.established_calls.net, 14)} | ${pad(fl.new_flow.measured, 8)} ${pad(fl.new_flow.net, 9)} |`,
    `established (repeat): one call of repeat=${ESTABLISHED_REPEAT.toLocaleString('en-US')}; calls: ${NEW_FLOW_CALLS.toLocaleString('en-US')} calls of repeat=1; each the median of ${CALL_TRIALS} trials; ${BACKENDS_PER_SERVICE} backends per Service; ${result.wall_s} s`,
    `-> ${RESULTS}`,
  ];
  console.log(lines.join('\n'));
}

main();
