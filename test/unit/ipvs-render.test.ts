// renderIpvs against kube-proxy's own IPVS expectations: kubernetes pkg/proxy/ipvs/proxier_test.go
// (v1.31 era) and the syncProxyRules /
// writeIptablesRules code of pkg/proxy/ipvs/proxier.go it exercises. Each it() names the Go test
// it reproduces. Inputs go through the real model (Kubernetes JSON → ChangeTracker → ProxyState).
//
// How the upstream checkers map onto this file:
// - DeepEqual on FakeIPVS (table tests)  → expectIPVS: exactly these VS keys, scheduler rr, no
//   persistence, and per VS exactly these real servers, each weight 1 ({} = none).
// - checkIPVS (VSNum + one VS's RS)     → checkIPVS (but it fails when the VS does not exist,
//   where upstream's silently checks nothing).
// - checkIPSet                           → checkIPSet: per listed set name, the sorted entries.
// - checkIptables                        → checkIptables: per listed chain, the `-A` rules of nat
//   then filter, compared by jump target and --match-set name, in order.
//
// Deliberate differences from the upstream fake, noted where they matter:
// - The fake NewFakeProxier builds every ipset with isIPv6=false, so its IPv6 tests expect
//   un-prefixed names; kube-xdp's IPv6 renderer uses kube-proxy's production names (KUBE-6-…,
//   cut to 31 characters), so the IPv6 tests here expect those.
// - The fake's masqueradeMark is ""; production kube-proxy prints 1<<14 with "%#08x", which
//   kube-xdp's masqueradeMarkFor(14) reproduces as 0x00004000 (iptables-save shows 0x4000).
// - The fake's nodeName is "test-node"; the shared helpers use kube-proxy's iptables tests'
//   "test-hostname" (TEST_HOSTNAME), which plays the same role here.
// - The fake netlink handle only lists node IPs of the proxier's family (isValidForSet), so the
//   configs here get only same-family nodeAddresses, as kube-xdp's setup does.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { masqueradeMarkFor } from '../../src/dataplane/iptables/config.js';
import { SET_IDS, setName } from '../../src/dataplane/ipvs/ipsets.js';
import { nodePortIPs, renderIpvs, type IpvsConfig, type IpvsRender } from '../../src/dataplane/ipvs/render.js';
import { hostPort, vsKey } from '../../src/dataplane/ipvs/virtual-servers.js';
import type { IPFamily, ProxyState } from '../../src/model/types.js';
import { objects, type Json } from './helpers/kube-objects.js';
import { TEST_HOSTNAME, parseIptablesDump, service, slice, type Ep } from './helpers/kube-proxy-fake.js';

// ---- the fake proxier ------------------------------------------------------------------------

const MARK = masqueradeMarkFor(14);

/** NewFakeProxier(…, nodeIPs nil, …): no node addresses, nodePortAddresses nil (match all),
 *  NoOp local detector, masqueradeAll false, scheduler rr, nodeIP nil. */
const FAKE_V4: IpvsConfig = Object.freeze({
  family: 'IPv4', nodeIP: null, nodeAddresses: [], nodePortAddresses: [], clusterCIDRs: [], masqueradeAll: false,
  masqueradeMark: MARK, randomFully: false, scheduler: 'rr',
});
const FAKE_V6: IpvsConfig = Object.freeze({ ...FAKE_V4, family: 'IPv6' });

const cfg4 = (o: Partial<IpvsConfig> = {}): IpvsConfig => ({ ...FAKE_V4, ...o });
const cfg6 = (o: Partial<IpvsConfig> = {}): IpvsConfig => ({ ...FAKE_V6, ...o });

/** A dual-stack node, so that each family's renderer has to do its own family filtering. */
const stateOf = (...objs: Json[]): ProxyState => objects(...objs).state({ ipFamilies: ['IPv4', 'IPv6'] });

const port = (name: string, p: number, protocol: 'TCP' | 'UDP' | 'SCTP', extra: Json = {}): Json => ({ name, port: p, protocol, ...extra });

// ---- the checkers ----------------------------------------------------------------------------

/** "10.20.30.41:80/TCP", "[2020::1]:80/TCP" */
const key = (ip: string, p: number, proto: string) => vsKey({ address: ip, port: p, protocol: proto as 'TCP' });
const rsList = (r: IpvsRender, k: string) => {
  const vs = r.virtualServers.find((v) => vsKey(v) === k);
  assert.ok(vs, `no virtual server ${k}; have ${r.virtualServers.map(vsKey).join(', ')}`);
  return vs.realServers;
};

/** Every VS key once (FakeIPVS is a map keyed by ServiceKey: a second AddVirtualServer is not a second VS). */
function assertUniqueKeys(r: IpvsRender): void {
  const keys = r.virtualServers.map(vsKey);
  assert.deepEqual(keys.filter((k, i) => keys.indexOf(k) !== i), [], 'duplicate virtual servers');
}

/** reflect.DeepEqual(fakeIPVS, expectedIPVS): exactly these VS, each {scheduler rr, Flags 0,
 *  Timeout 0} with exactly these real servers ("ip:port", sorted; weight 1, no conns). */
function expectIPVS(r: IpvsRender, expected: Record<string, string[]>): void {
  assertUniqueKeys(r);
  assert.deepEqual(r.virtualServers.map(vsKey).sort(), Object.keys(expected).sort(), 'virtual servers');
  for (const vs of r.virtualServers) {
    const k = vsKey(vs);
    assert.equal(vs.scheduler, 'rr', `${k} scheduler`);
    assert.equal(vs.persistenceTimeout, null, `${k} timeout`);
    assert.deepEqual(vs.schedFlags, [], `${k} flags`);
    const rs = vs.realServers.map((x) => `${hostPort(x.address, x.port)} w${x.weight}`).sort();
    assert.deepEqual(rs, expected[k]!.map((x) => `${x} w1`).sort(), `real servers of ${k}`);
  }
}

/** checkIPVS: VSNum virtual servers in all; the named one has exactly these real servers. */
function checkIPVS(r: IpvsRender, e: { vsNum: number; ip: string; port: number; protocol: string; rs: string[] }): void {
  assertUniqueKeys(r);
  assert.equal(r.virtualServers.length, e.vsNum, `VS count (${r.virtualServers.map(vsKey).join(', ')})`);
  const rs = rsList(r, key(e.ip, e.port, e.protocol)).map((x) => hostPort(x.address, x.port)).sort();
  assert.deepEqual(rs, [...e.rs].sort(), `real servers of ${key(e.ip, e.port, e.protocol)}`);
}

/** The rendered sets by their kernel names. */
function setsByName(r: IpvsRender, family: IPFamily): Map<string, string[]> {
  return new Map(SET_IDS.map((id) => [setName(id, family), [...(r.ipsets.get(id) ?? [])].sort()]));
}

/** checkIPSet: for each listed set (by name), exactly these entries (Entry.String() form). */
function checkIPSet(r: IpvsRender, family: IPFamily, expected: Record<string, string[]>): void {
  const sets = setsByName(r, family);
  for (const [name, entries] of Object.entries(expected)) {
    assert.ok(sets.has(name), `no ipset named ${name}; have ${[...sets.keys()].join(', ')}`);
    assert.deepEqual(sets.get(name), [...entries].sort(), `entries of ipset ${name}`);
  }
}

/** "JUMP@SET" or a bare "JUMP" (then the rule must have no --match-set). */
type Jump = string;

/** The `-A chain` rules of nat then filter (the fake's SaveInto(NAT) + SaveInto(Filter)), or of one table. */
function chainRules(r: IpvsRender, chain: string, table?: 'nat' | 'filter'): string[] {
  const tables = parseIptablesDump(r.iptables);
  assert.deepEqual(tables.map((t) => t.name), ['nat', 'filter'], 'tables');
  return tables.filter((t) => table === undefined || t.name === table)
    .flatMap((t) => t.chains.filter((c) => c.name === chain).flatMap((c) => c.rules.map((x) => x.raw)));
}

/** checkIptables: per listed chain, the jump target and --match-set name of every rule, in order. */
function checkIptables(r: IpvsRender, expected: Record<string, Jump[]>): void {
  for (const [chain, jumps] of Object.entries(expected)) {
    const got = chainRules(r, chain).map((raw) => {
      const j = / -j (\S+)/.exec(raw)?.[1] ?? '';
      const set = / --match-set (\S+)/.exec(raw)?.[1];
      return set ? `${j}@${set}` : j;
    });
    assert.deepEqual(got, jumps, `rules of ${chain}`);
  }
}

/** Exact `-A` lines of one chain (nat then filter). */
const exactRules = (r: IpvsRender, chain: string) => chainRules(r, chain);

// ---- scenario builders (the Go tests' literal services) --------------------------------------------

/** makeTestService("ns1", "svc1", …) with one port, as the table tests write it. */
const svc1 = (spec: Json, lbIPs: string[] = []) => service('ns1', 'svc1', spec, lbIPs);

/** Endpoints eps on port p80/80 of the given protocol, in slice svc1-n. */
function svc1Slice(n: number, addressType: 'IPv4' | 'IPv6', eps: Ep[], protocol: 'TCP' | 'UDP' | 'SCTP' = 'TCP'): Json {
  const s = slice('ns1', 'svc1', eps, [port('p80', 80, protocol)], addressType);
  s.metadata.name = `svc1-${n}`;
  return s;
}

const LOCAL_AND_REMOTE: Ep[] = [{ ip: '10.180.0.1', node: TEST_HOSTNAME }, { ip: '10.180.1.1', node: 'other-node' }];

// ---- TestNodePortIPv4 ----------------------------------------------------------------------------

describe('kube-proxy IPVS TestNodePortIPv4', () => {
  it('TestNodePortIPv4: 1 service with node port, has 2 endpoints', () => {
    const state = stateOf(
      svc1({ type: 'NodePort', clusterIP: '10.20.30.41', ports: [port('p80', 80, 'TCP', { nodePort: 3001 })] }),
      svc1Slice(1, 'IPv4', ['10.180.0.1']),
      svc1Slice(2, 'IPv6', ['1002:ab8::2:10']),
    );
    // nodeIPs ["100.101.102.103", "2001:db8::1:1"]: the IPv4 proxier's netlink only lists the first.
    const r = renderIpvs(state, cfg4({ nodeAddresses: ['100.101.102.103'] }));
    expectIPVS(r, {
      '10.20.30.41:80/TCP': ['10.180.0.1:80'],
      '100.101.102.103:3001/TCP': ['10.180.0.1:80'],
    });
    assert.deepEqual(r.nodePortIPs, ['100.101.102.103']);
  });

  it('TestNodePortIPv4: 1 UDP service with node port, has endpoints', () => {
    const state = stateOf(
      svc1({ type: 'NodePort', clusterIP: '10.20.30.41', ports: [port('p80', 80, 'UDP', { nodePort: 3001 })] }),
      svc1Slice(1, 'IPv4', ['10.180.0.1'], 'UDP'),
    );
    const r = renderIpvs(state, cfg4({ nodeAddresses: ['100.101.102.103'], nodePortAddresses: ['0.0.0.0/0'] }));
    expectIPVS(r, {
      '10.20.30.41:80/UDP': ['10.180.0.1:80'],
      '100.101.102.103:3001/UDP': ['10.180.0.1:80'],
    });
    checkIPSet(r, 'IPv4', { 'KUBE-NODE-PORT-UDP': ['3001'] });
    checkIptables(r, {
      'KUBE-NODE-PORT': ['KUBE-MARK-MASQ@KUBE-NODE-PORT-UDP', 'ACCEPT@KUBE-HEALTH-CHECK-NODE-PORT'],
      'KUBE-SERVICES': ['RETURN', 'KUBE-MARK-MASQ@KUBE-CLUSTER-IP', 'KUBE-NODE-PORT', 'ACCEPT@KUBE-CLUSTER-IP'],
    });
    // The NodePort rule matches the protocol (ipsetWithIptablesChain protocolMatch, matchType dst).
    assert.deepEqual(exactRules(r, 'KUBE-NODE-PORT')[0],
      '-A KUBE-NODE-PORT -p udp -m comment --comment "Kubernetes nodeport UDP port for masquerade purpose" -m set --match-set KUBE-NODE-PORT-UDP dst -j KUBE-MARK-MASQ');
  });

  it('TestNodePortIPv4: service has node port but no endpoints', () => {
    const state = stateOf(svc1({ type: 'NodePort', clusterIP: '10.20.30.41', ports: [port('p80', 80, 'TCP', { nodePort: 3001 })] }));
    const r = renderIpvs(state, cfg4({ nodeAddresses: ['100.101.102.103'] }));
    expectIPVS(r, { '10.20.30.41:80/TCP': [], '100.101.102.103:3001/TCP': [] });
    checkIPSet(r, 'IPv4', { 'KUBE-NODE-PORT-TCP': ['3001'], 'KUBE-CLUSTER-IP': ['10.20.30.41,tcp:80'] });
  });

  it('TestNodePortIPv4: node port service with protocol sctp on a node with multiple nodeIPs', () => {
    const state = stateOf(
      svc1({ type: 'NodePort', clusterIP: '10.20.30.41', ports: [port('p80', 80, 'SCTP', { nodePort: 3001 })] }),
      svc1Slice(1, 'IPv4', ['10.180.0.1'], 'SCTP'),
    );
    // nodeIPs 100.101.102.103/.104/.105 plus three IPv6 ones (invisible to the IPv4 proxier).
    const r = renderIpvs(state, cfg4({ nodeAddresses: ['100.101.102.103', '100.101.102.104', '100.101.102.105'] }));
    expectIPVS(r, {
      '10.20.30.41:80/SCTP': ['10.180.0.1:80'],
      '100.101.102.103:3001/SCTP': ['10.180.0.1:80'],
      '100.101.102.104:3001/SCTP': ['10.180.0.1:80'],
      '100.101.102.105:3001/SCTP': ['10.180.0.1:80'],
    });
    // hash:ip,port with one entry per node IP (not bitmap:port as for TCP and UDP).
    checkIPSet(r, 'IPv4', {
      'KUBE-NODE-PORT-SCTP-HASH': ['100.101.102.103,sctp:3001', '100.101.102.104,sctp:3001', '100.101.102.105,sctp:3001'],
      'KUBE-NODE-PORT-LOCAL-SCTP-HASH': [],
    });
    checkIptables(r, { 'KUBE-NODE-PORT': ['KUBE-MARK-MASQ@KUBE-NODE-PORT-SCTP-HASH', 'ACCEPT@KUBE-HEALTH-CHECK-NODE-PORT'] });
    assert.equal(exactRules(r, 'KUBE-NODE-PORT')[0],
      `-A KUBE-NODE-PORT -p sctp -m comment --comment "Kubernetes nodeport SCTP port for masquerade purpose with type 'hash ip:port'" -m set --match-set KUBE-NODE-PORT-SCTP-HASH dst,dst -j KUBE-MARK-MASQ`);
  });

  it('TestNodePortIPv4: node port service with protocol sctp and externalTrafficPolicy local', () => {
    const state = stateOf(
      svc1({ type: 'NodePort', clusterIP: '10.20.30.41', externalTrafficPolicy: 'Local', ports: [port('p80', 80, 'SCTP', { nodePort: 3001 })] }),
      svc1Slice(1, 'IPv4', LOCAL_AND_REMOTE, 'SCTP'),
    );
    const r = renderIpvs(state, cfg4({ nodeAddresses: ['100.101.102.103'] }));
    expectIPVS(r, {
      // ClusterIP traffic is not subject to externalTrafficPolicy: every endpoint.
      '10.20.30.41:80/SCTP': ['10.180.0.1:80', '10.180.1.1:80'],
      '100.101.102.103:3001/SCTP': ['10.180.0.1:80'],
    });
    checkIPSet(r, 'IPv4', {
      'KUBE-NODE-PORT-SCTP-HASH': ['100.101.102.103,sctp:3001'],
      'KUBE-NODE-PORT-LOCAL-SCTP-HASH': ['100.101.102.103,sctp:3001'],
    });
    checkIptables(r, {
      'KUBE-NODE-PORT': ['RETURN@KUBE-NODE-PORT-LOCAL-SCTP-HASH', 'KUBE-MARK-MASQ@KUBE-NODE-PORT-SCTP-HASH', 'ACCEPT@KUBE-HEALTH-CHECK-NODE-PORT'],
    });
    assert.equal(exactRules(r, 'KUBE-NODE-PORT')[0],
      `-A KUBE-NODE-PORT -p sctp -m comment --comment "Kubernetes nodeport SCTP port with externalTrafficPolicy=local with type 'hash ip:port'" -m set --match-set KUBE-NODE-PORT-LOCAL-SCTP-HASH dst,dst -j RETURN`);
  });
});

// ---- TestNodePortIPv6 (KUBE-6- names) ------------------------------------------------------------------

describe('kube-proxy IPVS TestNodePortIPv6', () => {
  it('TestNodePortIPv6: 1 service with node port, has 2 endpoints', () => {
    const state = stateOf(
      svc1({ type: 'NodePort', clusterIP: '2020::1', ports: [port('p80', 80, 'TCP', { nodePort: 3001 })] }),
      svc1Slice(1, 'IPv4', ['10.180.0.1']),
      svc1Slice(2, 'IPv6', ['1002:ab8::2:10']),
    );
    const r = renderIpvs(state, cfg6({ nodeAddresses: ['2001:db8::1:1'] }));
    expectIPVS(r, {
      '[2001:db8::1:1]:3001/TCP': ['[1002:ab8::2:10]:80'],
      '[2020::1]:80/TCP': ['[1002:ab8::2:10]:80'],
    });
    checkIPSet(r, 'IPv6', { 'KUBE-6-NODE-PORT-TCP': ['3001'], 'KUBE-6-CLUSTER-IP': ['2020::1,tcp:80'], 'KUBE-6-IPVS-IPS': ['2020::1'] });
    // And the IPv4 proxier of the same node has nothing to do with this IPv6-only Service.
    expectIPVS(renderIpvs(state, cfg4({ nodeAddresses: ['100.101.102.103'] })), {});
  });

  it('TestNodePortIPv6: 1 UDP service with node port, has endpoints (no action on IPv6 Proxier)', () => {
    const state = stateOf(
      svc1({ type: 'NodePort', clusterIP: '10.20.30.41', ports: [port('p80', 80, 'UDP', { nodePort: 3001 })] }),
      // AddressType IPv6 with an IPv4 address, as upstream writes it.
      svc1Slice(1, 'IPv6', ['10.180.0.1'], 'UDP'),
    );
    const r = renderIpvs(state, cfg6({ nodeAddresses: [], nodePortAddresses: ['0.0.0.0/0'] }));
    expectIPVS(r, {});
    assert.deepEqual(r.bindAddresses, []);
    for (const [name, entries] of setsByName(r, 'IPv6')) assert.deepEqual(entries, [], `ipset ${name}`);
  });

  it('TestNodePortIPv6: service has node port but no endpoints', () => {
    const state = stateOf(svc1({ type: 'NodePort', clusterIP: '2020::1', ports: [port('p80', 80, 'TCP', { nodePort: 3001 })] }));
    const r = renderIpvs(state, cfg6({ nodeAddresses: ['2001:db8::1:1'] }));
    expectIPVS(r, { '[2020::1]:80/TCP': [], '[2001:db8::1:1]:3001/TCP': [] });
  });

  it('TestNodePortIPv6: node port service with protocol sctp on a node with multiple nodeIPs (KUBE-6- set names)', () => {
    const state = stateOf(
      svc1({ type: 'NodePort', clusterIP: '2020::1', ports: [port('p80', 80, 'SCTP', { nodePort: 3001 })] }),
      svc1Slice(1, 'IPv6', ['2001::1'], 'SCTP'),
    );
    const r = renderIpvs(state, cfg6({ nodeAddresses: ['2001:db8::1:1', '2001:db8::1:2'] }));
    expectIPVS(r, {
      '[2001:db8::1:1]:3001/SCTP': ['[2001::1]:80'],
      '[2001:db8::1:2]:3001/SCTP': ['[2001::1]:80'],
      '[2020::1]:80/SCTP': ['[2001::1]:80'],
    });
    // Upstream's fake expects "KUBE-NODE-PORT-SCTP-HASH" (isIPv6=false); production NewIPSet renames.
    checkIPSet(r, 'IPv6', { 'KUBE-6-NODE-PORT-SCTP-HASH': ['2001:db8::1:1,sctp:3001', '2001:db8::1:2,sctp:3001'] });
    checkIptables(r, { 'KUBE-NODE-PORT': ['KUBE-MARK-MASQ@KUBE-6-NODE-PORT-SCTP-HASH', 'ACCEPT@KUBE-6-HEALTH-CHECK-NODE-PORT'] });
    assert.ok(!r.iptables.includes('--match-set KUBE-NODE-PORT-SCTP-HASH '), 'an IPv4 set name in IPv6 rules');
  });

  it('TestNodePortIPv6: sctp with externalTrafficPolicy local uses the truncated KUBE-6-NODE-PORT-LOCAL-SCTP-HAS', () => {
    // 1e on the IPv6 proxier: "KUBE-6-NODE-PORT-LOCAL-SCTP-HASH" is 32 characters, NewIPSet cuts it to 31.
    const state = stateOf(
      svc1({ type: 'NodePort', clusterIP: '2020::1', externalTrafficPolicy: 'Local', ports: [port('p80', 80, 'SCTP', { nodePort: 3001 })] }),
      svc1Slice(1, 'IPv6', [{ ip: '2001::1', node: TEST_HOSTNAME }, { ip: '2001::2', node: 'other-node' }], 'SCTP'),
    );
    const r = renderIpvs(state, cfg6({ nodeAddresses: ['2001:db8::1:1'] }));
    expectIPVS(r, {
      '[2020::1]:80/SCTP': ['[2001::1]:80', '[2001::2]:80'],
      '[2001:db8::1:1]:3001/SCTP': ['[2001::1]:80'],
    });
    checkIPSet(r, 'IPv6', {
      'KUBE-6-NODE-PORT-SCTP-HASH': ['2001:db8::1:1,sctp:3001'],
      'KUBE-6-NODE-PORT-LOCAL-SCTP-HAS': ['2001:db8::1:1,sctp:3001'],
      'KUBE-6-LOOP-BACK': ['2001::1,sctp:80,2001::1'],
    });
    checkIptables(r, {
      'KUBE-NODE-PORT': ['RETURN@KUBE-6-NODE-PORT-LOCAL-SCTP-HAS', 'KUBE-MARK-MASQ@KUBE-6-NODE-PORT-SCTP-HASH', 'ACCEPT@KUBE-6-HEALTH-CHECK-NODE-PORT'],
      'KUBE-POSTROUTING': ['MASQUERADE@KUBE-6-LOOP-BACK', 'RETURN', 'MARK', 'MASQUERADE'],
    });
    for (const name of setsByName(r, 'IPv6').keys()) {
      assert.ok(name.startsWith('KUBE-6-') && name.length <= 31, `ipset name ${name}`);
    }
  });
});

// ---- TestIPv4Proxier / TestIPv6Proxier -----------------------------------------------------------------

describe('kube-proxy IPVS TestIPv4Proxier / TestIPv6Proxier', () => {
  const twoServices = () => stateOf(
    svc1({ clusterIP: '10.20.30.41', ports: [port('p80', 80, 'TCP')] }),
    service('ns2', 'svc2', { clusterIP: '1002:ab8::2:1', ports: [port('p8080', 8080, 'TCP')] }),
    svc1Slice(1, 'IPv4', ['10.180.0.1']),
    slice('ns2', 'svc2', ['1009:ab8::5:6'], [port('p8080', 8080, 'TCP')], 'IPv6'),
  );

  it('TestIPv4Proxier: 2 services with Cluster IP, each with endpoints', () => {
    const r = renderIpvs(twoServices(), cfg4());
    expectIPVS(r, { '10.20.30.41:80/TCP': ['10.180.0.1:80'] });
    assert.deepEqual(r.bindAddresses, ['10.20.30.41']);
    checkIPSet(r, 'IPv4', { 'KUBE-CLUSTER-IP': ['10.20.30.41,tcp:80'], 'KUBE-IPVS-IPS': ['10.20.30.41'] });
  });

  it('TestIPv6Proxier: 2 services with Cluster IP, each with endpoints', () => {
    const r = renderIpvs(twoServices(), cfg6());
    expectIPVS(r, { '[1002:ab8::2:1]:8080/TCP': ['[1009:ab8::5:6]:8080'] });
    assert.deepEqual(r.bindAddresses, ['1002:ab8::2:1']);
    checkIPSet(r, 'IPv6', { 'KUBE-6-CLUSTER-IP': ['1002:ab8::2:1,tcp:8080'], 'KUBE-6-IPVS-IPS': ['1002:ab8::2:1'] });
  });

  it('TestIPv4Proxier / TestIPv6Proxier: cluster IP service with no endpoints', () => {
    expectIPVS(renderIpvs(stateOf(svc1({ clusterIP: '10.20.30.41', ports: [port('p80', 80, 'TCP')] })), cfg4()), { '10.20.30.41:80/TCP': [] });
    expectIPVS(renderIpvs(stateOf(svc1({ clusterIP: '2001::1', ports: [port('p80', 80, 'TCP')] })), cfg6()), { '[2001::1]:80/TCP': [] });
  });
});

// ---- LoadBalancer ------------------------------------------------------------------------------------

describe('kube-proxy IPVS LoadBalancer tests', () => {
  const KUBE_SERVICES_LB = ['RETURN', 'KUBE-LOAD-BALANCER@KUBE-LOAD-BALANCER', 'KUBE-MARK-MASQ@KUBE-CLUSTER-IP', 'KUBE-NODE-PORT', 'ACCEPT@KUBE-CLUSTER-IP', 'ACCEPT@KUBE-LOAD-BALANCER'];

  it('TestLoadBalancer', () => {
    const state = stateOf(
      svc1({ type: 'LoadBalancer', clusterIP: '10.20.30.41', ports: [port('p80', 80, 'TCP', { nodePort: 3001 })] }, ['1.2.3.4']),
      // QUIRK kept from upstream: the slice port is UDP, so it does not match the TCP port.
      svc1Slice(1, 'IPv4', ['10.180.0.1'], 'UDP'),
    );
    const r = renderIpvs(state, FAKE_V4);
    // buildFakeProxier has no node IPs: no NodePort VS, and (proxier.go `continue`) no NodePort set entry.
    expectIPVS(r, { '10.20.30.41:80/TCP': [], '1.2.3.4:80/TCP': [] });
    checkIPSet(r, 'IPv4', { 'KUBE-LOAD-BALANCER': ['1.2.3.4,tcp:80'], 'KUBE-LOAD-BALANCER-LOCAL': [], 'KUBE-NODE-PORT-TCP': [] });
    checkIptables(r, { 'KUBE-SERVICES': KUBE_SERVICES_LB, 'KUBE-LOAD-BALANCER': ['KUBE-MARK-MASQ'] });
    assert.deepEqual(r.bindAddresses, ['1.2.3.4', '10.20.30.41']);
  });

  it('TestOnlyLocalLoadBalancing', () => {
    const state = stateOf(
      svc1({ type: 'LoadBalancer', clusterIP: '10.20.30.41', externalTrafficPolicy: 'Local', ports: [port('p80', 80, 'TCP', { nodePort: 3001 })] }, ['1.2.3.4']),
      svc1Slice(1, 'IPv4', LOCAL_AND_REMOTE),
    );
    const r = renderIpvs(state, FAKE_V4);
    checkIPVS(r, { vsNum: 2, ip: '1.2.3.4', port: 80, protocol: 'TCP', rs: ['10.180.0.1:80'] });
    checkIPVS(r, { vsNum: 2, ip: '10.20.30.41', port: 80, protocol: 'TCP', rs: ['10.180.0.1:80', '10.180.1.1:80'] });
    checkIPSet(r, 'IPv4', { 'KUBE-LOAD-BALANCER': ['1.2.3.4,tcp:80'], 'KUBE-LOAD-BALANCER-LOCAL': ['1.2.3.4,tcp:80'] });
    checkIptables(r, { 'KUBE-SERVICES': KUBE_SERVICES_LB, 'KUBE-LOAD-BALANCER': ['RETURN@KUBE-LOAD-BALANCER-LOCAL', 'KUBE-MARK-MASQ'] });
  });

  it('syncEndpoint (PR #97081): externalTrafficPolicy Local without local endpoints falls back to the cluster endpoints', () => {
    // Also TestNoEndpointsMetric "ETP Local, none local": the VS keeps the remote endpoints.
    const state = stateOf(
      svc1({ type: 'LoadBalancer', clusterIP: '10.20.30.41', externalTrafficPolicy: 'Local', externalIPs: ['50.60.70.81'], ports: [port('p80', 80, 'TCP', { nodePort: 3001 })] }, ['1.2.3.4']),
      svc1Slice(1, 'IPv4', [{ ip: '10.180.1.1', node: 'other-node' }, { ip: '10.180.2.1', node: 'other-node' }]),
    );
    const remote = ['10.180.1.1:80', '10.180.2.1:80'];
    expectIPVS(renderIpvs(state, cfg4({ nodeAddresses: ['100.101.102.103'] })), {
      '10.20.30.41:80/TCP': remote, '1.2.3.4:80/TCP': remote, '50.60.70.81:80/TCP': remote, '100.101.102.103:3001/TCP': remote,
    });
  });

  it('TestLoadBalancerSourceRanges: node not in range (OUT-FILTER DROP)', () => {
    const state = stateOf(
      svc1({ type: 'LoadBalancer', clusterIP: '10.20.30.41', loadBalancerSourceRanges: ['10.0.0.0/8'], ports: [port('p80', 80, 'TCP')] }, ['1.2.3.4']),
      svc1Slice(1, 'IPv4', ['10.180.0.1']),
    );
    const r = renderIpvs(state, FAKE_V4); // fp.nodeIP is nil: no range contains it
    checkIPVS(r, { vsNum: 2, ip: '1.2.3.4', port: 80, protocol: 'TCP', rs: ['10.180.0.1:80'] });
    checkIPSet(r, 'IPv4', {
      'KUBE-LOAD-BALANCER': ['1.2.3.4,tcp:80'],
      'KUBE-LOAD-BALANCER-FW': ['1.2.3.4,tcp:80'],
      'KUBE-LOAD-BALANCER-SOURCE-CIDR': ['1.2.3.4,tcp:80,10.0.0.0/8'],
      'KUBE-LOAD-BALANCER-SOURCE-IP': [],
    });
    checkIptables(r, {
      'KUBE-SERVICES': KUBE_SERVICES_LB,
      'KUBE-PROXY-FIREWALL': ['KUBE-SOURCE-RANGES-FIREWALL@KUBE-LOAD-BALANCER-FW'],
      'KUBE-SOURCE-RANGES-FIREWALL': ['RETURN@KUBE-LOAD-BALANCER-SOURCE-CIDR', 'DROP'],
      'KUBE-IPVS-OUT-FILTER': ['DROP'],
    });
    assert.deepEqual(exactRules(r, 'KUBE-IPVS-OUT-FILTER'), ['-A KUBE-IPVS-OUT-FILTER -s 1.2.3.4 -m ipvs --vaddr 1.2.3.4 --vproto tcp --vport 80 -j DROP']);
    assert.deepEqual(exactRules(r, 'KUBE-PROXY-FIREWALL'), [
      '-A KUBE-PROXY-FIREWALL -m comment --comment "Kubernetes service load balancer ip + port for load balancer with sourceRange" -m set --match-set KUBE-LOAD-BALANCER-FW dst,dst -j KUBE-SOURCE-RANGES-FIREWALL',
    ]);
    assert.deepEqual(exactRules(r, 'KUBE-SOURCE-RANGES-FIREWALL'), [
      '-A KUBE-SOURCE-RANGES-FIREWALL -m comment --comment "Kubernetes service load balancer ip + port + source cidr for packet filter purpose" -m set --match-set KUBE-LOAD-BALANCER-SOURCE-CIDR dst,dst,src -j RETURN',
      '-A KUBE-SOURCE-RANGES-FIREWALL -j DROP',
    ]);
  });

  it('TestLoadBalancerSourceRanges: node in range (KUBE-LOAD-BALANCER-SOURCE-IP, no OUT-FILTER DROP)', () => {
    const state = stateOf(
      svc1({ type: 'LoadBalancer', clusterIP: '10.20.30.41', loadBalancerSourceRanges: ['10.0.0.0/8'], ports: [port('p80', 80, 'TCP')] }, ['1.2.3.4']),
      svc1Slice(1, 'IPv4', ['10.180.0.1']),
    );
    const r = renderIpvs(state, cfg4({ nodeIP: '10.1.2.3' }));
    checkIPSet(r, 'IPv4', {
      'KUBE-LOAD-BALANCER-FW': ['1.2.3.4,tcp:80'],
      'KUBE-LOAD-BALANCER-SOURCE-CIDR': ['1.2.3.4,tcp:80,10.0.0.0/8'],
      'KUBE-LOAD-BALANCER-SOURCE-IP': ['1.2.3.4,tcp:80,1.2.3.4'],
    });
    checkIptables(r, {
      'KUBE-SOURCE-RANGES-FIREWALL': ['RETURN@KUBE-LOAD-BALANCER-SOURCE-CIDR', 'RETURN@KUBE-LOAD-BALANCER-SOURCE-IP', 'DROP'],
      'KUBE-IPVS-OUT-FILTER': [],
    });
  });

  it('TestLoadBalancerSourceRanges on the IPv6 proxier: the truncated KUBE-6-LOAD-BALANCER-SOURCE-CID', () => {
    const state = stateOf(
      svc1({
        type: 'LoadBalancer', ipFamilies: ['IPv6'], clusterIP: 'fd00::41', loadBalancerSourceRanges: ['10.0.0.0/8', '2001:db8::/64'],
        ports: [port('p80', 80, 'TCP')],
      }, ['1.2.3.4', '2001:db8::1234']),
      svc1Slice(1, 'IPv6', ['fd01::1']),
    );
    const r = renderIpvs(state, cfg6({ nodeIP: 'fd02::1' }));
    checkIPVS(r, { vsNum: 2, ip: '2001:db8::1234', port: 80, protocol: 'TCP', rs: ['[fd01::1]:80'] });
    checkIPSet(r, 'IPv6', {
      'KUBE-6-LOAD-BALANCER': ['2001:db8::1234,tcp:80'],
      'KUBE-6-LOAD-BALANCER-FW': ['2001:db8::1234,tcp:80'],
      // "KUBE-6-LOAD-BALANCER-SOURCE-CIDR" is 32 characters: NewIPSet cuts it to 31. The IPv4 range is the other proxier's.
      'KUBE-6-LOAD-BALANCER-SOURCE-CID': ['2001:db8::1234,tcp:80,2001:db8::/64'],
      'KUBE-6-LOAD-BALANCER-SOURCE-IP': [],
    });
    checkIptables(r, { 'KUBE-SOURCE-RANGES-FIREWALL': ['RETURN@KUBE-6-LOAD-BALANCER-SOURCE-CID', 'DROP'] });
    assert.deepEqual(exactRules(r, 'KUBE-IPVS-OUT-FILTER'), ['-A KUBE-IPVS-OUT-FILTER -s 2001:db8::1234 -m ipvs --vaddr 2001:db8::1234 --vproto tcp --vport 80 -j DROP']);
  });
});

// ---- NodePort with externalTrafficPolicy Local, health check node ports ----------------------------------

describe('kube-proxy IPVS TestOnlyLocalNodePorts / TestHealthCheckNodePort', () => {
  // FakeNetwork: eth0 100.101.102.103/24, eth1 2001:db8::/64; nodePortAddresses ["100.101.102.0/24"].
  const NODE = { nodeAddresses: ['100.101.102.103'], nodePortAddresses: ['100.101.102.0/24'] };

  it('TestOnlyLocalNodePorts', () => {
    const state = stateOf(
      svc1({ type: 'NodePort', clusterIP: '10.20.30.41', externalTrafficPolicy: 'Local', ports: [port('p80', 80, 'TCP', { nodePort: 3001 })] }),
      svc1Slice(1, 'IPv4', LOCAL_AND_REMOTE),
    );
    const r = renderIpvs(state, cfg4(NODE));
    checkIPVS(r, { vsNum: 2, ip: '100.101.102.103', port: 3001, protocol: 'TCP', rs: ['10.180.0.1:80'] });
    checkIPSet(r, 'IPv4', { 'KUBE-NODE-PORT-TCP': ['3001'], 'KUBE-NODE-PORT-LOCAL-TCP': ['3001'] });
    checkIptables(r, {
      'KUBE-SERVICES': ['RETURN', 'KUBE-MARK-MASQ@KUBE-CLUSTER-IP', 'KUBE-NODE-PORT', 'ACCEPT@KUBE-CLUSTER-IP'],
      'KUBE-NODE-PORT': ['RETURN@KUBE-NODE-PORT-LOCAL-TCP', 'KUBE-MARK-MASQ@KUBE-NODE-PORT-TCP', 'ACCEPT@KUBE-HEALTH-CHECK-NODE-PORT'],
    });
    // Node IPs are not bound to kube-ipvs0 (syncService bindAddr=false).
    assert.deepEqual(r.bindAddresses, ['10.20.30.41']);
    assert.deepEqual(nodePortIPs(cfg4({ nodeAddresses: ['127.0.0.1', '100.101.102.103', '192.168.0.2'], nodePortAddresses: ['100.101.102.0/24', '2001:db8::/64'] })),
      ['100.101.102.103']);
  });

  it('TestGetNodeIPs / TestIpIsValidForSet: NodePort addresses leave out loopback and IPv6 link-local', () => {
    // case 3 (IPv4 view of encap0/lo/docker0) and case 10 (IPv6 view of ipvs0/lo/encap7).
    assert.deepEqual(nodePortIPs(cfg4({ nodeAddresses: ['10.20.30.40', '127.0.0.1', '172.17.0.1'] })), ['10.20.30.40', '172.17.0.1']);
    assert.deepEqual(nodePortIPs(cfg6({ nodeAddresses: ['1000::', '::1', '2000::', 'fe80::200:ff:fe01:1'] })), ['1000::', '2000::']);
    assert.deepEqual(nodePortIPs(cfg4({ nodeAddresses: ['127.0.0.1'] })), []);
    // nodePortAddresses of the other family only: match all (NewNodePortAddresses).
    assert.deepEqual(nodePortIPs(cfg6({ nodeAddresses: ['2001:db8::1:1'], nodePortAddresses: ['0.0.0.0/0', '100.101.102.0/24'] })), ['2001:db8::1:1']);
    // No node IP: NodePort services get no node VS and no NodePort set entry (the `continue` in syncProxyRules).
    const r = renderIpvs(stateOf(svc1({ type: 'NodePort', clusterIP: '10.20.30.41', ports: [port('p80', 80, 'TCP', { nodePort: 3001 })] })),
      cfg4({ nodeAddresses: ['127.0.0.1'] }));
    expectIPVS(r, { '10.20.30.41:80/TCP': [] });
    checkIPSet(r, 'IPv4', { 'KUBE-NODE-PORT-TCP': [] });
  });

  it('TestHealthCheckNodePort', () => {
    const tmpl = (name: string, extra: Json) => service('ns1', name, {
      type: 'LoadBalancer', clusterIP: '10.20.30.41', externalTrafficPolicy: 'Local', ports: [port('p80', 80, 'TCP', { nodePort: 3000 })], ...extra,
    });
    const state = stateOf(
      tmpl('valid-svc1', { healthCheckNodePort: 30000 }),
      tmpl('valid-svc2', { healthCheckNodePort: 30001 }),
      // ETP Cluster: the health check node port is ignored.
      tmpl('invalid-svc3', { healthCheckNodePort: 30002, externalTrafficPolicy: 'Cluster' }),
    );
    const r = renderIpvs(state, cfg4(NODE));
    checkIPSet(r, 'IPv4', { 'KUBE-HEALTH-CHECK-NODE-PORT': ['30000', '30001'] });
    checkIptables(r, { 'KUBE-NODE-PORT': ['RETURN@KUBE-NODE-PORT-LOCAL-TCP', 'KUBE-MARK-MASQ@KUBE-NODE-PORT-TCP', 'ACCEPT@KUBE-HEALTH-CHECK-NODE-PORT'] });
    // The chain exists in both tables: the set jumps are nat rules, the health check rule a filter one.
    assert.deepEqual(chainRules(r, 'KUBE-NODE-PORT', 'filter'),
      ['-A KUBE-NODE-PORT -m comment --comment "Kubernetes health check node port" -m set --match-set KUBE-HEALTH-CHECK-NODE-PORT dst -j ACCEPT']);
    assert.equal(chainRules(r, 'KUBE-NODE-PORT', 'nat').length, 2);
  });

  it('TestHealthCheckNodePortE2E: add, update 30000 → 30001, delete', () => {
    // Upstream's ServicePort has no Port (only TargetPort 80); port 80 here (see the report).
    const svc = (hc: number) => service('ns1', 'svc1', {
      type: 'LoadBalancer', clusterIP: '172.20.1.1', selector: { foo: 'bar' }, externalTrafficPolicy: 'Local', healthCheckNodePort: hc,
      ports: [{ name: '', port: 80, targetPort: 80, protocol: 'TCP' }],
    });
    const o = objects(svc(30000));
    const hcSet = () => setsByName(renderIpvs(o.state(), FAKE_V4), 'IPv4').get('KUBE-HEALTH-CHECK-NODE-PORT');
    assert.deepEqual(hcSet(), ['30000']);
    o.apply(svc(30001));
    assert.deepEqual(hcSet(), ['30001']);
    o.remove(svc(30001));
    assert.deepEqual(hcSet(), []);
  });
});

// ---- externalIPs ----------------------------------------------------------------------------------

describe('kube-proxy IPVS externalIPs tests', () => {
  const EXTERNAL_IPS = ['50.60.70.81', '2012::51', '127.0.0.1'];

  it('TestExternalIPsNoEndpoint', () => {
    const state = stateOf(svc1({ type: 'ClusterIP', clusterIP: '10.20.30.41', externalIPs: ['50.60.70.81'], ports: [port('p80', 80, 'TCP', { targetPort: 80 })] }));
    const r = renderIpvs(state, FAKE_V4);
    checkIPVS(r, { vsNum: 2, ip: '50.60.70.81', port: 80, protocol: 'TCP', rs: [] });
  });

  it('TestExternalIPs: the IPv6 externalIP is filtered, 127.0.0.1 is not', () => {
    const state = stateOf(
      svc1({ type: 'ClusterIP', clusterIP: '10.20.30.41', externalIPs: EXTERNAL_IPS, ports: [port('p80', 80, 'TCP', { targetPort: 80 })] }),
      svc1Slice(1, 'IPv4', ['10.180.0.1'], 'UDP'), // QUIRK kept: UDP slice port, no real servers
    );
    const r = renderIpvs(state, FAKE_V4);
    expectIPVS(r, { '10.20.30.41:80/TCP': [], '50.60.70.81:80/TCP': [], '127.0.0.1:80/TCP': [] });
    checkIPSet(r, 'IPv4', { 'KUBE-EXTERNAL-IP': ['127.0.0.1,tcp:80', '50.60.70.81,tcp:80'], 'KUBE-EXTERNAL-IP-LOCAL': [] });
    // No node address holds them (the fake netlink has none): all bound to kube-ipvs0.
    assert.deepEqual(r.bindAddresses, ['10.20.30.41', '127.0.0.1', '50.60.70.81']);
    checkIPSet(r, 'IPv4', { 'KUBE-IPVS-IPS': ['10.20.30.41', '127.0.0.1', '50.60.70.81'] });
    // The IPv6 proxier gets the IPv6 externalIP only through an IPv6 clusterIP; this Service is IPv4-only.
    expectIPVS(renderIpvs(state, FAKE_V6), {});
  });

  it('syncProxyRules shouldBind: an external or LB IP that is a node address is not bound to kube-ipvs0', () => {
    // shouldBind := !nodeAddressSet.Has(serv.Address.String())
    const state = stateOf(
      svc1({ type: 'LoadBalancer', clusterIP: '10.20.30.41', externalIPs: ['100.101.102.103', '50.60.70.81'], ports: [port('p80', 80, 'TCP')] }, ['100.101.102.104', '1.2.3.4']),
    );
    const r = renderIpvs(state, cfg4({ nodeAddresses: ['100.101.102.103', '100.101.102.104'] }));
    assert.equal(r.virtualServers.length, 5);
    assert.deepEqual(r.bindAddresses, ['1.2.3.4', '10.20.30.41', '50.60.70.81']);
    checkIPSet(r, 'IPv4', { 'KUBE-IPVS-IPS': ['1.2.3.4', '10.20.30.41', '50.60.70.81'] });
  });

  it('TestExternalIPs on a real node: loopback is not a node address (netlink isValidForSet), so 127.0.0.1 is still bound', () => {
    // proxier.go: shouldBind := !nodeAddressSet.Has(extIP), nodeAddressSet = GetAllLocalAddressesExcept("kube-ipvs0"),
    // which drops loopback (isValidForSet, TestIpIsValidForSet: 127.0.0.1 → false). kube-xdp's nodeAddresses
    // include loopback (setup.ts readNodeAddresses), so they must not make 127.0.0.1 "already on the node".
    const state = stateOf(svc1({ type: 'ClusterIP', clusterIP: '10.20.30.41', externalIPs: EXTERNAL_IPS, ports: [port('p80', 80, 'TCP', { targetPort: 80 })] }));
    const r = renderIpvs(state, cfg4({ nodeAddresses: ['127.0.0.1', '100.101.102.103'] }));
    assert.deepEqual(r.bindAddresses, ['10.20.30.41', '127.0.0.1', '50.60.70.81']);
  });

  it('TestOnlyLocalExternalIPs', () => {
    const state = stateOf(
      svc1({ type: 'NodePort', clusterIP: '10.20.30.41', externalIPs: EXTERNAL_IPS, externalTrafficPolicy: 'Local', ports: [port('p80', 80, 'TCP', { targetPort: 80 })] }),
      svc1Slice(1, 'IPv4', LOCAL_AND_REMOTE),
    );
    const r = renderIpvs(state, FAKE_V4);
    checkIPVS(r, { vsNum: 3, ip: '50.60.70.81', port: 80, protocol: 'TCP', rs: ['10.180.0.1:80'] });
    checkIPVS(r, { vsNum: 3, ip: '127.0.0.1', port: 80, protocol: 'TCP', rs: ['10.180.0.1:80'] });
    checkIPVS(r, { vsNum: 3, ip: '10.20.30.41', port: 80, protocol: 'TCP', rs: ['10.180.0.1:80', '10.180.1.1:80'] });
    checkIPSet(r, 'IPv4', { 'KUBE-EXTERNAL-IP': [], 'KUBE-EXTERNAL-IP-LOCAL': ['127.0.0.1,tcp:80', '50.60.70.81,tcp:80'], 'KUBE-LOOP-BACK': ['10.180.0.1,tcp:80,10.180.0.1'] });
    checkIptables(r, {
      'KUBE-SERVICES': ['RETURN', 'KUBE-MARK-MASQ@KUBE-CLUSTER-IP', 'ACCEPT@KUBE-EXTERNAL-IP-LOCAL', 'ACCEPT@KUBE-EXTERNAL-IP-LOCAL', 'KUBE-NODE-PORT', 'ACCEPT@KUBE-CLUSTER-IP'],
    });
  });

  it('TestAcceptIPVSTraffic', () => {
    const p80 = [port('p80', 80, 'TCP', { nodePort: 80 })];
    const state = stateOf(
      service('ns1', 'svc1', { type: 'ClusterIP', clusterIP: '10.20.30.40', externalIPs: ['5.6.7.8'], ports: p80 }),
      service('ns1', 'svc2', { type: 'LoadBalancer', clusterIP: '10.20.30.41', ports: p80 }, ['1.2.3.4']),
      service('ns1', 'svc3', { type: 'NodePort', clusterIP: '10.20.30.42', ports: p80 }),
      // QUIRK kept: slices labelled for Service "p80", so they match nothing.
      ...['10.180.0.1', '10.180.0.2', '10.180.0.3'].map((ip) => slice('ns1', 'p80', [ip], [port('p80', 80, 'UDP')])),
    );
    const r = renderIpvs(state, FAKE_V4);
    checkIptables(r, {
      'KUBE-SERVICES': [
        'RETURN', 'KUBE-LOAD-BALANCER@KUBE-LOAD-BALANCER', 'KUBE-MARK-MASQ@KUBE-CLUSTER-IP', 'KUBE-MARK-MASQ@KUBE-EXTERNAL-IP',
        'ACCEPT@KUBE-EXTERNAL-IP', 'ACCEPT@KUBE-EXTERNAL-IP', 'KUBE-NODE-PORT', 'ACCEPT@KUBE-CLUSTER-IP', 'ACCEPT@KUBE-LOAD-BALANCER',
      ],
    });
    const ext = '-A KUBE-SERVICES -m comment --comment "Kubernetes service external ip + port for masquerade and filter purpose" -m set --match-set KUBE-EXTERNAL-IP dst,dst';
    assert.deepEqual(exactRules(r, 'KUBE-SERVICES'), [
      '-A KUBE-SERVICES -s 127.0.0.0/8 -j RETURN',
      '-A KUBE-SERVICES -m comment --comment "Kubernetes service lb portal" -m set --match-set KUBE-LOAD-BALANCER dst,dst -j KUBE-LOAD-BALANCER',
      '-A KUBE-SERVICES -m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" -m set --match-set KUBE-CLUSTER-IP src,dst -j KUBE-MARK-MASQ',
      `${ext} -j KUBE-MARK-MASQ`,
      `${ext} -m physdev ! --physdev-is-in -m addrtype ! --src-type LOCAL -j ACCEPT`,
      `${ext} -m addrtype --dst-type LOCAL -j ACCEPT`,
      '-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT',
      '-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT',
      '-A KUBE-SERVICES -m set --match-set KUBE-LOAD-BALANCER dst,dst -j ACCEPT',
    ]);
  });

  it('VS identity (FakeIPVS is keyed by ServiceKey): an externalIP that is also the LB ingress IP is one virtual server', () => {
    // syncService for the same {IP, Port, Protocol} twice finds it already applied (GetVirtualServer + Equal):
    // kube-proxy ends with one VS, and an `ipvsadm --restore` with two "-A" for it would fail.
    const state = stateOf(
      svc1({ type: 'LoadBalancer', clusterIP: '10.20.30.41', externalIPs: ['1.2.3.4'], ports: [port('p80', 80, 'TCP')] }, ['1.2.3.4']),
      svc1Slice(1, 'IPv4', ['10.180.0.1']),
    );
    const r = renderIpvs(state, FAKE_V4);
    expectIPVS(r, { '10.20.30.41:80/TCP': ['10.180.0.1:80'], '1.2.3.4:80/TCP': ['10.180.0.1:80'] });
  });
});

// ---- session affinity, scheduler flags ---------------------------------------------------------------

describe('kube-proxy IPVS TestSessionAffinity', () => {
  const affinityState = (affinity: Json) => stateOf(svc1({
    type: 'NodePort', clusterIP: '10.20.30.41', externalIPs: ['50.60.70.81'], ...affinity, ports: [port('p80', 80, 'TCP', { nodePort: 3001 })],
  }));

  it('TestSessionAffinity: ClientIP puts the timeout on every virtual server of the service', () => {
    const r = renderIpvs(affinityState({ sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 10800 } } }),
      cfg4({ nodeAddresses: ['100.101.102.103'] }));
    assert.deepEqual(r.virtualServers.map(vsKey).sort(), ['10.20.30.41:80/TCP', '100.101.102.103:3001/TCP', '50.60.70.81:80/TCP']);
    for (const vs of r.virtualServers) assert.equal(vs.persistenceTimeout, 10800, `${vsKey(vs)} timeout (FlagPersistent)`);
  });

  it('TestSessionAffinity: a custom timeout; no affinity means Flags 0 / Timeout 0', () => {
    const custom = renderIpvs(affinityState({ sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } } }),
      cfg4({ nodeAddresses: ['100.101.102.103'] }));
    assert.deepEqual(custom.virtualServers.map((vs) => vs.persistenceTimeout), [60, 60, 60]);
    const none = renderIpvs(affinityState({ sessionAffinity: 'None' }), cfg4({ nodeAddresses: ['100.101.102.103'] }));
    assert.deepEqual(none.virtualServers.map((vs) => [vs.persistenceTimeout, vs.schedFlags]), [[null, []], [null, []], [null, []]]);
  });

  it('syncProxyRules: scheduler "mh" sets FlagSourceHash (mh-port) on every virtual server; others get no flag', () => {
    const state = stateOf(
      svc1({ type: 'LoadBalancer', clusterIP: '10.20.30.41', externalIPs: ['50.60.70.81'], ports: [port('p80', 80, 'TCP', { nodePort: 3001 })] }, ['1.2.3.4']),
      svc1Slice(1, 'IPv4', ['10.180.0.1']),
    );
    const mh = renderIpvs(state, cfg4({ scheduler: 'mh', nodeAddresses: ['100.101.102.103'] }));
    assert.equal(mh.virtualServers.length, 4);
    for (const vs of mh.virtualServers) {
      assert.equal(vs.scheduler, 'mh');
      assert.deepEqual(vs.schedFlags, ['mh-port'], vsKey(vs));
    }
    for (const vs of renderIpvs(state, cfg4({ scheduler: 'wlc', nodeAddresses: ['100.101.102.103'] })).virtualServers) {
      assert.equal(vs.scheduler, 'wlc');
      assert.deepEqual(vs.schedFlags, [], vsKey(vs));
    }
  });
});

// ---- endpoint selection: readiness, terminating endpoints, traffic policies --------------------------------

describe('kube-proxy IPVS terminating / traffic-policy tests (weights are always 1)', () => {
  // R/S/T: ready, serving, terminating.
  const ep = (ip: string, node: string, r: boolean, s: boolean, t: boolean): Ep => ({ ip, node, ready: r, serving: s, terminating: t });
  const terminatingState = (etp: 'Cluster' | 'Local', eps: Ep[]) => stateOf(
    service('ns1', 'svc1', {
      type: 'NodePort', clusterIP: '172.20.1.1', selector: { foo: 'bar' }, externalTrafficPolicy: etp, internalTrafficPolicy: 'Cluster',
      externalIPs: ['1.2.3.4'], ports: [{ name: '', port: 80, targetPort: 80, protocol: 'TCP' }],
    }),
    slice('ns1', 'svc1', eps, [{ name: '', port: 80, protocol: 'TCP' }]),
  );
  const loopBack = (r: IpvsRender) => setsByName(r, 'IPv4').get('KUBE-LOOP-BACK')!;
  const rs = (...n: number[]) => n.map((i) => `10.0.1.${i}:80`);

  const READY_AND_TERMINATING: Ep[] = [
    ep('10.0.1.1', TEST_HOSTNAME, true, true, false),
    ep('10.0.1.2', TEST_HOSTNAME, true, true, false),
    ep('10.0.1.3', TEST_HOSTNAME, false, true, true),
    ep('10.0.1.4', TEST_HOSTNAME, false, false, true),
    ep('10.0.1.5', 'another-node', true, true, false),
  ];

  it('Test_EndpointSliceReadyAndTerminatingCluster', () => {
    const r = renderIpvs(terminatingState('Cluster', READY_AND_TERMINATING), FAKE_V4);
    // Every local endpoint, whatever its conditions, is a hairpin entry.
    assert.deepEqual(loopBack(r), [1, 2, 3, 4].map((i) => `10.0.1.${i},tcp:80,10.0.1.${i}`));
    expectIPVS(r, { '172.20.1.1:80/TCP': rs(1, 2, 5), '1.2.3.4:80/TCP': rs(1, 2, 5) });
  });

  it('Test_EndpointSliceReadyAndTerminatingLocal', () => {
    const r = renderIpvs(terminatingState('Local', READY_AND_TERMINATING), FAKE_V4);
    assert.equal(loopBack(r).length, 4);
    expectIPVS(r, { '172.20.1.1:80/TCP': rs(1, 2, 5), '1.2.3.4:80/TCP': rs(1, 2) });
  });

  it('Test_EndpointSliceOnlyReadyAndTerminatingCluster', () => {
    const r = renderIpvs(terminatingState('Cluster', [
      ep('10.0.1.1', TEST_HOSTNAME, false, true, true),
      ep('10.0.1.2', TEST_HOSTNAME, false, true, true),
      ep('10.0.1.3', TEST_HOSTNAME, false, false, true),
      ep('10.0.1.4', 'another-node', false, true, true),
      ep('10.0.1.5', 'another-node', false, false, false),
    ]), FAKE_V4);
    assert.equal(loopBack(r).length, 3);
    // No ready endpoint anywhere: serving+terminating ones.
    expectIPVS(r, { '172.20.1.1:80/TCP': rs(1, 2, 4), '1.2.3.4:80/TCP': rs(1, 2, 4) });
  });

  it('Test_EndpointSliceOnlyReadyAndTerminatingLocal', () => {
    const r = renderIpvs(terminatingState('Local', [
      ep('10.0.1.1', TEST_HOSTNAME, false, true, true),
      ep('10.0.1.2', TEST_HOSTNAME, false, true, true),
      ep('10.0.1.3', TEST_HOSTNAME, false, false, true),
      ep('10.0.1.4', 'another-node', false, true, true),
      ep('10.0.1.5', 'another-node', true, true, false),
    ]), FAKE_V4);
    assert.equal(loopBack(r).length, 3);
    // Cluster: the one ready endpoint; external (Local): no local ready one, so local serving+terminating.
    expectIPVS(r, { '172.20.1.1:80/TCP': rs(5), '1.2.3.4:80/TCP': rs(1, 2) });
  });

  it('Test_EndpointSliceOnlyReadyAndTerminating*: after the slice is deleted both VS remain, empty', () => {
    const svc = service('ns1', 'svc1', {
      type: 'NodePort', clusterIP: '172.20.1.1', externalIPs: ['1.2.3.4'], ports: [{ name: '', port: 80, targetPort: 80, protocol: 'TCP' }],
    });
    const s = slice('ns1', 'svc1', [ep('10.0.1.1', TEST_HOSTNAME, true, true, false)], [{ name: '', port: 80, protocol: 'TCP' }]);
    const o = objects(svc, s);
    assert.equal(loopBack(renderIpvs(o.state(), FAKE_V4)).length, 1);
    o.remove(s);
    const r = renderIpvs(o.state(), FAKE_V4);
    assert.deepEqual(loopBack(r), []);
    expectIPVS(r, { '172.20.1.1:80/TCP': [], '1.2.3.4:80/TCP': [] });
  });

  it('TestTestInternalTrafficPolicyE2E', () => {
    const cases: { itp: 'Cluster' | 'Local'; nodes: string[]; loopBack: number; rs: string[] }[] = [
      { itp: 'Cluster', nodes: [TEST_HOSTNAME, 'node1', 'node2'], loopBack: 1, rs: rs(1, 2, 3) },
      { itp: 'Cluster', nodes: ['node0', 'node1', 'node2'], loopBack: 0, rs: rs(1, 2, 3) },
      { itp: 'Local', nodes: [TEST_HOSTNAME, 'node1', 'node2'], loopBack: 1, rs: rs(1) },
      // Upstream skips the VS check here. syncEndpoint falls back to clusterEndpoints (PR #97081), but
      // CategorizeEndpoints leaves those nil for a ClusterIP Service with ITP Local
      // (UsesClusterEndpoints is false): the VS exists, with no real servers.
      { itp: 'Local', nodes: ['node0', 'node1', 'node2'], loopBack: 0, rs: [] },
    ];
    for (const c of cases) {
      const state = stateOf(
        service('ns1', 'svc1', { clusterIP: '172.20.1.1', selector: { foo: 'bar' }, internalTrafficPolicy: c.itp, ports: [{ name: '', port: 80, targetPort: 80, protocol: 'TCP' }] }),
        slice('ns1', 'svc1', c.nodes.map((node, i) => ({ ip: `10.0.1.${i + 1}`, node, ready: true })), [{ name: '', port: 80, protocol: 'TCP' }]),
      );
      const r = renderIpvs(state, FAKE_V4);
      assert.equal(loopBack(r).length, c.loopBack, `${c.itp} ${c.nodes}: loopback entries`);
      expectIPVS(r, { '172.20.1.1:80/TCP': c.rs });
    }
  });

  it('TestEndpointSliceE2E: not-ready endpoints are no real servers; a local one is a hairpin entry', () => {
    // Upstream's ServicePort has no Port (0); port 80 here.
    const state = stateOf(
      service('ns1', 'svc1', { clusterIP: '172.20.1.1', selector: { foo: 'bar' }, ports: [{ name: '', port: 80, targetPort: 80, protocol: 'TCP' }] }),
      slice('ns1', 'svc1', [
        ep('10.0.1.1', TEST_HOSTNAME, true, true, false),
        { ip: '10.0.1.2', node: 'node2', ready: true },
        { ip: '10.0.1.3', node: 'node3', ready: true },
        { ip: '10.0.1.4', node: 'node3', ready: false },
      ], [{ name: '', port: 80, protocol: 'TCP' }]),
    );
    const r = renderIpvs(state, FAKE_V4);
    assert.deepEqual(loopBack(r), ['10.0.1.1,tcp:80,10.0.1.1']);
    expectIPVS(r, { '172.20.1.1:80/TCP': rs(1, 2, 3) });
  });
});

// ---- writeIptablesRules: fixed rules ------------------------------------------------------------------

describe('kube-proxy IPVS writeIptablesRules', () => {
  it('TestCreateAndLinkKubeChain: the nat and filter chain lines', () => {
    const r = renderIpvs(stateOf(), FAKE_V4);
    const natChains = ':KUBE-SERVICES - [0:0]\n:KUBE-POSTROUTING - [0:0]\n:KUBE-NODE-PORT - [0:0]\n:KUBE-LOAD-BALANCER - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n';
    const filterChains = ':KUBE-FORWARD - [0:0]\n:KUBE-NODE-PORT - [0:0]\n:KUBE-PROXY-FIREWALL - [0:0]\n:KUBE-SOURCE-RANGES-FIREWALL - [0:0]\n:KUBE-IPVS-FILTER - [0:0]\n:KUBE-IPVS-OUT-FILTER - [0:0]\n';
    assert.ok(r.iptables.startsWith(`*nat\n${natChains}-A `), r.iptables);
    assert.ok(r.iptables.includes(`COMMIT\n*filter\n${filterChains}-A `), r.iptables);
    assert.ok(r.iptables.endsWith('COMMIT\n'));
    assert.equal(r.iptables.split('\n').filter((l) => l === 'COMMIT').length, 2);
  });

  it('TestDismissLocalhostRuleExist: IPv4 127.0.0.0/8, IPv6 ::1/128, first in KUBE-SERVICES', () => {
    for (const [c, src] of [[FAKE_V4, '127.0.0.0/8'], [FAKE_V6, '::1/128']] as const) {
      const rules = exactRules(renderIpvs(stateOf(), c), 'KUBE-SERVICES');
      assert.equal(rules[0], `-A KUBE-SERVICES -s ${src} -j RETURN`, c.family);
    }
  });

  it('TestMasqueradeRule: KUBE-POSTROUTING with and without --random-fully', () => {
    for (const randomFully of [false, true]) {
      const r = renderIpvs(stateOf(), cfg4({ randomFully }));
      assert.deepEqual(exactRules(r, 'KUBE-POSTROUTING'), [
        `-A KUBE-POSTROUTING -m mark ! --mark ${MARK}/${MARK} -j RETURN`,
        `-A KUBE-POSTROUTING -j MARK --xor-mark ${MARK}`,
        `-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE${randomFully ? ' --random-fully' : ''}`,
      ], `randomFully ${randomFully}`);
      assert.deepEqual(exactRules(r, 'KUBE-MARK-MASQ'), [`-A KUBE-MARK-MASQ -j MARK --or-mark ${MARK}`]);
    }
    // The mark is whatever the config says (kube-proxy's fake: "").
    assert.ok(renderIpvs(stateOf(), cfg4({ masqueradeMark: '0x004000' })).iptables.includes('-A KUBE-MARK-MASQ -j MARK --or-mark 0x004000\n'));
  });

  it('writeIptablesRules: KUBE-FORWARD, KUBE-IPVS-FILTER and the health check rule are always written', () => {
    const r = renderIpvs(stateOf(), FAKE_V4);
    assert.deepEqual(exactRules(r, 'KUBE-FORWARD'), [
      `-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark ${MARK}/${MARK} -j ACCEPT`,
      '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    ]);
    assert.deepEqual(exactRules(r, 'KUBE-IPVS-FILTER'), [
      '-A KUBE-IPVS-FILTER -m set --match-set KUBE-LOAD-BALANCER dst,dst -j RETURN',
      '-A KUBE-IPVS-FILTER -m set --match-set KUBE-CLUSTER-IP dst,dst -j RETURN',
      '-A KUBE-IPVS-FILTER -m set --match-set KUBE-EXTERNAL-IP dst,dst -j RETURN',
      '-A KUBE-IPVS-FILTER -m set --match-set KUBE-EXTERNAL-IP-LOCAL dst,dst -j RETURN',
      '-A KUBE-IPVS-FILTER -m set --match-set KUBE-HEALTH-CHECK-NODE-PORT dst -j RETURN',
      '-A KUBE-IPVS-FILTER -m conntrack --ctstate NEW -m set --match-set KUBE-IPVS-IPS dst -j REJECT',
    ]);
    checkIptables(r, {
      'KUBE-SERVICES': ['RETURN', 'KUBE-NODE-PORT'],
      'KUBE-NODE-PORT': ['ACCEPT@KUBE-HEALTH-CHECK-NODE-PORT'],
      'KUBE-LOAD-BALANCER': ['KUBE-MARK-MASQ'],
      'KUBE-SOURCE-RANGES-FIREWALL': ['DROP'],
      'KUBE-PROXY-FIREWALL': [],
      'KUBE-IPVS-OUT-FILTER': [],
    });
    // The IPv6 proxier's fixed rules name the KUBE-6- sets.
    checkIptables(renderIpvs(stateOf(), FAKE_V6), {
      'KUBE-IPVS-FILTER': [
        'RETURN@KUBE-6-LOAD-BALANCER', 'RETURN@KUBE-6-CLUSTER-IP', 'RETURN@KUBE-6-EXTERNAL-IP', 'RETURN@KUBE-6-EXTERNAL-IP-LOCAL',
        'RETURN@KUBE-6-HEALTH-CHECK-NODE-PORT', 'REJECT@KUBE-6-IPVS-IPS',
      ],
    });
  });

  it('writeIptablesRules: the KUBE-CLUSTER-IP masquerade rule (masqueradeAll / local detector / NoOp detector)', () => {
    const state = stateOf(svc1({ clusterIP: '10.20.30.41', ports: [port('p80', 80, 'TCP')] }));
    const base = '-A KUBE-SERVICES -m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" -m set --match-set KUBE-CLUSTER-IP';
    const masq = (c: IpvsConfig) => exactRules(renderIpvs(state, c), 'KUBE-SERVICES')[1];
    assert.equal(masq(FAKE_V4), `${base} src,dst -j KUBE-MARK-MASQ`);
    assert.equal(masq(cfg4({ masqueradeAll: true, clusterCIDRs: ['10.0.0.0/8'] })), `${base} dst,dst -j KUBE-MARK-MASQ`);
    assert.equal(masq(cfg4({ clusterCIDRs: ['fd00::/48', '10.0.0.0/8'] })), `${base} dst,dst ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ`);
  });
});
