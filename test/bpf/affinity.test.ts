// sessionAffinity ClientIP and the counters of the kube-proxy semantics, on the real programs
// with the maps programmed by the control plane's path (objects -> tracker -> compile -> plan ->
// apply). What the packet-flow tables cannot show (their tracer forgets affinity): the same
// client sticks, the timeout ends it, a backend that left the Service is never reused.
// Needs root; under CI=true a non-root run fails instead of skipping.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compile, type EbpfNodeConfig } from '../../src/dataplane/ebpf/compile.js';
import { emptyApplied, plan, type AppliedState } from '../../src/dataplane/ebpf/plan.js';
import { applyPlan } from '../../src/dataplane/ebpf/apply.js';
import { Prefilter } from '../../src/dataplane/ebpf/prefilter.js';
import { affinityKey, affinityValue, MAPS, type AffinityValue } from '../../src/dataplane/ebpf/maps.js';
import { objects, type Json } from '../unit/helpers/kube-objects.js';
import { ready, service, slice, tcp } from '../unit/helpers/kube-proxy-fake.js';
import { Dataplane, ensureBpffs, ktimeNs, statsDelta, TC_ACT_SHOT, XDP_DROP, type Program } from './fixture.js';
import { buildFrame, parseFrame, TCP } from './packet.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot && process.env.CI === 'true') {
  test('affinity fixtures', () => assert.fail('CI=true requires root for BPF_PROG_TEST_RUN'));
}

const NODE: EbpfNodeConfig = { nodeAddresses: ['192.168.0.2'], clusterCIDRs: ['10.0.0.0/8'] };
const CIP = '172.30.0.41';
const LB = '1.2.3.4';
const EPS = ['10.180.0.1', '10.180.0.2', '10.180.0.3'];
const TIMEOUT_S = 600;

const sticky = (): Json => service('ns1', 'sticky', {
  type: 'LoadBalancer', clusterIP: CIP, ports: [tcp('p80', 80, { nodePort: 3001 })],
  sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: TIMEOUT_S } },
  loadBalancerSourceRanges: ['203.0.113.0/25'],
}, [LB]);
const stickySlice = (ips: string[]): Json => slice('ns1', 'sticky', ips.map((ip) => ready(ip, 'node2')), [tcp('p80', 80)]);
const empty = (): Json => service('ns1', 'empty', { clusterIP: '172.30.0.42', ports: [tcp('p80', 80)] });

describe('sessionAffinity ClientIP and source ranges on the real programs', { skip: isRoot ? false : 'needs root (BPF_PROG_TEST_RUN, bpffs)' }, () => {
  let dp: Dataplane;
  let applied: AppliedState = emptyApplied();
  const o = objects();
  let sport = 20000;
  const prefilter = new Prefilter();

  const sync = (...objs: Json[]): void => {
    o.apply(...objs);
    const desired = compile(o.state({ nodeName: 'node1' }), NODE).desired;
    prefilter.addDesired(desired.frontends.values());
    prefilter.writeTo(dp.io());
    const p = plan(applied, desired);
    applyPlan(dp.io(), p);
    applied = p.next;
  };
  /** One new flow from `client`: the backend it reached, or the verdict when not forwarded. */
  const connect = (program: Program, client: string, dst = CIP, dport = 80): string => {
    const r = dp.run(program, buildFrame({ src: client, dst, sport: sport++, dport, proto: TCP }));
    if (r.verdict === (program === 'xdp' ? XDP_DROP : TC_ACT_SHOT)) return 'drop';
    return parseFrame(r.out).dst;
  };
  const svcIdOf = (addr: string): number => [...applied.frontends.values()].find((f) => f.key.addr === addr)!.value.svcId;
  const affinityOf = (client: string): AffinityValue | null => {
    const key = Buffer.alloc(affinityKey.size);
    affinityKey.encode({ client, svcId: svcIdOf(CIP) }, key, 0);
    const v = Buffer.alloc(affinityValue.size);
    return dp.kx.mapLookup(dp.map(MAPS.affinity.name), key, v) ? affinityValue.decode(v, 0) : null;
  };
  const setAffinity = (client: string, v: AffinityValue): void => {
    const key = Buffer.alloc(affinityKey.size), val = Buffer.alloc(affinityValue.size);
    affinityKey.encode({ client, svcId: svcIdOf(CIP) }, key, 0);
    affinityValue.encode(v, val, 0);
    dp.kx.mapUpdate(dp.map(MAPS.affinity.name), key, val);
  };

  before(() => {
    ensureBpffs();
    dp = new Dataplane(undefined, 'kx-affinity');
    sync(sticky(), stickySlice(EPS), empty());
  });
  after(() => dp?.close());

  test('one client: 30 new flows, one backend; 30 clients: more than one', () => {
    const reached = new Set(Array.from({ length: 30 }, () => connect('tc', '10.0.0.2')));
    assert.equal(reached.size, 1, [...reached].join(' '));
    assert.ok(EPS.includes([...reached][0]!));
    assert.ok(affinityOf('10.0.0.2'), 'no kx_affinity entry');
    const many = new Set(Array.from({ length: 30 }, (_, i) => connect('tc', `10.0.1.${i + 1}`)));
    assert.ok(many.size > 1, `30 clients all on ${[...many].join(' ')}`);
  });

  test('the timeout ends it: an entry older than timeoutSeconds is not followed, and is renewed', () => {
    // 24 clients whose entries all point to the first backend but expired a second ago: were
    // they followed, all 24 would land there ((1/3)^24 by chance).
    const first = affinityOf('10.0.0.2')!.backendId;
    const firstAddr = connect('tc', '10.0.0.2');
    const stale = ktimeNs() - BigInt(TIMEOUT_S + 1) * 1_000_000_000n;
    const clients = Array.from({ length: 24 }, (_, i) => `10.0.2.${i + 1}`);
    for (const c of clients) setAffinity(c, { backendId: first, lastNs: stale });
    const before = ktimeNs();
    const reached = clients.map((c) => connect('tc', c));
    assert.ok(reached.some((a) => a !== firstAddr), 'expired entries were followed');
    for (const c of clients) assert.ok(affinityOf(c)!.lastNs >= before, `${c}: entry not renewed`);
    // within the timeout it is followed
    setAffinity('10.0.0.9', { backendId: first, lastNs: ktimeNs() - BigInt(TIMEOUT_S - 5) * 1_000_000_000n });
    assert.equal(connect('tc', '10.0.0.9'), firstAddr);
  });

  test('a backend that left the Service is never reused through an affinity entry', () => {
    const mine = connect('tc', '10.0.0.2');
    sync(stickySlice(EPS.filter((ip) => ip !== mine)));
    const after = new Set(Array.from({ length: 10 }, () => connect('tc', '10.0.0.2')));
    assert.equal(after.size, 1);
    assert.notEqual([...after][0], mine, 'the removed endpoint was reached');
    sync(stickySlice(EPS));
  });

  test('loadBalancerSourceRanges: outside clients dropped and counted as denied, inside ones served; no endpoints: rejected', () => {
    const before = dp.stats();
    assert.equal(connect('xdp', '203.0.113.130', LB), 'drop');
    assert.equal(connect('tc', '10.0.0.2', LB), 'drop', 'pods are outside the ranges too');
    assert.ok(EPS.includes(connect('xdp', '203.0.113.2', LB)));
    assert.ok(EPS.includes(connect('xdp', '203.0.113.130', '192.168.0.2', 3001)), 'NodePorts ignore the ranges');
    dp.run('tc', buildFrame({ src: '10.0.0.2', dst: '172.30.0.42', sport: sport++, dport: 80, proto: TCP }));
    const d = statsDelta(before, dp.stats());
    assert.equal(d.denied, 2);
    assert.equal(d.rejected, 1);
    assert.equal(d.no_backend, 1);
  });
});
