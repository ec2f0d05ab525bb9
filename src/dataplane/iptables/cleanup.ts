// Removes everything the iptables and IPVS modes created in iptables: the jump rules from the built-in chains, then
// every KUBE-* chain of ours (flushed by a chain line, deleted with -X) in one restore per table.
import { Iptables, type Table } from '../../kernel/iptables.js';
import { isServiceChainName } from '../kube-names.js';
import { IPVS_JUMP_RULES, JUMP_RULES, OWN_CHAINS } from './jumps.js';

/** The restore input that flushes and deletes our chains among `existing`; null if none. */
export function cleanupRestoreText(table: Table, existing: ReadonlySet<string>): string | null {
  const chains = [...existing].filter((c) => OWN_CHAINS[table].includes(c) || (table === 'nat' && isServiceChainName(c))).sort();
  if (chains.length === 0) return null;
  return [`*${table}`, ...chains.map((c) => `:${c} - [0:0]`), ...chains.map((c) => `-X ${c}`), 'COMMIT', ''].join('\n');
}

/** Returns the chains removed per table. */
export async function cleanupIptables(ipt: Iptables): Promise<Record<Table, number>> {
  for (const j of [...JUMP_RULES, ...IPVS_JUMP_RULES]) ipt.deleteRule(j.table, j.from, j.args);
  const removed: Record<Table, number> = { filter: 0, nat: 0, mangle: 0 };
  for (const table of ['nat', 'filter', 'mangle'] as const) {
    const text = cleanupRestoreText(table, ipt.chains(table));
    if (text === null) continue;
    await ipt.restore(text);
    removed[table] = text.split('\n').filter((l) => l.startsWith('-X')).length;
  }
  return removed;
}
