// The iptables mode: render (pure) → iptables-restore --noflush, one proxier per address family,
// with kube-proxy's sync discipline: jump rules ensured on full syncs, partial syncs that rewrite
// only changed services' chains, stale chains deleted, stale UDP conntrack entries removed.
import type { Logger } from 'pino';
import { deleteConntrack } from '../../kernel/conntrack.js';
import { Iptables, type IptablesBackend } from '../../kernel/iptables.js';
import { ensureSysctl } from '../../kernel/sysctl.js';
import type { ProxyState } from '../../model/types.js';
import { changedSince } from '../../model/tracker.js';
import { KP } from '../../observe/kube-proxy-metrics.js';
import type { Metrics } from '../../observe/metrics.js';
import { staleUdpConntrack } from '../conntrack.js';
import { KUBE_PROXY_CANARY } from '../kube-names.js';
import type { Dataplane, SyncResult } from '../types.js';
import type { IptablesConfig } from './config.js';
import { JUMP_RULES, canaryGone, ensureJumpRules } from './jumps.js';
import { nodePortDestinations } from './node-ports.js';
import { renderIptables } from './render.js';

export interface IptablesDataplaneOptions {
  /** One config per family the node serves. */
  readonly families: readonly IptablesConfig[];
  readonly backend: IptablesBackend;
  /** In large clusters stale chains are looked for at most this often (kube-proxy: syncPeriod). */
  readonly staleChainScanPeriodMs: number;
}


class FamilyProxier {
  private needFullSync = true;
  private last: ProxyState | null = null;
  private largeClusterMode = false;
  private lastChainScan = 0;
  /** Rules of the last successful restore, per table: owned (kube-proxy's iptables_total) and written (iptables_last). */
  rules = { filter: 0, nat: 0, natWritten: 0 };

  constructor(readonly cfg: IptablesConfig, readonly ipt: Iptables, private readonly opts: IptablesDataplaneOptions, private readonly log: Logger,
    private readonly metrics: Metrics) {}

  /** One sync, timed as kube-proxy's proxier times it (failed ones too) by full or partial. */
  async sync(state: ProxyState, full: boolean): Promise<{ writes: number; partial: boolean; deleted: number; conntrack: number }> {
    const partial = !full && !this.needFullSync && this.last !== null;
    const t0 = performance.now();
    try {
      return await this.syncOnce(state, partial);
    } finally {
      this.metrics.observe(partial ? KP.syncPartialProxyRulesDuration : KP.syncFullProxyRulesDuration, (performance.now() - t0) / 1000);
    }
  }

  private async syncOnce(state: ProxyState, partial: boolean): Promise<{ writes: number; partial: boolean; deleted: number; conntrack: number }> {
    // Until a restore succeeds, the next sync must be full: the diff to the kernel is unknown.
    this.needFullSync = true;
    if (!partial) ensureJumpRules(this.ipt, JUMP_RULES);
    const now = Date.now();
    const scan = !this.largeClusterMode || now - this.lastChainScan > this.opts.staleChainScanPeriodMs;
    const existing = scan ? this.ipt.chains('nat') : null;
    const r = renderIptables(state, this.cfg, {
      changedServices: partial ? changedSince(this.last!, state) : null,
      existingNatChains: existing,
    });
    for (const w of r.warnings) this.log.warn({ family: this.cfg.family }, w);
    try {
      await this.ipt.restore(r.text);
    } catch (err) {
      this.metrics.inc(partial ? KP.iptablesPartialRestoreFailures : KP.iptablesRestoreFailures);
      throw err;
    }
    this.rules = { filter: r.filterRules, nat: r.natRules + r.skippedNatRules, natWritten: r.natRules };
    if (scan) this.lastChainScan = now;
    this.needFullSync = false;
    this.largeClusterMode = r.largeClusterMode;

    const stale = staleUdpConntrack(this.last, state, this.cfg.family);
    for (const f of deleteConntrack(stale, this.cfg.family)) this.log.warn({ family: this.cfg.family }, `stale UDP conntrack entries not removed: ${f}`);
    this.last = state;
    return { writes: r.filterRules + r.natRules, partial, deleted: r.deletedChains.length, conntrack: stale.length };
  }

  canaryGone(): boolean {
    return canaryGone(this.ipt);
  }

  forceFullSync(): void {
    this.needFullSync = true;
  }
}

/** Above this many Service ports the iptables mode on iptables-nft is too slow to keep up. */
export const IPTABLES_NFT_WARN_PORTS = 2_000;

/** The warning the first sync gives when the iptables mode runs on iptables-nft at a scale where
 *  its restores take minutes (measured by bench/sync.ts on iptables-nft 1.8.9), or null. */
export function iptablesNftScaleWarning(backend: IptablesBackend, servicePorts: number): string | null {
  if (backend !== 'nft' || servicePorts <= IPTABLES_NFT_WARN_PORTS) return null;
  return `the iptables mode on iptables-nft with ${servicePorts} Service ports will fall behind: iptables-nft-restore's time grows with rules × chains ` +
    '(measured: a full restore of 10,000 Services took 33.6 min on iptables-nft 1.8.9, 3.8 s on iptables-legacy); ' +
    'run --mode nftables (kube-proxy\'s successor to this mode) or --iptables-backend legacy';
}

export class IptablesDataplane implements Dataplane {
  private readonly proxiers: FamilyProxier[];
  private warnedScale = false;

  constructor(private readonly opts: IptablesDataplaneOptions, private readonly log: Logger, private readonly metrics: Metrics) {
    this.proxiers = opts.families.map((cfg) => new FamilyProxier(cfg, new Iptables(cfg.family, opts.backend), opts, log, metrics));
    for (const p of this.proxiers) {
      if (p.cfg.family === 'IPv4' && nodePortDestinations(p.cfg).localhostNodePorts) {
        // NodePorts on 127.0.0.1 need route_localnet; KUBE-FIREWALL blocks what it opens.
        if (ensureSysctl('net/ipv4/conf/all/route_localnet', '1') !== null) log.info('set net.ipv4.conf.all.route_localnet=1 for localhost NodePorts (iptables.localhostNodePorts)');
      }
    }
  }

  async sync(state: ProxyState, opts: { full?: boolean } = {}): Promise<SyncResult> {
    if (!this.warnedScale) {
      this.warnedScale = true;
      const w = iptablesNftScaleWarning(this.opts.backend, state.services.length);
      if (w !== null) this.log.error(w);
    }
    const detail: Record<string, unknown> = {};
    let writes = 0;
    for (const p of this.proxiers) {
      try {
        const r = await p.sync(state, opts.full ?? false);
        writes += r.writes;
        detail[p.cfg.family] = r;
        this.metrics.inc('kubexdp_iptables_restore_total', 'iptables-restore runs', { family: p.cfg.family, result: 'ok', partial: String(r.partial) });
      } catch (err) {
        this.metrics.inc('kubexdp_iptables_restore_total', 'iptables-restore runs', { family: p.cfg.family, result: 'error', partial: 'unknown' });
        throw err;
      }
    }
    // Both families' rules: kube-proxy's gauges have no family label.
    const sum = (k: keyof FamilyProxier['rules']) => this.proxiers.reduce((n, p) => n + p.rules[k], 0);
    this.metrics.set(KP.iptablesRulesTotal, sum('filter'), { table: 'filter' });
    this.metrics.set(KP.iptablesRulesTotal, sum('nat'), { table: 'nat' });
    this.metrics.set(KP.iptablesRulesLastSync, sum('filter'), { table: 'filter' });
    this.metrics.set(KP.iptablesRulesLastSync, sum('natWritten'), { table: 'nat' });
    return { writes, detail };
  }

  tick(): boolean {
    let resync = false;
    for (const p of this.proxiers) {
      if (p.canaryGone()) {
        this.log.warn({ family: p.cfg.family }, `${KUBE_PROXY_CANARY} is gone (tables flushed?): syncing everything again`);
        p.forceFullSync();
        resync = true;
      }
    }
    return resync;
  }

  describe(): unknown {
    return Object.fromEntries(this.proxiers.map((p) => [p.cfg.family, {
      filter: kubeLines(p.ipt.save('filter')),
      nat: kubeLines(p.ipt.save('nat')),
    }]));
  }

  close(): void {}
}

/** The KUBE-* chain declarations and rules of a save output. */
export function kubeLines(save: string): string[] {
  return save.split('\n').filter((l) => /^(:KUBE-|-A KUBE-|-A \S+ .*-j KUBE-)/.test(l));
}
