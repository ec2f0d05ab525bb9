import assert from 'node:assert/strict';
import { mkdtemp, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ChangeTracker } from '../../src/model/tracker.js';
import type { ObjectEvent, SourceSink } from '../../src/model/types.js';
import { diffObjects, FileSource, ParseError, parseObjects } from '../../src/source/file-source.js';

const NODE = { nodeName: 'node-a', zone: null, ipFamilies: ['IPv4' as const] };

function svcYaml(name: string, port = 80): string {
  return `apiVersion: v1
kind: Service
metadata:
  name: ${name}
  namespace: default
  resourceVersion: "1"
spec:
  clusterIP: 10.96.0.10
  clusterIPs:
  - 10.96.0.10
  ports:
  - name: http
    port: ${port}
    protocol: TCP
    targetPort: http
  type: ClusterIP
`;
}

function sliceYaml(name: string, service: string, ips: string[]): string {
  return `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ${name}
  namespace: default
  labels:
    kubernetes.io/service-name: ${service}
addressType: IPv4
ports:
- name: http
  port: 8080
  protocol: TCP
endpoints:
${ips.map((ip) => `- addresses:\n  - ${ip}\n  conditions:\n    ready: true\n`).join('')}`;
}

describe('parseObjects', () => {
  it('reads multi-document YAML, skipping empty documents', () => {
    const objs = parseObjects(`---\n${svcYaml('a')}---\n---\n${sliceYaml('a-1', 'a', ['10.0.0.1'])}`, 'x.yaml');
    assert.deepEqual(objs.map((o) => o['kind']), ['Service', 'EndpointSlice']);
  });

  it('reads a kubectl List, a JSON array and a typed list whose items lack kind', () => {
    const list = { apiVersion: 'v1', kind: 'List', items: [{ apiVersion: 'v1', kind: 'Service', metadata: { name: 'a' } }, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' } }] };
    assert.deepEqual(parseObjects(JSON.stringify(list), 'l.json').map((o) => o['kind']), ['Service', 'ConfigMap']);
    assert.equal(parseObjects(JSON.stringify([{ kind: 'Service' }, { kind: 'EndpointSlice' }]), 'a.json').length, 2);
    const typed = { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSliceList', items: [{ metadata: { name: 's' } }] };
    const [item] = parseObjects(JSON.stringify(typed), 't.json');
    assert.equal(item?.['kind'], 'EndpointSlice');
    assert.equal(item?.['apiVersion'], 'discovery.k8s.io/v1');
    // YAML List, as `kubectl get svc,endpointslices -o yaml` prints it.
    const yamlList = `apiVersion: v1\nitems:\n- ${svcYaml('a').trimEnd().split('\n').join('\n  ')}\nkind: List\nmetadata:\n  resourceVersion: ""\n`;
    assert.equal(parseObjects(yamlList, 'l.yaml')[0]?.['kind'], 'Service');
  });

  it('throws a ParseError naming the file and the parser message', () => {
    assert.throws(() => parseObjects('kind: Service\n  bad: [indent\n', 'svc.yaml'), (err: unknown) => {
      assert.ok(err instanceof ParseError);
      assert.equal(err.file, 'svc.yaml');
      assert.match(err.message, /^svc\.yaml: .*line \d+/s);
      return true;
    });
    assert.throws(() => parseObjects('{"kind": "Service",}', 'svc.json'), /^ParseError: svc\.json: .*JSON/);
    assert.throws(() => parseObjects('just a string', 's.yaml'), /document 1 is not an object/);
  });
});

describe('diffObjects', () => {
  it('turns two reads into ADDED / MODIFIED / DELETED events, ignoring unchanged objects', () => {
    const a = { kind: 'Service', metadata: { name: 'a' }, spec: { x: 1 } };
    const prev = new Map<string, unknown>([['Service/default/a', a], ['Service/default/b', { kind: 'Service' }], ['Service/default/c', { v: 1 }]]);
    const next = new Map<string, unknown>([['Service/default/a', structuredClone(a)], ['Service/default/c', { v: 2 }], ['EndpointSlice/default/d', { v: 3 }]]);
    assert.deepEqual(diffObjects(prev, next), [
      { kind: 'EndpointSlice', type: 'ADDED', object: { v: 3 } },
      { kind: 'Service', type: 'DELETED', object: { kind: 'Service' } },
      { kind: 'Service', type: 'MODIFIED', object: { v: 2 } },
    ]);
  });
});

/** A sink that records everything and lets a test await a condition instead of sleeping. */
function recordingSink(tracker = new ChangeTracker()) {
  const events: ObjectEvent[] = [];
  const errors: { err: Error; context: string }[] = [];
  let synced = false;
  let waiters: { check: () => boolean; resolve: () => void }[] = [];
  const poke = (): void => {
    waiters = waiters.filter((w) => (w.check() ? (w.resolve(), false) : true));
  };
  const sink: SourceSink = {
    event(e) {
      events.push(e);
      tracker.update(e);
      poke();
    },
    synced() {
      synced = true;
      tracker.markSynced();
      poke();
    },
    error(err, context) {
      errors.push({ err, context });
      poke();
    },
  };
  const until = (check: () => boolean, what: string, ms = 5000): Promise<void> =>
    check()
      ? Promise.resolve()
      : new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
          waiters.push({ check, resolve: () => (clearTimeout(timer), resolve()) });
        });
  return { sink, events, errors, tracker, until, isSynced: () => synced };
}

const names = (t: ChangeTracker): string[] => t.snapshot(NODE).services.map((s) => `${s.id}=${s.port}:${s.endpoints.map((e) => e.ip).join(',')}`);

describe('FileSource', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'kx-file-source-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('reads a directory of files (ignoring other extensions and kinds), then emits synced', async () => {
    const dir = await mkdtemp(join(root, 'dir-'));
    await writeFile(join(dir, 'a.yaml'), `${svcYaml('a')}---\n${sliceYaml('a-1', 'a', ['10.0.0.1'])}`);
    await writeFile(join(dir, 'b.json'), JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' } }] }));
    await writeFile(join(dir, 'c.yml'), svcYaml('c', 81));
    await writeFile(join(dir, 'notes.txt'), 'not yaml: [');
    const r = recordingSink();
    const src = new FileSource(dir, { pollIntervalMs: 60_000 });
    await src.start(r.sink);
    try {
      assert.equal(r.isSynced(), true);
      assert.deepEqual(r.errors, []);
      assert.deepEqual(r.events.map((e) => `${e.type} ${e.kind}`), ['ADDED EndpointSlice', 'ADDED Service', 'ADDED Service']);
      assert.deepEqual(names(r.tracker), ['default/a:http=80:10.0.0.1', 'default/c:http=81:']);
    } finally {
      await src.stop();
    }
  });

  it('detects a live edit, a rename-replace and a removed file', async () => {
    const dir = await mkdtemp(join(root, 'live-'));
    const file = join(dir, 'web.yaml');
    await writeFile(file, `${svcYaml('web')}---\n${sliceYaml('web-1', 'web', ['10.0.0.1'])}`);
    const r = recordingSink();
    const src = new FileSource(dir, { pollIntervalMs: 60_000 });
    await src.start(r.sink);
    try {
      const n = r.events.length;
      await writeFile(file, `${svcYaml('web')}---\n${sliceYaml('web-1', 'web', ['10.0.0.1', '10.0.0.2'])}`);
      await r.until(() => r.events.length > n, 'the edit');
      assert.deepEqual(r.events.slice(n).map((e) => `${e.type} ${e.kind}`), ['MODIFIED EndpointSlice']);
      assert.deepEqual(names(r.tracker), ['default/web:http=80:10.0.0.1,10.0.0.2']);

      // Editors save by writing a temp file and renaming it over the original.
      const m = r.events.length;
      await writeFile(join(dir, '.web.yaml.tmp'), `${svcYaml('web', 8080)}---\n${sliceYaml('web-1', 'web', ['10.0.0.1', '10.0.0.2'])}`);
      await rename(join(dir, '.web.yaml.tmp'), file);
      await r.until(() => r.events.length > m, 'the rename-replace');
      assert.deepEqual(names(r.tracker), ['default/web:http=8080:10.0.0.1,10.0.0.2']);

      const k = r.events.length;
      await unlink(file);
      await r.until(() => r.events.length >= k + 2, 'the deletion');
      assert.deepEqual(r.events.slice(k).map((e) => `${e.type} ${e.kind}`), ['DELETED EndpointSlice', 'DELETED Service']);
      assert.deepEqual(names(r.tracker), []);
    } finally {
      await src.stop();
    }
  });

  it('a broken edit is reported and keeps the file’s previous objects; the fix is picked up', async () => {
    const dir = await mkdtemp(join(root, 'broken-'));
    const file = join(dir, 'web.yaml');
    await writeFile(file, `${svcYaml('web')}---\n${sliceYaml('web-1', 'web', ['10.0.0.1'])}`);
    await writeFile(join(dir, 'other.yaml'), svcYaml('other'));
    const r = recordingSink();
    const src = new FileSource(dir, { pollIntervalMs: 60_000 });
    await src.start(r.sink);
    try {
      const n = r.events.length;
      await writeFile(file, 'apiVersion: v1\nkind: Service\nmetadata: {name: web\n');
      await r.until(() => r.errors.length > 0, 'the parse error');
      assert.equal(r.errors[0]!.err instanceof ParseError, true);
      assert.ok(r.errors[0]!.context.startsWith(file), r.errors[0]!.context);
      assert.ok(r.errors[0]!.err.message.startsWith(`${file}: `), r.errors[0]!.err.message);
      assert.equal(r.events.length, n, 'no event for a broken file');
      assert.deepEqual(names(r.tracker), ['default/other:http=80:', 'default/web:http=80:10.0.0.1']);

      // Another file still works while this one is broken.
      await writeFile(join(dir, 'other.yaml'), svcYaml('other', 90));
      await r.until(() => r.events.length > n, 'the other edit');
      assert.deepEqual(names(r.tracker), ['default/other:http=90:', 'default/web:http=80:10.0.0.1']);

      const m = r.events.length;
      await writeFile(file, `${svcYaml('web', 81)}---\n${sliceYaml('web-1', 'web', ['10.0.0.1'])}`);
      await r.until(() => r.events.length > m, 'the fix');
      assert.deepEqual(names(r.tracker), ['default/other:http=90:', 'default/web:http=81:10.0.0.1']);
    } finally {
      await src.stop();
    }
  });

  it('watches a single file (multi-document), and survives a rename-replace of it', async () => {
    const dir = await mkdtemp(join(root, 'single-'));
    const file = join(dir, 'state.yaml');
    await writeFile(join(dir, 'ignored.yaml'), svcYaml('ignored'));
    await writeFile(file, `${svcYaml('a')}---\n${svcYaml('b')}`);
    const r = recordingSink();
    const src = new FileSource(file, { pollIntervalMs: 60_000 });
    await src.start(r.sink);
    try {
      assert.deepEqual(names(r.tracker), ['default/a:http=80:', 'default/b:http=80:']);
      await writeFile(join(dir, 'ignored.yaml'), svcYaml('ignored', 1)); // not ours: no events
      const n = r.events.length;
      await writeFile(`${file}.new`, svcYaml('a'));
      await rename(`${file}.new`, file);
      await r.until(() => r.events.length > n, 'the replace');
      assert.deepEqual(r.events.slice(n).map((e) => `${e.type} ${e.kind}`), ['DELETED Service']);
      assert.deepEqual(names(r.tracker), ['default/a:http=80:']);

      // The watched file vanishing is reported, and its objects are kept until it returns.
      const k = r.events.length;
      await unlink(file);
      await r.until(() => r.errors.length > 0, 'the missing-file report');
      assert.match(r.errors[0]!.context, /state\.yaml \(keeping previous content\)$/);
      assert.equal(r.events.length, k);
      await writeFile(file, svcYaml('a', 82));
      await r.until(() => r.events.length > k, 'the file coming back');
      assert.deepEqual(names(r.tracker), ['default/a:http=82:']);
    } finally {
      await src.stop();
    }
  });

  it('falls back to polling (stat-based) when no watch event arrives', async () => {
    const dir = await mkdtemp(join(root, 'poll-'));
    const file = join(dir, 'svc.yaml');
    await writeFile(file, svcYaml('a'));
    const r = recordingSink();
    const src = new FileSource(dir, { pollIntervalMs: 30 });
    // A filesystem without change notifications: no watcher at all, only the poll.
    (src as unknown as { startWatcher(): void }).startWatcher = () => {};
    await src.start(r.sink);
    try {
      const n = r.events.length;
      await writeFile(file, svcYaml('a', 9999));
      await r.until(() => r.events.length > n, 'the polled change');
      assert.deepEqual(names(r.tracker), ['default/a:http=9999:']);
    } finally {
      await src.stop();
    }
  });

  it('rejects start() for a missing path and reports duplicates across files', async () => {
    await assert.rejects(new FileSource(join(root, 'missing')).start(recordingSink().sink), /ENOENT/);
    const dir = await mkdtemp(join(root, 'dup-'));
    await writeFile(join(dir, 'a.yaml'), svcYaml('web', 80));
    await writeFile(join(dir, 'b.yaml'), svcYaml('web', 81));
    const r = recordingSink();
    const src = new FileSource(dir, { pollIntervalMs: 60_000 });
    await src.start(r.sink);
    await src.stop();
    assert.deepEqual(names(r.tracker), ['default/web:http=80:']);
    assert.match(r.errors[0]!.err.message, /Service\/default\/web is also defined in .*a\.yaml/);
  });
});
