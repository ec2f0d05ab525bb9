// Kubernetes JSON builders shaped like kube-proxy's test helpers (makeTestService,
// makeTestEndpointSlice), and the path every source takes: events → ChangeTracker → ProxyState.
import type { Problem } from '../../../src/model/k8s.js';
import { ChangeTracker } from '../../../src/model/tracker.js';
import type { NodeFacts, ObjectEvent, ProxyState } from '../../../src/model/types.js';

export type Json = Record<string, any>;

/** A v1 Service; `fn` edits it in place, as kube-proxy's makeTestService does. */
export function makeService(namespace: string, name: string, fn: (svc: Json) => void = () => {}): Json {
  const svc: Json = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { namespace, name, resourceVersion: '1' },
    spec: {},
    status: {},
  };
  fn(svc);
  return svc;
}

/** A discovery.k8s.io/v1 EndpointSlice named `${name}-${sliceNum}` labelled for Service `name`. */
export function makeEndpointSlice(namespace: string, name: string, sliceNum: number, fn: (slice: Json) => void = () => {}): Json {
  const slice: Json = {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      namespace,
      name: `${name}-${sliceNum}`,
      resourceVersion: '1',
      labels: { 'kubernetes.io/service-name': name },
    },
    addressType: 'IPv4',
    endpoints: [],
    ports: [],
  };
  fn(slice);
  return slice;
}

export interface Objects {
  tracker: ChangeTracker;
  problems: Problem[];
  /** ADDED for new objects, MODIFIED for known ones (by kind/namespace/name). */
  apply(...objects: Json[]): void;
  remove(...objects: Json[]): void;
  state(node?: Partial<NodeFacts>): ProxyState;
}

export const TEST_NODE: NodeFacts = { nodeName: 'test-hostname', zone: null, ipFamilies: ['IPv4'] };

/** A ChangeTracker fed with Kubernetes objects. */
export function objects(...initial: Json[]): Objects {
  const problems: Problem[] = [];
  const tracker = new ChangeTracker({ onInvalid: (p) => problems.push(p) });
  const known = new Set<string>();
  const keyOf = (o: Json) => `${o.kind}/${o.metadata?.namespace}/${o.metadata?.name}`;
  const send = (type: ObjectEvent['type'], o: Json) => tracker.update({ kind: o.kind, type, object: o });
  const self: Objects = {
    tracker,
    problems,
    apply(...objs) {
      for (const o of objs) {
        send(known.has(keyOf(o)) ? 'MODIFIED' : 'ADDED', o);
        known.add(keyOf(o));
      }
    },
    remove(...objs) {
      for (const o of objs) {
        send('DELETED', o);
        known.delete(keyOf(o));
      }
    },
    state(node = {}) {
      return tracker.snapshot({ ...TEST_NODE, ...node });
    },
  };
  self.apply(...initial);
  return self;
}
