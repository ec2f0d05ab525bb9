// renderNftablesSync / NftRuleset against kube-proxy's own expectations: kubernetes
// pkg/proxy/nftables/proxier_test.go as stored at aroradaman/kubernetes@4177b600d4b97a67b765a18ddeeb295ef757b212
// (its expected dumps have filter-output-post-dnat, cluster-ips-check and "tcp dport" in the
// ClusterIP masquerade rule: the proxier of kubernetes/kubernetes@b0f823e6ccd8a10b3893fc75011b9981af39285c,
// which the renderer follows), compared after a port of helpers_test.go's sortNFTablesTransaction
// (aroradaman/kubernetes@7c37bd572e0717ed4cae980e3edd816527137696). Dump() format and order: knftables
// fake.go / objects.go (kubernetes-sigs/knftables). Each it() names the Go test it reproduces;
// "verbatim" blocks are kube-proxy's expected text, "derived" blocks are for Go tests that only trace
// packets: written from proxier.go for the same inputs, with chain names checked by the verbatim
// chain-name tests. Inputs go through the real model (Kubernetes JSON → ChangeTracker → ProxyState).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  isNftServiceChainName, nftEndpointChainNameBase, nftServicePortChainNameBase,
} from '../../src/dataplane/kube-names.js';
import { opText, transactionText, type NftOp } from '../../src/dataplane/nftables/ops.js';
import {
  EMPTY_NFTABLES_MEMORY, renderNftablesFull, renderNftablesSync, type NftSyncOptions,
} from '../../src/dataplane/nftables/render.js';
import { NftRuleset } from '../../src/dataplane/nftables/ruleset.js';
import type { ProxyState } from '../../src/model/types.js';
import { objects, type Json } from './helpers/kube-objects.js';
import {
  TEST_HOSTNAME, internalExternalMasqueradeObjects, loadBalancerObjects, noEndpointsRejectObjects, overallObjects,
  service, slice, tcp, type Ep,
} from './helpers/kube-proxy-fake.js';
import {
  BASE_RULES, FAKE_NFTABLES_CONFIG, FAKE_SERVICE_CIDRS, FakeNftablesProxier, dedent, sortNFTablesTransaction,
} from './helpers/nftables-fake.js';

/** assertNFTablesTransactionEqual. */
function assertNFT(expected: string, result: string): void {
  assert.equal(sortNFTablesTransaction(result), sortNFTablesTransaction(expected));
}

const withCIDRs = (state: ProxyState): ProxyState => ({ ...state, serviceCIDRs: FAKE_SERVICE_CIDRS });

/** A full sync of these objects in kube-proxy's fake (IPv4). */
function fullSync(...objs: Json[]): FakeNftablesProxier {
  const fp = new FakeNftablesProxier();
  fp.sync(objects(...objs).state());
  return fp;
}

// ---- TestOverallNFTablesRules (verbatim) -------------------------------------------------

const OVERALL = BASE_RULES + dedent(`
  # svc1
  add chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80
  add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 ip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
  add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 }

  add chain ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80
  add rule ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 ip saddr 10.180.0.1 jump mark-for-masquerade
  add rule ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 meta l4proto tcp dnat to 10.180.0.1:80

  add element ip kube-proxy cluster-ips { 172.30.0.41 }
  add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }

  # svc2
  add chain ip kube-proxy service-42NFTM6N-ns2/svc2/tcp/p80
  add rule ip kube-proxy service-42NFTM6N-ns2/svc2/tcp/p80 ip daddr 172.30.0.42 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
  add rule ip kube-proxy service-42NFTM6N-ns2/svc2/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80 }
  add chain ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80
  add rule ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80 ip saddr 10.0.0.0/8 goto service-42NFTM6N-ns2/svc2/tcp/p80 comment "short-circuit pod traffic"
  add rule ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80 fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"
  add rule ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80 fib saddr type local goto service-42NFTM6N-ns2/svc2/tcp/p80 comment "short-circuit local traffic"
  add chain ip kube-proxy endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80
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
  add rule ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80 ip daddr 172.30.0.43 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
  add rule ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80 }
  add chain ip kube-proxy external-4AT6LBPK-ns3/svc3/tcp/p80
  add rule ip kube-proxy external-4AT6LBPK-ns3/svc3/tcp/p80 jump mark-for-masquerade
  add rule ip kube-proxy external-4AT6LBPK-ns3/svc3/tcp/p80 goto service-4AT6LBPK-ns3/svc3/tcp/p80
  add chain ip kube-proxy endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80
  add rule ip kube-proxy endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80 ip saddr 10.180.0.3 jump mark-for-masquerade
  add rule ip kube-proxy endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80 meta l4proto tcp dnat to 10.180.0.3:80

  add element ip kube-proxy cluster-ips { 172.30.0.43 }
  add element ip kube-proxy service-ips { 172.30.0.43 . tcp . 80 : goto service-4AT6LBPK-ns3/svc3/tcp/p80 }
  add element ip kube-proxy service-nodeports { tcp . 3003 : goto external-4AT6LBPK-ns3/svc3/tcp/p80 }

  # svc4
  add chain ip kube-proxy service-LAUZTJTB-ns4/svc4/tcp/p80
  add rule ip kube-proxy service-LAUZTJTB-ns4/svc4/tcp/p80 ip daddr 172.30.0.44 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
  add rule ip kube-proxy service-LAUZTJTB-ns4/svc4/tcp/p80 numgen random mod 2 vmap { 0 : goto endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80 , 1 : goto endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80 }
  add chain ip kube-proxy external-LAUZTJTB-ns4/svc4/tcp/p80
  add rule ip kube-proxy external-LAUZTJTB-ns4/svc4/tcp/p80 jump mark-for-masquerade
  add rule ip kube-proxy external-LAUZTJTB-ns4/svc4/tcp/p80 goto service-LAUZTJTB-ns4/svc4/tcp/p80
  add chain ip kube-proxy endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80
  add rule ip kube-proxy endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80 ip saddr 10.180.0.5 jump mark-for-masquerade
  add rule ip kube-proxy endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80 meta l4proto tcp dnat to 10.180.0.5:80
  add chain ip kube-proxy endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80
  add rule ip kube-proxy endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80 ip saddr 10.180.0.4 jump mark-for-masquerade
  add rule ip kube-proxy endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80 meta l4proto tcp dnat to 10.180.0.4:80

  add element ip kube-proxy cluster-ips { 172.30.0.44 }
  add element ip kube-proxy service-ips { 172.30.0.44 . tcp . 80 : goto service-LAUZTJTB-ns4/svc4/tcp/p80 }
  add element ip kube-proxy service-ips { 192.168.99.33 . tcp . 80 : goto external-LAUZTJTB-ns4/svc4/tcp/p80 }

  # svc5
  add set ip kube-proxy affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 { type ipv4_addr ; flags dynamic,timeout ; timeout 10800s ; }
  add chain ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80
  add rule ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80 ip daddr 172.30.0.45 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
  add rule ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80 ip saddr @affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 goto endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80
  add rule ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 }
  add chain ip kube-proxy external-HVFWP5L3-ns5/svc5/tcp/p80
  add rule ip kube-proxy external-HVFWP5L3-ns5/svc5/tcp/p80 jump mark-for-masquerade
  add rule ip kube-proxy external-HVFWP5L3-ns5/svc5/tcp/p80 goto service-HVFWP5L3-ns5/svc5/tcp/p80

  add chain ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80
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
`);

describe('renderNftablesSync: kube-proxy full syncs', () => {
  it('TestOverallNFTablesRules (verbatim)', () => {
    const fp = fullSync(...overallObjects());
    assertNFT(OVERALL, fp.dump());
    assert.deepEqual(fp.last!.warnings, []);
  });

  it('sortNFTablesTransaction leaves rule order within a chain alone and sorts the rest', () => {
    const sorted = sortNFTablesTransaction(dedent(`
      add element ip kube-proxy cluster-ips { 172.30.0.42 }
      # comment
      add rule ip kube-proxy b second
      add rule ip kube-proxy a x
      add rule ip kube-proxy b first
      add element ip kube-proxy cluster-ips { 172.30.0.41 }
      add chain ip kube-proxy b
      add table ip kube-proxy { comment "rules for kube-proxy" ; }
    `));
    assert.equal(sorted, [
      'add table ip kube-proxy { comment "rules for kube-proxy" ; }',
      'add chain ip kube-proxy b',
      'add rule ip kube-proxy a x',
      'add rule ip kube-proxy b second',
      'add rule ip kube-proxy b first',
      'add element ip kube-proxy cluster-ips { 172.30.0.41 }',
      'add element ip kube-proxy cluster-ips { 172.30.0.42 }',
    ].join('\n'));
  });

  it('TestBadIPs (verbatim expectation; canonical inputs): our model rejects the leading-zero forms kube-proxy parses sloppily', () => {
    const bad = objects(
      service('ns1', 'svc1', {
        type: 'LoadBalancer', clusterIP: '172.30.0.041', ports: [tcp('p80', 80, { nodePort: 3001 })],
        externalIPs: ['192.168.099.022'], loadBalancerSourceRanges: ['203.0.113.000/025'],
      }, ['1.2.3.004']),
      slice('ns1', 'svc1', ['10.180.00.001'], [tcp('p80', 80)]),
    );
    assert.deepEqual(bad.state().services, []);
    assert.ok(bad.problems.some((p) => p.text.includes('"172.30.0.041" is not a valid IP address')));
    // The same Service written canonically renders kube-proxy's expected (canonicalized) dump.
    const state = objects(
      service('ns1', 'svc1', {
        type: 'LoadBalancer', clusterIP: '172.30.0.41', ports: [tcp('p80', 80, { nodePort: 3001 })],
        externalIPs: ['192.168.99.22'], loadBalancerSourceRanges: ['203.0.113.0/25'],
      }, ['1.2.3.4']),
      slice('ns1', 'svc1', ['10.180.0.1'], [tcp('p80', 80)]),
    ).state();
    const fp = new FakeNftablesProxier();
    fp.sync(state);
    assertNFT(BASE_RULES + dedent(`
      # svc1
      add chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80
      add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 ip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
      add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 }

      add chain ip kube-proxy external-ULMVA6XW-ns1/svc1/tcp/p80
      add rule ip kube-proxy external-ULMVA6XW-ns1/svc1/tcp/p80 jump mark-for-masquerade
      add rule ip kube-proxy external-ULMVA6XW-ns1/svc1/tcp/p80 goto service-ULMVA6XW-ns1/svc1/tcp/p80

      add chain ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80
      add rule ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 ip saddr 10.180.0.1 jump mark-for-masquerade
      add rule ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 meta l4proto tcp dnat to 10.180.0.1:80

      add chain ip kube-proxy firewall-ULMVA6XW-ns1/svc1/tcp/p80
      add rule ip kube-proxy firewall-ULMVA6XW-ns1/svc1/tcp/p80 ip saddr != { 203.0.113.0/25 } drop

      add element ip kube-proxy cluster-ips { 172.30.0.41 }
      add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }
      add element ip kube-proxy service-ips { 192.168.99.22 . tcp . 80 : goto external-ULMVA6XW-ns1/svc1/tcp/p80 }
      add element ip kube-proxy service-ips { 1.2.3.4 . tcp . 80 : goto external-ULMVA6XW-ns1/svc1/tcp/p80 }
      add element ip kube-proxy service-nodeports { tcp . 3001 : goto external-ULMVA6XW-ns1/svc1/tcp/p80 }
      add element ip kube-proxy firewall-ips { 1.2.3.4 . tcp . 80 : goto firewall-ULMVA6XW-ns1/svc1/tcp/p80 }
    `), fp.dump());
  });

  it('TestNoEndpointsReject (derived): ClusterIP, external IP, LB IP and NodePort go to reject-chain', () => {
    const fp = fullSync(...noEndpointsRejectObjects());
    assertNFT(BASE_RULES + dedent(`
      add element ip kube-proxy cluster-ips { 172.30.0.41 }
      add element ip kube-proxy no-endpoint-services { 172.30.0.41 . tcp . 80 comment "ns1/svc1:p80" : goto reject-chain }
      add element ip kube-proxy no-endpoint-services { 192.168.99.11 . tcp . 80 comment "ns1/svc1:p80" : goto reject-chain }
      add element ip kube-proxy no-endpoint-services { 1.2.3.4 . tcp . 80 comment "ns1/svc1:p80" : goto reject-chain }
      add element ip kube-proxy no-endpoint-nodeports { tcp . 3001 comment "ns1/svc1:p80" : goto reject-chain }
    `), fp.dump());
    assert.deepEqual(fp.last!.noLocalEndpoints, { internal: 0, external: 0 });
  });

  // TestLoadBalancer: LB IPs 1.2.3.4 and 5.6.7.8, source ranges 192.168.0.0/24 (holds the node IP)
  // and " 203.0.113.0/25", NodePort 3001, one remote endpoint.
  const LOAD_BALANCER = BASE_RULES + dedent(`
    add chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80
    add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 ip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
    add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 }
    add chain ip kube-proxy external-ULMVA6XW-ns1/svc1/tcp/p80
    add rule ip kube-proxy external-ULMVA6XW-ns1/svc1/tcp/p80 jump mark-for-masquerade
    add rule ip kube-proxy external-ULMVA6XW-ns1/svc1/tcp/p80 goto service-ULMVA6XW-ns1/svc1/tcp/p80
    add chain ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80
    add rule ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 ip saddr 10.180.0.1 jump mark-for-masquerade
    add rule ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 meta l4proto tcp dnat to 10.180.0.1:80
    add chain ip kube-proxy firewall-ULMVA6XW-ns1/svc1/tcp/p80
    add rule ip kube-proxy firewall-ULMVA6XW-ns1/svc1/tcp/p80 ip saddr != { 192.168.0.0/24 , 203.0.113.0/25 , 1.2.3.4 , 5.6.7.8 } drop

    add element ip kube-proxy cluster-ips { 172.30.0.41 }
    add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }
    add element ip kube-proxy service-ips { 1.2.3.4 . tcp . 80 : goto external-ULMVA6XW-ns1/svc1/tcp/p80 }
    add element ip kube-proxy service-ips { 5.6.7.8 . tcp . 80 : goto external-ULMVA6XW-ns1/svc1/tcp/p80 }
    add element ip kube-proxy service-nodeports { tcp . 3001 : goto external-ULMVA6XW-ns1/svc1/tcp/p80 }
    add element ip kube-proxy firewall-ips { 1.2.3.4 . tcp . 80 : goto firewall-ULMVA6XW-ns1/svc1/tcp/p80 }
    add element ip kube-proxy firewall-ips { 5.6.7.8 . tcp . 80 : goto firewall-ULMVA6XW-ns1/svc1/tcp/p80 }
  `);

  it('TestLoadBalancer (derived): firewall chain with the source ranges, plus the LB IPs when a range holds the node IP', () => {
    assertNFT(LOAD_BALANCER, fullSync(...loadBalancerObjects()).dump());
  });

  it('TestLoadBalancer (derived): no LB IPs as sources when no range holds the node IP (or nodeIP unknown)', () => {
    const o = objects(...loadBalancerObjects([' 203.0.113.0/25']));
    const want = LOAD_BALANCER.replace('{ 192.168.0.0/24 , 203.0.113.0/25 , 1.2.3.4 , 5.6.7.8 }', '{ 203.0.113.0/25 }');
    const fp = new FakeNftablesProxier();
    fp.sync(o.state());
    assertNFT(want, fp.dump());
    const noNode = new FakeNftablesProxier({ ...FAKE_NFTABLES_CONFIG, nodeIP: null });
    noNode.sync(objects(...loadBalancerObjects()).state());
    assertNFT(LOAD_BALANCER.replace(' , 1.2.3.4 , 5.6.7.8 }', ' }'), noNode.dump());
  });

  it('TestExternalTrafficPolicyLocal (derived): local- chain for external traffic, short-circuits, health check port not in nftables', () => {
    const fp = fullSync(
      service('ns1', 'svc1', {
        type: 'LoadBalancer', externalTrafficPolicy: 'Local', clusterIP: '172.30.0.41', externalIPs: ['192.168.99.11'],
        ports: [tcp('p80', 80, { nodePort: 3001, targetPort: 80 })], healthCheckNodePort: 30000,
      }, ['1.2.3.4']),
      slice('ns1', 'svc1', ['10.180.0.1', { ip: '10.180.2.1', node: TEST_HOSTNAME }], [tcp('p80', 80)]),
    );
    const svc = 'service-ULMVA6XW-ns1/svc1/tcp/p80';
    const local = 'local-ULMVA6XW-ns1/svc1/tcp/p80';
    const ext = 'external-ULMVA6XW-ns1/svc1/tcp/p80';
    const ep1 = `endpoint-${nftEndpointChainNameBase({ namespace: 'ns1', name: 'svc1', portName: 'p80' }, 'tcp', { ip: '10.180.0.1', port: 80 })}`;
    const ep2 = `endpoint-${nftEndpointChainNameBase({ namespace: 'ns1', name: 'svc1', portName: 'p80' }, 'tcp', { ip: '10.180.2.1', port: 80 })}`;
    assert.equal(ep1, 'endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80');
    assertNFT(BASE_RULES + dedent(`
      add chain ip kube-proxy ${svc}
      add rule ip kube-proxy ${svc} ip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
      add rule ip kube-proxy ${svc} numgen random mod 2 vmap { 0 : goto ${ep1} , 1 : goto ${ep2} }
      add chain ip kube-proxy ${local}
      add rule ip kube-proxy ${local} numgen random mod 1 vmap { 0 : goto ${ep2} }
      add chain ip kube-proxy ${ext}
      add rule ip kube-proxy ${ext} ip saddr 10.0.0.0/8 goto ${svc} comment "short-circuit pod traffic"
      add rule ip kube-proxy ${ext} fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"
      add rule ip kube-proxy ${ext} fib saddr type local goto ${svc} comment "short-circuit local traffic"
      add rule ip kube-proxy ${ext} goto ${local}
      add chain ip kube-proxy ${ep1}
      add rule ip kube-proxy ${ep1} ip saddr 10.180.0.1 jump mark-for-masquerade
      add rule ip kube-proxy ${ep1} meta l4proto tcp dnat to 10.180.0.1:80
      add chain ip kube-proxy ${ep2}
      add rule ip kube-proxy ${ep2} ip saddr 10.180.2.1 jump mark-for-masquerade
      add rule ip kube-proxy ${ep2} meta l4proto tcp dnat to 10.180.2.1:80

      add element ip kube-proxy cluster-ips { 172.30.0.41 }
      add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto ${svc} }
      add element ip kube-proxy service-ips { 192.168.99.11 . tcp . 80 : goto ${ext} }
      add element ip kube-proxy service-ips { 1.2.3.4 . tcp . 80 : goto ${ext} }
      add element ip kube-proxy service-nodeports { tcp . 3001 : goto ${ext} }
    `), fp.dump());
  });

  it('TestInternalTrafficPolicy (derived): iTP Local uses local-, and drops ClusterIP traffic without a local endpoint', () => {
    const svc = (policy: 'Cluster' | 'Local') => service('ns1', 'svc1', {
      clusterIP: '172.30.1.1', selector: { foo: 'bar' }, ports: [tcp('', 80)], internalTrafficPolicy: policy,
    });
    const eps = (nodes: string[]) => slice('ns1', 'svc1', nodes.map((node, i) => ({ ip: `10.0.1.${i + 1}`, node, ready: true })), [tcp('', 80)]);
    const spn = { namespace: 'ns1', name: 'svc1', portName: '' };
    const base = nftServicePortChainNameBase(spn, 'tcp');
    assert.match(base, /^[A-Z2-7]{8}-ns1\/svc1\/tcp\/$/);
    const ep = (ip: string) => `endpoint-${nftEndpointChainNameBase(spn, 'tcp', { ip, port: 80 })}`;

    // One local endpoint: only local- and that endpoint's chain.
    let fp = fullSync(svc('Local'), eps([TEST_HOSTNAME, 'host1', 'host2']));
    assertNFT(BASE_RULES + dedent(`
      add chain ip kube-proxy local-${base}
      add rule ip kube-proxy local-${base} ip daddr 172.30.1.1 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
      add rule ip kube-proxy local-${base} numgen random mod 1 vmap { 0 : goto ${ep('10.0.1.1')} }
      add chain ip kube-proxy ${ep('10.0.1.1')}
      add rule ip kube-proxy ${ep('10.0.1.1')} ip saddr 10.0.1.1 jump mark-for-masquerade
      add rule ip kube-proxy ${ep('10.0.1.1')} meta l4proto tcp dnat to 10.0.1.1:80
      add element ip kube-proxy cluster-ips { 172.30.1.1 }
      add element ip kube-proxy service-ips { 172.30.1.1 . tcp . 80 : goto local-${base} }
    `), fp.dump());
    assert.deepEqual(fp.last!.noLocalEndpoints, { internal: 0, external: 0 });

    // No local endpoint: drop (TestNoEndpointsMetric counts it).
    fp = fullSync(svc('Local'), eps(['host0', 'host1', 'host2']));
    assertNFT(BASE_RULES + dedent(`
      add element ip kube-proxy cluster-ips { 172.30.1.1 }
      add element ip kube-proxy no-endpoint-services { 172.30.1.1 . tcp . 80 comment "ns1/svc1" : drop }
    `), fp.dump());
    assert.deepEqual(fp.last!.noLocalEndpoints, { internal: 1, external: 0 });
  });

  it('TestTerminatingEndpointsTrafficPolicyLocal (derived): only serving-terminating local endpoints serve external traffic', () => {
    const fp = fullSync(
      service('ns1', 'svc1', {
        clusterIP: '172.30.1.1', type: 'LoadBalancer', externalTrafficPolicy: 'Local',
        ports: [tcp('', 80, { targetPort: 80 })], healthCheckNodePort: 30000,
      }, ['1.2.3.4']),
      slice('ns1', 'svc1', [
        { ip: '10.0.1.2', node: TEST_HOSTNAME, ready: false, serving: true, terminating: true },
        { ip: '10.0.1.3', node: TEST_HOSTNAME, ready: false, serving: true, terminating: true },
        { ip: '10.0.1.4', node: TEST_HOSTNAME, ready: false, serving: false, terminating: true },
        { ip: '10.0.1.5', node: 'host-1', ready: true, serving: true, terminating: false },
      ] as Ep[], [tcp('', 80)]),
    );
    const spn = { namespace: 'ns1', name: 'svc1', portName: '' };
    const base = nftServicePortChainNameBase(spn, 'tcp');
    const ep = (ip: string) => `endpoint-${nftEndpointChainNameBase(spn, 'tcp', { ip, port: 80 })}`;
    const epChain = (ip: string) => dedent(`
      add chain ip kube-proxy ${ep(ip)}
      add rule ip kube-proxy ${ep(ip)} ip saddr ${ip} jump mark-for-masquerade
      add rule ip kube-proxy ${ep(ip)} meta l4proto tcp dnat to ${ip}:80
    `);
    assertNFT(BASE_RULES + dedent(`
      add chain ip kube-proxy service-${base}
      add rule ip kube-proxy service-${base} ip daddr 172.30.1.1 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
      add rule ip kube-proxy service-${base} numgen random mod 1 vmap { 0 : goto ${ep('10.0.1.5')} }
      add chain ip kube-proxy local-${base}
      add rule ip kube-proxy local-${base} numgen random mod 2 vmap { 0 : goto ${ep('10.0.1.2')} , 1 : goto ${ep('10.0.1.3')} }
      add chain ip kube-proxy external-${base}
      add rule ip kube-proxy external-${base} ip saddr 10.0.0.0/8 goto service-${base} comment "short-circuit pod traffic"
      add rule ip kube-proxy external-${base} fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"
      add rule ip kube-proxy external-${base} fib saddr type local goto service-${base} comment "short-circuit local traffic"
      add rule ip kube-proxy external-${base} goto local-${base}
      add element ip kube-proxy cluster-ips { 172.30.1.1 }
      add element ip kube-proxy service-ips { 172.30.1.1 . tcp . 80 : goto service-${base} }
      add element ip kube-proxy service-ips { 1.2.3.4 . tcp . 80 : goto external-${base} }
    `) + epChain('10.0.1.2') + epChain('10.0.1.3') + epChain('10.0.1.5'), fp.dump());
  });

  it('TestTerminatingEndpointsTrafficPolicyLocal (derived): terminating endpoints on a remote node: external traffic dropped', () => {
    const fp = fullSync(
      service('ns1', 'svc1', {
        clusterIP: '172.30.1.1', type: 'LoadBalancer', externalTrafficPolicy: 'Local',
        ports: [tcp('', 80, { targetPort: 80 })], healthCheckNodePort: 30000,
      }, ['1.2.3.4']),
      slice('ns1', 'svc1', [{ ip: '10.0.1.5', node: 'host-1', ready: false, serving: true, terminating: true }] as Ep[], [tcp('', 80)]),
    );
    const spn = { namespace: 'ns1', name: 'svc1', portName: '' };
    const base = nftServicePortChainNameBase(spn, 'tcp');
    const ep = `endpoint-${nftEndpointChainNameBase(spn, 'tcp', { ip: '10.0.1.5', port: 80 })}`;
    assertNFT(BASE_RULES + dedent(`
      add chain ip kube-proxy service-${base}
      add rule ip kube-proxy service-${base} ip daddr 172.30.1.1 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
      add rule ip kube-proxy service-${base} numgen random mod 1 vmap { 0 : goto ${ep} }
      add chain ip kube-proxy external-${base}
      add rule ip kube-proxy external-${base} ip saddr 10.0.0.0/8 goto service-${base} comment "short-circuit pod traffic"
      add rule ip kube-proxy external-${base} fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"
      add rule ip kube-proxy external-${base} fib saddr type local goto service-${base} comment "short-circuit local traffic"
      add chain ip kube-proxy ${ep}
      add rule ip kube-proxy ${ep} ip saddr 10.0.1.5 jump mark-for-masquerade
      add rule ip kube-proxy ${ep} meta l4proto tcp dnat to 10.0.1.5:80
      add element ip kube-proxy cluster-ips { 172.30.1.1 }
      add element ip kube-proxy service-ips { 172.30.1.1 . tcp . 80 : goto service-${base} }
      add element ip kube-proxy service-ips { 1.2.3.4 . tcp . 80 : goto external-${base} }
      add element ip kube-proxy no-endpoint-services { 1.2.3.4 . tcp . 80 comment "ns1/svc1" : drop }
    `), fp.dump());
    assert.deepEqual(fp.last!.noLocalEndpoints, { internal: 0, external: 1 });
  });

  it('TestInternalExternalMasquerade (derived): masqueradeAll and no local detector change only the ClusterIP rules and short-circuits', () => {
    const chainRules = (fp: FakeNftablesProxier, name: string) => fp.ruleset.chains.get(name)!.rules.map((r) => r.rule);
    const base = fullSync(...internalExternalMasqueradeObjects());
    const all = new FakeNftablesProxier({ ...FAKE_NFTABLES_CONFIG, masqueradeAll: true });
    all.sync(objects(...internalExternalMasqueradeObjects()).state());
    const noDetector = new FakeNftablesProxier({ ...FAKE_NFTABLES_CONFIG, clusterCIDRs: [] });
    noDetector.sync(objects(...internalExternalMasqueradeObjects()).state());
    const svc1 = `service-${nftServicePortChainNameBase({ namespace: 'ns1', name: 'svc1', portName: 'p80' }, 'tcp')}`;
    const ext2 = `external-${nftServicePortChainNameBase({ namespace: 'ns2', name: 'svc2', portName: 'p80' }, 'tcp')}`;
    const svc2 = ext2.replace('external-', 'service-');
    assert.equal(chainRules(base, svc1)[0], 'ip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade');
    assert.equal(chainRules(all, svc1)[0], 'ip daddr 172.30.0.41 tcp dport 80 jump mark-for-masquerade');
    assert.ok(!chainRules(noDetector, svc1)[0]!.includes('mark-for-masquerade'));
    assert.equal(chainRules(base, ext2)[0], `ip saddr 10.0.0.0/8 goto ${svc2}`);
    assert.equal(chainRules(noDetector, ext2)[0], `fib saddr type local jump mark-for-masquerade`);
    assert.equal(chainRules(all, ext2).length, chainRules(base, ext2).length);
  });

  it('nodePortAddresses match-all: no nodeport-ips set, fib daddr type local, localhost excluded', () => {
    const fp = new FakeNftablesProxier({ ...FAKE_NFTABLES_CONFIG, nodePortAddresses: [] });
    fp.sync(objects(...noEndpointsRejectObjects()).state());
    const dump = fp.dump();
    assert.ok(!dump.includes('nodeport-ips'));
    assert.ok(dump.includes('add rule ip kube-proxy services fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports\n'));
    assert.ok(dump.includes('add rule ip kube-proxy nodeport-endpoints-check ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports\n'));
  });

  it('nodePortAddresses with loopback: skipped with a warning (no localhost NodePorts in nftables mode)', () => {
    const fp = new FakeNftablesProxier({ ...FAKE_NFTABLES_CONFIG, nodePortAddresses: ['127.0.0.0/8', '192.168.0.0/16'] });
    fp.sync(objects().state());
    const elements = fp.ruleset.sets.get('nodeport-ips')!.elements.map((e) => e.key.join());
    assert.deepEqual(elements.sort(), ['192.168.0.2', '192.168.1.2', '192.168.99.11']);
    assert.deepEqual(fp.last!.warnings, ['nodePortAddresses includes localhost 127.0.0.1 but localhost NodePorts are not supported']);
  });

  it('no ServiceCIDRs: no "Drop traffic to unallocated ClusterIPs" rule; several are joined with ","', () => {
    const state = objects().state();
    const none = renderNftablesFull(state, FAKE_NFTABLES_CONFIG).ruleset.dump();
    assert.ok(!none.includes('unallocated'));
    const two = renderNftablesFull({ ...state, serviceCIDRs: ['172.30.0.0/16', '172.50.0.0/16', 'fd00:10:96::/112'] }, FAKE_NFTABLES_CONFIG).ruleset.dump();
    assert.ok(two.includes('add rule ip kube-proxy cluster-ips-check ip daddr { 172.30.0.0/16,172.50.0.0/16 } drop comment "Drop traffic to unallocated ClusterIPs"\n'));
    const v6 = renderNftablesFull({ ...state, serviceCIDRs: ['172.30.0.0/16', 'fd00:10:96::/112'] },
      { ...FAKE_NFTABLES_CONFIG, family: 'IPv6', nodeIP: '2001:db8::1', localAddresses: ['::1', '2001:db8::1'], clusterCIDRs: ['fd00:10::/64'] }).ruleset.dump();
    assert.ok(v6.includes('add rule ip6 kube-proxy cluster-ips-check ip6 daddr { fd00:10:96::/112 } drop comment "Drop traffic to unallocated ClusterIPs"\n'));
    assert.ok(v6.includes('add set ip6 kube-proxy nodeport-ips { type ipv6_addr ; comment "IPs that accept NodePort traffic" ; }\n'));
    assert.ok(v6.includes('add element ip6 kube-proxy nodeport-ips { 2001:db8::1 }\n'));
  });
});

// ---- TestSyncProxyRulesRepeated (verbatim) -----------------------------------------------

describe('renderNftablesSync: partial syncs and stale chains', () => {
  it('TestSyncProxyRulesRepeated (verbatim, with the transaction sizes it checks)', () => {
    const fp = new FakeNftablesProxier();
    const svc1 = service('ns1', 'svc1', { type: 'ClusterIP', clusterIP: '172.30.0.41', ports: [tcp('p80', 80)] });
    const svc2 = service('ns2', 'svc2', { type: 'ClusterIP', clusterIP: '172.30.0.42', ports: [tcp('p8080', 8080)] });
    const o = objects(svc1, svc2,
      slice('ns1', 'svc1', ['10.0.1.1'], [tcp('p80', 80)]),
      slice('ns2', 'svc2', ['10.0.2.1'], [tcp('p8080', 8080)]));
    const sync = () => fp.sync(o.state());
    const ops = () => fp.last!.ops.length;

    sync();
    assertNFT(BASE_RULES + dedent(`
      add element ip kube-proxy cluster-ips { 172.30.0.41 }
      add element ip kube-proxy cluster-ips { 172.30.0.42 }
      add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }
      add element ip kube-proxy service-ips { 172.30.0.42 . tcp . 8080 : goto service-MHHHYRWA-ns2/svc2/tcp/p8080 }

      add chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80
      add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 ip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
      add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-5TPGNJF2-ns1/svc1/tcp/p80__10.0.1.1/80 }
      add chain ip kube-proxy endpoint-5TPGNJF2-ns1/svc1/tcp/p80__10.0.1.1/80
      add rule ip kube-proxy endpoint-5TPGNJF2-ns1/svc1/tcp/p80__10.0.1.1/80 ip saddr 10.0.1.1 jump mark-for-masquerade
      add rule ip kube-proxy endpoint-5TPGNJF2-ns1/svc1/tcp/p80__10.0.1.1/80 meta l4proto tcp dnat to 10.0.1.1:80

      add chain ip kube-proxy service-MHHHYRWA-ns2/svc2/tcp/p8080
      add rule ip kube-proxy service-MHHHYRWA-ns2/svc2/tcp/p8080 ip daddr 172.30.0.42 tcp dport 8080 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
      add rule ip kube-proxy service-MHHHYRWA-ns2/svc2/tcp/p8080 numgen random mod 1 vmap { 0 : goto endpoint-7RVP4LUQ-ns2/svc2/tcp/p8080__10.0.2.1/8080 }
      add chain ip kube-proxy endpoint-7RVP4LUQ-ns2/svc2/tcp/p8080__10.0.2.1/8080
      add rule ip kube-proxy endpoint-7RVP4LUQ-ns2/svc2/tcp/p8080__10.0.2.1/8080 ip saddr 10.0.2.1 jump mark-for-masquerade
      add rule ip kube-proxy endpoint-7RVP4LUQ-ns2/svc2/tcp/p8080__10.0.2.1/8080 meta l4proto tcp dnat to 10.0.2.1:8080
    `), fp.dump());

    // Add a new service and its endpoints.
    o.apply(service('ns3', 'svc3', { type: 'ClusterIP', clusterIP: '172.30.0.43', ports: [tcp('p80', 80)] }));
    const eps3 = slice('ns3', 'svc3', ['10.0.3.1'], [tcp('p80', 80)]);
    o.apply(eps3);
    sync();
    const SVC1 = dedent(`
      add chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80
      add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 ip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
      add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-5TPGNJF2-ns1/svc1/tcp/p80__10.0.1.1/80 }
      add chain ip kube-proxy endpoint-5TPGNJF2-ns1/svc1/tcp/p80__10.0.1.1/80
      add rule ip kube-proxy endpoint-5TPGNJF2-ns1/svc1/tcp/p80__10.0.1.1/80 ip saddr 10.0.1.1 jump mark-for-masquerade
      add rule ip kube-proxy endpoint-5TPGNJF2-ns1/svc1/tcp/p80__10.0.1.1/80 meta l4proto tcp dnat to 10.0.1.1:80
    `);
    const SVC3_EP1 = dedent(`
      add chain ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80
      add rule ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80 ip daddr 172.30.0.43 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
      add rule ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-2OCDJSZQ-ns3/svc3/tcp/p80__10.0.3.1/80 }
      add chain ip kube-proxy endpoint-2OCDJSZQ-ns3/svc3/tcp/p80__10.0.3.1/80
      add rule ip kube-proxy endpoint-2OCDJSZQ-ns3/svc3/tcp/p80__10.0.3.1/80 ip saddr 10.0.3.1 jump mark-for-masquerade
      add rule ip kube-proxy endpoint-2OCDJSZQ-ns3/svc3/tcp/p80__10.0.3.1/80 meta l4proto tcp dnat to 10.0.3.1:80
    `);
    assertNFT(BASE_RULES + dedent(`
      add element ip kube-proxy cluster-ips { 172.30.0.41 }
      add element ip kube-proxy cluster-ips { 172.30.0.42 }
      add element ip kube-proxy cluster-ips { 172.30.0.43 }
      add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }
      add element ip kube-proxy service-ips { 172.30.0.42 . tcp . 8080 : goto service-MHHHYRWA-ns2/svc2/tcp/p8080 }
      add element ip kube-proxy service-ips { 172.30.0.43 . tcp . 80 : goto service-4AT6LBPK-ns3/svc3/tcp/p80 }

      add chain ip kube-proxy service-MHHHYRWA-ns2/svc2/tcp/p8080
      add rule ip kube-proxy service-MHHHYRWA-ns2/svc2/tcp/p8080 ip daddr 172.30.0.42 tcp dport 8080 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
      add rule ip kube-proxy service-MHHHYRWA-ns2/svc2/tcp/p8080 numgen random mod 1 vmap { 0 : goto endpoint-7RVP4LUQ-ns2/svc2/tcp/p8080__10.0.2.1/8080 }
      add chain ip kube-proxy endpoint-7RVP4LUQ-ns2/svc2/tcp/p8080__10.0.2.1/8080
      add rule ip kube-proxy endpoint-7RVP4LUQ-ns2/svc2/tcp/p8080__10.0.2.1/8080 ip saddr 10.0.2.1 jump mark-for-masquerade
      add rule ip kube-proxy endpoint-7RVP4LUQ-ns2/svc2/tcp/p8080__10.0.2.1/8080 meta l4proto tcp dnat to 10.0.2.1:8080
    `) + SVC1 + SVC3_EP1, fp.dump());
    // 2 elements; add+flush 2 chains, 2 rules in each.
    assert.equal(ops(), 10);

    // Delete a service; its chains are flushed, but not deleted yet.
    o.remove(svc2);
    sync();
    const ELEMENTS_13 = dedent(`
      add element ip kube-proxy cluster-ips { 172.30.0.41 }
      add element ip kube-proxy cluster-ips { 172.30.0.43 }
      add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }
      add element ip kube-proxy service-ips { 172.30.0.43 . tcp . 80 : goto service-4AT6LBPK-ns3/svc3/tcp/p80 }
    `);
    assertNFT(BASE_RULES + ELEMENTS_13 + SVC1 + dedent(`
      add chain ip kube-proxy service-MHHHYRWA-ns2/svc2/tcp/p8080
      add chain ip kube-proxy endpoint-7RVP4LUQ-ns2/svc2/tcp/p8080__10.0.2.1/8080
    `) + SVC3_EP1, fp.dump());
    // delete 2 elements, flush 2 chains.
    assert.equal(ops(), 4);

    // Time passes: the stale chains are deleted, in a transaction of their own.
    fp.ageStaleChains();
    sync();
    assertNFT(BASE_RULES + ELEMENTS_13 + SVC1 + SVC3_EP1, fp.dump());
    assert.equal(ops(), 0);
    assert.deepEqual(fp.last!.staleChainDeletes.map((op) => opText('ip', 'kube-proxy', op)), [
      'delete chain ip kube-proxy endpoint-7RVP4LUQ-ns2/svc2/tcp/p8080__10.0.2.1/8080',
      'delete chain ip kube-proxy service-MHHHYRWA-ns2/svc2/tcp/p8080',
    ]);

    // Add a service, sync, then add its endpoints.
    o.apply(service('ns4', 'svc4', { type: 'ClusterIP', clusterIP: '172.30.0.44', ports: [tcp('p80', 80)] }));
    sync();
    assertNFT(BASE_RULES + dedent(`
      add element ip kube-proxy cluster-ips { 172.30.0.41 }
      add element ip kube-proxy cluster-ips { 172.30.0.43 }
      add element ip kube-proxy cluster-ips { 172.30.0.44 }
      add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }
      add element ip kube-proxy service-ips { 172.30.0.43 . tcp . 80 : goto service-4AT6LBPK-ns3/svc3/tcp/p80 }
      add element ip kube-proxy no-endpoint-services { 172.30.0.44 . tcp . 80 comment "ns4/svc4:p80" : goto reject-chain }
    `) + SVC1 + SVC3_EP1, fp.dump());
    assert.equal(ops(), 2);

    o.apply(slice('ns4', 'svc4', ['10.0.4.1'], [tcp('p80', 80)]));
    sync();
    const ELEMENTS_134 = dedent(`
      add element ip kube-proxy cluster-ips { 172.30.0.41 }
      add element ip kube-proxy cluster-ips { 172.30.0.43 }
      add element ip kube-proxy cluster-ips { 172.30.0.44 }
      add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }
      add element ip kube-proxy service-ips { 172.30.0.43 . tcp . 80 : goto service-4AT6LBPK-ns3/svc3/tcp/p80 }
      add element ip kube-proxy service-ips { 172.30.0.44 . tcp . 80 : goto service-LAUZTJTB-ns4/svc4/tcp/p80 }
    `);
    const SVC4 = dedent(`
      add chain ip kube-proxy service-LAUZTJTB-ns4/svc4/tcp/p80
      add rule ip kube-proxy service-LAUZTJTB-ns4/svc4/tcp/p80 ip daddr 172.30.0.44 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
      add rule ip kube-proxy service-LAUZTJTB-ns4/svc4/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-WAHRBT2B-ns4/svc4/tcp/p80__10.0.4.1/80 }
      add chain ip kube-proxy endpoint-WAHRBT2B-ns4/svc4/tcp/p80__10.0.4.1/80
      add rule ip kube-proxy endpoint-WAHRBT2B-ns4/svc4/tcp/p80__10.0.4.1/80 ip saddr 10.0.4.1 jump mark-for-masquerade
      add rule ip kube-proxy endpoint-WAHRBT2B-ns4/svc4/tcp/p80__10.0.4.1/80 meta l4proto tcp dnat to 10.0.4.1:80
    `);
    assertNFT(BASE_RULES + ELEMENTS_134 + SVC1 + SVC3_EP1 + SVC4, fp.dump());
    // add 1 element, delete 1; add+flush 2 chains, 2 rules in each.
    assert.equal(ops(), 10);

    // Change an endpoint of an existing service: the old endpoint chain stays (flushed) for now.
    const eps3update = slice('ns3', 'svc3', ['10.0.3.2'], [tcp('p80', 80)]);
    o.apply(eps3update);
    sync();
    assertNFT(BASE_RULES + ELEMENTS_134 + SVC1 + dedent(`
      add chain ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80
      add rule ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80 ip daddr 172.30.0.43 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
      add rule ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-SWWHDC7X-ns3/svc3/tcp/p80__10.0.3.2/80 }
      add chain ip kube-proxy endpoint-2OCDJSZQ-ns3/svc3/tcp/p80__10.0.3.1/80
      add chain ip kube-proxy endpoint-SWWHDC7X-ns3/svc3/tcp/p80__10.0.3.2/80
      add rule ip kube-proxy endpoint-SWWHDC7X-ns3/svc3/tcp/p80__10.0.3.2/80 ip saddr 10.0.3.2 jump mark-for-masquerade
      add rule ip kube-proxy endpoint-SWWHDC7X-ns3/svc3/tcp/p80__10.0.3.2/80 meta l4proto tcp dnat to 10.0.3.2:80
    `) + SVC4, fp.dump());
    // add+flush 2 chains, 2 rules in each; flush the old endpoint chain.
    assert.equal(ops(), 9);

    // (The old svc3 endpoint chain goes in the next sync.) Add an endpoint to a service.
    fp.ageStaleChains();
    const eps3update2 = slice('ns3', 'svc3', ['10.0.3.2', '10.0.3.3'], [tcp('p80', 80)]);
    o.apply(eps3update2);
    sync();
    const SVC3_EP23 = dedent(`
      add chain ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80
      add rule ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80 ip daddr 172.30.0.43 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
      add rule ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80 numgen random mod 2 vmap { 0 : goto endpoint-SWWHDC7X-ns3/svc3/tcp/p80__10.0.3.2/80 , 1 : goto endpoint-TQ2QKHCZ-ns3/svc3/tcp/p80__10.0.3.3/80 }
      add chain ip kube-proxy endpoint-SWWHDC7X-ns3/svc3/tcp/p80__10.0.3.2/80
      add rule ip kube-proxy endpoint-SWWHDC7X-ns3/svc3/tcp/p80__10.0.3.2/80 ip saddr 10.0.3.2 jump mark-for-masquerade
      add rule ip kube-proxy endpoint-SWWHDC7X-ns3/svc3/tcp/p80__10.0.3.2/80 meta l4proto tcp dnat to 10.0.3.2:80
      add chain ip kube-proxy endpoint-TQ2QKHCZ-ns3/svc3/tcp/p80__10.0.3.3/80
      add rule ip kube-proxy endpoint-TQ2QKHCZ-ns3/svc3/tcp/p80__10.0.3.3/80 ip saddr 10.0.3.3 jump mark-for-masquerade
      add rule ip kube-proxy endpoint-TQ2QKHCZ-ns3/svc3/tcp/p80__10.0.3.3/80 meta l4proto tcp dnat to 10.0.3.3:80
    `);
    const FULL = BASE_RULES + ELEMENTS_134 + SVC1 + SVC3_EP23 + SVC4;
    assertNFT(FULL, fp.dump());
    assert.equal(ops(), 12);
    assert.deepEqual(fp.last!.staleChainDeletes.map((op) => opText('ip', 'kube-proxy', op)), [
      'delete chain ip kube-proxy endpoint-2OCDJSZQ-ns3/svc3/tcp/p80__10.0.3.1/80',
    ]);

    // Empty a service's endpoints; its chains are flushed, but not deleted yet.
    const eps3update3 = slice('ns3', 'svc3', [], [tcp('p80', 80)]);
    o.apply(eps3update3);
    sync();
    assertNFT(BASE_RULES + dedent(`
      add element ip kube-proxy cluster-ips { 172.30.0.41 }
      add element ip kube-proxy cluster-ips { 172.30.0.43 }
      add element ip kube-proxy cluster-ips { 172.30.0.44 }
      add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }
      add element ip kube-proxy no-endpoint-services { 172.30.0.43 . tcp . 80 comment "ns3/svc3:p80" : goto reject-chain }
      add element ip kube-proxy service-ips { 172.30.0.44 . tcp . 80 : goto service-LAUZTJTB-ns4/svc4/tcp/p80 }

      add chain ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80
      add chain ip kube-proxy endpoint-SWWHDC7X-ns3/svc3/tcp/p80__10.0.3.2/80
      add chain ip kube-proxy endpoint-TQ2QKHCZ-ns3/svc3/tcp/p80__10.0.3.3/80
    `) + SVC1 + SVC4, fp.dump());
    assert.equal(ops(), 5);
    assert.deepEqual([...fp.last!.memory.staleChains.keys()].sort(), [
      'endpoint-SWWHDC7X-ns3/svc3/tcp/p80__10.0.3.2/80', 'endpoint-TQ2QKHCZ-ns3/svc3/tcp/p80__10.0.3.3/80', 'service-4AT6LBPK-ns3/svc3/tcp/p80',
    ]);

    // Restore the endpoints at once: the chains are rewritten and no longer stale.
    o.apply(eps3update2);
    sync();
    assertNFT(FULL, fp.dump());
    assert.equal(ops(), 14);
    assert.equal(fp.last!.memory.staleChains.size, 0);

    // Empty, age, restore: the chains are deleted first, then recreated.
    o.apply(eps3update3);
    sync();
    fp.ageStaleChains();
    o.apply(eps3update2);
    sync();
    assert.equal(fp.last!.staleChainDeletes.length, 3);
    assertNFT(FULL, fp.dump());

    // A sync with no changes writes nothing.
    sync();
    assertNFT(FULL, fp.dump());
    assert.equal(ops(), 0);
    assert.equal(fp.last!.staleChainDeletes.length, 0);
  });

  it('a partial sync with no changes writes no chain or rule (changedServices empty)', () => {
    const o = objects(...overallObjects());
    const state = withCIDRs(o.state());
    const full = renderNftablesSync(state, FAKE_NFTABLES_CONFIG, EMPTY_NFTABLES_MEMORY, {
      partial: false, changedServices: null, existingChains: null, existingSets: null, now: 0,
    });
    const rs = new NftRuleset('ip');
    rs.apply(full.ops);
    const opts: NftSyncOptions = { partial: true, changedServices: new Set(), existingChains: rs.listChains(), existingSets: rs.listSets(), now: 1 };
    const partial = renderNftablesSync(state, FAKE_NFTABLES_CONFIG, full.memory, opts);
    assert.deepEqual(partial.ops, []);
    assert.deepEqual(partial.staleChainDeletes, []);
    assert.deepEqual(partial.counts, { chains: 0, rules: 0, elements: 0 });
    // Only the changed Service's chains are rewritten.
    const one = renderNftablesSync(state, FAKE_NFTABLES_CONFIG, full.memory, { ...opts, changedServices: new Set(['ns5/svc5']) });
    const chainsTouched = new Set(one.ops.filter((op) => op.obj.kind === 'chain' || op.obj.kind === 'rule')
      .map((op) => (op.obj.kind === 'rule' ? op.obj.chain : (op.obj as { name: string }).name)));
    assert.deepEqual([...chainsTouched].sort(), [
      'endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80', 'external-HVFWP5L3-ns5/svc5/tcp/p80',
      'firewall-HVFWP5L3-ns5/svc5/tcp/p80', 'service-HVFWP5L3-ns5/svc5/tcp/p80',
    ]);
    rs.apply(one.ops);
    assertNFT(OVERALL, rs.dump());
  });

  it('stale affinity sets are deleted at once', () => {
    const fp = fullSync(...overallObjects());
    const o = objects(...overallObjects());
    fp.sync(o.state());
    o.apply(service('ns5', 'svc5', {
      type: 'LoadBalancer', externalTrafficPolicy: 'Cluster', clusterIP: '172.30.0.45', ports: [tcp('p80', 80, { nodePort: 3002 })],
      healthCheckNodePort: 30000, loadBalancerSourceRanges: [' 203.0.113.0/25'],
    }, ['5.6.7.8']));
    fp.sync(o.state());
    assert.ok(fp.last!.ops.some((op) => op.verb === 'delete' && op.obj.kind === 'set' && op.obj.name === 'affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80'));
    assert.ok(!fp.dump().includes('affinity-'));
  });
});

// ---- names -------------------------------------------------------------------------------

describe('kube-names: nftables chain names', () => {
  const long = {
    namespace: 'very-long-namespace-name-abcdefghijklmnopqrstuvwxyz0123456789xx',
    name: 'very-long-service-name-why-would-you-even-do-this-i-mean-really',
    portName: 'port-443-providing-the-hypertext-transmission-protocol-with-tls',
  };
  const LONG = `${long.namespace}/${long.name}/sctp/${long.portName}`;

  it('Test_servicePortChainNameBase (verbatim)', () => {
    assert.equal(nftServicePortChainNameBase({ namespace: 'testing', name: 'service', portName: 'http' }, 'tcp'), 'P4ZYZVCF-testing/service/tcp/http');
    assert.equal(nftServicePortChainNameBase({ namespace: 'testing', name: 'service', portName: 'https' }, 'tcp'), 'LZBRENCP-testing/service/tcp/https');
    assert.equal(nftServicePortChainNameBase(long, 'sctp'), `KR6NACJP-${LONG}`);
  });

  it('Test_servicePortEndpointChainNameBase (verbatim)', () => {
    const spn = { namespace: 'testing', name: 'service', portName: 'http' };
    assert.equal(nftEndpointChainNameBase(spn, 'tcp', { ip: '10.180.0.1', port: 80 }), 'JO2XBXZR-testing/service/tcp/http__10.180.0.1/80');
    assert.equal(nftEndpointChainNameBase(spn, 'tcp', { ip: '10.180.0.2', port: 80 }), '5S6H3H22-testing/service/tcp/http__10.180.0.2/80');
    assert.equal(nftEndpointChainNameBase(spn, 'tcp', { ip: 'fd80:abcd:12::a1b2:c3d4:e5f6:9999', port: 80 }),
      'U7E2ET36-testing/service/tcp/http__fd80.abcd.12..a1b2.c3d4.e5f6.9999/80');
    assert.equal(nftEndpointChainNameBase(long, 'sctp', { ip: '1234:5678:9abc:def0::abc:1234', port: 443 }),
      `5YS7AFEA-${LONG}__1234.5678.9abc.def0..abc.1234/443`);
    assert.equal(nftEndpointChainNameBase(long, 'sctp', { ip: '1234:5678:9abc:def0::abcd:1234:5678', port: 443 }),
      `CI6C53Q3-${LONG}__1234.5678.9abc.def0..abcd.1234...`);
    assert.equal(nftEndpointChainNameBase(long, 'sctp', { ip: '1234:5678:9abc:def0::abcd:1234:8765', port: 443 }),
      `2FLXFK6X-${LONG}__1234.5678.9abc.def0..abcd.1234...`);
  });

  it('isServiceChainName: hashed names have a "/", fixed ones none', () => {
    assert.ok(isNftServiceChainName('service-ULMVA6XW-ns1/svc1/tcp/p80'));
    assert.ok(!isNftServiceChainName('services'));
    assert.ok(!isNftServiceChainName('reject-chain'));
  });
});

// ---- ops text and the ruleset ------------------------------------------------------------

describe('ops and NftRuleset', () => {
  it('opText writes knftables\' syntax for each verb and object', () => {
    const t = (op: NftOp) => opText('ip', 'kube-proxy', op);
    assert.equal(t({ verb: 'add', obj: { kind: 'table', comment: 'rules for kube-proxy' } }), 'add table ip kube-proxy { comment "rules for kube-proxy" ; }');
    assert.equal(t({ verb: 'delete', obj: { kind: 'table' } }), 'delete table ip kube-proxy');
    assert.equal(t({ verb: 'add', obj: { kind: 'chain', name: 'filter-prerouting', type: 'filter', hook: 'prerouting', priority: -110 } }),
      'add chain ip kube-proxy filter-prerouting { type filter hook prerouting priority -110 ; }');
    assert.equal(t({ verb: 'flush', obj: { kind: 'chain', name: 'services' } }), 'flush chain ip kube-proxy services');
    assert.equal(t({ verb: 'delete', obj: { kind: 'chain', name: 'x/y' } }), 'delete chain ip kube-proxy x/y');
    assert.equal(t({ verb: 'add', obj: { kind: 'set', name: 'a', type: 'ipv4_addr', flags: ['dynamic', 'timeout'], timeoutSeconds: 10800 } }),
      'add set ip kube-proxy a { type ipv4_addr ; flags dynamic,timeout ; timeout 10800s ; }');
    assert.equal(t({ verb: 'flush', obj: { kind: 'map', name: 'service-ips' } }), 'flush map ip kube-proxy service-ips');
    assert.equal(t({ verb: 'delete', obj: { kind: 'set', name: 'nodeport-ips' } }), 'delete set ip kube-proxy nodeport-ips');
    assert.equal(t({ verb: 'add', obj: { kind: 'element', container: 'map', name: 'no-endpoint-services', key: ['172.30.0.41', 'tcp', '80'], value: ['goto reject-chain'], comment: 'ns1/svc1:p80' } }),
      'add element ip kube-proxy no-endpoint-services { 172.30.0.41 . tcp . 80 comment "ns1/svc1:p80" : goto reject-chain }');
    assert.equal(t({ verb: 'delete', obj: { kind: 'element', container: 'map', name: 'service-ips', key: ['172.30.0.42', 'tcp', '8080'], value: ['goto x'] } }),
      'delete element ip kube-proxy service-ips { 172.30.0.42 . tcp . 8080 }');
    assert.equal(t({ verb: 'add', obj: { kind: 'rule', chain: 'c', rule: 'reject', comment: 'say "hi"' } }), 'add rule ip kube-proxy c reject comment "say \\"hi\\""');
    assert.throws(() => t({ verb: 'flush', obj: { kind: 'rule', chain: 'c', rule: 'reject' } }));
  });

  it('the full-sync transaction text is the ops one a line, and applying the ops never throws', () => {
    const state = withCIDRs(objects(...overallObjects()).state());
    const { ops, ruleset } = renderNftablesFull(state, FAKE_NFTABLES_CONFIG);
    const text = transactionText('ip', 'kube-proxy', ops);
    assert.ok(text.endsWith('\n'));
    assert.deepEqual(text.slice(0, -1).split('\n'), ops.map((op) => opText('ip', 'kube-proxy', op)));
    // Every Dump line is something the transaction added.
    const added = new Set(text.split('\n').filter((l) => l.startsWith('add ')));
    for (const line of ruleset.dump().split('\n').filter(Boolean)) assert.ok(added.has(line), line);
    // Applying the same transaction again (a full resync of an existing table) works too.
    const again = renderNftablesSync(state, FAKE_NFTABLES_CONFIG, EMPTY_NFTABLES_MEMORY, {
      partial: false, changedServices: null, existingChains: ruleset.listChains(), existingSets: ruleset.listSets(), now: 0,
    });
    ruleset.apply(again.ops);
    assertNFT(OVERALL, ruleset.dump());
    // IPv6 too.
    const v6 = renderNftablesFull({ services: [], serviceCIDRs: ['fd00:10:96::/112'] },
      { ...FAKE_NFTABLES_CONFIG, family: 'IPv6', nodeIP: null, localAddresses: [], clusterCIDRs: [], nodePortAddresses: [] });
    assert.ok(v6.ruleset.dump().startsWith('add table ip6 kube-proxy { comment "rules for kube-proxy" ; }\n'));
  });

  it('fake semantics: idempotent add, flush, missing objects and references throw, failed batches change nothing', () => {
    const rs = new NftRuleset('ip');
    assert.equal(rs.dump(), '');
    assert.throws(() => rs.apply([{ verb: 'add', obj: { kind: 'chain', name: 'c' } }]), /no such table "ip kube-proxy"/);
    rs.apply([
      { verb: 'add', obj: { kind: 'table' } },
      { verb: 'add', obj: { kind: 'chain', name: 'c', comment: 'first' } },
      { verb: 'add', obj: { kind: 'chain', name: 'c', comment: 'second' } },
      { verb: 'add', obj: { kind: 'rule', chain: 'c', rule: 'drop' } },
      { verb: 'add', obj: { kind: 'map', name: 'm', type: 'inet_proto . inet_service : verdict' } },
      { verb: 'add', obj: { kind: 'element', container: 'map', name: 'm', key: ['tcp', '80'], value: ['goto c'] } },
      { verb: 'add', obj: { kind: 'element', container: 'map', name: 'm', key: ['tcp', '81'], value: ['drop'] } },
      { verb: 'add', obj: { kind: 'element', container: 'map', name: 'm', key: ['tcp', '80'], value: ['accept'] } },
    ]);
    assert.equal(rs.dump(), [
      'add table ip kube-proxy',
      'add chain ip kube-proxy c { comment "first" ; }',
      'add map ip kube-proxy m { type inet_proto . inet_service : verdict ; }',
      'add rule ip kube-proxy c drop',
      'add element ip kube-proxy m { tcp . 80 : accept }',
      'add element ip kube-proxy m { tcp . 81 : drop }',
      '',
    ].join('\n'));
    const before = rs.dump();
    for (const bad of [
      [{ verb: 'delete', obj: { kind: 'chain', name: 'missing' } }],
      [{ verb: 'add', obj: { kind: 'rule', chain: 'missing', rule: 'drop' } }],
      [{ verb: 'add', obj: { kind: 'rule', chain: 'c', rule: 'tcp dport 80 goto missing' } }],
      [{ verb: 'add', obj: { kind: 'rule', chain: 'c', rule: 'tcp dport 80 vmap @missing' } }],
      [{ verb: 'add', obj: { kind: 'element', container: 'map', name: 'm', key: ['tcp', '82'], value: ['jump missing'] } }],
      [{ verb: 'add', obj: { kind: 'element', container: 'set', name: 'missing', key: ['1.2.3.4'] } }],
      [{ verb: 'delete', obj: { kind: 'element', container: 'map', name: 'm', key: ['tcp', '99'] } }],
      [{ verb: 'flush', obj: { kind: 'chain', name: 'c' } }, { verb: 'delete', obj: { kind: 'set', name: 'nope' } }],
    ] as NftOp[][]) {
      assert.throws(() => rs.apply(bad), /no such/);
      assert.equal(rs.dump(), before);
    }
    rs.apply([{ verb: 'flush', obj: { kind: 'chain', name: 'c' } }, { verb: 'flush', obj: { kind: 'map', name: 'm' } }]);
    assert.equal(rs.chains.get('c')!.rules.length, 0);
    assert.equal(rs.sets.get('m')!.elements.length, 0);
  });
});
