// kube-proxy's packet-flow tables as data: pkg/proxy/iptables/proxier_test.go (v1.28 unless a
// scenario says otherwise) plus the one nftables case whose flows the iptables tables lack.
// Each scenario is the Services and EndpointSlices, the proxier's settings and, step by step,
// what each first packet must become. test/unit/iptables-flow.test.ts traces them through
// renderIptables; test/bpf/packet-flows.test.ts sends them through the eBPF programs.
import type { IptablesConfig } from '../../../src/dataplane/iptables/config.js';
import type { NodeFacts } from '../../../src/model/types.js';
import type { PacketFlowTest } from './iptables-tracer.js';
import type { Json } from './kube-objects.js';
import {
  TEST_EXTERNAL_CLIENT, TEST_EXTERNAL_CLIENT_BLOCKED, TEST_EXTERNAL_IP, TEST_HOSTNAME, TEST_NODE_IP, TEST_NODE_IP_ALT,
  TEST_NODE_IPS, TEST_NODE_IPV6, TEST_NODE_IPV6_ALT, clusterIPGeneralObjects, internalExternalMasqueradeObjects,
  internalTrafficPolicyService, internalTrafficPolicySlice, loadBalancerObjects, noEndpointsRejectObjects, overallObjects, ready,
  service, servingTerminating, slice, tcp, terminating, type Ep,
} from './kube-proxy-fake.js';

/** Objects applied / removed, then the flows checked against the result. */
export interface FlowStep {
  apply?: Json[];
  remove?: Json[];
  flows: PacketFlowTest[];
}

export interface FlowScenario {
  /** kube-proxy's test name and subcase; with a flow's name it identifies the flow. */
  id: string;
  /** Where iptables-flow.test.ts reports it (describe names, then the it name; scenarios with one
   *  path share an it). null: the iptables tracer cannot run it unchanged (eBPF only). */
  path: readonly string[] | null;
  /** Over FAKE_IPTABLES_CONFIG. */
  config: Partial<IptablesConfig>;
  node: Partial<NodeFacts>;
  /** What the tracer treats as LOCAL (with 127.0.0.1 and ::1). */
  nodeIPs: readonly string[];
  steps: FlowStep[];
}

// Later kube-proxy versions (v1.31+) trace with every node address as LOCAL (TEST_NODE_IPS);
// v1.28's tracer knows one node IP (plus loopback).
export const V128_NODE_IPS: readonly string[] = [TEST_NODE_IP];

const POD = '10.0.0.2';
const EXT = TEST_EXTERNAL_CLIENT;
const P80 = [tcp('p80', 80)];
const BOTH = '10.180.0.1:80, 10.180.2.1:80';

/** kube-proxy's TestTracePackets cases (traced there over static rules that are
 *  TestOverallIPTablesRules' expected output, so they apply to its Services too). */
export const TRACE_PACKETS_CASES: PacketFlowTest[] = [
  { name: 'no match', sourceIP: POD, destIP: '10.0.0.3', destPort: 80, output: '' },
  { name: 'single endpoint', sourceIP: POD, destIP: '172.30.0.41', destPort: 80, output: '10.180.0.1:80' },
  { name: 'multiple endpoints', sourceIP: POD, destIP: '172.30.0.44', destPort: 80, output: '10.180.0.4:80, 10.180.0.5:80' },
  { name: 'LOCAL, KUBE-MARK-MASQ', sourceIP: TEST_NODE_IP, destIP: '192.168.99.22', destPort: 80, output: '10.180.0.2:80', masq: true },
  { name: 'DROP', sourceIP: EXT, destIP: '192.168.99.22', destPort: 80, output: 'DROP' },
  { name: 'ACCEPT (NodePortHealthCheck)', sourceIP: TEST_NODE_IP, destIP: TEST_NODE_IP, destPort: 30000, output: 'ACCEPT' },
  { name: 'REJECT', sourceIP: POD, destIP: '172.30.0.46', destPort: 80, output: 'REJECT' },
];

function overallScenario(): FlowScenario {
  // v1.28 gave svc5 no session affinity (TestTracePackets' rules have no "recent" match).
  const objs = overallObjects();
  delete objs[4]!.spec.sessionAffinity;
  delete objs[4]!.spec.sessionAffinityConfig;
  return {
    id: 'TestOverallIPTablesRules',
    path: ['TestOverallIPTablesRulesWithMultipleServices, later TestOverallIPTablesRules (its services, traced with the TestTracePackets cases)'],
    config: {}, node: {}, nodeIPs: V128_NODE_IPS,
    steps: [{ apply: objs, flows: TRACE_PACKETS_CASES }],
  };
}

const noEndpointsReject: FlowScenario = {
  id: 'TestNoEndpointsReject', path: ['TestNoEndpointsReject'], config: {}, node: {}, nodeIPs: V128_NODE_IPS,
  steps: [{
    apply: noEndpointsRejectObjects(),
    flows: [
      { name: 'pod to cluster IP with no endpoints', sourceIP: POD, destIP: '172.30.0.41', destPort: 80, output: 'REJECT' },
      { name: 'external to external IP with no endpoints', sourceIP: EXT, destIP: '192.168.99.11', destPort: 80, output: 'REJECT' },
      { name: 'pod to NodePort with no endpoints', sourceIP: POD, destIP: TEST_NODE_IP, destPort: 3001, output: 'REJECT' },
      { name: 'external to NodePort with no endpoints', sourceIP: EXT, destIP: TEST_NODE_IP, destPort: 3001, output: 'REJECT' },
      { name: 'pod to LoadBalancer IP with no endpoints', sourceIP: POD, destIP: '1.2.3.4', destPort: 80, output: 'REJECT' },
      { name: 'external to LoadBalancer IP with no endpoints', sourceIP: EXT, destIP: '1.2.3.4', destPort: 80, output: 'REJECT' },
    ],
  }],
};

const clusterIPGeneral: FlowScenario = {
  id: 'TestClusterIPGeneral',
  path: ['TestClusterIPGeneral (table of v1.31+, which adds the UDP port v1.28 left out for its conntrack fake)'],
  config: {}, node: {}, nodeIPs: TEST_NODE_IPS,
  steps: [{
    apply: clusterIPGeneralObjects(),
    flows: [
      { name: 'simple clusterIP', sourceIP: '10.180.0.2', destIP: '172.30.0.41', destPort: 80, output: '10.180.0.1:80', masq: false },
      { name: 'hairpin to cluster IP', sourceIP: '10.180.0.1', destIP: '172.30.0.41', destPort: 80, output: '10.180.0.1:80', masq: true },
      { name: 'clusterIP with multiple endpoints', sourceIP: '10.180.0.2', destIP: '172.30.0.42', destPort: 80, output: '10.180.0.1:80, 10.180.2.1:80', masq: false },
      { name: 'clusterIP with TargetPort', sourceIP: '10.180.0.2', destIP: '172.30.0.42', destPort: 443, output: '10.180.0.1:8443, 10.180.2.1:8443', masq: false },
      { name: 'clusterIP with TCP, UDP, and SCTP on same port (TCP)', sourceIP: '10.180.0.2', protocol: 'TCP', destIP: '172.30.0.42', destPort: 53, output: '10.180.0.1:5353, 10.180.2.1:5353', masq: false },
      { name: 'clusterIP with TCP, UDP, and SCTP on same port (UDP)', sourceIP: '10.180.0.2', protocol: 'UDP', destIP: '172.30.0.42', destPort: 53, output: '10.180.0.1:53, 10.180.2.1:53', masq: false },
      { name: 'clusterIP with TCP, UDP, and SCTP on same port (SCTP)', sourceIP: '10.180.0.2', protocol: 'SCTP', destIP: '172.30.0.42', destPort: 53, output: '10.180.0.1:53, 10.180.2.1:53', masq: false },
      { name: 'TCP-only port does not match UDP traffic', sourceIP: '10.180.0.2', protocol: 'UDP', destIP: '172.30.0.42', destPort: 80, output: '' },
      { name: "svc1 does not accept svc2's ports", sourceIP: '10.180.0.2', destIP: '172.30.0.41', destPort: 443, output: '' },
    ],
  }],
};

/** pkg/proxy/nftables/proxier_test.go TestClusterIPGeneral: the nftables proxier rejects a ClusterIP's
 *  unknown ports (its cluster-ips-check chain), where the iptables proxier lets them through (''), so
 *  the iptables tracer cannot run these. Its third extra flow ("packet to unallocated cluster ip":
 *  DROP) needs the service CIDR, which neither proxier config here carries. */
const nftablesClusterIPGeneral: FlowScenario = {
  id: 'nftables TestClusterIPGeneral',
  path: null,
  config: { nodePortAddresses: [`${TEST_NODE_IP}/32`] }, node: {}, nodeIPs: TEST_NODE_IPS,
  steps: [{
    apply: clusterIPGeneralObjects(),
    flows: [
      { name: 'TCP-only port does not match UDP traffic', sourceIP: '10.180.0.2', protocol: 'UDP', destIP: '172.30.0.42', destPort: 80, output: 'REJECT' },
      { name: "svc1 does not accept svc2's ports", sourceIP: '10.180.0.2', destIP: '172.30.0.41', destPort: 443, output: 'REJECT' },
    ],
  }],
};

function loadBalancerScenario(): FlowScenario {
  const out = '10.180.0.1:80';
  const blocked = TEST_EXTERNAL_CLIENT_BLOCKED;
  return {
    id: 'TestLoadBalancer', path: ['TestLoadBalancer (loadBalancerSourceRanges / KUBE-FW / KUBE-PROXY-FIREWALL)'],
    config: {}, node: {}, nodeIPs: V128_NODE_IPS,
    steps: [{
      apply: loadBalancerObjects(),
      flows: [
        { name: 'pod to cluster IP', sourceIP: POD, destIP: '172.30.0.41', destPort: 80, output: out, masq: false },
        { name: 'external to nodePort', sourceIP: EXT, destIP: TEST_NODE_IP, destPort: 3001, output: out, masq: true },
        { name: 'nodePort bypasses LoadBalancerSourceRanges', sourceIP: blocked, destIP: TEST_NODE_IP, destPort: 3001, output: out, masq: true },
        { name: 'accepted external to LB1', sourceIP: EXT, destIP: '1.2.3.4', destPort: 80, output: out, masq: true },
        { name: 'accepted external to LB2', sourceIP: EXT, destIP: '5.6.7.8', destPort: 80, output: out, masq: true },
        { name: 'blocked external to LB1', sourceIP: blocked, destIP: '1.2.3.4', destPort: 80, output: 'DROP' },
        { name: 'blocked external to LB2', sourceIP: blocked, destIP: '5.6.7.8', destPort: 80, output: 'DROP' },
        { name: 'pod to LB1 (blocked by LoadBalancerSourceRanges)', sourceIP: POD, destIP: '1.2.3.4', destPort: 80, output: 'DROP' },
        { name: 'pod to LB2 (blocked by LoadBalancerSourceRanges)', sourceIP: POD, destIP: '5.6.7.8', destPort: 80, output: 'DROP' },
        { name: 'node to LB1 (allowed by LoadBalancerSourceRanges)', sourceIP: TEST_NODE_IP, destIP: '1.2.3.4', destPort: 80, output: out, masq: true },
        { name: 'node to LB2 (allowed by LoadBalancerSourceRanges)', sourceIP: TEST_NODE_IP, destIP: '5.6.7.8', destPort: 80, output: out, masq: true },
        { name: 'same node to LB1, SNATted to LB1 (implicitly allowed)', sourceIP: '1.2.3.4', destIP: '1.2.3.4', destPort: 80, output: out, masq: true },
        { name: 'same node to LB2, SNATted to LB2 (implicitly allowed)', sourceIP: '5.6.7.8', destIP: '5.6.7.8', destPort: 80, output: out, masq: true },
      ],
    }],
  };
}

function nodePortScenario(): FlowScenario {
  const out = '10.180.0.1:80';
  return {
    id: 'TestNodePort', path: ['TestNodePort'], config: {}, node: {}, nodeIPs: V128_NODE_IPS,
    steps: [{
      apply: [
        service('ns1', 'svc1', { type: 'NodePort', clusterIP: '172.30.0.41', ports: [tcp('p80', 80, { nodePort: 3001 })] }),
        slice('ns1', 'svc1', ['10.180.0.1'], P80),
      ],
      flows: [
        { name: 'pod to cluster IP', sourceIP: POD, destIP: '172.30.0.41', destPort: 80, output: out, masq: false },
        { name: 'external to nodePort', sourceIP: EXT, destIP: TEST_NODE_IP, destPort: 3001, output: out, masq: true },
        { name: 'node to nodePort', sourceIP: TEST_NODE_IP, destIP: TEST_NODE_IP, destPort: 3001, output: out, masq: true },
        { name: 'localhost to nodePort gets masqueraded', sourceIP: '127.0.0.1', destIP: '127.0.0.1', destPort: 3001, output: out, masq: true },
      ],
    }],
  };
}

/** TestNodePorts (v1.31+): --nodeport-addresses x --localhost-nodeports, IPv4 and IPv6. */
function nodePortsScenarios(): FlowScenario[] {
  const cases = [
    { name: 'ipv4, localhost-nodeports enabled', v6: false, localhostNodePorts: true, nodePortAddresses: [] as string[], allowAltNodeIP: true },
    { name: 'ipv4, localhost-nodeports disabled', v6: false, localhostNodePorts: false, nodePortAddresses: [], allowAltNodeIP: true },
    { name: 'ipv4, localhost-nodeports disabled, localhost in nodeport-addresses', v6: false, localhostNodePorts: false, nodePortAddresses: ['192.168.0.0/24', '127.0.0.1/32'], allowAltNodeIP: false },
    { name: 'ipv4, localhost-nodeports enabled, multiple nodeport-addresses', v6: false, localhostNodePorts: false, nodePortAddresses: ['192.168.0.0/24', '192.168.1.0/24', '2001:db8::/64'], allowAltNodeIP: true },
    { name: 'ipv6, localhost-nodeports enabled', v6: true, localhostNodePorts: true, nodePortAddresses: [], allowAltNodeIP: true },
    { name: 'ipv6, localhost-nodeports disabled', v6: true, localhostNodePorts: false, nodePortAddresses: [], allowAltNodeIP: true },
    { name: 'ipv6, localhost-nodeports disabled, multiple nodeport-addresses', v6: true, localhostNodePorts: false, nodePortAddresses: ['192.168.0.0/24', '192.168.1.0/24', '2001:db8::/64'], allowAltNodeIP: false },
  ];
  return cases.map((tc) => {
    const [svcIP, epIP1, epIP2] = tc.v6 ? ['fd00:172:30::41', 'fd00:10:180::1', 'fd00:10:180::2:1'] : ['172.30.0.41', '10.180.0.1', '10.180.2.1'];
    const [podIP, externalClientIP, nodeIP, altNodeIP, localhostIP] = tc.v6
      ? ['fd00:10::2', '2600:5200::1', TEST_NODE_IPV6, TEST_NODE_IPV6_ALT, '::1']
      : [POD, EXT, TEST_NODE_IP, TEST_NODE_IP_ALT, '127.0.0.1'];
    // kube-proxy's fake interfaces of this version: lo 127.0.0.1 ::1, eth0 the five test node IPs.
    const familyConfig: Partial<IptablesConfig> = tc.v6
      ? { family: 'IPv6', nodeIP: TEST_NODE_IPV6, localAddresses: ['::1', TEST_NODE_IPV6, TEST_NODE_IPV6_ALT], clusterCIDRs: ['fd00:10::/64'] }
      : { localAddresses: ['127.0.0.1', TEST_NODE_IP, TEST_NODE_IP_ALT, TEST_EXTERNAL_IP] };
    const hp = (ip: string) => (tc.v6 ? `[${ip}]:80` : `${ip}:80`);
    const output = `${hp(epIP1!)}, ${hp(epIP2!)}`;
    const localhostOK = !tc.v6 && tc.localhostNodePorts;
    return {
      id: `TestNodePorts/${tc.name}`,
      path: ['TestNodePorts (v1.31+: --nodeport-addresses x --localhost-nodeports, IPv4 and IPv6)', tc.name],
      config: { ...familyConfig, localhostNodePorts: tc.localhostNodePorts, nodePortAddresses: tc.nodePortAddresses },
      node: { ipFamilies: [tc.v6 ? 'IPv6' : 'IPv4'] },
      nodeIPs: TEST_NODE_IPS,
      steps: [{
        apply: [
          service('ns1', 'svc1', { type: 'NodePort', clusterIP: svcIP, ports: [tcp('p80', 80, { nodePort: 3001 })] }),
          slice('ns1', 'svc1', [epIP1!, { ip: epIP2!, node: TEST_HOSTNAME }], P80, tc.v6 ? 'IPv6' : 'IPv4'),
        ],
        flows: [
          { name: 'pod to cluster IP', sourceIP: podIP!, destIP: svcIP!, destPort: 80, output, masq: false },
          { name: 'external to nodePort', sourceIP: externalClientIP!, destIP: nodeIP!, destPort: 3001, output, masq: true },
          { name: 'node to nodePort', sourceIP: nodeIP!, destIP: nodeIP!, destPort: 3001, output, masq: true },
          localhostOK
            ? { name: 'localhost to nodePort gets masqueraded', sourceIP: localhostIP!, destIP: localhostIP!, destPort: 3001, output, masq: true }
            : { name: 'localhost to nodePort is ignored', sourceIP: localhostIP!, destIP: localhostIP!, destPort: 3001, output: '' },
          tc.allowAltNodeIP
            ? { name: 'external to nodePort on secondary IP', sourceIP: externalClientIP!, destIP: altNodeIP!, destPort: 3001, output, masq: true }
            : { name: 'secondary nodeIP ignores NodePorts', sourceIP: externalClientIP!, destIP: altNodeIP!, destPort: 3001, output: '' },
        ],
      }],
    } satisfies FlowScenario;
  });
}

function healthCheckNodePortScenario(): FlowScenario {
  const svc1 = service('ns1', 'svc1', {
    type: 'LoadBalancer', clusterIP: '172.30.0.42', ports: [tcp('p80', 80, { nodePort: 3001 })],
    healthCheckNodePort: 30000, externalTrafficPolicy: 'Local',
  });
  return {
    id: 'TestHealthCheckNodePort', path: ['TestHealthCheckNodePort (nodePortAddresses 127.0.0.0/8; rule gone with the Service)'],
    config: { nodePortAddresses: ['127.0.0.0/8'] }, node: {}, nodeIPs: V128_NODE_IPS,
    steps: [
      { apply: [svc1], flows: [{ name: 'firewall accepts HealthCheckNodePort', sourceIP: '1.2.3.4', destIP: TEST_NODE_IP, destPort: 30000, output: 'ACCEPT', masq: false }] },
      { remove: [svc1], flows: [{ name: 'HealthCheckNodePort no longer has any rule', sourceIP: '1.2.3.4', destIP: TEST_NODE_IP, destPort: 30000, output: '' }] },
    ],
  };
}

/** As flows: KUBE-MARK-MASQ → KUBE-POSTROUTING masquerades, with and without --random-fully. */
const masqueradeRuleScenarios = (): FlowScenario[] => [false, true].map((randomFully) => ({
  id: `TestMasqueradeRule/randomFully=${randomFully}`,
  path: ['TestMasqueradeRule (as flows: KUBE-MARK-MASQ → KUBE-POSTROUTING masquerades, with and without --random-fully)'],
  config: { randomFully }, node: {}, nodeIPs: V128_NODE_IPS,
  steps: [{
    apply: [service('ns1', 'svc1', { clusterIP: '172.30.0.41', ports: P80 }), slice('ns1', 'svc1', ['10.180.0.1'], P80)],
    flows: [
      { name: 'pod to cluster IP', sourceIP: POD, destIP: '172.30.0.41', destPort: 80, output: '10.180.0.1:80', masq: false },
      { name: 'external to cluster IP', sourceIP: EXT, destIP: '172.30.0.41', destPort: 80, output: '10.180.0.1:80', masq: true },
      { name: 'hairpin', sourceIP: '10.180.0.1', destIP: '172.30.0.41', destPort: 80, output: '10.180.0.1:80', masq: true },
    ],
  }],
}));

const etpObjects = (policy: 'Local' | 'Cluster'): Json[] => [
  service('ns1', 'svc1', {
    type: 'LoadBalancer', externalTrafficPolicy: policy, clusterIP: '172.30.0.41', externalIPs: [TEST_EXTERNAL_IP],
    ports: [tcp('p80', 80, { nodePort: 3001, targetPort: 80 })], ...(policy === 'Local' ? { healthCheckNodePort: 30000 } : {}),
  }, ['1.2.3.4']),
  slice('ns1', 'svc1', ['10.180.0.1', { ip: '10.180.2.1', node: TEST_HOSTNAME }], P80),
];

function etpLocalScenario(): FlowScenario {
  const local = '10.180.2.1:80';
  return {
    id: 'TestExternalTrafficPolicyLocal', path: ["TestExternalTrafficPolicyLocal (table of v1.31+, a superset of v1.28's four cases)"],
    config: {}, node: {}, nodeIPs: TEST_NODE_IPS,
    steps: [{
      apply: etpObjects('Local'),
      flows: [
        { name: 'pod to cluster IP hits both endpoints, unmasqueraded', sourceIP: POD, destIP: '172.30.0.41', destPort: 80, output: BOTH, masq: false },
        { name: 'pod to external IP hits both endpoints, unmasqueraded', sourceIP: POD, destIP: TEST_EXTERNAL_IP, destPort: 80, output: BOTH, masq: false },
        { name: 'external to external IP hits only local endpoint, unmasqueraded', sourceIP: EXT, destIP: TEST_EXTERNAL_IP, destPort: 80, output: local, masq: false },
        { name: 'pod to LB IP hits only both endpoints, unmasqueraded', sourceIP: POD, destIP: '1.2.3.4', destPort: 80, output: BOTH, masq: false },
        { name: 'external to LB IP hits only local endpoint, unmasqueraded', sourceIP: EXT, destIP: '1.2.3.4', destPort: 80, output: local, masq: false },
        { name: 'pod to NodePort hits both endpoints, unmasqueraded', sourceIP: POD, destIP: TEST_NODE_IP, destPort: 3001, output: BOTH, masq: false },
        { name: 'external to NodePort hits only local endpoint, unmasqueraded', sourceIP: EXT, destIP: TEST_NODE_IP, destPort: 3001, output: local, masq: false },
      ],
    }],
  };
}

const etpClusterScenario = (): FlowScenario => ({
  id: 'TestExternalTrafficPolicyCluster', path: ['TestExternalTrafficPolicyCluster (v1.31+)'], config: {}, node: {}, nodeIPs: TEST_NODE_IPS,
  steps: [{
    apply: etpObjects('Cluster'),
    flows: [
      { name: 'pod to cluster IP hits both endpoints, unmasqueraded', sourceIP: POD, destIP: '172.30.0.41', destPort: 80, output: BOTH, masq: false },
      { name: 'pod to external IP hits both endpoints, masqueraded', sourceIP: POD, destIP: TEST_EXTERNAL_IP, destPort: 80, output: BOTH, masq: true },
      { name: 'external to external IP hits both endpoints, masqueraded', sourceIP: EXT, destIP: TEST_EXTERNAL_IP, destPort: 80, output: BOTH, masq: true },
      { name: 'pod to LB IP hits both endpoints, masqueraded', sourceIP: POD, destIP: '1.2.3.4', destPort: 80, output: BOTH, masq: true },
      { name: 'external to LB IP hits both endpoints, masqueraded', sourceIP: EXT, destIP: '1.2.3.4', destPort: 80, output: BOTH, masq: true },
      { name: 'pod to NodePort hits both endpoints, masqueraded', sourceIP: POD, destIP: TEST_NODE_IP, destPort: 3001, output: BOTH, masq: true },
      { name: 'external to NodePort hits both endpoints, masqueraded', sourceIP: EXT, destIP: TEST_NODE_IP, destPort: 3001, output: BOTH, masq: true },
    ],
  }],
});

const nonLocalExternalIPsScenario = (): FlowScenario => ({
  id: 'TestNonLocalExternalIPs', path: ['TestNonLocalExternalIPs'], config: {}, node: {}, nodeIPs: V128_NODE_IPS,
  steps: [{
    apply: [
      service('ns1', 'svc1', { clusterIP: '172.30.0.41', externalIPs: ['192.168.99.11'], ports: [tcp('p80', 80, { targetPort: 80 })] }),
      slice('ns1', 'svc1', ['10.180.0.1', { ip: '10.180.2.1', node: TEST_HOSTNAME }], P80),
    ],
    flows: [
      { name: 'pod to cluster IP', sourceIP: POD, destIP: '172.30.0.41', destPort: 80, output: BOTH, masq: false },
      { name: 'external to external IP', sourceIP: EXT, destIP: '192.168.99.11', destPort: 80, output: BOTH, masq: true },
    ],
  }],
});

/** onlyLocalNodePorts(): eTP:Local NodePort with nodePortAddresses 192.168.0.0/24 + 2001:db8::/64. */
const onlyLocalNodePortsScenarios = (): FlowScenario[] => [
  { test: 'TestOnlyLocalNodePorts', clusterCIDRs: ['10.0.0.0/8'] },
  { test: 'TestOnlyLocalNodePortsNoClusterCIDR', clusterCIDRs: [] },
].map(({ test, clusterCIDRs }) => ({
  id: test, path: [test],
  config: { nodePortAddresses: ['192.168.0.0/24', '2001:db8::/64'], localhostNodePorts: false, clusterCIDRs },
  node: {}, nodeIPs: V128_NODE_IPS,
  steps: [{
    apply: [
      service('ns1', 'svc1', { type: 'NodePort', externalTrafficPolicy: 'Local', clusterIP: '172.30.0.41', ports: [tcp('p80', 80, { nodePort: 3001 })] }),
      slice('ns1', 'svc1', ['10.180.0.1', { ip: '10.180.2.1', node: TEST_HOSTNAME }], P80),
    ],
    flows: [
      { name: 'pod to cluster IP hit both endpoints', sourceIP: POD, destIP: '172.30.0.41', destPort: 80, output: BOTH, masq: false },
      { name: 'external to NodePort hits only local endpoint', sourceIP: EXT, destIP: TEST_NODE_IP, destPort: 3001, output: '10.180.2.1:80', masq: false },
      { name: "pod to localhost doesn't work because localhost is not in nodePortAddresses", sourceIP: POD, destIP: '127.0.0.1', destPort: 3001, output: '' },
      // Without a LocalTrafficDetector pod-to-NodePort is (incorrectly) external traffic.
      clusterCIDRs.length > 0
        ? { name: 'pod to NodePort hits both endpoints', sourceIP: POD, destIP: TEST_NODE_IP, destPort: 3001, output: BOTH, masq: false }
        : { name: 'pod to NodePort hits only local endpoint', sourceIP: POD, destIP: TEST_NODE_IP, destPort: 3001, output: '10.180.2.1:80', masq: false },
    ],
  }],
}));

function internalTrafficPolicyScenarios(): FlowScenario[] {
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
  const pkt = { sourceIP: POD, destIP: '172.30.1.1', destPort: 80 };
  return cases.map((tc) => {
    const eps = internalTrafficPolicySlice(tc.nodes);
    return {
      id: `TestInternalTrafficPolicyE2E/${tc.name}`, path: ['TestInternalTrafficPolicyE2E', tc.name],
      config: {}, node: {}, nodeIPs: V128_NODE_IPS,
      steps: [
        { apply: [internalTrafficPolicyService(tc.itp), eps], flows: [{ ...pkt, ...tc.flow }] },
        { remove: [eps], flows: [{ ...pkt, name: 'endpoints deleted', output: 'REJECT' }] },
      ],
    };
  });
}

/** TestTerminatingEndpointsTrafficPolicyLocal / ...Cluster share the Service (v1.28: with ClientIP affinity). */
function terminatingEndpointsScenarios(): FlowScenario[] {
  const terminatingService = (policy: 'Local' | 'Cluster') => service('ns1', 'svc1', {
    clusterIP: '172.30.1.1', type: 'LoadBalancer', externalTrafficPolicy: policy, selector: { foo: 'bar' },
    ports: [tcp('', 80, { targetPort: 80 })], healthCheckNodePort: 30000,
    sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 10800 } },
  }, ['1.2.3.4']);
  const toClusterIP = { sourceIP: POD, destIP: '172.30.1.1', destPort: 80 };
  const toLB = { sourceIP: EXT, destIP: '1.2.3.4', destPort: 80 };
  type TerminatingCase = { name: string; endpoints: Ep[]; clusterIP: [string, boolean]; lb: [string, boolean] };
  const tests: { test: string; policy: 'Local' | 'Cluster'; cases: TerminatingCase[] }[] = [
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
  return tests.flatMap(({ test, policy, cases }) => cases.map((tc) => {
    const eps = slice('ns1', 'svc1', tc.endpoints, [tcp('', 80)]);
    return {
      id: `${test}/${tc.name}`, path: [test, tc.name], config: {}, node: {}, nodeIPs: V128_NODE_IPS,
      steps: [
        {
          apply: [terminatingService(policy), eps],
          flows: [
            { ...toClusterIP, name: 'pod to clusterIP', output: tc.clusterIP[0], masq: tc.clusterIP[1] },
            { ...toLB, name: 'external to LB', output: tc.lb[0], masq: tc.lb[1] },
          ],
        },
        {
          remove: [eps],
          flows: [
            { ...toClusterIP, name: 'pod to clusterIP after endpoints deleted', output: 'REJECT' },
            { ...toLB, name: 'external to LB after endpoints deleted', output: 'REJECT' },
          ],
        },
      ],
    };
  }));
}

function internalExternalMasqueradeScenarios(): FlowScenario[] {
  const e1 = '10.180.0.1:80, 10.180.1.1:80';
  const e2 = '10.180.0.2:80, 10.180.1.2:80';
  const e3 = '10.180.0.3:80, 10.180.1.3:80';
  const node = TEST_NODE_IP;
  const lo = '127.0.0.1';
  // The normal case: working LocalTrafficDetector, no masqueradeAll.
  const flowTests: PacketFlowTest[] = [
    { name: 'pod to ClusterIP', sourceIP: POD, destIP: '172.30.0.41', destPort: 80, output: e1, masq: false },
    { name: 'pod to NodePort', sourceIP: POD, destIP: node, destPort: 3001, output: e1, masq: true },
    { name: 'pod to LB', sourceIP: POD, destIP: '1.2.3.4', destPort: 80, output: e1, masq: true },
    { name: 'node to ClusterIP', sourceIP: node, destIP: '172.30.0.41', destPort: 80, output: e1, masq: true },
    { name: 'node to NodePort', sourceIP: node, destIP: node, destPort: 3001, output: e1, masq: true },
    { name: 'localhost to NodePort', sourceIP: lo, destIP: lo, destPort: 3001, output: e1, masq: true },
    { name: 'node to LB', sourceIP: node, destIP: '1.2.3.4', destPort: 80, output: e1, masq: true },
    { name: 'external to ClusterIP', sourceIP: EXT, destIP: '172.30.0.41', destPort: 80, output: e1, masq: true },
    { name: 'external to NodePort', sourceIP: EXT, destIP: node, destPort: 3001, output: e1, masq: true },
    { name: 'external to LB', sourceIP: EXT, destIP: '1.2.3.4', destPort: 80, output: e1, masq: true },
    { name: 'pod to ClusterIP with eTP:Local', sourceIP: POD, destIP: '172.30.0.42', destPort: 80, output: e2, masq: false },
    { name: 'pod to NodePort with eTP:Local', sourceIP: POD, destIP: node, destPort: 3002, output: e2, masq: false },
    { name: 'pod to LB with eTP:Local', sourceIP: POD, destIP: '5.6.7.8', destPort: 80, output: e2, masq: false },
    { name: 'node to ClusterIP with eTP:Local', sourceIP: node, destIP: '172.30.0.42', destPort: 80, output: e2, masq: true },
    // kube-proxy's own case: it targets svc1's NodePort (3001) despite its name.
    { name: 'node to NodePort with eTP:Local', sourceIP: node, destIP: node, destPort: 3001, output: e1, masq: true },
    { name: 'localhost to NodePort with eTP:Local', sourceIP: lo, destIP: lo, destPort: 3002, output: e2, masq: true },
    { name: 'node to LB with eTP:Local', sourceIP: node, destIP: '5.6.7.8', destPort: 80, output: e2, masq: true },
    { name: 'external to ClusterIP with eTP:Local', sourceIP: EXT, destIP: '172.30.0.42', destPort: 80, output: e2, masq: true },
    { name: 'external to NodePort with eTP:Local', sourceIP: EXT, destIP: node, destPort: 3002, output: '10.180.0.2:80', masq: false },
    { name: 'external to LB with eTP:Local', sourceIP: EXT, destIP: '5.6.7.8', destPort: 80, output: '10.180.0.2:80', masq: false },
    { name: 'pod to ClusterIP with iTP:Local', sourceIP: POD, destIP: '172.30.0.43', destPort: 80, output: '10.180.0.3:80', masq: false },
    { name: 'pod to NodePort with iTP:Local', sourceIP: POD, destIP: node, destPort: 3003, output: e3, masq: true },
    { name: 'pod to LB with iTP:Local', sourceIP: POD, destIP: '9.10.11.12', destPort: 80, output: e3, masq: true },
    { name: 'node to ClusterIP with iTP:Local', sourceIP: node, destIP: '172.30.0.43', destPort: 80, output: '10.180.0.3:80', masq: true },
    { name: 'node to NodePort with iTP:Local', sourceIP: node, destIP: node, destPort: 3003, output: e3, masq: true },
    { name: 'localhost to NodePort with iTP:Local', sourceIP: lo, destIP: lo, destPort: 3003, output: e3, masq: true },
    { name: 'node to LB with iTP:Local', sourceIP: node, destIP: '9.10.11.12', destPort: 80, output: e3, masq: true },
    { name: 'external to ClusterIP with iTP:Local', sourceIP: EXT, destIP: '172.30.0.43', destPort: 80, output: '10.180.0.3:80', masq: true },
    { name: 'external to NodePort with iTP:Local', sourceIP: EXT, destIP: node, destPort: 3003, output: e3, masq: true },
    { name: 'external to LB with iTP:Local', sourceIP: EXT, destIP: '9.10.11.12', destPort: 80, output: e3, masq: true },
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
  const names = new Set(flowTests.map((t) => t.name));
  return variants.map((v) => {
    for (const name of Object.keys(v.overrides)) if (!names.has(name)) throw new Error(`override ${name} matches no case`);
    return {
      id: `TestInternalExternalMasquerade/${v.name}`, path: ['TestInternalExternalMasquerade', v.name],
      config: { masqueradeAll: v.masqueradeAll, clusterCIDRs: v.localDetector ? ['10.0.0.0/8'] : [] }, node: {}, nodeIPs: V128_NODE_IPS,
      steps: [{ apply: internalExternalMasqueradeObjects(), flows: flowTests.map((t) => ({ ...t, ...v.overrides[t.name] })) }],
    };
  });
}

/** Every scenario, in the order iptables-flow.test.ts reports them. */
export const FLOW_SCENARIOS: readonly FlowScenario[] = [
  overallScenario(),
  noEndpointsReject,
  clusterIPGeneral,
  loadBalancerScenario(),
  nodePortScenario(),
  ...nodePortsScenarios(),
  healthCheckNodePortScenario(),
  ...masqueradeRuleScenarios(),
  etpLocalScenario(),
  etpClusterScenario(),
  nonLocalExternalIPsScenario(),
  ...onlyLocalNodePortsScenarios(),
  ...internalTrafficPolicyScenarios(),
  ...terminatingEndpointsScenarios(),
  ...internalExternalMasqueradeScenarios(),
  nftablesClusterIPGeneral,
];

/** A flow's id: unique over every scenario and step. */
export const flowId = (s: FlowScenario, f: PacketFlowTest): string => `${s.id} / ${f.name}`;
