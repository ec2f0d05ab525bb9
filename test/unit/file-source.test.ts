import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdtemp, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ChangeTracker } from '../../src/model/tracker.js';
import type { ObjectEvent, SourceSink } from '../../src/model/types.js';
import { diffObjects, FILE_LIMITS, FileSource, ParseError, parseObjects } from '../../src/source/file-source.js';

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
    const { objects, problems } = parseObjects(`---\n${svcYaml('a')}---\n---\n${sliceYaml('a-1', 'a', ['10.0.0.1'])}`, 'x.yaml');
    assert.deepEqual(objects.map((o) => o['kind']), ['Service', 'EndpointSlice']);
    assert.deepEqual(problems, []);
  });

  it('reads a kubectl List, a JSON array and a typed list whose items lack kind', () => {
    const list = { apiVersion: 'v1', kind: 'List', items: [{ apiVersion: 'v1', kind: 'Service', metadata: { name: 'a' } }, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' } }] };
    assert.deepEqual(parseObjects(JSON.stringify(list), 'l.json').objects.map((o) => o['kind']), ['Service', 'ConfigMap']);
    assert.equal(parseObjects(JSON.stringify([{ kind: 'Service' }, { kind: 'EndpointSlice' }]), 'a.json').objects.length, 2);
    const typed = { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSliceList', items: [{ metadata: { name: 's' } }] };
    const [item] = parseObjects(JSON.stringify(typed), 't.json').objects;
    assert.equal(item?.['kind'], 'EndpointSlice');
    assert.equal(item?.['apiVersion'], 'discovery.k8s.io/v1');
    // YAML List, as `kubectl get svc,endpointslices -o yaml` prints it.
    const yamlList = `apiVersion: v1\nitems:\n- ${svcYaml('a').trimEnd().split('\n').join('\n  ')}\nkind: List\nmetadata:\n  resourceVersion: ""\n`;
    assert.equal(parseObjects(yamlList, 'l.yaml').objects[0]?.['kind'], 'Service');
  });

  it('a bad document is a ParseError naming the file, the document and the parser message; the others are kept', () => {
    const r = parseObjects(`${svcYaml('a')}---\nkind: Service\n  bad: [indent\n---\n${svcYaml('b')}`, 'svc.yaml');
    assert.deepEqual(r.objects.map((o) => (o['metadata'] as Record<string, unknown>)['name']), ['a', 'b']);
    assert.equal(r.problems.length, 1);
    assert.ok(r.problems[0] instanceof ParseError);
    assert.equal(r.problems[0]!.file, 'svc.yaml');
    assert.match(r.problems[0]!.message, /^svc\.yaml: document 2: .*line \d+/s);
    assert.match(parseObjects('{"kind": "Service",}', 'svc.json').problems[0]!.message, /^svc\.json: .*JSON/);
    assert.match(parseObjects('just a string', 's.yaml').problems[0]!.message, /document 1 is not an object/);
    const items = parseObjects(JSON.stringify({ kind: 'List', items: [{ kind: 'Service', metadata: { name: 'a' } }, 7] }), 'l.json');
    assert.deepEqual([items.objects.length, items.problems.map((p) => p.message)], [1, ['l.json: document 1 items[1] is not an object (skipped)']]);
  });

  it('bounds parser work: an alias bomb, a 50 MB scalar and a 2 MB multi-line string each cost only their document', () => {
    const bomb = ['kind: Service', 'a: &a ["x","x","x","x","x","x","x","x","x","x"]', ...Array.from({ length: 9 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10).fill(`*${String.fromCharCode(97 + i)}`).join(',')}]`), ''].join('\n');
    const bigScalar = `kind: Service\nmetadata:\n  name: big\n  annotations:\n    x: "${'y'.repeat(50 << 20)}"\n`;
    const folded = `kind: Service\nmetadata:\n  name: folded\n  annotations:\n    x: |\n${'      0123456789012345678901234567890123456789\n'.repeat(60_000)}`;
    const t0 = performance.now();
    const r = parseObjects([svcYaml('a'), bomb, bigScalar, folded, svcYaml('b')].join('---\n'), 'many.yaml');
    const ms = performance.now() - t0;
    assert.deepEqual(r.objects.map((o) => (o['metadata'] as Record<string, unknown>)['name']), ['a', 'b']);
    assert.equal(r.problems.length, 3, r.problems.map((p) => p.message.slice(0, 200)).join('\n'));
    assert.match(r.problems[1]!.message, /^many\.yaml: document 3: a line of \d+ bytes is over the 1048576-byte limit \(document skipped\)$/);
    assert.match(r.problems[2]!.message, /^many\.yaml: document 4: Service default\/folded: metadata\.annotations\.x is longer than 1048576 characters \(object skipped\)$/);
    assert.match(r.problems[0]!.message, /document 2: .*[Aa]lias/);
    assert.ok(r.problems.every((p) => p.message.length < 400), 'problems quote no huge value');
    process.stderr.write(`# bounded parse of a 53 MB file: ${ms.toFixed(0)} ms\n`);
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

  it('reads a directory of files (ignoring other extensions, and other kinds with one line each), then emits synced', async () => {
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
      assert.deepEqual(r.errors.map((e) => e.err.message), [`${join(dir, 'b.json')}: ConfigMap default/x is not a kind kube-xdp watches (Service, EndpointSlice, ServiceCIDR): ignored`]);
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

  it('a file over the size limit is not read: reported once, its previous objects kept', async () => {
    const dir = await mkdtemp(join(root, 'cap-'));
    const file = join(dir, 'web.yaml');
    await writeFile(file, svcYaml('web'));
    const r = recordingSink();
    const src = new FileSource(dir, { pollIntervalMs: 60_000 });
    await src.start(r.sink);
    try {
      const n = r.events.length;
      await writeFile(join(dir, '.big'), `${svcYaml('web', 81)}# ${'x'.repeat(FILE_LIMITS.maxFileBytes)}\n`);
      await rename(join(dir, '.big'), file); // whole, as an editor or a ConfigMap update replaces it
      await r.until(() => r.errors.length > 0, 'the size report');
      assert.match(r.errors[0]!.err.message, new RegExp(`web\\.yaml: \\d+ bytes is over the ${FILE_LIMITS.maxFileBytes}-byte file limit$`));
      assert.match(r.errors[0]!.context, /\(keeping previous content\)$/);
      assert.equal(r.events.length, n);
      assert.deepEqual(names(r.tracker), ['default/web:http=80:']);
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

describe('bad input at scale: 1,000 Services of which 100 are malformed', () => {
  const BULK = fileURLToPath(new URL('./fixtures/bulk-source.js', import.meta.url));
  const svcDoc = (name: string, o: { ip?: string; port?: number } = {}) =>
    `apiVersion: v1\nkind: Service\nmetadata:\n  name: ${name}\n  namespace: default\nspec:\n  clusterIP: ${o.ip ?? '10.96.1.1'}\n  ports:\n  - name: http\n    port: ${o.port ?? 80}\n    protocol: TCP\n`;
  // [label, how many, document text for item i]; every one must be reported, once.
  const bad: [string, number, (i: number) => string][] = [
    ['bad address', 20, (i) => svcDoc(`bad-ip-${i}`, { ip: `10.96.${300 + i}.1` })],
    ['bad port', 19, (i) => svcDoc(`bad-port-${i}`, { port: 70000 + i })],
    ['duplicate name', 10, (i) => svcDoc(`ok-${i}`, { port: 81 })],
    ['oversized name', 15, (i) => svcDoc(`n${i}${'x'.repeat(i < 10 ? 62 + i : 1 << 20)}`)],
    ['alias bomb', 10, () => ['kind: Service', 'a: &a ["x","x","x","x","x","x","x","x","x","x"]', ...Array.from({ length: 9 }, (_, k) => `${String.fromCharCode(98 + k)}: &${String.fromCharCode(98 + k)} [${Array(10).fill(`*${String.fromCharCode(97 + k)}`).join(',')}]`), ''].join('\n')],
    ['wrong kind', 10, (i) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-${i}\ndata: {}\n`],
    ['syntax error', 10, (i) => `kind: Service\nmetadata:\n  name: syn-${i}\n   bad: [\n`],
    ['not an object', 5, (i) => `just a string ${i}\n`],
    ['50 MB object', 1, () => `apiVersion: v1\nkind: Service\nmetadata:\n  name: huge\n  annotations:\n    x: "${'y'.repeat(50 << 20)}"\n`],
  ];
  const docs = (): string[] => {
    const out = Array.from({ length: 900 }, (_, i) => svcDoc(`ok-${i}`));
    for (const [, n, make] of bad) for (let i = 0; i < n; i++) out.splice((out.length * (i + 1)) % out.length, 0, make(i));
    return out;
  };

  let root: string;
  before(async () => { root = await mkdtemp(join(tmpdir(), 'kx-bulk-')); });
  after(async () => { await rm(root, { recursive: true, force: true }); });

  const run = (path: string) => {
    const r = spawnSync(process.execPath, [BULK, path], { encoding: 'utf8', maxBuffer: 64 << 20 });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as { names: string[]; errors: string[]; invalid: string[]; maxRssMb: number };
  };

  for (const layout of ['one multi-document file', 'a directory of files'] as const) {
    it(`${layout}: the 900 valid Services programmed, each problem reported once with its name or document, RSS bounded`, async (t) => {
      const dir = await mkdtemp(join(root, 'bulk-'));
      const all = docs();
      assert.equal(all.length, 1000);
      if (layout === 'one multi-document file') await writeFile(join(dir, 'all.yaml'), all.join('---\n'));
      else for (let i = 0; i < all.length; i += 10) await writeFile(join(dir, `part-${String(i).padStart(4, '0')}.yaml`), all.slice(i, i + 10).join('---\n'));
      const r = run(dir);
      t.diagnostic(`${r.names.length} Services programmed; ${r.errors.length} source problems, ${r.invalid.length} invalid objects; peak RSS ${r.maxRssMb} MB`);
      assert.deepEqual(r.names.sort(), Array.from({ length: 900 }, (_, i) => `ok-${i}`).sort());
      const said = [...r.errors, ...r.invalid];
      const once = (re: RegExp, n: number, what: string) => assert.equal(said.filter((m) => re.test(m)).length, n, `${what}: ${said.filter((m) => re.test(m)).slice(0, 3).join(' || ')}`);
      for (let i = 0; i < 20; i++) once(new RegExp(`/bad-ip-${i}: spec\\.clusterIP`), 1, `bad address ${i}`);
      for (let i = 0; i < 19; i++) once(new RegExp(`/bad-port-${i}: spec\\.ports\\[0\\]\\.port`), 1, `bad port ${i}`);
      once(/Service\/default\/ok-\d+ is also defined/, 10, 'duplicates');
      once(/metadata\.name: "n\d+x+.*is not a DNS-1035 label/, 10, 'names over 63 characters');
      once(/[Aa]lias/, 10, 'alias bombs');
      once(/ConfigMap default\/cm-\d+ is not a kind kube-xdp watches/, 10, 'wrong kinds');
      once(/document \d+: .*(line \d+|[Ii]mplicit|[Nn]ested|indent)/i, 10, 'syntax errors');
      once(/is not an object/, 5, 'non-objects');
      once(/line of \d+ bytes is over/, 6, 'the 50 MB object and the 1 MB names (a line that long skips its document unparsed)');
      assert.ok(said.every((m) => m.length < 1000), `a problem line of ${Math.max(...said.map((m) => m.length))} chars`);
      // Measured before the bounds: 1.8 GiB peak and 0 Services programmed for the single file.
      assert.ok(r.maxRssMb < 600, `peak RSS ${r.maxRssMb} MB`);
    });
  }
});
