// renderIptables against kube-proxy's own expectations: kubernetes pkg/proxy/iptables/proxier_test.go
// (~v1.29/v1.30: KUBE-PROXY-FIREWALL, KUBE-EXT chains, testHostname "test-hostname", no nfacct in
// the fake). Each it() names the Go test it reproduces. "verbatim" blocks are kube-proxy's expected
// text; "derived" blocks are for Go tests that only trace packets through the rules: they were
// written from proxier.go's syncProxyRules for the same inputs, with chain names computed by
// portProtoHash (checked against the verbatim names in the chain-name test).
// Inputs go through the real model (Kubernetes JSON → ChangeTracker → ProxyState).
// Reference read: the stored copy ashierj/superdemo@c1cf94e91feedf4d7b64e64bcdefc7f21f8224f3 of
// kubernetes (between v1.29 and v1.30; its fake sets no nfacct counters), cross-checked with
// aroradaman/kubernetes@4177b600d4b97a67b765a18ddeeb295ef757b212 (v1.30, which adds nfacct).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { masqueradeMarkFor, type IptablesConfig } from '../../src/dataplane/iptables/config.js';
import { probability } from '../../src/dataplane/iptables/go-format.js';
import { renderIptables, type IptablesRender, type RenderOptions } from '../../src/dataplane/iptables/render.js';
import type { ProxyState } from '../../src/model/types.js';
import { objects, type Json } from './helpers/kube-objects.js';
import {
  FAKE_IPTABLES_CONFIG, TEST_HOSTNAME, clusterIPGeneralObjects, formatIptablesDump, internalExternalMasqueradeObjects,
  internalTrafficPolicyService, internalTrafficPolicySlice, iptablesChainRules, loadBalancerObjects, noEndpointsRejectObjects,
  overallObjects, parseIptablesDump, ready, service, servingTerminating, slice, sortIptablesRules, tcp, terminating, type Ep,
} from './helpers/kube-proxy-fake.js';

// ---- helpers -------------------------------------------------------------------------------

/** lithammer/dedent + strings.TrimLeft(" \t\n"), as kube-proxy writes its expected blocks. */
function dedent(s: string): string {
  const lines = s.split('\n');
  const margin = Math.min(...lines.filter((l) => l.trim() !== '').map((l) => /^[ \t]*/.exec(l)![0].length));
  return lines.map((l) => (l.trim() === '' ? '' : l.slice(margin))).join('\n').replace(/^[ \t\n]+/, '');
}

const cfg = (o: Partial<IptablesConfig> = {}): IptablesConfig => ({ ...FAKE_IPTABLES_CONFIG, ...o });
const render = (state: ProxyState, c: Partial<IptablesConfig> = {}, opts: RenderOptions = {}) => renderIptables(state, cfg(c), opts);

/** kube-proxy's checkIPTablesRuleJumps, run on our derived blocks: every jump and "-A" targets a
 *  created chain, no jump to an empty chain, no created chain left unused. */
function checkRuleJumps(text: string): void {
  const builtin = new Set(['ACCEPT', 'REJECT', 'DROP', 'MARK', 'RETURN', 'DNAT', 'SNAT', 'MASQUERADE']);
  const topLevel = ['KUBE-SERVICES', 'KUBE-EXTERNAL-SERVICES', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING', 'KUBE-FORWARD', 'KUBE-MARK-MASQ', 'KUBE-PROXY-FIREWALL', 'KUBE-FIREWALL'];
  for (const t of parseIptablesDump(text)) {
    const created = new Set(t.chains.filter((c) => !c.deleted).map((c) => c.name));
    const filled = new Set(t.chains.filter((c) => c.rules.length > 0).map((c) => c.name));
    const jumped = new Set(t.chains.flatMap((c) => c.rules.map((r) => /-j ([^ ]*)/.exec(r.raw)?.[1] ?? '')).filter((j) => j !== '' && !builtin.has(j)));
    const missing = [...jumped, ...filled].filter((c) => !created.has(c));
    assert.deepEqual(missing, [], `some chains in ${t.name} are used but were not created`);
    const empty = [...jumped].filter((c) => !filled.has(c) && c !== 'KUBE-NODEPORTS');
    assert.deepEqual(empty, [], `some chains in ${t.name} are jumped to but have no rules`);
    const extra = [...created].filter((c) => !jumped.has(c) && !topLevel.includes(c));
    assert.deepEqual(extra, [], `some chains in ${t.name} are created but not used`);
  }
}

/** assertIPTablesRulesEqual: the expected block (already sorted) against sortIPTablesRules(result).
 *  `normalize` is applied to both sides where kube-proxy's own order is not deterministic. */
function assertRules(r: IptablesRender, expected: string, o: { consistency?: boolean; normalize?: (s: string) => string } = {}): void {
  const norm = o.normalize ?? ((s: string) => s);
  const want = dedent(expected);
  assert.equal(sortIptablesRules(want), want, 'test data: expected block is not in sortIPTablesRules form');
  if (o.consistency ?? true) checkRuleJumps(want);
  assert.equal(norm(sortIptablesRules(r.text.replace(/^[ \t\n]+/, ''))), norm(want));
}

/** assertIPTablesChainEqual: exactly these rules, in this order, in one chain. */
function assertChain(r: IptablesRender, table: string, chain: string, expected: string): void {
  assert.equal(iptablesChainRules(r.text, table, chain), expected === '' ? '' : dedent(expected));
}

/** Replace each `from` (which must occur) in a block: variants of a derived block differ by a few lines. */
function edit(text: string, ...changes: Array<[from: string, to: string]>): string {
  for (const [from, to] of changes) {
    assert.ok(text.includes(from), `test data: ${JSON.stringify(from)} not in block`);
    text = text.replaceAll(from, to);
  }
  return text;
}

/** kube-proxy's countRules: "-A" lines of one table. */
function countRules(text: string, table: string): number {
  return parseIptablesDump(text).find((t) => t.name === table)!.chains.reduce((n, c) => n + c.rules.length, 0);
}

/** The chains a FakeIPTables nat table holds after each iptables-restore (NoFlushTables): what
 *  kube-proxy's iptables-save would list as existingNATChains on the next sync. */
class FakeNat {
  private readonly chains = new Set(['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING']);
  restore(text: string): void {
    for (const c of parseIptablesDump(text).find((t) => t.name === 'nat')!.chains) {
      if (c.deleted) this.chains.delete(c.name);
      else this.chains.add(c.name);
    }
  }
  existing(): Set<string> {
    return new Set(this.chains);
  }
}

// Kubernetes objects (builders in helpers/kube-proxy-fake.ts) through the real model.
const stateOf = (...objs: Json[]) => objects(...objs).state();

// ---- the helper itself -----------------------------------------------------------------------

describe('sortIptablesRules (kube-proxy TestSortIPTablesRules)', () => {
  it('TestSortIPTablesRules: basic test using each match type', () => {
    const input = `
      *filter
      :KUBE-SERVICES - [0:0]
      :KUBE-EXTERNAL-SERVICES - [0:0]
      :KUBE-FIREWALL - [0:0]
      :KUBE-FORWARD - [0:0]
      :KUBE-NODEPORTS - [0:0]
      :KUBE-PROXY-FIREWALL - [0:0]
      -A KUBE-NODEPORTS -m comment --comment "ns2/svc2:p80 health check node port" -m tcp -p tcp --dport 30000 -j ACCEPT
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
      :KUBE-SERVICES - [0:0]
      :KUBE-NODEPORTS - [0:0]
      :KUBE-POSTROUTING - [0:0]
      :KUBE-MARK-MASQ - [0:0]
      :KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]
      :KUBE-SEP-SXIVWICOYRO3J4NJ - [0:0]
      :KUBE-SVC-GNZBNJ2PO5MGZ6GT - [0:0]
      :KUBE-EXT-GNZBNJ2PO5MGZ6GT - [0:0]
      :KUBE-SVL-GNZBNJ2PO5MGZ6GT - [0:0]
      :KUBE-FW-GNZBNJ2PO5MGZ6GT - [0:0]
      :KUBE-SEP-RS4RBKLTHTF2IUXJ - [0:0]
      :KUBE-SVC-X27LE4BHSL4DOUIK - [0:0]
      :KUBE-SEP-OYPFS5VJICHGATKP - [0:0]
      :KUBE-SVC-4SW47YFZTEDKD3PK - [0:0]
      :KUBE-SEP-UKSFD7AGPMPPLUHC - [0:0]
      :KUBE-SEP-C6EBXVWJJZMIWKLZ - [0:0]
      -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
      -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
      -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
      -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
      -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
      -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
      -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment ns1/svc1:p80 -j KUBE-SEP-SXIVWICOYRO3J4NJ
      -A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ
      -A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80
      -A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
      -A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 external IP" -m tcp -p tcp -d 192.168.99.11 --dport 80 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
      -A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 loadbalancer IP" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j KUBE-FW-GNZBNJ2PO5MGZ6GT
      -A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
      -A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment ns2/svc2:p80 -j KUBE-SEP-RS4RBKLTHTF2IUXJ
      -A KUBE-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -s 10.180.0.2 -j KUBE-MARK-MASQ
      -A KUBE-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.2:80
      -A KUBE-FW-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 loadbalancer IP" -s 203.0.113.0/25 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
      -A KUBE-FW-GNZBNJ2PO5MGZ6GT -m comment --comment "other traffic to s2/svc2:p80 will be dropped by KUBE-PROXY-FIREWALL"
      -A KUBE-NODEPORTS -m comment --comment ns2/svc2:p80 -m tcp -p tcp --dport 3001 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
      -A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "Redirect pods trying to reach external loadbalancer VIP to clusterIP" -s 10.0.0.0/8 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
      -A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "masquerade LOCAL traffic for ns2/svc2:p80 LB IP" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ
      -A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "route LOCAL traffic for ns2/svc2:p80 LB IP to service chain" -m addrtype --src-type LOCAL -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
      -A KUBE-EXT-GNZBNJ2PO5MGZ6GT -j KUBE-SVL-GNZBNJ2PO5MGZ6GT
      -A KUBE-SVL-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 has no local endpoints" -j KUBE-MARK-DROP
      -A KUBE-SERVICES -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK
      -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
      -A KUBE-NODEPORTS -m comment --comment ns3/svc3:p80 -m tcp -p tcp --dport 3002 -j KUBE-SVC-X27LE4BHSL4DOUIK
      -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment ns3/svc3:p80 -m tcp -p tcp --dport 3002 -j KUBE-MARK-MASQ
      -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment ns3/svc3:p80 -j KUBE-SEP-OYPFS5VJICHGATKP
      -A KUBE-SEP-OYPFS5VJICHGATKP -m comment --comment ns3/svc3:p80 -s 10.180.0.3 -j KUBE-MARK-MASQ
      -A KUBE-SEP-OYPFS5VJICHGATKP -m comment --comment ns3/svc3:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.3:80
      -A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 -j KUBE-SVC-4SW47YFZTEDKD3PK
      -A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 external IP" -m tcp -p tcp -d 192.168.99.22 --dport 80 -j KUBE-SVC-4SW47YFZTEDKD3PK
      -A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
      -A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 external IP" -m tcp -p tcp -d 192.168.99.22 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
      -A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment ns4/svc4:p80 -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-UKSFD7AGPMPPLUHC
      -A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment ns4/svc4:p80 -j KUBE-SEP-C6EBXVWJJZMIWKLZ
      -A KUBE-SEP-UKSFD7AGPMPPLUHC -m comment --comment ns4/svc4:p80 -s 10.180.0.4 -j KUBE-MARK-MASQ
      -A KUBE-SEP-UKSFD7AGPMPPLUHC -m comment --comment ns4/svc4:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.4:80
      -A KUBE-SEP-C6EBXVWJJZMIWKLZ -m comment --comment ns4/svc4:p80 -s 10.180.0.5 -j KUBE-MARK-MASQ
      -A KUBE-SEP-C6EBXVWJJZMIWKLZ -m comment --comment ns4/svc4:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.5:80
      -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
      COMMIT
      `;
    const output = `
      *filter
      :KUBE-NODEPORTS - [0:0]
      :KUBE-SERVICES - [0:0]
      :KUBE-EXTERNAL-SERVICES - [0:0]
      :KUBE-FIREWALL - [0:0]
      :KUBE-FORWARD - [0:0]
      :KUBE-PROXY-FIREWALL - [0:0]
      -A KUBE-NODEPORTS -m comment --comment "ns2/svc2:p80 health check node port" -m tcp -p tcp --dport 30000 -j ACCEPT
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
      :KUBE-NODEPORTS - [0:0]
      :KUBE-SERVICES - [0:0]
      :KUBE-EXT-GNZBNJ2PO5MGZ6GT - [0:0]
      :KUBE-FW-GNZBNJ2PO5MGZ6GT - [0:0]
      :KUBE-MARK-MASQ - [0:0]
      :KUBE-POSTROUTING - [0:0]
      :KUBE-SEP-C6EBXVWJJZMIWKLZ - [0:0]
      :KUBE-SEP-OYPFS5VJICHGATKP - [0:0]
      :KUBE-SEP-RS4RBKLTHTF2IUXJ - [0:0]
      :KUBE-SEP-SXIVWICOYRO3J4NJ - [0:0]
      :KUBE-SEP-UKSFD7AGPMPPLUHC - [0:0]
      :KUBE-SVC-4SW47YFZTEDKD3PK - [0:0]
      :KUBE-SVC-GNZBNJ2PO5MGZ6GT - [0:0]
      :KUBE-SVC-X27LE4BHSL4DOUIK - [0:0]
      :KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]
      :KUBE-SVL-GNZBNJ2PO5MGZ6GT - [0:0]
      -A KUBE-NODEPORTS -m comment --comment ns2/svc2:p80 -m tcp -p tcp --dport 3001 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
      -A KUBE-NODEPORTS -m comment --comment ns3/svc3:p80 -m tcp -p tcp --dport 3002 -j KUBE-SVC-X27LE4BHSL4DOUIK
      -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
      -A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
      -A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 external IP" -m tcp -p tcp -d 192.168.99.11 --dport 80 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
      -A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 loadbalancer IP" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j KUBE-FW-GNZBNJ2PO5MGZ6GT
      -A KUBE-SERVICES -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK
      -A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 -j KUBE-SVC-4SW47YFZTEDKD3PK
      -A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 external IP" -m tcp -p tcp -d 192.168.99.22 --dport 80 -j KUBE-SVC-4SW47YFZTEDKD3PK
      -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
      -A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "Redirect pods trying to reach external loadbalancer VIP to clusterIP" -s 10.0.0.0/8 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
      -A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "masquerade LOCAL traffic for ns2/svc2:p80 LB IP" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ
      -A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "route LOCAL traffic for ns2/svc2:p80 LB IP to service chain" -m addrtype --src-type LOCAL -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
      -A KUBE-EXT-GNZBNJ2PO5MGZ6GT -j KUBE-SVL-GNZBNJ2PO5MGZ6GT
      -A KUBE-FW-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 loadbalancer IP" -s 203.0.113.0/25 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
      -A KUBE-FW-GNZBNJ2PO5MGZ6GT -m comment --comment "other traffic to s2/svc2:p80 will be dropped by KUBE-PROXY-FIREWALL"
      -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
      -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
      -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
      -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
      -A KUBE-SEP-C6EBXVWJJZMIWKLZ -m comment --comment ns4/svc4:p80 -s 10.180.0.5 -j KUBE-MARK-MASQ
      -A KUBE-SEP-C6EBXVWJJZMIWKLZ -m comment --comment ns4/svc4:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.5:80
      -A KUBE-SEP-OYPFS5VJICHGATKP -m comment --comment ns3/svc3:p80 -s 10.180.0.3 -j KUBE-MARK-MASQ
      -A KUBE-SEP-OYPFS5VJICHGATKP -m comment --comment ns3/svc3:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.3:80
      -A KUBE-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -s 10.180.0.2 -j KUBE-MARK-MASQ
      -A KUBE-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.2:80
      -A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ
      -A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80
      -A KUBE-SEP-UKSFD7AGPMPPLUHC -m comment --comment ns4/svc4:p80 -s 10.180.0.4 -j KUBE-MARK-MASQ
      -A KUBE-SEP-UKSFD7AGPMPPLUHC -m comment --comment ns4/svc4:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.4:80
      -A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
      -A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 external IP" -m tcp -p tcp -d 192.168.99.22 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
      -A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment ns4/svc4:p80 -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-UKSFD7AGPMPPLUHC
      -A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment ns4/svc4:p80 -j KUBE-SEP-C6EBXVWJJZMIWKLZ
      -A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
      -A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment ns2/svc2:p80 -j KUBE-SEP-RS4RBKLTHTF2IUXJ
      -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
      -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment ns3/svc3:p80 -m tcp -p tcp --dport 3002 -j KUBE-MARK-MASQ
      -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment ns3/svc3:p80 -j KUBE-SEP-OYPFS5VJICHGATKP
      -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
      -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment ns1/svc1:p80 -j KUBE-SEP-SXIVWICOYRO3J4NJ
      -A KUBE-SVL-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 has no local endpoints" -j KUBE-MARK-DROP
      COMMIT
      `;
    assert.equal(sortIptablesRules(dedent(input)), dedent(output));
  });

  it('TestSortIPTablesRules: extra tables', () => {
    const chains = `
      :KUBE-SERVICES - [0:0]
      :KUBE-EXTERNAL-SERVICES - [0:0]
      :KUBE-FORWARD - [0:0]
      :KUBE-NODEPORTS - [0:0]
      -A KUBE-NODEPORTS -m comment --comment "ns2/svc2:p80 health check node port" -m tcp -p tcp --dport 30000 -j ACCEPT
      -A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
      -A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
      -A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
      COMMIT
      `;
    const sorted = `
      :KUBE-NODEPORTS - [0:0]
      :KUBE-SERVICES - [0:0]
      :KUBE-EXTERNAL-SERVICES - [0:0]
      :KUBE-FORWARD - [0:0]
      -A KUBE-NODEPORTS -m comment --comment "ns2/svc2:p80 health check node port" -m tcp -p tcp --dport 30000 -j ACCEPT
      -A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
      -A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
      -A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
      COMMIT
      `;
    const input = ['filter', 'nat', 'mangle'].map((t) => `*${t}\n${dedent(chains)}`).join('');
    const output = ['filter', 'mangle', 'nat'].map((t) => `*${t}\n${dedent(sorted)}`).join('');
    assert.equal(sortIptablesRules(input), output);
  });

  it('TestSortIPTablesRules: correctly match same service name in different styles of comments', () => {
    const input = `
      *filter
      COMMIT
      *nat
      :KUBE-SERVICES - [0:0]
      -A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 cluster IP" svc2 line 1
      -A KUBE-SERVICES -m comment --comment ns2/svc2 svc2 line 2
      -A KUBE-SERVICES -m comment --comment "ns2/svc2 blah" svc2 line 3
      -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" svc1 line 1
      -A KUBE-SERVICES -m comment --comment ns1/svc1 svc1 line 2
      -A KUBE-SERVICES -m comment --comment "ns1/svc1 blah" svc1 line 3
      -A KUBE-SERVICES -m comment --comment ns4/svc4 svc4 line 1
      -A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 cluster IP" svc4 line 2
      -A KUBE-SERVICES -m comment --comment "ns4/svc4 blah" svc4 line 3
      -A KUBE-SERVICES -m comment --comment "ns3/svc3:p80 cluster IP" svc3 line 1
      -A KUBE-SERVICES -m comment --comment "ns3/svc3 blah" svc3 line 2
      -A KUBE-SERVICES -m comment --comment ns3/svc3 svc3 line 3
      COMMIT
      `;
    const output = `
      *filter
      COMMIT
      *nat
      :KUBE-SERVICES - [0:0]
      -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" svc1 line 1
      -A KUBE-SERVICES -m comment --comment ns1/svc1 svc1 line 2
      -A KUBE-SERVICES -m comment --comment "ns1/svc1 blah" svc1 line 3
      -A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 cluster IP" svc2 line 1
      -A KUBE-SERVICES -m comment --comment ns2/svc2 svc2 line 2
      -A KUBE-SERVICES -m comment --comment "ns2/svc2 blah" svc2 line 3
      -A KUBE-SERVICES -m comment --comment "ns3/svc3:p80 cluster IP" svc3 line 1
      -A KUBE-SERVICES -m comment --comment "ns3/svc3 blah" svc3 line 2
      -A KUBE-SERVICES -m comment --comment ns3/svc3 svc3 line 3
      -A KUBE-SERVICES -m comment --comment ns4/svc4 svc4 line 1
      -A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 cluster IP" svc4 line 2
      -A KUBE-SERVICES -m comment --comment "ns4/svc4 blah" svc4 line 3
      COMMIT
      `;
    assert.equal(sortIptablesRules(dedent(input)), dedent(output));
  });

  it('TestSortIPTablesRules: unexpected junk lines are preserved', () => {
    const input = `
      *filter
      COMMIT
      *nat
      :KUBE-SERVICES - [0:0]
      :KUBE-SEP-RS4RBKLTHTF2IUXJ - [0:0]
      :KUBE-AAAAA - [0:0]
      :KUBE-ZZZZZ - [0:0]
      :WHY-IS-THIS-CHAIN-HERE - [0:0]
      -A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 cluster IP" svc2 line 1
      -A KUBE-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.2:80
      -A KUBE-ZZZZZ -m comment --comment "mystery chain number 1"
      -A KUBE-SERVICES -m comment --comment ns2/svc2 svc2 line 2
      -A WHY-IS-THIS-CHAIN-HERE -j ACCEPT
      -A KUBE-SERVICES -m comment --comment "ns2/svc2 blah" svc2 line 3
      -A KUBE-AAAAA -m comment --comment "mystery chain number 2"
      COMMIT
      `;
    const output = `
      *filter
      COMMIT
      *nat
      :KUBE-SERVICES - [0:0]
      :KUBE-AAAAA - [0:0]
      :KUBE-SEP-RS4RBKLTHTF2IUXJ - [0:0]
      :KUBE-ZZZZZ - [0:0]
      :WHY-IS-THIS-CHAIN-HERE - [0:0]
      -A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 cluster IP" svc2 line 1
      -A KUBE-SERVICES -m comment --comment ns2/svc2 svc2 line 2
      -A KUBE-SERVICES -m comment --comment "ns2/svc2 blah" svc2 line 3
      -A KUBE-AAAAA -m comment --comment "mystery chain number 2"
      -A KUBE-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.2:80
      -A KUBE-ZZZZZ -m comment --comment "mystery chain number 1"
      -A WHY-IS-THIS-CHAIN-HERE -j ACCEPT
      COMMIT
      `;
    assert.equal(sortIptablesRules(dedent(input)), dedent(output));
  });

  it('ParseIPTablesDump errors: a rule for an undeclared chain, a missing COMMIT', () => {
    assert.throws(() => sortIptablesRules('*nat\n:KUBE-SERVICES - [0:0]\n-A KUBE-SVC-X -j DROP\nCOMMIT\n'), /no such chain "KUBE-SVC-X"/);
    assert.throws(() => sortIptablesRules('*nat\n:KUBE-SERVICES - [0:0]\n'), /no COMMIT line/);
  });
});

// ---- TestOverallIPTablesRules --------------------------------------------------------------

// Verbatim from TestOverallIPTablesRules.
const OVERALL_EXPECTED = `
  *filter
  :KUBE-NODEPORTS - [0:0]
  :KUBE-SERVICES - [0:0]
  :KUBE-EXTERNAL-SERVICES - [0:0]
  :KUBE-FIREWALL - [0:0]
  :KUBE-FORWARD - [0:0]
  :KUBE-PROXY-FIREWALL - [0:0]
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
  :KUBE-NODEPORTS - [0:0]
  :KUBE-SERVICES - [0:0]
  :KUBE-EXT-4SW47YFZTEDKD3PK - [0:0]
  :KUBE-EXT-GNZBNJ2PO5MGZ6GT - [0:0]
  :KUBE-EXT-NUKIZ6OKUXPJNT4C - [0:0]
  :KUBE-EXT-X27LE4BHSL4DOUIK - [0:0]
  :KUBE-FW-NUKIZ6OKUXPJNT4C - [0:0]
  :KUBE-MARK-MASQ - [0:0]
  :KUBE-POSTROUTING - [0:0]
  :KUBE-SEP-C6EBXVWJJZMIWKLZ - [0:0]
  :KUBE-SEP-I77PXRDZVX7PMWMN - [0:0]
  :KUBE-SEP-OYPFS5VJICHGATKP - [0:0]
  :KUBE-SEP-RS4RBKLTHTF2IUXJ - [0:0]
  :KUBE-SEP-SXIVWICOYRO3J4NJ - [0:0]
  :KUBE-SEP-UKSFD7AGPMPPLUHC - [0:0]
  :KUBE-SVC-4SW47YFZTEDKD3PK - [0:0]
  :KUBE-SVC-GNZBNJ2PO5MGZ6GT - [0:0]
  :KUBE-SVC-NUKIZ6OKUXPJNT4C - [0:0]
  :KUBE-SVC-X27LE4BHSL4DOUIK - [0:0]
  :KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]
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
  -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
  -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
  -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
  -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
  -A KUBE-SEP-C6EBXVWJJZMIWKLZ -m comment --comment ns4/svc4:p80 -s 10.180.0.5 -j KUBE-MARK-MASQ
  -A KUBE-SEP-C6EBXVWJJZMIWKLZ -m comment --comment ns4/svc4:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.5:80
  -A KUBE-SEP-I77PXRDZVX7PMWMN -m comment --comment ns5/svc5:p80 -s 10.180.0.3 -j KUBE-MARK-MASQ
  -A KUBE-SEP-I77PXRDZVX7PMWMN -m comment --comment ns5/svc5:p80 -m recent --name KUBE-SEP-I77PXRDZVX7PMWMN --set -m tcp -p tcp -j DNAT --to-destination 10.180.0.3:80
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
  -A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 -> 10.180.0.3:80" -m recent --name KUBE-SEP-I77PXRDZVX7PMWMN --rcheck --seconds 10800 --reap -j KUBE-SEP-I77PXRDZVX7PMWMN
  -A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 -> 10.180.0.3:80" -j KUBE-SEP-I77PXRDZVX7PMWMN
  -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
  -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 -> 10.180.0.3:80" -j KUBE-SEP-OYPFS5VJICHGATKP
  -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
  -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -j KUBE-SEP-SXIVWICOYRO3J4NJ
  COMMIT
  `;

describe('renderIptables: kube-proxy full syncs', () => {
  it('TestOverallIPTablesRules', () => {
    const r = render(stateOf(...overallObjects()));
    assertRules(r, OVERALL_EXPECTED);
    // kube-proxy checks its nat rules metric against countRules(nat, output).
    assert.equal(r.natRules + r.skippedNatRules, countRules(dedent(OVERALL_EXPECTED), 'nat'));
    assert.equal(r.filterRules, countRules(dedent(OVERALL_EXPECTED), 'filter'));
  });

  it('chain names: KUBE-SVC/EXT/FW/SEP names of TestOverallIPTablesRules are exactly the active NAT chains', () => {
    // portProtoHash(ServicePortName.String() + lowercase protocol): "ns5/svc5:p80" + "tcp" →
    // NUKIZ6OKUXPJNT4C; endpoint chains hash "ns5/svc5:p80" + "tcp" + "10.180.0.3:80" → I77PXRDZVX7PMWMN.
    const r = render(stateOf(...overallObjects()));
    const expected = parseIptablesDump(dedent(OVERALL_EXPECTED)).find((t) => t.name === 'nat')!.chains
      .map((c) => c.name).filter((n) => /^KUBE-(SVC|SVL|EXT|FW|SEP)-/.test(n));
    assert.deepEqual([...r.activeNatChains].sort(), expected.sort());
  });

  it('bad IPs: invalid and other-family externalIPs, LB ingress IPs and source ranges are dropped (TestOverallIPTablesRules output)', () => {
    // kube-proxy's MapIPsByIPFamily / MapCIDRsByIPFamily skip what ParseIPSloppy / ParseCIDRSloppy
    // reject and keep only the proxier's family, so the rules are those of TestOverallIPTablesRules.
    const objs = overallObjects();
    const svc2 = objs[1]!;
    svc2.spec.externalIPs = ['192.168.99.22', 'not-an-ip', '2001:db8::22'];
    svc2.status.loadBalancer.ingress = [{ ip: '1.2.3.4' }, { ip: '1.2.3' }, { ip: '2001:db8::4' }];
    const svc4 = objs[3]!;
    svc4.spec.externalIPs = ['192.168.99.33', '::1'];
    const svc5 = objs[4]!;
    svc5.spec.loadBalancerSourceRanges = [' 203.0.113.0/25', '203.0.113.0/33', '2001:db8::/64'];
    const o = objects(...objs);
    assertRules(render(o.state()), OVERALL_EXPECTED);
    const fields = o.problems.map((p) => `${p.namespace}/${p.name} ${p.field}`).sort();
    assert.deepEqual(fields, [
      'ns2/svc2 spec.externalIPs[1]',
      'ns2/svc2 status.loadBalancer.ingress[1].ip',
      'ns5/svc5 spec.loadBalancerSourceRanges[1]',
    ]);
  });
});

// ---- TestSyncProxyRulesRepeated ------------------------------------------------------------

// The filter table is the same in every step of TestSyncProxyRulesRepeated (step 4 adds a REJECT).
const REPEATED_FILTER = `
  *filter
  :KUBE-NODEPORTS - [0:0]
  :KUBE-SERVICES - [0:0]
  :KUBE-EXTERNAL-SERVICES - [0:0]
  :KUBE-FIREWALL - [0:0]
  :KUBE-FORWARD - [0:0]
  :KUBE-PROXY-FIREWALL - [0:0]
  -A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
  -A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
  -A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
  -A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
  COMMIT
  `;
const repeated = (nat: string) => dedent(REPEATED_FILTER) + dedent(nat);

// The nat table of each step, verbatim.
const REPEATED_NAT = [
  // 1: initial full sync of svc1 and svc2
  `
  *nat
  :KUBE-NODEPORTS - [0:0]
  :KUBE-SERVICES - [0:0]
  :KUBE-MARK-MASQ - [0:0]
  :KUBE-POSTROUTING - [0:0]
  :KUBE-SEP-SNQ3ZNILQDEJNDQO - [0:0]
  :KUBE-SEP-UHEGFW77JX3KXTOV - [0:0]
  :KUBE-SVC-2VJB64SDSIJUP5T6 - [0:0]
  :KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]
  -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
  -A KUBE-SERVICES -m comment --comment "ns2/svc2:p8080 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 8080 -j KUBE-SVC-2VJB64SDSIJUP5T6
  -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
  -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
  -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
  -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
  -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
  -A KUBE-SEP-SNQ3ZNILQDEJNDQO -m comment --comment ns1/svc1:p80 -s 10.0.1.1 -j KUBE-MARK-MASQ
  -A KUBE-SEP-SNQ3ZNILQDEJNDQO -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.0.1.1:80
  -A KUBE-SEP-UHEGFW77JX3KXTOV -m comment --comment ns2/svc2:p8080 -s 10.0.2.1 -j KUBE-MARK-MASQ
  -A KUBE-SEP-UHEGFW77JX3KXTOV -m comment --comment ns2/svc2:p8080 -m tcp -p tcp -j DNAT --to-destination 10.0.2.1:8080
  -A KUBE-SVC-2VJB64SDSIJUP5T6 -m comment --comment "ns2/svc2:p8080 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 8080 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
  -A KUBE-SVC-2VJB64SDSIJUP5T6 -m comment --comment "ns2/svc2:p8080 -> 10.0.2.1:8080" -j KUBE-SEP-UHEGFW77JX3KXTOV
  -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
  -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.0.1.1:80" -j KUBE-SEP-SNQ3ZNILQDEJNDQO
  COMMIT
  `,
  // 2: add svc3 and its endpoints (only svc3's SVC and SEP chains are written)
  `
  *nat
  :KUBE-NODEPORTS - [0:0]
  :KUBE-SERVICES - [0:0]
  :KUBE-MARK-MASQ - [0:0]
  :KUBE-POSTROUTING - [0:0]
  :KUBE-SEP-BSWRHOQ77KEXZLNL - [0:0]
  :KUBE-SVC-X27LE4BHSL4DOUIK - [0:0]
  -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
  -A KUBE-SERVICES -m comment --comment "ns2/svc2:p8080 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 8080 -j KUBE-SVC-2VJB64SDSIJUP5T6
  -A KUBE-SERVICES -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK
  -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
  -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
  -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
  -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
  -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
  -A KUBE-SEP-BSWRHOQ77KEXZLNL -m comment --comment ns3/svc3:p80 -s 10.0.3.1 -j KUBE-MARK-MASQ
  -A KUBE-SEP-BSWRHOQ77KEXZLNL -m comment --comment ns3/svc3:p80 -m tcp -p tcp -j DNAT --to-destination 10.0.3.1:80
  -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
  -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 -> 10.0.3.1:80" -j KUBE-SEP-BSWRHOQ77KEXZLNL
  COMMIT
  `,
  // 3: delete svc2 (its chains are flushed and deleted; the others are not rewritten)
  `
  *nat
  :KUBE-NODEPORTS - [0:0]
  :KUBE-SERVICES - [0:0]
  :KUBE-MARK-MASQ - [0:0]
  :KUBE-POSTROUTING - [0:0]
  :KUBE-SEP-UHEGFW77JX3KXTOV - [0:0]
  :KUBE-SVC-2VJB64SDSIJUP5T6 - [0:0]
  -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
  -A KUBE-SERVICES -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK
  -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
  -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
  -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
  -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
  -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
  -X KUBE-SEP-UHEGFW77JX3KXTOV
  -X KUBE-SVC-2VJB64SDSIJUP5T6
  COMMIT
  `,
  // 4: add svc4 without endpoints (only a REJECT rule, in the filter table)
  `
  *nat
  :KUBE-NODEPORTS - [0:0]
  :KUBE-SERVICES - [0:0]
  :KUBE-MARK-MASQ - [0:0]
  :KUBE-POSTROUTING - [0:0]
  -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
  -A KUBE-SERVICES -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK
  -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
  -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
  -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
  -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
  -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
  COMMIT
  `,
  // 5: add svc4's endpoints
  `
  *nat
  :KUBE-NODEPORTS - [0:0]
  :KUBE-SERVICES - [0:0]
  :KUBE-MARK-MASQ - [0:0]
  :KUBE-POSTROUTING - [0:0]
  :KUBE-SEP-AYCN5HPXMIRJNJXU - [0:0]
  :KUBE-SVC-4SW47YFZTEDKD3PK - [0:0]
  -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
  -A KUBE-SERVICES -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK
  -A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 -j KUBE-SVC-4SW47YFZTEDKD3PK
  -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
  -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
  -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
  -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
  -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
  -A KUBE-SEP-AYCN5HPXMIRJNJXU -m comment --comment ns4/svc4:p80 -s 10.0.4.1 -j KUBE-MARK-MASQ
  -A KUBE-SEP-AYCN5HPXMIRJNJXU -m comment --comment ns4/svc4:p80 -m tcp -p tcp -j DNAT --to-destination 10.0.4.1:80
  -A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
  -A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 -> 10.0.4.1:80" -j KUBE-SEP-AYCN5HPXMIRJNJXU
  COMMIT
  `,
  // 6: change svc3's endpoint (its SVC and SEP chains are rewritten, the old SEP deleted)
  `
  *nat
  :KUBE-NODEPORTS - [0:0]
  :KUBE-SERVICES - [0:0]
  :KUBE-MARK-MASQ - [0:0]
  :KUBE-POSTROUTING - [0:0]
  :KUBE-SEP-BSWRHOQ77KEXZLNL - [0:0]
  :KUBE-SEP-DKCFIS26GWF2WLWC - [0:0]
  :KUBE-SVC-X27LE4BHSL4DOUIK - [0:0]
  -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
  -A KUBE-SERVICES -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK
  -A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 -j KUBE-SVC-4SW47YFZTEDKD3PK
  -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
  -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
  -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
  -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
  -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
  -A KUBE-SEP-DKCFIS26GWF2WLWC -m comment --comment ns3/svc3:p80 -s 10.0.3.2 -j KUBE-MARK-MASQ
  -A KUBE-SEP-DKCFIS26GWF2WLWC -m comment --comment ns3/svc3:p80 -m tcp -p tcp -j DNAT --to-destination 10.0.3.2:80
  -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
  -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 -> 10.0.3.2:80" -j KUBE-SEP-DKCFIS26GWF2WLWC
  -X KUBE-SEP-BSWRHOQ77KEXZLNL
  COMMIT
  `,
  // 7: add an endpoint to svc3
  `
  *nat
  :KUBE-NODEPORTS - [0:0]
  :KUBE-SERVICES - [0:0]
  :KUBE-MARK-MASQ - [0:0]
  :KUBE-POSTROUTING - [0:0]
  :KUBE-SEP-DKCFIS26GWF2WLWC - [0:0]
  :KUBE-SEP-JVVZVJ7BSEPPRNBS - [0:0]
  :KUBE-SVC-X27LE4BHSL4DOUIK - [0:0]
  -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
  -A KUBE-SERVICES -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK
  -A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 -j KUBE-SVC-4SW47YFZTEDKD3PK
  -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
  -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
  -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
  -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
  -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
  -A KUBE-SEP-DKCFIS26GWF2WLWC -m comment --comment ns3/svc3:p80 -s 10.0.3.2 -j KUBE-MARK-MASQ
  -A KUBE-SEP-DKCFIS26GWF2WLWC -m comment --comment ns3/svc3:p80 -m tcp -p tcp -j DNAT --to-destination 10.0.3.2:80
  -A KUBE-SEP-JVVZVJ7BSEPPRNBS -m comment --comment ns3/svc3:p80 -s 10.0.3.3 -j KUBE-MARK-MASQ
  -A KUBE-SEP-JVVZVJ7BSEPPRNBS -m comment --comment ns3/svc3:p80 -m tcp -p tcp -j DNAT --to-destination 10.0.3.3:80
  -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
  -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 -> 10.0.3.2:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-DKCFIS26GWF2WLWC
  -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 -> 10.0.3.3:80" -j KUBE-SEP-JVVZVJ7BSEPPRNBS
  COMMIT
  `,
  // 8: sync with no changes (no SVC or SEP chain is rewritten)
  `
  *nat
  :KUBE-NODEPORTS - [0:0]
  :KUBE-SERVICES - [0:0]
  :KUBE-MARK-MASQ - [0:0]
  :KUBE-POSTROUTING - [0:0]
  -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
  -A KUBE-SERVICES -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK
  -A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 -j KUBE-SVC-4SW47YFZTEDKD3PK
  -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
  -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
  -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
  -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
  -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
  COMMIT
  `,
  // 9: delete svc4 in a full sync (kube-proxy's retry after the failed partial sync)
  `
  *nat
  :KUBE-NODEPORTS - [0:0]
  :KUBE-SERVICES - [0:0]
  :KUBE-MARK-MASQ - [0:0]
  :KUBE-POSTROUTING - [0:0]
  :KUBE-SEP-AYCN5HPXMIRJNJXU - [0:0]
  :KUBE-SEP-DKCFIS26GWF2WLWC - [0:0]
  :KUBE-SEP-JVVZVJ7BSEPPRNBS - [0:0]
  :KUBE-SEP-SNQ3ZNILQDEJNDQO - [0:0]
  :KUBE-SVC-4SW47YFZTEDKD3PK - [0:0]
  :KUBE-SVC-X27LE4BHSL4DOUIK - [0:0]
  :KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]
  -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
  -A KUBE-SERVICES -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK
  -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
  -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
  -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
  -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
  -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
  -A KUBE-SEP-DKCFIS26GWF2WLWC -m comment --comment ns3/svc3:p80 -s 10.0.3.2 -j KUBE-MARK-MASQ
  -A KUBE-SEP-DKCFIS26GWF2WLWC -m comment --comment ns3/svc3:p80 -m tcp -p tcp -j DNAT --to-destination 10.0.3.2:80
  -A KUBE-SEP-JVVZVJ7BSEPPRNBS -m comment --comment ns3/svc3:p80 -s 10.0.3.3 -j KUBE-MARK-MASQ
  -A KUBE-SEP-JVVZVJ7BSEPPRNBS -m comment --comment ns3/svc3:p80 -m tcp -p tcp -j DNAT --to-destination 10.0.3.3:80
  -A KUBE-SEP-SNQ3ZNILQDEJNDQO -m comment --comment ns1/svc1:p80 -s 10.0.1.1 -j KUBE-MARK-MASQ
  -A KUBE-SEP-SNQ3ZNILQDEJNDQO -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.0.1.1:80
  -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
  -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 -> 10.0.3.2:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-DKCFIS26GWF2WLWC
  -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 -> 10.0.3.3:80" -j KUBE-SEP-JVVZVJ7BSEPPRNBS
  -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
  -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.0.1.1:80" -j KUBE-SEP-SNQ3ZNILQDEJNDQO
  -X KUBE-SEP-AYCN5HPXMIRJNJXU
  -X KUBE-SVC-4SW47YFZTEDKD3PK
  COMMIT
  `,
];

/** Runs the steps of TestSyncProxyRulesRepeated; each step's render and its expected text. */
function syncProxyRulesRepeated(): Array<{ r: IptablesRender; expected: string }> {
  const clusterIPService = (ns: string, name: string, ip: string, port: Json) => service(ns, name, { type: 'ClusterIP', clusterIP: ip, ports: [port] });
  const svc2 = clusterIPService('ns2', 'svc2', '172.30.0.42', tcp('p8080', 8080));
  const svc4 = clusterIPService('ns4', 'svc4', '172.30.0.44', tcp('p80', 80));
  const o = objects(
    clusterIPService('ns1', 'svc1', '172.30.0.41', tcp('p80', 80)),
    svc2,
    slice('ns1', 'svc1', ['10.0.1.1'], [tcp('p80', 80)]),
    slice('ns2', 'svc2', ['10.0.2.1'], [tcp('p8080', 8080)]),
  );
  const fake = new FakeNat();
  // One kube-proxy syncProxyRules: the Services changed since the last one (a partial sync
  // unless `full`), the chains iptables-save lists, then the restore.
  const sync = (full = false) => {
    const changedServices = full ? null : new Set(o.tracker.changedServices());
    const r = render(o.state(), {}, { changedServices, existingNatChains: fake.existing() });
    fake.restore(r.text);
    return r;
  };
  const steps: Array<() => IptablesRender> = [
    () => sync(true),
    () => {
      o.apply(clusterIPService('ns3', 'svc3', '172.30.0.43', tcp('p80', 80)), slice('ns3', 'svc3', ['10.0.3.1'], [tcp('p80', 80)]));
      return sync();
    },
    () => {
      o.remove(svc2);
      return sync();
    },
    () => {
      o.apply(svc4);
      return sync();
    },
    () => {
      o.apply(slice('ns4', 'svc4', ['10.0.4.1'], [tcp('p80', 80)]));
      return sync();
    },
    () => {
      o.apply(slice('ns3', 'svc3', ['10.0.3.2'], [tcp('p80', 80)]));
      return sync();
    },
    () => {
      o.apply(slice('ns3', 'svc3', ['10.0.3.2', '10.0.3.3'], [tcp('p80', 80)]));
      return sync();
    },
    () => sync(),
    // (The Go test first injects a dangling jump so that this partial sync fails and the proxier
    // falls back to a full one; the restore that counts is that full sync.)
    () => {
      o.remove(svc4);
      return sync(true);
    },
  ];
  return steps.map((step, i) => {
    let expected = repeated(REPEATED_NAT[i]!);
    if (i === 3) {
      const reject = '-A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 has no endpoints" -m tcp -p tcp -d 172.30.0.44 --dport 80 -j REJECT';
      expected = edit(expected, ['-A KUBE-FIREWALL', `${reject}\n-A KUBE-FIREWALL`]);
    }
    return { r: step(), expected };
  });
}

describe('renderIptables: partial syncs', () => {
  it('TestSyncProxyRulesRepeated: the restore input of each step, and the chains it deletes', () => {
    const deleted = [[], [], ['KUBE-SEP-UHEGFW77JX3KXTOV', 'KUBE-SVC-2VJB64SDSIJUP5T6'], [], [], ['KUBE-SEP-BSWRHOQ77KEXZLNL'], [], [], ['KUBE-SEP-AYCN5HPXMIRJNJXU', 'KUBE-SVC-4SW47YFZTEDKD3PK']];
    syncProxyRulesRepeated().forEach(({ r, expected }, i) => {
      try {
        assertRules(r, expected, { consistency: i === 0 });
      } catch (e) {
        (e as Error).message = `step ${i + 1}: ${(e as Error).message}`;
        throw e;
      }
      assert.deepEqual([...r.deletedChains].sort(), deleted[i], `step ${i + 1}: deleted chains`);
    });
  });

  it('TestSyncProxyRulesRepeated: nat rule counts (iptables_rules_last_sync and iptables_rules_total)', () => {
    // proxier.go: last_sync = natRules.Lines() - deletedChains (the "-X" lines are not rules);
    // total = natRules.Lines() + skippedNatRules.Lines() - deletedChains. The Go test checks the
    // first against countRules(nat, expected) and tracks the second step by step.
    const rulesTotal = [15, 20, 15, 15, 20, 20, 23, 23, 18];
    syncProxyRulesRepeated().forEach(({ r, expected }, i) => {
      assert.equal(r.natRules, countRules(expected, 'nat'), `step ${i + 1}: iptables_rules_last_sync{nat}`);
      assert.equal(r.natRules + r.skippedNatRules, rulesTotal[i], `step ${i + 1}: iptables_rules_total{nat}`);
    });
  });
});

// ---- scenarios whose Go tests trace packets: derived from proxier.go -------------------------

const FIREWALL_RULE = '-A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP';
/** Without localhostNodePorts kube-proxy writes neither KUBE-FIREWALL's chain line nor its rule. */
const withoutFirewall = (text: string) => edit(dedent(text), [':KUBE-FIREWALL - [0:0]\n', ''], [`${FIREWALL_RULE}\n`, '']);
const NODEPORTS_JUMP = '-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS';

/** kube-proxy orders a Service's ports by Go map iteration (random); our order is our own. Order
 *  the top-level chains' rules by their whole comment ("must be the last rule" last) instead. */
function anyPortOrder(sorted: string): string {
  const key = (c: string | null) => (c === null ? '' : c.includes('must be the last rule') ? '\uffff' : c);
  const tables = parseIptablesDump(sorted);
  for (const c of tables.flatMap((t) => t.chains)) {
    if (['KUBE-SERVICES', 'KUBE-NODEPORTS', 'KUBE-EXTERNAL-SERVICES', 'KUBE-PROXY-FIREWALL'].includes(c.name)) {
      c.rules.sort((a, b) => (key(a.comment) < key(b.comment) ? -1 : key(a.comment) > key(b.comment) ? 1 : 0));
    }
  }
  return formatIptablesDump(tables);
}

// TestClusterIPGeneral: svc1 with one local endpoint; svc2 with TCP, UDP and SCTP ports (two on 53),
// a targetPort, and one local and one remote endpoint.
const CLUSTER_IP_GENERAL = repeated(`
  *nat
  :KUBE-NODEPORTS - [0:0]
  :KUBE-SERVICES - [0:0]
  :KUBE-MARK-MASQ - [0:0]
  :KUBE-POSTROUTING - [0:0]
  :KUBE-SEP-33OH6RZSDRJNC43O - [0:0]
  :KUBE-SEP-3US64VDA5FFU44PB - [0:0]
  :KUBE-SEP-5BVYUR2PKHQSNHD4 - [0:0]
  :KUBE-SEP-7PIHC2I6DEQ4LZME - [0:0]
  :KUBE-SEP-AGOOXK46AE2PZZRJ - [0:0]
  :KUBE-SEP-D2IKQNEZGCF5UKSW - [0:0]
  :KUBE-SEP-GZJSJ6HHXTTLAKOR - [0:0]
  :KUBE-SEP-JPZV2KNVTCPALBNG - [0:0]
  :KUBE-SEP-P3LEBUKEAWNRHVA7 - [0:0]
  :KUBE-SEP-QC6AUSEGKJ4A3Y3W - [0:0]
  :KUBE-SEP-WWP3SNT3MNTKBP7P - [0:0]
  :KUBE-SVC-2M3BRF2INUPO2K3W - [0:0]
  :KUBE-SVC-56EGM3ZB4YILLRBZ - [0:0]
  :KUBE-SVC-CW3AQCZPGQ5G56X3 - [0:0]
  :KUBE-SVC-EXOHH4R4NKJAMEOO - [0:0]
  :KUBE-SVC-L76IW5RJFPV7YBZO - [0:0]
  :KUBE-SVC-TDPTYDRQPCXE6CO7 - [0:0]
  -A KUBE-SERVICES -m comment --comment "ns1/svc1:http cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-CW3AQCZPGQ5G56X3
  -A KUBE-SERVICES -m comment --comment "ns2/svc2:dns-sctp cluster IP" -m sctp -p sctp -d 172.30.0.42 --dport 53 -j KUBE-SVC-L76IW5RJFPV7YBZO
  -A KUBE-SERVICES -m comment --comment "ns2/svc2:dns-tcp cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 53 -j KUBE-SVC-EXOHH4R4NKJAMEOO
  -A KUBE-SERVICES -m comment --comment "ns2/svc2:dns-udp cluster IP" -m udp -p udp -d 172.30.0.42 --dport 53 -j KUBE-SVC-56EGM3ZB4YILLRBZ
  -A KUBE-SERVICES -m comment --comment "ns2/svc2:http cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 -j KUBE-SVC-TDPTYDRQPCXE6CO7
  -A KUBE-SERVICES -m comment --comment "ns2/svc2:https cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 443 -j KUBE-SVC-2M3BRF2INUPO2K3W
  -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
  -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
  -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
  -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
  -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
  -A KUBE-SEP-33OH6RZSDRJNC43O -m comment --comment ns2/svc2:dns-udp -s 10.180.2.1 -j KUBE-MARK-MASQ
  -A KUBE-SEP-33OH6RZSDRJNC43O -m comment --comment ns2/svc2:dns-udp -m udp -p udp -j DNAT --to-destination 10.180.2.1:53
  -A KUBE-SEP-3US64VDA5FFU44PB -m comment --comment ns1/svc1:http -s 10.180.0.1 -j KUBE-MARK-MASQ
  -A KUBE-SEP-3US64VDA5FFU44PB -m comment --comment ns1/svc1:http -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80
  -A KUBE-SEP-5BVYUR2PKHQSNHD4 -m comment --comment ns2/svc2:dns-sctp -s 10.180.0.1 -j KUBE-MARK-MASQ
  -A KUBE-SEP-5BVYUR2PKHQSNHD4 -m comment --comment ns2/svc2:dns-sctp -m sctp -p sctp -j DNAT --to-destination 10.180.0.1:53
  -A KUBE-SEP-7PIHC2I6DEQ4LZME -m comment --comment ns2/svc2:dns-udp -s 10.180.0.1 -j KUBE-MARK-MASQ
  -A KUBE-SEP-7PIHC2I6DEQ4LZME -m comment --comment ns2/svc2:dns-udp -m udp -p udp -j DNAT --to-destination 10.180.0.1:53
  -A KUBE-SEP-AGOOXK46AE2PZZRJ -m comment --comment ns2/svc2:dns-tcp -s 10.180.0.1 -j KUBE-MARK-MASQ
  -A KUBE-SEP-AGOOXK46AE2PZZRJ -m comment --comment ns2/svc2:dns-tcp -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:5353
  -A KUBE-SEP-D2IKQNEZGCF5UKSW -m comment --comment ns2/svc2:http -s 10.180.0.1 -j KUBE-MARK-MASQ
  -A KUBE-SEP-D2IKQNEZGCF5UKSW -m comment --comment ns2/svc2:http -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80
  -A KUBE-SEP-GZJSJ6HHXTTLAKOR -m comment --comment ns2/svc2:dns-sctp -s 10.180.2.1 -j KUBE-MARK-MASQ
  -A KUBE-SEP-GZJSJ6HHXTTLAKOR -m comment --comment ns2/svc2:dns-sctp -m sctp -p sctp -j DNAT --to-destination 10.180.2.1:53
  -A KUBE-SEP-JPZV2KNVTCPALBNG -m comment --comment ns2/svc2:https -s 10.180.0.1 -j KUBE-MARK-MASQ
  -A KUBE-SEP-JPZV2KNVTCPALBNG -m comment --comment ns2/svc2:https -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:8443
  -A KUBE-SEP-P3LEBUKEAWNRHVA7 -m comment --comment ns2/svc2:https -s 10.180.2.1 -j KUBE-MARK-MASQ
  -A KUBE-SEP-P3LEBUKEAWNRHVA7 -m comment --comment ns2/svc2:https -m tcp -p tcp -j DNAT --to-destination 10.180.2.1:8443
  -A KUBE-SEP-QC6AUSEGKJ4A3Y3W -m comment --comment ns2/svc2:dns-tcp -s 10.180.2.1 -j KUBE-MARK-MASQ
  -A KUBE-SEP-QC6AUSEGKJ4A3Y3W -m comment --comment ns2/svc2:dns-tcp -m tcp -p tcp -j DNAT --to-destination 10.180.2.1:5353
  -A KUBE-SEP-WWP3SNT3MNTKBP7P -m comment --comment ns2/svc2:http -s 10.180.2.1 -j KUBE-MARK-MASQ
  -A KUBE-SEP-WWP3SNT3MNTKBP7P -m comment --comment ns2/svc2:http -m tcp -p tcp -j DNAT --to-destination 10.180.2.1:80
  -A KUBE-SVC-2M3BRF2INUPO2K3W -m comment --comment "ns2/svc2:https cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 443 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
  -A KUBE-SVC-2M3BRF2INUPO2K3W -m comment --comment "ns2/svc2:https -> 10.180.0.1:8443" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-JPZV2KNVTCPALBNG
  -A KUBE-SVC-2M3BRF2INUPO2K3W -m comment --comment "ns2/svc2:https -> 10.180.2.1:8443" -j KUBE-SEP-P3LEBUKEAWNRHVA7
  -A KUBE-SVC-56EGM3ZB4YILLRBZ -m comment --comment "ns2/svc2:dns-udp cluster IP" -m udp -p udp -d 172.30.0.42 --dport 53 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
  -A KUBE-SVC-56EGM3ZB4YILLRBZ -m comment --comment "ns2/svc2:dns-udp -> 10.180.0.1:53" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-7PIHC2I6DEQ4LZME
  -A KUBE-SVC-56EGM3ZB4YILLRBZ -m comment --comment "ns2/svc2:dns-udp -> 10.180.2.1:53" -j KUBE-SEP-33OH6RZSDRJNC43O
  -A KUBE-SVC-CW3AQCZPGQ5G56X3 -m comment --comment "ns1/svc1:http cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
  -A KUBE-SVC-CW3AQCZPGQ5G56X3 -m comment --comment "ns1/svc1:http -> 10.180.0.1:80" -j KUBE-SEP-3US64VDA5FFU44PB
  -A KUBE-SVC-EXOHH4R4NKJAMEOO -m comment --comment "ns2/svc2:dns-tcp cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 53 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
  -A KUBE-SVC-EXOHH4R4NKJAMEOO -m comment --comment "ns2/svc2:dns-tcp -> 10.180.0.1:5353" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-AGOOXK46AE2PZZRJ
  -A KUBE-SVC-EXOHH4R4NKJAMEOO -m comment --comment "ns2/svc2:dns-tcp -> 10.180.2.1:5353" -j KUBE-SEP-QC6AUSEGKJ4A3Y3W
  -A KUBE-SVC-L76IW5RJFPV7YBZO -m comment --comment "ns2/svc2:dns-sctp cluster IP" -m sctp -p sctp -d 172.30.0.42 --dport 53 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
  -A KUBE-SVC-L76IW5RJFPV7YBZO -m comment --comment "ns2/svc2:dns-sctp -> 10.180.0.1:53" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-5BVYUR2PKHQSNHD4
  -A KUBE-SVC-L76IW5RJFPV7YBZO -m comment --comment "ns2/svc2:dns-sctp -> 10.180.2.1:53" -j KUBE-SEP-GZJSJ6HHXTTLAKOR
  -A KUBE-SVC-TDPTYDRQPCXE6CO7 -m comment --comment "ns2/svc2:http cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
  -A KUBE-SVC-TDPTYDRQPCXE6CO7 -m comment --comment "ns2/svc2:http -> 10.180.0.1:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-D2IKQNEZGCF5UKSW
  -A KUBE-SVC-TDPTYDRQPCXE6CO7 -m comment --comment "ns2/svc2:http -> 10.180.2.1:80" -j KUBE-SEP-WWP3SNT3MNTKBP7P
  COMMIT
  `);

// TestNodePorts (ipv4, localhost-nodeports enabled): a NodePort service, one remote and one local endpoint.
const NODE_PORTS = repeated(`
  *nat
  :KUBE-NODEPORTS - [0:0]
  :KUBE-SERVICES - [0:0]
  :KUBE-EXT-XPGD46QRK7WJZT7O - [0:0]
  :KUBE-MARK-MASQ - [0:0]
  :KUBE-POSTROUTING - [0:0]
  :KUBE-SEP-SXIVWICOYRO3J4NJ - [0:0]
  :KUBE-SEP-ZX7GRIZKSNUQ3LAJ - [0:0]
  :KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]
  -A KUBE-NODEPORTS -m comment --comment ns1/svc1:p80 -m tcp -p tcp --dport 3001 -j KUBE-EXT-XPGD46QRK7WJZT7O
  -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
  -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
  -A KUBE-EXT-XPGD46QRK7WJZT7O -m comment --comment "masquerade traffic for ns1/svc1:p80 external destinations" -j KUBE-MARK-MASQ
  -A KUBE-EXT-XPGD46QRK7WJZT7O -j KUBE-SVC-XPGD46QRK7WJZT7O
  -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
  -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
  -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
  -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
  -A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ
  -A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80
  -A KUBE-SEP-ZX7GRIZKSNUQ3LAJ -m comment --comment ns1/svc1:p80 -s 10.180.2.1 -j KUBE-MARK-MASQ
  -A KUBE-SEP-ZX7GRIZKSNUQ3LAJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.2.1:80
  -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
  -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-SXIVWICOYRO3J4NJ
  -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.2.1:80" -j KUBE-SEP-ZX7GRIZKSNUQ3LAJ
  COMMIT
  `);

// TestNoEndpointsReject: a LoadBalancer service with an external IP and no endpoints.
const NO_ENDPOINTS_REJECT = `
  *filter
  :KUBE-NODEPORTS - [0:0]
  :KUBE-SERVICES - [0:0]
  :KUBE-EXTERNAL-SERVICES - [0:0]
  :KUBE-FIREWALL - [0:0]
  :KUBE-FORWARD - [0:0]
  :KUBE-PROXY-FIREWALL - [0:0]
  -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 has no endpoints" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j REJECT
  -A KUBE-EXTERNAL-SERVICES -m comment --comment "ns1/svc1:p80 has no endpoints" -m tcp -p tcp -d 192.168.99.11 --dport 80 -j REJECT
  -A KUBE-EXTERNAL-SERVICES -m comment --comment "ns1/svc1:p80 has no endpoints" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j REJECT
  -A KUBE-EXTERNAL-SERVICES -m comment --comment "ns1/svc1:p80 has no endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 3001 -j REJECT
  -A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
  -A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
  -A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
  -A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
  COMMIT
  *nat
  :KUBE-NODEPORTS - [0:0]
  :KUBE-SERVICES - [0:0]
  :KUBE-MARK-MASQ - [0:0]
  :KUBE-POSTROUTING - [0:0]
  -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
  -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
  -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
  -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
  -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
  COMMIT
  `;

// TestLoadBalancer: two LB IPs, LoadBalancerSourceRanges (one containing the node IP), one endpoint.
const LOAD_BALANCER = `
  *filter
  :KUBE-NODEPORTS - [0:0]
  :KUBE-SERVICES - [0:0]
  :KUBE-EXTERNAL-SERVICES - [0:0]
  :KUBE-FIREWALL - [0:0]
  :KUBE-FORWARD - [0:0]
  :KUBE-PROXY-FIREWALL - [0:0]
  -A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
  -A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
  -A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
  -A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
  -A KUBE-PROXY-FIREWALL -m comment --comment "ns1/svc1:p80 traffic not accepted by KUBE-FW-XPGD46QRK7WJZT7O" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j DROP
  -A KUBE-PROXY-FIREWALL -m comment --comment "ns1/svc1:p80 traffic not accepted by KUBE-FW-XPGD46QRK7WJZT7O" -m tcp -p tcp -d 5.6.7.8 --dport 80 -j DROP
  COMMIT
  *nat
  :KUBE-NODEPORTS - [0:0]
  :KUBE-SERVICES - [0:0]
  :KUBE-EXT-XPGD46QRK7WJZT7O - [0:0]
  :KUBE-FW-XPGD46QRK7WJZT7O - [0:0]
  :KUBE-MARK-MASQ - [0:0]
  :KUBE-POSTROUTING - [0:0]
  :KUBE-SEP-SXIVWICOYRO3J4NJ - [0:0]
  :KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]
  -A KUBE-NODEPORTS -m comment --comment ns1/svc1:p80 -m tcp -p tcp --dport 3001 -j KUBE-EXT-XPGD46QRK7WJZT7O
  -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
  -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 loadbalancer IP" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j KUBE-FW-XPGD46QRK7WJZT7O
  -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 loadbalancer IP" -m tcp -p tcp -d 5.6.7.8 --dport 80 -j KUBE-FW-XPGD46QRK7WJZT7O
  -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
  -A KUBE-EXT-XPGD46QRK7WJZT7O -m comment --comment "masquerade traffic for ns1/svc1:p80 external destinations" -j KUBE-MARK-MASQ
  -A KUBE-EXT-XPGD46QRK7WJZT7O -j KUBE-SVC-XPGD46QRK7WJZT7O
  -A KUBE-FW-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 loadbalancer IP" -s 192.168.0.0/24 -j KUBE-EXT-XPGD46QRK7WJZT7O
  -A KUBE-FW-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 loadbalancer IP" -s 203.0.113.0/25 -j KUBE-EXT-XPGD46QRK7WJZT7O
  -A KUBE-FW-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 loadbalancer IP" -s 1.2.3.4 -j KUBE-EXT-XPGD46QRK7WJZT7O
  -A KUBE-FW-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 loadbalancer IP" -s 5.6.7.8 -j KUBE-EXT-XPGD46QRK7WJZT7O
  -A KUBE-FW-XPGD46QRK7WJZT7O -m comment --comment "other traffic to ns1/svc1:p80 will be dropped by KUBE-PROXY-FIREWALL"
  -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
  -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
  -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
  -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
  -A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ
  -A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80
  -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
  -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -j KUBE-SEP-SXIVWICOYRO3J4NJ
  COMMIT
  `;

// TestExternalTrafficPolicyLocal: LB + external IP + NodePort, eTP Local, one remote and one local endpoint.
const ETP_LOCAL = `
  *filter
  :KUBE-NODEPORTS - [0:0]
  :KUBE-SERVICES - [0:0]
  :KUBE-EXTERNAL-SERVICES - [0:0]
  :KUBE-FIREWALL - [0:0]
  :KUBE-FORWARD - [0:0]
  :KUBE-PROXY-FIREWALL - [0:0]
  -A KUBE-NODEPORTS -m comment --comment "ns1/svc1:p80 health check node port" -m tcp -p tcp --dport 30000 -j ACCEPT
  -A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
  -A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
  -A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
  -A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
  COMMIT
  *nat
  :KUBE-NODEPORTS - [0:0]
  :KUBE-SERVICES - [0:0]
  :KUBE-EXT-XPGD46QRK7WJZT7O - [0:0]
  :KUBE-MARK-MASQ - [0:0]
  :KUBE-POSTROUTING - [0:0]
  :KUBE-SEP-SXIVWICOYRO3J4NJ - [0:0]
  :KUBE-SEP-ZX7GRIZKSNUQ3LAJ - [0:0]
  :KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]
  :KUBE-SVL-XPGD46QRK7WJZT7O - [0:0]
  -A KUBE-NODEPORTS -m comment --comment ns1/svc1:p80 -m tcp -p tcp --dport 3001 -j KUBE-EXT-XPGD46QRK7WJZT7O
  -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
  -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 external IP" -m tcp -p tcp -d 192.168.99.11 --dport 80 -j KUBE-EXT-XPGD46QRK7WJZT7O
  -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 loadbalancer IP" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j KUBE-EXT-XPGD46QRK7WJZT7O
  -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
  -A KUBE-EXT-XPGD46QRK7WJZT7O -m comment --comment "pod traffic for ns1/svc1:p80 external destinations" -s 10.0.0.0/8 -j KUBE-SVC-XPGD46QRK7WJZT7O
  -A KUBE-EXT-XPGD46QRK7WJZT7O -m comment --comment "masquerade LOCAL traffic for ns1/svc1:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ
  -A KUBE-EXT-XPGD46QRK7WJZT7O -m comment --comment "route LOCAL traffic for ns1/svc1:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-SVC-XPGD46QRK7WJZT7O
  -A KUBE-EXT-XPGD46QRK7WJZT7O -j KUBE-SVL-XPGD46QRK7WJZT7O
  -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
  -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
  -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
  -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
  -A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ
  -A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80
  -A KUBE-SEP-ZX7GRIZKSNUQ3LAJ -m comment --comment ns1/svc1:p80 -s 10.180.2.1 -j KUBE-MARK-MASQ
  -A KUBE-SEP-ZX7GRIZKSNUQ3LAJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.2.1:80
  -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
  -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-SXIVWICOYRO3J4NJ
  -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.2.1:80" -j KUBE-SEP-ZX7GRIZKSNUQ3LAJ
  -A KUBE-SVL-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.2.1:80" -j KUBE-SEP-ZX7GRIZKSNUQ3LAJ
  COMMIT
  `;

// TestExternalTrafficPolicyCluster: as above with eTP Cluster (no health check, no KUBE-SVL).
const ETP_CLUSTER = edit(dedent(ETP_LOCAL),
  ['-A KUBE-NODEPORTS -m comment --comment "ns1/svc1:p80 health check node port" -m tcp -p tcp --dport 30000 -j ACCEPT\n', ''],
  [':KUBE-SVL-XPGD46QRK7WJZT7O - [0:0]\n', ''],
  ['-A KUBE-EXT-XPGD46QRK7WJZT7O -m comment --comment "pod traffic for ns1/svc1:p80 external destinations" -s 10.0.0.0/8 -j KUBE-SVC-XPGD46QRK7WJZT7O\n', ''],
  ['-A KUBE-EXT-XPGD46QRK7WJZT7O -m comment --comment "masquerade LOCAL traffic for ns1/svc1:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ\n', '-A KUBE-EXT-XPGD46QRK7WJZT7O -m comment --comment "masquerade traffic for ns1/svc1:p80 external destinations" -j KUBE-MARK-MASQ\n'],
  ['-A KUBE-EXT-XPGD46QRK7WJZT7O -m comment --comment "route LOCAL traffic for ns1/svc1:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-SVC-XPGD46QRK7WJZT7O\n', ''],
  ['-A KUBE-EXT-XPGD46QRK7WJZT7O -j KUBE-SVL-XPGD46QRK7WJZT7O', '-A KUBE-EXT-XPGD46QRK7WJZT7O -j KUBE-SVC-XPGD46QRK7WJZT7O'],
  ['-A KUBE-SVL-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.2.1:80" -j KUBE-SEP-ZX7GRIZKSNUQ3LAJ\n', ''],
);

// TestInternalTrafficPolicy, "internalTrafficPolicy is cluster": an unnamed port (ServicePortName
// "ns1/svc1") and three endpoints, so --probability 1/3 then 1/2.
const ITP_CLUSTER = repeated(`
  *nat
  :KUBE-NODEPORTS - [0:0]
  :KUBE-SERVICES - [0:0]
  :KUBE-MARK-MASQ - [0:0]
  :KUBE-POSTROUTING - [0:0]
  :KUBE-SEP-3JOIVZTXZZRGORX4 - [0:0]
  :KUBE-SEP-IO5XOSKPAXIFQXAJ - [0:0]
  :KUBE-SEP-XGJFVO3L2O5SRFNT - [0:0]
  :KUBE-SVC-AQI2S6QIMU7PVVRP - [0:0]
  -A KUBE-SERVICES -m comment --comment "ns1/svc1 cluster IP" -m tcp -p tcp -d 172.30.1.1 --dport 80 -j KUBE-SVC-AQI2S6QIMU7PVVRP
  -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
  -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
  -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
  -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
  -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
  -A KUBE-SEP-3JOIVZTXZZRGORX4 -m comment --comment ns1/svc1 -s 10.0.1.1 -j KUBE-MARK-MASQ
  -A KUBE-SEP-3JOIVZTXZZRGORX4 -m comment --comment ns1/svc1 -m tcp -p tcp -j DNAT --to-destination 10.0.1.1:80
  -A KUBE-SEP-IO5XOSKPAXIFQXAJ -m comment --comment ns1/svc1 -s 10.0.1.2 -j KUBE-MARK-MASQ
  -A KUBE-SEP-IO5XOSKPAXIFQXAJ -m comment --comment ns1/svc1 -m tcp -p tcp -j DNAT --to-destination 10.0.1.2:80
  -A KUBE-SEP-XGJFVO3L2O5SRFNT -m comment --comment ns1/svc1 -s 10.0.1.3 -j KUBE-MARK-MASQ
  -A KUBE-SEP-XGJFVO3L2O5SRFNT -m comment --comment ns1/svc1 -m tcp -p tcp -j DNAT --to-destination 10.0.1.3:80
  -A KUBE-SVC-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 cluster IP" -m tcp -p tcp -d 172.30.1.1 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
  -A KUBE-SVC-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.1:80" -m statistic --mode random --probability 0.3333333333 -j KUBE-SEP-3JOIVZTXZZRGORX4
  -A KUBE-SVC-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.2:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-IO5XOSKPAXIFQXAJ
  -A KUBE-SVC-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.3:80" -j KUBE-SEP-XGJFVO3L2O5SRFNT
  COMMIT
  `);

// "internalTrafficPolicy is local and there is one local endpoint": clusterIP → KUBE-SVL, which
// holds the masquerade rule; only the local endpoint gets a chain.
const ITP_LOCAL = repeated(`
  *nat
  :KUBE-NODEPORTS - [0:0]
  :KUBE-SERVICES - [0:0]
  :KUBE-MARK-MASQ - [0:0]
  :KUBE-POSTROUTING - [0:0]
  :KUBE-SEP-3JOIVZTXZZRGORX4 - [0:0]
  :KUBE-SVL-AQI2S6QIMU7PVVRP - [0:0]
  -A KUBE-SERVICES -m comment --comment "ns1/svc1 cluster IP" -m tcp -p tcp -d 172.30.1.1 --dport 80 -j KUBE-SVL-AQI2S6QIMU7PVVRP
  -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
  -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
  -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
  -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
  -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
  -A KUBE-SEP-3JOIVZTXZZRGORX4 -m comment --comment ns1/svc1 -s 10.0.1.1 -j KUBE-MARK-MASQ
  -A KUBE-SEP-3JOIVZTXZZRGORX4 -m comment --comment ns1/svc1 -m tcp -p tcp -j DNAT --to-destination 10.0.1.1:80
  -A KUBE-SVL-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 cluster IP" -m tcp -p tcp -d 172.30.1.1 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
  -A KUBE-SVL-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.1:80" -j KUBE-SEP-3JOIVZTXZZRGORX4
  COMMIT
  `);

/** No NAT service chains at all; `filterRules` are the rules of the filter chains that sort before KUBE-FIREWALL. */
const filterOnly = (filterRules: string) => edit(repeated(NO_SERVICE_NAT), [FIREWALL_RULE, `${dedent(filterRules)}${FIREWALL_RULE}`]);
const NO_SERVICE_NAT = `
  *nat
  :KUBE-NODEPORTS - [0:0]
  :KUBE-SERVICES - [0:0]
  :KUBE-MARK-MASQ - [0:0]
  :KUBE-POSTROUTING - [0:0]
  -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
  -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
  -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
  -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
  -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
  COMMIT
  `;

// TestTerminatingEndpointsTrafficPolicyLocal, "ready endpoints exist": LB (no NodePort), eTP Local,
// local ready 10.0.1.1/.2, local serving+terminating .3, local terminating .4, remote ready .5.
const TERMINATING_LOCAL_READY = `
  *filter
  :KUBE-NODEPORTS - [0:0]
  :KUBE-SERVICES - [0:0]
  :KUBE-EXTERNAL-SERVICES - [0:0]
  :KUBE-FIREWALL - [0:0]
  :KUBE-FORWARD - [0:0]
  :KUBE-PROXY-FIREWALL - [0:0]
  -A KUBE-NODEPORTS -m comment --comment "ns1/svc1 health check node port" -m tcp -p tcp --dport 30000 -j ACCEPT
  -A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
  -A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
  -A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
  -A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
  COMMIT
  *nat
  :KUBE-NODEPORTS - [0:0]
  :KUBE-SERVICES - [0:0]
  :KUBE-EXT-AQI2S6QIMU7PVVRP - [0:0]
  :KUBE-MARK-MASQ - [0:0]
  :KUBE-POSTROUTING - [0:0]
  :KUBE-SEP-3JOIVZTXZZRGORX4 - [0:0]
  :KUBE-SEP-EQCHZ7S2PJ72OHAY - [0:0]
  :KUBE-SEP-IO5XOSKPAXIFQXAJ - [0:0]
  :KUBE-SVC-AQI2S6QIMU7PVVRP - [0:0]
  :KUBE-SVL-AQI2S6QIMU7PVVRP - [0:0]
  -A KUBE-SERVICES -m comment --comment "ns1/svc1 cluster IP" -m tcp -p tcp -d 172.30.1.1 --dport 80 -j KUBE-SVC-AQI2S6QIMU7PVVRP
  -A KUBE-SERVICES -m comment --comment "ns1/svc1 loadbalancer IP" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j KUBE-EXT-AQI2S6QIMU7PVVRP
  -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
  -A KUBE-EXT-AQI2S6QIMU7PVVRP -m comment --comment "pod traffic for ns1/svc1 external destinations" -s 10.0.0.0/8 -j KUBE-SVC-AQI2S6QIMU7PVVRP
  -A KUBE-EXT-AQI2S6QIMU7PVVRP -m comment --comment "masquerade LOCAL traffic for ns1/svc1 external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ
  -A KUBE-EXT-AQI2S6QIMU7PVVRP -m comment --comment "route LOCAL traffic for ns1/svc1 external destinations" -m addrtype --src-type LOCAL -j KUBE-SVC-AQI2S6QIMU7PVVRP
  -A KUBE-EXT-AQI2S6QIMU7PVVRP -j KUBE-SVL-AQI2S6QIMU7PVVRP
  -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
  -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
  -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
  -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
  -A KUBE-SEP-3JOIVZTXZZRGORX4 -m comment --comment ns1/svc1 -s 10.0.1.1 -j KUBE-MARK-MASQ
  -A KUBE-SEP-3JOIVZTXZZRGORX4 -m comment --comment ns1/svc1 -m tcp -p tcp -j DNAT --to-destination 10.0.1.1:80
  -A KUBE-SEP-EQCHZ7S2PJ72OHAY -m comment --comment ns1/svc1 -s 10.0.1.5 -j KUBE-MARK-MASQ
  -A KUBE-SEP-EQCHZ7S2PJ72OHAY -m comment --comment ns1/svc1 -m tcp -p tcp -j DNAT --to-destination 10.0.1.5:80
  -A KUBE-SEP-IO5XOSKPAXIFQXAJ -m comment --comment ns1/svc1 -s 10.0.1.2 -j KUBE-MARK-MASQ
  -A KUBE-SEP-IO5XOSKPAXIFQXAJ -m comment --comment ns1/svc1 -m tcp -p tcp -j DNAT --to-destination 10.0.1.2:80
  -A KUBE-SVC-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 cluster IP" -m tcp -p tcp -d 172.30.1.1 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
  -A KUBE-SVC-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.1:80" -m statistic --mode random --probability 0.3333333333 -j KUBE-SEP-3JOIVZTXZZRGORX4
  -A KUBE-SVC-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.2:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-IO5XOSKPAXIFQXAJ
  -A KUBE-SVC-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.5:80" -j KUBE-SEP-EQCHZ7S2PJ72OHAY
  -A KUBE-SVL-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.1:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-3JOIVZTXZZRGORX4
  -A KUBE-SVL-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.2:80" -j KUBE-SEP-IO5XOSKPAXIFQXAJ
  COMMIT
  `;

// "only terminating endpoints exist": local serving+terminating .2/.3, local terminating .4, remote
// ready .5. Cluster policy keeps the ready remote one; Local falls back to the serving+terminating ones.
const TERMINATING_LOCAL_ONLY = edit(dedent(TERMINATING_LOCAL_READY),
  [':KUBE-SEP-3JOIVZTXZZRGORX4 - [0:0]\n', ''],
  [':KUBE-SEP-IO5XOSKPAXIFQXAJ - [0:0]\n', ':KUBE-SEP-IO5XOSKPAXIFQXAJ - [0:0]\n:KUBE-SEP-XGJFVO3L2O5SRFNT - [0:0]\n'],
  ['-A KUBE-SEP-3JOIVZTXZZRGORX4 -m comment --comment ns1/svc1 -s 10.0.1.1 -j KUBE-MARK-MASQ\n-A KUBE-SEP-3JOIVZTXZZRGORX4 -m comment --comment ns1/svc1 -m tcp -p tcp -j DNAT --to-destination 10.0.1.1:80\n', ''],
  ['-A KUBE-SEP-IO5XOSKPAXIFQXAJ -m comment --comment ns1/svc1 -m tcp -p tcp -j DNAT --to-destination 10.0.1.2:80\n',
    '-A KUBE-SEP-IO5XOSKPAXIFQXAJ -m comment --comment ns1/svc1 -m tcp -p tcp -j DNAT --to-destination 10.0.1.2:80\n' +
    '-A KUBE-SEP-XGJFVO3L2O5SRFNT -m comment --comment ns1/svc1 -s 10.0.1.3 -j KUBE-MARK-MASQ\n' +
    '-A KUBE-SEP-XGJFVO3L2O5SRFNT -m comment --comment ns1/svc1 -m tcp -p tcp -j DNAT --to-destination 10.0.1.3:80\n'],
  ['-A KUBE-SVC-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.1:80" -m statistic --mode random --probability 0.3333333333 -j KUBE-SEP-3JOIVZTXZZRGORX4\n' +
    '-A KUBE-SVC-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.2:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-IO5XOSKPAXIFQXAJ\n', ''],
  ['-A KUBE-SVL-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.1:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-3JOIVZTXZZRGORX4\n' +
    '-A KUBE-SVL-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.2:80" -j KUBE-SEP-IO5XOSKPAXIFQXAJ\n',
  '-A KUBE-SVL-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.2:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-IO5XOSKPAXIFQXAJ\n' +
    '-A KUBE-SVL-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.3:80" -j KUBE-SEP-XGJFVO3L2O5SRFNT\n'],
);

// TestTerminatingEndpointsTrafficPolicyCluster, "only terminating endpoints exist": no ready endpoint
// anywhere, so the cluster endpoints are the serving+terminating ones (local .2/.3, remote .5).
const TERMINATING_CLUSTER_ONLY = repeated(`
  *nat
  :KUBE-NODEPORTS - [0:0]
  :KUBE-SERVICES - [0:0]
  :KUBE-EXT-AQI2S6QIMU7PVVRP - [0:0]
  :KUBE-MARK-MASQ - [0:0]
  :KUBE-POSTROUTING - [0:0]
  :KUBE-SEP-EQCHZ7S2PJ72OHAY - [0:0]
  :KUBE-SEP-IO5XOSKPAXIFQXAJ - [0:0]
  :KUBE-SEP-XGJFVO3L2O5SRFNT - [0:0]
  :KUBE-SVC-AQI2S6QIMU7PVVRP - [0:0]
  -A KUBE-SERVICES -m comment --comment "ns1/svc1 cluster IP" -m tcp -p tcp -d 172.30.1.1 --dport 80 -j KUBE-SVC-AQI2S6QIMU7PVVRP
  -A KUBE-SERVICES -m comment --comment "ns1/svc1 loadbalancer IP" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j KUBE-EXT-AQI2S6QIMU7PVVRP
  -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
  -A KUBE-EXT-AQI2S6QIMU7PVVRP -m comment --comment "masquerade traffic for ns1/svc1 external destinations" -j KUBE-MARK-MASQ
  -A KUBE-EXT-AQI2S6QIMU7PVVRP -j KUBE-SVC-AQI2S6QIMU7PVVRP
  -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
  -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
  -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
  -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
  -A KUBE-SEP-EQCHZ7S2PJ72OHAY -m comment --comment ns1/svc1 -s 10.0.1.5 -j KUBE-MARK-MASQ
  -A KUBE-SEP-EQCHZ7S2PJ72OHAY -m comment --comment ns1/svc1 -m tcp -p tcp -j DNAT --to-destination 10.0.1.5:80
  -A KUBE-SEP-IO5XOSKPAXIFQXAJ -m comment --comment ns1/svc1 -s 10.0.1.2 -j KUBE-MARK-MASQ
  -A KUBE-SEP-IO5XOSKPAXIFQXAJ -m comment --comment ns1/svc1 -m tcp -p tcp -j DNAT --to-destination 10.0.1.2:80
  -A KUBE-SEP-XGJFVO3L2O5SRFNT -m comment --comment ns1/svc1 -s 10.0.1.3 -j KUBE-MARK-MASQ
  -A KUBE-SEP-XGJFVO3L2O5SRFNT -m comment --comment ns1/svc1 -m tcp -p tcp -j DNAT --to-destination 10.0.1.3:80
  -A KUBE-SVC-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 cluster IP" -m tcp -p tcp -d 172.30.1.1 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
  -A KUBE-SVC-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.2:80" -m statistic --mode random --probability 0.3333333333 -j KUBE-SEP-IO5XOSKPAXIFQXAJ
  -A KUBE-SVC-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.3:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-XGJFVO3L2O5SRFNT
  -A KUBE-SVC-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.5:80" -j KUBE-SEP-EQCHZ7S2PJ72OHAY
  COMMIT
  `);

// TestInternalExternalMasquerade ("base"): svc1 LB eTP Cluster, svc2 LB eTP Local, svc3 LB iTP
// Local; each with a local and a remote endpoint.
const MASQUERADE_BASE = `
  *filter
  :KUBE-NODEPORTS - [0:0]
  :KUBE-SERVICES - [0:0]
  :KUBE-EXTERNAL-SERVICES - [0:0]
  :KUBE-FIREWALL - [0:0]
  :KUBE-FORWARD - [0:0]
  :KUBE-PROXY-FIREWALL - [0:0]
  -A KUBE-NODEPORTS -m comment --comment "ns2/svc2:p80 health check node port" -m tcp -p tcp --dport 30002 -j ACCEPT
  -A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
  -A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
  -A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
  -A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
  COMMIT
  *nat
  :KUBE-NODEPORTS - [0:0]
  :KUBE-SERVICES - [0:0]
  :KUBE-EXT-GNZBNJ2PO5MGZ6GT - [0:0]
  :KUBE-EXT-X27LE4BHSL4DOUIK - [0:0]
  :KUBE-EXT-XPGD46QRK7WJZT7O - [0:0]
  :KUBE-MARK-MASQ - [0:0]
  :KUBE-POSTROUTING - [0:0]
  :KUBE-SEP-3PCRBPAMK2XLAIHQ - [0:0]
  :KUBE-SEP-J7UNSSMXXN3UTZD6 - [0:0]
  :KUBE-SEP-OYPFS5VJICHGATKP - [0:0]
  :KUBE-SEP-RS4RBKLTHTF2IUXJ - [0:0]
  :KUBE-SEP-SXIVWICOYRO3J4NJ - [0:0]
  :KUBE-SEP-TOIS5JUHRKSSXDL7 - [0:0]
  :KUBE-SVC-GNZBNJ2PO5MGZ6GT - [0:0]
  :KUBE-SVC-X27LE4BHSL4DOUIK - [0:0]
  :KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]
  :KUBE-SVL-GNZBNJ2PO5MGZ6GT - [0:0]
  :KUBE-SVL-X27LE4BHSL4DOUIK - [0:0]
  -A KUBE-NODEPORTS -m comment --comment ns1/svc1:p80 -m tcp -p tcp --dport 3001 -j KUBE-EXT-XPGD46QRK7WJZT7O
  -A KUBE-NODEPORTS -m comment --comment ns2/svc2:p80 -m tcp -p tcp --dport 3002 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
  -A KUBE-NODEPORTS -m comment --comment ns3/svc3:p80 -m tcp -p tcp --dport 3003 -j KUBE-EXT-X27LE4BHSL4DOUIK
  -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
  -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 loadbalancer IP" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j KUBE-EXT-XPGD46QRK7WJZT7O
  -A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
  -A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 loadbalancer IP" -m tcp -p tcp -d 5.6.7.8 --dport 80 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
  -A KUBE-SERVICES -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVL-X27LE4BHSL4DOUIK
  -A KUBE-SERVICES -m comment --comment "ns3/svc3:p80 loadbalancer IP" -m tcp -p tcp -d 9.10.11.12 --dport 80 -j KUBE-EXT-X27LE4BHSL4DOUIK
  -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
  -A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "pod traffic for ns2/svc2:p80 external destinations" -s 10.0.0.0/8 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
  -A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "masquerade LOCAL traffic for ns2/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ
  -A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "route LOCAL traffic for ns2/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
  -A KUBE-EXT-GNZBNJ2PO5MGZ6GT -j KUBE-SVL-GNZBNJ2PO5MGZ6GT
  -A KUBE-EXT-X27LE4BHSL4DOUIK -m comment --comment "masquerade traffic for ns3/svc3:p80 external destinations" -j KUBE-MARK-MASQ
  -A KUBE-EXT-X27LE4BHSL4DOUIK -j KUBE-SVC-X27LE4BHSL4DOUIK
  -A KUBE-EXT-XPGD46QRK7WJZT7O -m comment --comment "masquerade traffic for ns1/svc1:p80 external destinations" -j KUBE-MARK-MASQ
  -A KUBE-EXT-XPGD46QRK7WJZT7O -j KUBE-SVC-XPGD46QRK7WJZT7O
  -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
  -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
  -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
  -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
  -A KUBE-SEP-3PCRBPAMK2XLAIHQ -m comment --comment ns3/svc3:p80 -s 10.180.1.3 -j KUBE-MARK-MASQ
  -A KUBE-SEP-3PCRBPAMK2XLAIHQ -m comment --comment ns3/svc3:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.1.3:80
  -A KUBE-SEP-J7UNSSMXXN3UTZD6 -m comment --comment ns2/svc2:p80 -s 10.180.1.2 -j KUBE-MARK-MASQ
  -A KUBE-SEP-J7UNSSMXXN3UTZD6 -m comment --comment ns2/svc2:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.1.2:80
  -A KUBE-SEP-OYPFS5VJICHGATKP -m comment --comment ns3/svc3:p80 -s 10.180.0.3 -j KUBE-MARK-MASQ
  -A KUBE-SEP-OYPFS5VJICHGATKP -m comment --comment ns3/svc3:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.3:80
  -A KUBE-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -s 10.180.0.2 -j KUBE-MARK-MASQ
  -A KUBE-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.2:80
  -A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ
  -A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80
  -A KUBE-SEP-TOIS5JUHRKSSXDL7 -m comment --comment ns1/svc1:p80 -s 10.180.1.1 -j KUBE-MARK-MASQ
  -A KUBE-SEP-TOIS5JUHRKSSXDL7 -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.1.1:80
  -A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
  -A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 -> 10.180.0.2:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-RS4RBKLTHTF2IUXJ
  -A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 -> 10.180.1.2:80" -j KUBE-SEP-J7UNSSMXXN3UTZD6
  -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 -> 10.180.0.3:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-OYPFS5VJICHGATKP
  -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 -> 10.180.1.3:80" -j KUBE-SEP-3PCRBPAMK2XLAIHQ
  -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
  -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-SXIVWICOYRO3J4NJ
  -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.1.1:80" -j KUBE-SEP-TOIS5JUHRKSSXDL7
  -A KUBE-SVL-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 -> 10.180.0.2:80" -j KUBE-SEP-RS4RBKLTHTF2IUXJ
  -A KUBE-SVL-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
  -A KUBE-SVL-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 -> 10.180.0.3:80" -j KUBE-SEP-OYPFS5VJICHGATKP
  COMMIT
  `;

describe('renderIptables: kube-proxy scenarios checked by packet tracing in Go (rules derived from proxier.go)', () => {
  it('TestClusterIPGeneral: TCP, UDP and SCTP ports, targetPort, local and remote endpoints', () => {
    const r = render(stateOf(...clusterIPGeneralObjects()));
    assertRules(r, CLUSTER_IP_GENERAL, { normalize: anyPortOrder });
  });

  const nodePortObjects = () => [
    service('ns1', 'svc1', { type: 'NodePort', clusterIP: '172.30.0.41', ports: [tcp('p80', 80, { nodePort: 3001 })] }),
    slice('ns1', 'svc1', ['10.180.0.1', { ip: '10.180.2.1', node: TEST_HOSTNAME }], [tcp('p80', 80)]),
  ];
  const lastRule = '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain"';

  it('TestNodePorts: ipv4, localhost-nodeports enabled (KUBE-FIREWALL guards route_localnet)', () => {
    const r = render(stateOf(...nodePortObjects()));
    assertRules(r, NODE_PORTS);
    assertChain(r, 'filter', 'KUBE-FIREWALL', `${FIREWALL_RULE}\n`);
  });

  it('TestNodePorts: ipv4, localhost-nodeports disabled (no KUBE-FIREWALL; loopback excluded from KUBE-NODEPORTS)', () => {
    const r = render(stateOf(...nodePortObjects()), { localhostNodePorts: false });
    assertRules(r, edit(withoutFirewall(NODE_PORTS), [NODEPORTS_JUMP, '-m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS']));
    assertChain(r, 'filter', 'KUBE-FIREWALL', '');
  });

  it('TestNodePorts: ipv4, localhost-nodeports disabled, localhost in nodeport-addresses (127.0.0.1 skipped)', () => {
    const r = render(stateOf(...nodePortObjects()), { localhostNodePorts: false, nodePortAddresses: ['192.168.0.0/24', '127.0.0.1/32'] });
    assertRules(r, edit(withoutFirewall(NODE_PORTS), [NODEPORTS_JUMP, '-d 192.168.0.2 -j KUBE-NODEPORTS']));
  });

  it('TestNodePorts: ipv4, multiple nodeport-addresses (one KUBE-NODEPORTS jump per matching node IP; other family ignored)', () => {
    // GetNodeIPs collects the addresses in a Go map, so kube-proxy's order of these jumps is random.
    const r = render(stateOf(...nodePortObjects()), { localhostNodePorts: false, nodePortAddresses: ['192.168.0.0/24', '192.168.1.0/24', '2001:db8::/64'] });
    const expected = edit(withoutFirewall(NODE_PORTS), [`${lastRule} ${NODEPORTS_JUMP}`, `${lastRule} -d 192.168.0.2 -j KUBE-NODEPORTS\n${lastRule} -d 192.168.1.2 -j KUBE-NODEPORTS`]);
    const sortLastRules = (s: string) => {
      const lines = s.split('\n');
      const at = lines.flatMap((l, i) => (l.startsWith(lastRule) ? [i] : []));
      const sorted = at.map((i) => lines[i]!).sort();
      at.forEach((i, k) => (lines[i] = sorted[k]!));
      return lines.join('\n');
    };
    assertRules(r, expected, { normalize: sortLastRules });
  });

  it('NewProxier: localhostNodePorts is turned off when nodePortAddresses exclude 127.0.0.0/8 (ContainsIPv4Loopback)', () => {
    const r = render(stateOf(...nodePortObjects()), { localhostNodePorts: true, nodePortAddresses: ['192.168.0.0/24'] });
    assertRules(r, edit(withoutFirewall(NODE_PORTS), [NODEPORTS_JUMP, '-d 192.168.0.2 -j KUBE-NODEPORTS']));
  });

  it('TestHealthCheckNodePort: nodePortAddresses 127.0.0.0/8 with localhost NodePorts (jump for 127.0.0.1)', () => {
    const r = render(stateOf(...nodePortObjects()), { nodePortAddresses: ['127.0.0.0/8'] });
    assertRules(r, edit(dedent(NODE_PORTS), [NODEPORTS_JUMP, '-d 127.0.0.1 -j KUBE-NODEPORTS']));
  });

  it('TestNoEndpointsReject: REJECT for the cluster IP, external IP, LB IP and NodePort', () => {
    const r = render(stateOf(...noEndpointsRejectObjects()));
    assertRules(r, NO_ENDPOINTS_REJECT);
  });

  it('TestLoadBalancer: KUBE-FW chain for loadBalancerSourceRanges, LB IPs allowed as sources (range holds the node IP), KUBE-PROXY-FIREWALL drops', () => {
    // "Regression test that excess whitespace gets ignored": " 203.0.113.0/25".
    assertRules(render(stateOf(...loadBalancerObjects())), LOAD_BALANCER);
  });

  it('TestLoadBalancer: source ranges are written as networks (ParseCIDRSloppy masks host bits)', () => {
    assertRules(render(stateOf(...loadBalancerObjects(['192.168.0.7/24', '203.0.113.99/25']))), LOAD_BALANCER);
  });

  const policyService = (policy: 'Local' | 'Cluster') => service('ns1', 'svc1', {
    type: 'LoadBalancer', externalTrafficPolicy: policy, clusterIP: '172.30.0.41', externalIPs: ['192.168.99.11'],
    ports: [tcp('p80', 80, { nodePort: 3001, targetPort: 80 })], healthCheckNodePort: 30000,
  }, ['1.2.3.4']);
  const policySlice = slice('ns1', 'svc1', ['10.180.0.1', { ip: '10.180.2.1', node: TEST_HOSTNAME }], [tcp('p80', 80)]);

  it('TestExternalTrafficPolicyLocal: KUBE-EXT short-circuits pod and node traffic, the rest goes to KUBE-SVL', () => {
    assertRules(render(stateOf(policyService('Local'), policySlice)), ETP_LOCAL);
  });

  it('TestExternalTrafficPolicyCluster: KUBE-EXT masquerades and jumps to KUBE-SVC', () => {
    assertRules(render(stateOf(policyService('Cluster'), policySlice)), ETP_CLUSTER);
  });

  it('TestInternalTrafficPolicy: cluster (three endpoints: --probability 0.3333333333, 0.5000000000), then endpoints deleted (REJECT)', () => {
    const svc = internalTrafficPolicyService('Cluster');
    const eps = internalTrafficPolicySlice([TEST_HOSTNAME, 'host1', 'host2']);
    const o = objects(svc, eps);
    assertRules(render(o.state()), ITP_CLUSTER);
    o.remove(eps);
    assertRules(render(o.state()), filterOnly(`
      -A KUBE-SERVICES -m comment --comment "ns1/svc1 has no endpoints" -m tcp -p tcp -d 172.30.1.1 --dport 80 -j REJECT
      `));
  });

  it('TestInternalTrafficPolicy: local with one local endpoint (clusterIP → KUBE-SVL)', () => {
    assertRules(render(stateOf(internalTrafficPolicyService('Local'), internalTrafficPolicySlice([TEST_HOSTNAME, 'host1', 'host2']))), ITP_LOCAL);
  });

  it('TestInternalTrafficPolicy: local with multiple local endpoints', () => {
    const expected = edit(ITP_LOCAL,
      [':KUBE-SEP-3JOIVZTXZZRGORX4 - [0:0]\n', ':KUBE-SEP-3JOIVZTXZZRGORX4 - [0:0]\n:KUBE-SEP-IO5XOSKPAXIFQXAJ - [0:0]\n'],
      ['-A KUBE-SEP-3JOIVZTXZZRGORX4 -m comment --comment ns1/svc1 -m tcp -p tcp -j DNAT --to-destination 10.0.1.1:80\n',
        '-A KUBE-SEP-3JOIVZTXZZRGORX4 -m comment --comment ns1/svc1 -m tcp -p tcp -j DNAT --to-destination 10.0.1.1:80\n' +
        '-A KUBE-SEP-IO5XOSKPAXIFQXAJ -m comment --comment ns1/svc1 -s 10.0.1.2 -j KUBE-MARK-MASQ\n' +
        '-A KUBE-SEP-IO5XOSKPAXIFQXAJ -m comment --comment ns1/svc1 -m tcp -p tcp -j DNAT --to-destination 10.0.1.2:80\n'],
      ['-A KUBE-SVL-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.1:80" -j KUBE-SEP-3JOIVZTXZZRGORX4\n',
        '-A KUBE-SVL-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.1:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-3JOIVZTXZZRGORX4\n' +
        '-A KUBE-SVL-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.2:80" -j KUBE-SEP-IO5XOSKPAXIFQXAJ\n'],
    );
    assertRules(render(stateOf(internalTrafficPolicyService('Local'), internalTrafficPolicySlice([TEST_HOSTNAME, TEST_HOSTNAME, 'host2']))), expected);
  });

  it('TestInternalTrafficPolicy: local with no local endpoints (DROP "has no local endpoints")', () => {
    const r = render(stateOf(internalTrafficPolicyService('Local'), internalTrafficPolicySlice(['host0', 'host1', 'host2'])));
    assertRules(r, filterOnly(`
      -A KUBE-SERVICES -m comment --comment "ns1/svc1 has no local endpoints" -m tcp -p tcp -d 172.30.1.1 --dport 80 -j DROP
      `));
  });

  const terminatingService = (policy: 'Local' | 'Cluster') => service('ns1', 'svc1', {
    clusterIP: '172.30.1.1', type: 'LoadBalancer', externalTrafficPolicy: policy,
    ports: [tcp('', 80, { targetPort: 80 })], healthCheckNodePort: 30000,
  }, ['1.2.3.4']);
  const terminatingSlice = (eps: Ep[]) => slice('ns1', 'svc1', eps, [tcp('', 80)]);

  it('TestTerminatingEndpointsTrafficPolicyLocal: ready endpoints exist (terminating ones unused)', () => {
    const r = render(stateOf(terminatingService('Local'), terminatingSlice([
      ready('10.0.1.1', TEST_HOSTNAME), ready('10.0.1.2', TEST_HOSTNAME), servingTerminating('10.0.1.3', TEST_HOSTNAME),
      terminating('10.0.1.4', TEST_HOSTNAME), ready('10.0.1.5', 'host-1'),
    ])));
    assertRules(r, TERMINATING_LOCAL_READY);
  });

  it('TestTerminatingEndpointsTrafficPolicyLocal: only terminating endpoints exist (KUBE-SVL falls back to serving+terminating)', () => {
    const r = render(stateOf(terminatingService('Local'), terminatingSlice([
      servingTerminating('10.0.1.2', TEST_HOSTNAME), servingTerminating('10.0.1.3', TEST_HOSTNAME),
      terminating('10.0.1.4', TEST_HOSTNAME), ready('10.0.1.5', 'host-1'),
    ])));
    assertRules(r, TERMINATING_LOCAL_ONLY);
  });

  it('TestTerminatingEndpointsTrafficPolicyLocal: no usable endpoints on any node (REJECT)', () => {
    const r = render(stateOf(terminatingService('Local'), terminatingSlice([terminating('10.0.1.5', TEST_HOSTNAME), terminating('10.0.1.5', 'host-1')])));
    assertRules(r, filterOnly(`
      -A KUBE-NODEPORTS -m comment --comment "ns1/svc1 health check node port" -m tcp -p tcp --dport 30000 -j ACCEPT
      -A KUBE-SERVICES -m comment --comment "ns1/svc1 has no endpoints" -m tcp -p tcp -d 172.30.1.1 --dport 80 -j REJECT
      -A KUBE-EXTERNAL-SERVICES -m comment --comment "ns1/svc1 has no endpoints" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j REJECT
      `));
  });

  it('TestTerminatingEndpointsTrafficPolicyCluster: only terminating endpoints exist (cluster endpoints fall back to serving+terminating)', () => {
    const r = render(stateOf(terminatingService('Cluster'), terminatingSlice([
      servingTerminating('10.0.1.2', TEST_HOSTNAME), servingTerminating('10.0.1.3', TEST_HOSTNAME),
      terminating('10.0.1.4', 'another-host'), servingTerminating('10.0.1.5', 'another-host'),
    ])));
    assertRules(r, TERMINATING_CLUSTER_ONLY);
  });
});

describe('renderIptables: masquerading', () => {
  // The cluster-IP masquerade rules: in KUBE-SVC for svc1 and svc2, in KUBE-SVL for svc3 (iTP Local).
  const notLocal = ' ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ';
  const clusterIPMasq = [
    '-A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80',
    '-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80',
    '-A KUBE-SVL-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80',
  ];
  const podTraffic = '-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "pod traffic for ns2/svc2:p80 external destinations" -s 10.0.0.0/8 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT\n';

  it('TestInternalExternalMasquerade: base (local detector, no masqueradeAll)', () => {
    assertRules(render(stateOf(...internalExternalMasqueradeObjects())), MASQUERADE_BASE);
  });

  it('TestInternalExternalMasquerade: masqueradeAll (cluster-IP traffic masqueraded whatever its source)', () => {
    const expected = edit(dedent(MASQUERADE_BASE), ...clusterIPMasq.map((l): [string, string] => [`${l}${notLocal}`, `${l} -j KUBE-MARK-MASQ`]));
    assertRules(render(stateOf(...internalExternalMasqueradeObjects()), { masqueradeAll: true }), expected);
  });

  it('TestInternalExternalMasquerade: no LocalTrafficDetector (no cluster-IP masquerade, no eTP:Local pod short-circuit)', () => {
    const expected = edit(dedent(MASQUERADE_BASE), [podTraffic, ''], ...clusterIPMasq.map((l): [string, string] => [`${l}${notLocal}\n`, '']));
    assertRules(render(stateOf(...internalExternalMasqueradeObjects()), { clusterCIDRs: [] }), expected);
  });

  it('TestInternalExternalMasquerade: masqueradeAll, no LocalTrafficDetector', () => {
    const expected = edit(dedent(MASQUERADE_BASE), [podTraffic, ''], ...clusterIPMasq.map((l): [string, string] => [`${l}${notLocal}`, `${l} -j KUBE-MARK-MASQ`]));
    assertRules(render(stateOf(...internalExternalMasqueradeObjects()), { masqueradeAll: true, clusterCIDRs: [] }), expected);
  });

  for (const randomFully of [false, true]) {
    it(`TestMasqueradeRule: randomFully ${randomFully}`, () => {
      const r = render(stateOf(), { randomFully });
      assertChain(r, 'nat', 'KUBE-POSTROUTING', `
        -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
        -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
        -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE${randomFully ? ' --random-fully' : ''}
        `);
    });
  }

  it('NewProxier: the mark for masqueradeBit 14 is fmt.Sprintf("%#08x", 1<<14) = "0x00004000", and the rules use the configured mark', () => {
    assert.equal(masqueradeMarkFor(14), '0x00004000');
    const r = render(stateOf(), { masqueradeMark: masqueradeMarkFor(14) });
    assertChain(r, 'nat', 'KUBE-MARK-MASQ', '-A KUBE-MARK-MASQ -j MARK --or-mark 0x00004000\n');
    assertChain(r, 'filter', 'KUBE-FORWARD', `
      -A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
      -A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x00004000/0x00004000 -j ACCEPT
      -A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
      `);
  });

  // TestDropInvalidRule (the nfacct case needs an nfacct counter, which the model has no notion of).
  for (const tcpLiberal of [false, true]) {
    it(`TestDropInvalidRule: tcpLiberal is ${tcpLiberal} and nfacctEnsured is false`, () => {
      const r = render(stateOf(), { conntrackTCPLiberal: tcpLiberal });
      assertChain(r, 'filter', 'KUBE-FORWARD', (tcpLiberal ? '' : '-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP\n') + dedent(`
        -A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
        -A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
        `));
    });
  }
});

describe('renderIptables: large clusters, metrics, probabilities', () => {
  /** kube-proxy's countEndpointsAndComments: DNAT rules of KUBE-SEP chains, those with a comment,
   *  and the (last) one mentioning `match`. */
  function countEndpointsAndComments(text: string, match: string): [string, number, number] {
    let matched = '';
    let endpoints = 0;
    let comments = 0;
    for (const line of text.split('\n')) {
      if (!line.startsWith('-A KUBE-SEP-') || !line.includes('-j DNAT')) continue;
      endpoints++;
      if (line.includes('--comment')) comments++;
      if (line.includes(match)) matched = line;
    }
    return [matched, endpoints, comments];
  }

  it('TestSyncProxyRulesLargeClusterMode: endpoint comments dropped above 1000 endpoints; stale chains deleted only when iptables-save is read', () => {
    const half = 1000 / 2 - 1;
    const addrs = (b: number) => Array.from({ length: half }, (_, i) => `10.${b}.${i % 256}.${Math.floor(i / 256)}`);
    const svc4 = service('ns4', 'svc4', { type: 'ClusterIP', clusterIP: '172.30.0.44', ports: [tcp('p8082', 8082)] });
    const o = objects(
      service('ns1', 'svc1', { type: 'ClusterIP', clusterIP: '172.30.0.41', ports: [tcp('p80', 80)] }),
      service('ns2', 'svc2', { type: 'ClusterIP', clusterIP: '172.30.0.42', ports: [tcp('p8080', 8080)] }),
      service('ns3', 'svc3', { type: 'ClusterIP', clusterIP: '172.30.0.43', ports: [tcp('p8081', 8081)] }),
      slice('ns1', 'svc1', addrs(0), [tcp('p80', 80)]),
      slice('ns2', 'svc2', addrs(1), [tcp('p8080', 8080)]),
    );
    const fake = new FakeNat();
    const sync = (o2: { full?: boolean; save?: boolean } = {}) => {
      const changedServices = o2.full ? null : new Set(o.tracker.changedServices());
      const r = render(o.state(), { masqueradeAll: true }, { changedServices, existingNatChains: o2.save === false ? null : fake.existing() });
      fake.restore(r.text);
      return r;
    };
    let expectedEndpoints = 2 * half;

    let r = sync({ full: true });
    assert.equal(r.largeClusterMode, false);
    assert.deepEqual(countEndpointsAndComments(r.text, '10.0.0.0'),
      ['-A KUBE-SEP-DKGQUZGBKLTPAR56 -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.0.0.0:80', expectedEndpoints, expectedEndpoints]);

    // 1001 endpoints: a partial sync writes only svc3's endpoints, without comments.
    o.apply(slice('ns3', 'svc3', ['203.0.113.4', '203.0.113.8', '203.0.113.12'], [tcp('p8081', 8081)]));
    r = sync();
    assert.equal(r.largeClusterMode, true);
    assert.deepEqual(countEndpointsAndComments(r.text, '203.0.113.4'),
      ['-A KUBE-SEP-RUVVH7YV3PHQBDOS -m tcp -p tcp -j DNAT --to-destination 203.0.113.4:8081', 3, 0]);

    // A full sync rewrites the older services without comments too.
    r = sync({ full: true });
    expectedEndpoints += 3;
    assert.deepEqual(countEndpointsAndComments(r.text, '10.0.0.0'),
      ['-A KUBE-SEP-DKGQUZGBKLTPAR56 -m tcp -p tcp -j DNAT --to-destination 10.0.0.0:80', expectedEndpoints, 0]);

    o.apply(svc4, slice('ns4', 'svc4', ['10.4.0.1'], [tcp('p8082', 8082)]));
    r = sync();
    assert.deepEqual(countEndpointsAndComments(r.text, '10.4.0.1'),
      ['-A KUBE-SEP-SU5STNODRYEWJAUF -m tcp -p tcp -j DNAT --to-destination 10.4.0.1:8082', 1, 0]);

    // Within syncPeriod of the last cleanup kube-proxy skips iptables-save: nothing is deleted.
    o.remove(svc4);
    r = sync({ save: false });
    assert.deepEqual(countEndpointsAndComments(r.text, '10.4.0.1'), ['', 0, 0]);
    assert.ok(!r.text.includes('-X '), 'iptables data unexpectedly contains chain deletions');

    // After a long enough delay the (no-change) sync reads the chains and deletes the stale ones.
    r = sync();
    assert.deepEqual(countEndpointsAndComments(r.text, '10.4.0.1'), ['', 0, 0]);
    assert.ok(r.text.includes('-X KUBE-SVC-EBDQOQU5SJFXRIL3\n'), 'iptables data does not contain chain deletion');
    assert.ok(r.text.includes('-X KUBE-SEP-SU5STNODRYEWJAUF\n'), 'iptables data does not contain endpoint deletions');

    r = sync({ full: true });
    assert.equal(countEndpointsAndComments(r.text, '10.0.0.0')[1], expectedEndpoints);
  });

  it('TestNoEndpointsMetric: Local policies without a local endpoint (sync_proxy_rules_no_local_endpoints_total)', () => {
    const cases: Array<{ itp?: 'Local'; etp?: 'Local'; nodes: string[]; internal: number; external: number }> = [
      { itp: 'Local', nodes: [TEST_HOSTNAME, 'host1', 'host2'], internal: 0, external: 0 },
      { etp: 'Local', nodes: [TEST_HOSTNAME, 'host1', 'host2'], internal: 0, external: 0 },
      { itp: 'Local', etp: 'Local', nodes: [TEST_HOSTNAME, 'host1', 'host2'], internal: 0, external: 0 },
      { itp: 'Local', nodes: ['host0', 'host1', 'host2'], internal: 1, external: 0 },
      { etp: 'Local', nodes: ['host0', 'host1', 'host2'], internal: 0, external: 1 },
      { itp: 'Local', etp: 'Local', nodes: ['host0', 'host1', 'host2'], internal: 1, external: 1 },
      { itp: 'Local', etp: 'Local', nodes: [], internal: 0, external: 0 },
    ];
    for (const c of cases) {
      const svc = service('ns1', 'svc1', {
        clusterIP: '172.30.1.1', selector: { foo: 'bar' }, ports: [tcp('', 80, { nodePort: 123 })],
        ...(c.itp ? { internalTrafficPolicy: c.itp } : {}),
        ...(c.etp ? { type: 'NodePort', externalTrafficPolicy: c.etp } : {}),
      });
      const eps = internalTrafficPolicySlice(c.nodes);
      assert.deepEqual(render(stateOf(svc, eps)).noLocalEndpoints, { internal: c.internal, external: c.external }, JSON.stringify(c));
    }
  });

  it('TestComputeProbability: Go "%0.10f" of 1/n, strictly increasing as n falls', () => {
    const expected: Record<number, string> = {
      1: '1.0000000000', 2: '0.5000000000', 3: '0.3333333333', 10: '0.1000000000', 100: '0.0100000000', 1000: '0.0010000000',
      10000: '0.0001000000', 100000: '0.0000100000', 100001: '0.0000099999',
      // An exact tie rounds half to even in Go (strconv's decimal rounding): 1/2048 = 0.00048828125
      // exactly. (1/10240 is not a tie: the double is a little above 0.00009765625.)
      2048: '0.0004882812', 10240: '0.0000976563',
    };
    for (const [n, p] of Object.entries(expected)) assert.equal(probability(Number(n)), p, `computeProbability(${n})`);
    let prev = 0;
    for (let i = 100000; i > 1; i--) {
      const cur = Number(probability(i));
      assert.ok(cur > prev, `probability unexpectedly <= previous for ${i}`);
      prev = cur;
    }
  });

  it('--probability in the rules for 2048 endpoints: the first jump has 1/2048 rounded half to even (0.0004882812)', () => {
    const ips = Array.from({ length: 2048 }, (_, i) => `10.1.${Math.floor(i / 256)}.${i % 256}`);
    const r = render(stateOf(
      service('ns1', 'svc1', { clusterIP: '172.30.0.41', ports: [tcp('p80', 80)] }),
      slice('ns1', 'svc1', ips, [tcp('p80', 80)]),
    ));
    const jumps = iptablesChainRules(r.text, 'nat', 'KUBE-SVC-XPGD46QRK7WJZT7O').split('\n').filter((l) => l.includes('-j KUBE-SEP-'));
    assert.equal(jumps.length, 2048);
    assert.match(jumps[0]!, /^-A KUBE-SVC-XPGD46QRK7WJZT7O -m statistic --mode random --probability 0\.0004882812 -j KUBE-SEP-/);
    assert.match(jumps[1]!, / --probability 0\.0004885198 /); // 1/2047
    assert.match(jumps[2046]!, / --probability 0\.5000000000 /);
  });
});
