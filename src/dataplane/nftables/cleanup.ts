// kube-proxy's nftables CleanupLeftovers: both families' `kube-proxy` tables, whatever is in them.
import { Nft } from '../../kernel/nft.js';
import { NFT_TABLE } from '../kube-names.js';

/** Deletes the tables; returns those that existed ("ip kube-proxy"). */
export async function cleanupNftables(): Promise<string[]> {
  const deleted: string[] = [];
  for (const family of ['ip', 'ip6'] as const) {
    if (await new Nft(family, NFT_TABLE).deleteTable()) deleted.push(`${family} ${NFT_TABLE}`);
  }
  return deleted;
}
