import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { staleUdpConntrack } from '../../src/dataplane/conntrack.js';
import { conntrackArgs } from '../../src/kernel/conntrack.js';
import type { ProxyState } from '../../src/model/types.js';
import { endpoint, servicePort } from './helpers/service.js';

const state = (...services: ProxyState['services']): ProxyState => ({ services });
const udp = (eps: ReturnType<typeof endpoint>[], o = {}) =>
  servicePort('dns', { protocol: 'UDP', endpoints: eps, clusterEndpoints: eps, allReachableEndpoints: eps, hasAnyEndpoints: eps.length > 0, ...o });

describe('stale UDP conntrack entries', () => {
  it('a removed endpoint: flows to every service address and the NodePort translated to it', () => {
    const a = endpoint('10.244.1.2', 53);
    const b = endpoint('10.244.2.2', 53);
    const prev = state(udp([a, b], { externalIPs: ['192.168.77.50'], nodePort: 30053 }));
    const next = state(udp([a], { externalIPs: ['192.168.77.50'], nodePort: 30053 }));
    assert.deepEqual(staleUdpConntrack(prev, next, 'IPv4'), [
      { kind: 'nat', dst: '10.96.0.10', endpointIP: '10.244.2.2' },
      { kind: 'nat', dst: '192.168.77.50', endpointIP: '10.244.2.2' },
      { kind: 'port-nat', port: 30053, endpointIP: '10.244.2.2' },
    ]);
  });

  it('an endpoint that stops serving is stale too; one that never served is not', () => {
    const a = endpoint('10.244.1.2', 53);
    const notServing = endpoint('10.244.1.3', 53, { ready: false, serving: false });
    const prev = state(udp([a, notServing]));
    const next = state(udp([{ ...a, ready: false, serving: false, terminating: true }]));
    assert.deepEqual(staleUdpConntrack(prev, next, 'IPv4'), [{ kind: 'nat', dst: '10.96.0.10', endpointIP: '10.244.1.2' }]);
  });

  it('a service that gets its first endpoint: flows to its addresses and NodePort (they were black-holed)', () => {
    const prev = state(udp([], { nodePort: 30053 }));
    const next = state(udp([endpoint('10.244.1.2', 53)], { nodePort: 30053 }));
    assert.deepEqual(staleUdpConntrack(prev, next, 'IPv4'), [{ kind: 'dst', ip: '10.96.0.10' }, { kind: 'port', port: 30053 }]);
  });

  it('a deleted service: flows to its ClusterIP; TCP services and the first sync need nothing', () => {
    const prev = state(udp([endpoint('10.244.1.2', 53)]), servicePort('web', { endpoints: [endpoint('10.244.1.9', 80)] }));
    assert.deepEqual(staleUdpConntrack(prev, state(), 'IPv4'), [{ kind: 'dst', ip: '10.96.0.10' }]);
    assert.deepEqual(staleUdpConntrack(null, prev, 'IPv4'), []);
    assert.deepEqual(staleUdpConntrack(prev, prev, 'IPv4'), []);
  });

  it('conntrack(8) arguments', () => {
    assert.deepEqual(conntrackArgs({ kind: 'nat', dst: '10.96.0.10', endpointIP: '10.244.1.2' }, 'IPv4'),
      ['-D', '-f', 'ipv4', '-p', 'udp', '--orig-dst', '10.96.0.10', '--dst-nat', '10.244.1.2']);
    assert.deepEqual(conntrackArgs({ kind: 'port', port: 30053 }, 'IPv6'), ['-D', '-f', 'ipv6', '-p', 'udp', '--orig-port-dst', '30053']);
  });
});
