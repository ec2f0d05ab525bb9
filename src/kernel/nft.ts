// The nft binary, for one table of one family (kube-proxy's knftables does the same): a
// transaction through `nft -f -` (atomic: all of it or nothing), listing the table's objects,
// deleting the table. Runs in the caller's network namespace.
import { CommandError, runCommand, runCommandAsync } from './command.js';

export type NftFamily = 'ip' | 'ip6';

export class Nft {
  constructor(readonly family: NftFamily, readonly table: string) {}

  /** Runs a transaction; throws CommandError with nft's message when the kernel rejects any of
   *  it (then nothing of it is applied). Asynchronous: a full sync at scale takes a while. */
  async run(text: string): Promise<void> {
    const r = await runCommandAsync('nft', ['-f', '-'], text);
    if (r.code !== 0) throw new CommandError('nft -f -', r.code, r.stderr || r.stdout);
  }

  /** Names of the table's chains, sets or maps (`nft -j list chains ip`, filtered to the table,
   *  as knftables' List does); [] when the table does not exist. */
  async list(kind: 'chains' | 'sets' | 'maps'): Promise<string[]> {
    const r = await runCommandAsync('nft', ['-j', 'list', kind, this.family]);
    if (r.code !== 0) throw new CommandError(`nft -j list ${kind} ${this.family}`, r.code, r.stderr);
    const one = kind.slice(0, -1);
    const doc = JSON.parse(r.stdout) as { nftables?: Record<string, { table?: string; name?: string }>[] };
    return (doc.nftables ?? []).flatMap((o) => (o[one]?.table === this.table && o[one]?.name ? [o[one]!.name!] : []));
  }

  /** `nft list table`: the ruleset as nft prints it; null when the table does not exist. */
  listTable(): string | null {
    const r = runCommand('nft', ['list', 'table', this.family, this.table]);
    if (r.code === 0) return r.stdout;
    if (/No such file or directory/.test(r.stderr)) return null;
    throw new CommandError(`nft list table ${this.family} ${this.table}`, r.code, r.stderr);
  }

  /** `nft -j list table`: the same, as nft's JSON schema (for inspect); null when absent. */
  listTableJson(): unknown {
    const r = runCommand('nft', ['-j', 'list', 'table', this.family, this.table]);
    if (r.code === 0) return JSON.parse(r.stdout) as unknown;
    if (/No such file or directory/.test(r.stderr)) return null;
    throw new CommandError(`nft -j list table ${this.family} ${this.table}`, r.code, r.stderr);
  }

  /** Deletes the table; false when there was none. */
  async deleteTable(): Promise<boolean> {
    const r = await runCommandAsync('nft', ['delete', 'table', this.family, this.table]);
    if (r.code === 0) return true;
    if (/No such file or directory/.test(r.stderr)) return false;
    throw new CommandError(`nft delete table ${this.family} ${this.table}`, r.code, r.stderr);
  }
}

/** The nft binary's version, or null when it does not run. */
export function nftVersion(): [number, number, number] | null {
  try {
    const r = runCommand('nft', ['--version']);
    const m = /v(\d+)\.(\d+)\.(\d+)/.exec(r.stdout);
    return r.code === 0 && m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
  } catch {
    return null;
  }
}
