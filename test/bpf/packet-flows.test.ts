// kube-proxy's packet-flow tables (test/unit/helpers/packet-flow-tables.ts, the ones
// test/unit/iptables-flow.test.ts traces through renderIptables) against the eBPF programs:
// maps programmed by the control plane's own path, first packets run with BPF_PROG_TEST_RUN
// (see flow-harness.ts). A ratchet: every flow agrees with kube-proxy, or is listed below with
// why and what it does today, so that any change of behaviour, better or worse, fails here
// until the tables are updated.
// Needs root; under CI=true a non-root run fails instead of skipping.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FLOW_SCENARIOS } from '../unit/helpers/packet-flow-tables.js';
import { ensureBpffs } from './fixture.js';
import { runScenario, type FlowResult } from './flow-harness.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot && process.env.CI === 'true') {
  test('packet flows', () => assert.fail('CI=true requires root for BPF_PROG_TEST_RUN'));
}

interface Known { reason: string; observed: string }

/** Entries that share a reason: flow id → what the eBPF programs do today. */
const withReason = (reason: string, observed: Record<string, string>): Record<string, Known> =>
  Object.fromEntries(Object.entries(observed).map(([id, o]) => [id, { reason, observed: o }]));

const KEEPS_CLIENT = 'externalTrafficPolicy=Cluster external address (NodePort, externalIP, LB IP) whose chosen endpoint is '
  + 'local: the client address is kept where kube-proxy masquerades (masqueradeLocalEndpoints switches to kube-proxy\'s way)';

const IPTABLES_NOT_NFTABLES = 'a packet to a ClusterIP on a port no Service serves: kube-proxy\'s nftables mode rejects it, '
  + 'its iptables mode and kube-xdp let it through';

/** Flows where kube-xdp differs from kube-proxy on purpose. Observed endpoint sets are sampled
 * (SENDS first packets); a local endpoint shows without " masq". */
const DELIBERATE: Record<string, Known> = {
  ...withReason(KEEPS_CLIENT, {
    'TestNodePorts/ipv4, localhost-nodeports enabled / external to nodePort': '10.180.0.1:80 masq, 10.180.2.1:80',
    'TestNodePorts/ipv4, localhost-nodeports enabled / external to nodePort on secondary IP': '10.180.0.1:80 masq, 10.180.2.1:80',
    'TestNodePorts/ipv4, localhost-nodeports disabled / external to nodePort': '10.180.0.1:80 masq, 10.180.2.1:80',
    'TestNodePorts/ipv4, localhost-nodeports disabled / external to nodePort on secondary IP': '10.180.0.1:80 masq, 10.180.2.1:80',
    'TestNodePorts/ipv4, localhost-nodeports disabled, localhost in nodeport-addresses / external to nodePort': '10.180.0.1:80 masq, 10.180.2.1:80',
    'TestNodePorts/ipv4, localhost-nodeports enabled, multiple nodeport-addresses / external to nodePort': '10.180.0.1:80 masq, 10.180.2.1:80',
    'TestNodePorts/ipv4, localhost-nodeports enabled, multiple nodeport-addresses / external to nodePort on secondary IP': '10.180.0.1:80 masq, 10.180.2.1:80',
    'TestNodePorts/ipv6, localhost-nodeports enabled / external to nodePort': '[fd00:10:180::1]:80 masq, [fd00:10:180::2:1]:80',
    'TestNodePorts/ipv6, localhost-nodeports enabled / external to nodePort on secondary IP': '[fd00:10:180::1]:80 masq, [fd00:10:180::2:1]:80',
    'TestNodePorts/ipv6, localhost-nodeports disabled / external to nodePort': '[fd00:10:180::1]:80 masq, [fd00:10:180::2:1]:80',
    'TestNodePorts/ipv6, localhost-nodeports disabled / external to nodePort on secondary IP': '[fd00:10:180::1]:80 masq, [fd00:10:180::2:1]:80',
    'TestNodePorts/ipv6, localhost-nodeports disabled, multiple nodeport-addresses / external to nodePort': '[fd00:10:180::1]:80 masq, [fd00:10:180::2:1]:80',
    'TestExternalTrafficPolicyCluster / pod to external IP hits both endpoints, masqueraded': '10.180.0.1:80 masq, 10.180.2.1:80',
    'TestExternalTrafficPolicyCluster / external to external IP hits both endpoints, masqueraded': '10.180.0.1:80 masq, 10.180.2.1:80',
    'TestExternalTrafficPolicyCluster / pod to LB IP hits both endpoints, masqueraded': '10.180.0.1:80 masq, 10.180.2.1:80',
    'TestExternalTrafficPolicyCluster / external to LB IP hits both endpoints, masqueraded': '10.180.0.1:80 masq, 10.180.2.1:80',
    'TestExternalTrafficPolicyCluster / pod to NodePort hits both endpoints, masqueraded': '10.180.0.1:80 masq, 10.180.2.1:80',
    'TestExternalTrafficPolicyCluster / external to NodePort hits both endpoints, masqueraded': '10.180.0.1:80 masq, 10.180.2.1:80',
    'TestNonLocalExternalIPs / external to external IP': '10.180.0.1:80 masq, 10.180.2.1:80',
    'TestTerminatingEndpointsTrafficPolicyCluster/ready endpoints exist / external to LB': '10.0.1.1:80, 10.0.1.2:80, 10.0.1.5:80 masq',
    'TestTerminatingEndpointsTrafficPolicyCluster/only terminating endpoints exist / external to LB': '10.0.1.2:80, 10.0.1.3:80, 10.0.1.5:80 masq',
    'TestInternalExternalMasquerade/base / pod to NodePort': '10.180.0.1:80, 10.180.1.1:80 masq',
    'TestInternalExternalMasquerade/base / pod to LB': '10.180.0.1:80, 10.180.1.1:80 masq',
    'TestInternalExternalMasquerade/base / external to NodePort': '10.180.0.1:80, 10.180.1.1:80 masq',
    'TestInternalExternalMasquerade/base / external to LB': '10.180.0.1:80, 10.180.1.1:80 masq',
    'TestInternalExternalMasquerade/base / pod to NodePort with iTP:Local': '10.180.0.3:80, 10.180.1.3:80 masq',
    'TestInternalExternalMasquerade/base / pod to LB with iTP:Local': '10.180.0.3:80, 10.180.1.3:80 masq',
    'TestInternalExternalMasquerade/base / external to NodePort with iTP:Local': '10.180.0.3:80, 10.180.1.3:80 masq',
    'TestInternalExternalMasquerade/base / external to LB with iTP:Local': '10.180.0.3:80, 10.180.1.3:80 masq',
    'TestInternalExternalMasquerade/no LocalTrafficDetector / pod to NodePort': '10.180.0.1:80, 10.180.1.1:80 masq',
    'TestInternalExternalMasquerade/no LocalTrafficDetector / pod to LB': '10.180.0.1:80, 10.180.1.1:80 masq',
    'TestInternalExternalMasquerade/no LocalTrafficDetector / external to NodePort': '10.180.0.1:80, 10.180.1.1:80 masq',
    'TestInternalExternalMasquerade/no LocalTrafficDetector / external to LB': '10.180.0.1:80, 10.180.1.1:80 masq',
    'TestInternalExternalMasquerade/no LocalTrafficDetector / pod to NodePort with iTP:Local': '10.180.0.3:80, 10.180.1.3:80 masq',
    'TestInternalExternalMasquerade/no LocalTrafficDetector / pod to LB with iTP:Local': '10.180.0.3:80, 10.180.1.3:80 masq',
    'TestInternalExternalMasquerade/no LocalTrafficDetector / external to NodePort with iTP:Local': '10.180.0.3:80, 10.180.1.3:80 masq',
    'TestInternalExternalMasquerade/no LocalTrafficDetector / external to LB with iTP:Local': '10.180.0.3:80, 10.180.1.3:80 masq',
    'TestInternalExternalMasquerade/masqueradeAll / pod to NodePort': '10.180.0.1:80, 10.180.1.1:80 masq',
    'TestInternalExternalMasquerade/masqueradeAll / pod to LB': '10.180.0.1:80, 10.180.1.1:80 masq',
    'TestInternalExternalMasquerade/masqueradeAll / external to NodePort': '10.180.0.1:80, 10.180.1.1:80 masq',
    'TestInternalExternalMasquerade/masqueradeAll / external to LB': '10.180.0.1:80, 10.180.1.1:80 masq',
    'TestInternalExternalMasquerade/masqueradeAll / pod to NodePort with iTP:Local': '10.180.0.3:80, 10.180.1.3:80 masq',
    'TestInternalExternalMasquerade/masqueradeAll / pod to LB with iTP:Local': '10.180.0.3:80, 10.180.1.3:80 masq',
    'TestInternalExternalMasquerade/masqueradeAll / external to NodePort with iTP:Local': '10.180.0.3:80, 10.180.1.3:80 masq',
    'TestInternalExternalMasquerade/masqueradeAll / external to LB with iTP:Local': '10.180.0.3:80, 10.180.1.3:80 masq',
    'TestInternalExternalMasquerade/masqueradeAll, no LocalTrafficDetector / pod to NodePort': '10.180.0.1:80, 10.180.1.1:80 masq',
    'TestInternalExternalMasquerade/masqueradeAll, no LocalTrafficDetector / pod to LB': '10.180.0.1:80, 10.180.1.1:80 masq',
    'TestInternalExternalMasquerade/masqueradeAll, no LocalTrafficDetector / external to NodePort': '10.180.0.1:80, 10.180.1.1:80 masq',
    'TestInternalExternalMasquerade/masqueradeAll, no LocalTrafficDetector / external to LB': '10.180.0.1:80, 10.180.1.1:80 masq',
    'TestInternalExternalMasquerade/masqueradeAll, no LocalTrafficDetector / pod to NodePort with iTP:Local': '10.180.0.3:80, 10.180.1.3:80 masq',
    'TestInternalExternalMasquerade/masqueradeAll, no LocalTrafficDetector / pod to LB with iTP:Local': '10.180.0.3:80, 10.180.1.3:80 masq',
    'TestInternalExternalMasquerade/masqueradeAll, no LocalTrafficDetector / external to NodePort with iTP:Local': '10.180.0.3:80, 10.180.1.3:80 masq',
    'TestInternalExternalMasquerade/masqueradeAll, no LocalTrafficDetector / external to LB with iTP:Local': '10.180.0.3:80, 10.180.1.3:80 masq',
  }),
  // kube-proxy's nftables mode rejects them (its cluster-ips-check chain, which needs the service
  // CIDR); its iptables mode lets them through, and so does kube-xdp (same packets in
  // TestClusterIPGeneral).
  ...withReason(IPTABLES_NOT_NFTABLES, {
    'nftables TestClusterIPGeneral / TCP-only port does not match UDP traffic': 'pass',
    "nftables TestClusterIPGeneral / svc1 does not accept svc2's ports": 'pass',
  }),
};

/** Flows that differ until an issue-11 item lands: flow id → the item, and what they do today
 * (none left: IPv6 was the last). */
const NOT_YET: Record<string, Known> = {};

/** What is wrong with one flow's result against the tables, or null. */
function ratchetProblem(r: FlowResult): string | null {
  const deliberate = DELIBERATE[r.id];
  const notYet = NOT_YET[r.id];
  const known = deliberate ?? notYet;
  const table = deliberate ? 'DELIBERATE' : 'NOT_YET';
  if (deliberate && notYet) return `${r.id}: listed in both DELIBERATE and NOT_YET`;
  if (!known) return r.agrees ? null : `${r.id}: kube-proxy ${JSON.stringify(r.expected)}, eBPF (${r.client}) ${JSON.stringify(r.observed)}`;
  if (r.agrees) return `${r.id}: now agrees with kube-proxy (${JSON.stringify(r.observed)}): remove it from ${table}`;
  if (r.observed !== known.observed) return `${r.id}: ${table} records ${JSON.stringify(known.observed)}, eBPF now ${JSON.stringify(r.observed)}`;
  return null;
}

describe('kube-proxy packet flows through the eBPF programs', { skip: isRoot ? false : 'needs root (BPF_PROG_TEST_RUN, bpffs)' }, () => {
  const results = new Map<string, FlowResult>();

  for (const s of FLOW_SCENARIOS) {
    test(s.id, (t) => {
      ensureBpffs();
      const problems: string[] = [];
      const run = runScenario(s, { masqueradeLocalEndpoints: false });
      for (const p of run.problems) t.diagnostic(`not programmed: ${p}`);
      for (const r of run.results) {
        assert.ok(!results.has(r.id), `flow id ${r.id} is not unique`);
        results.set(r.id, r);
        const p = ratchetProblem(r);
        if (p) problems.push(p);
      }
      assert.deepEqual(problems, []);
    });
  }

  test('every DELIBERATE / NOT_YET entry names a flow that ran; summary', (t) => {
    const stale = [...Object.keys(DELIBERATE), ...Object.keys(NOT_YET)].filter((id) => !results.get(id));
    const all = [...results.values()];
    t.diagnostic(`scenarios ${FLOW_SCENARIOS.length}, flows ${all.length} (IPv6 ${all.filter((r) => r.family === 6).length}, host clients ${all.filter((r) => r.client === 'host').length})`);
    const differ = all.filter((r) => !r.agrees);
    t.diagnostic(`agree ${all.length - differ.length} (host ${all.filter((r) => r.client === 'host' && r.agrees).length}), deliberate ${differ.filter((r) => DELIBERATE[r.id]).length}, not yet ${differ.filter((r) => NOT_YET[r.id]).length}`);
    const byReason = new Map<string, number>();
    for (const r of differ) if (NOT_YET[r.id]) byReason.set(NOT_YET[r.id]!.reason, (byReason.get(NOT_YET[r.id]!.reason) ?? 0) + 1);
    for (const [reason, n] of [...byReason].sort((a, b) => b[1] - a[1])) t.diagnostic(`  not yet, ${reason}: ${n}`);
    assert.deepEqual(stale, [], 'table entries whose flow did not run (renamed, removed, or its scenario failed)');
  });

  test('with masqueradeLocalEndpoints on, the DELIBERATE flows agree with kube-proxy (and no other flow regresses)', () => {
      ensureBpffs();
      const problems: string[] = [];
      for (const s of FLOW_SCENARIOS) {
        for (const r of runScenario(s, { masqueradeLocalEndpoints: true }).results) {
          if (r.agrees === false && !NOT_YET[r.id] && DELIBERATE[r.id]?.reason !== IPTABLES_NOT_NFTABLES) problems.push(`${r.id}: kube-proxy ${JSON.stringify(r.expected)}, eBPF ${JSON.stringify(r.observed)}`);
        }
      }
      assert.deepEqual(problems, []);
    });
});
