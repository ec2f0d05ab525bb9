// planIpvs (kernel table → `ipvsadm --restore` lines) against kube-proxy's syncService /
// syncEndpoint / cleanLegacyService and its graceful termination (pkg/proxy/ipvs/proxier.go,
// graceful_termination.go, util/ipvs.go IsRsGracefulTerminationNeeded; tests
// graceful_termination_test.go Test_GracefulDeleteRS, proxier_test.go Test_syncService,
// Test_syncEndpoint_updateWeightsOnRestart, TestCleanLegacyService*), plus the ipvsadm and ipset
// text formats (parsers on output captured from a real IPVS kernel, restore text, create args).
//
// kube-proxy's graceful termination keeps state (a list retried every minute); planIpvs is
// stateless and reads the connection counts from `ipvsadm -Ln` on every call, so each Go case
// becomes "this kernel table, this desired table → these lines, these terminating".
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  IPSETS, SET_IDS, createArgs, ipPortEntry, ipPortIPEntry, ipPortNetEntry, ipsetRestoreText, parseIpsetSave, setName, type SetId,
} from '../../src/dataplane/ipvs/ipsets.js';
import { gracefulTermination, planIpvs } from '../../src/dataplane/ipvs/plan.js';
import {
  canonical, ipvsadmRestoreText, parseIpvsadmList, parseIpvsadmSave, vsKey, type ListedRealServer, type RealServer, type VirtualServer,
} from '../../src/dataplane/ipvs/virtual-servers.js';
import { cidrContains, parseCidr } from '../../src/model/cidr.js';
import type { Protocol } from '../../src/model/types.js';

// ---- builders ------------------------------------------------------------------------------

type Opts = Partial<Pick<VirtualServer, 'scheduler' | 'persistenceTimeout' | 'schedFlags'>>;

function vs<R extends RealServer>(protocol: Protocol, address: string, port: number, realServers: R[] = [], o: Opts = {}): VirtualServer<R> {
  return { protocol, address, port, scheduler: 'rr', persistenceTimeout: null, schedFlags: [], realServers, ...o };
}
const rs = (address: string, port: number, weight = 1): RealServer => ({ address, port, weight });
/** A real server as `ipvsadm -Ln` lists it. */
const listed = (address: string, port: number, weight: number, activeConns = 0, inactiveConns = 0): ListedRealServer =>
  ({ address, port, weight, activeConns, inactiveConns });
const all = () => true;

// ---- Test_GracefulDeleteRS ------------------------------------------------------------------------

describe('planIpvs: graceful termination (Test_GracefulDeleteRS)', () => {
  // Every case: VS 1.1.1.1:80, real server 10.0.0.1:80 at weight 100, no longer wanted.
  const drop = (protocol: Protocol, active: number, inactive: number, weight = 100) =>
    planIpvs([vs(protocol, '1.1.1.1', 80, [listed('10.0.0.1', 80, weight, active, inactive)])], [vs(protocol, '1.1.1.1', 80)], all);

  it('Test_GracefulDeleteRS: graceful delete, no connections results in deleting the real server immediately', () => {
    const p = drop('TCP', 0, 0);
    assert.deepEqual(p.lines, ['-d -t 1.1.1.1:80 -r 10.0.0.1:80']);
    assert.deepEqual(p.terminating, []);
    assert.equal(p.realServersDeleted, 1);
  });

  it('Test_GracefulDeleteRS: graceful delete, active connections results in the real server staying at weight 0', () => {
    const p = drop('TCP', 10, 0);
    assert.deepEqual(p.lines, ['-e -t 1.1.1.1:80 -r 10.0.0.1:80 -m -w 0']);
    assert.deepEqual(p.terminating, ['1.1.1.1:80/TCP/10.0.0.1:80']);
    assert.equal(p.realServersEdited, 1);
    assert.equal(p.realServersDeleted, 0);
  });

  it('Test_GracefulDeleteRS: graceful delete, inactive connections results in the real server staying at weight 0', () => {
    const p = drop('TCP', 0, 10);
    assert.deepEqual(p.lines, ['-e -t 1.1.1.1:80 -r 10.0.0.1:80 -m -w 0']);
    assert.deepEqual(p.terminating, ['1.1.1.1:80/TCP/10.0.0.1:80']);
  });

  it('Test_GracefulDeleteRS: graceful delete, UDP with connections results in deleting the real server immediately', () => {
    const p = drop('UDP', 10, 10);
    assert.deepEqual(p.lines, ['-d -u 1.1.1.1:80 -r 10.0.0.1:80']);
    assert.deepEqual(p.terminating, []);
  });

  it('IsRsGracefulTerminationNeeded: SCTP is deleted immediately too (only TCP drains)', () => {
    const p = drop('SCTP', 10, 10);
    assert.deepEqual(p.lines, ['-d --sctp-service 1.1.1.1:80 -r 10.0.0.1:80']);
    assert.deepEqual(p.terminating, []);
    assert.deepEqual((['TCP', 'UDP', 'SCTP'] as const).map(gracefulTermination), [true, false, false]);
  });

  it('graceful_termination.go tryDeleteRs: already at weight 0 with connections → no line, still terminating', () => {
    const p = drop('TCP', 3, 1, 0);
    assert.deepEqual(p.lines, []);
    assert.deepEqual(p.terminating, ['1.1.1.1:80/TCP/10.0.0.1:80']);
    assert.equal(p.realServersEdited, 0);
  });

  it('graceful_termination.go tryDeleteRs: a draining real server with no connections left is deleted', () => {
    const p = drop('TCP', 0, 0, 0);
    assert.deepEqual(p.lines, ['-d -t 1.1.1.1:80 -r 10.0.0.1:80']);
    assert.deepEqual(p.terminating, []);
  });

  it('syncEndpoint MoveRSOutofGracefulDeleteList: a draining real server that is wanted again is back at weight 1', () => {
    const p = planIpvs([vs('TCP', '1.1.1.1', 80, [listed('10.0.0.1', 80, 0, 10, 0)])], [vs('TCP', '1.1.1.1', 80, [rs('10.0.0.1', 80)])], all);
    assert.deepEqual(p.lines, ['-e -t 1.1.1.1:80 -r 10.0.0.1:80 -m -w 1']);
    assert.deepEqual(p.terminating, []);
    assert.equal(p.realServersEdited, 1);
  });

  it('graceful termination on IPv6: bracketed addresses in lines and terminating names', () => {
    const p = planIpvs([vs('TCP', '2020::1', 80, [listed('1002:ab8::2:10', 80, 1, 1, 0), listed('1002:ab8::2:11', 80, 1)])], [vs('TCP', '2020::1', 80)], all);
    assert.deepEqual(p.lines, ['-e -t [2020::1]:80 -r [1002:ab8::2:10]:80 -m -w 0', '-d -t [2020::1]:80 -r [1002:ab8::2:11]:80']);
    assert.deepEqual(p.terminating, ['[2020::1]:80/TCP/[1002:ab8::2:10]:80']);
  });
});

// ---- virtual servers: Test_syncService, weights, cleanLegacyService ---------------------------------------

describe('planIpvs: virtual and real servers (Test_syncService, syncEndpoint, cleanLegacyService)', () => {
  it('syncService + syncEndpoint: a new virtual server and its real servers, masquerading at weight 1', () => {
    const p = planIpvs([], [vs('TCP', '10.20.30.41', 80, [rs('10.180.0.1', 80), rs('10.180.1.1', 80)])], all);
    assert.deepEqual(p.lines, [
      '-A -t 10.20.30.41:80 -s rr',
      '-a -t 10.20.30.41:80 -r 10.180.0.1:80 -m -w 1',
      '-a -t 10.20.30.41:80 -r 10.180.1.1:80 -m -w 1',
    ]);
    assert.deepEqual([p.servicesAdded, p.realServersAdded, p.servicesEdited, p.realServersEdited, p.servicesDeleted, p.realServersDeleted], [1, 2, 0, 0, 0, 0]);
  });

  it('Test_syncService: legacy service, identical → nothing to do (TCP and SCTP)', () => {
    for (const proto of ['TCP', 'SCTP'] as const) {
      const cur = vs(proto, '1.2.3.4', 80, [listed('10.0.0.1', 80, 1, 4, 2)]);
      assert.deepEqual(planIpvs([cur], [vs(proto, '1.2.3.4', 80, [rs('10.0.0.1', 80)])], all).lines, [], proto);
    }
  });

  it('Test_syncService: persistence flag added / removed → -E (UpdateVirtualServer), real servers untouched', () => {
    const kernel = [vs('TCP', '1.2.3.4', 8080, [listed('10.0.0.1', 80, 1)])];
    const sticky = planIpvs(kernel, [vs('TCP', '1.2.3.4', 8080, [rs('10.0.0.1', 80)], { persistenceTimeout: 10800 })], all);
    assert.deepEqual(sticky.lines, ['-E -t 1.2.3.4:8080 -s rr -p 10800']);
    assert.equal(sticky.servicesEdited, 1);
    const back = planIpvs([vs('SCTP', '1.2.3.4', 8080, [], { persistenceTimeout: 10800 })], [vs('SCTP', '1.2.3.4', 8080)], all);
    assert.deepEqual(back.lines, ['-E --sctp-service 1.2.3.4:8080 -s rr']);
    const timeout = planIpvs([vs('UDP', '1.2.3.4', 53, [], { persistenceTimeout: 10800 })], [vs('UDP', '1.2.3.4', 53, [], { persistenceTimeout: 60 })], all);
    assert.deepEqual(timeout.lines, ['-E -u 1.2.3.4:53 -s rr -p 60']);
  });

  it('Test_syncService: scheduler changed → -E (TCP and SCTP); mh flags change → -E', () => {
    assert.deepEqual(planIpvs([vs('TCP', '1.2.3.4', 8080)], [vs('TCP', '1.2.3.4', 8080, [], { scheduler: 'wlc' })], all).lines, ['-E -t 1.2.3.4:8080 -s wlc']);
    assert.deepEqual(planIpvs([vs('SCTP', '1.2.3.4', 8080)], [vs('SCTP', '1.2.3.4', 8080, [], { scheduler: 'wlc' })], all).lines, ['-E --sctp-service 1.2.3.4:8080 -s wlc']);
    assert.deepEqual(planIpvs([vs('TCP', '1.2.3.4', 80, [], { scheduler: 'mh' })], [vs('TCP', '1.2.3.4', 80, [], { scheduler: 'mh', schedFlags: ['mh-port'] })], all).lines,
      ['-E -t 1.2.3.4:80 -s mh -b mh-port']);
  });

  it('Test_syncService: new UDP and SCTP services → -A', () => {
    const p = planIpvs([], [vs('UDP', '1.2.3.4', 53), vs('SCTP', '1.2.3.4', 53), vs('TCP', '2020::1', 80, [], { persistenceTimeout: 10800 })], all);
    assert.deepEqual(p.lines, ['-A -u 1.2.3.4:53 -s rr', '-A --sctp-service 1.2.3.4:53 -s rr', '-A -t [2020::1]:80 -s rr -p 10800']);
    assert.equal(p.servicesAdded, 3);
  });

  it('Test_syncEndpoint_updateWeightsOnRestart (intent): a weight-0 leftover that is wanted goes back to 1, then nothing', () => {
    const desired = [vs('TCP', '10.20.30.41', 80, [rs('10.180.0.1', 80)])];
    const restart = planIpvs([vs('TCP', '10.20.30.41', 80, [listed('10.180.0.1', 80, 0)])], desired, all);
    assert.deepEqual(restart.lines, ['-e -t 10.20.30.41:80 -r 10.180.0.1:80 -m -w 1']);
    assert.deepEqual(restart.terminating, []);
    const later = planIpvs([vs('TCP', '10.20.30.41', 80, [listed('10.180.0.1', 80, 1)])], desired, all);
    assert.deepEqual(later.lines, []);
  });

  it('cleanLegacyService: a virtual server no longer wanted is deleted (-D) first, its real servers with it', () => {
    const kernel = [
      vs('TCP', '10.20.30.99', 80, [listed('10.180.0.9', 80, 1, 5, 5)]),
      vs('TCP', '10.20.30.41', 80, [listed('10.180.0.1', 80, 1), listed('10.180.0.2', 80, 1, 0, 1)]),
    ];
    const desired = [
      vs('TCP', '10.20.30.41', 80, [rs('10.180.0.1', 80), rs('10.180.0.3', 80)]),
      vs('UDP', '10.20.30.42', 53, [rs('10.180.0.1', 53)]),
    ];
    const p = planIpvs(kernel, desired, all);
    assert.deepEqual(p.lines, [
      '-D -t 10.20.30.99:80',
      '-A -u 10.20.30.42:53 -s rr',
      '-a -t 10.20.30.41:80 -r 10.180.0.3:80 -m -w 1',
      '-e -t 10.20.30.41:80 -r 10.180.0.2:80 -m -w 0',
      '-a -u 10.20.30.42:53 -r 10.180.0.1:53 -m -w 1',
    ]);
    assert.deepEqual(p.terminating, ['10.20.30.41:80/TCP/10.180.0.2:80']);
    assert.deepEqual([p.servicesAdded, p.servicesEdited, p.servicesDeleted, p.realServersAdded, p.realServersEdited, p.realServersDeleted], [1, 0, 1, 2, 1, 0]);
    assert.ok(!p.lines.some((l) => l.startsWith('-d -t 10.20.30.99:80')), 'real servers of a deleted VS go with it');
  });

  // excludeCIDRs → `owned` (what kube-xdp's dataplane passes).
  const notIn = (...cidrs: string[]) => (v: VirtualServer) => !cidrs.map(parseCidr).some((c) => c !== null && cidrContains(c, v.address));

  it('TestCleanLegacyService: excluded CIDRs are kept (owned = false), everything else not active is deleted', () => {
    const kernel = ['1.1.1.1', '2.2.2.2', '3.3.3.3', '4.4.4.4', '5.5.5.5', '6.6.6.6'].map((ip, i) => vs<ListedRealServer>('UDP', ip, 53 + i));
    const active = kernel.slice(0, 2).map((v) => vs('UDP', v.address, v.port));
    const p = planIpvs(kernel, active, notIn('3.3.3.0/24', '4.4.4.0/24'));
    assert.deepEqual(p.lines, ['-D -u 5.5.5.5:57', '-D -u 6.6.6.6:58']);
    assert.equal(p.servicesDeleted, 2);
  });

  it('TestCleanLegacyService6', () => {
    const kernel = ['1000::1', '1000::2', '3000::1', '4000::1', '5000::1', '1000::6'].map((ip, i) => vs<ListedRealServer>('UDP', ip, 53 + i));
    const p = planIpvs(kernel, kernel.slice(0, 2).map((v) => vs('UDP', v.address, v.port)), notIn('3000::/64', '4000::/64'));
    assert.deepEqual(p.lines, ['-D -u [5000::1]:57', '-D -u [1000::6]:58']);
  });

  it('TestCleanLegacyServiceWithRealServers: a virtual server is deleted even when it has real servers', () => {
    const kernel = [vs('UDP', '1.1.1.1', 53, [listed('10.180.0.1', 53, 1, 2, 2)]), vs<ListedRealServer>('UDP', '2.2.2.2', 54), vs<ListedRealServer>('UDP', '3.3.3.3', 54)];
    const p = planIpvs(kernel, [vs('UDP', '3.3.3.3', 54)], all);
    assert.deepEqual(p.lines, ['-D -u 1.1.1.1:53', '-D -u 2.2.2.2:54']);
    assert.deepEqual(p.terminating, []);
  });

  it('TestCleanLegacyRealServersExcludeCIDRs: an excluded virtual server keeps its real servers', () => {
    const kernel = [vs('UDP', '4.4.4.4', 56, [listed('10.10.10.10', 56, 1), listed('11.11.11.11', 56, 1)])];
    const p = planIpvs(kernel, [], notIn('4.4.4.4/32'));
    assert.deepEqual(p.lines, []);
    assert.equal(p.servicesDeleted + p.realServersDeleted, 0);
  });
});

// ---- ipvsadm text ------------------------------------------------------------------------------

// Captured in a real IPVS kernel.
const SAVE = `-A -t 10.96.0.1:443 -s rr
-a -t 10.96.0.1:443 -r 10.0.0.1:6443 -m -w 1
-A -u 10.96.0.10:53 -s rr -p 10800
-a -u 10.96.0.10:53 -r 10.0.0.2:53 -m -w 3
-A -t [fd00::1]:80 -s wrr
-a -t [fd00::1]:80 -r [fd01::2]:8080 -m -w 1
`;
const LIST = `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.96.0.1:443 rr
  -> 10.0.0.1:6443                Masq    1      0          0         
UDP  10.96.0.10:53 rr persistent 10800
  -> 10.0.0.2:53                  Masq    3      0          0         
TCP  [fd00::1]:80 wrr
  -> [fd01::2]:8080               Masq    1      0          0         
`;

const CAPTURED: VirtualServer[] = [
  vs('TCP', '10.96.0.1', 443, [rs('10.0.0.1', 6443)]),
  vs('UDP', '10.96.0.10', 53, [rs('10.0.0.2', 53, 3)], { persistenceTimeout: 10800 }),
  vs('TCP', 'fd00::1', 80, [rs('fd01::2', 8080)], { scheduler: 'wrr' }),
];

describe('ipvsadm text formats', () => {
  it('parseIpvsadmSave: `ipvsadm -Sn` output', () => {
    assert.deepEqual(parseIpvsadmSave(SAVE), CAPTURED);
  });

  it('parseIpvsadmList: `ipvsadm -Ln` output, with connection counts', () => {
    const got = parseIpvsadmList(LIST);
    assert.deepEqual(got, CAPTURED.map((v) => ({ ...v, realServers: v.realServers.map((r) => ({ ...r, activeConns: 0, inactiveConns: 0 })) })));
    // The same listing with traffic on it (columns: Weight ActiveConn InActConn).
    const busy = parseIpvsadmList(LIST.replace('  -> 10.0.0.1:6443                Masq    1      0          0', '  -> 10.0.0.1:6443                Masq    0      7          12'));
    assert.deepEqual(busy[0]!.realServers, [listed('10.0.0.1', 6443, 0, 7, 12)]);
    // Nothing listed: no virtual servers.
    assert.deepEqual(parseIpvsadmList(LIST.split('\n').slice(0, 3).join('\n')), []);
  });

  it('parseIpvsadmList: scheduler flags and persistence as the 6.1 kernel lists them', () => {
    // Captured after `ipvsadm -A -t 10.96.0.1:443 -s sh -b sh-port,sh-fallback -p 300` and `-A -t 10.96.0.2:80 -s sh -b sh-port`.
    const got = parseIpvsadmList([
      'TCP  10.96.0.1:443 sh (sh-fallback,sh-port) persistent 300',
      'TCP  10.96.0.2:80 sh (sh-port)',
      '  -> 10.0.0.1:80                  Masq    1      0          0         ',
    ].join('\n'));
    assert.deepEqual(got.map((v) => [v.scheduler, v.schedFlags, v.persistenceTimeout, v.realServers.length]),
      [['sh', ['sh-fallback', 'sh-port'], 300, 0], ['sh', ['sh-port'], null, 1]]);
  });

  it('ipvsadmRestoreText prints exactly what `ipvsadm -Sn` prints back', () => {
    assert.equal(ipvsadmRestoreText(CAPTURED), SAVE);
  });

  it('round trip: parseIpvsadmSave(ipvsadmRestoreText(x)) equals x, canonically', () => {
    const x: VirtualServer[] = [
      vs('SCTP', '10.20.30.41', 80, [rs('10.180.0.2', 80), rs('10.180.0.1', 80)], { persistenceTimeout: 10800 }),
      vs('TCP', '2020::1', 8080, [rs('1002:ab8::2:10', 80, 0), rs('1002:ab8::2:9', 80)], { scheduler: 'mh', schedFlags: ['mh-port'] }),
      vs('UDP', '1.2.3.4', 53),
      ...CAPTURED,
    ];
    assert.deepEqual(canonical(parseIpvsadmSave(ipvsadmRestoreText(x))), canonical(x));
    // canonical sorts by vsKey and real servers by "ip:port" (the kernel lists in hash order).
    assert.deepEqual(canonical(x).map(vsKey), [...x.map(vsKey)].sort());
    assert.deepEqual(canonical(x).find((v) => v.protocol === 'SCTP')!.realServers.map((r) => r.address), ['10.180.0.1', '10.180.0.2']);
  });

  it('a kernel table equal to the desired one plans nothing (listing vs. save of the same table)', () => {
    const p = planIpvs(parseIpvsadmList(LIST), parseIpvsadmSave(SAVE), all);
    assert.deepEqual(p.lines, []);
    assert.deepEqual(p.terminating, []);
  });
});

// ---- ipsets ----------------------------------------------------------------------------------

describe('ipsets (ipset.go NewIPSet / createSet, ipsetInfo)', () => {
  it('ipsetInfo: names, types and order', () => {
    assert.deepEqual(SET_IDS.map((id) => `${IPSETS[id].name} ${IPSETS[id].type}`), [
      'KUBE-LOOP-BACK hash:ip,port,ip',
      'KUBE-CLUSTER-IP hash:ip,port',
      'KUBE-EXTERNAL-IP hash:ip,port',
      'KUBE-EXTERNAL-IP-LOCAL hash:ip,port',
      'KUBE-LOAD-BALANCER hash:ip,port',
      'KUBE-LOAD-BALANCER-FW hash:ip,port',
      'KUBE-LOAD-BALANCER-LOCAL hash:ip,port',
      'KUBE-LOAD-BALANCER-SOURCE-IP hash:ip,port,ip',
      'KUBE-LOAD-BALANCER-SOURCE-CIDR hash:ip,port,net',
      'KUBE-NODE-PORT-TCP bitmap:port',
      'KUBE-NODE-PORT-LOCAL-TCP bitmap:port',
      'KUBE-NODE-PORT-UDP bitmap:port',
      'KUBE-NODE-PORT-LOCAL-UDP bitmap:port',
      'KUBE-NODE-PORT-SCTP-HASH hash:ip,port',
      'KUBE-NODE-PORT-LOCAL-SCTP-HASH hash:ip,port',
      'KUBE-HEALTH-CHECK-NODE-PORT bitmap:port',
      'KUBE-IPVS-IPS hash:ip',
    ]);
  });

  it('NewIPSet: IPv6 names are KUBE-6-…, cut to 31 characters', () => {
    assert.deepEqual(SET_IDS.map((id) => setName(id, 'IPv6')), [
      'KUBE-6-LOOP-BACK', 'KUBE-6-CLUSTER-IP', 'KUBE-6-EXTERNAL-IP', 'KUBE-6-EXTERNAL-IP-LOCAL', 'KUBE-6-LOAD-BALANCER',
      'KUBE-6-LOAD-BALANCER-FW', 'KUBE-6-LOAD-BALANCER-LOCAL', 'KUBE-6-LOAD-BALANCER-SOURCE-IP', 'KUBE-6-LOAD-BALANCER-SOURCE-CID',
      'KUBE-6-NODE-PORT-TCP', 'KUBE-6-NODE-PORT-LOCAL-TCP', 'KUBE-6-NODE-PORT-UDP', 'KUBE-6-NODE-PORT-LOCAL-UDP',
      'KUBE-6-NODE-PORT-SCTP-HASH', 'KUBE-6-NODE-PORT-LOCAL-SCTP-HAS', 'KUBE-6-HEALTH-CHECK-NODE-PORT', 'KUBE-6-IPVS-IPS',
    ]);
    assert.deepEqual(SET_IDS.map((id) => setName(id, 'IPv4')), SET_IDS.map((id) => IPSETS[id].name));
  });

  it('createSet: bitmap:port gets `range 0-65535` and no family; hash types family/hashsize/maxelem; all with comment', () => {
    assert.equal(createArgs('nodePortTCP', 'IPv4'), 'KUBE-NODE-PORT-TCP bitmap:port range 0-65535 comment');
    assert.equal(createArgs('healthCheckNodePort', 'IPv6'), 'KUBE-6-HEALTH-CHECK-NODE-PORT bitmap:port range 0-65535 comment');
    assert.equal(createArgs('clusterIP', 'IPv4'), 'KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536 comment');
    assert.equal(createArgs('loadBalancerSourceCIDR', 'IPv6'), 'KUBE-6-LOAD-BALANCER-SOURCE-CID hash:ip,port,net family inet6 hashsize 1024 maxelem 65536 comment');
    assert.equal(createArgs('ipvsIPs', 'IPv4'), 'KUBE-IPVS-IPS hash:ip family inet hashsize 1024 maxelem 65536 comment');
    for (const family of ['IPv4', 'IPv6'] as const) {
      for (const id of SET_IDS) {
        const args = createArgs(id, family);
        assert.ok(args.startsWith(`${setName(id, family)} ${IPSETS[id].type} `), args);
        assert.ok(args.endsWith(' comment'), args);
        if (IPSETS[id].type === 'bitmap:port') assert.ok(!args.includes('family') && args.includes(' range 0-65535 '), args);
        else assert.ok(args.includes(` family ${family === 'IPv4' ? 'inet' : 'inet6'} hashsize 1024 maxelem 65536 `) && !args.includes('range'), args);
      }
    }
  });

  it('Entry.String(): hash:ip,port / hash:ip,port,ip / hash:ip,port,net', () => {
    assert.equal(ipPortEntry('192.168.1.1', 'udp', 53), '192.168.1.1,udp:53');
    assert.equal(ipPortEntry('2001:db8::1:1', 'sctp', 3001), '2001:db8::1:1,sctp:3001');
    assert.equal(ipPortIPEntry('10.0.1.1', 'tcp', 80, '10.0.1.1'), '10.0.1.1,tcp:80,10.0.1.1');
    assert.equal(ipPortNetEntry('1.2.3.4', 'tcp', 80, '10.0.0.0/8'), '1.2.3.4,tcp:80,10.0.0.0/8');
  });

  const desired = (entries: Partial<Record<SetId, string[]>>) => new Map(SET_IDS.map((id) => [id, new Set(entries[id] ?? [])]));

  it('ipsetRestoreText without current: every set created (no -exist), every entry added', () => {
    const text = ipsetRestoreText(desired({ clusterIP: ['10.96.0.10,udp:53', '10.96.0.1,tcp:443'], nodePortTCP: ['30080'] }), 'IPv4', null);
    assert.equal(text, [
      ...SET_IDS.map((id) => `create ${createArgs(id, 'IPv4')}`),
      // sorted
      'add KUBE-CLUSTER-IP 10.96.0.1,tcp:443',
      'add KUBE-CLUSTER-IP 10.96.0.10,udp:53',
      'add KUBE-NODE-PORT-TCP 30080',
    ].map((l) => `${l}\n`).join(''));
  });

  it('ipsetRestoreText with current: -exist creates, then only the differences (del stale, add new), with -exist', () => {
    const current = new Map([
      ['KUBE-CLUSTER-IP', new Set(['10.96.0.1,tcp:443', '10.96.0.99,tcp:80'])],
      ['KUBE-NODE-PORT-TCP', new Set<string>()],
      ['KUBE-LOAD-BALANCER-SOURCE-CIDR', new Set(['1.2.3.4,tcp:80,5.6.7.8'])],
    ]);
    const text = ipsetRestoreText(desired({
      clusterIP: ['10.96.0.1,tcp:443', '10.96.0.2,tcp:53'], nodePortTCP: ['30080'],
      // ipset lists a host-sized net without "/32": the same entry, no churn.
      loadBalancerSourceCIDR: ['1.2.3.4,tcp:80,5.6.7.8/32'],
    }), 'IPv4', current);
    const lines = text.split('\n').filter((l) => l !== '');
    assert.deepEqual(lines.filter((l) => l.startsWith('create ')), SET_IDS.map((id) => `create ${createArgs(id, 'IPv4')} -exist`));
    assert.deepEqual(lines.filter((l) => !l.startsWith('create ')), [
      'del KUBE-CLUSTER-IP 10.96.0.99,tcp:80 -exist',
      'add KUBE-CLUSTER-IP 10.96.0.2,tcp:53 -exist',
      'add KUBE-NODE-PORT-TCP 30080 -exist',
    ]);
    // Already in sync: creates only.
    const same = ipsetRestoreText(desired({ clusterIP: ['10.96.0.1,tcp:443'] }), 'IPv4', new Map([['KUBE-CLUSTER-IP', new Set(['10.96.0.1,tcp:443'])]]));
    assert.ok(same.split('\n').filter((l) => l !== '').every((l) => l.startsWith('create ')), same);
  });

  it('ipsetRestoreText on the IPv6 proxier: KUBE-6- names, family inet6', () => {
    const text = ipsetRestoreText(desired({ clusterIP: ['2020::1,tcp:80'], nodePortLocalSCTP: ['2001:db8::1:1,sctp:3001'] }), 'IPv6', null);
    assert.ok(text.includes('create KUBE-6-CLUSTER-IP hash:ip,port family inet6 hashsize 1024 maxelem 65536 comment\n'));
    assert.ok(text.includes('add KUBE-6-CLUSTER-IP 2020::1,tcp:80\n'));
    assert.ok(text.includes('add KUBE-6-NODE-PORT-LOCAL-SCTP-HAS 2001:db8::1:1,sctp:3001\n'));
    assert.ok(!/ KUBE-(?!6-)/.test(text), 'an IPv4 set name in IPv6 restore text');
  });

  it('ipsetRestoreText on the IPv6 proxier: a /32 source range is not a host (only /128 is)', () => {
    // ipset prints a net without its prefix length only when it is host-sized (/32 for inet, /128 for inet6).
    const text = ipsetRestoreText(desired({ loadBalancerSourceCIDR: ['2001:db8::1234,tcp:80,2001:db8::/32', '2001:db8::1234,tcp:80,fd00::1/128'] }), 'IPv6', null);
    assert.ok(text.includes('add KUBE-6-LOAD-BALANCER-SOURCE-CID 2001:db8::1234,tcp:80,2001:db8::/32\n'), text);
    assert.ok(text.includes('add KUBE-6-LOAD-BALANCER-SOURCE-CID 2001:db8::1234,tcp:80,fd00::1\n'), text);
    assert.deepEqual(parseIpsetSave('add KUBE-6-LOAD-BALANCER-SOURCE-CID 2001:db8::1234,tcp:80,2001:db8::/32\n').get('KUBE-6-LOAD-BALANCER-SOURCE-CID'),
      new Set(['2001:db8::1234,tcp:80,2001:db8::/32']));
  });

  it('parseIpsetSave: `ipset save` output', () => {
    const save = [
      'create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536 comment bucketsize 12 initval 0x5d8d8b0c',
      'add KUBE-CLUSTER-IP 10.96.0.1,tcp:443',
      'add KUBE-CLUSTER-IP 10.96.0.10,udp:53 comment "from elsewhere"',
      'create KUBE-NODE-PORT-TCP bitmap:port range 0-65535 comment',
      'add KUBE-NODE-PORT-TCP 30080',
      'create KUBE-LOOP-BACK hash:ip,port,ip family inet hashsize 1024 maxelem 65536 comment bucketsize 12 initval 0x1d2e3f4a',
      'create KUBE-LOAD-BALANCER-SOURCE-CIDR hash:ip,port,net family inet hashsize 1024 maxelem 65536 comment bucketsize 12 initval 0x0a0b0c0d',
      'add KUBE-LOAD-BALANCER-SOURCE-CIDR 1.2.3.4,tcp:80,10.0.0.0/8',
      'add KUBE-LOAD-BALANCER-SOURCE-CIDR 1.2.3.4,tcp:80,5.6.7.8',
      '',
    ].join('\n');
    assert.deepEqual(parseIpsetSave(save), new Map([
      ['KUBE-CLUSTER-IP', new Set(['10.96.0.1,tcp:443', '10.96.0.10,udp:53'])],
      ['KUBE-NODE-PORT-TCP', new Set(['30080'])],
      ['KUBE-LOOP-BACK', new Set()],
      ['KUBE-LOAD-BALANCER-SOURCE-CIDR', new Set(['1.2.3.4,tcp:80,10.0.0.0/8', '1.2.3.4,tcp:80,5.6.7.8'])],
    ]));
  });
});
