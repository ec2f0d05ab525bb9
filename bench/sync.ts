// Sync benchmark: what it costs to program N Services (10 endpoints each) in the iptables mode
// (render → iptables-restore --noflush, applied in a scratch network namespace), in the nftables
// mode (render → nft -f -, another scratch namespace; bench/sync-nftables.ts) and in the eBPF
// mode (compile → plan → batch map writes into maps loaded from build/kube_xdp.bpf.o under a
// scratch pin dir, no program attached), for a full sync and for a single-endpoint change.
//
// Per size (1,000 and 10,000 Services; every 5th is a NodePort, the rest ClusterIP; endpoints
// alternate between this node and another), for each iptables backend (nft, then legacy):
//  - iptables, full sync into empty tables: tables reset and kube-proxy's jump rules ensured
//    (untimed), then iptables-save -t nat (the stale-chain scan), render, restore — as
//    IptablesDataplane's first sync does.
//  - iptables, full resync: the same with every rule already in place (a periodic full sync).
//  - iptables, partial: one Service's endpoints go 10 → 9 → 10 …; the tracker's change set
//    (made by its snapshot, timed as such), render of that Service's chains only, restore. No stale-chain scan: with more than 1,000
//    endpoints the dataplane scans only every staleChainScanPeriod, as kube-proxy does.
// and once per size:
//  - eBPF, full sync into empty maps: a fresh object load per trial (untimed), then read back
//    the (empty) maps, compile, plan, apply — as EbpfDataplane.start() + sync() do.
//  - eBPF, full resync: maps read back, compile, plan against them (nothing to write), apply.
//  - eBPF, partial: the same endpoint change: the changed Service's ports compiled into the last
//    compile (compileChanges), the partial plan of its frontends against the state in memory
//    (plan-partial.ts), apply — as the controller's sync.
//
// Each figure is the median of TRIALS runs, with min and max. A full iptables sync whose restore
// takes longer than FULL_BUDGET_S is not repeated (at that size: one initial, one resync):
// iptables-nft 1.8.9's restore time grows with (rules × chains). A restore that fails or runs
// past RESTORE_TIMEOUT_S is recorded (stage, time, stderr) and that backend's remaining stages
// at that size are skipped; every other check (rule and entry counts in the kernel, the
// partial sync's result, the planner's view of the maps) fails the run.
// Results: bench/results/sync-iptables.json and a table on stdout.
//
// Environment: KXBENCH_SIZES=1000,10000  KXBENCH_TRIALS=3  KXBENCH_IPTABLES_BACKENDS=nft,legacy  KXBENCH_NFTABLES=1
//   KXBENCH_FULL_BUDGET_S=180  KXBENCH_RESTORE_TIMEOUT_S=3600
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { cpus, release, totalmem } from 'node:os';
import { Libkx } from '../src/kernel/libkx.js';
import { chainsOf, type IptablesBackend } from '../src/kernel/iptables.js';
import type { ProxyState, ServicePort } from '../src/model/types.js';
import { masqueradeMarkFor, DEFAULT_MASQUERADE_BIT, type IptablesConfig } from '../src/dataplane/iptables/config.js';
import { renderIptables } from '../src/dataplane/iptables/render.js';
import { JUMP_RULES } from '../src/dataplane/iptables/jumps.js';
import { KUBE_PROXY_CANARY, serviceChains, servicePortName } from '../src/dataplane/kube-names.js';
import { applyPlan, readMaps } from '../src/dataplane/ebpf/apply.js';
import { compile, compileChanges, type Compiled, type CompileMemo, type DesiredFrontend, type EbpfNodeConfig } from '../src/dataplane/ebpf/compile.js';
import { CONTROLLED_MAPS } from '../src/dataplane/ebpf/dataplane.js';
import { KernelMaps } from '../src/dataplane/ebpf/kernel-maps.js';
import { plan, type AppliedState } from '../src/dataplane/ebpf/plan.js';
import { planPartial } from '../src/dataplane/ebpf/plan-partial.js';
import { appliedFromMaps } from '../src/dataplane/ebpf/readback.js';
import { KX_OBJ, REPO, ensureBpffs, uniquePinRoot } from '../test/bpf/fixture.js';
import { benchNftConfig, benchNftables, type NftResult, type NftStage } from './sync-nftables.js';
import { makeEndpointSlice, makeService, objects, type Json } from '../test/unit/helpers/kube-objects.js';

const envNumbers = (name: string, dflt: number[]): number[] => {
  const v = process.env[name];
  if (!v) return dflt;
  const xs = v.split(',').map((s) => Number(s.trim()));
  if (xs.some((x) => !Number.isInteger(x) || x <= 0)) throw new Error(`${name}=${v}: expected positive integers`);
  return xs;
};
const SIZES = envNumbers('KXBENCH_SIZES', [1_000, 10_000]);
const TRIALS = envNumbers('KXBENCH_TRIALS', [3])[0]!;
const FULL_BUDGET_S = envNumbers('KXBENCH_FULL_BUDGET_S', [180])[0]!;
const RESTORE_TIMEOUT_S = envNumbers('KXBENCH_RESTORE_TIMEOUT_S', [3600])[0]!;
// empty: the eBPF stages only
const BACKENDS: IptablesBackend[] = (process.env['KXBENCH_IPTABLES_BACKENDS'] ?? 'nft,legacy').split(',').filter((s) => s.trim() !== '').map((s) => {
  const b = s.trim();
  if (b !== 'nft' && b !== 'legacy') throw new Error(`KXBENCH_IPTABLES_BACKENDS: unknown backend ${b}`);
  return b;
});
// 0: leave the nftables mode out
const NFTABLES = process.env['KXBENCH_NFTABLES'] !== '0';
const ENDPOINTS = 10;
const NODEPORT_EVERY = 5; // every 5th Service is a NodePort: 2,000 at 10k fit the default 30000-32767
const NODEPORT_BASE = 30000;
const RESULTS = `${REPO}bench/results/sync-iptables.json`;

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
const timed = <T>(f: () => T): [T, number] => {
  const t0 = performance.now();
  const r = f();
  return [r, performance.now() - t0];
};

function run(bin: string, args: string[], input?: string, timeoutMs?: number): SpawnSyncReturns<string> {
  const r = spawnSync(bin, args, { input, encoding: 'utf8', maxBuffer: 1 << 30, timeout: timeoutMs });
  // EPIPE: the child stopped reading its input (a restore that failed part-way, or was killed):
  // its exit status and stderr say why, so the caller gets them.
  const code = (r.error as NodeJS.ErrnoException | undefined)?.code;
  if (r.error && code !== 'EPIPE' && code !== 'ETIMEDOUT') throw new Error(`${bin} ${args.join(' ')}: ${r.error.message}`);
  return r;
}
function check(r: SpawnSyncReturns<string>, what: string): string {
  if (r.status !== 0 || r.error) throw new Error(`${what} failed (${r.error?.message ?? `exit ${r.status ?? r.signal}`}): ${(r.stderr ?? '').trim().slice(0, 2000)}`);
  return r.stdout;
}

/** A restore the iptables binary did not complete: recorded, not fatal. */
class RestoreFailed extends Error {
  constructor(readonly command: string, readonly elapsedMs: number, readonly r: SpawnSyncReturns<string>) {
    const timedOut = (r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT';
    super(timedOut
      ? `${command}: no result after ${round(elapsedMs / 1000)} s (KXBENCH_RESTORE_TIMEOUT_S=${RESTORE_TIMEOUT_S}); killed`
      : `${command}: ${r.error ? `${r.error.message}, ` : ''}exit ${r.status ?? r.signal} after ${round(elapsedMs / 1000)} s: ${(r.stderr ?? '').trim().slice(0, 500)}`);
    this.name = 'RestoreFailed';
  }
  get timedOut(): boolean {
    return (this.r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT';
  }
}

// ---- the Services ----

interface Workload {
  full: ProxyState; // the changed Service with 10 endpoints (a snapshot after one with 9)
  minus: ProxyState; // … with 9
  /** The tracker's snapshot after the one-endpoint change (an incremental snapshot). */
  snapshotMs: number;
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
  const t1 = performance.now();
  const minus = o.state(node);
  const snapshotMs = performance.now() - t1;
  o.apply(sliceOf(idx, ENDPOINTS));
  const again = o.state(node); // full's content, and a change set (the first snapshot has none)
  if (o.problems.length) throw new Error(`model problems: ${o.problems.slice(0, 3).map((p) => p.text).join('; ')}`);
  if (full.services.length !== n || minus.services.length !== n) throw new Error(`expected ${n} service ports, got ${full.services.length}/${minus.services.length}`);
  const sp = full.services.find((s) => s.name === `svc-${idx}`)!;
  if (sp.nodePort === null || sp.endpoints.length !== ENDPOINTS) throw new Error(`svc-${idx}: expected a NodePort with ${ENDPOINTS} endpoints`);
  return {
    full: again, minus, snapshotMs, changed: `${NAMESPACE}/svc-${idx}`,
    svcChain: serviceChains(servicePortName(sp), 'tcp').cluster,
    buildMs: performance.now() - t0,
  };
}

// ---- iptables in a scratch network namespace ----

/** kxbench-<pid> under /run/netns. Every iptables binary runs inside it through nsenter, which
 * fails (rather than falling back to the host's namespace) when the namespace is missing. */
class ScratchNetns {
  readonly name = `kxbench-${process.pid}`;
  readonly path = `/run/netns/${this.name}`;
  private created = false;
  bin = 'iptables-nft';

  create(backend: IptablesBackend): void {
    this.bin = `iptables-${backend}`;
    if (existsSync(this.path)) throw new Error(`${this.path} exists already`);
    check(run('ip', ['netns', 'add', this.name]), `ip netns add ${this.name}`);
    this.created = true;
  }

  /** bin args… inside the namespace (nsenter execs it: the child is the iptables process). */
  exec(bin: string, args: string[], input?: string): SpawnSyncReturns<string> {
    if (!this.created) throw new Error('scratch namespace not created');
    return run('nsenter', [`--net=${this.path}`, '--', bin, ...args], input, RESTORE_TIMEOUT_S * 1000);
  }

  restore(text: string): number {
    const [r, ms] = timed(() => this.exec(`${this.bin}-restore`, ['-w', '5', '--noflush', '--counters'], text));
    if (r.status !== 0 || r.error) throw new RestoreFailed(`${this.bin}-restore --noflush --counters`, ms, r);
    return ms;
  }

  save(table: 'filter' | 'nat'): [string, number] {
    const [r, ms] = timed(() => this.exec(`${this.bin}-save`, ['-t', table]));
    return [check(r, `${this.bin}-save -t ${table}`), ms];
  }

  /** Empty filter, nat and mangle tables (a restore without --noflush, in the namespace), then
   * kube-proxy's jump rules and canaries, as IptablesDataplane ensures them. Untimed. */
  reset(): void {
    check(this.exec(`${this.bin}-restore`, ['-w', '5'], '*filter\nCOMMIT\n*nat\nCOMMIT\n*mangle\nCOMMIT\n'), `${this.bin}-restore (reset, in ${this.name})`);
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
    if (!this.created) return;
    const r = spawnSync('ip', ['netns', 'delete', this.name], { encoding: 'utf8' });
    if (r.status !== 0) console.error(`warning: ip netns delete ${this.name}: ${r.stderr?.trim()}`);
    this.created = false;
  }
}

const ruleLines = (save: string): number => save.split('\n').filter((l) => l.startsWith('-A ')).length;
const kubeRuleLines = (save: string): number => save.split('\n').filter((l) => /^-A KUBE-/.test(l)).length;

interface IptFull {
  save_ms: Stat; render_ms: Stat; restore_ms: Stat; total_ms: Stat;
  text_bytes: number; text_lines: number; rules_written: number;
  /** Fewer than TRIALS when a restore took longer than FULL_BUDGET_S. */
  trials_run: number;
}
interface IptPartial { render_ms: Stat; restore_ms: Stat; total_ms: Stat; text_bytes: Stat; rules_written: Stat; rules_skipped: number }
interface IptFailure { stage: 'full_initial' | 'full_resync' | 'partial'; elapsed_s: number; timed_out: boolean; exit: number | string | null; error: string; stderr_tail: string }
interface IptResult {
  backend: IptablesBackend;
  binary: string;
  /** What the render writes for a full sync (the same text for both backends). */
  rules: { filter: number; nat: number; total: number; nat_chains: number; text_bytes: number; text_lines: number };
  kernel?: { filter_rules: number; nat_rules: number; kube_rules: number; nat_save_bytes: number };
  full_initial?: IptFull;
  full_resync?: IptFull;
  partial?: IptPartial;
  /** A restore the backend did not complete: later stages at this size were skipped. */
  failed?: IptFailure;
}

function iptFull(ns: ScratchNetns, state: ProxyState, fresh: boolean, trials: number): IptFull {
  const save: number[] = [], render: number[] = [], restore: number[] = [], total: number[] = [];
  let bytes = 0, lines = 0, rules = 0;
  for (let t = 0; t < trials; t++) {
    if (fresh) ns.reset();
    const [natSave, saveMs] = ns.save('nat');
    const [r, renderMs] = timed(() => renderIptables(state, IPT_CFG, { changedServices: null, existingNatChains: chainsOf(natSave) }));
    for (const w of r.warnings) console.error(`render warning: ${w}`);
    if (r.deletedChains.length !== 0) throw new Error(`full sync deletes ${r.deletedChains.length} chains, expected none`);
    const restoreMs = ns.restore(r.text);
    save.push(saveMs); render.push(renderMs); restore.push(restoreMs); total.push(saveMs + renderMs + restoreMs);
    bytes = Buffer.byteLength(r.text); lines = r.text.split('\n').length - 1; rules = r.filterRules + r.natRules;
    console.error(`  ${ns.bin} full (${fresh ? 'empty tables' : 'resync'}) #${t + 1}: save ${round(saveMs)} ms, render ${round(renderMs)} ms, restore ${round(restoreMs)} ms`);
    if (restoreMs > FULL_BUDGET_S * 1000 && t < trials - 1) {
      console.error(`  (restore took more than ${FULL_BUDGET_S} s: not repeated)`);
      break;
    }
  }
  return {
    save_ms: stat(save), render_ms: stat(render), restore_ms: stat(restore), total_ms: stat(total),
    text_bytes: bytes, text_lines: lines, rules_written: rules, trials_run: restore.length,
  };
}

function iptPartial(ns: ScratchNetns, w: Workload): IptPartial {
  const render: number[] = [], restore: number[] = [], total: number[] = [], bytes: number[] = [], rules: number[] = [];
  let skipped = 0;
  let prev = w.full; // what the kernel holds now
  for (let t = 0; t < TRIALS * 2; t++) { // 10 → 9, 9 → 10: TRIALS of each
    const next = prev === w.full ? w.minus : w.full;
    const changed = next.changes!.services;
    if (changed.size !== 1 || !changed.has(w.changed)) throw new Error(`change set: expected {${w.changed}}, got ${JSON.stringify([...changed])}`);
    const [r, renderMs] = timed(() => renderIptables(next, IPT_CFG, { changedServices: changed, existingNatChains: null }));
    const restoreMs = ns.restore(r.text);
    render.push(renderMs); restore.push(restoreMs); total.push(renderMs + restoreMs);
    bytes.push(Buffer.byteLength(r.text)); rules.push(r.filterRules + r.natRules);
    skipped = r.skippedNatRules;
    console.error(`  ${ns.bin} partial ${prev === w.full ? '10→9' : '9→10'}: render ${round(renderMs)} ms, restore ${round(restoreMs)} ms (${r.filterRules + r.natRules} rules)`);
    prev = next;
  }
  // The kernel must now hold the last state: the changed Service's KUBE-SVC chain jumps to each endpoint.
  const [nat] = ns.save('nat');
  const jumps = nat.split('\n').filter((l) => l.startsWith(`-A ${w.svcChain} `) && / -j KUBE-SEP-/.test(l)).length;
  const want = prev.services.find((s) => `${s.namespace}/${s.name}` === w.changed)!.clusterEndpoints.length;
  if (jumps !== want) throw new Error(`after the partial syncs ${w.svcChain} has ${jumps} endpoint jumps, expected ${want}`);
  return { render_ms: stat(render), restore_ms: stat(restore), total_ms: stat(total), text_bytes: stat(bytes), rules_written: stat(rules), rules_skipped: skipped };
}

function iptables(ns: ScratchNetns, backend: IptablesBackend, w: Workload): IptResult {
  const r = renderIptables(w.full, IPT_CFG, {});
  const out: IptResult = {
    backend, binary: `iptables-${backend}-restore`,
    rules: {
      filter: r.filterRules, nat: r.natRules, total: r.filterRules + r.natRules, nat_chains: r.activeNatChains.size,
      text_bytes: Buffer.byteLength(r.text), text_lines: r.text.split('\n').length - 1,
    },
  };
  let stage: IptFailure['stage'] = 'full_initial';
  const started = performance.now();
  ns.create(backend);
  try {
    out.full_initial = iptFull(ns, w.full, true, TRIALS);
    const [filterSave] = ns.save('filter');
    const [natSave] = ns.save('nat');
    out.kernel = {
      filter_rules: ruleLines(filterSave), nat_rules: ruleLines(natSave),
      kube_rules: kubeRuleLines(filterSave) + kubeRuleLines(natSave), nat_save_bytes: Buffer.byteLength(natSave),
    };
    if (out.kernel.kube_rules !== out.rules.total) throw new Error(`kernel holds ${out.kernel.kube_rules} KUBE-* rules, the render wrote ${out.rules.total}`);
    stage = 'full_resync';
    const slow = out.full_initial.restore_ms.max > FULL_BUDGET_S * 1000;
    out.full_resync = iptFull(ns, w.full, false, slow ? 1 : TRIALS);
    stage = 'partial';
    out.partial = iptPartial(ns, w);
  } catch (err) {
    if (!(err instanceof RestoreFailed)) throw err;
    out.failed = {
      stage, elapsed_s: round(err.elapsedMs / 1000), timed_out: err.timedOut, exit: err.r.status ?? err.r.signal,
      error: err.message, stderr_tail: (err.r.stderr ?? '').trim().slice(-2000),
    };
    console.error(`  ${ns.bin}: ${stage} FAILED after ${round((performance.now() - started) / 1000)} s: ${err.message}`);
  } finally {
    ns.destroy();
  }
  return out;
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
  private readonly cols = { read: [] as number[], compile: [] as number[], plan: [] as number[], apply: [] as number[], total: [] as number[], writes: [] as number[] };
  add(read: number, comp: number, pl: number, apply: number, writes: number): void {
    const c = this.cols;
    c.read.push(read); c.compile.push(comp); c.plan.push(pl); c.apply.push(apply); c.total.push(read + comp + pl + apply); c.writes.push(writes);
  }
  result(): EbpfRun {
    const c = this.cols;
    return { read_ms: stat(c.read), compile_ms: stat(c.compile), plan_ms: stat(c.plan), apply_ms: stat(c.apply), total_ms: stat(c.total), writes: stat(c.writes) };
  }
}

/** Objects loaded with their maps pinned under /sys/fs/bpf/kxbench-sync-<pid>-<random>/<sub>. */
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

/** compile → plan → apply against `applied` (null: read the maps back first, as a full sync does);
 *  `memo` is the controller's per-port compile memo (cold for a first sync). `changed`: the
 *  Services the change set names: the partial plan, as the controller's sync takes it. */
function ebpfSync(maps: KernelMaps, state: ProxyState, applied: AppliedState | null, rec: Recorder, memo: CompileMemo,
  changed?: { services: ReadonlySet<string>; ports: readonly ServicePort[]; compiled: { last: Compiled | null } }): AppliedState {
  const [base, readMs] = applied ? [applied, 0] : timed(() => appliedFromMaps(readMaps(maps)));
  const [compiled, compileMs] = timed(() => {
    const inc = changed?.compiled.last ? compileChanges(changed.compiled.last, changed, EBPF_NODE, memo) : null;
    return inc ?? compile(state, EBPF_NODE, memo);
  });
  if (changed) changed.compiled.last = compiled;
  const { desired, problems } = compiled;
  if (problems.length) throw new Error(`compile problems: ${problems.slice(0, 3).map((p) => p.reason).join('; ')}`);
  const [p, planMs] = timed(() => {
    if (!changed) return plan(base, desired);
    const partial = planPartial(base, desired, changed.services, () => true, 'changedFrontends' in compiled ? compiled.changedFrontends as DesiredFrontend[] : undefined);
    if (!partial) throw new Error('the partial plan refused a one-endpoint change');
    return partial;
  });
  const [, applyMs] = timed(() => applyPlan(maps, p));
  rec.add(readMs, compileMs, planMs, applyMs, p.writes);
  return p.next;
}

function ebpf(pins: ScratchPins, w: Workload): EbpfResult {
  const n = w.full.services.length;
  const initial = new Recorder();
  let kept: { handle: number; maps: KernelMaps; sub: string; applied: AppliedState; memo: CompileMemo } | null = null;
  try {
    for (let t = 0; t < TRIALS; t++) {
      const sub = `n${n}-t${t}`;
      const { handle, maps } = pins.load(sub); // fresh, empty maps
      const memo: CompileMemo = new WeakMap();
      const applied = ebpfSync(maps, w.full, null, initial, memo);
      const r = initial.result();
      console.error(`  eBPF full (empty maps) #${t + 1}: read ${r.read_ms.trials[t]} ms, compile ${r.compile_ms.trials[t]} ms, plan ${r.plan_ms.trials[t]} ms, apply ${r.apply_ms.trials[t]} ms, ${r.writes.trials[t]} writes`);
      if (t < TRIALS - 1) pins.unload(handle, sub);
      else kept = { handle, maps, sub, applied, memo };
    }
    const { maps } = kept!;
    const dumps = readMaps(maps);
    const { desired } = compile(w.full, EBPF_NODE);
    const entries = { frontends: dumps.frontends.length, backends: dumps.backends.length, slots: dumps.slots.length, revnat: dumps.revnat.length };
    // one list of slots per backend set, however many frontends share it
    const wantSlots = [...new Map([...desired.frontends.values()].map((f) => [f.set, f.backends.length])).values()].reduce((s, n) => s + n, 0);
    if (entries.frontends !== desired.frontends.size || entries.slots !== wantSlots) {
      throw new Error(`maps hold ${entries.frontends} frontends / ${entries.slots} slots, expected ${desired.frontends.size} / ${wantSlots}`);
    }

    const resync = new Recorder();
    // as the controller's periodic full sync: the maps read back, the memo warm
    for (let t = 0; t < TRIALS; t++) ebpfSync(maps, w.full, null, resync, kept!.memo);
    const rr = resync.result();
    if (rr.writes.max !== 0) throw new Error(`full resync of unchanged state wrote ${rr.writes.max} entries`);
    console.error(`  eBPF full resync: ${rr.total_ms.median} ms (read ${rr.read_ms.median}, compile ${rr.compile_ms.median}, plan ${rr.plan_ms.median}, apply ${rr.apply_ms.median})`);

    const partial = new Recorder();
    let applied = kept!.applied;
    let cur = w.full;
    const last = { last: compile(cur, EBPF_NODE, kept!.memo) as Compiled | null };
    for (let t = 0; t < TRIALS * 2; t++) {
      const next = cur === w.full ? w.minus : w.full;
      // the change set the tracker hands over: the Service and its ports in the new state
      const ports = next.services.filter((sp) => `${sp.namespace}/${sp.name}` === w.changed);
      applied = ebpfSync(maps, next, applied, partial, kept!.memo, { services: new Set([w.changed]), ports, compiled: last });
      cur = next;
    }
    const pr = partial.result();
    console.error(`  eBPF partial: ${pr.total_ms.median} ms (compile ${pr.compile_ms.median}, plan ${pr.plan_ms.median}, apply ${pr.apply_ms.median}), writes ${pr.writes.trials.join('/')}`);
    // The maps must agree with what the planner believes: a re-read plan writes nothing.
    const pending = plan(appliedFromMaps(readMaps(maps)), compile(cur, EBPF_NODE).desired);
    if (pending.writes !== 0) throw new Error(`after the partial syncs the maps differ from the state: ${pending.writes} writes pending`);
    return { entries, full_initial: initial.result(), full_resync: rr, partial: pr };
  } finally {
    if (kept) pins.unload(kept.handle, kept.sub);
  }
}

// ---- main ----

function versionOf(bin: string): string | null {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? (r.stdout || r.stderr).trim() : null;
}

interface Scenario {
  services: number; nodeport_services: number; endpoints: number; build_ms: number; snapshot_ms: number; changed_service: string;
  iptables: IptResult[]; ebpf: EbpfResult; nftables?: NftResult;
}

function main(): void {
  if (process.getuid?.() !== 0) {
    console.error('bench/sync: needs root (network namespaces, iptables, bpffs)');
    process.exit(1);
  }
  if (!existsSync(KX_OBJ)) throw new Error(`${KX_OBJ} missing: run make build`);
  ensureBpffs();
  const started = Date.now();
  const backends = BACKENDS.map((b) => ({ backend: b, version: versionOf(`iptables-${b}`) }));
  for (const b of backends) if (b.version === null) console.error(`iptables-${b.backend} is not available: skipped`);
  const usable = backends.filter((b) => b.version !== null).map((b) => b.backend);

  const kx = new Libkx();
  const ns = new ScratchNetns();
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

  const scenarios: Scenario[] = [];
  let spawnMs = 0;
  try {
    if (usable.length) {
      ns.create(usable[0]!);
      spawnMs = ns.spawnOverheadMs();
      ns.destroy();
    }
    for (const n of SIZES) {
      const w = workload(n);
      console.error(`${n} services: state built in ${round(w.buildMs)} ms, one-endpoint snapshot ${round(w.snapshotMs)} ms; changing ${w.changed}`);
      const ipt = usable.map((b) => iptables(ns, b, w));
      const nft = NFTABLES ? benchNftables(w, benchNftConfig(NODE_IP, POD_CIDR), TRIALS, FULL_BUDGET_S) : undefined;
      const bpf = ebpf(pins, w);
      scenarios.push({
        services: n, nodeport_services: w.full.services.filter((s) => s.nodePort !== null).length,
        endpoints: w.full.services.reduce((s, sp) => s + sp.endpoints.length, 0), build_ms: round(w.buildMs), snapshot_ms: round(w.snapshotMs),
        changed_service: w.changed, iptables: ipt, ebpf: bpf, ...(nft ? { nftables: nft } : {}),
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
    iptables: backends.map((b) => ({ backend: b.backend, binary: `iptables-${b.backend}-restore`, version: b.version, restore_args: '-w 5 --noflush --counters' })),
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
      iptables_netns: 'a scratch network namespace kxbench-<pid>, created per backend and size; every iptables binary runs through nsenter --net=/run/netns/kxbench-<pid>',
      iptables_full_initial: 'tables reset and jump rules ensured (untimed), then iptables-save -t nat (stale-chain scan) + renderIptables + restore; total = save + render + restore',
      iptables_full_resync: 'the same with every rule already in place (restore flushes and rewrites every chain)',
      iptables_partial: 'renderIptables with the tracker\'s change set (no stale-chain scan: large-cluster mode) + restore; TRIALS changes each way; the incremental snapshot that made the change set is workload.snapshot_ms',
      iptables_failed: 'a restore that failed or ran past restore_timeout_s: stage, time, exit and stderr; that backend\'s later stages at that size are skipped',
      nftables: 'a scratch network namespace kxbench-nft-<pid> (new per full_initial trial); each stage as NftablesDataplane syncs: nft -j list chains/sets (list), renderNftablesSync (render: the transaction with kube-proxy\'s element diffing), nft -f - (nft); partial: the tracker\'s change set, TRIALS changes each way',
      ebpf_full_initial: 'fresh object load (untimed) into a scratch pin dir, then readMaps + appliedFromMaps (read), compile, plan, applyPlan (one batch call per map and operation)',
      ebpf_full_resync: 'the maps already hold the state: read back, compile (the per-port memo warm, as in the controller), plan (0 writes), apply',
      ebpf_partial: 'compile (memo: only the changed port recompiled) + the partial plan of the changed Service against the applied state in memory + apply; TRIALS changes each way',
      timings: 'wall-clock ms (performance.now); iptables restore/save include spawning nsenter + the binary (see spawn_overhead_ms); median, min, max of the trials',
    },
    scenarios,
    scaling: scaling(scenarios),
    wall_s: round((Date.now() - started) / 1000),
  };
  mkdirSync(dirname(RESULTS), { recursive: true });
  writeFileSync(RESULTS, `${JSON.stringify(result, null, 2)}\n`);
  console.log(table(result.iptables, spawnMs, scenarios, result.scaling, result.wall_s));
}

interface Scaling { from: number; to: number; rules_ratio: number; ratios: Record<string, number>; exponents: Record<string, number> }

/** Between consecutive sizes: how each median grows against the rule count (exponent k in time ∝ rules^k). */
function scaling(scenarios: Scenario[]): Scaling[] {
  const figures = (s: Scenario): Record<string, number | undefined> => {
    const f: Record<string, number | undefined> = {
      ebpf_full_total: s.ebpf.full_initial.total_ms.median,
      ebpf_partial_total: s.ebpf.partial.total_ms.median,
    };
    if (s.nftables) {
      f['nftables_full_total'] = s.nftables.full_initial.total_ms.median;
      f['nftables_partial_total'] = s.nftables.partial.total_ms.median;
    }
    for (const i of s.iptables) {
      f[`${i.backend}_full_restore`] = i.full_initial?.restore_ms.median;
      f[`${i.backend}_resync_restore`] = i.full_resync?.restore_ms.median;
      f[`${i.backend}_partial_restore`] = i.partial?.restore_ms.median;
      f[`${i.backend}_partial_total`] = i.partial?.total_ms.median;
    }
    return f;
  };
  const out: Scaling[] = [];
  for (let i = 1; i < scenarios.length; i++) {
    const a = scenarios[i - 1]!, b = scenarios[i]!;
    const rulesA = a.iptables[0]?.rules.total ?? a.services, rulesB = b.iptables[0]?.rules.total ?? b.services;
    const rulesRatio = rulesB / rulesA;
    const fa = figures(a), fb = figures(b);
    const ratios: Record<string, number> = {}, exponents: Record<string, number> = {};
    for (const k of Object.keys(fa)) {
      const x = fa[k], y = fb[k];
      if (x === undefined || y === undefined || x <= 0 || y <= 0) continue;
      ratios[k] = round(y / x, 2);
      exponents[k] = round(Math.log(y / x) / Math.log(rulesRatio), 2);
    }
    out.push({ from: a.services, to: b.services, rules_ratio: round(rulesRatio, 2), ratios, exponents });
  }
  return out;
}

function table(versions: Array<{ backend: string; version: string | null }>, spawnMs: number, scenarios: Scenario[], scale: Scaling[], wallS: number): string {
  const f = (s: Stat) => (s.trials.length === 1 ? `${s.median} (1×)` : `${s.median} [${s.min}–${s.max}]`);
  const n = (x: number) => x.toLocaleString('en-US');
  const mb = (b: number) => `${round(b / 2 ** 20, 2)} MiB`;
  const rows: string[][] = [['services', 'mode', 'sync', 'writes', 'prepare ms', 'kernel ms', 'total ms', 'input']];
  for (const s of scenarios) {
    const svc = n(s.services);
    for (const i of s.iptables) {
      const mode = `iptables-${i.backend}`;
      const full = (label: string, x: IptFull | undefined) => {
        if (x) rows.push([svc, mode, label, n(x.rules_written), `save ${f(x.save_ms)} + render ${f(x.render_ms)}`, `restore ${f(x.restore_ms)}`, f(x.total_ms), mb(x.text_bytes)]);
      };
      full('full, empty tables', i.full_initial);
      full('full resync', i.full_resync);
      const p = i.partial;
      if (p) rows.push([svc, mode, '1 endpoint', n(p.rules_written.median), `render ${f(p.render_ms)}`, `restore ${f(p.restore_ms)}`, f(p.total_ms), `${n(p.text_bytes.median)} B`]);
      if (i.failed) {
        rows.push([svc, mode, i.failed.stage.replace('_', ' '), n(i.rules.total), '', i.failed.timed_out ? `killed after ${n(i.failed.elapsed_s)} s` : `FAILED after ${n(i.failed.elapsed_s)} s`, '-', mb(i.rules.text_bytes)]);
      }
    }
    const t = s.nftables;
    if (t) {
      const nrow = (label: string, x: NftStage, writes: string) =>
        rows.push([svc, 'nftables', label, writes, `list ${f(x.list_ms)} + render ${f(x.render_ms)}`, `nft ${f(x.nft_ms)}`, f(x.total_ms), `${n(x.text_bytes.median)} B`]);
      nrow('full, empty table', t.full_initial, n(t.full_initial.ops.median));
      nrow('full resync', t.full_resync, n(t.full_resync.ops.median));
      nrow('1 endpoint', t.partial, t.partial.ops.trials.join('/'));
    }
    const e = s.ebpf;
    rows.push([svc, 'eBPF', 'full, empty maps', n(e.full_initial.writes.median), `read ${f(e.full_initial.read_ms)} + compile ${f(e.full_initial.compile_ms)} + plan ${f(e.full_initial.plan_ms)}`, `apply ${f(e.full_initial.apply_ms)}`, f(e.full_initial.total_ms), '']);
    rows.push([svc, 'eBPF', 'full resync', n(e.full_resync.writes.median), `read ${f(e.full_resync.read_ms)} + compile ${f(e.full_resync.compile_ms)} + plan ${f(e.full_resync.plan_ms)}`, `apply ${f(e.full_resync.apply_ms)}`, f(e.full_resync.total_ms), '']);
    rows.push([svc, 'eBPF', '1 endpoint', e.partial.writes.trials.join('/'), `compile ${f(e.partial.compile_ms)} + plan ${f(e.partial.plan_ms)}`, `apply ${f(e.partial.apply_ms)}`, f(e.partial.total_ms), '']);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const line = (r: string[]) => r.map((x, c) => (c < 3 ? x.padEnd(widths[c]!) : x.padStart(widths[c]!))).join(' | ');
  const counts = scenarios.map((s) => {
    const i = s.iptables[0];
    const ipt = i ? `iptables ${n(i.rules.filter)} filter + ${n(i.rules.nat)} nat rules in ${n(i.rules.nat_chains)} service chains (${n(i.rules.text_lines)} restore lines)${i.kernel ? `, kernel after restore: ${n(i.kernel.filter_rules)} filter + ${n(i.kernel.nat_rules)} nat rules` : ''}; ` : '';
    const nft = s.nftables ? `nftables ${n(s.nftables.kernel.chains)} chains, ${n(s.nftables.kernel.rules)} rules, ${n(s.nftables.kernel.elements)} map/set elements (RSS ${s.nftables.rss_mib_after} MiB after); ` : '';
    return `${n(s.services)} Services (${n(s.nodeport_services)} NodePort, ${n(s.endpoints)} endpoints): ${ipt}${nft}eBPF ${n(s.ebpf.entries.frontends)} frontends, ${n(s.ebpf.entries.backends)} backends, ${n(s.ebpf.entries.slots)} slots, ${n(s.ebpf.entries.revnat)} rev-NAT`;
  });
  const failures = scenarios.flatMap((s) => s.iptables.filter((i) => i.failed).map((i) => `${n(s.services)} Services, iptables-${i.backend} ${i.failed!.stage}: ${i.failed!.error}`));
  const exps = scale.map((x) => {
    const parts = Object.keys(x.ratios).filter((k) => /full_restore|partial_total|ebpf/.test(k)).map((k) => `${k} ×${x.ratios[k]} (^${x.exponents[k]})`);
    return `${n(x.from)} → ${n(x.to)} Services (×${x.rules_ratio} rules): ${parts.join(', ')}`;
  });
  return [
    `kube-xdp sync cost — iptables-restore in a scratch netns (${versions.map((v) => `${v.backend}: ${v.version ?? 'missing'}`).join('; ')}) vs eBPF batch map writes; kernel ${release()}, ${cpus().length} CPUs; median [min–max] of ${TRIALS} trials (1 endpoint: ${TRIALS} each way)`,
    line(rows[0]!),
    widths.map((w) => '-'.repeat(w)).join('-|-'),
    ...rows.slice(1).map(line),
    ...counts,
    ...exps,
    ...failures,
    `spawning nsenter + an iptables binary: ${spawnMs} ms (included in save/restore); a full sync whose restore exceeds ${FULL_BUDGET_S} s is run once; ${wallS} s in all`,
    `-> ${RESULTS}`,
  ].join('\n');
}

main();
