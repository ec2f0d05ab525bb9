import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { familyView } from '../../src/model/family.js';
import { objects, makeEndpointSlice, makeService } from './helpers/kube-objects.js';

describe('per-family view of a dual-stack Service', () => {
  const svc = makeService('ns', 'web', (s) => {
    s.spec = {
      type: 'LoadBalancer', clusterIP: '172.30.0.1', clusterIPs: ['172.30.0.1', 'fd00:30::1'], ipFamilies: ['IPv4', 'IPv6'],
      externalIPs: ['192.168.99.1', '2001:db8::99'], loadBalancerSourceRanges: ['203.0.113.0/24', '2001:db8:1::/48'],
      ports: [{ name: 'p80', port: 80, protocol: 'TCP', nodePort: 30080 }],
    };
    s.status = { loadBalancer: { ingress: [{ ip: '198.51.100.1' }, { ip: '2001:db8::1' }] } };
  });
  // Endpoints only in IPv4: IPv6 has none (kube-proxy's IPv6 proxier would REJECT).
  const v4 = makeEndpointSlice('ns', 'web', 1, (e) => {
    e.endpoints = [{ addresses: ['10.0.1.1'], nodeName: 'test-hostname' }];
    e.ports = [{ name: 'p80', port: 8080, protocol: 'TCP' }];
  });
  const state = objects(svc, v4).state({ ipFamilies: ['IPv4', 'IPv6'] });
  const sp = state.services[0]!;

  it('splits addresses, ranges and endpoints, and decides "has endpoints" per family', () => {
    assert.deepEqual(sp.familiesWithEndpoints, ['IPv4']);
    const a = familyView(sp, 'IPv4')!;
    assert.deepEqual([a.clusterIPs, a.externalIPs, a.loadBalancerIPs, a.loadBalancerSourceRanges, a.hasAnyEndpoints],
      [['172.30.0.1'], ['192.168.99.1'], ['198.51.100.1'], ['203.0.113.0/24'], true]);
    assert.deepEqual(a.clusterEndpoints.map((e) => e.ip), ['10.0.1.1']);
    const b = familyView(sp, 'IPv6')!;
    assert.deepEqual([b.clusterIPs, b.externalIPs, b.loadBalancerIPs, b.loadBalancerSourceRanges, b.hasAnyEndpoints],
      [['fd00:30::1'], ['2001:db8::99'], ['2001:db8::1'], ['2001:db8:1::/48'], false]);
    assert.deepEqual(b.allReachableEndpoints, []);
  });

  it('a family the Service does not serve has no view', () => {
    const single = objects(makeService('ns', 'v4only', (s) => {
      s.spec = { clusterIP: '172.30.0.2', ports: [{ port: 53, protocol: 'UDP' }] };
    })).state({ ipFamilies: ['IPv4', 'IPv6'] });
    assert.equal(familyView(single.services[0]!, 'IPv6'), null);
  });
});
