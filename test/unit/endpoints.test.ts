import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  categorizeEndpoints,
  collectEndpoints,
  compareEndpoints,
  endpointKey,
  topologyMode,
  usesClusterEndpoints,
  usesLocalEndpoints,
} from '../../src/model/endpoints.js';
import type { EndpointSliceRecord, SliceEndpointRecord } from '../../src/model/k8s.js';
import type { Endpoint } from '../../src/model/types.js';

const NODE = { nodeName: 'node-a', zone: 'zone-a' };

function ep(ip: string, o: Partial<Endpoint> = {}): Endpoint {
  return {
    ip,
    port: 80,
    nodeName: 'node-b',
    zone: null,
    zoneHints: null,
    nodeHints: null,
    ready: true,
    serving: true,
    terminating: false,
    isLocal: false,
    ...o,
  };
}
const local = (ip: string, o: Partial<Endpoint> = {}): Endpoint => ep(ip, { nodeName: 'node-a', isLocal: true, ...o });
const terminating = { ready: false, serving: true, terminating: true };
const ips = (list: Endpoint[]): string[] => list.map(endpointKey);

const CLUSTER = { usesClusterEndpoints: true, usesLocalEndpoints: false };
const LOCAL = { usesClusterEndpoints: false, usesLocalEndpoints: true };
const BOTH = { usesClusterEndpoints: true, usesLocalEndpoints: true };

describe('endpointKey and order', () => {
  it('formats IPv4 and IPv6 like Go net.JoinHostPort', () => {
    assert.equal(endpointKey({ ip: '10.0.0.1', port: 80 }), '10.0.0.1:80');
    assert.equal(endpointKey({ ip: 'fd00::1', port: 80 }), '[fd00::1]:80');
  });
  it('sorts by the "ip:port" string, not numerically', () => {
    const list = [ep('10.0.0.9'), ep('10.0.0.10'), ep('10.0.0.1', { port: 8080 }), ep('10.0.0.1', { port: 443 })];
    assert.deepEqual(ips(list.sort(compareEndpoints)), ['10.0.0.10:80', '10.0.0.1:443', '10.0.0.1:8080', '10.0.0.9:80']);
  });
});

describe('traffic policy → which endpoint sets are used', () => {
  it('matches kube-proxy UsesClusterEndpoints / UsesLocalEndpoints', () => {
    assert.equal(usesClusterEndpoints('Cluster', false), true);
    assert.equal(usesClusterEndpoints('Local', false), false);
    assert.equal(usesClusterEndpoints('Local', true), true); // external traffic still needs them
    assert.equal(usesLocalEndpoints('Cluster', 'Cluster', true), false);
    assert.equal(usesLocalEndpoints('Cluster', 'Local', true), true);
    assert.equal(usesLocalEndpoints('Cluster', 'Local', false), false); // eTP without external access
    assert.equal(usesLocalEndpoints('Local', 'Cluster', false), true);
  });
});

describe('categorizeEndpoints: readiness', () => {
  it('uses only ready endpoints when any is ready', () => {
    const r = categorizeEndpoints([ep('10.0.0.1'), ep('10.0.0.2', terminating), ep('10.0.0.3', { ready: false })], CLUSTER, NODE);
    assert.deepEqual(ips(r.clusterEndpoints), ['10.0.0.1:80']);
    assert.deepEqual(r.localEndpoints, []);
    assert.deepEqual(ips(r.allReachableEndpoints), ['10.0.0.1:80']);
    assert.equal(r.hasAnyEndpoints, true);
  });

  it('falls back to serving+terminating when none is ready (not to non-serving or non-terminating)', () => {
    const r = categorizeEndpoints(
      [
        ep('10.0.0.1', terminating),
        ep('10.0.0.2', { ready: false, serving: false, terminating: true }),
        ep('10.0.0.3', { ready: false, serving: true, terminating: false }),
        ep('10.0.0.4', terminating),
      ],
      CLUSTER,
      NODE,
    );
    assert.deepEqual(ips(r.clusterEndpoints), ['10.0.0.1:80', '10.0.0.4:80']);
    assert.equal(r.hasAnyEndpoints, true);
  });

  it('has no endpoints when none is ready or serving+terminating', () => {
    const r = categorizeEndpoints([ep('10.0.0.1', { ready: false, serving: false, terminating: true })], BOTH, NODE);
    assert.deepEqual(r.clusterEndpoints, []);
    assert.deepEqual(r.localEndpoints, []);
    assert.deepEqual(r.allReachableEndpoints, []);
    assert.equal(r.hasAnyEndpoints, false);
  });

  it('works out the fallback separately for local endpoints', () => {
    // Remote ready endpoint: cluster uses it. The only local endpoint is terminating: local falls back to it.
    const r = categorizeEndpoints(
      [ep('10.0.0.1'), local('10.0.0.2', terminating), local('10.0.0.3', { ready: false }), local('10.0.0.4', { ...terminating, serving: false })],
      BOTH,
      NODE,
    );
    assert.deepEqual(ips(r.clusterEndpoints), ['10.0.0.1:80']);
    assert.deepEqual(ips(r.localEndpoints), ['10.0.0.2:80']);
    assert.deepEqual(ips(r.allReachableEndpoints), ['10.0.0.1:80', '10.0.0.2:80']);
    assert.equal(r.hasAnyEndpoints, true);
  });

  it('prefers a ready local endpoint over a terminating local one', () => {
    const r = categorizeEndpoints([local('10.0.0.1', terminating), local('10.0.0.2'), ep('10.0.0.3')], BOTH, NODE);
    assert.deepEqual(ips(r.localEndpoints), ['10.0.0.2:80']);
    assert.deepEqual(ips(r.clusterEndpoints), ['10.0.0.2:80', '10.0.0.3:80']);
    // Cluster endpoints (all ready ones) already contain the ready local endpoints.
    assert.deepEqual(ips(r.allReachableEndpoints), ['10.0.0.2:80', '10.0.0.3:80']);
  });
});

describe('categorizeEndpoints: traffic policy Local', () => {
  it('internalTrafficPolicy Local: only local endpoints, but hasAnyEndpoints sees remote ones', () => {
    const r = categorizeEndpoints([ep('10.0.0.1'), ep('10.0.0.2')], LOCAL, NODE);
    assert.deepEqual(r.clusterEndpoints, []);
    assert.deepEqual(r.localEndpoints, []);
    assert.deepEqual(r.allReachableEndpoints, []);
    assert.equal(r.hasAnyEndpoints, true); // → drop, not reject, in kube-proxy
  });

  it('internalTrafficPolicy Local picks the local ready endpoints', () => {
    const r = categorizeEndpoints([ep('10.0.0.1'), local('10.0.0.2'), local('10.0.0.3', { ready: false })], LOCAL, NODE);
    assert.deepEqual(ips(r.localEndpoints), ['10.0.0.2:80']);
    assert.deepEqual(ips(r.allReachableEndpoints), ['10.0.0.2:80']);
  });

  it('externalTrafficPolicy Local (uses both): cluster for internal traffic, local for external', () => {
    const r = categorizeEndpoints([ep('10.0.0.1'), local('10.0.0.2'), ep('10.0.0.3')], BOTH, NODE);
    assert.deepEqual(ips(r.clusterEndpoints), ['10.0.0.1:80', '10.0.0.2:80', '10.0.0.3:80']);
    assert.deepEqual(ips(r.localEndpoints), ['10.0.0.2:80']);
  });

  it('a service with no endpoints at all', () => {
    const r = categorizeEndpoints([], BOTH, NODE);
    assert.equal(r.hasAnyEndpoints, false);
    assert.deepEqual(r.allReachableEndpoints, []);
  });
});

describe('categorizeEndpoints: topology hints', () => {
  const zoned = (ip: string, zones: string[] | null, o: Partial<Endpoint> = {}): Endpoint => ep(ip, { zoneHints: zones, ...o });

  it('uses only endpoints hinted for this zone when every ready endpoint has hints', () => {
    const list = [zoned('10.0.0.1', ['zone-a']), zoned('10.0.0.2', ['zone-b']), zoned('10.0.0.3', ['zone-a', 'zone-c'])];
    assert.equal(topologyMode(list, NODE), 'PreferSameZone');
    const r = categorizeEndpoints(list, CLUSTER, NODE);
    assert.deepEqual(ips(r.clusterEndpoints), ['10.0.0.1:80', '10.0.0.3:80']);
  });

  it('ignores hints when one ready endpoint lacks them', () => {
    const list = [zoned('10.0.0.1', ['zone-a']), zoned('10.0.0.2', null)];
    assert.equal(topologyMode(list, NODE), '');
    assert.deepEqual(ips(categorizeEndpoints(list, CLUSTER, NODE).clusterEndpoints), ['10.0.0.1:80', '10.0.0.2:80']);
  });

  it('ignores hints when none names the node zone', () => {
    const list = [zoned('10.0.0.1', ['zone-b']), zoned('10.0.0.2', ['zone-c'])];
    assert.deepEqual(ips(categorizeEndpoints(list, CLUSTER, NODE).clusterEndpoints), ['10.0.0.1:80', '10.0.0.2:80']);
  });

  it('ignores hints when the node has no zone', () => {
    const list = [zoned('10.0.0.1', ['zone-a']), zoned('10.0.0.2', ['zone-b'])];
    assert.deepEqual(ips(categorizeEndpoints(list, CLUSTER, { nodeName: 'node-a', zone: null }).clusterEndpoints), ['10.0.0.1:80', '10.0.0.2:80']);
  });

  it('only ready endpoints count when deciding (a non-ready endpoint without hints does not disable them)', () => {
    const list = [zoned('10.0.0.1', ['zone-a']), zoned('10.0.0.2', ['zone-b']), zoned('10.0.0.3', null, { ready: false })];
    assert.deepEqual(ips(categorizeEndpoints(list, CLUSTER, NODE).clusterEndpoints), ['10.0.0.1:80']);
  });

  it('does not apply topology to local endpoints, and merges them into allReachable', () => {
    const list = [zoned('10.0.0.1', ['zone-a']), local('10.0.0.2', { zoneHints: ['zone-b'] })];
    const r = categorizeEndpoints(list, BOTH, NODE);
    assert.deepEqual(ips(r.clusterEndpoints), ['10.0.0.1:80']);
    assert.deepEqual(ips(r.localEndpoints), ['10.0.0.2:80']);
    assert.deepEqual(ips(r.allReachableEndpoints), ['10.0.0.1:80', '10.0.0.2:80']);
  });

  it('PreferSameNode: node hints win when every ready endpoint has one and one names this node', () => {
    const list = [ep('10.0.0.1', { nodeHints: ['node-a'], zoneHints: ['zone-a'] }), ep('10.0.0.2', { nodeHints: ['node-b'], zoneHints: ['zone-a'] })];
    assert.equal(topologyMode(list, NODE), 'PreferSameNode');
    assert.deepEqual(ips(categorizeEndpoints(list, CLUSTER, NODE).clusterEndpoints), ['10.0.0.1:80']);
  });
});

describe('categorizeEndpoints: address families', () => {
  it('falls back per family, as kube-proxy’s per-family proxiers do', () => {
    const r = categorizeEndpoints([ep('10.0.0.1', terminating), ep('fd00::1'), ep('fd00::2', terminating)], CLUSTER, NODE);
    // IPv4 has no ready endpoint → its terminating one; IPv6 has a ready one → only that.
    assert.deepEqual(ips(r.clusterEndpoints), ['10.0.0.1:80', '[fd00::1]:80']);
  });
});

describe('collectEndpoints (merging slices)', () => {
  function sliceEp(address: string, o: Partial<SliceEndpointRecord> = {}): SliceEndpointRecord {
    return { address, nodeName: 'node-b', zone: null, zoneHints: null, nodeHints: null, ready: true, serving: true, terminating: false, ...o };
  }
  function slice(name: string, endpoints: SliceEndpointRecord[], o: Partial<EndpointSliceRecord> = {}): EndpointSliceRecord {
    return { namespace: 'default', name, serviceName: 'web', addressType: 'IPv4', ports: [{ name: 'http', protocol: 'TCP', port: 8080 }], endpoints, ...o };
  }
  const HTTP = { name: 'http', protocol: 'TCP' as const };

  it('takes the port number from the slice port with the same name and protocol', () => {
    const s = slice('web-1', [sliceEp('10.0.0.1')], {
      ports: [
        { name: 'http', protocol: 'TCP', port: 8080 },
        { name: 'metrics', protocol: 'TCP', port: 9090 },
        { name: 'http', protocol: 'UDP', port: 5353 },
      ],
    });
    assert.deepEqual(ips(collectEndpoints(HTTP, [s], NODE, ['IPv4'])), ['10.0.0.1:8080']);
    assert.deepEqual(ips(collectEndpoints({ name: 'metrics', protocol: 'TCP' }, [s], NODE, ['IPv4'])), ['10.0.0.1:9090']);
    assert.deepEqual(collectEndpoints({ name: 'other', protocol: 'TCP' }, [s], NODE, ['IPv4']), []);
  });

  it('merges several slices, sorted by "ip:port", marking local endpoints', () => {
    const out = collectEndpoints(HTTP, [slice('web-2', [sliceEp('10.0.0.9')]), slice('web-1', [sliceEp('10.0.0.10', { nodeName: 'node-a' })])], NODE, ['IPv4']);
    assert.deepEqual(ips(out), ['10.0.0.10:8080', '10.0.0.9:8080']);
    assert.equal(out[0]!.isLocal, true);
    assert.equal(out[1]!.isLocal, false);
  });

  it('deduplicates an endpoint listed in two slices (first slice by name wins, a local copy wins over it)', () => {
    const a = slice('web-a', [sliceEp('10.0.0.1', { ready: true })]);
    const b = slice('web-b', [sliceEp('10.0.0.1', { ready: false })]);
    const out = collectEndpoints(HTTP, [b, a], NODE, ['IPv4']);
    assert.equal(out.length, 1);
    assert.equal(out[0]!.ready, true);
    const c = slice('web-c', [sliceEp('10.0.0.1', { nodeName: 'node-a', zone: 'z' })]);
    const out2 = collectEndpoints(HTTP, [a, c], NODE, ['IPv4']);
    assert.equal(out2.length, 1);
    assert.equal(out2[0]!.isLocal, true);
  });

  it('keeps only the wanted address families (IPv6 dropped on an IPv4 node)', () => {
    const v4 = slice('web-v4', [sliceEp('10.0.0.1')]);
    const v6 = slice('web-v6', [sliceEp('fd00::1')], { addressType: 'IPv6' });
    assert.deepEqual(ips(collectEndpoints(HTTP, [v4, v6], NODE, ['IPv4'])), ['10.0.0.1:8080']);
    assert.deepEqual(ips(collectEndpoints(HTTP, [v4, v6], NODE, ['IPv4', 'IPv6'])), ['10.0.0.1:8080', '[fd00::1]:8080']);
  });

  it('never marks endpoints local when the node name is empty', () => {
    const out = collectEndpoints(HTTP, [slice('web-1', [sliceEp('10.0.0.1', { nodeName: null })])], { nodeName: '' }, ['IPv4']);
    assert.equal(out[0]!.isLocal, false);
  });
});
