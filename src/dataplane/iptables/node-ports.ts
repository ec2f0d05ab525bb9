// Where NodePorts answer: kube-proxy's NodePortAddresses (pkg/proxy/util/nodeport_addresses.go)
// plus the localhost rules of its iptables proxier. Pure: the host's addresses come in cfg.
import { cidrContains, parseCidr, type Cidr } from '../../model/cidr.js';
import type { IptablesConfig } from './config.js';

export interface NodePortDestinations {
  /** No usable nodePortAddresses CIDR (or a zero one): every local address. */
  readonly matchAll: boolean;
  /** Otherwise: the host's addresses inside the CIDRs, sorted. */
  readonly addresses: readonly string[];
  /** localhostNodePorts in effect: asked for, IPv4, and the CIDRs include 127.0.0.0. */
  readonly localhostNodePorts: boolean;
  readonly warnings: readonly string[];
}

const LOOPBACK4 = parseCidr('127.0.0.0/8')!;

/** kube-proxy's NodePortAddresses for one family: whether it matches every address
 *  (MatchAll: no CIDR of the family, or a zero one) and otherwise the host's addresses inside
 *  its CIDRs (GetNodeIPs), loopback ones included, unique, in localAddresses order. Shared by the iptables
 *  and nftables renderers, which treat loopback addresses differently. */
export function matchNodePortAddresses(cfg: Pick<IptablesConfig, 'family' | 'nodePortAddresses' | 'localAddresses'>): { matchAll: boolean; addresses: string[] } {
  const bits = cfg.family === 'IPv4' ? 32 : 128;
  const cidrs = cfg.nodePortAddresses.map(parseCidr).filter((c): c is Cidr => c !== null && c.bits === bits);
  const matchAll = cidrs.length === 0 || cidrs.some((c) => c.prefix === 0);
  if (matchAll) return { matchAll, addresses: [] };
  const addresses = new Set(cfg.localAddresses.filter((ip) => cidrs.some((c) => cidrContains(c, ip))));
  return { matchAll, addresses: [...addresses] };
}

export function nodePortDestinations(cfg: Pick<IptablesConfig, 'family' | 'nodePortAddresses' | 'localAddresses' | 'localhostNodePorts'>): NodePortDestinations {
  const bits = cfg.family === 'IPv4' ? 32 : 128;
  const cidrs = cfg.nodePortAddresses.map(parseCidr).filter((c) => c !== null && c.bits === bits);
  const { matchAll, addresses: matched } = matchNodePortAddresses(cfg);
  const containsIPv4Loopback = bits === 32 && (matchAll || cidrs.some((c) => cidrContains(c!, '127.0.0.0') || cidrContains(LOOPBACK4, ipOfNetwork(c!.text))));
  const localhostNodePorts = cfg.localhostNodePorts && containsIPv4Loopback;
  const warnings: string[] = [];
  if (matchAll) return { matchAll, addresses: [], localhostNodePorts, warnings };

  const addresses = new Set<string>();
  for (const ip of matched) {
    const loopback = bits === 32 ? cidrContains(LOOPBACK4, ip) : ip === '::1';
    if (loopback && bits === 128) {
      warnings.push(`nodePortAddresses includes localhost ${ip} but localhost NodePorts are not supported on IPv6`);
      continue;
    }
    if (loopback && !localhostNodePorts) {
      warnings.push(`nodePortAddresses includes localhost ${ip} but iptables.localhostNodePorts is false`);
      continue;
    }
    addresses.add(ip);
  }
  if (addresses.size === 0) warnings.push(`no local address matches nodePortAddresses ${cfg.nodePortAddresses.join(',')}: NodePorts answer nowhere`);
  return { matchAll, addresses: [...addresses].sort(), localhostNodePorts, warnings };
}

function ipOfNetwork(cidr: string): string {
  return cidr.slice(0, cidr.indexOf('/')).trim();
}
