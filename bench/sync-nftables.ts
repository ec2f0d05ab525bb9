// The nftables mode's part of the sync benchmark (bench/sync.ts runs it beside iptables and
// eBPF on the same workload): renderNftablesSync → `nft -f -` in a scratch network namespace,
// as NftablesDataplane does (chains and sets listed on full syncs, then the transaction), for a full sync
// into an empty namespace, a full resync with everything in place, and a single-endpoint
// partial sync (the tracker's change set). Counts are read back from the kernel.
import { spawnSync } from 'node:child_process';
import { ruleModeConfig } from '../src/dataplane/iptables/setup.js';
import { NFT_TABLE } from '../src/dataplane/kube-names.js';
import { transactionText } from '../src/dataplane/nftables/ops.js';
import { EMPTY_NFTABLES_MEMORY, renderNftablesSync, type NftablesMemory } from '../src/dataplane/nftables/render.js';
import type { ProxySettings } from '../src/config/run-config.js';
import type { ProxyState } from '../src/model/types.js';

export interface Stat { median: number; min: number; max: number; trials: number[] }
const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d;
export const stat = (xs: number[]): Stat => {
  const s = [...xs].sort((a, b) => a - b);
  return { median: round(s[Math.floor(s.length / 2)]!), min: round(s[0]!), max: round(s[s.length - 1]!), trials: xs.map((x) => round(x)) };
};

export interface NftStage { list_ms: Stat; render_ms: Stat; nft_ms: Stat; total_ms: Stat; ops: Stat; text_bytes: Stat }
export interface NftResult {
  version: string;
  full_initial: NftStage;
  full_resync: NftStage;
  partial: NftStage;
  kernel: { chains: number; rules: number; elements: number };
  rss_mib_after: number;
}

/** What a NftablesDataplane for this node would be configured with. */
export function benchNftConfig(nodeIP: string, clusterCIDR: string) {
  const proxy = { nodeIPs: [nodeIP], clusterCIDRs: [clusterCIDR], masqueradeAll: false, masqueradeBit: 14, nodePortAddresses: [`${nodeIP}/32`] } as unknown as ProxySettings;
  return ruleModeConfig(proxy, 'IPv4', ['127.0.0.1', nodeIP]);
}

class NftNetns {
  readonly name = `kxbench-nft-${process.pid}`;
  create(): void {
    this.destroy();
    const r = spawnSync('ip', ['netns', 'add', this.name], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ip netns add ${this.name}: ${r.stderr}`);
  }
  destroy(): void {
    spawnSync('ip', ['netns', 'del', this.name], { stdio: 'ignore' });
  }
  nft(args: string[], input?: string): string {
    const r = spawnSync('ip', ['netns', 'exec', this.name, 'nft', ...args], { input, encoding: 'utf8', maxBuffer: 1 << 30 });
    if (r.status !== 0) throw new Error(`nft ${args.join(' ')} in ${this.name}: ${(r.stderr || String(r.error)).slice(0, 2000)}`);
    return r.stdout;
  }
  names(kind: 'chains' | 'sets'): string[] {
    const doc = JSON.parse(this.nft(['-j', 'list', kind, 'ip'])) as { nftables: Record<string, { table?: string; name?: string }>[] };
    const one = kind.slice(0, -1);
    return doc.nftables.flatMap((o) => (o[one]?.table === NFT_TABLE ? [o[one]!.name!] : []));
  }
}

type Step = { list: number; render: number; nft: number; ops: number; bytes: number; memory: NftablesMemory };

function step(ns: NftNetns, cfg: ReturnType<typeof benchNftConfig>, state: ProxyState, memory: NftablesMemory, changed: ReadonlySet<string> | null): Step {
  const t0 = performance.now();
  // as NftablesDataplane: a partial sync takes the table's chains from the memory
  const existingChains = changed ? [...memory.chains] : ns.names('chains');
  const existingSets = changed ? [...memory.affinitySets] : ns.names('sets');
  const t1 = performance.now();
  const r = renderNftablesSync(state, cfg, memory, {
    partial: changed !== null, changedServices: changed, existingChains, existingSets, now: Date.now(),
  });
  const text = transactionText('ip', NFT_TABLE, [...r.staleChainDeletes, ...r.ops]);
  const t2 = performance.now();
  if (r.ops.length > 0) ns.nft(['-f', '-'], text);
  const t3 = performance.now();
  return { list: t1 - t0, render: t2 - t1, nft: t3 - t2, ops: r.ops.length, bytes: Buffer.byteLength(text), memory: r.memory };
}

const stage = (steps: Step[]): NftStage => ({
  list_ms: stat(steps.map((s) => s.list)), render_ms: stat(steps.map((s) => s.render)), nft_ms: stat(steps.map((s) => s.nft)),
  total_ms: stat(steps.map((s) => s.list + s.render + s.nft)), ops: stat(steps.map((s) => s.ops)), text_bytes: stat(steps.map((s) => s.bytes)),
});

/** `full` and `minus` (`changed` with an endpoint fewer): the workload bench/sync.ts builds. */
/** A full sync slower than `budgetS` is not repeated (at that size: one initial, one resync). */
export function benchNftables(w: { full: ProxyState; minus: ProxyState; changed: string }, cfg: ReturnType<typeof benchNftConfig>, trials: number, budgetS: number): NftResult {
  const version = spawnSync('nft', ['--version'], { encoding: 'utf8' }).stdout.trim();
  const ns = new NftNetns();
  try {
    const initial: Step[] = [];
    let memory = EMPTY_NFTABLES_MEMORY;
    for (let i = 0; i < trials; i++) {
      ns.create();
      const s = step(ns, cfg, w.full, EMPTY_NFTABLES_MEMORY, null);
      initial.push(s);
      memory = s.memory;
      process.stderr.write(`  nftables full (empty table) #${i + 1}: list ${round(s.list)} ms, render ${round(s.render)} ms, nft ${round(s.nft)} ms, ${s.ops} ops\n`);
      if (s.nft > budgetS * 1000) break;
    }
    const resync: Step[] = [];
    for (let i = 0; i < (initial[0]!.nft > budgetS * 1000 ? 1 : trials); i++) {
      const s = step(ns, cfg, w.full, memory, null);
      resync.push(s);
      memory = s.memory;
      process.stderr.write(`  nftables full resync #${i + 1}: list ${round(s.list)} ms, render ${round(s.render)} ms, nft ${round(s.nft)} ms, ${s.ops} ops\n`);
    }
    // 10 → 9 → 10 …: each a partial sync of the one changed Service
    const partial: Step[] = [];
    // the change set each snapshot carries (as iptPartial in sync.ts uses it)
    let applied = w.full;
    for (let i = 0; i < 2 * trials; i++) {
      const next = applied === w.full ? w.minus : w.full;
      const changed = next.changes!.services;
      if (changed.size !== 1 || !changed.has(w.changed)) throw new Error(`change set: expected {${w.changed}}, got ${JSON.stringify([...changed])}`);
      const s = step(ns, cfg, next, memory, changed);
      partial.push(s);
      memory = s.memory;
      applied = next;
      process.stderr.write(`  nftables partial: list ${round(s.list)} ms, render ${round(s.render)} ms, nft ${round(s.nft)} ms, ${s.ops} ops\n`);
    }
    const items = (JSON.parse(ns.nft(['-j', 'list', 'table', 'ip', NFT_TABLE])) as { nftables: Record<string, { elem?: unknown[] }>[] }).nftables;
    const kernel = {
      chains: items.filter((o) => o['chain']).length,
      rules: items.filter((o) => o['rule']).length,
      elements: items.reduce((n, o) => n + ((o['set'] ?? o['map'])?.elem?.length ?? 0), 0),
    };
    return { version, full_initial: stage(initial), full_resync: stage(resync), partial: stage(partial), kernel, rss_mib_after: round(process.memoryUsage().rss / 2 ** 20) };
  } finally {
    ns.destroy();
  }
}
