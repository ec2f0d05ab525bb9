// kube-proxy's packet-flow tests (pkg/proxy/iptables/proxier_test.go, v1.28 unless a scenario
// says otherwise) run against renderIptables: the same Services and EndpointSlices go through
// our model, the rendered iptables-restore text is walked by a tracer with kube-proxy's
// semantics, and each case must land on the same endpoints / verdict / masquerade decision.
// The cases themselves are data (helpers/packet-flow-tables.ts), shared with the eBPF run.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderIptables } from '../../src/dataplane/iptables/render.js';
import { runPacketFlowTests, tracePacket } from './helpers/iptables-tracer.js';
import { objects } from './helpers/kube-objects.js';
import { FAKE_IPTABLES_CONFIG, TEST_HOSTNAME, TEST_NODE_IP } from './helpers/kube-proxy-fake.js';
import { FLOW_SCENARIOS, TRACE_PACKETS_CASES, V128_NODE_IPS, type FlowScenario } from './helpers/packet-flow-tables.js';

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

/** One scenario, step by step: objects through the real model, a full renderIptables sync, every flow traced. */
function traceScenario(s: FlowScenario): void {
  const o = objects();
  for (const step of s.steps) {
    o.apply(...(step.apply ?? []));
    o.remove(...(step.remove ?? []));
    assert.deepEqual(o.problems, [], 'kube-proxy test objects must be valid for our model');
    const text = renderIptables(o.state({ nodeName: TEST_HOSTNAME, ...s.node }), { ...FAKE_IPTABLES_CONFIG, ...s.config }).text;
    runPacketFlowTests(text, s.nodeIPs, step.flows);
  }
}

interface PathNode { name: string; children: PathNode[]; scenarios: FlowScenario[] }

/** Scenarios as a tree of their paths, in first-seen order; one path can hold several scenarios. */
function pathTree(scenarios: readonly FlowScenario[]): PathNode[] {
  const root: PathNode = { name: '', children: [], scenarios: [] };
  for (const s of scenarios) {
    if (!s.path) continue; // the iptables tracer cannot run it (see its table entry)
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

function register(nodes: PathNode[]): void {
  for (const n of nodes) {
    if (n.children.length > 0) describe(n.name, () => register(n.children));
    else it(n.name, () => n.scenarios.forEach(traceScenario));
  }
}

describe('kube-proxy packet flows through renderIptables', () => {
  register(pathTree(FLOW_SCENARIOS));
});
