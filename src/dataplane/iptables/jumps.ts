// The rules in the built-in chains that lead to kube-proxy's chains (iptablesJumpChains and
// iptablesKubeletJumpChains in pkg/proxy/iptables/proxier.go). They are ensured one by one, not
// restored, because kube-xdp does not own INPUT, FORWARD, OUTPUT, PREROUTING, POSTROUTING.
import type { Iptables, Table } from '../../kernel/iptables.js';
import {
  KUBE_EXTERNAL_SERVICES, KUBE_FIREWALL, KUBE_FORWARD, KUBE_IPVS_FILTER, KUBE_IPVS_OUT_FILTER, KUBE_LOAD_BALANCER, KUBE_MARK_MASQ,
  KUBE_NODE_PORT, KUBE_NODEPORTS, KUBE_POSTROUTING, KUBE_PROXY_CANARY, KUBE_PROXY_FIREWALL, KUBE_SERVICES, KUBE_SOURCE_RANGES_FIREWALL,
} from '../kube-names.js';

export interface JumpRule {
  readonly table: Table;
  readonly from: string;
  readonly to: string;
  /** The rule's arguments, as `iptables -I <from>` takes them. */
  readonly args: readonly string[];
}

const NEW = ['-m', 'conntrack', '--ctstate', 'NEW'];
const jump = (table: Table, to: string, from: string, comment: string, extra: string[] = []): JumpRule => ({
  table, from, to, args: [...extra, ...(comment ? ['-m', 'comment', '--comment', comment] : []), '-j', to],
});

export const JUMP_RULES: readonly JumpRule[] = [
  jump('filter', KUBE_EXTERNAL_SERVICES, 'INPUT', 'kubernetes externally-visible service portals', NEW),
  jump('filter', KUBE_EXTERNAL_SERVICES, 'FORWARD', 'kubernetes externally-visible service portals', NEW),
  jump('filter', KUBE_NODEPORTS, 'INPUT', 'kubernetes health check service ports'),
  jump('filter', KUBE_SERVICES, 'FORWARD', 'kubernetes service portals', NEW),
  jump('filter', KUBE_SERVICES, 'OUTPUT', 'kubernetes service portals', NEW),
  jump('filter', KUBE_FORWARD, 'FORWARD', 'kubernetes forwarding rules'),
  jump('filter', KUBE_PROXY_FIREWALL, 'INPUT', 'kubernetes load balancer firewall', NEW),
  jump('filter', KUBE_PROXY_FIREWALL, 'OUTPUT', 'kubernetes load balancer firewall', NEW),
  jump('filter', KUBE_PROXY_FIREWALL, 'FORWARD', 'kubernetes load balancer firewall', NEW),
  jump('nat', KUBE_SERVICES, 'OUTPUT', 'kubernetes service portals'),
  jump('nat', KUBE_SERVICES, 'PREROUTING', 'kubernetes service portals'),
  jump('nat', KUBE_POSTROUTING, 'POSTROUTING', 'kubernetes postrouting rules'),
  // kubelet's copies (its anti-martian chain), without a comment.
  jump('filter', KUBE_FIREWALL, 'INPUT', ''),
  jump('filter', KUBE_FIREWALL, 'OUTPUT', ''),
];


/** IPVS mode's jumps (iptablesJumpChain in pkg/proxy/ipvs/proxier.go). */
export const IPVS_JUMP_RULES: readonly JumpRule[] = [
  jump('nat', KUBE_SERVICES, 'OUTPUT', 'kubernetes service portals'),
  jump('nat', KUBE_SERVICES, 'PREROUTING', 'kubernetes service portals'),
  jump('nat', KUBE_POSTROUTING, 'POSTROUTING', 'kubernetes postrouting rules'),
  jump('filter', KUBE_FORWARD, 'FORWARD', 'kubernetes forwarding rules'),
  jump('filter', KUBE_NODE_PORT, 'INPUT', 'kubernetes health check rules'),
  jump('filter', KUBE_PROXY_FIREWALL, 'INPUT', 'kube-proxy firewall rules'),
  jump('filter', KUBE_PROXY_FIREWALL, 'FORWARD', 'kube-proxy firewall rules'),
  jump('filter', KUBE_IPVS_FILTER, 'INPUT', 'kubernetes ipvs access filter'),
  jump('filter', KUBE_IPVS_OUT_FILTER, 'OUTPUT', 'kubernetes ipvs access filter'),
];

/** Chains the iptables and IPVS modes create besides the per-service ones: what cleanup removes. */
export const OWN_CHAINS: Readonly<Record<'filter' | 'nat' | 'mangle', readonly string[]>> = {
  filter: [KUBE_SERVICES, KUBE_EXTERNAL_SERVICES, KUBE_FORWARD, KUBE_NODEPORTS, KUBE_PROXY_FIREWALL, KUBE_FIREWALL, KUBE_PROXY_CANARY,
    KUBE_NODE_PORT, KUBE_SOURCE_RANGES_FIREWALL, KUBE_IPVS_FILTER, KUBE_IPVS_OUT_FILTER],
  nat: [KUBE_SERVICES, KUBE_NODEPORTS, KUBE_POSTROUTING, KUBE_MARK_MASQ, KUBE_PROXY_CANARY, KUBE_NODE_PORT, KUBE_LOAD_BALANCER],
  mangle: [KUBE_PROXY_CANARY],
};

/** The canary chain in every table, then each jump (chain created, rule prepended unless present). */
export function ensureJumpRules(ipt: Iptables, rules: readonly JumpRule[]): void {
  for (const table of ['filter', 'nat', 'mangle'] as const) ipt.ensureChain(table, KUBE_PROXY_CANARY);
  for (const j of rules) {
    ipt.ensureChain(j.table, j.to);
    ipt.ensureRulePrepended(j.table, j.from, j.args);
  }
}

/** The canary chain disappears when someone flushes the tables: then everything is synced again. */
export function canaryGone(ipt: Iptables): boolean {
  return !ipt.chains('mangle').has(KUBE_PROXY_CANARY);
}
