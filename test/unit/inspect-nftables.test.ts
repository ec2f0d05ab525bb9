// inspect's nftables view (src/inspect/nftables.ts) on what the kernel gives back: kube-proxy's
// TestOverallNFTablesRules Services rendered by renderNftablesFull, loaded with `nft -f -` into
// a scratch network namespace and read back with `nft -j list table ip kube-proxy` (needs root
// and nft: skipped without them, failed under CI=true); and a small hand-written JSON document,
// so the parser is covered without root.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { renderNftablesFull } from '../../src/dataplane/nftables/render.js';
import { formatView } from '../../src/inspect/format.js';
import { nftablesView } from '../../src/inspect/nftables.js';
import type { InspectView } from '../../src/inspect/view.js';
import { objects } from './helpers/kube-objects.js';
import { overallObjects } from './helpers/kube-proxy-fake.js';
import { FAKE_NFTABLES_CONFIG, FAKE_SERVICE_CIDRS } from './helpers/nftables-fake.js';

/** Each Service port as one line of text, its frontends and backends, for deepEqual. */
function show(v: InspectView) {
  return v.services.map((s) => ({
    service: `${s.service}:${s.portName} ${s.protocol} ${s.type}${s.affinitySeconds === null ? '' : ` affinity ${s.affinitySeconds}s`}`,
    frontends: s.frontends.map((f) => `${f.kind} ${f.address}:${f.port} ${f.scope}${f.flags.length ? ` [${f.flags.join(',')}]` : ''} → ${f.backends}`),
    backends: s.backends.map((b) => `${b.address}:${b.port}${b.local === null ? '' : b.local ? ' local' : ' remote'}`),
  }));
}

const run = (cmd: string, args: string[], input?: string) => spawnSync(cmd, args, { input, encoding: 'utf8' });

function unavailableHere(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (a scratch network namespace and nft)';
  if (run('nft', ['--version']).status !== 0) return 'the nft binary does not run (Debian: apt-get install nftables)';
  if (run('ip', ['-V']).status !== 0) return 'the ip binary does not run (Debian: apt-get install iproute2)';
  return null;
}

const unavailable = unavailableHere();
if (unavailable && process.env.CI === 'true') {
  test('nftables inspect prerequisites (CI runs this as root)', () => assert.fail(unavailable));
}

describe('nftables view of the kernel\'s `nft -j list table` (TestOverallNFTablesRules)', { skip: unavailable ?? false }, () => {
  const ns = `kxinsp-${process.pid}`;
  let doc: unknown;

  before(() => {
    const made = run('ip', ['netns', 'add', ns]);
    assert.equal(made.status, 0, made.stderr);
    const state = { ...objects(...overallObjects()).state(), serviceCIDRs: FAKE_SERVICE_CIDRS };
    const { ruleset } = renderNftablesFull(state, FAKE_NFTABLES_CONFIG);
    const load = run('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], ruleset.dump());
    assert.equal(load.status, 0, load.stderr);
    const list = run('ip', ['netns', 'exec', ns, 'nft', '-j', 'list', 'table', 'ip', 'kube-proxy']);
    assert.equal(list.status, 0, list.stderr);
    doc = JSON.parse(list.stdout);
  });
  after(() => {
    run('ip', ['netns', 'del', ns]);
  });

  test('every Service port with its name, type, frontends, backends and affinity', () => {
    const v = nftablesView([doc, null], 'test');
    assert.equal(v.mode, 'nftables');
    assert.deepEqual(show(v), [
      { service: 'ns1/svc1:p80 TCP ClusterIP', frontends: ['ClusterIP 172.30.0.41:80 cluster → 1'], backends: ['10.180.0.1:80'] },
      // eTP Local without a local endpoint: the external addresses and the NodePort drop (their
      // external- chain only short-circuits pods and the node to the cluster chain); the LB IP
      // has no source ranges, so it reads as an ExternalIP and the type as NodePort
      { service: 'ns2/svc2:p80 TCP NodePort', frontends: [
        'ClusterIP 172.30.0.42:80 cluster → 1', 'ExternalIP 1.2.3.4:80 local [drop] → 0', 'ExternalIP 192.168.99.22:80 local [drop] → 0',
        'NodePort 192.168.0.2:3001 local [drop] → 0',
      ], backends: ['10.180.0.2:80'] },
      { service: 'ns3/svc3:p80 TCP NodePort', frontends: ['ClusterIP 172.30.0.43:80 cluster → 1', 'NodePort 192.168.0.2:3003 cluster → 1'], backends: ['10.180.0.3:80'] },
      // type NodePort without a nodePort (the fixture gives none): only ClusterIP and externalIP
      { service: 'ns4/svc4:p80 TCP ClusterIP', frontends: ['ClusterIP 172.30.0.44:80 cluster → 2', 'ExternalIP 192.168.99.33:80 cluster → 2'],
        backends: ['10.180.0.4:80', '10.180.0.5:80'] },
      { service: 'ns5/svc5:p80 TCP LoadBalancer affinity 10800s', frontends: [
        'ClusterIP 172.30.0.45:80 cluster → 1', 'LoadBalancer 5.6.7.8:80 cluster [source-ranges] → 1', 'NodePort 192.168.0.2:3002 cluster → 1',
      ], backends: ['10.180.0.3:80'] },
      { service: 'ns6/svc6:p80 TCP ClusterIP', frontends: ['ClusterIP 172.30.0.46:80 cluster [reject] → 0'], backends: [] },
    ]);
    assert.match(v.notes.join('\n'), /externalIP or a LoadBalancer ingress IP/);
    const table = formatView(v, 'table');
    assert.match(table, /^ns5\s+svc5\s+p80\s+LoadBalancer\s+TCP\s+172\.30\.0\.45:80,5\.6\.7\.8:80,192\.168\.0\.2:3002\s+10\.180\.0\.3:80\s+ClientIP 10800s$/m);
    assert.match(table, /^ns6\s+svc6\s+p80\s+ClusterIP\s+TCP\s+172\.30\.0\.46:80\s+<none: rejected>\s+None$/m);
  });
});

// ---- hand-written JSON: both families, a Local policy, NodePorts on every address ---------

const svc = (kind: string, base: string) => `${kind}-${base}`;
const WEB = 'AAAAAAAA-default/web/tcp/http';
const WEB_EP1 = 'BBBBBBBB-default/web/tcp/http__10.1.0.1/8080';
const WEB_EP2 = 'CCCCCCCC-default/web/tcp/http__10.1.0.2/8080';
const DNS = 'DDDDDDDD-kube-system/dns/udp/';
const DNS_EP6 = 'EEEEEEEE-kube-system/dns/udp/__fd00.1..5/53';
const rule = (chain: string, ...expr: unknown[]) => ({ rule: { family: 'ip', table: 'kube-proxy', chain, handle: 1, expr } });
const goto = (target: string) => ({ goto: { target } });
const match = (field: string, right: unknown) => ({ match: { op: '==', left: { payload: { protocol: 'ip', field } }, right } });

const IPV4 = {
  nftables: [
    { metainfo: { version: '1.0.6', json_schema_version: 1 } },
    { table: { family: 'ip', name: 'kube-proxy', handle: 1 } },
    ...[svc('service', WEB), svc('local', WEB), svc('external', WEB), svc('endpoint', WEB_EP1), svc('endpoint', WEB_EP2)]
      .map((name) => ({ chain: { family: 'ip', table: 'kube-proxy', name, handle: 2 } })),
    { set: { family: 'ip', name: 'cluster-ips', table: 'kube-proxy', type: 'ipv4_addr', elem: ['10.96.0.10'] } },
    { set: { family: 'ip', name: `affinity-${WEB_EP1}`, table: 'kube-proxy', type: 'ipv4_addr', flags: ['timeout'], timeout: 600 } },
    { set: { family: 'ip', name: `affinity-${WEB_EP2}`, table: 'kube-proxy', type: 'ipv4_addr', flags: ['timeout'], timeout: 600 } },
    { map: { family: 'ip', name: 'service-ips', table: 'kube-proxy', type: ['ipv4_addr', 'inet_proto', 'inet_service'], map: 'verdict', elem: [
      [{ concat: ['10.96.0.10', 'tcp', 80] }, goto(svc('service', WEB))],
      [{ concat: ['203.0.113.7', 'tcp', 80] }, goto(svc('external', WEB))],
    ] } },
    { map: { family: 'ip', name: 'service-nodeports', table: 'kube-proxy', type: ['inet_proto', 'inet_service'], map: 'verdict', elem: [
      [{ concat: ['tcp', 30080] }, goto(svc('external', WEB))],
    ] } },
    { map: { family: 'ip', name: 'firewall-ips', table: 'kube-proxy', type: ['ipv4_addr', 'inet_proto', 'inet_service'], map: 'verdict', elem: [
      [{ concat: ['203.0.113.7', 'tcp', 80] }, goto(svc('firewall', WEB))],
    ] } },
    { map: { family: 'ip', name: 'no-endpoint-nodeports', table: 'kube-proxy', type: ['inet_proto', 'inet_service'], map: 'verdict', elem: [
      [{ elem: { val: { concat: ['tcp', 30099] }, comment: 'default/empty:' } }, goto('reject-chain')],
    ] } },
    rule(svc('service', WEB), match('saddr', `@affinity-${WEB_EP1}`), goto(svc('endpoint', WEB_EP1))),
    rule(svc('service', WEB), match('saddr', `@affinity-${WEB_EP2}`), goto(svc('endpoint', WEB_EP2))),
    rule(svc('service', WEB), { vmap: { key: { numgen: { mode: 'random', mod: 2, offset: 0 } }, data: { set: [
      [0, goto(svc('endpoint', WEB_EP1))], [1, goto(svc('endpoint', WEB_EP2))],
    ] } } }),
    rule(svc('local', WEB), match('saddr', `@affinity-${WEB_EP1}`), goto(svc('endpoint', WEB_EP1))),
    rule(svc('local', WEB), { vmap: { key: { numgen: { mode: 'random', mod: 1, offset: 0 } }, data: { set: [[0, goto(svc('endpoint', WEB_EP1))]] } } }),
    rule(svc('external', WEB), match('saddr', { prefix: { addr: '10.1.0.0', len: 16 } }), goto(svc('service', WEB))),
    rule(svc('external', WEB), goto(svc('local', WEB))),
    rule(svc('endpoint', WEB_EP1), { match: { op: '==', left: { meta: { key: 'l4proto' } }, right: 'tcp' } }, { dnat: { addr: '10.1.0.1', port: 8080 } }),
    rule(svc('endpoint', WEB_EP2), { match: { op: '==', left: { meta: { key: 'l4proto' } }, right: 'tcp' } }, { dnat: { addr: '10.1.0.2', port: 8080 } }),
  ],
};

const IPV6 = {
  nftables: [
    { table: { family: 'ip6', name: 'kube-proxy', handle: 1 } },
    { set: { family: 'ip6', name: 'cluster-ips', table: 'kube-proxy', type: 'ipv6_addr', elem: ['fd00:96::a', 'fd00:96::b', 'fd00:96::c'] } },
    { set: { family: 'ip6', name: 'nodeport-ips', table: 'kube-proxy', type: 'ipv6_addr', elem: ['2001:db8::1'] } },
    { map: { family: 'ip6', name: 'service-ips', table: 'kube-proxy', type: ['ipv6_addr', 'inet_proto', 'inet_service'], map: 'verdict', elem: [
      [{ concat: ['fd00:96::a', 'udp', 53] }, goto(svc('service', DNS))],
    ] } },
    { map: { family: 'ip6', name: 'no-endpoint-services', table: 'kube-proxy', type: ['ipv6_addr', 'inet_proto', 'inet_service'], map: 'verdict', elem: [
      [{ elem: { val: { concat: ['fd00:96::b', 'tcp', 443] }, comment: 'default/empty:https' } }, goto('reject-chain')],
      [{ elem: { val: { concat: ['fd00:96::c', 'tcp', 80] }, comment: 'default/itp:' } }, { drop: null }],
    ] } },
    { map: { family: 'ip6', name: 'no-endpoint-nodeports', table: 'kube-proxy', type: ['inet_proto', 'inet_service'], map: 'verdict', elem: [
      [{ elem: { val: { concat: ['tcp', 30443] }, comment: 'default/empty:https' } }, goto('reject-chain')],
    ] } },
    { rule: { family: 'ip6', table: 'kube-proxy', chain: svc('service', DNS), handle: 3, expr: [
      { vmap: { key: { numgen: { mode: 'random', mod: 1, offset: 0 } }, data: { set: [[0, goto(svc('endpoint', DNS_EP6))]] } } },
    ] } },
    { rule: { family: 'ip6', table: 'kube-proxy', chain: svc('endpoint', DNS_EP6), handle: 4, expr: [
      { match: { op: '==', left: { meta: { key: 'l4proto' } }, right: 'udp' } }, { dnat: { addr: 'fd00:1::5', port: 53 } },
    ] } },
  ],
};

test('nftables view of a hand-written JSON document (both families)', () => {
  const v = nftablesView([IPV4, IPV6], 'test');
  assert.deepEqual(show(v), [
    // no endpoints (reject): NodePorts on every address (ip: no nodeport-ips set) or on
    // nodeport-ips' (ip6); an unnamed port sorts before a named one
    { service: 'default/empty: TCP NodePort', frontends: ['NodePort *:30099 cluster [reject] → 0'], backends: [] },
    { service: 'default/empty:https TCP NodePort', frontends: [
      'ClusterIP fd00:96::b:443 cluster [reject] → 0', 'NodePort 2001:db8::1:30443 cluster [reject] → 0',
    ], backends: [] },
    // iTP Local without local endpoints: the ClusterIP drops
    { service: 'default/itp: TCP ClusterIP', frontends: ['ClusterIP fd00:96::c:80 local [drop] → 0'], backends: [] },
    // eTP Local: the external- chain's unconditional goto is the local- chain; affinity sets
    { service: 'default/web:http TCP LoadBalancer affinity 600s', frontends: [
      'ClusterIP 10.96.0.10:80 cluster → 2', 'LoadBalancer 203.0.113.7:80 local [source-ranges] → 1', 'NodePort *:30080 local → 1',
    ], backends: ['10.1.0.1:8080 local', '10.1.0.2:8080 remote'] },
    { service: 'kube-system/dns: UDP ClusterIP', frontends: ['ClusterIP fd00:96::a:53 cluster → 1'], backends: ['fd00:1::5:53'] },
  ]);
});

test('nftables view: nothing read, nothing shown', () => {
  assert.deepEqual(nftablesView([null, null], 'test').services, []);
  assert.deepEqual(nftablesView([{ nftables: [{ metainfo: {} }, { table: { family: 'ip', name: 'kube-proxy' } }] }], 'test').services, []);
});
