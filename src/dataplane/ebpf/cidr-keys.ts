// Canonical IPv4 CIDR text <-> the keys of the LPM-trie maps (kx_src_ranges, kx_cluster_cidrs).
import { parseCidr } from '../../model/cidr.js';
import type { CidrKey, SrcRangeKey } from './maps.js';

/** The 32 bits of svc_id come first in kx_src_ranges' key and are always matched whole. */
const SVC_ID_BITS = 32;

function ipv4Cidr(text: string): { addr: string; prefix: number } {
  const c = parseCidr(text);
  if (!c || c.bits !== 32) throw new Error(`not an IPv4 CIDR: ${JSON.stringify(text)}`);
  return { addr: text.slice(0, text.indexOf('/')), prefix: c.prefix };
}

export function srcRangeKeyOf(svcId: number, cidr: string): SrcRangeKey {
  const { addr, prefix } = ipv4Cidr(cidr);
  return { prefixlen: SVC_ID_BITS + prefix, svcId, addr };
}

export function cidrKeyOf(cidr: string): CidrKey {
  const { addr, prefix } = ipv4Cidr(cidr);
  return { prefixlen: prefix, addr };
}

export const cidrOfSrcRangeKey = (k: SrcRangeKey): string => `${k.addr}/${k.prefixlen - SVC_ID_BITS}`;
export const cidrOfKey = (k: CidrKey): string => `${k.addr}/${k.prefixlen}`;
