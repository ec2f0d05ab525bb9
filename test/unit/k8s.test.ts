import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cidrFamilyOf, deepEqual, ipFamilyOf, parseEndpointSlice, parseService } from '../../src/model/k8s.js';

type Json = Record<string, unknown>;

/** A Service as `kubectl get svc web -o json` prints it. */
function service(spec: Json = {}, extra: Json = {}): Json {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: 'web',
      namespace: 'default',
      uid: '8d6d7c55-0f3e-4d0a-9c2e-5d5c8f1d0e11',
      resourceVersion: '1234',
      creationTimestamp: '2024-05-01T10:00:00Z',
      labels: { app: 'web' },
      managedFields: [{ manager: 'kubectl-client-side-apply', operation: 'Update', apiVersion: 'v1', fieldsType: 'FieldsV1', fieldsV1: {} }],
    },
    spec: {
      clusterIP: '10.96.0.10',
      clusterIPs: ['10.96.0.10'],
      internalTrafficPolicy: 'Cluster',
      ipFamilies: ['IPv4'],
      ipFamilyPolicy: 'SingleStack',
      ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 'http' }],
      selector: { app: 'web' },
      sessionAffinity: 'None',
      type: 'ClusterIP',
      ...spec,
    },
    status: { loadBalancer: {} },
    ...extra,
  };
}

function slice(o: Json = {}, labels: Json = { 'kubernetes.io/service-name': 'web' }): Json {
  return {
    addressType: 'IPv4',
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: 'web-abc12',
      namespace: 'default',
      generateName: 'web-',
      resourceVersion: '4567',
      labels: { 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io', ...labels },
      ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name: 'web', uid: 'x', controller: true, blockOwnerDeletion: true }],
    },
    endpoints: [
      {
        addresses: ['10.244.1.5'],
        conditions: { ready: true, serving: true, terminating: false },
        nodeName: 'node-a',
        targetRef: { kind: 'Pod', name: 'web-1', namespace: 'default', uid: 'y' },
        zone: 'zone-a',
      },
    ],
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    ...o,
  };
}

describe('helpers', () => {
  it('ipFamilyOf / cidrFamilyOf', () => {
    assert.equal(ipFamilyOf('10.0.0.1'), 'IPv4');
    assert.equal(ipFamilyOf('fd00::1'), 'IPv6');
    assert.equal(ipFamilyOf('010.0.0.1'), null);
    assert.equal(ipFamilyOf('fe80::1%eth0'), null);
    assert.equal(ipFamilyOf('10.0.0.256'), null);
    assert.equal(cidrFamilyOf('10.0.0.0/8'), 'IPv4');
    assert.equal(cidrFamilyOf('fd00::/64'), 'IPv6');
    assert.equal(cidrFamilyOf('10.0.0.0/33'), null);
    assert.equal(cidrFamilyOf('10.0.0.0'), null);
  });
  it('deepEqual', () => {
    assert.equal(deepEqual({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] }), true);
    assert.equal(deepEqual({ a: [1, 2] }, { a: [2, 1] }), false);
    assert.equal(deepEqual({ a: 1, b: undefined }, { a: 1 }), true);
    assert.equal(deepEqual(null, {}), false);
  });
});

describe('parseService', () => {
  it('keeps only what the proxier needs', () => {
    const { record, problems } = parseService(service());
    assert.deepEqual(problems, []);
    assert.deepEqual(record, {
      namespace: 'default',
      name: 'web',
      type: 'ClusterIP',
      clusterIPs: ['10.96.0.10'],
      externalIPs: [],
      loadBalancerIPs: [],
      loadBalancerSourceRanges: [],
      externalTrafficPolicy: 'Cluster',
      internalTrafficPolicy: 'Cluster',
      sessionAffinityTimeoutSeconds: null,
      healthCheckNodePort: null,
      ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: null }],
    });
    assert.ok(!JSON.stringify(record).includes('managedFields'));
  });

  it('skips a bad port, names kind/namespace/name/field/value, keeps the other ports', () => {
    const { record, problems } = parseService(
      service({
        ports: [
          { name: 'bad', port: 70000, protocol: 'TCP' },
          { name: 'http', port: 80, protocol: 'TCP' },
        ],
      }),
    );
    assert.equal(problems.length, 1);
    const p = problems[0]!;
    assert.equal(p.kind, 'Service');
    assert.equal(p.namespace, 'default');
    assert.equal(p.name, 'web');
    assert.equal(p.field, 'spec.ports[0].port');
    assert.equal(p.value, 70000);
    assert.equal(p.action, 'skipped');
    assert.ok(p.text.startsWith('Service default/web: spec.ports[0].port: 70000 is not a valid port'), p.text);
    assert.deepEqual(record?.ports.map((x) => x.name), ['http']);
  });

  it('skips a port with an unknown protocol', () => {
    const { record, problems } = parseService(
      service({ ports: [{ name: 'a', port: 80, protocol: 'QUIC' }, { name: 'b', port: 53, protocol: 'UDP' }, { name: 'c', port: 9 }] }),
    );
    assert.deepEqual(problems.map((p) => [p.field, p.value]), [['spec.ports[0].protocol', 'QUIC']]);
    assert.deepEqual(record?.ports, [
      { name: 'b', protocol: 'UDP', port: 53, nodePort: null },
      { name: 'c', protocol: 'TCP', port: 9, nodePort: null }, // protocol defaults to TCP
    ]);
  });

  it('skips a repeated port name (ids must stay unique)', () => {
    const { record, problems } = parseService(service({ ports: [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dns', port: 53, protocol: 'TCP' }] }));
    assert.equal(problems[0]?.field, 'spec.ports[1].name');
    assert.equal(record?.ports.length, 1);
  });

  it('rejects an invalid clusterIP', () => {
    const { record, problems } = parseService(service({ clusterIP: '10.96.0.300', clusterIPs: ['10.96.0.300'] }, { metadata: { name: 'api', namespace: 'prod' } }));
    assert.equal(record, null);
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.action, 'rejected');
    assert.equal(problems[0]!.text, 'Service prod/api: spec.clusterIPs[0]: "10.96.0.300" is not a valid IP address (object rejected)');
  });

  it('rejects a Service without a clusterIP, and unknown policies', () => {
    assert.equal(parseService(service({ clusterIP: undefined, clusterIPs: undefined })).record, null);
    const r = parseService(service({ externalTrafficPolicy: 'local' }));
    assert.equal(r.record, null);
    assert.equal(r.problems[0]!.field, 'spec.externalTrafficPolicy');
  });

  it('headless and ExternalName Services produce nothing, silently', () => {
    assert.deepEqual(parseService(service({ clusterIP: 'None', clusterIPs: ['None'] })), { record: null, problems: [] });
    assert.deepEqual(parseService(service({ type: 'ExternalName', externalName: 'example.com', clusterIP: undefined, clusterIPs: undefined })), {
      record: null,
      problems: [],
    });
  });

  it('uses clusterIP when an old object has no clusterIPs; keeps dual-stack clusterIPs in order', () => {
    assert.deepEqual(parseService(service({ clusterIPs: undefined })).record?.clusterIPs, ['10.96.0.10']);
    assert.deepEqual(parseService(service({ clusterIPs: ['10.96.0.10', 'fd00::10'] })).record?.clusterIPs, ['10.96.0.10', 'fd00::10']);
  });

  it('LoadBalancer: nodePorts, VIP ingress only, trimmed source ranges, health check port for eTP Local', () => {
    const { record, problems } = parseService(
      service({
        type: 'LoadBalancer',
        externalTrafficPolicy: 'Local',
        healthCheckNodePort: 32000,
        loadBalancerSourceRanges: [' 192.168.0.0/16 ', 'nope'],
        ports: [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30080 }],
      }, {
        status: { loadBalancer: { ingress: [{ ip: '1.2.3.4', ipMode: 'VIP' }, { ip: '1.2.3.5', ipMode: 'Proxy' }, { hostname: 'lb.example.com' }, { ip: '1.2.3.6' }] } },
      }),
    );
    assert.deepEqual(problems.map((p) => p.field), ['spec.loadBalancerSourceRanges[1]']);
    assert.equal(record?.type, 'LoadBalancer');
    assert.deepEqual(record?.loadBalancerIPs, ['1.2.3.4', '1.2.3.6']);
    assert.deepEqual(record?.loadBalancerSourceRanges, ['192.168.0.0/16']);
    assert.equal(record?.externalTrafficPolicy, 'Local');
    assert.equal(record?.healthCheckNodePort, 32000);
    assert.equal(record?.ports[0]?.nodePort, 30080);
  });

  it('externalTrafficPolicy Local only counts for externally reachable Services', () => {
    assert.equal(parseService(service({ externalTrafficPolicy: 'Local' })).record?.externalTrafficPolicy, 'Cluster');
    assert.equal(parseService(service({ externalTrafficPolicy: 'Local', externalIPs: ['192.0.2.1'] })).record?.externalTrafficPolicy, 'Local');
    // NodePort + Local: no health check port (only LoadBalancer gets one).
    const np = parseService(service({ type: 'NodePort', externalTrafficPolicy: 'Local', healthCheckNodePort: 32000 })).record;
    assert.equal(np?.externalTrafficPolicy, 'Local');
    assert.equal(np?.healthCheckNodePort, null);
  });

  it('sessionAffinity ClientIP: configured timeout, or the 10800 s default', () => {
    assert.equal(parseService(service({ sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } } })).record?.sessionAffinityTimeoutSeconds, 60);
    assert.equal(parseService(service({ sessionAffinity: 'ClientIP' })).record?.sessionAffinityTimeoutSeconds, 10800);
  });

  it('drops an invalid externalIP but keeps the Service', () => {
    const { record, problems } = parseService(service({ externalIPs: ['192.0.2.1', 'example.com'] }));
    assert.deepEqual(record?.externalIPs, ['192.0.2.1']);
    assert.equal(problems[0]!.field, 'spec.externalIPs[1]');
  });

  it('defaults the namespace and rejects objects without a name or of the wrong version', () => {
    const noNs = service({}, { metadata: { name: 'web' } });
    assert.equal(parseService(noNs).record?.namespace, 'default');
    assert.equal(parseService(service({}, { metadata: {} })).problems[0]?.field, 'metadata.name');
    assert.equal(parseService({ ...service(), apiVersion: 'v2' }).problems[0]?.field, 'apiVersion');
    assert.equal(parseService('nonsense').record, null);
  });
});

describe('parseEndpointSlice', () => {
  it('keeps only what the proxier needs', () => {
    const { record, problems } = parseEndpointSlice(slice());
    assert.deepEqual(problems, []);
    assert.deepEqual(record, {
      namespace: 'default',
      name: 'web-abc12',
      serviceName: 'web',
      addressType: 'IPv4',
      ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
      endpoints: [
        { address: '10.244.1.5', nodeName: 'node-a', zone: 'zone-a', zoneHints: null, nodeHints: null, ready: true, serving: true, terminating: false },
      ],
    });
  });

  it('rejects a slice without the kubernetes.io/service-name label', () => {
    const { record, problems } = parseEndpointSlice(slice({}, {}));
    assert.equal(record, null);
    assert.equal(problems[0]!.kind, 'EndpointSlice');
    assert.equal(problems[0]!.name, 'web-abc12');
    assert.equal(problems[0]!.field, 'metadata.labels["kubernetes.io/service-name"]');
  });

  it('drops an endpoint with an invalid IP, keeps the rest', () => {
    const { record, problems } = parseEndpointSlice(
      slice({ endpoints: [{ addresses: ['10.244.1.300'] }, { addresses: ['fd00::1'] }, { addresses: [] }, { addresses: ['10.244.1.6'] }] }),
    );
    assert.deepEqual(record?.endpoints.map((e) => e.address), ['10.244.1.6']);
    assert.deepEqual(
      problems.map((p) => [p.field, p.value, p.action]),
      [
        ['endpoints[0].addresses[0]', '10.244.1.300', 'dropped'],
        ['endpoints[1].addresses[0]', 'fd00::1', 'dropped'], // wrong family for addressType IPv4
        ['endpoints[2].addresses[0]', undefined, 'dropped'],
      ],
    );
    assert.match(problems[0]!.text, /^EndpointSlice default\/web-abc12: endpoints\[0\]\.addresses\[0\]: "10\.244\.1\.300" is not a valid IP address/);
  });

  it('missing conditions count as ready, serving, not terminating; only addresses[0] is used', () => {
    const { record } = parseEndpointSlice(slice({ endpoints: [{ addresses: ['10.0.0.2', '10.0.0.3'] }, { addresses: ['10.0.0.1'], conditions: { ready: false, terminating: true } }] }));
    assert.deepEqual(
      record?.endpoints.map((e) => [e.address, e.ready, e.serving, e.terminating]),
      [
        ['10.0.0.1', false, true, true],
        ['10.0.0.2', true, true, false],
      ],
    );
  });

  it('reads zone and node hints', () => {
    const { record } = parseEndpointSlice(slice({ endpoints: [{ addresses: ['10.0.0.1'], hints: { forZones: [{ name: 'b' }, { name: 'a' }], forNodes: [{ name: 'n1' }] } }] }));
    assert.deepEqual(record?.endpoints[0]?.zoneHints, ['a', 'b']);
    assert.deepEqual(record?.endpoints[0]?.nodeHints, ['n1']);
  });

  it('ignores FQDN slices; accepts `endpoints: null` and `ports: null` as kubectl prints them', () => {
    assert.deepEqual(parseEndpointSlice(slice({ addressType: 'FQDN' })), { record: null, problems: [] });
    const r = parseEndpointSlice(slice({ endpoints: null, ports: null }));
    assert.deepEqual(r.problems, []);
    assert.deepEqual(r.record?.endpoints, []);
    assert.deepEqual(r.record?.ports, []);
  });

  it('skips a bad slice port; a missing port name counts as ""', () => {
    const { record, problems } = parseEndpointSlice(slice({ ports: [{ name: 'x', port: 0 }, { port: 8080 }, { name: 'y', port: 53, protocol: 'ICMP' }] }));
    assert.deepEqual(record?.ports, [{ name: '', protocol: 'TCP', port: 8080 }]);
    assert.deepEqual(problems.map((p) => p.field), ['ports[0].port', 'ports[2].protocol']);
  });

  it('sorts endpoints and ports so a reordered slice parses to the same record', () => {
    const a = slice({ endpoints: [{ addresses: ['10.0.0.2'] }, { addresses: ['10.0.0.1'] }], ports: [{ name: 'b', port: 2 }, { name: 'a', port: 1 }] });
    const b = slice({ endpoints: [{ addresses: ['10.0.0.1'] }, { addresses: ['10.0.0.2'] }], ports: [{ name: 'a', port: 1 }, { name: 'b', port: 2 }] });
    assert.deepEqual(parseEndpointSlice(a).record, parseEndpointSlice(b).record);
  });

  it('rejects an unknown addressType', () => {
    const r = parseEndpointSlice(slice({ addressType: 'IPv5' }));
    assert.equal(r.record, null);
    assert.equal(r.problems[0]!.field, 'addressType');
  });
});

describe('names as the API server validates them, and values clipped in problems', () => {
  const named = (name: string, namespace = 'default') => {
    const o = service();
    (o['metadata'] as Json)['name'] = name;
    (o['metadata'] as Json)['namespace'] = namespace;
    return o;
  };
  const sliceNamed = (name: string) => {
    const o = slice();
    (o['metadata'] as Json)['name'] = name;
    return o;
  };

  it('accepts DNS-1035 Service names up to 63 and DNS-1123 slice names up to 253', () => {
    assert.ok(parseService(named('a'.repeat(63))).record);
    assert.ok(parseService(named('web-1', 'kube-system')).record);
    assert.ok(parseEndpointSlice(sliceNamed(`${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(60)}`)).record);
  });

  for (const [what, obj, field] of [
    ['a 64-character Service name', named('a'.repeat(64)), 'metadata.name'],
    ['a Service name with capitals', named('Web'), 'metadata.name'],
    ['a Service name starting with a digit (DNS-1035)', named('1web'), 'metadata.name'],
    ['a Service name with a dot', named('web.x'), 'metadata.name'],
    ['a namespace of 64 characters', named('web', 'n'.repeat(64)), 'metadata.namespace'],
    ['a namespace with an underscore', named('web', 'kube_system'), 'metadata.namespace'],
    ['a 254-character slice name', sliceNamed('s'.repeat(254)), 'metadata.name'],
    ['a slice name ending in "-"', sliceNamed('web-'), 'metadata.name'],
  ] as const) {
    it(`rejects ${what}, naming the field`, () => {
      const r = (obj['kind'] === 'Service' ? parseService : parseEndpointSlice)(obj);
      assert.equal(r.record, null);
      assert.equal(r.problems[0]?.field, field);
      assert.equal(r.problems[0]?.action, 'rejected');
    });
  }

  it('a 1 MB name and a 50 MB value become problems of bounded size', () => {
    const huge = named('x'.repeat(1 << 20));
    const r1 = parseService(huge);
    assert.equal(r1.record, null);
    assert.ok(r1.problems[0]!.text.length < 1000, `${r1.problems[0]!.text.length} chars`);
    assert.ok(String(r1.problems[0]!.value).length < 300);
    assert.match(r1.problems[0]!.text, /\(1048576 chars\)/);
    const r2 = parseService(service({ clusterIP: '1'.repeat(50 << 20), clusterIPs: undefined }));
    assert.equal(r2.record, null);
    assert.ok(r2.problems[0]!.text.length < 1000 && JSON.stringify(r2.problems[0]!.value).length < 300, r2.problems[0]!.text.slice(0, 300));
  });
});
