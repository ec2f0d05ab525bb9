// What a partial iptables sync rewrites: the tracker's change set, when the state applied last is
// the snapshot it is relative to; everything otherwise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { changedSince } from '../../src/model/tracker.js';
import { makeEndpointSlice, makeService, objects } from './helpers/kube-objects.js';

const service = (name: string, ip: string) => makeService('ns', name, (s) => {
  s.spec = { type: 'ClusterIP', clusterIP: ip, clusterIPs: [ip], ports: [{ name: 'p', port: 80, protocol: 'TCP' }] };
});
const slice = (name: string, ip: string) => makeEndpointSlice('ns', name, 1, (s) => {
  s.endpoints = [{ addresses: [ip], conditions: { ready: true } }];
  s.ports = [{ name: 'p', port: 8080, protocol: 'TCP' }];
});

test('the change set of consecutive snapshots; everything (null) across a skipped one or from a state not built by the tracker', () => {
  const o = objects(service('a', '10.96.0.1'), slice('a', '10.0.0.1'), service('b', '10.96.0.2'), slice('b', '10.0.0.2'));
  const s1 = o.state();
  o.apply(slice('b', '10.0.0.3'));
  const s2 = o.state();
  assert.deepEqual([...changedSince(s1, s2)!], ['ns/b']);
  assert.deepEqual([...changedSince(s2, s2)!], [], 'the same state: nothing to rewrite');
  o.remove(service('a', '10.96.0.1'));
  const s3 = o.state();
  assert.deepEqual([...changedSince(s2, s3)!], ['ns/a']);
  assert.equal(changedSince(s1, s3), null, 's2 was never applied: its change is not in s3\'s set');
  assert.equal(changedSince({ services: [] }, s3), null);
});
