// The iptables binaries of one family and backend (nft or legacy): restore, save, and the
// idempotent chain/rule helpers kube-proxy's util/iptables offers. Runs in the caller's netns.
import { spawnSync } from 'node:child_process';
import type { IPFamily } from '../model/types.js';
import { CommandError as IptablesError, runCommand as run, runCommandAsync as runAsync, type CommandResult as Run } from './command.js';

export type IptablesBackend = 'nft' | 'legacy';
export type Table = 'filter' | 'nat' | 'mangle';

export class Iptables {
  private readonly prefix: string;

  constructor(readonly family: IPFamily, readonly backend: IptablesBackend) {
    this.prefix = `${family === 'IPv6' ? 'ip6tables' : 'iptables'}-${backend}`;
  }

  private cmd(args: string[]): Run {
    return run(this.prefix, ['-w', '5', ...args]);
  }

  /** "1.8.9" */
  version(): string {
    const r = run(this.prefix, ['--version']);
    const m = /v(\d+\.\d+\.\d+)/.exec(r.stdout);
    if (!m) throw new IptablesError(`${this.prefix} --version`, r.code, r.stdout + r.stderr);
    return m[1]!;
  }

  /** MASQUERADE --random-fully exists since iptables 1.6.2. */
  hasRandomFully(): boolean {
    const [a, b, c] = this.version().split('.').map(Number) as [number, number, number];
    return a > 1 || (a === 1 && (b > 6 || (b === 6 && c >= 2)));
  }

  /** `iptables-restore --noflush --counters`: only the chains named in `text` are flushed.
   *  Asynchronous: a restore of every rule takes seconds at scale. */
  async restore(text: string): Promise<void> {
    const bin = `${this.prefix}-restore`;
    const r = await runAsync(bin, ['-w', '5', '--noflush', '--counters'], text);
    if (r.code !== 0) throw new IptablesError(`${bin} --noflush --counters`, r.code, r.stderr);
  }

  /** `counters`: with each rule's [packets:bytes] (-c), for inspect. */
  save(table: Table, counters = false): string {
    const bin = `${this.prefix}-save`;
    const args = [...(counters ? ['-c'] : []), '-t', table];
    const r = run(bin, args);
    if (r.code !== 0) throw new IptablesError(`${bin} ${args.join(' ')}`, r.code, r.stderr);
    return r.stdout;
  }

  /** Chains declared in a table (the `:NAME` lines of iptables-save). */
  chains(table: Table): Set<string> {
    return chainsOf(this.save(table));
  }

  ensureChain(table: Table, chain: string): void {
    const r = this.cmd(['-t', table, '-N', chain]);
    if (r.code !== 0 && !/exists/i.test(r.stderr)) throw new IptablesError(`${this.prefix} -t ${table} -N ${chain}`, r.code, r.stderr);
  }

  /** Inserts the rule at the top of `chain` unless it is there already. */
  ensureRulePrepended(table: Table, chain: string, args: readonly string[]): boolean {
    if (this.cmd(['-t', table, '-C', chain, ...args]).code === 0) return false;
    const r = this.cmd(['-t', table, '-I', chain, ...args]);
    if (r.code !== 0) throw new IptablesError(`${this.prefix} -t ${table} -I ${chain} ${args.join(' ')}`, r.code, r.stderr);
    return true;
  }

  /** Deletes the rule if present; returns whether it was. */
  deleteRule(table: Table, chain: string, args: readonly string[]): boolean {
    if (this.cmd(['-t', table, '-C', chain, ...args]).code !== 0) return false;
    const r = this.cmd(['-t', table, '-D', chain, ...args]);
    if (r.code !== 0) throw new IptablesError(`${this.prefix} -t ${table} -D ${chain}`, r.code, r.stderr);
    return true;
  }

  available(): boolean {
    try {
      return run(this.prefix, ['--version']).code === 0;
    } catch {
      return false;
    }
  }
}

export function chainsOf(saveOutput: string): Set<string> {
  const out = new Set<string>();
  for (const line of saveOutput.split('\n')) if (line.startsWith(':')) out.add(line.slice(1, line.indexOf(' ')));
  return out;
}

/** Rules in a save output, as the number of `-A` lines. */
function ruleCount(saveOutput: string): number {
  return saveOutput.split('\n').filter((l) => l.startsWith('-A ')).length;
}

/**
 * The backend the node already uses, as kube-proxy's image wrapper decides it: the one holding
 * kubelet's/kube-proxy's chains, else the one with more rules, else nft (Debian 12's default).
 */
export function detectBackend(): { backend: IptablesBackend; reason: string } {
  const dump = (b: IptablesBackend) => {
    const r = spawnSync(`iptables-${b}-save`, [], { encoding: 'utf8', maxBuffer: 1 << 28 });
    return r.status === 0 ? r.stdout : null;
  };
  const nft = dump('nft');
  const legacy = dump('legacy');
  if (legacy === null) return { backend: 'nft', reason: 'iptables-legacy is not available' };
  if (nft === null) return { backend: 'legacy', reason: 'iptables-nft is not available' };
  const kube = (s: string) => /KUBE-IPTABLES-HINT|KUBE-KUBELET-CANARY|KUBE-PROXY-CANARY|KUBE-SERVICES/.test(s);
  if (kube(legacy) && !kube(nft)) return { backend: 'legacy', reason: 'Kubernetes chains are in iptables-legacy' };
  if (kube(nft)) return { backend: 'nft', reason: 'Kubernetes chains are in iptables-nft' };
  if (ruleCount(legacy) > ruleCount(nft)) return { backend: 'legacy', reason: 'iptables-legacy holds more rules' };
  return { backend: 'nft', reason: 'default' };
}
