// The nftables mode: one proxier per family, each owning table `ip kube-proxy` / `ip6 kube-proxy`,
// with kube-proxy's nftables sync discipline (pkg/proxy/nftables/proxier.go): a transaction per
// sync through `nft -f -`, full on start, periodically and after any failure, partial otherwise
// (only changed Services' chains, map elements by difference, the table not listed); chains that went stale flushed
// now and deleted in a later sync; stale UDP conntrack entries removed. The transaction is
// computed by render.ts (pure); this file only runs it and keeps what kube-proxy keeps.
import type { Logger } from 'pino';
import { deleteConntrack } from '../../kernel/conntrack.js';
import { Nft } from '../../kernel/nft.js';
import { changedSince } from '../../model/tracker.js';
import type { ProxyState } from '../../model/types.js';
import { KP } from '../../observe/kube-proxy-metrics.js';
import type { Metrics } from '../../observe/metrics.js';
import { staleUdpConntrack } from '../conntrack.js';
import { NFT_TABLE } from '../kube-names.js';
import type { Dataplane, SyncResult } from '../types.js';
import type { NftablesConfig } from './config.js';
import { nftFamilyOf, transactionText } from './ops.js';
import { EMPTY_NFTABLES_MEMORY, renderNftablesSync, type NftablesMemory } from './render.js';


interface FamilySync { partial: boolean; ops: number; chains: number; rules: number; elements: number; staleDeleted: number; conntrack: number }

class NftFamilyProxier {
  private memory: NftablesMemory = EMPTY_NFTABLES_MEMORY;
  private needFullSync = true;
  private last: ProxyState | null = null;
  readonly nft: Nft;

  constructor(readonly cfg: NftablesConfig, private readonly log: Logger, private readonly metrics: Metrics) {
    this.nft = new Nft(nftFamilyOf(cfg.family), NFT_TABLE);
  }

  async sync(state: ProxyState, full: boolean): Promise<FamilySync> {
    const partial = !full && !this.needFullSync && this.last !== null;
    const t0 = performance.now();
    try {
      return await this.syncOnce(state, partial);
    } finally {
      this.metrics.observe(partial ? KP.syncPartialProxyRulesDuration : KP.syncFullProxyRulesDuration, (performance.now() - t0) / 1000);
    }
  }

  private async syncOnce(state: ProxyState, partial: boolean): Promise<FamilySync> {
    // A full sync reads what the table holds; a partial one trusts what the last transaction left
    // (listing 100,000 chains takes seconds, and any doubt makes the next sync a full one).
    const [existingChains, existingSets] = partial
      ? [[...this.memory.chains], [...this.memory.affinitySets]]
      : await Promise.all([this.nft.list('chains'), this.nft.list('sets')]);
    const r = renderNftablesSync(state, this.cfg, this.memory, {
      partial, changedServices: partial ? changedSince(this.last!, state) : null, existingChains, existingSets, now: Date.now(),
    });
    // Chains stale for over a second go first, in their own transaction: kernels before 6.2
    // notice late that a deleted map element no longer references a chain. One that fails to
    // go is found again (flushed, stale) by a later sync.
    let staleDeleted = 0;
    if (r.staleChainDeletes.length > 0) {
      try {
        await this.nft.run(transactionText(this.nft.family, NFT_TABLE, r.staleChainDeletes));
        staleDeleted = r.staleChainDeletes.length;
      } catch (err) {
        this.metrics.inc(KP.nftablesCleanupFailures);
        this.log.error({ family: this.cfg.family, err: (err as Error).message }, 'unable to delete stale nftables chains; will retry later');
      }
    }
    for (const w of r.warnings) this.log.warn({ family: this.cfg.family }, w);
    try {
      await this.nft.run(transactionText(this.nft.family, NFT_TABLE, r.ops));
    } catch (err) {
      // Nothing of the transaction was applied: the previous ruleset stays. What this proxier
      // remembers of the table may be wrong now, so the next sync is a full one.
      this.metrics.inc(KP.nftablesSyncFailures);
      this.needFullSync = true;
      this.memory = { ...this.memory, staleChains: new Map() };
      throw err;
    }
    this.memory = r.memory;
    this.needFullSync = false;
    this.metrics.set(KP.noLocalEndpoints, r.noLocalEndpoints.internal, { traffic_policy: 'internal' });
    this.metrics.set(KP.noLocalEndpoints, r.noLocalEndpoints.external, { traffic_policy: 'external' });

    const stale = staleUdpConntrack(this.last, state, this.cfg.family);
    for (const f of deleteConntrack(stale, this.cfg.family)) this.log.warn({ family: this.cfg.family }, `stale UDP conntrack entries not removed: ${f}`);
    this.last = state;
    return { partial, ops: r.ops.length, ...r.counts, staleDeleted, conntrack: stale.length };
  }

  forceFullSync(): void {
    this.needFullSync = true;
  }
}

export class NftablesDataplane implements Dataplane {
  private readonly proxiers: NftFamilyProxier[];

  constructor(families: readonly NftablesConfig[], log: Logger, metrics: Metrics) {
    this.proxiers = families.map((cfg) => new NftFamilyProxier(cfg, log, metrics));
  }

  async sync(state: ProxyState, opts: { full?: boolean } = {}): Promise<SyncResult> {
    const detail: Record<string, unknown> = {};
    let writes = 0;
    for (const p of this.proxiers) {
      const r = await p.sync(state, opts.full ?? false);
      writes += r.ops;
      detail[p.cfg.family] = r;
    }
    return { writes, detail };
  }

  describe(): unknown {
    return Object.fromEntries(this.proxiers.map((p) => [p.cfg.family, p.nft.listTable()]));
  }

  close(): void {}
}
