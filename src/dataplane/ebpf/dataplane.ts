// The eBPF mode: compile -> plan -> apply, against maps pinned under the pin dir.
import type { Logger } from 'pino';
import type { Libkx } from '../../kernel/libkx.js';
import type { ProxyState } from '../../model/types.js';
import type { Metrics } from '../../observe/metrics.js';
import { OwnerFileWriter, ownerFileForPins } from '../../inspect/owners.js';
import type { Dataplane, SyncResult } from '../types.js';
import { applyPlan, readMaps } from './apply.js';
import { admit, capacityLimits, mapUsage, type Admission, type CapacityLimits } from './capacity.js';
import { KX_LIMITS } from './limits.js';
import { compile, compileChanges, type Compiled, type CompileMemo, type DesiredFrontend, type DesiredState, type EbpfNodeConfig } from './compile.js';
import { describeMaps, type Description } from './describe.js';
import { KernelMaps } from './kernel-maps.js';
import { CT_GC_PROGRAM, Loader, type LoaderOptions } from './loader.js';
import { CT_REPLY, MAPS, SCOPE_HOST, STAT_NAMES, STATS_MAP } from './maps.js';
import { decodeAll } from './codec.js';
import { Prefilter } from './prefilter.js';
import { plan, type AppliedState } from './plan.js';
import { planPartial, type UsageDelta } from './plan-partial.js';
import { changesSince } from '../../model/tracker.js';
import { appliedFromMaps } from './readback.js';

export type EbpfOptions = LoaderOptions & EbpfNodeConfig & {
  /** Map capacities the planner admits Services against (tests set small ones). */
  readonly limits?: CapacityLimits;
};

export const CONTROLLED_MAPS = Object.values(MAPS).map((m) => m.name);
/** Conntrack GC period: short enough that expired entries never crowd out idle live flows
 * (the shortest lifetime is 10 s), long enough that a full-table scan (~ms) is noise. */
const CT_GC_PERIOD_MS = 10_000;
/** The GC program is an XDP program run by BPF_PROG_TEST_RUN: it needs a frame, any frame. */
const GC_FRAME = Buffer.alloc(64);

export class EbpfDataplane implements Dataplane {
  private readonly loader: Loader;
  private maps: KernelMaps | null = null;
  private applied: AppliedState | null = null;
  private lastStats: readonly bigint[] = [];
  private gcProg: { fd: number; label: string } | null = null;
  private lastGc = -Infinity;
  private lastShortfall = '[]';
  private readonly prefilter = new Prefilter();
  private readonly node: EbpfNodeConfig;
  private readonly memo: CompileMemo = new WeakMap();
  private readonly owners: OwnerFileWriter;
  /** The state the maps were last synced to, the admitted maps' entry counts then, and how many
   *  Service ports that sync left out: what decides whether the next sync may be partial. */
  private synced: ProxyState | null = null;
  private compiled: Compiled | null = null;
  private usage: Record<keyof CapacityLimits, number> | null = null;
  private leftOut = 0;

  constructor(private readonly lib: Libkx, private readonly log: Logger, private readonly metrics: Metrics, private readonly opts: EbpfOptions) {
    this.loader = new Loader(lib, log, opts);
    this.node = { ...opts, hostScope: (opts.cgroupRoot ?? null) !== null };
    this.owners = new OwnerFileWriter(ownerFileForPins(opts.pinDir), log);
  }

  /** Loads (reusing pinned maps), learns what a previous run programmed, attaches programs. */
  start(): void {
    const handle = this.loader.load();
    this.maps = KernelMaps.ofObject(this.lib, handle, [...CONTROLLED_MAPS, STATS_MAP]);
    this.gcProg = { fd: this.lib.objProgFd(handle, CT_GC_PROGRAM), label: CT_GC_PROGRAM };
    this.applied = appliedFromMaps(readMaps(this.maps));
    this.seedPrefilter(this.maps, this.applied);
    this.log.info({
      pinDir: this.opts.pinDir, frontends: this.applied.frontends.size, backends: this.applied.backends.size,
    }, this.applied.frontends.size ? 'reusing pinned maps from a previous run' : 'maps created');
    this.loader.attachExternal();
    this.loader.attachSocketHooks();
    this.tick();
    this.loader.finishSwitch();
  }

  /** Before the programs attach: the prefilter covers what the maps and conntrack hold. Pinned
   * bits already cover conntrack (set before every frontend, never cleared), so conntrack is
   * scanned only when the prefilter is new (an upgrade from a release without it). */
  private seedPrefilter(maps: KernelMaps, applied: AppliedState): void {
    const pinned = this.prefilter.readFrom(maps);
    for (const fe of applied.frontends.values()) if (fe.key.scope !== SCOPE_HOST) this.prefilter.addFrontend(fe.key.addr);
    for (const be of applied.backends.values()) this.prefilter.addBackendPort(be.value.port);
    for (const table of pinned ? [] : [MAPS.ct, MAPS.ctNew, MAPS.ct6, MAPS.ctNew6]) {
      const d = maps.dump(table.name, table.key.size, table.value.size, 0);
      const keys = decodeAll(table.key, d.keys, d.count), values = decodeAll(table.value, d.values, d.count);
      keys.forEach((k, i) => {
        if (values[i]!.dir === CT_REPLY) this.prefilter.addBackendPort(k.sport);
        else this.prefilter.addFrontend(k.daddr);
      });
    }
    this.prefilter.writeTo(maps);
  }

  tick(): void {
    const { added, removed } = this.loader.syncPodInterfaces();
    if (added.length || removed.length) this.log.info({ added, removed }, 'pod interfaces changed');
    this.metrics.set('kubexdp_pod_interfaces', 'Pod interfaces with the tc program attached', this.loader.state().pods.size);
    this.collectConntrack();
    this.exportStats();
  }

  /** Deletes expired conntrack entries every CT_GC_PERIOD_MS, in the kernel (kx_ct_gc). */
  private collectConntrack(): void {
    const now = performance.now();
    if (!this.gcProg || now - this.lastGc < CT_GC_PERIOD_MS) return;
    this.lastGc = now;
    this.lib.progTestRun(this.gcProg, GC_FRAME);
    this.metrics.set('kubexdp_conntrack_gc_duration_seconds', 'Duration of the last conntrack garbage collection', (performance.now() - now) / 1000);
  }

  /** kx_stats into /metrics: conntrack losses (ct_lost: evicted or expired flows), SNAT
   * exhaustion, malformed packets… as counters by result (the stat's name). */
  private exportStats(): void {
    const now = this.requireMaps().sumPerCpu(STATS_MAP, STAT_NAMES.length);
    STAT_NAMES.forEach((result, i) => {
      const d = now[i]! - (this.lastStats[i] ?? 0n);
      if (d > 0n) this.metrics.inc('kubexdp_datapath_packets_total', 'Packets by datapath result (kx_stats summed over CPUs, since the maps were created)', { result }, Number(d));
    });
    this.lastStats = now;
  }

  sync(state: ProxyState, opts: { full?: boolean } = {}): SyncResult {
    const maps = this.requireMaps();
    // Only what changed since the last sync, when it left no Service out (admission may then
    // find room for one) and the applied state is the planner's own (not read back).
    const changes = !opts.full && this.synced && this.leftOut === 0 && this.applied?.index ? changesSince(this.synced, state) : null;
    const changed = changes?.services ?? null;
    if (opts.full || !this.applied) this.applied = appliedFromMaps(readMaps(maps));
    // only the changed Services' ports when the change set allows (compileChanges)
    const incremental = changes && this.compiled ? compileChanges(this.compiled, changes, this.node, this.memo) : null;
    const compiled = incremental ?? compile(state, this.node, this.memo);
    this.compiled = compiled;
    const { desired, problems } = compiled;
    for (const p of problems) {
      this.log.warn({ service: p.service }, `service not programmed: ${p.reason}`);
      this.metrics.inc('kubexdp_service_errors_total', 'Service ports the dataplane could not program', { reason: 'compile' });
    }
    const limits = this.opts.limits ?? capacityLimits(this.opts.mapSizes ?? KX_LIMITS);
    const partial = changed && this.syncPartial(maps, desired, changed, limits, incremental?.changedFrontends);
    if (partial) {
      this.synced = state;
      return this.finish(state, limits, partial.writes, { ...partial.detail, problems: problems.length, servicesLeftOut: 0 });
    }
    let admission = admit(this.applied, desired, limits);
    let writes = 0;
    const updates: Record<string, number> = {}, deletes: Record<string, number> = {};
    try {
      // A second pass when Services were left out: this pass's deletes lowered the peak.
      for (let pass = 0; pass < 2; pass++) {
        // the prefilter lets a frontend's packets through before the frontend exists
        this.prefilter.addDesired(admission.desired.frontends.values());
        writes += this.prefilter.writeTo(maps);
        const p = plan(this.applied, admission.desired);
        const counts = applyPlan(maps, p);
        this.applied = p.next;
        writes += p.writes;
        for (const [m, n] of Object.entries(counts.updates)) updates[m] = (updates[m] ?? 0) + n;
        for (const [m, n] of Object.entries(counts.deletes)) deletes[m] = (deletes[m] ?? 0) + n;
        if (admission.leftOut.length === 0 || p.writes === 0) break;
        const again = admit(this.applied, desired, limits);
        if (again.leftOut.length >= admission.leftOut.length) break;
        admission = again;
      }
    } catch (err) {
      // Part of the plan may be in the kernel: the next sync re-reads the maps instead of
      // trusting memory, so it converges from whatever is there.
      this.applied = this.synced = null;
      throw err;
    }
    this.reportCapacity(admission);
    this.usage = mapUsage(this.applied);
    this.leftOut = admission.leftOut.length;
    this.synced = state;
    return this.finish(state, limits, writes, { plan: 'full', updates, deletes, problems: problems.length, servicesLeftOut: admission.leftOut.length });
  }

  /** The changed Services' frontends planned alone (plan-partial.ts), or null when a full plan
   *  is needed. */
  private syncPartial(maps: KernelMaps, desired: DesiredState, changed: ReadonlySet<string>, limits: CapacityLimits, changedFrontends?: readonly DesiredFrontend[])
    : { writes: number; detail: Record<string, unknown> } | null {
    const usage = this.usage!;
    const fits = (adds: UsageDelta) => (Object.entries(adds) as [keyof CapacityLimits, number][]).every(([role, n]) => usage[role] + n <= limits[role]);
    let writes = 0;
    try {
      const p = planPartial(this.applied!, desired, changed, fits, changedFrontends);
      if (!p) return null;
      this.prefilter.addDesired(p.planned);
      writes += this.prefilter.writeTo(maps);
      const counts = applyPlan(maps, p);
      this.applied = p.next;
      for (const [role, n] of Object.entries(p.usage) as [keyof CapacityLimits, number][]) usage[role] += n;
      return { writes: writes + p.writes, detail: { plan: 'partial', changedServices: changed.size, updates: counts.updates, deletes: counts.deletes } };
    } catch (err) {
      // the partial plan updates the applied state in place: it is not to be trusted now
      this.applied = this.synced = null;
      throw err;
    }
  }

  /** After a sync: the owner file, the gauges and counters, the result. */
  private finish(state: ProxyState, limits: CapacityLimits, writes: number, detail: Record<string, unknown>): SyncResult {
    this.reportFill(limits);
    this.owners.write(state);
    this.metrics.set('kubexdp_frontends', 'Frontends programmed', this.applied!.frontends.size);
    this.metrics.set('kubexdp_backends', 'Backends programmed', this.applied!.backends.size);
    this.metrics.inc('kubexdp_map_writes_total', 'Map entries written or deleted', {}, writes);
    return { writes, detail: { ...detail, frontends: this.applied!.frontends.size } };
  }

  /** Fill of the maps Services are programmed into (not the LRU flow maps: counting their
   *  entries means walking them). */
  private reportFill(limits: CapacityLimits): void {
    for (const [role, entries] of Object.entries(this.usage!) as [keyof CapacityLimits, number][]) {
      const map = MAPS[role].name;
      this.metrics.set('kubexdp_map_entries', 'Entries kube-xdp keeps in a Service map', entries, { map });
      this.metrics.set('kubexdp_map_max_entries', 'Entries a Service map was created with', limits[role], { map });
    }
  }

  /** Logs a capacity shortfall when it changes (not on every sync), and keeps the gauges. */
  private reportCapacity(a: Admission): void {
    for (const map of ['kx_frontends', 'kx_slots', 'kx_backends', 'kx_revnat']) {
      const s = a.shortfalls.find((x) => x.map === map);
      this.metrics.set('kubexdp_map_capacity_shortfall', 'Entries a map lacks to hold every Service (0: all fit)', s ? s.demand - s.limit : 0, { map });
    }
    this.metrics.set('kubexdp_services_not_programmed', 'Service ports left out for lack of map capacity', a.leftOut.length);
    const text = JSON.stringify(a.shortfalls);
    const before = this.lastShortfall;
    if (text === before) return;
    this.lastShortfall = text;
    for (const s of a.shortfalls) {
      this.log.error({ map: s.map, limit: s.limit, demand: s.demand, servicesLeftOut: s.services.length, services: s.services.slice(0, 10) },
        `${s.map} is full: it holds ${s.limit} entries, this state needs ${s.demand}; ${s.services.length} Service ports left out (${s.services.slice(0, 3).join(', ')}${s.services.length > 3 ? ', …' : ''}); they keep what they had programmed, the others are served`);
    }
    if (a.shortfalls.length === 0 && before !== '[]') this.log.info('every Service fits the maps again');
  }

  describe(): Description {
    return describeMaps(readMaps(this.requireMaps()));
  }

  close(): void {
    this.loader.close();
    this.gcProg = null;
    this.maps = null;
  }

  private requireMaps(): KernelMaps {
    if (!this.maps) throw new Error('eBPF dataplane not started');
    return this.maps;
  }
}
