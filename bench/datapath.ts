// Datapath benchmark (issue 11): ns per packet of kx_xdp_ext and kx_tc_pod under
// BPF_PROG_TEST_RUN, at 1, 10,000 and 100,000 Services, programmed by the real controller.
//
// How:
//  - The controller (`kube-xdp run --source file:DIR`, Services + EndpointSlices as List JSON)
//    runs in a scratch network namespace kxbench-<pid> (XDP on a veth there, pins under
//    /sys/fs/bpf/kx-bench-<pid>-<n>); after its first sync the bench loads build/kube_xdp.bpf.o
//    on the same pin root (libbpf reuses the pinned maps by name) and measures through those
//    programs while the controller keeps running (conntrack GC every 10 s, periodic syncs).
//  - repeat = 1 everywhere: one BPF_PROG_TEST_RUN call per packet, each call's own kernel
//    duration kept (bench/kxbench.c runs the calls in a C loop: ffi-napi costs ~75 us a call).
//    A call always starts from the frame given (never from a previous output), so an
//    "established" packet is the client's original one every time.
//  - The empty program of the same hook (build/empty.bpf.o: kx_empty_xdp / kx_empty_tc) runs on
//    the same frame right before or after each measured call (alternately); "net" figures are
//    the measured quantile minus the MEDIAN of those interleaved empty calls.
//  - Rows, per program and size: non-Service packets (distinct random tuples; one hot tuple),
//    established (one hot flow; 100,000 flows in random order, each created first by its SYN
//    and the backend's SYN-ACK so it sits in kx_ct), new flows (a distinct client tuple per
//    call, SYN, random Service; kx_ct_new emptied outside the timed calls every 50,000 flows,
//    so no new flow pays an eviction). kx_ct holds the 100,000 flows' 200,000 entries
//    throughout. The SYN flood row is test/bpf/conntrack.test.ts (KX_FLOOD), not repeated here.
//  - XDP: client (100.64/10) -> node IP:NodePort; tc: pod (10.160/11) -> ClusterIP:80. All
//    endpoints are on this node, so neither path source-NATs (see the results' method).
// Timings are never asserted; correctness checks (verdicts, every output's destination in the
// Service's backend set or the flow's backend, non-Service frames byte-identical, counters,
// map sizes after the sync) abort the run. Results: bench/results/datapath.json and a Markdown
// table on stdout. KXBENCH_DATAPATH_SIZES (e.g. "1,10000") and KXBENCH_DATAPATH_CALLS narrow a run.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import ffi from '@2060.io/ffi-napi';
import { Libkx } from '../src/kernel/libkx.js';
import { cleanupAll, onCleanup, rssKb, spawnController, stopController, waitForSync, type Controller } from './harness.js';
import { KX_LIMITS } from '../src/dataplane/ebpf/limits.js';
import { MAPS, STAT_NAMES } from '../src/dataplane/ebpf/maps.js';
import {
  Dataplane, EMPTY_OBJ, KX_OBJ, REPO, TC_ACT_OK, XDP_PASS, ensureBpffs, statsDelta, type Program, type StatName,
} from '../test/bpf/fixture.js';
import { parseFrame } from '../test/bpf/packet.js';
import {
  CLUSTER_CIDR, CLUSTER_IP_BASE, ENDPOINTS_PER_SERVICE, FrameWriter, MAX_NODE_PORTS, NODE_IP, NODE_NAME, NODE_PORT_BASE,
  PAYLOAD_BYTES, SERVICE_PORT, STRAY_BASE, TARGET_PORT, TC_CLIENT_BASE, TCP_ACK, TCP_SYN, TCP_SYNACK, XDP_CLIENT_BASE,
  dist, ipStr, isBackendOf, rng, slowCalls, writeServiceFiles, type Dist, type ServicePlan, type Tuple,
} from './datapath-frames.js';

const SIZES = (process.env.KXBENCH_DATAPATH_SIZES ?? '1,10000,100000').split(',').map(Number);
/** Measured calls per row (each with one empty-program call beside it). */
const CALLS = Number(process.env.KXBENCH_DATAPATH_CALLS ?? 1_000_000);
const SPREAD_FLOWS = 100_000;
/** Frames per C-loop call; kx_ct_new is emptied between two chunks of new flows. */
const CHUNK = 50_000;
const WARMUP_CALLS = 20_000;
const SYNC_TIMEOUT_MS = 10 * 60_000;
const RESULTS = `${REPO}bench/results/datapath.json`;
const CLI = `${REPO}dist/src/cli/main.js`;
const NETNS = `kxbench-${process.pid}`;
const PASS: Record<Program, number> = { xdp: XDP_PASS, tc: TC_ACT_OK };
const EMPTY_PROG: Record<Program, string> = { xdp: 'kx_empty_xdp', tc: 'kx_empty_tc' };
const ROWS = ['non_service_distinct', 'non_service_hot', 'established_hot', 'established_spread', 'new_flow', 'non_service_distinct_ct_empty'] as const;
type RowName = (typeof ROWS)[number];
const ROW_LABEL: Record<RowName, string> = {
  non_service_distinct: 'non-Service, distinct tuples',
  non_service_hot: 'non-Service, hot (one tuple)',
  established_hot: 'established, hot (one flow)',
  established_spread: `established, ${SPREAD_FLOWS / 1000}k flows random order`,
  new_flow: 'new flow (SYN)',
  non_service_distinct_ct_empty: 'non-Service, distinct, conntrack empty',
};
/** The issue's targets (net ns), shown beside the figures; never asserted. */
const TARGET: Record<RowName, string> = {
  non_service_distinct: 'mean ≤ 50', non_service_hot: 'mean ≤ 50', established_hot: 'mean ≤ 100',
  established_spread: '—', new_flow: 'mean ≤ 250, p99 ≤ 2000',
  non_service_distinct_ct_empty: '(diagnostic)',
};

const log = (msg: string) => process.stderr.write(`bench/datapath: ${msg}\n`);
const r1 = (x: number) => Math.round(x * 10) / 10;
const r2 = (x: number) => Math.round(x * 100) / 100;

// ---- cleanup, also on failure and signals ----

function sh(cmd: string, args: string[], check = true): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (check && r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.error?.message || `exit ${r.status}`}`);
  return r.stdout;
}
const inNetns = (argv: string[]) => ['--net=/run/netns/' + NETNS, '--', ...argv];

// ---- the C loop ----

interface Helper {
  kxb_run: (prog: number, empty: number, frames: Buffer, frameSize: number, count: number, out: Buffer | null, outStride: number,
    outSizes: Buffer | null, durations: Buffer, emptyDurations: Buffer, retvals: Buffer) => number;
}

function buildHelper(dir: string): Helper {
  const so = join(dir, 'libkxbench.so');
  sh(process.env.CC ?? 'cc', ['-O2', '-Wall', '-Werror', '-shared', '-fPIC', '-o', so, `${REPO}bench/kxbench.c`, '-lbpf']);
  const P = 'pointer', I = 'int', U = 'uint32';
  return ffi.Library(so, { kxb_run: [I, [I, I, P, U, U, P, U, P, P, P, P]] }) as unknown as Helper;
}

// ---- measuring ----

type Prog = { fd: number; label: string };
interface Ctx {
  kx: Libkx;
  /** The run's copy of build/kube_xdp.bpf.o: the controller and the bench load the same one. */
  obj: string;
  helper: Helper;
  fw: FrameWriter;
  empty: Record<Program, Prog>;
  // per-chunk buffers, reused
  frames: Buffer; out: Buffer; outSizes: Uint32Array; durs: Uint32Array; edurs: Uint32Array; rets: Uint32Array;
}

interface RunResult { durations: Uint32Array; empty: Uint32Array }
type Check = (i: number, verdict: number, inBuf: Buffer, inOff: number, out: Buffer, outOff: number) => void;

const u8 = (a: Uint32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** `calls` frames (frame i written by fill), one call each, checked one by one; with
 * `withEmpty`, the empty program of the same hook runs beside each call. beforeChunk runs
 * outside the timed calls. */
function runFrames(ctx: Ctx, prog: Prog, program: Program, calls: number, fill: (buf: Buffer, off: number, i: number) => void,
  check: Check, opts: { withEmpty: boolean; beforeChunk?: (i0: number) => void }): RunResult {
  const size = ctx.fw.size;
  const durations = new Uint32Array(calls);
  const empty = new Uint32Array(opts.withEmpty ? calls : 0);
  for (let i0 = 0; i0 < calls; i0 += CHUNK) {
    const n = Math.min(CHUNK, calls - i0);
    for (let j = 0; j < n; j++) fill(ctx.frames, j * size, i0 + j);
    opts.beforeChunk?.(i0);
    const rc = ctx.helper.kxb_run(prog.fd, opts.withEmpty ? ctx.empty[program].fd : -1, ctx.frames, size, n,
      ctx.out, size, u8(ctx.outSizes), u8(ctx.durs), u8(ctx.edurs), u8(ctx.rets));
    if (rc !== n) throw new Error(`${prog.label}: BPF_PROG_TEST_RUN failed: ${rc < 0 ? `errno ${-rc}` : `${rc} of ${n} calls`}`);
    for (let j = 0; j < n; j++) {
      if (ctx.outSizes[j] !== size) throw new Error(`${prog.label}: call ${i0 + j} returned ${ctx.outSizes[j]} bytes, sent ${size}`);
      check(i0 + j, ctx.rets[j]!, ctx.frames, j * size, ctx.out, j * size);
    }
    durations.set(ctx.durs.subarray(0, n), i0);
    if (opts.withEmpty) empty.set(ctx.edurs.subarray(0, n), i0);
  }
  return { durations, empty };
}

function fail(what: string, i: number, detail: string, out?: Buffer, off?: number): never {
  const frame = out && off !== undefined ? ` — output ${JSON.stringify(parseFrame(Buffer.from(out.subarray(off, off + 14 + 20 + 20 + PAYLOAD_BYTES))))}` : '';
  throw new Error(`${what}: call ${i}: ${detail}${frame}`);
}

/** Every counter as expected (absent = 0); ct_expired (the controller's GC) is only recorded. */
function expectCounters(what: string, got: Record<StatName, number>, want: Partial<Record<StatName, number>>): void {
  for (const k of STAT_NAMES) {
    if (k === 'ct_expired') continue;
    if (got[k] !== (want[k] ?? 0)) throw new Error(`${what}: counter ${k} = ${got[k]}, expected ${want[k] ?? 0} (all: ${JSON.stringify(got)})`);
  }
}

interface Row {
  program: Program;
  program_name: string;
  services: number;
  row: RowName;
  calls: number;
  /** Kernel durations of the measured calls (ns). */
  measured: Dist;
  /** The interleaved empty-program calls (ns); net = measured - empty.p50. */
  empty: Dist;
  net: { mean: number; p50: number; p90: number; p99: number; p999: number };
  slow_calls: ReturnType<typeof slowCalls>;
  counters: Record<StatName, number>;
  wall_s: number;
}

function summarize(program: Program, n: number, row: RowName, r: RunResult, counters: Record<StatName, number>, t0: number): Row {
  const m = dist(r.durations), e = dist(r.empty);
  const base = e.p50;
  return {
    program, program_name: program === 'xdp' ? 'kx_xdp_ext' : 'kx_tc_pod', services: n, row, calls: r.durations.length,
    measured: m, empty: e,
    net: { mean: r1(m.mean - base), p50: m.p50 - base, p90: m.p90 - base, p99: m.p99 - base, p999: m.p999 - base },
    slow_calls: slowCalls(r.durations, Math.max(1000, 4 * m.p50)),
    counters, wall_s: r1((performance.now() - t0) / 1000),
  };
}

// ---- one program at one size ----

interface Target { addr: number; port: number }

function measureProgram(ctx: Ctx, dp: Dataplane, plan: ServicePlan, program: Program): Row[] {
  const prog = dp.prog(program);
  const pass = PASS[program];
  const n = plan.services;
  const targets = program === 'xdp' ? plan.nodePorts : n;
  const frontend = (s: number): Target => program === 'xdp'
    ? { addr: NODE_IP, port: NODE_PORT_BASE + s }
    : { addr: CLUSTER_IP_BASE + s, port: SERVICE_PORT };
  const clientBase = program === 'xdp' ? XDP_CLIENT_BASE : TC_CLIENT_BASE;
  const client = (f: number) => ({ saddr: clientBase + Math.floor(f / 50_000), sport: 10_000 + (f % 50_000) });
  const rand = rng(0x9e3779b9 ^ (n * 2 + (program === 'xdp' ? 0 : 1)));
  const label = `${program}/${n}`;
  const rows: Row[] = [];
  dp.clearCt();

  // -- the 100k flows: SYN through the program, the backend's SYN-ACK through tc (a local
  //    backend's reply leaves through its pod's veth), which moves each flow to kx_ct.
  // Batches of CHUNK flows: SYNs, then their SYN-ACKs, so kx_ct_new (131,072 entries) never
  // holds more than 2 x CHUNK entries and evicts nothing before the reply promotes the flow.
  const svcOf = new Uint32Array(SPREAD_FLOWS), beOf = new Uint32Array(SPREAD_FLOWS);
  const s0 = dp.stats();
  for (let b0 = 0; b0 < SPREAD_FLOWS; b0 += CHUNK) {
    const nb = Math.min(CHUNK, SPREAD_FLOWS - b0);
    runFrames(ctx, prog, program, nb, (b, off, i) => {
      const f = b0 + i;
      svcOf[f] = rand() % targets;
      const fe = frontend(svcOf[f]!), c = client(f);
      ctx.fw.write(b, off, { ...c, daddr: fe.addr, dport: fe.port, flags: TCP_SYN });
    }, (i, v, inb, io, out, oo) => {
      const f = b0 + i;
      if (v !== pass) fail(`${label} creating flows (SYN)`, f, `verdict ${v}`);
      const be = out.readUInt32BE(oo + 30), bport = out.readUInt16BE(oo + 36);
      if (!isBackendOf(plan, svcOf[f]!, be, bport)) fail(`${label} creating flows (SYN)`, f, `destination ${ipStr(be)}:${bport} is not a backend of svc-${svcOf[f]}`, out, oo);
      if (out.readUInt32BE(oo + 26) !== inb.readUInt32BE(io + 26)) fail(`${label} creating flows (SYN)`, f, 'source rewritten (no SNAT expected)', out, oo);
      beOf[f] = be;
    }, { withEmpty: false });
    runFrames(ctx, dp.prog('tc'), 'tc', nb, (b, off, i) => {
      const f = b0 + i, c = client(f);
      ctx.fw.write(b, off, { saddr: beOf[f]!, sport: TARGET_PORT, daddr: c.saddr, dport: c.sport, flags: TCP_SYNACK });
    }, (i, v, _i, _io, out, oo) => {
      const f = b0 + i, fe = frontend(svcOf[f]!);
      if (v !== TC_ACT_OK || out.readUInt32BE(oo + 26) !== fe.addr || out.readUInt16BE(oo + 34) !== fe.port) {
        fail(`${label} creating flows (SYN-ACK)`, f, `verdict ${v}, expected the reply from ${ipStr(fe.addr)}:${fe.port}`, out, oo);
      }
    }, { withEmpty: false });
  }
  expectCounters(`${label} creating flows`, statsDelta(s0, dp.stats()), { new_flow: SPREAD_FLOWS, reply: SPREAD_FLOWS, promoted: SPREAD_FLOWS });
  const ctCount = ctx.kx.mapDump(dp.map(MAPS.ct.name)).count, ctNewCount = ctx.kx.mapDump(dp.map(MAPS.ctNew.name)).count;
  if (ctCount !== 2 * SPREAD_FLOWS || ctNewCount !== 0) throw new Error(`${label}: after the handshakes kx_ct holds ${ctCount} (want ${2 * SPREAD_FLOWS}), kx_ct_new ${ctNewCount} (want 0)`);

  // -- warm-up (discarded): non-Service packets, no state created.
  const stray = (b: Buffer, off: number) => ctx.fw.write(b, off, {
    saddr: clientBase + (rand() & 0xfffff), daddr: STRAY_BASE + (rand() & 0xfffff),
    sport: 1024 + (rand() % 64512), dport: 1024 + (rand() % 64512), flags: TCP_ACK,
  });
  const unchanged = (what: string): Check => (i, v, inb, io, out, oo) => {
    if (v !== pass) fail(what, i, `verdict ${v}`);
    if (inb.compare(out, oo, oo + ctx.fw.size, io, io + ctx.fw.size) !== 0) fail(what, i, 'a non-Service frame was modified', out, oo);
  };
  const measureRow = (row: RowName, fill: (b: Buffer, off: number, i: number) => void, check: Check,
    want: Partial<Record<StatName, number>>, beforeChunk?: (i0: number) => void) => {
    runFrames(ctx, prog, program, WARMUP_CALLS, stray, unchanged(`${label} warm-up`), { withEmpty: true });
    const t0 = performance.now();
    const s = dp.stats();
    const r = runFrames(ctx, prog, program, CALLS, fill, check, { withEmpty: true, ...(beforeChunk ? { beforeChunk } : {}) });
    const counters = statsDelta(s, dp.stats());
    expectCounters(`${label} ${row}`, counters, want);
    const out = summarize(program, n, row, r, counters, t0);
    rows.push(out);
    log(`${label} ${row}: mean ${out.measured.mean} ns, p50 ${out.measured.p50}, p99 ${out.measured.p99} (empty p50 ${out.empty.p50}) -> net mean ${out.net.mean}, p99 ${out.net.p99}`);
  };

  // -- non-Service
  measureRow('non_service_distinct', stray, unchanged(`${label} non-Service`), {});
  const hotStray = Buffer.alloc(ctx.fw.size);
  ctx.fw.write(hotStray, 0, { saddr: clientBase + 77, daddr: STRAY_BASE + 77, sport: 40_000, dport: 443, flags: TCP_ACK });
  measureRow('non_service_hot', (b, off) => hotStray.copy(b, off), unchanged(`${label} non-Service hot`), {});

  // -- established
  const establishedCheck = (what: string, flowOf: (i: number) => number): Check => (i, v, inb, io, out, oo) => {
    const f = flowOf(i);
    if (v !== pass) fail(what, i, `verdict ${v}`);
    if (out.readUInt32BE(oo + 30) !== beOf[f] || out.readUInt16BE(oo + 36) !== TARGET_PORT) fail(what, i, `flow ${f} left its backend ${ipStr(beOf[f]!)}`, out, oo);
    if (out.readUInt32BE(oo + 26) !== inb.readUInt32BE(io + 26) || out.readUInt16BE(oo + 34) !== inb.readUInt16BE(io + 34)) fail(what, i, 'source rewritten', out, oo);
    if (i % 997 === 0) {
      const p = parseFrame(Buffer.from(out.subarray(oo, oo + ctx.fw.size)));
      if (!p.ipChecksumOk || !p.l4ChecksumOk) fail(what, i, 'bad checksum after the rewrite', out, oo);
    }
  };
  const ackOf = (f: number): Tuple => {
    const fe = frontend(svcOf[f]!);
    return { ...client(f), daddr: fe.addr, dport: fe.port, flags: TCP_ACK };
  };
  const hot = Buffer.alloc(ctx.fw.size);
  ctx.fw.write(hot, 0, ackOf(0));
  measureRow('established_hot', (b, off) => hot.copy(b, off), establishedCheck(`${label} established hot`, () => 0), { established: CALLS });
  const order = new Uint32Array(CALLS);
  const perm = Uint32Array.from({ length: SPREAD_FLOWS }, (_, i) => i);
  for (let i0 = 0; i0 < CALLS; i0 += SPREAD_FLOWS) {
    for (let i = SPREAD_FLOWS - 1; i > 0; i--) {
      const j = rand() % (i + 1);
      [perm[i], perm[j]] = [perm[j]!, perm[i]!];
    }
    order.set(perm.subarray(0, Math.min(SPREAD_FLOWS, CALLS - i0)), i0);
  }
  measureRow('established_spread', (b, off, i) => ctx.fw.write(b, off, ackOf(order[i]!)),
    establishedCheck(`${label} established spread`, (i) => order[i]!), { established: CALLS });

  // -- new flows: fresh client tuples (flow numbers from 1,000,000 on), random Services.
  const newSvc = new Uint32Array(CHUNK);
  measureRow('new_flow', (b, off, i) => {
    const s = rand() % targets;
    newSvc[i % CHUNK] = s;
    const fe = frontend(s);
    ctx.fw.write(b, off, { ...client(1_000_000 + i), daddr: fe.addr, dport: fe.port, flags: TCP_SYN });
  }, (i, v, inb, io, out, oo) => {
    const what = `${label} new flow`;
    if (v !== pass) fail(what, i, `verdict ${v}`);
    const s = newSvc[i % CHUNK]!, be = out.readUInt32BE(oo + 30), bport = out.readUInt16BE(oo + 36);
    if (!isBackendOf(plan, s, be, bport)) fail(what, i, `destination ${ipStr(be)}:${bport} is not a backend of svc-${s}`, out, oo);
    if (out.readUInt32BE(oo + 26) !== inb.readUInt32BE(io + 26)) fail(what, i, 'source rewritten (no SNAT expected)', out, oo);
    if (i % 997 === 0) {
      const p = parseFrame(Buffer.from(out.subarray(oo, oo + ctx.fw.size)));
      if (!p.ipChecksumOk || !p.l4ChecksumOk) fail(what, i, 'bad checksum after the rewrite', out, oo);
    }
  }, { new_flow: CALLS }, (i0) => {
    if (i0 > 0) dp.clearMap(MAPS.ctNew.name); // outside the timed calls: 50k flows = 100k of 131,072 entries
  });
  // Diagnostic: the first row again with both conntrack tables empty (what the 200k entries
  // of kx_ct cost a miss).
  dp.clearCt();
  measureRow('non_service_distinct_ct_empty', stray, unchanged(`${label} non-Service, conntrack empty`), {});
  return rows;
}

// ---- the controller ----

interface SizeInfo {
  services: number; node_ports: number; backends: number; frontends: number; source_files: number;
  controller: { first_sync_ms: number; writes: number; sync_log: Record<string, unknown>; rss_mb: number | null; syncs_during_measurement: number; still_running: boolean };
}


function startController(obj: string, sourceDir: string, pinDir: string): Controller {
  return spawnController(NETNS, [
    'taskset', '-c', '0', process.execPath, CLI, 'run', '--source', `file:${sourceDir}`, '--node-name', NODE_NAME,
    '--bpf-pin-dir', pinDir, '--bpf-object', obj, '--external-interfaces', 'veth0', '--pod-interfaces', 'nomatch*', '--node-ip', ipStr(NODE_IP),
    '--cluster-cidr', CLUSTER_CIDR, '--metrics-bind-address', '', '--healthz-bind-address', '', '--cgroup-root', '',
    // the object's own sizes, IPv6 flow tables included (an IPv4-only node would shrink them),
    // so that the bench's load of the same object reuses every pinned map
    '--bpf-map-sizes', `ct6=${KX_LIMITS.ct6},ct-new6=${KX_LIMITS.ctNew6},affinity6=${KX_LIMITS.affinity6}`,
  ]);
}

async function measureSize(ctx: Ctx, n: number, work: string): Promise<{ info: SizeInfo; rows: Row[] }> {
  // NodePorts: one per Service up to the port range (MAX_NODE_PORTS) and what kx_frontends
  // holds beside the ClusterIPs (2 frontends each: internal and external scope).
  const nodePorts = Math.min(n, MAX_NODE_PORTS, Math.floor((KX_LIMITS.frontends - 2 * n) / 2));
  const pool = Math.min(n * ENDPOINTS_PER_SERVICE, KX_LIMITS.backends - 1024);
  const plan: ServicePlan = { services: n, nodePorts, pool };
  const expectedFrontends = 2 * n + 2 * nodePorts;
  const sourceDir = join(work, `source-${n}`);
  const files = writeServiceFiles(sourceDir, plan);
  const pinDir = `/sys/fs/bpf/kx-bench-${process.pid}-${n}`;
  const removePins = onCleanup(`pins ${pinDir}`, () => {
    if (existsSync(pinDir)) sh('nsenter', inNetns([process.execPath, CLI, 'cleanup', '--bpf-pin-dir', pinDir, '--pod-interfaces', 'nomatch*']), false);
    rmSync(pinDir, { recursive: true, force: true });
  });
  log(`${n} Services (${nodePorts} NodePorts, ${pool} backends): starting the controller`);
  const t0 = performance.now();
  const c = startController(ctx.obj, sourceDir, pinDir);
  const stop = onCleanup(`controller pid ${c.proc.pid}`, () => stopController(c));
  const synced = await waitForSync(c, `${n} Services`, SYNC_TIMEOUT_MS);
  const syncMs = performance.now() - t0;
  if (synced.servicesLeftOut !== 0 || synced.problems !== 0 || synced.frontends !== expectedFrontends) {
    throw new Error(`${n} Services: the controller's sync is not the one planned (want ${expectedFrontends} frontends): ${JSON.stringify(synced)}`);
  }
  log(`${n} Services: synced in ${r1(syncMs / 1000)} s (${synced.writes} writes); loading the programs on ${pinDir}`);
  const dp = new Dataplane(ctx.obj, 'kx-bench', ctx.kx, { pinRoot: pinDir });
  const closeDp = onCleanup('bench object', () => dp.close());
  const rows: Row[] = [];
  let syncsBefore = 0;
  try {
    const fe = ctx.kx.mapDump(dp.map(MAPS.frontends.name)).count, be = ctx.kx.mapDump(dp.map(MAPS.backends.name)).count;
    if (fe !== expectedFrontends || be !== pool) throw new Error(`${n} Services: the shared maps hold ${fe} frontends and ${be} backends, want ${expectedFrontends} and ${pool}`);
    syncsBefore = c.lines.filter((l) => l.msg === 'synced').length;
    for (const program of ['xdp', 'tc'] as const) rows.push(...measureProgram(ctx, dp, plan, program));
  } finally {
    closeDp();
  }
  const stillRunning = c.proc.exitCode === null && c.proc.signalCode === null;
  if (!stillRunning) throw new Error(`${n} Services: the controller stopped during the measurement:\n${c.stderrTail()}`);
  const rss = rssKb(c.proc.pid);
  const syncsDuring = c.lines.filter((l) => l.msg === 'synced').length - syncsBefore;
  stop();
  removePins();
  rmSync(sourceDir, { recursive: true, force: true });
  return {
    info: {
      services: n, node_ports: nodePorts, backends: pool, frontends: expectedFrontends, source_files: files,
      controller: {
        first_sync_ms: Math.round(syncMs), writes: synced.writes as number, sync_log: synced,
        rss_mb: rss === null ? null : Math.round(rss / 1024), syncs_during_measurement: syncsDuring, still_running: stillRunning,
      },
    },
    rows,
  };
}

// ---- output ----

function table(rows: Row[], sizes: number[]): string[] {
  const at = (p: Program, row: RowName, n: number) => rows.find((r) => r.program === p && r.row === row && r.services === n);
  const first = sizes[0]!, last = sizes[sizes.length - 1]!;
  const head = ['hook', 'row', ...sizes.map((n) => `${n.toLocaleString('en-US')} Svc: mean / p50 / p99 / p99.9`), `${last.toLocaleString('en-US')}/${first.toLocaleString('en-US')} mean (p99)`, 'target'];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const p of ['xdp', 'tc'] as const) {
    for (const row of ROWS) {
      const cells = sizes.map((n) => {
        const r = at(p, row, n);
        return r ? `${r.net.mean} / ${r.net.p50} / ${r.net.p99} / ${r.net.p999}` : '—';
      });
      const a = at(p, row, first), b = at(p, row, last);
      const ratio = a && b && a !== b ? `${r2(b.net.mean / a.net.mean)} (${r2(b.net.p99 / a.net.p99)})` : '—';
      lines.push(`| ${p} | ${ROW_LABEL[row]} | ${cells.join(' | ')} | ${ratio} | ${TARGET[row]} |`);
    }
  }
  const empties = sizes.map((n) => {
    const e = rows.filter((r) => r.services === n);
    const by = (p: Program) => e.filter((r) => r.program === p).map((r) => r.empty.p50);
    return `${n.toLocaleString('en-US')}: xdp ${Math.min(...by('xdp'))}–${Math.max(...by('xdp'))}, tc ${Math.min(...by('tc'))}–${Math.max(...by('tc'))}`;
  });
  lines.push('', `ns net of the empty program (the median of its interleaved calls, per row; subtracted: ${empties.join('; ')} ns).`);
  const tails = rows.filter((r) => r.row === 'new_flow').map((r) =>
    `${r.program}/${r.services.toLocaleString('en-US')}: ${r2(r.slow_calls.share * 100)}% over ${r.slow_calls.threshold_ns} ns, ${Math.round(r.slow_calls.gap_share * 100)}% of them ${r.slow_calls.common_gap} calls apart`);
  lines.push(`New-flow tail (kx_ct_new's LRU refills its per-CPU free list 128 entries at a time = every 64 new flows): ${tails.join('; ')}.`);
  return lines;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.error('bench/datapath: needs root (BPF_PROG_TEST_RUN, bpffs, a network namespace)');
    process.exit(1);
  }
  ensureBpffs();
  const started = Date.now();
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(sig, () => { cleanupAll(); process.exit(130); });
  process.on('exit', cleanupAll);

  // The measuring process on the last CPU, the controller on CPU 0.
  const nCpu = cpus().length;
  const benchCpu = nCpu > 1 ? nCpu - 1 : 0;
  sh('taskset', ['-a', '-pc', String(benchCpu), String(process.pid)]);

  const work = mkdtempSync(join(tmpdir(), 'kxbench-datapath-'));
  onCleanup(`work dir ${work}`, () => rmSync(work, { recursive: true, force: true }));
  const kx = new Libkx();
  const helper = buildHelper(work);

  sh('ip', ['netns', 'add', NETNS]);
  onCleanup(`netns ${NETNS}`, () => sh('ip', ['netns', 'del', NETNS], false));
  sh('nsenter', inNetns(['sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']));
  sh('ip', ['-n', NETNS, 'link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1']);
  for (const l of ['lo', 'veth0', 'veth1']) sh('ip', ['-n', NETNS, 'link', 'set', l, 'up']);

  // Another build may replace build/*.bpf.o while this runs: every size uses this run's copies.
  const obj = join(work, 'kube_xdp.bpf.o'), emptyObj = join(work, 'empty.bpf.o');
  copyFileSync(KX_OBJ, obj);
  copyFileSync(EMPTY_OBJ, emptyObj);
  const objects = Object.fromEntries([[KX_OBJ, obj], [EMPTY_OBJ, emptyObj]].map(([src, copy]) => [src!, {
    sha256: createHash('sha256').update(readFileSync(copy!)).digest('hex'), built: statSync(src!).mtime.toISOString(),
  }]));
  const loadStart = loadavg();
  const emptyPin = `/sys/fs/bpf/kx-bench-${process.pid}-empty`;
  const emptyHandle = kx.objOpenLoad(emptyObj, emptyPin);
  onCleanup('empty object', () => {
    kx.objClose(emptyHandle);
    rmSync(emptyPin, { recursive: true, force: true });
  });
  const fw = new FrameWriter();
  const ctx: Ctx = {
    kx, obj, helper, fw,
    empty: {
      xdp: { fd: kx.objProgFd(emptyHandle, EMPTY_PROG.xdp), label: EMPTY_PROG.xdp },
      tc: { fd: kx.objProgFd(emptyHandle, EMPTY_PROG.tc), label: EMPTY_PROG.tc },
    },
    frames: Buffer.alloc(CHUNK * fw.size), out: Buffer.alloc(CHUNK * fw.size),
    outSizes: new Uint32Array(CHUNK), durs: new Uint32Array(CHUNK), edurs: new Uint32Array(CHUNK), rets: new Uint32Array(CHUNK),
  };

  const sizes: SizeInfo[] = [];
  const rows: Row[] = [];
  for (const n of SIZES) {
    const r = await measureSize(ctx, n, work);
    sizes.push(r.info);
    rows.push(...r.rows);
  }
  cleanupAll();

  const first = SIZES[0]!, last = SIZES[SIZES.length - 1]!;
  const ratios: Record<string, Record<string, { net_mean: number; net_p50: number; net_p99: number; measured_mean: number }>> = {};
  for (const p of ['xdp', 'tc'] as const) {
    ratios[p] = {};
    for (const row of ROWS) {
      const a = rows.find((r) => r.program === p && r.row === row && r.services === first)!;
      const b = rows.find((r) => r.program === p && r.row === row && r.services === last)!;
      ratios[p]![row] = { net_mean: r2(b.net.mean / a.net.mean), net_p50: r2(b.net.p50 / a.net.p50), net_p99: r2(b.net.p99 / a.net.p99), measured_mean: r2(b.measured.mean / a.measured.mean) };
    }
  }
  const cpuModel = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpus()[0]?.model ?? 'unknown';
  const clocksource = (() => {
    try {
      return readFileSync('/sys/devices/system/clocksource/clocksource0/current_clocksource', 'utf8').trim();
    } catch {
      return 'unknown';
    }
  })();
  const result = {
    kernel: release(),
    cpu: `${nCpu} × ${cpuModel}`,
    clocksource,
    date: new Date().toISOString(),
    node: process.version,
    objects,
    load_average: { start: loadStart.map(r2), end: loadavg().map(r2) },
    method: {
      programs: 'kx_xdp_ext (XDP: client 100.64/10 -> node IP 10.255.0.1:NodePort, external scope) and kx_tc_pod (tc: pod 10.160/11 -> ClusterIP:80, internal scope), loaded by the bench from build/kube_xdp.bpf.o on the controller\'s pin root',
      controller: `kube-xdp run --source file:DIR (List JSON, 5,000 Services per file) --node-name ${NODE_NAME} --node-ip ${ipStr(NODE_IP)} --cluster-cidr ${CLUSTER_CIDR} --external-interfaces veth0 (a veth in netns kxbench-<pid>) --pod-interfaces 'nomatch*', pinned to CPU 0 and running throughout (conntrack GC every 10 s, periodic full syncs)`,
      services: `each Service: ClusterIP (10.96/12) port 80 -> targetPort 8080, type NodePort (ports from ${NODE_PORT_BASE}) while NodePorts last (${MAX_NODE_PORTS} at most: one TCP port each), externalTrafficPolicy Cluster, ${ENDPOINTS_PER_SERVICE} ready endpoints on this node (so neither path source-NATs: kube-xdp keeps the client address for local endpoints)`,
      timing: 'one BPF_PROG_TEST_RUN call (repeat=1) per packet, the kernel\'s duration of each call (bench/kxbench.c: a C loop over the calls, run from Node through ffi-napi per 50,000 frames); the empty program of the same hook (kx_empty_xdp / kx_empty_tc) runs on the same frame just before (even calls) or after (odd calls) each measured call; net = measured statistic - median of those empty calls',
      frames: `Ethernet + IPv4 (20) + TCP (20) + ${PAYLOAD_BYTES} bytes of payload = ${fw.size} bytes, valid IPv4 and TCP checksums; each call gets the frame as built (an "established" packet is the client's original one every time)`,
      rows: {
        non_service_distinct: 'random src (the hook\'s client range), random dst in 172.16/12, random ports: never a frontend or a conntrack entry (misses in both conntrack tables and kx_frontends)',
        non_service_hot: 'one such tuple, every call',
        established_hot: 'the ACK of one established flow (in kx_ct), every call',
        established_spread: `ACKs of ${SPREAD_FLOWS} established flows in random order (a fresh permutation per pass); each flow created first: SYN through the program, the backend's SYN-ACK through kx_tc_pod (a local backend's reply), so it is in kx_ct`,
        new_flow: `SYN from a distinct client address:port per call to a random Service (NodePort for xdp, ClusterIP for tc); kx_ct_new emptied every ${CHUNK} flows (${2 * CHUNK} of its 131,072 entries) outside the timed calls, so no new flow evicts; kx_ct holds the ${SPREAD_FLOWS} flows (${2 * SPREAD_FLOWS} entries) throughout`,
        non_service_distinct_ct_empty: 'diagnostic: non_service_distinct again after both conntrack tables were emptied',
        syn_flood: 'not repeated here: test/bpf/conntrack.test.ts (KX_FLOOD) keeps >= 99.9% of 1,000 established flows on their backend through 3M distinct SYNs',
      },
      checks: 'every call: verdict PASS (XDP_PASS / TC_ACT_OK); non-Service output byte-identical to its input; new flow output destination in the Service\'s backend set, source unchanged; established output on the flow\'s own backend; every 997th output has valid IPv4 and TCP checksums; kx_stats deltas exact per row (ct_expired, the controller\'s GC, recorded only); map sizes after the sync as planned',
      cpus: `bench on CPU ${benchCpu}, controller on CPU 0`,
    },
    sample_sizes: { calls_per_row: CALLS, empty_calls_per_row: CALLS, warmup_calls_per_row: WARMUP_CALLS, spread_flows: SPREAD_FLOWS, frames_per_c_loop: CHUNK },
    targets_net_ns: TARGET,
    sizes,
    rows,
    ratio_last_over_first: { over: `${last} / ${first} Services`, ...ratios },
    wall_s: r1((Date.now() - started) / 1000),
  };
  mkdirSync(dirname(RESULTS), { recursive: true });
  writeFileSync(RESULTS, `${JSON.stringify(result, null, 2)}\n`);

  console.log([
    `## kube-xdp datapath, BPF_PROG_TEST_RUN repeat=1 — kernel ${result.kernel}, ${result.cpu}, ${result.date}`,
    '',
    ...table(rows, SIZES),
    `${CALLS.toLocaleString('en-US')} calls per row (+ as many empty-program calls), ${SPREAD_FLOWS.toLocaleString('en-US')} established flows; NodePorts: ${sizes.map((s) => `${s.services.toLocaleString('en-US')} Svc → ${s.node_ports.toLocaleString('en-US')}`).join(', ')}; controller running (first sync ${sizes.map((s) => `${r1(s.controller.first_sync_ms / 1000)} s`).join(' / ')}). SYN flood: test/bpf/conntrack.test.ts (KX_FLOOD). ${result.wall_s} s.`,
    `-> ${RESULTS}`,
  ].join('\n'));
}

main().catch((e: unknown) => {
  log(`failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
  cleanupAll();
  process.exit(1);
});
