// kube-proxy's nftables packet-flow tests (pkg/proxy/nftables/proxier_test.go) run against
// renderNftablesFull: the same Services and EndpointSlices go through our model, the rendered
// ruleset is walked by a tracer with kube-proxy's nftablesTracer semantics
// (helpers/nft-tracer.ts), and each case must land on the same endpoints / verdict / masquerade
// decision. The cases are data (helpers/nftables-flow-tables.ts, on top of the iptables tables).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderNftablesFull } from '../../src/dataplane/nftables/render.js';
import { checkNftRuleset, parseNftDump, runNftPacketFlowTests, traceNftPacket, type NftTracePath } from './helpers/nft-tracer.js';
import { objects } from './helpers/kube-objects.js';
import { TEST_HOSTNAME, TEST_NODE_IP, TEST_NODE_IPS } from './helpers/kube-proxy-fake.js';
import { NFT_FLOW_SCENARIOS, OVERALL_NETFILTER_OVERRIDES, OVERALL_TRACE_CASES, type NftFlowScenario } from './helpers/nftables-flow-tables.js';
import type { PacketFlowTest } from './helpers/iptables-tracer.js';

// ---- the tracer itself --------------------------------------------------------------------

// kube-proxy has no nftables TestTracePackets; this is its analogue: the ruleset the nftables
// proxier writes for TestOverallNFTablesRules' Services, as knftables' Fake.Dump() text. The
// base part is setupNFTables of proxier.go b0f823e6 (base chains filter-prerouting / -input /
// -forward / -output at dstnat-10, filter-output-post-dnat at dstnat+10, cluster-ips-check,
// nodeport-ips for the fake's nodePortAddresses 192.168.0.2/32, serviceCIDRs 172.30.0.0/16);
// the per-Service part is TestOverallNFTablesRules' expected output with b0f823e6's
// "ip daddr X tcp dport P ip saddr != …" masquerade rule.
const OVERALL_RULESET = `
add table ip kube-proxy { comment "rules for kube-proxy" ; }
add chain ip kube-proxy filter-prerouting { type filter hook prerouting priority -110 ; }
add chain ip kube-proxy filter-input { type filter hook input priority -110 ; }
add chain ip kube-proxy filter-forward { type filter hook forward priority -110 ; }
add chain ip kube-proxy filter-output { type filter hook output priority -110 ; }
add chain ip kube-proxy filter-output-post-dnat { type filter hook output priority -90 ; }
add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority -100 ; }
add chain ip kube-proxy nat-output { type nat hook output priority -100 ; }
add chain ip kube-proxy nat-postrouting { type nat hook postrouting priority 100 ; }
add chain ip kube-proxy nodeport-endpoints-check
add chain ip kube-proxy service-endpoints-check
add chain ip kube-proxy firewall-check
add chain ip kube-proxy services
add chain ip kube-proxy masquerading
add chain ip kube-proxy cluster-ips-check
add chain ip kube-proxy mark-for-masquerade
add chain ip kube-proxy reject-chain { comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }
add set ip kube-proxy cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }
add set ip kube-proxy nodeport-ips { type ipv4_addr ; comment "IPs that accept NodePort traffic" ; }
add map ip kube-proxy no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to services with no endpoints" ; }
add map ip kube-proxy no-endpoint-nodeports { type inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }
add map ip kube-proxy firewall-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "destinations that are subject to LoadBalancerSourceRanges" ; }
add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }
add map ip kube-proxy service-nodeports { type inet_proto . inet_service : verdict ; comment "NodePort traffic" ; }
add rule ip kube-proxy filter-input ct state new jump nodeport-endpoints-check
add rule ip kube-proxy filter-input ct state new jump service-endpoints-check
add rule ip kube-proxy filter-forward ct state new jump service-endpoints-check
add rule ip kube-proxy filter-output ct state new jump service-endpoints-check
add rule ip kube-proxy filter-prerouting ct state new jump firewall-check
add rule ip kube-proxy filter-output ct state new jump firewall-check
add rule ip kube-proxy nat-output jump services
add rule ip kube-proxy nat-prerouting jump services
add rule ip kube-proxy nat-postrouting jump masquerading
add rule ip kube-proxy filter-forward ct state new jump cluster-ips-check
add rule ip kube-proxy filter-output-post-dnat ct state new jump cluster-ips-check
add rule ip kube-proxy mark-for-masquerade mark set mark or 0x4000
add rule ip kube-proxy masquerading mark and 0x4000 == 0 return
add rule ip kube-proxy masquerading mark set mark xor 0x4000
add rule ip kube-proxy masquerading masquerade fully-random
add rule ip kube-proxy cluster-ips-check ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"
add rule ip kube-proxy cluster-ips-check ip daddr { 172.30.0.0/16 } drop comment "Drop traffic to unallocated ClusterIPs"
add element ip kube-proxy nodeport-ips { 192.168.0.2 }
add rule ip kube-proxy reject-chain reject
add rule ip kube-proxy service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services
add rule ip kube-proxy nodeport-endpoints-check ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports
add rule ip kube-proxy firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips
add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips
add rule ip kube-proxy services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports

# svc1
add chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80
add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 ip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add chain ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80
add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 }
add rule ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 ip saddr 10.180.0.1 jump mark-for-masquerade
add rule ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 meta l4proto tcp dnat to 10.180.0.1:80
add element ip kube-proxy cluster-ips { 172.30.0.41 }
add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }

# svc2
add chain ip kube-proxy service-42NFTM6N-ns2/svc2/tcp/p80
add chain ip kube-proxy endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80
add rule ip kube-proxy service-42NFTM6N-ns2/svc2/tcp/p80 ip daddr 172.30.0.42 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy service-42NFTM6N-ns2/svc2/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80 }
add chain ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80
add rule ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80 ip saddr 10.0.0.0/8 goto service-42NFTM6N-ns2/svc2/tcp/p80 comment "short-circuit pod traffic"
add rule ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80 fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"
add rule ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80 fib saddr type local goto service-42NFTM6N-ns2/svc2/tcp/p80 comment "short-circuit local traffic"
add rule ip kube-proxy endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80 ip saddr 10.180.0.2 jump mark-for-masquerade
add rule ip kube-proxy endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80 meta l4proto tcp dnat to 10.180.0.2:80
add element ip kube-proxy cluster-ips { 172.30.0.42 }
add element ip kube-proxy service-ips { 172.30.0.42 . tcp . 80 : goto service-42NFTM6N-ns2/svc2/tcp/p80 }
add element ip kube-proxy service-ips { 192.168.99.22 . tcp . 80 : goto external-42NFTM6N-ns2/svc2/tcp/p80 }
add element ip kube-proxy service-ips { 1.2.3.4 . tcp . 80 : goto external-42NFTM6N-ns2/svc2/tcp/p80 }
add element ip kube-proxy service-nodeports { tcp . 3001 : goto external-42NFTM6N-ns2/svc2/tcp/p80 }
add element ip kube-proxy no-endpoint-nodeports { tcp . 3001 comment "ns2/svc2:p80" : drop }
add element ip kube-proxy no-endpoint-services { 1.2.3.4 . tcp . 80 comment "ns2/svc2:p80" : drop }
add element ip kube-proxy no-endpoint-services { 192.168.99.22 . tcp . 80 comment "ns2/svc2:p80" : drop }

# svc3
add chain ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80
add chain ip kube-proxy endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80
add rule ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80 ip daddr 172.30.0.43 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80 }
add chain ip kube-proxy external-4AT6LBPK-ns3/svc3/tcp/p80
add rule ip kube-proxy external-4AT6LBPK-ns3/svc3/tcp/p80 jump mark-for-masquerade
add rule ip kube-proxy external-4AT6LBPK-ns3/svc3/tcp/p80 goto service-4AT6LBPK-ns3/svc3/tcp/p80
add rule ip kube-proxy endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80 ip saddr 10.180.0.3 jump mark-for-masquerade
add rule ip kube-proxy endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80 meta l4proto tcp dnat to 10.180.0.3:80
add element ip kube-proxy cluster-ips { 172.30.0.43 }
add element ip kube-proxy service-ips { 172.30.0.43 . tcp . 80 : goto service-4AT6LBPK-ns3/svc3/tcp/p80 }
add element ip kube-proxy service-nodeports { tcp . 3003 : goto external-4AT6LBPK-ns3/svc3/tcp/p80 }

# svc4
add chain ip kube-proxy service-LAUZTJTB-ns4/svc4/tcp/p80
add chain ip kube-proxy endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80
add chain ip kube-proxy endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80
add rule ip kube-proxy service-LAUZTJTB-ns4/svc4/tcp/p80 ip daddr 172.30.0.44 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy service-LAUZTJTB-ns4/svc4/tcp/p80 numgen random mod 2 vmap { 0 : goto endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80 , 1 : goto endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80 }
add chain ip kube-proxy external-LAUZTJTB-ns4/svc4/tcp/p80
add rule ip kube-proxy external-LAUZTJTB-ns4/svc4/tcp/p80 jump mark-for-masquerade
add rule ip kube-proxy external-LAUZTJTB-ns4/svc4/tcp/p80 goto service-LAUZTJTB-ns4/svc4/tcp/p80
add rule ip kube-proxy endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80 ip saddr 10.180.0.5 jump mark-for-masquerade
add rule ip kube-proxy endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80 meta l4proto tcp dnat to 10.180.0.5:80
add rule ip kube-proxy endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80 ip saddr 10.180.0.4 jump mark-for-masquerade
add rule ip kube-proxy endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80 meta l4proto tcp dnat to 10.180.0.4:80
add element ip kube-proxy cluster-ips { 172.30.0.44 }
add element ip kube-proxy service-ips { 172.30.0.44 . tcp . 80 : goto service-LAUZTJTB-ns4/svc4/tcp/p80 }
add element ip kube-proxy service-ips { 192.168.99.33 . tcp . 80 : goto external-LAUZTJTB-ns4/svc4/tcp/p80 }

# svc5
add set ip kube-proxy affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 { type ipv4_addr ; flags dynamic,timeout ; timeout 10800s ; }
add chain ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80
add chain ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80
add rule ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80 ip daddr 172.30.0.45 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80 ip saddr @affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 goto endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80
add rule ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 }
add chain ip kube-proxy external-HVFWP5L3-ns5/svc5/tcp/p80
add rule ip kube-proxy external-HVFWP5L3-ns5/svc5/tcp/p80 jump mark-for-masquerade
add rule ip kube-proxy external-HVFWP5L3-ns5/svc5/tcp/p80 goto service-HVFWP5L3-ns5/svc5/tcp/p80
add rule ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 ip saddr 10.180.0.3 jump mark-for-masquerade
add rule ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 update @affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 { ip saddr }
add rule ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 meta l4proto tcp dnat to 10.180.0.3:80
add chain ip kube-proxy firewall-HVFWP5L3-ns5/svc5/tcp/p80
add rule ip kube-proxy firewall-HVFWP5L3-ns5/svc5/tcp/p80 ip saddr != { 203.0.113.0/25 } drop
add element ip kube-proxy cluster-ips { 172.30.0.45 }
add element ip kube-proxy service-ips { 172.30.0.45 . tcp . 80 : goto service-HVFWP5L3-ns5/svc5/tcp/p80 }
add element ip kube-proxy service-ips { 5.6.7.8 . tcp . 80 : goto external-HVFWP5L3-ns5/svc5/tcp/p80 }
add element ip kube-proxy service-nodeports { tcp . 3002 : goto external-HVFWP5L3-ns5/svc5/tcp/p80 }
add element ip kube-proxy firewall-ips { 5.6.7.8 . tcp . 80 : goto firewall-HVFWP5L3-ns5/svc5/tcp/p80 }

# svc6
add element ip kube-proxy cluster-ips { 172.30.0.46 }
add element ip kube-proxy no-endpoint-services { 172.30.0.46 . tcp . 80 comment "ns6/svc6:p80" : goto reject-chain }
`;

const withOverrides = (flows: readonly PacketFlowTest[], o: Readonly<Record<string, Partial<PacketFlowTest>>> = {}): PacketFlowTest[] =>
  flows.map((f) => ({ ...f, ...o[f.name] }));

/** A minimal table: base chains, masquerading, and whatever `extra` adds. */
const mini = (extra: string) => parseNftDump(`
add table ip t
add chain ip t filter-prerouting { type filter hook prerouting priority -110 ; }
add chain ip t filter-forward { type filter hook forward priority -110 ; }
add chain ip t filter-input { type filter hook input priority -110 ; }
add chain ip t nat-prerouting { type nat hook prerouting priority -100 ; }
add chain ip t nat-postrouting { type nat hook postrouting priority 100 ; }
add chain ip t mark-for-masquerade
add chain ip t masquerading
add rule ip t mark-for-masquerade mark set mark or 0x4000
add rule ip t masquerading mark and 0x4000 == 0 return
add rule ip t masquerading mark set mark xor 0x4000
add rule ip t masquerading masquerade fully-random
add rule ip t nat-postrouting jump masquerading
${extra}`);

describe('nftables tracer', () => {
  it("TestOverallNFTablesRules' ruleset (static kube-proxy text): TestTracePackets-style cases", () => {
    runNftPacketFlowTests(parseNftDump(OVERALL_RULESET), TEST_NODE_IPS, OVERALL_TRACE_CASES);
    runNftPacketFlowTests(parseNftDump(OVERALL_RULESET), TEST_NODE_IPS, withOverrides(OVERALL_TRACE_CASES, OVERALL_NETFILTER_OVERRIDES), undefined, 'netfilter');
  });

  it('follows every numgen branch, goto returns to the caller, masquerades only through nat-postrouting', () => {
    const view = mini(`
add chain ip t svc
add chain ip t ep1
add chain ip t ep2
add chain ip t ep3
add chain ip t sub
add chain ip t entry
add rule ip t nat-prerouting ip daddr 10.96.0.0/16 jump entry
add rule ip t nat-prerouting ip daddr 10.96.0.0/16 jump svc
add rule ip t entry th dport 80 goto sub
add rule ip t entry drop
add rule ip t sub ip saddr 10.0.0.9 return
add rule ip t sub ip saddr != { 10.0.0.0/8, 10.1.0.0/16 } jump mark-for-masquerade
add rule ip t svc numgen random mod 3 vmap { 0 : goto ep1 , 1 : goto ep2 , 2 : goto ep3 }
add rule ip t ep1 ip saddr 10.1.0.1 jump mark-for-masquerade
add rule ip t ep1 meta l4proto tcp dnat to 10.1.0.1:8080
add rule ip t ep2 meta l4proto udp dnat to 10.1.0.2:8080
add rule ip t ep3 dnat to [fd00::3]:8080
`);
    const t = (sourceIP: string, destPort = 80) => {
      const r = traceNftPacket(view, { sourceIP, destIP: '10.96.1.1', destPort }, []);
      return [r.output, r.masq];
    };
    assert.deepEqual(t('10.0.0.2'), ['10.1.0.1:8080, [fd00::3]:8080', false]);
    assert.deepEqual(t('192.168.5.5'), ['10.1.0.1:8080, [fd00::3]:8080', true]);
    assert.deepEqual(t('10.1.0.1'), ['10.1.0.1:8080, [fd00::3]:8080', true]); // hairpin
    // `return` in sub (reached by goto) returns past entry, straight to nat-prerouting.
    assert.deepEqual(t('10.0.0.9'), ['10.1.0.1:8080, [fd00::3]:8080', false]);
    // Not port 80: no goto, so entry's drop.
    assert.deepEqual(t('10.0.0.2', 81), ['DROP', false]);
    assert.deepEqual(traceNftPacket(view, { sourceIP: '10.0.0.2', protocol: 'UDP', destIP: '10.96.1.1', destPort: 80 }, []).output, '10.1.0.2:8080, [fd00::3]:8080');
  });

  it('matches set/map keys as addresses, CIDRs, protocols and ports; fib local is the node IPs; no affinity for a first packet', () => {
    const view = mini(`
add set ip t allow { type ipv4_addr . inet_proto . inet_service . ipv4_addr ; flags interval ; }
add set ip t nodeips { type ipv4_addr ; }
add set ip t aff { type ipv4_addr ; flags dynamic,timeout ; timeout 10s ; }
add map ip t ports { type inet_proto . inet_service : verdict ; }
add chain ip t ep
add chain ip t rej
add rule ip t rej reject
add rule ip t filter-prerouting ct state new ip daddr . meta l4proto . th dport . ip saddr @allow return
add rule ip t filter-prerouting ip daddr 1.2.3.4 drop
add rule ip t nat-prerouting ip saddr @aff goto ep
add rule ip t nat-prerouting fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @ports
add rule ip t filter-input ip daddr @nodeips sctp dport 9 reject
add rule ip t ep update @aff { ip saddr }
add rule ip t ep meta l4proto tcp dnat to 10.2.0.1:80
add element ip t allow { 1.2.3.4 . tcp . 80 . 203.0.113.0/25 }
add element ip t nodeips { 192.168.0.2 }
add element ip t aff { 203.0.113.7 }
add element ip t ports { tcp . 3001 : goto ep }
add element ip t ports { udp . 3001 : goto rej }
`);
    const t = (sourceIP: string, destIP: string, destPort: number, protocol = 'TCP') =>
      traceNftPacket(view, { sourceIP, destIP, destPort, protocol }, [TEST_NODE_IP]).output;
    assert.equal(t('203.0.113.2', '1.2.3.4', 80), '');
    assert.equal(t('203.0.113.130', '1.2.3.4', 80), 'DROP');
    assert.equal(t('203.0.113.2', '1.2.3.4', 81), 'DROP');
    assert.equal(t('1.1.1.1', TEST_NODE_IP, 3001), '10.2.0.1:80');
    assert.equal(t('1.1.1.1', TEST_NODE_IP, 3001, 'UDP'), 'REJECT');
    assert.equal(t('1.1.1.1', '192.168.0.3', 3001), ''); // not a node IP
    assert.equal(t('1.1.1.1', '127.0.0.1', 3001), ''); // loopback is not in nodeIPs (as kube-proxy's tracer)
    assert.equal(t('1.1.1.1', TEST_NODE_IP, 9, 'SCTP'), 'REJECT');
    // The affinity set is a real lookup: an element matches (a rendered set has none).
    assert.equal(t('203.0.113.7', '9.9.9.9', 1), '10.2.0.1:80');
  });

  it('refuses what it does not understand', () => {
    const bad = [
      'add rule ip t nat-prerouting tcp sport 80 drop', // unknown match
      'add rule ip t nat-prerouting counter drop', // unknown statement
      'add rule ip t nat-prerouting ip daddr 1.2.3.4 drop drop', // statement after a terminal one
      'add rule ip t nat-prerouting jump nowhere', // unknown chain
      'add rule ip t nat-prerouting ip daddr @nothing drop', // unknown set
      'add rule ip t nat-prerouting ip daddr 1.2.3.999 drop', // bad address
      'add chain ip t x\nadd rule ip t nat-prerouting numgen random mod 2 vmap { 0 : goto x }', // mod/entries mismatch
      'add chain ip t x\nadd rule ip t nat-prerouting numgen random mod 2 vmap { 0 : goto x , 2 : goto x }', // bad index
      'add map ip t m { type ipv4_addr : verdict ; }\nadd element ip t m { 1.2.3.4 : snat to 1.1.1.1 }', // not a verdict
      'add set ip t s { type ipv4_addr ; }\nadd rule ip t nat-prerouting meta l4proto . th dport vmap @s', // set used as a map
      'add rule ip t nat-prerouting dnat to 10.0.0.1:80 comment "x" extra', // junk around a comment
    ];
    for (const extra of bad) {
      assert.throws(() => traceNftPacket(mini(extra), { sourceIP: '1.1.1.1', destIP: '2.2.2.2', destPort: 80 }, []), Error, extra);
    }
    // Every chain is compiled, also the ones no packet reaches.
    assert.throws(() => checkNftRuleset(mini('add chain ip t unused\nadd rule ip t unused meta mark set 1 log')), /unrecognised/);
    assert.throws(() => parseNftDump('insert rule ip t x drop'), /unsupported line/);
  });
});

// ---- kube-proxy's flow tables against renderNftablesFull -----------------------------------

/** One scenario, step by step: objects through the real model, a full render, every flow traced. */
function traceScenario(s: NftFlowScenario, path: NftTracePath): void {
  for (const name of Object.keys(s.netfilterOverrides ?? {})) {
    assert.ok(s.steps.some((st) => st.flows.some((f) => f.name === name)), `netfilter override ${name} matches no flow`);
  }
  const o = objects(...s.setup);
  for (const step of s.steps) {
    o.apply(...(step.apply ?? []));
    o.remove(...(step.remove ?? []));
    assert.deepEqual(o.problems, [], 'kube-proxy test objects must be valid for our model');
    const state = o.state({ nodeName: TEST_HOSTNAME, ...s.node });
    assert.ok((state.serviceCIDRs?.length ?? 0) > 0, 'the ServiceCIDR object reaches ProxyState.serviceCIDRs');
    const { ruleset } = renderNftablesFull(state, s.config);
    const flows = path === 'netfilter' ? withOverrides(step.flows, s.netfilterOverrides) : step.flows;
    runNftPacketFlowTests(ruleset, s.nodeIPs, flows, () => ruleset.dump(), path);
  }
}

interface PathNode { name: string; children: PathNode[]; scenarios: NftFlowScenario[] }

function pathTree(scenarios: readonly NftFlowScenario[]): PathNode[] {
  const root: PathNode = { name: '', children: [], scenarios: [] };
  for (const s of scenarios) {
    let node = root;
    for (const name of s.path) {
      let child = node.children.find((c) => c.name === name);
      if (!child) node.children.push((child = { name, children: [], scenarios: [] }));
      node = child;
    }
    node.scenarios.push(s);
  }
  return root.children;
}

function register(nodes: PathNode[], path: NftTracePath): void {
  for (const n of nodes) {
    if (n.children.length > 0) describe(n.name, () => register(n.children, path));
    else it(n.name, () => n.scenarios.forEach((s) => traceScenario(s, path)));
  }
}

describe('kube-proxy nftables packet flows through renderNftablesFull', () => {
  const flows = NFT_FLOW_SCENARIOS.flatMap((s) => s.steps.flatMap((st) => st.flows.map((f) => ({ s, f }))));
  const goFlows = flows.filter(({ s, f }) => !s.ours?.has(f.name));
  it(`covers kube-proxy's nftables flow tables (${goFlows.length} kube-proxy flows, ${flows.length - goFlows.length} of ours)`, () => {
    assert.equal(goFlows.length, 207);
  });
  register(pathTree(NFT_FLOW_SCENARIOS), 'kube-proxy');
});

// The same flows along the hooks a real packet meets (host-originated packets through
// filter-output, nat-output and filter-output-post-dnat), which kube-proxy's walk skips.
describe('the same flows along the netfilter hooks (ours: output chains for host-originated packets)', () => {
  register(pathTree(NFT_FLOW_SCENARIOS), 'netfilter');
});
