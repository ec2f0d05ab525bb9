// kube-proxy's nftables unit-test fixture (kubernetes pkg/proxy/nftables/proxier_test.go and
// helpers_test.go; expectations read from aroradaman/kubernetes@4177b600d4b97a67b765a18ddeeb295ef757b212,
// whose proxier_test.go matches proxier.go at b0f823e6ccd8a10b3893fc75011b9981af39285c:
// filter-output-post-dnat, cluster-ips-check, "tcp dport" in the ClusterIP masquerade rule,
// testHostname "test-hostname"). Public Go code is the reference; this is our own TypeScript.
import type { NftablesConfig } from '../../../src/dataplane/nftables/config.js';
import { nftFamilyOf } from '../../../src/dataplane/nftables/ops.js';
import {
  EMPTY_NFTABLES_MEMORY, renderNftablesSync, type NftablesMemory, type NftablesSync,
} from '../../../src/dataplane/nftables/render.js';
import { NftRuleset } from '../../../src/dataplane/nftables/ruleset.js';
import { isNftAffinitySetName, isNftServiceChainName } from '../../../src/dataplane/kube-names.js';
import { changedSince } from '../../../src/model/tracker.js';
import type { ProxyState } from '../../../src/model/types.js';
import { FAKE_PROXIER_MASQUERADE_MARK, TEST_EXTERNAL_IP, TEST_NODE_IP, TEST_NODE_IPV6, TEST_NODE_IP_ALT, TEST_POD_CIDR } from './kube-proxy-fake.js';

/** NewFakeProxier(v1.IPv4Protocol): NewDetectLocalByCIDR("10.0.0.0/8"), masqueradeMark "0x4000",
 *  nodePortAddresses [testNodeIP/32, testNodeIPv6/128], the fake "lo" and "eth0" addresses of
 *  the family, nodeIP testNodeIP (its serviceCIDRs "172.30.0.0/16" are FAKE_SERVICE_CIDRS). */
export const FAKE_NFTABLES_CONFIG: NftablesConfig = Object.freeze<NftablesConfig>({
  family: 'IPv4',
  nodeIP: TEST_NODE_IP,
  localAddresses: Object.freeze(['127.0.0.1', TEST_NODE_IP, TEST_NODE_IP_ALT, TEST_EXTERNAL_IP]),
  clusterCIDRs: Object.freeze([TEST_POD_CIDR]),
  masqueradeAll: false,
  masqueradeMark: FAKE_PROXIER_MASQUERADE_MARK,
  nodePortAddresses: Object.freeze([`${TEST_NODE_IP}/32`, `${TEST_NODE_IPV6}/128`]),
});

/** NewFakeProxier's serviceCIDRs (the IPv4 proxier's). */
export const FAKE_SERVICE_CIDRS: readonly string[] = Object.freeze(['172.30.0.0/16']);

/** lithammer/dedent: the common leading whitespace removed, whitespace-only lines emptied. */
export function dedent(s: string): string {
  const lines = s.split('\n');
  const indents = lines.filter((l) => l.trim() !== '').map((l) => /^[ \t]*/.exec(l)![0].length);
  const margin = indents.length > 0 ? Math.min(...indents) : 0;
  return lines.map((l) => (l.trim() === '' ? '' : l.slice(margin))).join('\n');
}

/** helpers_test.go's objectOrder: table, chain, rule, set, map, element. */
const OBJECT_ORDER: Record<string, number> = { table: 10, chain: 9, rule: 8, set: 7, map: 6, element: 5 };

/** kube-proxy's sortNFTablesTransaction: blank and "#" lines dropped, then (stably) by object
 *  type, by object name, rules keeping their order, other lines by their whole text. */
export function sortNFTablesTransaction(tx: string): string {
  const lines = tx.split('\n').filter((l) => l !== '' && l[0] !== '#');
  const cmp = (li: string, lj: string): number => {
    const wi = li.split(' ');
    const wj = lj.split(' ');
    if (wi.length < 5 || wj.length < 5) return 0;
    if (wi[1] !== wj[1]) return (OBJECT_ORDER[wj[1]!] ?? 0) - (OBJECT_ORDER[wi[1]!] ?? 0);
    if (wi[4] !== wj[4]) return wi[4]! < wj[4]! ? -1 : 1;
    if (wi[1] === 'rule') return 0;
    return li < lj ? -1 : li > lj ? 1 : 0;
  };
  return lines.sort(cmp).join('\n'); // Array.prototype.sort is stable
}

/** NewFakeProxier's baseRules: what setupNFTables leaves in the table (IPv4, nodeport-ips). */
export const BASE_RULES = dedent(`
  add table ip kube-proxy { comment "rules for kube-proxy" ; }

  add chain ip kube-proxy cluster-ips-check
  add chain ip kube-proxy filter-prerouting { type filter hook prerouting priority -110 ; }
  add chain ip kube-proxy filter-forward { type filter hook forward priority -110 ; }
  add chain ip kube-proxy filter-input { type filter hook input priority -110 ; }
  add chain ip kube-proxy filter-output { type filter hook output priority -110 ; }
  add chain ip kube-proxy filter-output-post-dnat { type filter hook output priority -90 ; }
  add chain ip kube-proxy firewall-check
  add chain ip kube-proxy mark-for-masquerade
  add chain ip kube-proxy masquerading
  add chain ip kube-proxy nat-output { type nat hook output priority -100 ; }
  add chain ip kube-proxy nat-postrouting { type nat hook postrouting priority 100 ; }
  add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority -100 ; }
  add chain ip kube-proxy nodeport-endpoints-check
  add chain ip kube-proxy reject-chain { comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }
  add chain ip kube-proxy services
  add chain ip kube-proxy service-endpoints-check

  add rule ip kube-proxy cluster-ips-check ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"
  add rule ip kube-proxy cluster-ips-check ip daddr { 172.30.0.0/16 } drop comment "Drop traffic to unallocated ClusterIPs"
  add rule ip kube-proxy filter-prerouting ct state new jump firewall-check
  add rule ip kube-proxy filter-forward ct state new jump service-endpoints-check
  add rule ip kube-proxy filter-forward ct state new jump cluster-ips-check
  add rule ip kube-proxy filter-input ct state new jump nodeport-endpoints-check
  add rule ip kube-proxy filter-input ct state new jump service-endpoints-check
  add rule ip kube-proxy filter-output ct state new jump service-endpoints-check
  add rule ip kube-proxy filter-output ct state new jump firewall-check
  add rule ip kube-proxy filter-output-post-dnat ct state new jump cluster-ips-check
  add rule ip kube-proxy firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips
  add rule ip kube-proxy mark-for-masquerade mark set mark or 0x4000
  add rule ip kube-proxy masquerading mark and 0x4000 == 0 return
  add rule ip kube-proxy masquerading mark set mark xor 0x4000
  add rule ip kube-proxy masquerading masquerade fully-random
  add rule ip kube-proxy nat-output jump services
  add rule ip kube-proxy nat-postrouting jump masquerading
  add rule ip kube-proxy nat-prerouting jump services
  add rule ip kube-proxy nodeport-endpoints-check ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports
  add rule ip kube-proxy reject-chain reject
  add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips
  add rule ip kube-proxy services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports
  add set ip kube-proxy cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }
  add set ip kube-proxy nodeport-ips { type ipv4_addr ; comment "IPs that accept NodePort traffic" ; }
  add element ip kube-proxy nodeport-ips { 192.168.0.2 }
  add rule ip kube-proxy service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services

  add map ip kube-proxy firewall-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "destinations that are subject to LoadBalancerSourceRanges" ; }
  add map ip kube-proxy no-endpoint-nodeports { type inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }
  add map ip kube-proxy no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to services with no endpoints" ; }
  add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }
  add map ip kube-proxy service-nodeports { type inet_proto . inet_service : verdict ; comment "NodePort traffic" ; }
`);

/** A Proxier with a knftables fake: renderNftablesSync applied to an NftRuleset, kube-proxy's
 *  needFullSync / partial-sync bookkeeping, and a clock the test moves. */
export class FakeNftablesProxier {
  readonly ruleset: NftRuleset;
  memory: NftablesMemory = EMPTY_NFTABLES_MEMORY;
  needFullSync = true;
  /** ms; ageStaleChains() moves it 2 s on. */
  now = 1_700_000_000_000;
  last: NftablesSync | null = null;
  private applied: ProxyState | null = null;

  constructor(readonly cfg: NftablesConfig = FAKE_NFTABLES_CONFIG, readonly serviceCIDRs: readonly string[] = FAKE_SERVICE_CIDRS) {
    this.ruleset = new NftRuleset(nftFamilyOf(cfg.family));
  }

  /** syncProxyRules(): a full sync the first time, then partial ones for the Services changed
   *  since the last applied state. */
  sync(state: ProxyState): NftablesSync {
    const partial = !this.needFullSync;
    const changed = partial && this.applied ? changedSince(this.applied, state) : null;
    const r = renderNftablesSync({ ...state, serviceCIDRs: this.serviceCIDRs }, this.cfg, this.memory, {
      partial,
      changedServices: changed,
      // as NftablesDataplane: a partial sync takes the table's chains and sets from the memory
      existingChains: partial ? [...this.memory.chains] : this.ruleset.exists ? this.ruleset.listChains() : null,
      existingSets: partial ? [...this.memory.affinitySets] : this.ruleset.exists ? this.ruleset.listSets() : null,
      now: this.now,
    });
    if (r.staleChainDeletes.length > 0) this.ruleset.apply(r.staleChainDeletes);
    this.ruleset.apply(r.ops);
    // What the memory says the table holds is what it holds (else partial syncs go wrong).
    const held = (names: string[], pick: (n: string) => boolean) => names.filter(pick).sort().join('\n');
    if (held(this.ruleset.listChains(), isNftServiceChainName) !== held([...r.memory.chains], () => true)) {
      throw new Error(`memory.chains differs from the table's service chains:\n${held([...r.memory.chains], () => true)}\n---\n${held(this.ruleset.listChains(), isNftServiceChainName)}`);
    }
    if (held(this.ruleset.listSets(), isNftAffinitySetName) !== held([...r.memory.affinitySets], () => true)) {
      throw new Error('memory.affinitySets differs from the table\'s affinity sets');
    }
    this.memory = r.memory;
    this.needFullSync = false;
    this.applied = state;
    this.last = r;
    return r;
  }

  /** The Go test's ageStaleChains(): stale chains become more than a second old. */
  ageStaleChains(): void {
    this.now += 2000;
  }

  dump(): string {
    return this.ruleset.dump();
  }
}
