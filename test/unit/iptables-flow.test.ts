// kube-proxy's packet-flow tests (pkg/proxy/iptables/proxier_test.go, v1.28 unless an it()
// says otherwise) run against renderIptables: the same Services and EndpointSlices go through
// our model, the rendered iptables-restore text is walked by a tracer with kube-proxy's
// semantics, and each case must land on the same endpoints / verdict / masquerade decision.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { IptablesConfig } from '../../src/dataplane/iptables/config.js';
import { renderIptables } from '../../src/dataplane/iptables/render.js';
import type { NodeFacts } from '../../src/model/types.js';
import { runPacketFlowTests, tracePacket, type PacketFlowTest } from './helpers/iptables-tracer.js';
import { objects, type Json } from './helpers/kube-objects.js';
import {
  FAKE_IPTABLES_CONFIG, TEST_EXTERNAL_CLIENT, TEST_EXTERNAL_CLIENT_BLOCKED, TEST_EXTERNAL_IP, TEST_HOSTNAME, TEST_NODE_IP,
  TEST_NODE_IP_ALT, TEST_NODE_IPS, TEST_NODE_IPV6, TEST_NODE_IPV6_ALT, clusterIPGeneralObjects, internalExternalMasqueradeObjects,
  internalTrafficPolicyService, internalTrafficPolicySlice, loadBalancerObjects, noEndpointsRejectObjects, overallObjects, ready,
  service, servingTerminating, slice, tcp, terminating, type Ep,
} from './helpers/kube-proxy-fake.js';

// Later kube-proxy versions (v1.31+) trace with every node address as LOCAL (TEST_NODE_IPS);
// v1.28's tracer knows one node IP (plus loopback).
const V128_NODE_IPS = [TEST_NODE_IP];

// The Kubernetes objects (builders and shared scenarios) come from helpers/kube-proxy-fake.ts.

/** A fake proxier: objects through the real model, synced with `renderIptables` (full sync). */
function proxier(objs: Json[], cfg: Partial<IptablesConfig> = {}, node: Partial<NodeFacts> = {}) {
  const o = objects(...objs);
  return {
    o,
    rules(): string {
      assert.deepEqual(o.problems, [], 'kube-proxy test objects must be valid for our model');
      return renderIptables(o.state({ nodeName: TEST_HOSTNAME, ...node }), { ...FAKE_IPTABLES_CONFIG, ...cfg }).text;
    },
  };
}

// ---- the tracer itself --------------------------------------------------------------------

// kube-proxy's TestTracePackets input, verbatim except that the multi-word comments of the
// INPUT/FORWARD/OUTPUT/PREROUTING jump rules are quoted (iptables-save quotes them; kube-proxy's
// lenient parser skipped the stray words, ours refuses unknown words).
const TRACE_PACKETS_RULES = `
*filter
:INPUT - [0:0]
:FORWARD - [0:0]
:OUTPUT - [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FIREWALL - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS
-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES
-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A KUBE-NODEPORTS -m comment --comment "ns2/svc2:p80 health check node port" -m tcp -p tcp --dport 30000 -j ACCEPT
-A KUBE-SERVICES -m comment --comment "ns6/svc6:p80 has no endpoints" -m tcp -p tcp -d 172.30.0.46 --dport 80 -j REJECT
-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m tcp -p tcp -d 192.168.99.22 --dport 80 -j DROP
-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j DROP
-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 3001 -j DROP
-A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A KUBE-PROXY-FIREWALL -m comment --comment "ns5/svc5:p80 traffic not accepted by KUBE-FW-NUKIZ6OKUXPJNT4C" -m tcp -p tcp -d 5.6.7.8 --dport 80 -j DROP
COMMIT
*nat
:PREROUTING - [0:0]
:INPUT - [0:0]
:OUTPUT - [0:0]
:POSTROUTING - [0:0]
:KUBE-EXT-4SW47YFZTEDKD3PK - [0:0]
:KUBE-EXT-GNZBNJ2PO5MGZ6GT - [0:0]
:KUBE-EXT-NUKIZ6OKUXPJNT4C - [0:0]
:KUBE-EXT-X27LE4BHSL4DOUIK - [0:0]
:KUBE-FW-NUKIZ6OKUXPJNT4C - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SEP-C6EBXVWJJZMIWKLZ - [0:0]
:KUBE-SEP-I77PXRDZVX7PMWMN - [0:0]
:KUBE-SEP-OYPFS5VJICHGATKP - [0:0]
:KUBE-SEP-RS4RBKLTHTF2IUXJ - [0:0]
:KUBE-SEP-SXIVWICOYRO3J4NJ - [0:0]
:KUBE-SEP-UKSFD7AGPMPPLUHC - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-4SW47YFZTEDKD3PK - [0:0]
:KUBE-SVC-GNZBNJ2PO5MGZ6GT - [0:0]
:KUBE-SVC-NUKIZ6OKUXPJNT4C - [0:0]
:KUBE-SVC-X27LE4BHSL4DOUIK - [0:0]
:KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-NODEPORTS -m comment --comment ns2/svc2:p80 -m tcp -p tcp --dport 3001 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
-A KUBE-NODEPORTS -m comment --comment ns3/svc3:p80 -m tcp -p tcp --dport 3003 -j KUBE-EXT-X27LE4BHSL4DOUIK
-A KUBE-NODEPORTS -m comment --comment ns5/svc5:p80 -m tcp -p tcp --dport 3002 -j KUBE-EXT-NUKIZ6OKUXPJNT4C
-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
-A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
-A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 external IP" -m tcp -p tcp -d 192.168.99.22 --dport 80 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
-A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 loadbalancer IP" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
-A KUBE-SERVICES -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK
-A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 -j KUBE-SVC-4SW47YFZTEDKD3PK
-A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 external IP" -m tcp -p tcp -d 192.168.99.33 --dport 80 -j KUBE-EXT-4SW47YFZTEDKD3PK
-A KUBE-SERVICES -m comment --comment "ns5/svc5:p80 cluster IP" -m tcp -p tcp -d 172.30.0.45 --dport 80 -j KUBE-SVC-NUKIZ6OKUXPJNT4C
-A KUBE-SERVICES -m comment --comment "ns5/svc5:p80 loadbalancer IP" -m tcp -p tcp -d 5.6.7.8 --dport 80 -j KUBE-FW-NUKIZ6OKUXPJNT4C
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-EXT-4SW47YFZTEDKD3PK -m comment --comment "masquerade traffic for ns4/svc4:p80 external destinations" -j KUBE-MARK-MASQ
-A KUBE-EXT-4SW47YFZTEDKD3PK -j KUBE-SVC-4SW47YFZTEDKD3PK
-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "pod traffic for ns2/svc2:p80 external destinations" -s 10.0.0.0/8 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "masquerade LOCAL traffic for ns2/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ
-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "route LOCAL traffic for ns2/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
-A KUBE-EXT-NUKIZ6OKUXPJNT4C -m comment --comment "masquerade traffic for ns5/svc5:p80 external destinations" -j KUBE-MARK-MASQ
-A KUBE-EXT-NUKIZ6OKUXPJNT4C -j KUBE-SVC-NUKIZ6OKUXPJNT4C
-A KUBE-EXT-X27LE4BHSL4DOUIK -m comment --comment "masquerade traffic for ns3/svc3:p80 external destinations" -j KUBE-MARK-MASQ
-A KUBE-EXT-X27LE4BHSL4DOUIK -j KUBE-SVC-X27LE4BHSL4DOUIK
-A KUBE-FW-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 loadbalancer IP" -s 203.0.113.0/25 -j KUBE-EXT-NUKIZ6OKUXPJNT4C
-A KUBE-FW-NUKIZ6OKUXPJNT4C -m comment --comment "other traffic to ns5/svc5:p80 will be dropped by KUBE-PROXY-FIREWALL"
-A KUBE-SEP-C6EBXVWJJZMIWKLZ -m comment --comment ns4/svc4:p80 -s 10.180.0.5 -j KUBE-MARK-MASQ
-A KUBE-SEP-C6EBXVWJJZMIWKLZ -m comment --comment ns4/svc4:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.5:80
-A KUBE-SEP-I77PXRDZVX7PMWMN -m comment --comment ns5/svc5:p80 -s 10.180.0.3 -j KUBE-MARK-MASQ
-A KUBE-SEP-I77PXRDZVX7PMWMN -m comment --comment ns5/svc5:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.3:80
-A KUBE-SEP-OYPFS5VJICHGATKP -m comment --comment ns3/svc3:p80 -s 10.180.0.3 -j KUBE-MARK-MASQ
-A KUBE-SEP-OYPFS5VJICHGATKP -m comment --comment ns3/svc3:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.3:80
-A KUBE-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -s 10.180.0.2 -j KUBE-MARK-MASQ
-A KUBE-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.2:80
-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ
-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80
-A KUBE-SEP-UKSFD7AGPMPPLUHC -m comment --comment ns4/svc4:p80 -s 10.180.0.4 -j KUBE-MARK-MASQ
-A KUBE-SEP-UKSFD7AGPMPPLUHC -m comment --comment ns4/svc4:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.4:80
-A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 -> 10.180.0.4:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-UKSFD7AGPMPPLUHC
-A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 -> 10.180.0.5:80" -j KUBE-SEP-C6EBXVWJJZMIWKLZ
-A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 -> 10.180.0.2:80" -j KUBE-SEP-RS4RBKLTHTF2IUXJ
-A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 cluster IP" -m tcp -p tcp -d 172.30.0.45 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 -> 10.180.0.3:80" -j KUBE-SEP-I77PXRDZVX7PMWMN
-A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 -> 10.180.0.3:80" -j KUBE-SEP-OYPFS5VJICHGATKP
-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -j KUBE-SEP-SXIVWICOYRO3J4NJ
COMMIT
`;

const TRACE_PACKETS_CASES: PacketFlowTest[] = [
  { name: 'no match', sourceIP: '10.0.0.2', destIP: '10.0.0.3', destPort: 80, output: '' },
  { name: 'single endpoint', sourceIP: '10.0.0.2', destIP: '172.30.0.41', destPort: 80, output: '10.180.0.1:80' },
  { name: 'multiple endpoints', sourceIP: '10.0.0.2', destIP: '172.30.0.44', destPort: 80, output: '10.180.0.4:80, 10.180.0.5:80' },
  { name: 'LOCAL, KUBE-MARK-MASQ', sourceIP: TEST_NODE_IP, destIP: '192.168.99.22', destPort: 80, output: '10.180.0.2:80', masq: true },
  { name: 'DROP', sourceIP: TEST_EXTERNAL_CLIENT, destIP: '192.168.99.22', destPort: 80, output: 'DROP' },
  { name: 'ACCEPT (NodePortHealthCheck)', sourceIP: TEST_NODE_IP, destIP: TEST_NODE_IP, destPort: 30000, output: 'ACCEPT' },
  { name: 'REJECT', sourceIP: '10.0.0.2', destIP: '172.30.0.46', destPort: 80, output: 'REJECT' },
];

const wrap = (nat: string, filter = '') => `*filter\n:KUBE-SERVICES - [0:0]\n${filter}COMMIT\n*nat\n${nat}COMMIT\n`;

describe('iptables tracer', () => {
  it('TestTracePackets: kube-proxy static rules', () => {
    runPacketFlowTests(TRACE_PACKETS_RULES, V128_NODE_IPS, TRACE_PACKETS_CASES);
  });

  it('follows every statistic branch, honours RETURN, ! -s CIDRs and marks, masquerades in POSTROUTING', () => {
    const rules = wrap([
      ':KUBE-SERVICES - [0:0]', ':KUBE-MARK-MASQ - [0:0]', ':KUBE-POSTROUTING - [0:0]', ':SVC - [0:0]', ':A - [0:0]', ':B - [0:0]', ':C - [0:0]',
      '-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN',
      '-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000',
      '-A KUBE-POSTROUTING -j MASQUERADE --random-fully',
      '-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000',
      '-A KUBE-SERVICES -m tcp -p tcp -d 10.96.0.0/16 --dport 80 -j SVC',
      '-A SVC ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ',
      '-A SVC -m statistic --mode random --probability 0.3333333333 -j A',
      '-A SVC -m statistic --mode random --probability 0.5000000000 -j B',
      '-A SVC -j C',
      '-A A -s 10.1.0.9 -j RETURN',
      '-A A -j DNAT --to-destination 10.1.0.1:8080',
      '-A B -m tcp -p tcp -j DNAT --to-destination 10.1.0.2:8080',
      '-A C -m udp -p udp -j DNAT --to-destination 10.1.0.3:8080',
      '-A C -j DNAT --to-destination [fd00::3]:8080',
      '',
    ].join('\n'));
    const t = (sourceIP: string) => tracePacket(rules, { sourceIP, destIP: '10.96.1.1', destPort: 80 }, []);
    assert.deepEqual([t('10.0.0.2').output, t('10.0.0.2').masq], ['10.1.0.1:8080, 10.1.0.2:8080, [fd00::3]:8080', false]);
    assert.deepEqual([t('192.168.5.5').output, t('192.168.5.5').masq], ['10.1.0.1:8080, 10.1.0.2:8080, [fd00::3]:8080', true]);
    // RETURN leaves A without a verdict; the statistic branches still go on.
    assert.equal(t('10.1.0.9').output, '10.1.0.2:8080, [fd00::3]:8080');
    assert.equal(tracePacket(rules, { sourceIP: '10.0.0.2', destIP: '10.96.1.1', destPort: 81 }, []).output, '');
  });

  it('treats the node IPs and loopback as LOCAL, never matches recent --rcheck or conntrack state', () => {
    const rules = wrap([
      ':KUBE-SERVICES - [0:0]', ':KUBE-NODEPORTS - [0:0]', ':SEP - [0:0]',
      '-A KUBE-SERVICES -m recent --name SEP --rcheck --seconds 10800 --reap -j SEP',
      '-A KUBE-SERVICES -m conntrack ! --ctstate RELATED,ESTABLISHED -j SEP',
      '-A KUBE-SERVICES -m comment --comment "x y" -m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS',
      '-A KUBE-NODEPORTS -m sctp -p sctp --dport 3001 -m nfacct --nfacct-name n -j SEP',
      '-A SEP -m recent --name SEP --set -j DNAT --to-destination 10.1.0.1:80',
      '',
    ].join('\n'));
    const t = (destIP: string, nodeIPs: string[]) => tracePacket(rules, { sourceIP: '1.1.1.1', protocol: 'SCTP', destIP, destPort: 3001 }, nodeIPs).output;
    assert.equal(t('192.168.0.2', [TEST_NODE_IP]), '10.1.0.1:80');
    assert.equal(t('192.168.0.3', [TEST_NODE_IP]), '');
    assert.equal(t('127.0.0.1', [TEST_NODE_IP]), '');
    assert.equal(tracePacket(rules, { sourceIP: '1.1.1.1', destIP: '192.168.0.2', destPort: 3001 }, [TEST_NODE_IP]).output, '');
  });

  it('refuses what it does not understand', () => {
    const chains = ':KUBE-SERVICES - [0:0]\n:X - [0:0]\n';
    const bad = [
      '-A KUBE-SERVICES -m multiport --dports 80,443 -j X', // unknown module
      '-A KUBE-SERVICES -m tcp -p tcp --sport 80 -j X', // unknown option
      '-A KUBE-SERVICES --dport 80 -j X', // option without its module
      '-A KUBE-SERVICES -j SNAT --to-source 1.2.3.4', // unknown target
      '-A KUBE-SERVICES -j X --foo', // options on a chain jump
      '-A KUBE-SERVICES -j REJECT', // REJECT outside filter
      '-A NOPE -j X', // undeclared chain
      '-A KUBE-SERVICES -m addrtype --dst-type UNICAST -j X',
    ];
    for (const rule of bad) {
      assert.throws(() => tracePacket(wrap(`${chains}${rule}\n`), { sourceIP: '1.1.1.1', destIP: '2.2.2.2', destPort: 80 }, []), Error, rule);
    }
    // Jumping to a chain nobody declared is caught when the packet gets there.
    assert.throws(() => tracePacket(wrap(':KUBE-SERVICES - [0:0]\n-A KUBE-SERVICES -j KUBE-SVC-GONE\n'), { sourceIP: '1.1.1.1', destIP: '2.2.2.2', destPort: 80 }, []), /undeclared chain/);
  });
});

// ---- kube-proxy's flow tables against renderIptables --------------------------------------

const P80 = [tcp('p80', 80)];

describe('kube-proxy packet flows through renderIptables', () => {
  it('TestOverallIPTablesRulesWithMultipleServices, later TestOverallIPTablesRules (its services, traced with the TestTracePackets cases)', () => {
    // TestTracePackets' static rules are this test's expected output, so its cases apply here.
    // v1.28 gave svc5 no session affinity (TestTracePackets' rules have no "recent" match).
    const objs = overallObjects();
    const svc5 = objs[4]!;
    delete svc5.spec.sessionAffinity;
    delete svc5.spec.sessionAffinityConfig;
    const fp = proxier(objs);
    runPacketFlowTests(fp.rules(), V128_NODE_IPS, TRACE_PACKETS_CASES);
  });

  it('TestNoEndpointsReject', () => {
    const fp = proxier(noEndpointsRejectObjects());
    runPacketFlowTests(fp.rules(), V128_NODE_IPS, [
      { name: 'pod to cluster IP with no endpoints', sourceIP: '10.0.0.2', destIP: '172.30.0.41', destPort: 80, output: 'REJECT' },
      { name: 'external to external IP with no endpoints', sourceIP: TEST_EXTERNAL_CLIENT, destIP: '192.168.99.11', destPort: 80, output: 'REJECT' },
      { name: 'pod to NodePort with no endpoints', sourceIP: '10.0.0.2', destIP: TEST_NODE_IP, destPort: 3001, output: 'REJECT' },
      { name: 'external to NodePort with no endpoints', sourceIP: TEST_EXTERNAL_CLIENT, destIP: TEST_NODE_IP, destPort: 3001, output: 'REJECT' },
      { name: 'pod to LoadBalancer IP with no endpoints', sourceIP: '10.0.0.2', destIP: '1.2.3.4', destPort: 80, output: 'REJECT' },
      { name: 'external to LoadBalancer IP with no endpoints', sourceIP: TEST_EXTERNAL_CLIENT, destIP: '1.2.3.4', destPort: 80, output: 'REJECT' },
    ]);
  });

  it('TestClusterIPGeneral (table of v1.31+, which adds the UDP port v1.28 left out for its conntrack fake)', () => {
    const fp = proxier(clusterIPGeneralObjects());
    runPacketFlowTests(fp.rules(), TEST_NODE_IPS, [
      { name: 'simple clusterIP', sourceIP: '10.180.0.2', destIP: '172.30.0.41', destPort: 80, output: '10.180.0.1:80', masq: false },
      { name: 'hairpin to cluster IP', sourceIP: '10.180.0.1', destIP: '172.30.0.41', destPort: 80, output: '10.180.0.1:80', masq: true },
      { name: 'clusterIP with multiple endpoints', sourceIP: '10.180.0.2', destIP: '172.30.0.42', destPort: 80, output: '10.180.0.1:80, 10.180.2.1:80', masq: false },
      { name: 'clusterIP with TargetPort', sourceIP: '10.180.0.2', destIP: '172.30.0.42', destPort: 443, output: '10.180.0.1:8443, 10.180.2.1:8443', masq: false },
      { name: 'clusterIP with TCP, UDP, and SCTP on same port (TCP)', sourceIP: '10.180.0.2', protocol: 'TCP', destIP: '172.30.0.42', destPort: 53, output: '10.180.0.1:5353, 10.180.2.1:5353', masq: false },
      { name: 'clusterIP with TCP, UDP, and SCTP on same port (UDP)', sourceIP: '10.180.0.2', protocol: 'UDP', destIP: '172.30.0.42', destPort: 53, output: '10.180.0.1:53, 10.180.2.1:53', masq: false },
      { name: 'clusterIP with TCP, UDP, and SCTP on same port (SCTP)', sourceIP: '10.180.0.2', protocol: 'SCTP', destIP: '172.30.0.42', destPort: 53, output: '10.180.0.1:53, 10.180.2.1:53', masq: false },
      { name: 'TCP-only port does not match UDP traffic', sourceIP: '10.180.0.2', protocol: 'UDP', destIP: '172.30.0.42', destPort: 80, output: '' },
      { name: "svc1 does not accept svc2's ports", sourceIP: '10.180.0.2', destIP: '172.30.0.41', destPort: 443, output: '' },
    ]);
  });

  it('TestLoadBalancer (loadBalancerSourceRanges / KUBE-FW / KUBE-PROXY-FIREWALL)', () => {
    const fp = proxier(loadBalancerObjects());
    const out = '10.180.0.1:80';
    runPacketFlowTests(fp.rules(), V128_NODE_IPS, [
      { name: 'pod to cluster IP', sourceIP: '10.0.0.2', destIP: '172.30.0.41', destPort: 80, output: out, masq: false },
      { name: 'external to nodePort', sourceIP: TEST_EXTERNAL_CLIENT, destIP: TEST_NODE_IP, destPort: 3001, output: out, masq: true },
      { name: 'nodePort bypasses LoadBalancerSourceRanges', sourceIP: TEST_EXTERNAL_CLIENT_BLOCKED, destIP: TEST_NODE_IP, destPort: 3001, output: out, masq: true },
      { name: 'accepted external to LB1', sourceIP: TEST_EXTERNAL_CLIENT, destIP: '1.2.3.4', destPort: 80, output: out, masq: true },
      { name: 'accepted external to LB2', sourceIP: TEST_EXTERNAL_CLIENT, destIP: '5.6.7.8', destPort: 80, output: out, masq: true },
      { name: 'blocked external to LB1', sourceIP: TEST_EXTERNAL_CLIENT_BLOCKED, destIP: '1.2.3.4', destPort: 80, output: 'DROP' },
      { name: 'blocked external to LB2', sourceIP: TEST_EXTERNAL_CLIENT_BLOCKED, destIP: '5.6.7.8', destPort: 80, output: 'DROP' },
      { name: 'pod to LB1 (blocked by LoadBalancerSourceRanges)', sourceIP: '10.0.0.2', destIP: '1.2.3.4', destPort: 80, output: 'DROP' },
      { name: 'pod to LB2 (blocked by LoadBalancerSourceRanges)', sourceIP: '10.0.0.2', destIP: '5.6.7.8', destPort: 80, output: 'DROP' },
      { name: 'node to LB1 (allowed by LoadBalancerSourceRanges)', sourceIP: TEST_NODE_IP, destIP: '1.2.3.4', destPort: 80, output: out, masq: true },
      { name: 'node to LB2 (allowed by LoadBalancerSourceRanges)', sourceIP: TEST_NODE_IP, destIP: '5.6.7.8', destPort: 80, output: out, masq: true },
      { name: 'same node to LB1, SNATted to LB1 (implicitly allowed)', sourceIP: '1.2.3.4', destIP: '1.2.3.4', destPort: 80, output: out, masq: true },
      { name: 'same node to LB2, SNATted to LB2 (implicitly allowed)', sourceIP: '5.6.7.8', destIP: '5.6.7.8', destPort: 80, output: out, masq: true },
    ]);
  });

  it('TestNodePort', () => {
    const fp = proxier([
      service('ns1', 'svc1', { type: 'NodePort', clusterIP: '172.30.0.41', ports: [tcp('p80', 80, { nodePort: 3001 })] }),
      slice('ns1', 'svc1', ['10.180.0.1'], P80),
    ]);
    const out = '10.180.0.1:80';
    runPacketFlowTests(fp.rules(), V128_NODE_IPS, [
      { name: 'pod to cluster IP', sourceIP: '10.0.0.2', destIP: '172.30.0.41', destPort: 80, output: out, masq: false },
      { name: 'external to nodePort', sourceIP: TEST_EXTERNAL_CLIENT, destIP: TEST_NODE_IP, destPort: 3001, output: out, masq: true },
      { name: 'node to nodePort', sourceIP: TEST_NODE_IP, destIP: TEST_NODE_IP, destPort: 3001, output: out, masq: true },
      { name: 'localhost to nodePort gets masqueraded', sourceIP: '127.0.0.1', destIP: '127.0.0.1', destPort: 3001, output: out, masq: true },
    ]);
  });

  describe('TestNodePorts (v1.31+: --nodeport-addresses x --localhost-nodeports, IPv4 and IPv6)', () => {
    const cases = [
      { name: 'ipv4, localhost-nodeports enabled', v6: false, localhostNodePorts: true, nodePortAddresses: [] as string[], allowAltNodeIP: true },
      { name: 'ipv4, localhost-nodeports disabled', v6: false, localhostNodePorts: false, nodePortAddresses: [], allowAltNodeIP: true },
      { name: 'ipv4, localhost-nodeports disabled, localhost in nodeport-addresses', v6: false, localhostNodePorts: false, nodePortAddresses: ['192.168.0.0/24', '127.0.0.1/32'], allowAltNodeIP: false },
      { name: 'ipv4, localhost-nodeports enabled, multiple nodeport-addresses', v6: false, localhostNodePorts: false, nodePortAddresses: ['192.168.0.0/24', '192.168.1.0/24', '2001:db8::/64'], allowAltNodeIP: true },
      { name: 'ipv6, localhost-nodeports enabled', v6: true, localhostNodePorts: true, nodePortAddresses: [], allowAltNodeIP: true },
      { name: 'ipv6, localhost-nodeports disabled', v6: true, localhostNodePorts: false, nodePortAddresses: [], allowAltNodeIP: true },
      { name: 'ipv6, localhost-nodeports disabled, multiple nodeport-addresses', v6: true, localhostNodePorts: false, nodePortAddresses: ['192.168.0.0/24', '192.168.1.0/24', '2001:db8::/64'], allowAltNodeIP: false },
    ];
    for (const tc of cases) {
      it(tc.name, () => {
        const [svcIP, epIP1, epIP2] = tc.v6 ? ['fd00:172:30::41', 'fd00:10:180::1', 'fd00:10:180::2:1'] : ['172.30.0.41', '10.180.0.1', '10.180.2.1'];
        const [podIP, externalClientIP, nodeIP, altNodeIP, localhostIP] = tc.v6
          ? ['fd00:10::2', '2600:5200::1', TEST_NODE_IPV6, TEST_NODE_IPV6_ALT, '::1']
          : ['10.0.0.2', TEST_EXTERNAL_CLIENT, TEST_NODE_IP, TEST_NODE_IP_ALT, '127.0.0.1'];
        // kube-proxy's fake interfaces of this version: lo 127.0.0.1 ::1, eth0 the five test node IPs.
        const cfg: Partial<IptablesConfig> = tc.v6
          ? { family: 'IPv6', nodeIP: TEST_NODE_IPV6, localAddresses: ['::1', TEST_NODE_IPV6, TEST_NODE_IPV6_ALT], clusterCIDRs: ['fd00:10::/64'] }
          : { localAddresses: ['127.0.0.1', TEST_NODE_IP, TEST_NODE_IP_ALT, TEST_EXTERNAL_IP] };
        const fp = proxier([
          service('ns1', 'svc1', { type: 'NodePort', clusterIP: svcIP, ports: [tcp('p80', 80, { nodePort: 3001 })] }),
          slice('ns1', 'svc1', [epIP1, { ip: epIP2, node: TEST_HOSTNAME }], P80, tc.v6 ? 'IPv6' : 'IPv4'),
        ], { ...cfg, localhostNodePorts: tc.localhostNodePorts, nodePortAddresses: tc.nodePortAddresses }, { ipFamilies: [tc.v6 ? 'IPv6' : 'IPv4'] });
        const hp = (ip: string) => (tc.v6 ? `[${ip}]:80` : `${ip}:80`);
        const output = `${hp(epIP1)}, ${hp(epIP2)}`;
        const localhostOK = !tc.v6 && tc.localhostNodePorts;
        runPacketFlowTests(fp.rules(), TEST_NODE_IPS, [
          { name: 'pod to cluster IP', sourceIP: podIP, destIP: svcIP, destPort: 80, output, masq: false },
          { name: 'external to nodePort', sourceIP: externalClientIP, destIP: nodeIP, destPort: 3001, output, masq: true },
          { name: 'node to nodePort', sourceIP: nodeIP, destIP: nodeIP, destPort: 3001, output, masq: true },
          localhostOK
            ? { name: 'localhost to nodePort gets masqueraded', sourceIP: localhostIP, destIP: localhostIP, destPort: 3001, output, masq: true }
            : { name: 'localhost to nodePort is ignored', sourceIP: localhostIP, destIP: localhostIP, destPort: 3001, output: '' },
          tc.allowAltNodeIP
            ? { name: 'external to nodePort on secondary IP', sourceIP: externalClientIP, destIP: altNodeIP, destPort: 3001, output, masq: true }
            : { name: 'secondary nodeIP ignores NodePorts', sourceIP: externalClientIP, destIP: altNodeIP, destPort: 3001, output: '' },
        ]);
      });
    }
  });

  it('TestHealthCheckNodePort (nodePortAddresses 127.0.0.0/8; rule gone with the Service)', () => {
    const svc1 = service('ns1', 'svc1', {
      type: 'LoadBalancer', clusterIP: '172.30.0.42', ports: [tcp('p80', 80, { nodePort: 3001 })],
      healthCheckNodePort: 30000, externalTrafficPolicy: 'Local',
    });
    const fp = proxier([svc1], { nodePortAddresses: ['127.0.0.0/8'] });
    runPacketFlowTests(fp.rules(), V128_NODE_IPS, [
      { name: 'firewall accepts HealthCheckNodePort', sourceIP: '1.2.3.4', destIP: TEST_NODE_IP, destPort: 30000, output: 'ACCEPT', masq: false },
    ]);
    fp.o.remove(svc1);
    runPacketFlowTests(fp.rules(), V128_NODE_IPS, [
      { name: 'HealthCheckNodePort no longer has any rule', sourceIP: '1.2.3.4', destIP: TEST_NODE_IP, destPort: 30000, output: '' },
    ]);
  });

  it('TestMasqueradeRule (as flows: KUBE-MARK-MASQ → KUBE-POSTROUTING masquerades, with and without --random-fully)', () => {
    for (const randomFully of [false, true]) {
      const fp = proxier([
        service('ns1', 'svc1', { clusterIP: '172.30.0.41', ports: P80 }),
        slice('ns1', 'svc1', ['10.180.0.1'], P80),
      ], { randomFully });
      runPacketFlowTests(fp.rules(), V128_NODE_IPS, [
        { name: 'pod to cluster IP', sourceIP: '10.0.0.2', destIP: '172.30.0.41', destPort: 80, output: '10.180.0.1:80', masq: false },
        { name: 'external to cluster IP', sourceIP: TEST_EXTERNAL_CLIENT, destIP: '172.30.0.41', destPort: 80, output: '10.180.0.1:80', masq: true },
        { name: 'hairpin', sourceIP: '10.180.0.1', destIP: '172.30.0.41', destPort: 80, output: '10.180.0.1:80', masq: true },
      ]);
    }
  });

  const etpService = (policy: 'Local' | 'Cluster') => [
    service('ns1', 'svc1', {
      type: 'LoadBalancer', externalTrafficPolicy: policy, clusterIP: '172.30.0.41', externalIPs: [TEST_EXTERNAL_IP],
      ports: [tcp('p80', 80, { nodePort: 3001, targetPort: 80 })], ...(policy === 'Local' ? { healthCheckNodePort: 30000 } : {}),
    }, ['1.2.3.4']),
    slice('ns1', 'svc1', ['10.180.0.1', { ip: '10.180.2.1', node: TEST_HOSTNAME }], P80),
  ];
  const both = '10.180.0.1:80, 10.180.2.1:80';

  it('TestExternalTrafficPolicyLocal (table of v1.31+, a superset of v1.28\'s four cases)', () => {
    const local = '10.180.2.1:80';
    runPacketFlowTests(proxier(etpService('Local')).rules(), TEST_NODE_IPS, [
      { name: 'pod to cluster IP hits both endpoints, unmasqueraded', sourceIP: '10.0.0.2', destIP: '172.30.0.41', destPort: 80, output: both, masq: false },
      { name: 'pod to external IP hits both endpoints, unmasqueraded', sourceIP: '10.0.0.2', destIP: TEST_EXTERNAL_IP, destPort: 80, output: both, masq: false },
      { name: 'external to external IP hits only local endpoint, unmasqueraded', sourceIP: TEST_EXTERNAL_CLIENT, destIP: TEST_EXTERNAL_IP, destPort: 80, output: local, masq: false },
      { name: 'pod to LB IP hits only both endpoints, unmasqueraded', sourceIP: '10.0.0.2', destIP: '1.2.3.4', destPort: 80, output: both, masq: false },
      { name: 'external to LB IP hits only local endpoint, unmasqueraded', sourceIP: TEST_EXTERNAL_CLIENT, destIP: '1.2.3.4', destPort: 80, output: local, masq: false },
      { name: 'pod to NodePort hits both endpoints, unmasqueraded', sourceIP: '10.0.0.2', destIP: TEST_NODE_IP, destPort: 3001, output: both, masq: false },
      { name: 'external to NodePort hits only local endpoint, unmasqueraded', sourceIP: TEST_EXTERNAL_CLIENT, destIP: TEST_NODE_IP, destPort: 3001, output: local, masq: false },
    ]);
  });

  it('TestExternalTrafficPolicyCluster (v1.31+)', () => {
    runPacketFlowTests(proxier(etpService('Cluster')).rules(), TEST_NODE_IPS, [
      { name: 'pod to cluster IP hits both endpoints, unmasqueraded', sourceIP: '10.0.0.2', destIP: '172.30.0.41', destPort: 80, output: both, masq: false },
      { name: 'pod to external IP hits both endpoints, masqueraded', sourceIP: '10.0.0.2', destIP: TEST_EXTERNAL_IP, destPort: 80, output: both, masq: true },
      { name: 'external to external IP hits both endpoints, masqueraded', sourceIP: TEST_EXTERNAL_CLIENT, destIP: TEST_EXTERNAL_IP, destPort: 80, output: both, masq: true },
      { name: 'pod to LB IP hits both endpoints, masqueraded', sourceIP: '10.0.0.2', destIP: '1.2.3.4', destPort: 80, output: both, masq: true },
      { name: 'external to LB IP hits both endpoints, masqueraded', sourceIP: TEST_EXTERNAL_CLIENT, destIP: '1.2.3.4', destPort: 80, output: both, masq: true },
      { name: 'pod to NodePort hits both endpoints, masqueraded', sourceIP: '10.0.0.2', destIP: TEST_NODE_IP, destPort: 3001, output: both, masq: true },
      { name: 'external to NodePort hits both endpoints, masqueraded', sourceIP: TEST_EXTERNAL_CLIENT, destIP: TEST_NODE_IP, destPort: 3001, output: both, masq: true },
    ]);
  });

  it('TestNonLocalExternalIPs', () => {
    const fp = proxier([
      service('ns1', 'svc1', { clusterIP: '172.30.0.41', externalIPs: ['192.168.99.11'], ports: [tcp('p80', 80, { targetPort: 80 })] }),
      slice('ns1', 'svc1', ['10.180.0.1', { ip: '10.180.2.1', node: TEST_HOSTNAME }], P80),
    ]);
    runPacketFlowTests(fp.rules(), V128_NODE_IPS, [
      { name: 'pod to cluster IP', sourceIP: '10.0.0.2', destIP: '172.30.0.41', destPort: 80, output: both, masq: false },
      { name: 'external to external IP', sourceIP: TEST_EXTERNAL_CLIENT, destIP: '192.168.99.11', destPort: 80, output: both, masq: true },
    ]);
  });

  // onlyLocalNodePorts(): eTP:Local NodePort with nodePortAddresses 192.168.0.0/24 + 2001:db8::/64.
  for (const { test, clusterCIDRs } of [
    { test: 'TestOnlyLocalNodePorts', clusterCIDRs: ['10.0.0.0/8'] },
    { test: 'TestOnlyLocalNodePortsNoClusterCIDR', clusterCIDRs: [] },
  ]) {
    it(test, () => {
      const fp = proxier([
        service('ns1', 'svc1', { type: 'NodePort', externalTrafficPolicy: 'Local', clusterIP: '172.30.0.41', ports: [tcp('p80', 80, { nodePort: 3001 })] }),
        slice('ns1', 'svc1', ['10.180.0.1', { ip: '10.180.2.1', node: TEST_HOSTNAME }], P80),
      ], { nodePortAddresses: ['192.168.0.0/24', '2001:db8::/64'], localhostNodePorts: false, clusterCIDRs });
      const detector = clusterCIDRs.length > 0;
      runPacketFlowTests(fp.rules(), V128_NODE_IPS, [
        { name: 'pod to cluster IP hit both endpoints', sourceIP: '10.0.0.2', destIP: '172.30.0.41', destPort: 80, output: both, masq: false },
        { name: 'external to NodePort hits only local endpoint', sourceIP: TEST_EXTERNAL_CLIENT, destIP: TEST_NODE_IP, destPort: 3001, output: '10.180.2.1:80', masq: false },
        { name: "pod to localhost doesn't work because localhost is not in nodePortAddresses", sourceIP: '10.0.0.2', destIP: '127.0.0.1', destPort: 3001, output: '' },
        // Without a LocalTrafficDetector pod-to-NodePort is (incorrectly) external traffic.
        detector
          ? { name: 'pod to NodePort hits both endpoints', sourceIP: '10.0.0.2', destIP: TEST_NODE_IP, destPort: 3001, output: both, masq: false }
          : { name: 'pod to NodePort hits only local endpoint', sourceIP: '10.0.0.2', destIP: TEST_NODE_IP, destPort: 3001, output: '10.180.2.1:80', masq: false },
      ]);
    });
  }

  describe('TestInternalTrafficPolicyE2E', () => {
    const cases: { name: string; itp: 'Cluster' | 'Local'; nodes: string[]; flow: Omit<PacketFlowTest, 'sourceIP' | 'destIP' | 'destPort'> }[] = [
      { name: 'internalTrafficPolicy is cluster', itp: 'Cluster', nodes: [TEST_HOSTNAME, 'host1', 'host2'],
        flow: { name: 'pod to ClusterIP hits all endpoints', output: '10.0.1.1:80, 10.0.1.2:80, 10.0.1.3:80', masq: false } },
      { name: 'internalTrafficPolicy is local and there are local endpoints', itp: 'Local', nodes: [TEST_HOSTNAME, 'host1', 'host2'],
        flow: { name: 'pod to ClusterIP hits only local endpoint', output: '10.0.1.1:80', masq: false } },
      // Case added by later versions (TestInternalTrafficPolicy).
      { name: 'internalTrafficPolicy is local and there are multiple local endpoints', itp: 'Local', nodes: [TEST_HOSTNAME, TEST_HOSTNAME, 'host2'],
        flow: { name: 'pod to ClusterIP hits all local endpoints', output: '10.0.1.1:80, 10.0.1.2:80', masq: false } },
      { name: 'internalTrafficPolicy is local and there are no local endpoints', itp: 'Local', nodes: ['host0', 'host1', 'host2'],
        flow: { name: 'no endpoints', output: 'DROP' } },
    ];
    for (const tc of cases) {
      it(tc.name, () => {
        const eps = internalTrafficPolicySlice(tc.nodes);
        const fp = proxier([internalTrafficPolicyService(tc.itp), eps]);
        const pkt = { sourceIP: '10.0.0.2', destIP: '172.30.1.1', destPort: 80 };
        runPacketFlowTests(fp.rules(), V128_NODE_IPS, [{ ...pkt, ...tc.flow }]);
        fp.o.remove(eps);
        runPacketFlowTests(fp.rules(), V128_NODE_IPS, [{ ...pkt, name: 'endpoints deleted', output: 'REJECT' }]);
      });
    }
  });

  // TestTerminatingEndpointsTrafficPolicyLocal / ...Cluster share the Service (v1.28: with ClientIP affinity).
  const terminatingService = (policy: 'Local' | 'Cluster') => service('ns1', 'svc1', {
    clusterIP: '172.30.1.1', type: 'LoadBalancer', externalTrafficPolicy: policy, selector: { foo: 'bar' },
    ports: [tcp('', 80, { targetPort: 80 })], healthCheckNodePort: 30000,
    sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 10800 } },
  }, ['1.2.3.4']);
  const toClusterIP = { sourceIP: '10.0.0.2', destIP: '172.30.1.1', destPort: 80 };
  const toLB = { sourceIP: TEST_EXTERNAL_CLIENT, destIP: '1.2.3.4', destPort: 80 };
  type TerminatingCase = { name: string; endpoints: Ep[]; clusterIP: [string, boolean]; lb: [string, boolean] };

  const terminatingTests: { test: string; policy: 'Local' | 'Cluster'; cases: TerminatingCase[] }[] = [
    { test: 'TestTerminatingEndpointsTrafficPolicyLocal', policy: 'Local', cases: [
      { name: 'ready endpoints exist', endpoints: [ready('10.0.1.1', TEST_HOSTNAME), ready('10.0.1.2', TEST_HOSTNAME),
        servingTerminating('10.0.1.3', TEST_HOSTNAME), terminating('10.0.1.4', TEST_HOSTNAME), ready('10.0.1.5', 'host-1')],
        clusterIP: ['10.0.1.1:80, 10.0.1.2:80, 10.0.1.5:80', false], lb: ['10.0.1.1:80, 10.0.1.2:80', false] },
      { name: 'only terminating endpoints exist', endpoints: [servingTerminating('10.0.1.2', TEST_HOSTNAME), servingTerminating('10.0.1.3', TEST_HOSTNAME),
        terminating('10.0.1.4', TEST_HOSTNAME), ready('10.0.1.5', 'host-1')],
        clusterIP: ['10.0.1.5:80', false], lb: ['10.0.1.2:80, 10.0.1.3:80', false] },
      { name: 'terminating endpoints on remote node', endpoints: [servingTerminating('10.0.1.5', 'host-1')],
        clusterIP: ['10.0.1.5:80', false], lb: ['DROP', false] },
      { name: 'no usable endpoints on any node', endpoints: [terminating('10.0.1.5', TEST_HOSTNAME), terminating('10.0.1.5', 'host-1')],
        clusterIP: ['REJECT', false], lb: ['REJECT', false] },
    ] },
    { test: 'TestTerminatingEndpointsTrafficPolicyCluster', policy: 'Cluster', cases: [
      { name: 'ready endpoints exist', endpoints: [ready('10.0.1.1', TEST_HOSTNAME), ready('10.0.1.2', TEST_HOSTNAME),
        servingTerminating('10.0.1.3', 'another-host'), terminating('10.0.1.4', 'another-host'), ready('10.0.1.5', 'another-host')],
        clusterIP: ['10.0.1.1:80, 10.0.1.2:80, 10.0.1.5:80', false], lb: ['10.0.1.1:80, 10.0.1.2:80, 10.0.1.5:80', true] },
      { name: 'only terminating endpoints exist', endpoints: [servingTerminating('10.0.1.2', TEST_HOSTNAME), servingTerminating('10.0.1.3', TEST_HOSTNAME),
        terminating('10.0.1.4', 'another-host'), servingTerminating('10.0.1.5', 'another-host')],
        clusterIP: ['10.0.1.2:80, 10.0.1.3:80, 10.0.1.5:80', false], lb: ['10.0.1.2:80, 10.0.1.3:80, 10.0.1.5:80', true] },
      { name: 'terminating endpoints on remote node', endpoints: [servingTerminating('10.0.1.5', 'host-1')],
        clusterIP: ['10.0.1.5:80', false], lb: ['10.0.1.5:80', true] },
      { name: 'no usable endpoints on any node', endpoints: [terminating('10.0.1.5', TEST_HOSTNAME), terminating('10.0.1.5', 'host-1')],
        clusterIP: ['REJECT', false], lb: ['REJECT', false] },
    ] },
  ];
  for (const { test, policy, cases } of terminatingTests) {
    describe(test, () => {
      for (const tc of cases) {
        it(tc.name, () => {
          const eps = slice('ns1', 'svc1', tc.endpoints, [tcp('', 80)]);
          const fp = proxier([terminatingService(policy), eps]);
          runPacketFlowTests(fp.rules(), V128_NODE_IPS, [
            { ...toClusterIP, name: 'pod to clusterIP', output: tc.clusterIP[0], masq: tc.clusterIP[1] },
            { ...toLB, name: 'external to LB', output: tc.lb[0], masq: tc.lb[1] },
          ]);
          fp.o.remove(eps);
          runPacketFlowTests(fp.rules(), V128_NODE_IPS, [
            { ...toClusterIP, name: 'pod to clusterIP after endpoints deleted', output: 'REJECT' },
            { ...toLB, name: 'external to LB after endpoints deleted', output: 'REJECT' },
          ]);
        });
      }
    });
  }

  describe('TestInternalExternalMasquerade', () => {
    const objs = internalExternalMasqueradeObjects();
    const e1 = '10.180.0.1:80, 10.180.1.1:80';
    const e2 = '10.180.0.2:80, 10.180.1.2:80';
    const e3 = '10.180.0.3:80, 10.180.1.3:80';
    const pod = '10.0.0.2';
    const ext = TEST_EXTERNAL_CLIENT;
    const node = TEST_NODE_IP;
    const lo = '127.0.0.1';
    // The normal case: working LocalTrafficDetector, no masqueradeAll.
    const flowTests: PacketFlowTest[] = [
      { name: 'pod to ClusterIP', sourceIP: pod, destIP: '172.30.0.41', destPort: 80, output: e1, masq: false },
      { name: 'pod to NodePort', sourceIP: pod, destIP: node, destPort: 3001, output: e1, masq: true },
      { name: 'pod to LB', sourceIP: pod, destIP: '1.2.3.4', destPort: 80, output: e1, masq: true },
      { name: 'node to ClusterIP', sourceIP: node, destIP: '172.30.0.41', destPort: 80, output: e1, masq: true },
      { name: 'node to NodePort', sourceIP: node, destIP: node, destPort: 3001, output: e1, masq: true },
      { name: 'localhost to NodePort', sourceIP: lo, destIP: lo, destPort: 3001, output: e1, masq: true },
      { name: 'node to LB', sourceIP: node, destIP: '1.2.3.4', destPort: 80, output: e1, masq: true },
      { name: 'external to ClusterIP', sourceIP: ext, destIP: '172.30.0.41', destPort: 80, output: e1, masq: true },
      { name: 'external to NodePort', sourceIP: ext, destIP: node, destPort: 3001, output: e1, masq: true },
      { name: 'external to LB', sourceIP: ext, destIP: '1.2.3.4', destPort: 80, output: e1, masq: true },
      { name: 'pod to ClusterIP with eTP:Local', sourceIP: pod, destIP: '172.30.0.42', destPort: 80, output: e2, masq: false },
      { name: 'pod to NodePort with eTP:Local', sourceIP: pod, destIP: node, destPort: 3002, output: e2, masq: false },
      { name: 'pod to LB with eTP:Local', sourceIP: pod, destIP: '5.6.7.8', destPort: 80, output: e2, masq: false },
      { name: 'node to ClusterIP with eTP:Local', sourceIP: node, destIP: '172.30.0.42', destPort: 80, output: e2, masq: true },
      // kube-proxy's own case: it targets svc1's NodePort (3001) despite its name.
      { name: 'node to NodePort with eTP:Local', sourceIP: node, destIP: node, destPort: 3001, output: e1, masq: true },
      { name: 'localhost to NodePort with eTP:Local', sourceIP: lo, destIP: lo, destPort: 3002, output: e2, masq: true },
      { name: 'node to LB with eTP:Local', sourceIP: node, destIP: '5.6.7.8', destPort: 80, output: e2, masq: true },
      { name: 'external to ClusterIP with eTP:Local', sourceIP: ext, destIP: '172.30.0.42', destPort: 80, output: e2, masq: true },
      { name: 'external to NodePort with eTP:Local', sourceIP: ext, destIP: node, destPort: 3002, output: '10.180.0.2:80', masq: false },
      { name: 'external to LB with eTP:Local', sourceIP: ext, destIP: '5.6.7.8', destPort: 80, output: '10.180.0.2:80', masq: false },
      { name: 'pod to ClusterIP with iTP:Local', sourceIP: pod, destIP: '172.30.0.43', destPort: 80, output: '10.180.0.3:80', masq: false },
      { name: 'pod to NodePort with iTP:Local', sourceIP: pod, destIP: node, destPort: 3003, output: e3, masq: true },
      { name: 'pod to LB with iTP:Local', sourceIP: pod, destIP: '9.10.11.12', destPort: 80, output: e3, masq: true },
      { name: 'node to ClusterIP with iTP:Local', sourceIP: node, destIP: '172.30.0.43', destPort: 80, output: '10.180.0.3:80', masq: true },
      { name: 'node to NodePort with iTP:Local', sourceIP: node, destIP: node, destPort: 3003, output: e3, masq: true },
      { name: 'localhost to NodePort with iTP:Local', sourceIP: lo, destIP: lo, destPort: 3003, output: e3, masq: true },
      { name: 'node to LB with iTP:Local', sourceIP: node, destIP: '9.10.11.12', destPort: 80, output: e3, masq: true },
      { name: 'external to ClusterIP with iTP:Local', sourceIP: ext, destIP: '172.30.0.43', destPort: 80, output: '10.180.0.3:80', masq: true },
      { name: 'external to NodePort with iTP:Local', sourceIP: ext, destIP: node, destPort: 3003, output: e3, masq: true },
      { name: 'external to LB with iTP:Local', sourceIP: ext, destIP: '9.10.11.12', destPort: 80, output: e3, masq: true },
    ];
    type Override = { output?: string; masq?: boolean };
    const noDetector: Record<string, Override> = {
      // With no LocalTrafficDetector, all traffic to a ClusterIP is assumed to be from a pod.
      'node to ClusterIP': { masq: false },
      'node to ClusterIP with eTP:Local': { masq: false },
      'node to ClusterIP with iTP:Local': { masq: false },
      'external to ClusterIP': { masq: false },
      'external to ClusterIP with eTP:Local': { masq: false },
      'external to ClusterIP with iTP:Local': { masq: false },
      // And there's no eTP:Local short-circuit for pod traffic, so pods get only the local endpoints.
      'pod to NodePort with eTP:Local': { output: '10.180.0.2:80' },
      'pod to LB with eTP:Local': { output: '10.180.0.2:80' },
    };
    const masqueradeAll: Record<string, Override> = {
      'pod to ClusterIP': { masq: true },
      'pod to ClusterIP with eTP:Local': { masq: true },
      'pod to ClusterIP with iTP:Local': { masq: true },
    };
    const variants: { name: string; masqueradeAll: boolean; localDetector: boolean; overrides: Record<string, Override> }[] = [
      { name: 'base', masqueradeAll: false, localDetector: true, overrides: {} },
      { name: 'no LocalTrafficDetector', masqueradeAll: false, localDetector: false, overrides: noDetector },
      { name: 'masqueradeAll', masqueradeAll: true, localDetector: true, overrides: masqueradeAll },
      {
        name: 'masqueradeAll, no LocalTrafficDetector', masqueradeAll: true, localDetector: false,
        overrides: { ...masqueradeAll, 'pod to NodePort with eTP:Local': noDetector['pod to NodePort with eTP:Local']!, 'pod to LB with eTP:Local': noDetector['pod to LB with eTP:Local']! },
      },
    ];
    for (const v of variants) {
      it(v.name, () => {
        const names = new Set(flowTests.map((t) => t.name));
        for (const name of Object.keys(v.overrides)) assert.ok(names.has(name), `override ${name} matches no case`);
        const cases = flowTests.map((t) => ({ ...t, ...v.overrides[t.name] }));
        const fp = proxier(objs, { masqueradeAll: v.masqueradeAll, clusterCIDRs: v.localDetector ? ['10.0.0.0/8'] : [] });
        runPacketFlowTests(fp.rules(), V128_NODE_IPS, cases);
      });
    }
  });
});
