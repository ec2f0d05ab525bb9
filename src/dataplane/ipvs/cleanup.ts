// Removes what the IPVS mode leaves besides iptables rules (those go with iptables/cleanup.ts,
// first, since a set cannot be destroyed while a rule matches it): every virtual server, as
// kube-proxy's CleanupLeftovers does, the kube-ipvs0 device, and kube-proxy's ipsets.
import { existsSync } from 'node:fs';
import { destroyIpset, ipsetNames } from '../../kernel/ipset.js';
import { clearIpvs } from '../../kernel/ipvsadm.js';
import { deleteLink } from '../../kernel/link.js';
import { KUBE_IPVS_DEVICE } from '../kube-names.js';
import { SET_IDS, setName } from './ipsets.js';

export interface IpvsCleanup { ipvsCleared: boolean; deviceDeleted: boolean; setsDestroyed: string[] }

export function cleanupIpvs(): IpvsCleanup {
  // Only when ip_vs is loaded: cleanup must not load the module on a node that never used it.
  const ipvsCleared = existsSync('/proc/net/ip_vs') && (clearIpvs(), true);
  const deviceDeleted = deleteLink(KUBE_IPVS_DEVICE);
  const ours = new Set(SET_IDS.flatMap((id) => [setName(id, 'IPv4'), setName(id, 'IPv6')]));
  let existing: string[] = [];
  try {
    existing = ipsetNames();
  } catch {
    // no ipset tool or no ip_set module: nothing of ours can exist
  }
  const setsDestroyed = existing.filter((n) => ours.has(n));
  for (const n of setsDestroyed) destroyIpset(n);
  return { ipvsCleared, deviceDeleted, setsDestroyed };
}
