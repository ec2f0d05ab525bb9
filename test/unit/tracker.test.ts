import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { endpointKey } from '../../src/model/endpoints.js';
import type { Problem } from '../../src/model/k8s.js';
import { ChangeTracker } from '../../src/model/tracker.js';
import type { NodeFacts, ObjectEvent, ServicePort } from '../../src/model/types.js';

type Json = Record<string, unknown>;

const NODE: NodeFacts = { nodeName: 'node-a', zone: 'zone-a', ipFamilies: ['IPv4'] };
const DUAL: NodeFacts = { ...NODE, ipFamilies: ['IPv4', 'IPv6'] };

function svc(name: string, spec: Json = {}, meta: Json = {}): Json {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'default', resourceVersion: '1', ...meta },
    spec: {
      clusterIP: '10.96.0.10',
      clusterIPs: ['10.96.0.10'],
      type: 'ClusterIP',
      ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 'http' }],
      ...spec,
    },
  };
}

function eps(name: string, service: string, endpoints: Json[], o: Json = {}, meta: Json = {}): Json {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace: 'default', resourceVersion: '1', labels: { 'kubernetes.io/service-name': service }, ...meta },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints,
    ...o,
  };
}
const addr = (ip: string, o: Json = {}): Json => ({ addresses: [ip], conditions: { ready: true }, nodeName: 'node-b', ...o });

const ev = (type: ObjectEvent['type'], object: Json): ObjectEvent => ({ kind: object['kind'] as ObjectEvent['kind'], type, object });
const add = (o: Json): ObjectEvent => ev('ADDED', o);
const mod = (o: Json): ObjectEvent => ev('MODIFIED', o);
const del = (o: Json): ObjectEvent => ev('DELETED', o);

function tracker(): { t: ChangeTracker; problems: Problem[] } {
  const problems: Problem[] = [];
  return { t: new ChangeTracker({ onInvalid: (p) => problems.push(p) }), problems };
}
const keys = (sp: ServicePort | undefined, list: 'endpoints' | 'clusterEndpoints' | 'localEndpoints' = 'endpoints'): string[] =>
  (sp?.[list] ?? []).map(endpointKey);

describe('ChangeTracker snapshot', () => {
  it('merges the slices of a service into one sorted endpoint list with the slice port number', () => {
    const { t } = tracker();
    t.update(add(svc('web')));
    t.update(add(eps('web-1', 'web', [addr('10.0.0.9'), addr('10.0.0.2')])));
    t.update(add(eps('web-2', 'web', [addr('10.0.0.10', { nodeName: 'node-a' })])));
    t.update(add(eps('other-1', 'other', [addr('10.0.0.99')])));
    const state = t.snapshot(NODE);
    assert.equal(state.services.length, 1);
    const sp = state.services[0]!;
    assert.equal(sp.id, 'default/web:http');
    assert.equal(sp.port, 80);
    assert.deepEqual(keys(sp), ['10.0.0.10:8080', '10.0.0.2:8080', '10.0.0.9:8080']);
    assert.deepEqual(keys(sp, 'clusterEndpoints'), ['10.0.0.10:8080', '10.0.0.2:8080', '10.0.0.9:8080']);
    assert.equal(sp.endpoints[0]!.isLocal, true);
    assert.equal(sp.hasAnyEndpoints, true);
  });

  it('deduplicates an endpoint that appears in two slices', () => {
    const { t } = tracker();
    t.update(add(svc('web')));
    t.update(add(eps('web-1', 'web', [addr('10.0.0.1')])));
    t.update(add(eps('web-2', 'web', [addr('10.0.0.1'), addr('10.0.0.2')])));
    assert.deepEqual(keys(t.snapshot(NODE).services[0]), ['10.0.0.1:8080', '10.0.0.2:8080']);
  });

  it('sorts ServicePorts by id, gives an unnamed port the id "ns/name:"', () => {
    const { t } = tracker();
    t.update(add(svc('b', { ports: [{ name: 'z', port: 2 }, { name: 'a', port: 1 }] })));
    t.update(add(svc('a', { ports: [{ port: 53, protocol: 'UDP' }] })));
    const ids = t.snapshot(NODE).services.map((s) => `${s.id}/${s.protocol}`);
    assert.deepEqual(ids, ['default/a:/UDP', 'default/b:a/TCP', 'default/b:z/TCP']);
  });

  it('returns a deeply frozen state', () => {
    const { t } = tracker();
    t.update(add(svc('web')));
    t.update(add(eps('web-1', 'web', [addr('10.0.0.1')])));
    const state = t.snapshot(NODE);
    assert.ok(Object.isFrozen(state) && Object.isFrozen(state.services) && Object.isFrozen(state.services[0]));
    assert.ok(Object.isFrozen(state.services[0]!.endpoints[0]) && Object.isFrozen(state.services[0]!.clusterIPs));
    assert.throws(() => (state.services as ServicePort[]).push(state.services[0]!), TypeError);
  });

  it('IPv4 node: IPv6 endpoints and addresses are filtered out; dual-stack node keeps both', () => {
    const { t } = tracker();
    t.update(add(svc('web', { clusterIPs: ['10.96.0.10', 'fd00::10'], externalIPs: ['192.0.2.1', '2001:db8::1'] })));
    t.update(add(eps('web-v4', 'web', [addr('10.0.0.1')])));
    t.update(add(eps('web-v6', 'web', [addr('fd00::1')], { addressType: 'IPv6' })));
    const v4 = t.snapshot(NODE).services[0]!;
    assert.deepEqual(v4.clusterIPs, ['10.96.0.10']);
    assert.deepEqual(v4.externalIPs, ['192.0.2.1']);
    assert.deepEqual(v4.families, ['IPv4']);
    assert.deepEqual(keys(v4), ['10.0.0.1:8080']);
    const dual = t.snapshot(DUAL).services[0]!;
    assert.deepEqual(dual.clusterIPs, ['10.96.0.10', 'fd00::10']);
    assert.deepEqual(keys(dual), ['10.0.0.1:8080', '[fd00::1]:8080']);
  });

  it('a single-stack IPv6 Service has no ServicePort on an IPv4 node; IPv6 endpoints of a v4-only Service are ignored', () => {
    const { t } = tracker();
    t.update(add(svc('v6', { clusterIP: 'fd00::10', clusterIPs: ['fd00::10'] })));
    t.update(add(svc('v4')));
    t.update(add(eps('v4-6', 'v4', [addr('fd00::1')], { addressType: 'IPv6' })));
    assert.deepEqual(t.snapshot(NODE).services.map((s) => s.name), ['v4']);
    const dual = t.snapshot(DUAL).services.find((s) => s.name === 'v4');
    assert.deepEqual(dual?.endpoints, []); // only a v4 clusterIP → v6 endpoints unused
  });

  it('externalTrafficPolicy Local on a NodePort: local endpoints for external, cluster for internal', () => {
    const { t } = tracker();
    t.update(add(svc('np', { type: 'NodePort', externalTrafficPolicy: 'Local', ports: [{ name: 'http', port: 80, nodePort: 30080 }] })));
    t.update(add(eps('np-1', 'np', [addr('10.0.0.1'), addr('10.0.0.2', { nodeName: 'node-a' })], {}, { labels: { 'kubernetes.io/service-name': 'np' } })));
    const sp = t.snapshot(NODE).services[0]!;
    assert.equal(sp.externallyAccessible, true);
    assert.equal(sp.usesLocalEndpoints, true);
    assert.deepEqual(keys(sp, 'localEndpoints'), ['10.0.0.2:8080']);
    assert.deepEqual(keys(sp, 'clusterEndpoints'), ['10.0.0.1:8080', '10.0.0.2:8080']);
  });

  it('internalTrafficPolicy Local: no cluster endpoints, only this node’s', () => {
    const { t } = tracker();
    t.update(add(svc('web', { internalTrafficPolicy: 'Local' })));
    t.update(add(eps('web-1', 'web', [addr('10.0.0.1'), addr('10.0.0.2', { nodeName: 'node-a' })])));
    const sp = t.snapshot(NODE).services[0]!;
    assert.equal(sp.usesClusterEndpoints, false);
    assert.deepEqual(sp.clusterEndpoints, []);
    assert.deepEqual(keys(sp, 'localEndpoints'), ['10.0.0.2:8080']);
    assert.deepEqual(sp.allReachableEndpoints.map(endpointKey), ['10.0.0.2:8080']);
  });

  it('accepts list items without kind/apiVersion (the event kind says what they are)', () => {
    const { t, problems } = tracker();
    const { kind: _k, apiVersion: _a, ...bare } = svc('web');
    t.update({ kind: 'Service', type: 'ADDED', object: bare });
    assert.deepEqual(problems, []);
    assert.equal(t.snapshot(NODE).services.length, 1);
  });
});

describe('ChangeTracker pending changes', () => {
  it('is pending before the first snapshot, then only on real changes; an unchanged snapshot is the same object', () => {
    const { t } = tracker();
    assert.equal(t.pending(), true);
    const s1 = t.snapshot(NODE);
    assert.equal(t.pending(), false);
    assert.equal(t.snapshot(NODE), s1);
    assert.equal(t.update(add(svc('web'))), true);
    const s2 = t.snapshot(NODE);
    assert.notEqual(s2, s1);
    assert.equal(t.pending(), false);
    assert.notEqual(t.snapshot({ ...NODE, zone: 'zone-b' }), s2); // new node facts → rebuilt
  });

  it('drops updates that change only resourceVersion / managedFields / fields the proxier ignores', () => {
    const { t } = tracker();
    t.update(add(svc('web')));
    t.update(add(eps('web-1', 'web', [addr('10.0.0.1')])));
    t.snapshot(NODE);
    assert.equal(t.update(mod(svc('web', { selector: { app: 'other' } }, { resourceVersion: '2', managedFields: [{ manager: 'x' }] }))), false);
    assert.equal(
      t.update(mod(eps('web-1', 'web', [{ ...addr('10.0.0.1'), targetRef: { kind: 'Pod', name: 'p' } }], {}, { resourceVersion: '3' }))),
      false,
    );
    assert.equal(t.pending(), false);
    assert.deepEqual(t.changedServices(), []);
  });

  it('a change undone before the next snapshot leaves nothing pending', () => {
    const { t } = tracker();
    t.update(add(svc('web')));
    t.update(add(eps('web-1', 'web', [addr('10.0.0.1')])));
    t.snapshot(NODE);
    assert.equal(t.update(mod(svc('web', { ports: [{ name: 'http', port: 81 }] }))), true);
    assert.deepEqual(t.changedServices(), ['default/web']);
    assert.equal(t.update(mod(svc('web', { ports: [{ name: 'http', port: 80, protocol: 'TCP' }] }, { resourceVersion: '9' }))), false);
    // Added and deleted again before a snapshot: nothing to do either.
    assert.equal(t.update(add(svc('tmp'))), true);
    assert.equal(t.update(del(svc('tmp'))), false);
    // An endpoint flapping not-ready and back.
    assert.equal(t.update(mod(eps('web-1', 'web', [addr('10.0.0.1', { conditions: { ready: false } })]))), true);
    assert.equal(t.update(mod(eps('web-1', 'web', [addr('10.0.0.1')]))), false);
  });

  it('reports the Service of a changed EndpointSlice, and removes endpoints when a slice is deleted', () => {
    const { t } = tracker();
    t.update(add(svc('web')));
    const slice = eps('web-1', 'web', [addr('10.0.0.1')]);
    t.update(add(slice));
    t.snapshot(NODE);
    t.update(del(slice));
    assert.deepEqual(t.changedServices(), ['default/web']);
    const sp = t.snapshot(NODE).services[0]!;
    assert.deepEqual(sp.endpoints, []);
    assert.equal(sp.hasAnyEndpoints, false);
  });

  it('a deleted Service disappears; deleting an unknown object changes nothing', () => {
    const { t } = tracker();
    t.update(add(svc('web')));
    t.snapshot(NODE);
    assert.equal(t.update(del(svc('nope'))), false);
    t.update(del(svc('web')));
    assert.deepEqual(t.snapshot(NODE).services, []);
  });

  it('tracks markSynced separately from pending', () => {
    const { t } = tracker();
    assert.equal(t.synced(), false);
    t.markSynced();
    assert.equal(t.synced(), true);
  });
});

describe('ChangeTracker invalid objects', () => {
  it('reports bad objects with namespace/name/field/value and keeps the good ones', () => {
    const { t, problems } = tracker();
    t.update(add(svc('good')));
    t.update(add(svc('bad-ip', { clusterIP: '999.1.1.1', clusterIPs: ['999.1.1.1'] })));
    t.update(add(svc('bad-port', { ports: [{ name: 'x', port: 70000 }, { name: 'http', port: 80 }] })));
    t.update(add(eps('orphan', '', [addr('10.0.0.1')], {}, { labels: {} })));
    t.update(add(eps('good-1', 'good', [addr('10.0.0.1'), addr('not-an-ip')])));
    t.update({ kind: 'Service', type: 'ADDED', object: { kind: 'Service', apiVersion: 'v1', metadata: {} } });
    assert.deepEqual(
      problems.map((p) => [p.kind, `${p.namespace}/${p.name}`, p.field, p.value, p.action]),
      [
        ['Service', 'default/bad-ip', 'spec.clusterIPs[0]', '999.1.1.1', 'rejected'],
        ['Service', 'default/bad-port', 'spec.ports[0].port', 70000, 'skipped'],
        ['EndpointSlice', 'default/orphan', 'metadata.labels["kubernetes.io/service-name"]', undefined, 'rejected'],
        ['EndpointSlice', 'default/good-1', 'endpoints[1].addresses[0]', 'not-an-ip', 'dropped'],
        ['Service', '/<unnamed>', 'metadata.name', undefined, 'rejected'],
      ],
    );
    const state = t.snapshot(NODE);
    assert.deepEqual(state.services.map((s) => s.id), ['default/bad-port:http', 'default/good:http']);
    assert.deepEqual(keys(state.services[1]), ['10.0.0.1:8080']);
  });

  it('an update that makes a Service invalid removes it (state follows the current objects)', () => {
    const { t, problems } = tracker();
    t.update(add(svc('web')));
    t.snapshot(NODE);
    assert.equal(t.update(mod(svc('web', { clusterIP: 'bogus', clusterIPs: ['bogus'] }))), true);
    assert.equal(problems.length, 1);
    assert.deepEqual(t.snapshot(NODE).services, []);
  });

  it('a Service turned headless stops being proxied', () => {
    const { t } = tracker();
    t.update(add(svc('web')));
    t.snapshot(NODE);
    t.update(mod(svc('web', { clusterIP: 'None', clusterIPs: ['None'] })));
    assert.deepEqual(t.snapshot(NODE).services, []);
  });
});

describe('ChangeTracker snapshots are incremental', () => {
  /** A seeded PRNG: the sequence replays from the seed in a failure message. */
  const prng = (seed: number) => () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const stateOf = (events: ObjectEvent[]) => {
    const t = new ChangeTracker();
    for (const e of events) t.update(e);
    return t.snapshot(NODE);
  };
  /** The state without the tracker's bookkeeping, for comparing with one built at once. */
  const content = (s: { services: ServicePort[] }) => JSON.parse(JSON.stringify(s.services)) as unknown;

  it('one Service changed: only its ports are new objects, the others the previous snapshot\'s; the state names the change', () => {
    const { t } = tracker();
    for (const n of ['a', 'b', 'c']) t.update(add(svc(n, { clusterIP: `10.96.0.${n.charCodeAt(0)}`, clusterIPs: [`10.96.0.${n.charCodeAt(0)}`] })));
    for (const n of ['a', 'b', 'c']) t.update(add(eps(`${n}-1`, n, [addr('10.0.0.1')])));
    const first = t.snapshot(NODE);
    assert.equal(first.changes, undefined, 'the first snapshot changes everything');
    t.update(mod(eps('b-1', 'b', [addr('10.0.0.2')])));
    const second = t.snapshot(NODE);
    assert.deepEqual(second.changes && [second.changes.since, [...second.changes.services]], [first.generation, ['default/b']]);
    assert.equal(second.services[0], first.services[0], 'a: the same object');
    assert.notEqual(second.services[1], first.services[1], 'b: rebuilt');
    assert.equal(second.services[2], first.services[2], 'c: the same object');
    assert.ok(Object.isFrozen(second.services[1]) && Object.isFrozen(second.services));
    assert.equal(t.snapshot(NODE), second, 'nothing changed: the same state');
    const dual = t.snapshot(DUAL);
    assert.equal(dual.changes, undefined, 'other node facts: everything rebuilt');
    assert.notEqual(dual.services[0], second.services[0]);
  });

  it('after any sequence of adds, updates, deletes and slice moves, a snapshot equals one built at once from the same objects', () => {
    const seed = Date.now() % 100000;
    const rnd = prng(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const { t } = tracker();
    const live = new Map<string, ObjectEvent>(); // key -> the event that made the current object
    let prev = t.snapshot(NODE);
    for (let step = 0; step < 300; step++) {
      const name = pick(['s0', 's1', 's2', 's3', 's4', 's5']);
      const r = rnd();
      let e: ObjectEvent;
      if (r < 0.3) e = { type: live.has(`svc/${name}`) ? 'MODIFIED' : 'ADDED', kind: 'Service', object: svc(name, { clusterIP: `10.96.1.${name.slice(1)}`, clusterIPs: [`10.96.1.${name.slice(1)}`], ports: [{ name: 'http', port: 80 + Math.floor(rnd() * 3), protocol: 'TCP' }] }) };
      else if (r < 0.75) {
        const slice = pick(['x', 'y', 'z']); // a slice can move from one Service to another
        e = { type: live.has(`eps/${slice}`) ? 'MODIFIED' : 'ADDED', kind: 'EndpointSlice', object: eps(slice, name, [addr(`10.0.0.${1 + Math.floor(rnd() * 4)}`, { nodeName: pick(['node-a', 'node-b']) })]) };
      } else if (r < 0.88 && live.has(`svc/${name}`)) e = { ...live.get(`svc/${name}`)!, type: 'DELETED' };
      else {
        const slice = pick(['x', 'y', 'z']);
        if (!live.has(`eps/${slice}`)) continue;
        e = { ...live.get(`eps/${slice}`)!, type: 'DELETED' };
      }
      const key = `${e.kind === 'Service' ? 'svc' : 'eps'}/${(e.object as { metadata: { name: string } }).metadata.name}`;
      if (e.type === 'DELETED') live.delete(key);
      else live.set(key, e);
      t.update(e);
      if (rnd() < 0.4) {
        const next = t.snapshot(NODE);
        const atOnce = stateOf([...live.values()].map((x) => ({ ...x, type: 'ADDED' as const })));
        assert.deepEqual(content(next), content(atOnce), `seed ${seed}, step ${step}`);
        if (next !== prev) {
          assert.equal(next.changes?.since, prev.generation, `seed ${seed}, step ${step}: consecutive`);
          const changed = (s: { services: ServicePort[] }, svcKey: string) => JSON.stringify(s.services.filter((p) => `${p.namespace}/${p.name}` === svcKey));
          for (const key of new Set([...prev.services, ...next.services].map((p) => `${p.namespace}/${p.name}`))) {
            if (changed(prev, key) !== changed(next, key)) assert.ok(next.changes!.services.has(key), `seed ${seed}, step ${step}: ${key} changed but is not in the change set`);
          }
        }
        prev = next;
      }
    }
  });
});

describe('ChangeTracker: ServiceCIDRs (networking.k8s.io/v1)', () => {
  const cidr = (name: string, cidrs: unknown): ObjectEvent => ({
    kind: 'ServiceCIDR', type: 'ADDED', object: { apiVersion: 'networking.k8s.io/v1', kind: 'ServiceCIDR', metadata: { name }, spec: { cidrs } },
  });

  it('puts every ServiceCIDR\'s cidrs in the state, sorted, unique and canonical; a bad one is reported and dropped', () => {
    const problems: Problem[] = [];
    const t = new ChangeTracker({ onInvalid: (p) => problems.push(p) });
    t.update({ kind: 'Service', type: 'ADDED', object: svc('a') });
    t.update(cidr('kubernetes', ['10.96.0.0/16', 'fd00:10:96::/112']));
    t.update(cidr('extra', ['10.100.0.0/16', '10.96.0.0/16', '10.200.0.1/8', 'not-a-cidr']));
    const s = t.snapshot(NODE);
    assert.deepEqual(s.serviceCIDRs, ['10.0.0.0/8', '10.100.0.0/16', '10.96.0.0/16', 'fd00:10:96::/112']);
    assert.deepEqual(problems.map((p) => p.text), ['ServiceCIDR /extra: spec.cidrs[3]: "not-a-cidr" is not a CIDR (dropped)']);
  });

  it('a ServiceCIDR change is a node-level change: the next state names no change set (full syncs)', () => {
    const t = new ChangeTracker();
    t.update({ kind: 'Service', type: 'ADDED', object: svc('a') });
    t.update(cidr('kubernetes', ['10.96.0.0/16']));
    const first = t.snapshot(NODE);
    assert.equal(t.pending(), false);
    assert.equal(t.snapshot(NODE), first, 'nothing changed: the same state');
    t.update(cidr('kubernetes', ['10.96.0.0/12']));
    assert.equal(t.pending(), true);
    const second = t.snapshot(NODE);
    assert.deepEqual(second.serviceCIDRs, ['10.96.0.0/12']);
    assert.equal(second.changes, undefined, 'every Service may be affected');
    t.update({ ...cidr('kubernetes', []), type: 'DELETED' });
    assert.deepEqual(t.snapshot(NODE).serviceCIDRs, []);
  });
});
