// Canonical CIDR text <-> the keys of the LPM-trie maps (kx_src_ranges, kx_cluster_cidrs and
// their IPv6 twins, which share the TypeScript shapes).
import { canonicalAddress, parseCidr } from '../../model/cidr.js';
import { roleOf, type CidrKey, type MapRole, type SrcRangeKey } from './maps.js';

/** The 32 bits of svc_id come first in kx_src_ranges' key and are always matched whole. */
const SVC_ID_BITS = 32;

function cidrParts(text: string): { addr: string; prefix: number } {
  const c = parseCidr(text);
  if (!c) throw new Error(`not a CIDR: ${JSON.stringify(text)}`);
  return { addr: canonicalAddress(text.slice(0, text.indexOf('/')))!, prefix: c.prefix };
}

export function srcRangeKeyOf(svcId: number, cidr: string): SrcRangeKey {
  const { addr, prefix } = cidrParts(cidr);
  return { prefixlen: SVC_ID_BITS + prefix, svcId, addr };
}

export function cidrKeyOf(cidr: string): CidrKey {
  const { addr, prefix } = cidrParts(cidr);
  return { prefixlen: prefix, addr };
}

/** The map (IPv4 or its IPv6 twin) a CIDR's key lives in. */
export const srcRangesRole = (cidr: string): MapRole => roleOf('srcRanges', cidr);
export const clusterCidrsRole = (cidr: string): MapRole => roleOf('clusterCidrs', cidr);

export const cidrOfSrcRangeKey = (k: SrcRangeKey): string => `${k.addr}/${k.prefixlen - SVC_ID_BITS}`;
export const cidrOfKey = (k: CidrKey): string => `${k.addr}/${k.prefixlen}`;
