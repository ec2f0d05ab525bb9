// kube-proxy's packet-flow tables for its nftables mode: pkg/proxy/nftables/proxier_test.go of
// aroradaman/kubernetes@4177b600d4b97a67b765a18ddeeb295ef757b212, the version that goes with
// proxier.go b0f823e6 (filter-output-post-dnat, cluster-ips-check); its flow tables are the same
// as those of the later kubernetes/kubernetes version 030880a5. Where the nftables tests run the
// same scenario as the iptables ones (helpers/packet-flow-tables.ts), the objects and flows are
// taken from there and only the differences are written here, keyed by flowId; the other tests
// are written out. (kube-proxy names its second TestClusterIPGeneral flow "(TCP)" for the UDP
// case; the shared table calls it "(UDP)".)
// test/unit/nftables-flow.test.ts traces them through renderNftablesFull.
import type { IptablesConfig } from '../../../src/dataplane/iptables/config.js';
import type { NftablesConfig } from '../../../src/dataplane/nftables/config.js';
import type { NodeFacts } from '../../../src/model/types.js';
import type { PacketFlowTest } from './iptables-tracer.js';
import type { Json } from './kube-objects.js';
import {
  FAKE_IPTABLES_CONFIG, TEST_EXTERNAL_CLIENT, TEST_EXTERNAL_IP, TEST_HOSTNAME, TEST_NODE_IP, TEST_NODE_IP_ALT, TEST_NODE_IPS,
  TEST_NODE_IPV6, TEST_NODE_IPV6_ALT, internalTrafficPolicyService, internalTrafficPolicySlice, overallObjects, service, slice, tcp,
} from './kube-proxy-fake.js';
import { FLOW_SCENARIOS, flowId, type FlowScenario, type FlowStep } from './packet-flow-tables.js';

// ---- kube-proxy's nftables NewFakeProxier -------------------------------------------------

/** NewFakeProxier (nftables): serviceCIDRs "172.30.0.0/16" (IPv6 "fd00:10:96::/112"), given to
 *  us as a ServiceCIDR object (ProxyState.serviceCIDRs holds every family). */
const SERVICE_CIDRS: readonly string[] = ['172.30.0.0/16', 'fd00:10:96::/112'];

export const serviceCIDRObject = (cidrs: readonly string[] = SERVICE_CIDRS): Json => ({
  apiVersion: 'networking.k8s.io/v1', kind: 'ServiceCIDR', metadata: { name: 'kubernetes', resourceVersion: '1' }, spec: { cidrs: [...cidrs] },
});

/** NewFakeProxier's nodePortAddresses: testNodeIP/32 and testNodeIPv6/128 (each proxier uses its
 *  family's one), unlike the iptables fake's nil (match all). */
export const FAKE_NFTABLES_NODEPORT_ADDRESSES: readonly string[] = [`${TEST_NODE_IP}/32`, `${TEST_NODE_IPV6}/128`];

/**
 * An iptables scenario config (overrides over FAKE_IPTABLES_CONFIG) as the NftablesConfig of
 * kube-proxy's nftables NewFakeProxier: masqueradeMark "0x4000", clusterCIDRs "10.0.0.0/8" (the
 * LocalTrafficDetector), nodeIP and interface addresses of the family, and nodePortAddresses
 * FAKE_NFTABLES_NODEPORT_ADDRESSES unless the scenario sets them. localhostNodePorts,
 * randomFully and conntrackTCPLiberal have no nftables counterpart (no localhost NodePorts;
 * masquerade is always fully-random).
 */
export function nftablesConfigFrom(over: Partial<IptablesConfig> = {}): NftablesConfig {
  const ipt = { ...FAKE_IPTABLES_CONFIG, ...over };
  return {
    family: ipt.family,
    nodeIP: ipt.nodeIP,
    localAddresses: ipt.localAddresses,
    clusterCIDRs: ipt.clusterCIDRs,
    masqueradeAll: ipt.masqueradeAll,
    masqueradeMark: ipt.masqueradeMark,
    nodePortAddresses: over.nodePortAddresses ?? FAKE_NFTABLES_NODEPORT_ADDRESSES,
  };
}

/** nftablesConfigFrom({}): the same as nftables-fake.ts's FAKE_NFTABLES_CONFIG. */
const FAKE_CONFIG: NftablesConfig = Object.freeze(nftablesConfigFrom());

// ---- scenarios --------------------------------------------------------------------------------

export interface NftFlowScenario {
  /** The nftables test (and subcase); with a flow's name it identifies the flow. */
  id: string;
  /** describe names, then the it name. */
  path: readonly string[];
  config: NftablesConfig;
  node: Partial<NodeFacts>;
  /** What `fib … type local` matches: kube-proxy's testNodeIPs. */
  nodeIPs: readonly string[];
  /** Objects applied before the first step (the ServiceCIDR). */
  setup: Json[];
  steps: FlowStep[];
  /** Flows that are ours, not kube-proxy's (by name); every other flow is a Go nftables one. */
  ours?: ReadonlySet<string>;
  /** Where the real hook order (the tracer's 'netfilter' path) gives another result than
   *  kube-proxy's walk, by flow name. */
  netfilterOverrides?: Readonly<Record<string, Partial<PacketFlowTest>>>;
}

const POD = '10.0.0.2';
const EXT = TEST_EXTERNAL_CLIENT;

function iptablesScenario(id: string): FlowScenario {
  const s = FLOW_SCENARIOS.find((x) => x.id === id);
  if (!s) throw new Error(`no iptables flow scenario ${id}`);
  return s;
}

/** nftables expectations differing from the iptables scenario's, by flowId: a changed flow
 *  (fields to replace), or null for a flow the nftables test does not have. */
export const NFTABLES_FLOW_OVERRIDES: Readonly<Record<string, Partial<PacketFlowTest> | null>> = {
  // cluster-ips-check: a ClusterIP's undefined ports are rejected (iptables lets them through).
  'TestClusterIPGeneral / TCP-only port does not match UDP traffic': { output: 'REJECT' },
  "TestClusterIPGeneral / svc1 does not accept svc2's ports": { output: 'REJECT' },
  // No localhost NodePorts in nftables mode: the nftables test has none of these flows.
  ...Object.fromEntries(['base', 'no LocalTrafficDetector', 'masqueradeAll', 'masqueradeAll, no LocalTrafficDetector'].flatMap((v) =>
    ['localhost to NodePort', 'localhost to NodePort with eTP:Local', 'localhost to NodePort with iTP:Local']
      .map((f) => [`TestInternalExternalMasquerade/${v} / ${f}`, null]))),
};

/** Flows the nftables test adds to an iptables scenario's (last step). */
const NFTABLES_EXTRA_FLOWS: Readonly<Record<string, PacketFlowTest[]>> = {
  // cluster-ips-check: traffic to an unallocated address of the service CIDR is dropped.
  TestClusterIPGeneral: [{ name: 'packet to unallocated cluster ip', sourceIP: '10.180.0.2', destIP: '172.30.0.50', destPort: 80, output: 'DROP' }],
};

/** An iptables scenario's objects and flows, with the nftables overrides applied. */
function fromIptables(id: string, path: readonly string[]): NftFlowScenario {
  const s = iptablesScenario(id);
  const used = new Set<string>();
  const steps = s.steps.map((step, i): FlowStep => {
    const flows = step.flows.flatMap((f) => {
      const key = flowId(s, f);
      if (!(key in NFTABLES_FLOW_OVERRIDES)) return [f];
      used.add(key);
      const o = NFTABLES_FLOW_OVERRIDES[key];
      return o === null ? [] : [{ ...f, ...o }];
    });
    if (i === s.steps.length - 1) flows.push(...(NFTABLES_EXTRA_FLOWS[id] ?? []));
    return { ...step, flows };
  });
  for (const key of Object.keys(NFTABLES_FLOW_OVERRIDES)) {
    if (key.startsWith(`${id} / `) && !used.has(key)) throw new Error(`override ${key} matches no flow`);
  }
  return { id, path, config: nftablesConfigFrom(s.config), node: s.node, nodeIPs: TEST_NODE_IPS, setup: [serviceCIDRObject()], steps };
}

/** TestNodePorts (nftables): nodePortAddresses (the fake's, or explicit) x IPv4/IPv6. */
function nodePortsScenarios(): NftFlowScenario[] {
  const cases = [
    { name: 'ipv4', v6: false, nodePortAddresses: null as string[] | null, allowAltNodeIP: false },
    { name: 'ipv4, multiple nodeport-addresses', v6: false, nodePortAddresses: ['192.168.0.0/24', '192.168.1.0/24', '2001:db8::/64'], allowAltNodeIP: true },
    { name: 'ipv6', v6: true, nodePortAddresses: null, allowAltNodeIP: false },
    { name: 'ipv6, multiple nodeport-addresses', v6: true, nodePortAddresses: ['192.168.0.0/24', '192.168.1.0/24', '2001:db8::/64', '2001:db8:1::2/128'], allowAltNodeIP: true },
  ];
  return cases.map((tc) => {
    const [svcIP, epIP1, epIP2, nodeIP, podIP, externalClientIP, altNodeIP] = tc.v6
      ? ['fd00:172:30::41', 'fd00:10:180::1', 'fd00:10:180::2:1', TEST_NODE_IPV6, 'fd00:10::2', '2600:5200::1', TEST_NODE_IPV6_ALT]
      : ['172.30.0.41', '10.180.0.1', '10.180.2.1', TEST_NODE_IP, POD, EXT, TEST_NODE_IP_ALT];
    const familyConfig: Partial<IptablesConfig> = tc.v6
      ? { family: 'IPv6', nodeIP: TEST_NODE_IPV6, localAddresses: ['::1', TEST_NODE_IPV6, TEST_NODE_IPV6_ALT], clusterCIDRs: ['fd00:10::/64'] }
      : { localAddresses: ['127.0.0.1', TEST_NODE_IP, TEST_NODE_IP_ALT, TEST_EXTERNAL_IP] };
    const hp = (ip: string) => (tc.v6 ? `[${ip}]:80` : `${ip}:80`);
    const output = `${hp(epIP1!)}, ${hp(epIP2!)}`;
    return {
      id: `TestNodePorts/${tc.name}`,
      path: ['TestNodePorts (nodePortAddresses x IPv4/IPv6; no localhost NodePorts)', tc.name],
      config: nftablesConfigFrom({ ...familyConfig, ...(tc.nodePortAddresses ? { nodePortAddresses: tc.nodePortAddresses } : {}) }),
      node: { ipFamilies: [tc.v6 ? 'IPv6' : 'IPv4'] },
      nodeIPs: TEST_NODE_IPS,
      setup: [serviceCIDRObject()],
      steps: [{
        apply: [
          service('ns1', 'svc1', { type: 'NodePort', clusterIP: svcIP, ports: [tcp('p80', 80, { nodePort: 3001 })] }),
          slice('ns1', 'svc1', [epIP1!, { ip: epIP2!, node: TEST_HOSTNAME }], [tcp('p80', 80)], tc.v6 ? 'IPv6' : 'IPv4'),
        ],
        flows: [
          { name: 'pod to cluster IP', sourceIP: podIP!, destIP: svcIP!, destPort: 80, output, masq: false },
          { name: 'external to nodePort', sourceIP: externalClientIP!, destIP: nodeIP!, destPort: 3001, output, masq: true },
          { name: 'node to nodePort', sourceIP: nodeIP!, destIP: nodeIP!, destPort: 3001, output, masq: true },
          tc.allowAltNodeIP
            ? { name: 'external to nodePort on secondary IP', sourceIP: externalClientIP!, destIP: altNodeIP!, destPort: 3001, output, masq: true }
            : { name: 'secondary nodeIP ignores NodePorts', sourceIP: externalClientIP!, destIP: altNodeIP!, destPort: 3001, output: '' },
        ],
      }],
    } satisfies NftFlowScenario;
  });
}

/** TestInternalTrafficPolicy (nftables): the Service and slice of the iptables E2E test, its own
 *  case names. */
function internalTrafficPolicyScenarios(): NftFlowScenario[] {
  const cases: { name: string; itp: 'Cluster' | 'Local'; nodes: string[]; flow: Pick<PacketFlowTest, 'name' | 'output' | 'masq'> }[] = [
    { name: 'internalTrafficPolicy is cluster', itp: 'Cluster', nodes: [TEST_HOSTNAME, 'host1', 'host2'],
      flow: { name: 'pod to ClusterIP hits all endpoints', output: '10.0.1.1:80, 10.0.1.2:80, 10.0.1.3:80', masq: false } },
    { name: 'internalTrafficPolicy is local and there is one local endpoint', itp: 'Local', nodes: [TEST_HOSTNAME, 'host1', 'host2'],
      flow: { name: 'pod to ClusterIP hits only local endpoint', output: '10.0.1.1:80', masq: false } },
    { name: 'internalTrafficPolicy is local and there are multiple local endpoints', itp: 'Local', nodes: [TEST_HOSTNAME, TEST_HOSTNAME, 'host2'],
      flow: { name: 'pod to ClusterIP hits all local endpoints', output: '10.0.1.1:80, 10.0.1.2:80', masq: false } },
    { name: 'internalTrafficPolicy is local and there are no local endpoints', itp: 'Local', nodes: ['host0', 'host1', 'host2'],
      flow: { name: 'no endpoints', output: 'DROP' } },
  ];
  const pkt = { sourceIP: POD, destIP: '172.30.1.1', destPort: 80 };
  return cases.map((tc) => {
    const eps = internalTrafficPolicySlice(tc.nodes);
    return {
      id: `TestInternalTrafficPolicy/${tc.name}`, path: ['TestInternalTrafficPolicy', tc.name],
      config: FAKE_CONFIG, node: {}, nodeIPs: TEST_NODE_IPS, setup: [serviceCIDRObject()],
      steps: [
        { apply: [internalTrafficPolicyService(tc.itp), eps], flows: [{ ...pkt, ...tc.flow }] },
        { remove: [eps], flows: [{ ...pkt, name: 'endpoints deleted', output: 'REJECT' }] },
      ],
    };
  });
}

/** TestTerminatingEndpointsTrafficPolicyLocal / ...Cluster (nftables): the iptables scenarios'
 *  EndpointSlices, but the nftables tests' Service has no session affinity. */
function terminatingEndpointsScenarios(): NftFlowScenario[] {
  const svc = (policy: 'Local' | 'Cluster') => service('ns1', 'svc1', {
    clusterIP: '172.30.1.1', type: 'LoadBalancer', externalTrafficPolicy: policy,
    ports: [tcp('', 80, { targetPort: 80 })], healthCheckNodePort: 30000,
  }, ['1.2.3.4']);
  const toClusterIP = { sourceIP: POD, destIP: '172.30.1.1', destPort: 80 };
  const toLB = { sourceIP: EXT, destIP: '1.2.3.4', destPort: 80 };
  type Case = { name: string; clusterIP: [string, string, boolean]; lb: [string, string, boolean] };
  const tests: { test: string; policy: 'Local' | 'Cluster'; cases: Case[] }[] = [
    { test: 'TestTerminatingEndpointsTrafficPolicyLocal', policy: 'Local', cases: [
      { name: 'ready endpoints exist', clusterIP: ['pod to clusterIP', '10.0.1.1:80, 10.0.1.2:80, 10.0.1.5:80', false], lb: ['external to LB', '10.0.1.1:80, 10.0.1.2:80', false] },
      { name: 'only terminating endpoints exist', clusterIP: ['pod to clusterIP', '10.0.1.5:80', false], lb: ['external to LB', '10.0.1.2:80, 10.0.1.3:80', false] },
      { name: 'terminating endpoints on remote node', clusterIP: ['pod to clusterIP', '10.0.1.5:80', false], lb: ['external to LB, no locally-usable endpoints', 'DROP', false] },
      { name: 'no usable endpoints on any node', clusterIP: ['pod to clusterIP, no usable endpoints', 'REJECT', false], lb: ['external to LB, no usable endpoints', 'REJECT', false] },
    ] },
    { test: 'TestTerminatingEndpointsTrafficPolicyCluster', policy: 'Cluster', cases: [
      { name: 'ready endpoints exist', clusterIP: ['pod to clusterIP', '10.0.1.1:80, 10.0.1.2:80, 10.0.1.5:80', false], lb: ['external to LB', '10.0.1.1:80, 10.0.1.2:80, 10.0.1.5:80', true] },
      { name: 'only terminating endpoints exist', clusterIP: ['pod to clusterIP', '10.0.1.2:80, 10.0.1.3:80, 10.0.1.5:80', false], lb: ['external to LB', '10.0.1.2:80, 10.0.1.3:80, 10.0.1.5:80', true] },
      { name: 'terminating endpoints on remote node', clusterIP: ['pod to clusterIP', '10.0.1.5:80', false], lb: ['external to LB', '10.0.1.5:80', true] },
      { name: 'no usable endpoints on any node', clusterIP: ['pod to clusterIP', 'REJECT', false], lb: ['external to LB', 'REJECT', false] },
    ] },
  ];
  return tests.flatMap(({ test, policy, cases }) => cases.map((tc) => {
    // The EndpointSlice of the iptables scenario (same endpoints, same conditions).
    const eps = iptablesScenario(`${test}/${tc.name}`).steps[0]!.apply![1]!;
    return {
      id: `${test}/${tc.name}`, path: [test, tc.name], config: FAKE_CONFIG, node: {}, nodeIPs: TEST_NODE_IPS, setup: [serviceCIDRObject()],
      steps: [
        {
          apply: [svc(policy), eps],
          flows: [
            { ...toClusterIP, name: tc.clusterIP[0], output: tc.clusterIP[1], masq: tc.clusterIP[2] },
            { ...toLB, name: tc.lb[0], output: tc.lb[1], masq: tc.lb[2] },
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
    } satisfies NftFlowScenario;
  }));
}

/** Not a kube-proxy flow table: TestOverallNFTablesRules' Services (with svc5's session affinity
 *  and source ranges) traced like iptables' TestTracePackets. The same cases run against the
 *  static kube-proxy ruleset in the tracer's self-test. */
export const OVERALL_TRACE_CASES: PacketFlowTest[] = [
  { name: 'no match', sourceIP: POD, destIP: '10.0.0.3', destPort: 80, output: '' },
  { name: 'single endpoint', sourceIP: POD, destIP: '172.30.0.41', destPort: 80, output: '10.180.0.1:80' },
  { name: 'multiple endpoints', sourceIP: POD, destIP: '172.30.0.44', destPort: 80, output: '10.180.0.4:80, 10.180.0.5:80' },
  { name: 'local source to eTP:Local external IP, masqueraded', sourceIP: TEST_NODE_IP, destIP: '192.168.99.22', destPort: 80, output: '10.180.0.2:80', masq: true },
  { name: 'external to eTP:Local external IP without local endpoints', sourceIP: EXT, destIP: '192.168.99.22', destPort: 80, output: 'DROP' },
  { name: 'external to eTP:Local NodePort without local endpoints', sourceIP: EXT, destIP: TEST_NODE_IP, destPort: 3001, output: 'DROP' },
  { name: 'no health check NodePort rule in nftables mode', sourceIP: TEST_NODE_IP, destIP: TEST_NODE_IP, destPort: 30000, output: '' },
  { name: 'no endpoints', sourceIP: POD, destIP: '172.30.0.46', destPort: 80, output: 'REJECT' },
  { name: 'allowed source to firewalled LB with session affinity', sourceIP: EXT, destIP: '5.6.7.8', destPort: 80, output: '10.180.0.3:80', masq: true },
  { name: 'blocked source to firewalled LB', sourceIP: '203.0.113.130', destIP: '5.6.7.8', destPort: 80, output: 'DROP' },
  { name: 'external to NodePort', sourceIP: EXT, destIP: TEST_NODE_IP, destPort: 3003, output: '10.180.0.3:80', masq: true },
  { name: 'NodePort on a node IP outside nodePortAddresses', sourceIP: EXT, destIP: TEST_NODE_IP_ALT, destPort: 3003, output: '' },
  { name: 'undefined port of a ClusterIP', sourceIP: POD, destIP: '172.30.0.41', destPort: 443, output: 'REJECT' },
  { name: 'unallocated ClusterIP', sourceIP: POD, destIP: '172.30.0.50', destPort: 80, output: 'DROP' },
  { name: 'hairpin', sourceIP: '10.180.0.4', destIP: '172.30.0.44', destPort: 80, output: '10.180.0.4:80, 10.180.0.5:80', masq: true },
];

/** OVERALL_TRACE_CASES along the real hooks. At b0f823e6 filter-output (priority dstnat-10, before
 *  DNAT) jumps to service-endpoints-check, so a host-originated connection to an eTP:Local
 *  external IP without local endpoints hits its `drop` element before nat-output could
 *  short-circuit it ("fib saddr type local goto service-…"); kube-proxy's walk goes through
 *  prerouting and never sees it. (Later kube-proxy runs service-endpoints-check from
 *  filter-output at priority 0, after DNAT.) */
export const OVERALL_NETFILTER_OVERRIDES: Readonly<Record<string, Partial<PacketFlowTest>>> = {
  'local source to eTP:Local external IP, masqueraded': { output: 'DROP', masq: false },
};

const overallScenario = (): NftFlowScenario => ({
  id: 'TestOverallNFTablesRules (ours)', path: ["TestOverallNFTablesRules' Services (flows ours, TestTracePackets-style)"],
  config: FAKE_CONFIG, node: {}, nodeIPs: TEST_NODE_IPS, setup: [serviceCIDRObject()],
  steps: [{ apply: overallObjects(), flows: OVERALL_TRACE_CASES }],
  ours: new Set(OVERALL_TRACE_CASES.map((f) => f.name)),
  netfilterOverrides: OVERALL_NETFILTER_OVERRIDES,
});

/** Every nftables scenario, in the order nftables-flow.test.ts reports them. */
export const NFT_FLOW_SCENARIOS: readonly NftFlowScenario[] = [
  overallScenario(),
  fromIptables('TestNoEndpointsReject', ['TestNoEndpointsReject']),
  fromIptables('TestClusterIPGeneral', ['TestClusterIPGeneral (cluster-ips-check rejects undefined ports, drops unallocated ClusterIPs)']),
  fromIptables('TestLoadBalancer', ['TestLoadBalancer (firewall-ips / loadBalancerSourceRanges)']),
  ...nodePortsScenarios(),
  fromIptables('TestExternalTrafficPolicyLocal', ['TestExternalTrafficPolicyLocal']),
  fromIptables('TestExternalTrafficPolicyCluster', ['TestExternalTrafficPolicyCluster']),
  ...internalTrafficPolicyScenarios(),
  ...terminatingEndpointsScenarios(),
  ...['base', 'no LocalTrafficDetector', 'masqueradeAll', 'masqueradeAll, no LocalTrafficDetector'].map((v) =>
    fromIptables(`TestInternalExternalMasquerade/${v}`, ['TestInternalExternalMasquerade (no localhost NodePort flows)', v])),
];

export const nftFlowId = (s: NftFlowScenario, f: PacketFlowTest): string => `${s.id} / ${f.name}`;
