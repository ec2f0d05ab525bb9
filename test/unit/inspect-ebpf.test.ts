// The eBPF reader (the maps' description named through the owner file), the owner file itself,
// and the JSON/YAML/wide forms every mode shares.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import pino from 'pino';
import type { Description } from '../../src/dataplane/ebpf/describe.js';
import { ebpfView } from '../../src/inspect/ebpf.js';
import { formatView } from '../../src/inspect/format.js';
import { OwnerFileWriter, ownerFileForPins, ownerLookup, ownerRecord, type OwnerFile } from '../../src/inspect/owners.js';
import type { ProxyState, ServicePort } from '../../src/model/types.js';

const fe = (address: string, port: number, scope: 'internal' | 'external' | 'host', backends: Array<[string, string[]]>, flags: string[] = []) => ({
  protocol: 'TCP', address, port, scope, svcId: 1, revNat: null, flags,
  backends: backends.map(([a, f], id) => ({ address: a, port: 8080, id, flags: f })),
});
const DESC: Description = {
  nodeAddress: '192.168.77.1', nodeAddress6: null,
  frontends: [
    fe('10.96.0.10', 80, 'internal', [['10.244.1.2', ['local']], ['10.244.2.2', ['terminating']]]),
    fe('10.96.0.10', 80, 'host', [['10.244.1.2', ['local']], ['10.244.2.2', ['terminating']]]),
    fe('192.168.77.1', 30080, 'external', [['10.244.1.2', ['local']]], ['local-only']),
    fe('10.96.0.20', 80, 'internal', [], ['reject']),
    fe('10.1.2.3', 9, 'internal', []),
  ],
};
const OWNERS: OwnerFile = {
  version: 1, generation: 1, services: [
    { service: 'default/web', portName: 'http', type: 'NodePort', protocol: 'TCP', port: 80, nodePort: 30080, clusterIPs: ['10.96.0.10'], externalIPs: [], loadBalancerIPs: [], affinitySeconds: 600 },
    { service: 'default/empty', portName: '', type: 'ClusterIP', protocol: 'TCP', port: 80, nodePort: null, clusterIPs: ['10.96.0.20'], externalIPs: [], loadBalancerIPs: [], affinitySeconds: null },
  ],
};

test('ownerLookup: exact address and port first, else a NodePort on any address; protocol counts', () => {
  const find = ownerLookup(OWNERS);
  assert.equal(find('TCP', '10.96.0.10', 80)?.kind, 'ClusterIP');
  assert.equal(find('TCP', '192.168.77.1', 30080)?.record.service, 'default/web');
  assert.equal(find('TCP', '192.168.77.1', 30080)?.kind, 'NodePort');
  assert.equal(find('UDP', '10.96.0.10', 80), null);
  assert.equal(ownerLookup(null)('TCP', '10.96.0.10', 80), null);
});

test('ebpfView: frontends grouped by Service port with scopes, backends with local/terminating, affinity, counters', () => {
  const v = ebpfView(DESC, { reply: 3 }, OWNERS, 'test');
  assert.deepEqual(v.services.map((s) => `${s.service} ${s.portName} ${s.type} ${s.affinitySeconds}`),
    ['default/empty  ClusterIP null', 'default/web http NodePort 600', 'null  unknown null']);
  const web = v.services[1]!;
  assert.deepEqual(web.frontends.map((f) => `${f.kind} ${f.address}:${f.port} ${f.scope} [${f.flags.join()}] ${f.backends}`),
    ['ClusterIP 10.96.0.10:80 internal [] 2', 'ClusterIP 10.96.0.10:80 host [] 2', 'NodePort 192.168.77.1:30080 external [local-only] 1']);
  assert.deepEqual(web.backends.map((b) => [b.address, b.local, b.terminating]), [['10.244.1.2', true, false], ['10.244.2.2', false, true]]);
  assert.deepEqual(v.counters, { reply: 3 });
  assert.deepEqual(v.notes, ['1 frontends match no Service of the owner file (written at the last sync)']);
});

test('JSON and YAML carry the view and the extra fields; wide lists every frontend and backend', () => {
  const v = ebpfView(DESC, { reply: 3 }, OWNERS, 'test');
  const json = JSON.parse(formatView(v, 'json', { nodeAddress: '192.168.77.1' }));
  assert.equal(json.mode, 'ebpf');
  assert.equal(json.nodeAddress, '192.168.77.1');
  assert.deepEqual(parse(formatView(v, 'yaml', { nodeAddress: '192.168.77.1' })), json);
  const wide = formatView(v, 'wide');
  assert.match(wide, /^default\/web:http {2}NodePort TCP {2}affinity ClientIP 600s$/m);
  assert.match(wide, /^ {2}backend\s+10\.244\.2\.2:8080\s+terminating$/m);
  assert.match(wide, /^ {2}frontend\s+NodePort\s+192\.168\.77\.1:30080\s+scope external\s+local-only\s+1 backends$/m);
  assert.match(wide, /^packets: reply=3$/m);
  assert.match(formatView(v, 'table'), /^default\s+empty\s+-\s+ClusterIP\s+TCP\s+10\.96\.0\.20:80\s+<none: rejected>\s+None$/m);
});

test('OwnerFileWriter: written after a sync, not again while the Service ports are the same objects', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kx-owners-'));
  try {
    const path = join(dir, 'sub', 'pins.json');
    const sp = { id: 'default/web:http', namespace: 'default', name: 'web', portName: 'http', type: 'ClusterIP', protocol: 'TCP', port: 80, nodePort: null,
      clusterIPs: ['10.96.0.10'], externalIPs: [], loadBalancerIPs: [], sessionAffinityTimeoutSeconds: null } as unknown as ServicePort;
    const w = new OwnerFileWriter(path, pino({ enabled: false }));
    const state: ProxyState = { services: [sp], generation: 7 };
    w.write(state);
    assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), { version: 1, generation: 7, services: [ownerRecord(sp)] });
    rmSync(path);
    w.write({ services: [sp], generation: 8 });
    assert.equal(existsSync(path), false, 'rewritten although nothing changed');
    w.write({ services: [], generation: 9 });
    assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')).services, []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the owner file of a pin dir is named after it, on tmpfs under /run (bpffs holds only BPF objects)', () => {
  assert.equal(ownerFileForPins('/sys/fs/bpf/kube-xdp'), '/run/kube-xdp/kube-xdp.json');
});
