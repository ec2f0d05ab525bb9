// Sync benchmark: what it costs to program N Services (10 endpoints each) in the iptables mode
// (render → iptables-restore --noflush, applied in a scratch network namespace) and in the eBPF
// mode (compile → plan → batch map writes into maps loaded from build/kube_xdp.bpf.o under a
// scratch pin dir, no program attached), for a full sync and for a single-endpoint change.
//
// Per size (1,000 and 10,000 Services; every 5th is a NodePort, the rest ClusterIP; endpoints
// alternate between this node and another):
//  - iptables, full sync into empty tables: tables reset and kube-proxy's jump rules ensured
//    (untimed), then iptables-save -t nat (the stale-chain scan), render, restore — as
//    IptablesDataplane's first sync does.
//  - iptables, full resync: the same with every rule already in place (a periodic full sync).
//  - iptables, partial: one Service's endpoints go 10 → 9 → 10 …; changedServices(prev, next),
//    render of that Service's chains only, restore. No stale-chain scan: with more than 1,000
//    endpoints the dataplane scans only every staleChainScanPeriod, as kube-proxy does.
//  - eBPF, full sync into empty maps: a fresh object load per trial (untimed), then read back
//    the (empty) maps, compile, plan, apply — as EbpfDataplane.start() + sync() do.
//  - eBPF, full resync: maps read back, compile, plan against them (nothing to write), apply.
//  - eBPF, partial: the same endpoint change: compile, plan against the state in memory, apply.
// Each figure is the median of TRIALS runs, with min and max. A full iptables sync whose restore
// takes longer than FULL_BUDGET_S is not repeated (at that size: one initial, one resync) —
// iptables-nft 1.8.9 restores grow faster than quadratically with the number of chains.
// Correctness checks (restore exit codes, rule and entry counts in the kernel) fail the run;
// timings are numbers to look at. Results: bench/results/sync-iptables.json (the legacy backend:
// sync-iptables-legacy.json) and a table on stdout.
//
// Environment: KXBENCH_SIZES=1000,10000  KXBENCH_TRIALS=3  KXBENCH_FULL_BUDGET_S=180
//   KXBENCH_RESTORE_TIMEOUT_S=5400  KXBENCH_IPTABLES_BACKEND=nft|legacy (default nft, what
//   Debian 12's iptables points to).
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { cpus, release, totalmem } from 'node:os';
import { Libkx } from '../src/kernel/libkx.js';
import { chainsOf, type IptablesBackend } from '../src/kernel/iptables.js';
import { changedServices } from '../src/model/diff.js';
import type { ProxyState } from '../src/model/types.js';
import { masqueradeMarkFor, DEFAULT_MASQUERADE_BIT, type IptablesConfig } from '../src/dataplane/iptables/config.js';
import { renderIptables } from '../src/dataplane/iptables/render.js';
import { JUMP_RULES } from '../src/dataplane/iptables/jumps.js';
import { KUBE_PROXY_CANARY, serviceChains, servicePortName } from '../src/dataplane/kube-names.js';
import { applyPlan, readMaps } from '../src/dataplane/ebpf/apply.js';
import { compile, type EbpfNodeConfig } from '../src/dataplane/ebpf/compile.js';
import { CONTROLLED_MAPS } from '../src/dataplane/ebpf/dataplane.js';
import { KernelMaps } from '../src/dataplane/ebpf/kernel-maps.js';
import { plan, type AppliedState } from '../src/dataplane/ebpf/plan.js';
import { appliedFromMaps } from '../src/dataplane/ebpf/readback.js';
import { KX_OBJ, REPO, ensureBpffs, uniquePinRoot } from '../test/bpf/fixture.js';
import { makeEndpointSlice, makeService, objects, type Json } from '../test/unit/helpers/kube-objects.js';

const envList = (name: string, dflt: number[]): number[] =>
  process.env[name] ? process.env[name]!.split(',').map((s) => Number(s.trim())).filter((x) => Number.isInteger(x) && x > 0) : dflt;
const SIZES = envList('KXBENCH_SIZES', [1_000, 10_000]);
const TRIALS = envList('KXBENCH_TRIALS', [3])[0] ?? 3;
const BACKEND: IptablesBackend = process.env['KXBENCH_IPTABLES_BACKEND'] === 'legacy' ? 'legacy' : 'nft';
const ENDPOINTS = 10;
const NODEPORT_EVERY = 5; // every 5th Service is a NodePort: 2,000 at 10k fit the default 30000-32767
const NODEPORT_BASE = 30000;
const FULL_BUDGET_S = envList('KXBENCH_FULL_BUDGET_S', [180])[0] ?? 180;
const RESTORE_TIMEOUT_S = envList('KXBENCH_RESTORE_TIMEOUT_S', [5400])[0] ?? 5400;
const RESULTS = `${REPO}bench/results/sync-iptables${BACKEND === 'legacy' ? '-legacy' : ''}.json`;

const NAMESPACE = 'bench';
const THIS_NODE = 'node-a';
const OTHER_NODE = 'node-b';
const NODE_IP = '192.168.1.10';
const POD_CIDR = '10.128.0.0/9';
const ipOf = (n: number): string => `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
const SVC_BASE = 0x0a600001; // 10.96.0.1, in 10.96.0.0/12
const POD_BASE = 0x0a800001; // 10.128.0.1, in POD_CIDR

const IPT_CFG: IptablesConfig = {
  family: 'IPv4', nodeIP: NODE_IP, localAddresses: ['127.0.0.1', NODE_IP], clusterCIDRs: [POD_CIDR],
  masqueradeAll: false, masqueradeMark: masqueradeMarkFor(DEFAULT_MASQUERADE_BIT), localhostNodePorts: true,
  nodePortAddresses: [], randomFully: true, conntrackTCPLiberal: false,
};
const EBPF_NODE: EbpfNodeConfig = { nodeAddresses: [NODE_IP] };

// ---- helpers ----

interface Stat { median: number; min: number; max: number; trials: number[] }
const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d;
const stat = (xs: number[]): Stat => {
  const s = [...xs].sort((a, b) => a - b);
  return { median: round(s[Math.floor(s.length / 2)]!), min: round(s[0]!), max: round(s[s.length - 1]!), trials: xs.map((x) => round(x)) };
};
const sum = (...xs: number[]): number => xs.reduce((a, b) => a + b, 0);
const timed = <T>(f: () => T): [T, number] => {
  const t0 = performance.now();
  const r = f();
  return [r, performance.now() - t0];
};

function run(bin: string, args: string[], input?: string, timeout?: number): SpawnSyncReturns<string> {
  const r = spawnSync(bin, args, { input, encoding: 'utf8', maxBuffer: 1 << 30, timeout });
  if (r.error) throw new Error(`${bin} ${args.join(' ')}: ${r.error.message}`);
  return r;
}
function check(r: SpawnSyncReturns<string>, what: string): string {
  if (r.status !== 0) throw new Error(`${what} failed (exit ${r.status ?? r.signal}): ${r.stderr.trim().slice(0, 2000)}`);
  return r.stdout;
}

// ---- the Services ----

interface Workload {
  full: ProxyState; // the changed Service with 10 endpoints
  minus: ProxyState; // … with 9
  changed: string; // "namespace/name"
  svcChain: string; // its KUBE-SVC chain
  buildMs: number;
}

function endpointsOf(i: number, count: number): Json[] {
  const out: Json[] = [];
  for (let k = 0; k < count; k++) {
    out.push({ addresses: [ipOf(POD_BASE + i * ENDPOINTS + k)], nodeName: k % 2 === 0 ? THIS_NODE : OTHER_NODE, conditions: { ready: true } });
  }
  return out;
}

function sliceOf(i: number, count: number): Json {
  return makeEndpointSlice(NAMESPACE, `svc-${i}`, 1, (s) => {
    s.endpoints = endpointsOf(i, count);
    s.ports = [{ name: 'http', port: 8080, protocol: 'TCP' }];
  });
}

/** Through the real model (Kubernetes JSON → ChangeTracker → ProxyState), as a source feeds it. */
function workload(n: number): Workload {
  const t0 = performance.now();
  const o = objects();
  for (let i = 0; i < n; i++) {
    const nodePort = i % NODEPORT_EVERY === 0;
    const svc = makeService(NAMESPACE, `svc-${i}`, (s) => {
      const ip = ipOf(SVC_BASE + i);
      s.spec = {
        type: nodePort ? 'NodePort' : 'ClusterIP', clusterIP: ip, clusterIPs: [ip],
        ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080, ...(nodePort ? { nodePort: NODEPORT_BASE + i / NODEPORT_EVERY } : {}) }],
      };
    });
    o.apply(svc, sliceOf(i, ENDPOINTS));
  }
  const node = { nodeName: THIS_NODE };
  const full = o.state(node);
  const idx = Math.floor(n / 2 / NODEPORT_EVERY) * NODEPORT_EVERY; // a NodePort Service mid-list
  o.apply(sliceOf(idx, ENDPOINTS - 1));
  const minus = o.state(node);
  if (o.problems.length) throw new Error(`model problems: ${o.problems.slice(0, 3).map((p) => p.text).join('; ')}`);
  if (full.services.length !== n || minus.services.length !== n) throw new Error(`expected ${n} service ports, got ${full.services.length}/${minus.services.length}`);
  const sp = full.services.find((s) => s.name === `svc-${idx}`)!;
  if (sp.nodePort === null || sp.endpoints.length !== ENDPOINTS) throw new Error(`svc-${idx}: expected a NodePort with ${ENDPOINTS} endpoints`);
  return {
    full, minus, changed: `${NAMESPACE}/svc-${idx}`,
    svcChain: serviceChains(servicePortName(sp), 'tcp').cluster,
    buildMs: performance.now() - t0,
  };
}

// ---- iptables in a scratch network namespace ----

class ScratchNetns {
  readonly name = `kxbench-${process.pid}`;
  readonly path = `/run/netns/${this.name}`;
  private created = false;
  readonly bin: string;

  constructor(readonly backend: IptablesBackend) {
    this.bin = `iptables-${backend}`;
  }

  create(): void {
    check(run('ip', ['netns', 'add', this.name]), `ip netns add ${this.name}`);
    this.created = true;
  }

  /** bin args… inside the namespace (nsenter execs it: the child is the iptables process). */
  exec(bin: string, args: string[], input?: string): SpawnSyncReturns<string> {
    return run('nsenter', [`--net=${this.path}`, '--', bin, ...args], input, RESTORE_TIMEOUT_S * 1000);
  }

  restore(text: string): number {
    const [r, ms] = timed(() => this.exec(`${this.bin}-restore`, ['-w', '5', '--noflush', '--counters'], text));
    check(r, `${this.bin}-restore --noflush --counters (in ${this.name})`);
    return ms;
  }

  save(table: 'filter' | 'nat'): [string, number] {
    const [r, ms] = timed(() => this.exec(`${this.bin}-save`, ['-t', table]));
    return [check(r, `${this.bin}-save -t ${table}`), ms];
  }

  /** Empty filter, nat and mangle tables (a restore without --noflush), then kube-proxy's jump
   * rules and canaries, as IptablesDataplane ensures them before a full sync. Untimed. */
  reset(): void {
    check(this.exec(`${this.bin}-restore`, ['-w', '5'], '*filter\nCOMMIT\n*nat\nCOMMIT\n*mangle\nCOMMIT\n'), 'reset');
    const ipt = (args: string[]) => this.exec(this.bin, ['-w', '5', ...args]);
    const chain = (table: string, c: string) => {
      const r = ipt(['-t', table, '-N', c]);
      if (r.status !== 0 && !/exists/i.test(r.stderr)) check(r, `${this.bin} -t ${table} -N ${c}`);
    };
    for (const t of ['filter', 'nat', 'mangle']) chain(t, KUBE_PROXY_CANARY);
    for (const j of JUMP_RULES) {
      chain(j.table, j.to);
      check(ipt(['-t', j.table, '-I', j.from, ...j.args]), `${this.bin} -t ${j.table} -I ${j.from}`);
    }
  }

  /** Spawning nsenter + the binary, for scale: `iptables --version` in the namespace. */
  spawnOverheadMs(): number {
    const xs: number[] = [];
    for (let i = 0; i < 5; i++) xs.push(timed(() => check(this.exec(this.bin, ['--version']), 'version'))[1]);
    return stat(xs).median;
  }

  destroy(): void {
    if (!this.created && !existsSync(this.path)) return;
    const r = spawnSync('ip', ['netns', 'delete', this.name], { encoding: 'utf8' });
    if (r.status !== 0) console.error(`warning: ip netns delete ${this.name}: ${r.stderr?.trim()}`);
    this.created = false;
  }
}

const ruleLines = (save: string): number => save.split('\n').filter((l) => l.startsWith('-A ')).length;
const kubeRuleLines = (save: string): number => save.split('\n').filter((l) => /^-A KUBE-/.test(l)).length;

interface IptFull {
  save_ms: Stat; render_ms: Stat; restore_ms: Stat; total_ms: Stat;
  text_bytes: number; text_lines: number; rules_written: number; deleted_chains: number;
  /** Fewer than TRIALS when a restore took longer than FULL_BUDGET_S. */
  trials_run: number;
}
interface IptPartial { diff_ms: Stat; render_ms: Stat; restore_ms: Stat; total_ms: Stat; text_bytes: Stat; rules_written: Stat; rules_skipped: number }
interface IptResult {
  rules: { filter: number; nat: number; total: number; nat_chains: number };
  kernel: { filter_rules: number; nat_rules: number; kube_rules: number; nat_save_bytes: number };
  full_initial: IptFull;
  full_resync: IptFull;
  partial: IptPartial;
}

function iptFull(ns: ScratchNetns, state: ProxyState, fresh: boolean, trials: number): IptFull {
  const save: number[] = [], render: number[] = [], restore: number[] = [], total: number[] = [];
  let bytes = 0, lines = 0, rules = 0, deleted = 0;
  for (let t = 0; t < trials; t++) {
    if (fresh) ns.reset();
    const [natSave, saveMs] = ns.save('nat');
    const [r, renderMs] = timed(() => renderIptables(state, IPT_CFG, { changedServices: null, existingNatChains: chainsOf(natSave) }));
    for (const w of r.warnings) console.error(`render warning: ${w}`);
    const restoreMs = ns.restore(r.text);
    save.push(saveMs); render.push(renderMs); restore.push(restoreMs); total.push(saveMs + renderMs + restoreMs);
    bytes = Buffer.byteLength(r.text); lines = r.text.split('\n').length - 1; rules = r.filterRules + r.natRules; deleted = r.deletedChains.length;
    if (deleted !== 0) throw new Error(`full sync deleted ${deleted} chains, expected none`);
    console.error(`  iptables full (${fresh ? 'empty tables' : 'resync'}) #${t + 1}: save ${round(saveMs)} ms, render ${round(renderMs)} ms, restore ${round(restoreMs)} ms`);
    if (restoreMs > FULL_BUDGET_S * 1000 && t < trials - 1) {
      console.error(`  (restore took more than ${FULL_BUDGET_S} s: not repeated)`);
      break;
    }
  }
  return {
    save_ms: stat(save), render_ms: stat(render), restore_ms: stat(restore), total_ms: stat(total),
    text_bytes: bytes, text_lines: lines, rules_written: rules, deleted_chains: deleted, trials_run: restore.length,
  };
}

function iptPartial(ns: ScratchNetns, w: Workload): IptPartial {
  const diff: number[] = [], render: number[] = [], restore: number[] = [], total: number[] = [], bytes: number[] = [], rules: number[] = [];
  let skipped = 0;
  let prev = w.full; // what the kernel holds now
  for (let t = 0; t < TRIALS * 2; t++) { // 10 → 9, 9 → 10: TRIALS of each
    const next = prev === w.full ? w.minus : w.full;
    const [changed, diffMs] = timed(() => changedServices(prev, next));
    if (changed.size !== 1 || !changed.has(w.changed)) throw new Error(`changedServices: expected {${w.changed}}, got ${JSON.stringify([...changed])}`);
    const [r, renderMs] = timed(() => renderIptables(next, IPT_CFG, { changedServices: changed, existingNatChains: null }));
    const restoreMs = ns.restore(r.text);
    diff.push(diffMs); render.push(renderMs); restore.push(restoreMs); total.push(diffMs + renderMs + restoreMs);
    bytes.push(Buffer.byteLength(r.text)); rules.push(r.filterRules + r.natRules);
    skipped = r.skippedNatRules;
    console.error(`  iptables partial ${prev === w.full ? '10→9' : '9→10'}: diff ${round(diffMs)} ms, render ${round(renderMs)} ms, restore ${round(restoreMs)} ms (${r.filterRules + r.natRules} rules)`);
    prev = next;
  }
  // The kernel must now hold the last state: the changed Service's KUBE-SVC chain jumps to each endpoint.
  const [nat] = ns.save('nat');
  const jumps = nat.split('\n').filter((l) => l.startsWith(`-A ${w.svcChain} `) && / -j KUBE-SEP-/.test(l)).length;
  const want = prev.services.find((s) => `${s.namespace}/${s.name}` === w.changed)!.clusterEndpoints.length;
  if (jumps !== want) throw new Error(`after the partial syncs ${w.svcChain} has ${jumps} endpoint jumps, expected ${want}`);
  return { diff_ms: stat(diff), render_ms: stat(render), restore_ms: stat(restore), total_ms: stat(total), text_bytes: stat(bytes), rules_written: stat(rules), rules_skipped: skipped };
}

function iptables(ns: ScratchNetns, w: Workload): IptResult {
  ns.create();
  try {
    const initial = iptFull(ns, w.full, true, TRIALS);
    const slow = initial.restore_ms.max > FULL_BUDGET_S * 1000;
    const r = renderIptables(w.full, IPT_CFG, {});
    const [filterSave] = ns.save('filter');
    const [natSave] = ns.save('nat');
    const kernel = {
      filter_rules: ruleLines(filterSave), nat_rules: ruleLines(natSave),
      kube_rules: kubeRuleLines(filterSave) + kubeRuleLines(natSave), nat_save_bytes: Buffer.byteLength(natSave),
    };
    if (kernel.kube_rules !== r.filterRules + r.natRules) {
      throw new Error(`kernel holds ${kernel.kube_rules} KUBE-* rules, the render wrote ${r.filterRules + r.natRules}`);
    }
    const resync = iptFull(ns, w.full, false, slow ? 1 : TRIALS);
    const partial = iptPartial(ns, w);
    return {
      rules: { filter: r.filterRules, nat: r.natRules, total: r.filterRules + r.natRules, nat_chains: r.activeNatChains.size },
      kernel, full_initial: initial, full_resync: resync, partial,
    };
  } finally {
    ns.destroy();
  }
}

// ---- eBPF maps under a scratch pin dir ----

interface EbpfRun { read_ms: Stat; compile_ms: Stat; plan_ms: Stat; apply_ms: Stat; total_ms: Stat; writes: Stat }
interface EbpfResult {
  entries: { frontends: number; backends: number; slots: number; revnat: number };
  full_initial: EbpfRun;
  full_resync: EbpfRun;
  partial: EbpfRun;
}

class Recorder {
  private readonly cols: Record<'read' | 'compile' | 'plan' | 'apply' | 'total' | 'writes', number[]> = { read: [], compile: [], plan: [], apply: [], total: [], writes: [] };
  add(read: number, comp: number, pl: number, apply: number, writes: number): void {
    this.cols.read.push(read); this.cols.compile.push(comp); this.cols.plan.push(pl); this.cols.apply.push(apply);
    this.cols.total.push(read + comp + pl + apply); this.cols.writes.push(writes);
  }
  result(): EbpfRun {
    const c = this.cols;
    return { read_ms: stat(c.read), compile_ms: stat(c.compile), plan_ms: stat(c.plan), apply_ms: stat(c.apply), total_ms: stat(c.total), writes: stat(c.writes) };
  }
}

class ScratchPins {
  readonly root = uniquePinRoot('kxbench-sync');
  private readonly handles = new Set<number>();
  constructor(private readonly kx: Libkx) {}

  load(sub: string): { handle: number; maps: KernelMaps } {
    const handle = this.kx.objOpenLoad(KX_OBJ, `${this.root}/${sub}`);
    this.handles.add(handle);
    return { handle, maps: KernelMaps.ofObject(this.kx, handle, CONTROLLED_MAPS) };
  }

  unload(handle: number, sub: string): void {
    this.handles.delete(handle);
    try {
      this.kx.objClose(handle);
    } finally {
      rmSync(`${this.root}/${sub}`, { recursive: true, force: true });
    }
  }

  destroy(): void {
    for (const h of this.handles) {
      try {
        this.kx.objClose(h);
      } catch (err) {
        console.error(`warning: closing BPF object ${h}: ${(err as Error).message}`);
      }
    }
    this.handles.clear();
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** compile → plan → apply against `applied` (null: read the maps back first, as a full sync does). */
function ebpfSync(maps: KernelMaps, state: ProxyState, applied: AppliedState | null, rec: Recorder): AppliedState {
  const [base, readMs] = applied ? [applied, 0] : timed(() => appliedFromMaps(readMaps(maps)));
  const [{ desired, problems }, compileMs] = timed(() => compile(state, EBPF_NODE));
  if (problems.length) throw new Error(`compile problems: ${problems.slice(0, 3).map((p) => p.reason).join('; ')}`);
  const [p, planMs] = timed(() => plan(base, desired));
  const [, applyMs] = timed(() => applyPlan(maps, p));
  rec.add(readMs, compileMs, planMs, applyMs, p.writes);
  return p.next;
}

function ebpf(pins: ScratchPins, w: Workload): EbpfResult {
  const n = w.full.services.length;
  const initial = new Recorder();
  let kept: { handle: number; maps: KernelMaps; sub: string; applied: AppliedState } | null = null;
  try {
    for (let t = 0; t < TRIALS; t++) {
      const sub = `n${n}-t${t}`;
      const { handle, maps } = pins.load(sub); // fresh, empty maps
      const applied = ebpfSync(maps, w.full, null, initial);
      const r = initial.result();
      console.error(`  eBPF full (empty maps) #${t + 1}: read ${r.read_ms.trials[t]} ms, compile ${r.compile_ms.trials[t]} ms, plan ${r.plan_ms.trials[t]} ms, apply ${r.apply_ms.trials[t]} ms, ${r.writes.trials[t]} writes`);
      if (t < TRIALS - 1) pins.unload(handle, sub);
      else kept = { handle, maps, sub, applied };
    }
    const { maps } = kept!;
    const dumps = readMaps(maps);
    const { desired } = compile(w.full, EBPF_NODE);
    const entries = { frontends: dumps.frontends.length, backends: dumps.backends.length, slots: dumps.slots.length, revnat: dumps.revnat.length };
    const wantSlots = [...desired.frontends.values()].reduce((s, f) => s + f.backends.length, 0);
    if (entries.frontends !== desired.frontends.size || entries.slots !== wantSlots) {
      throw new Error(`maps hold ${entries.frontends} frontends / ${entries.slots} slots, expected ${desired.frontends.size} / ${wantSlots}`);
    }

    const resync = new Recorder();
    for (let t = 0; t < TRIALS; t++) ebpfSync(maps, w.full, null, resync);
    const rr = resync.result();
    if (rr.writes.max !== 0) throw new Error(`full resync of unchanged state wrote ${rr.writes.max} entries`);
    console.error(`  eBPF full resync: ${rr.total_ms.median} ms (read ${rr.read_ms.median}, compile ${rr.compile_ms.median}, plan ${rr.plan_ms.median}, apply ${rr.apply_ms.median})`);

    const partial = new Recorder();
    let applied = kept!.applied;
    let cur = w.full;
    for (let t = 0; t < TRIALS * 2; t++) {
      const next = cur === w.full ? w.minus : w.full;
      applied = ebpfSync(maps, next, applied, partial);
      cur = next;
    }
    const pr = partial.result();
    console.error(`  eBPF partial: ${pr.total_ms.median} ms (compile ${pr.compile_ms.median}, plan ${pr.plan_ms.median}, apply ${pr.apply_ms.median}), writes ${pr.writes.trials.join('/')}`);
    // The maps must agree with what the planner believes: a re-read plan writes nothing.
    const check = plan(appliedFromMaps(readMaps(maps)), compile(cur, EBPF_NODE).desired);
    if (check.writes !== 0) throw new Error(`after the partial syncs the maps differ from the state: ${check.writes} writes pending`);
    return { entries, full_initial: initial.result(), full_resync: rr, partial: pr };
  } finally {
    if (kept) pins.unload(kept.handle, kept.sub);
  }
}

// ---- main ----

function versionOf(bin: string): string {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  return (r.stdout || r.stderr || '').trim();
}

function main(): void {
  if (process.getuid?.() !== 0) {
    console.error('bench/sync: needs root (network namespaces, iptables, bpffs)');
    process.exit(1);
  }
  if (!existsSync(KX_OBJ)) throw new Error(`${KX_OBJ} missing: run make build`);
  ensureBpffs();
  const started = Date.now();
  const kx = new Libkx();
  const ns = new ScratchNetns(BACKEND);
  const pins = new ScratchPins(kx);
  let cleaned = false;
  const cleanup = () => {
    if (cleaned) return;
    cleaned = true;
    try {
      ns.destroy();
    } finally {
      pins.destroy();
    }
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => { cleanup(); process.exit(130); });

  const scenarios: Array<{ services: number; nodeport_services: number; endpoints: number; build_ms: number; changed_service: string; iptables: IptResult; ebpf: EbpfResult }> = [];
  let spawnMs = 0;
  try {
    ns.create();
    spawnMs = ns.spawnOverheadMs();
    ns.destroy();
    for (const n of SIZES) {
      const w = workload(n);
      console.error(`${n} services: state built in ${round(w.buildMs)} ms; changing ${w.changed}`);
      const ipt = iptables(ns, w);
      const bpf = ebpf(pins, w);
      scenarios.push({
        services: n, nodeport_services: w.full.services.filter((s) => s.nodePort !== null).length,
        endpoints: w.full.services.reduce((s, sp) => s + sp.endpoints.length, 0), build_ms: round(w.buildMs),
        changed_service: w.changed, iptables: ipt, ebpf: bpf,
      });
    }
  } finally {
    cleanup();
  }

  const result = {
    kernel: release(),
    date: new Date().toISOString(),
    node: process.version,
    cpu: `${cpus().length} × ${cpus()[0]?.model ?? 'unknown'}`,
    memory_gib: round(totalmem() / 2 ** 30),
    iptables: { backend: BACKEND, binary: `iptables-${BACKEND}-restore`, version: versionOf(`iptables-${BACKEND}`), restore_args: '-w 5 --noflush --counters' },
    workload: {
      endpoints_per_service: ENDPOINTS,
      nodeport_every: NODEPORT_EVERY,
      description: `one TCP port per Service (80 → 8080); every ${NODEPORT_EVERY}th Service is a NodePort, the rest ClusterIP; ${ENDPOINTS} ready endpoints each, alternating between this node (${THIS_NODE}) and ${OTHER_NODE}; externalTrafficPolicy Cluster; built through the ChangeTracker`,
      partial_change: `one NodePort Service mid-list loses its last endpoint (${ENDPOINTS} → ${ENDPOINTS - 1}) and gets it back, alternately`,
    },
    trials: TRIALS,
    full_budget_s: FULL_BUDGET_S,
    restore_timeout_s: RESTORE_TIMEOUT_S,
    spawn_overhead_ms: spawnMs,
    method: {
      iptables_netns: 'a scratch network namespace kxbench-<pid>; every iptables binary runs through nsenter --net=/run/netns/kxbench-<pid>',
      iptables_full_initial: 'tables reset and jump rules ensured (untimed), then iptables-save -t nat (stale-chain scan) + renderIptables + restore; total = save + render + restore',
      iptables_full_resync: 'the same with every rule already in place (restore flushes and rewrites every chain)',
      iptables_partial: 'changedServices(prev, next) + renderIptables with changedServices (no stale-chain scan: large-cluster mode) + restore; TRIALS changes each way',
      ebpf_full_initial: 'fresh object load (untimed) into a scratch pin dir, then readMaps + appliedFromMaps (read), compile, plan, applyPlan (one batch call per map and operation)',
      ebpf_full_resync: 'the maps already hold the state: read back, compile, plan (0 writes), apply',
      ebpf_partial: 'compile + plan against the applied state in memory + apply; TRIALS changes each way',
      timings: 'wall-clock ms (performance.now); iptables restore/save include spawning nsenter + the binary (see spawn_overhead_ms); median, min, max of the trials',
    },
    scenarios,
    scaling: scaling(scenarios),
    wall_s: round((Date.now() - started) / 1000),
  };
  mkdirSync(dirname(RESULTS), { recursive: true });
  writeFileSync(RESULTS, `${JSON.stringify(result, null, 2)}\n`);
  console.log(table(result.iptables.version, spawnMs, scenarios, result.scaling, result.wall_s));
}

interface Scaling { from: number; to: number; rules_ratio: number; ratios: Record<string, number>; exponents: Record<string, number> }

/** Between consecutive sizes: how each median grows against the rule count (exponent k in time ∝ rules^k). */
function scaling(scenarios: Array<{ services: number; iptables: IptResult; ebpf: EbpfResult }>): Scaling[] {
  const out: Scaling[] = [];
  for (let i = 1; i < scenarios.length; i++) {
    const a = scenarios[i - 1]!, b = scenarios[i]!;
    const rulesRatio = b.iptables.rules.total / a.iptables.rules.total;
    const pick = (s: typeof a) => ({
      iptables_full_restore: s.iptables.full_initial.restore_ms.median,
      iptables_resync_restore: s.iptables.full_resync.restore_ms.median,
      iptables_partial_restore: s.iptables.partial.restore_ms.median,
      iptables_partial_total: s.iptables.partial.total_ms.median,
      ebpf_full_total: s.ebpf.full_initial.total_ms.median,
      ebpf_partial_total: s.ebpf.partial.total_ms.median,
    });
    const pa = pick(a), pb = pick(b);
    const ratios: Record<string, number> = {}, exponents: Record<string, number> = {};
    for (const k of Object.keys(pa) as Array<keyof typeof pa>) {
      if (pa[k] <= 0 || pb[k] <= 0) continue;
      ratios[k] = round(pb[k] / pa[k], 2);
      exponents[k] = round(Math.log(pb[k] / pa[k]) / Math.log(rulesRatio), 2);
    }
    out.push({ from: a.services, to: b.services, rules_ratio: round(rulesRatio, 2), ratios, exponents });
  }
  return out;
}

function table(iptVersion: string, spawnMs: number, scenarios: Array<{ services: number; iptables: IptResult; ebpf: EbpfResult; endpoints: number; nodeport_services: number }>, scale: Scaling[], wallS: number): string {
  const f = (s: Stat) => (s.trials.length === 1 ? `${s.median} (1×)` : `${s.median} [${s.min}–${s.max}]`);
  const n = (x: number) => x.toLocaleString('en-US');
  const rows: string[][] = [['services', 'mode', 'sync', 'writes', 'prepare ms', 'kernel ms', 'total ms', 'size']];
  for (const s of scenarios) {
    const i = s.iptables, e = s.ebpf;
    const svc = `${n(s.services)}`;
    const mb = (b: number) => `${round(b / 2 ** 20, 2)} MiB`;
    rows.push([svc, 'iptables', 'full, empty tables', n(i.full_initial.rules_written), `save ${f(i.full_initial.save_ms)} + render ${f(i.full_initial.render_ms)}`, `restore ${f(i.full_initial.restore_ms)}`, f(i.full_initial.total_ms), mb(i.full_initial.text_bytes)]);
    rows.push([svc, 'iptables', 'full resync', n(i.full_resync.rules_written), `save ${f(i.full_resync.save_ms)} + render ${f(i.full_resync.render_ms)}`, `restore ${f(i.full_resync.restore_ms)}`, f(i.full_resync.total_ms), mb(i.full_resync.text_bytes)]);
    rows.push([svc, 'iptables', '1 endpoint', n(i.partial.rules_written.median), `diff ${f(i.partial.diff_ms)} + render ${f(i.partial.render_ms)}`, `restore ${f(i.partial.restore_ms)}`, f(i.partial.total_ms), `${n(i.partial.text_bytes.median)} B`]);
    rows.push([svc, 'eBPF', 'full, empty maps', n(e.full_initial.writes.median), `read ${f(e.full_initial.read_ms)} + compile ${f(e.full_initial.compile_ms)} + plan ${f(e.full_initial.plan_ms)}`, `apply ${f(e.full_initial.apply_ms)}`, f(e.full_initial.total_ms), '']);
    rows.push([svc, 'eBPF', 'full resync', n(e.full_resync.writes.median), `read ${f(e.full_resync.read_ms)} + compile ${f(e.full_resync.compile_ms)} + plan ${f(e.full_resync.plan_ms)}`, `apply ${f(e.full_resync.apply_ms)}`, f(e.full_resync.total_ms), '']);
    rows.push([svc, 'eBPF', '1 endpoint', e.partial.writes.trials.join('/'), `compile ${f(e.partial.compile_ms)} + plan ${f(e.partial.plan_ms)}`, `apply ${f(e.partial.apply_ms)}`, f(e.partial.total_ms), '']);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const line = (r: string[]) => r.map((x, c) => (c < 3 ? x.padEnd(widths[c]!) : x.padStart(widths[c]!))).join(' | ');
  const counts = scenarios.map((s) => `${n(s.services)} Services (${n(s.nodeport_services)} NodePort, ${n(s.endpoints)} endpoints): iptables ${n(s.iptables.rules.filter)} filter + ${n(s.iptables.rules.nat)} nat rules, ${n(s.iptables.rules.nat_chains)} service chains (kernel: ${n(s.iptables.kernel.filter_rules)} filter, ${n(s.iptables.kernel.nat_rules)} nat); eBPF ${n(s.ebpf.entries.frontends)} frontends, ${n(s.ebpf.entries.backends)} backends, ${n(s.ebpf.entries.slots)} slots, ${n(s.ebpf.entries.revnat)} rev-NAT`);
  return [
    `kube-xdp sync cost — ${iptVersion} (${BACKEND}) in a scratch netns vs eBPF batch map writes; kernel ${release()}, ${cpus().length} CPUs; median [min–max] of ${TRIALS} trials (1 endpoint: ${TRIALS} each way)`,
    line(rows[0]!),
    widths.map((w) => '-'.repeat(w)).join('-|-'),
    ...rows.slice(1).map(line),
    ...counts,
    ...scale.map((x) => `${n(x.from)} → ${n(x.to)} Services (×${x.rules_ratio} rules): iptables full restore ×${x.ratios['iptables_full_restore']} (∝ rules^${x.exponents['iptables_full_restore']}), partial restore ×${x.ratios['iptables_partial_restore']}; eBPF full ×${x.ratios['ebpf_full_total']}, partial ×${x.ratios['ebpf_partial_total']}`),
    `spawning nsenter + an iptables binary: ${spawnMs} ms (included in save/restore); full syncs whose restore exceeds ${FULL_BUDGET_S} s are run once; ${wallS} s in all`,
    `-> ${RESULTS}`,
  ].join('\n');
}

main();
