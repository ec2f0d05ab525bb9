// The fake API server speaks list/watch the way kube-apiserver does, checked with raw HTTP
// and with @kubernetes/client-node's own ListWatch and Watch.
import assert from 'node:assert/strict';
import http from 'node:http';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { CoreV1Api, KubeConfig, ListWatch, Watch, type V1Service } from '@kubernetes/client-node';
import { FakeApiServer } from '../helpers/fake-apiserver.js';

type Json = Record<string, any>;

function svc(namespace: string, name: string, labels: Record<string, string> = {}, port = 80): Json {
  return { kind: 'Service', metadata: { namespace, name, labels }, spec: { clusterIP: '10.96.0.10', ports: [{ port }] } };
}

function kubeConfig(url: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: url, skipTLSVerify: true }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

async function getJson(url: string): Promise<{ status: number; body: Json }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as Json };
}

async function until(cond: () => boolean, what: string, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A raw watch stream: every event line parsed, and whether/how the stream ended. */
interface RawWatch { events: Json[]; headers: http.IncomingHttpHeaders; ended: Promise<'end' | 'error'>; close(): void }
function rawWatch(url: string): Promise<RawWatch> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, (res) => {
      const events: Json[] = [];
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        buf += d;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          events.push(JSON.parse(buf.slice(0, i)) as Json);
          buf = buf.slice(i + 1);
        }
      });
      const ended = new Promise<'end' | 'error'>((r) => {
        res.on('end', () => r('end'));
        res.on('error', () => r('error'));
        res.on('aborted', () => r('error'));
      });
      assert.equal(res.statusCode, 200);
      resolve({ events, headers: res.headers, ended, close: () => req.destroy() });
    });
    req.on('error', reject);
  });
}

describe('FakeApiServer', () => {
  let server: FakeApiServer;
  let url: string;
  beforeEach(async () => {
    server = new FakeApiServer({ bookmarkIntervalMs: 50 });
    url = await server.start();
  });
  afterEach(async () => {
    await server.stop();
  });

  describe('objects and lists', () => {
    it('put stores what a real server would: rv, stable uid, creationTimestamp, managedFields, apiVersion', () => {
      const a = server.put(svc('default', 'web')) as Json;
      assert.equal(a.apiVersion, 'v1');
      assert.equal(a.metadata.resourceVersion, '1');
      assert.match(a.metadata.uid, /^[0-9a-f-]{36}$/);
      assert.match(a.metadata.creationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      assert.ok(Array.isArray(a.metadata.managedFields) && a.metadata.managedFields.length > 0);
      const b = server.put(svc('default', 'web', {}, 8080)) as Json;
      assert.equal(b.metadata.resourceVersion, '2');
      assert.equal(b.metadata.uid, a.metadata.uid);
      assert.equal(b.metadata.creationTimestamp, a.metadata.creationTimestamp);
      assert.equal((server.get('Service', 'default', 'web') as Json).spec.ports[0].port, 8080);
      const node = server.put({ kind: 'Node', metadata: { name: 'n1', namespace: 'ignored' } }) as Json;
      assert.equal(node.metadata.namespace, undefined);
      assert.equal((server.put({ kind: 'EndpointSlice', metadata: { name: 's' } }) as Json).apiVersion, 'discovery.k8s.io/v1');
      assert.throws(() => server.put({ metadata: { name: 'x' } }), /kind/);
      assert.equal(server.resourceVersion, 4);
      assert.equal(server.delete('Service', 'default', 'web'), true);
      assert.equal(server.delete('Service', 'default', 'web'), false);
      assert.equal(server.get('Service', 'default', 'web'), undefined);
      assert.equal(server.resourceVersion, 5);
      // The returned copy is not the stored object.
      (node.metadata as Json).name = 'changed';
      assert.ok(server.get('Node', '', 'n1'));
    });

    it('lists like kube-apiserver: typed List, RV, items without kind/apiVersion, sorted', async () => {
      server.put(svc('kube-system', 'dns'));
      server.put(svc('default', 'web'));
      server.put(svc('default', 'api'));
      server.put({ kind: 'EndpointSlice', metadata: { namespace: 'default', name: 'web-1' }, addressType: 'IPv4', endpoints: [] });
      server.put({ kind: 'Node', metadata: { name: 'n1' } });

      const { status, body } = await getJson(`${url}/api/v1/services`);
      assert.equal(status, 200);
      assert.equal(body.kind, 'ServiceList');
      assert.equal(body.apiVersion, 'v1');
      assert.equal(body.metadata.resourceVersion, '5');
      assert.deepEqual(body.items.map((i: Json) => `${i.metadata.namespace}/${i.metadata.name}`), ['default/api', 'default/web', 'kube-system/dns']);
      for (const item of body.items) {
        assert.equal(item.kind, undefined);
        assert.equal(item.apiVersion, undefined);
        assert.ok(item.metadata.uid && item.metadata.managedFields);
      }
      const ns = await getJson(`${url}/api/v1/namespaces/kube-system/services`);
      assert.deepEqual(ns.body.items.map((i: Json) => i.metadata.name), ['dns']);

      const slices = await getJson(`${url}/apis/discovery.k8s.io/v1/endpointslices`);
      assert.equal(slices.body.kind, 'EndpointSliceList');
      assert.equal(slices.body.apiVersion, 'discovery.k8s.io/v1');
      assert.equal(slices.body.items.length, 1);
      assert.equal((await getJson(`${url}/apis/discovery.k8s.io/v1/namespaces/other/endpointslices`)).body.items.length, 0);
      assert.equal((await getJson(`${url}/api/v1/nodes`)).body.kind, 'NodeList');

      // Single gets carry kind; absent objects and unknown paths are 404 Status; writes are 405.
      const one = await getJson(`${url}/api/v1/nodes/n1`);
      assert.equal(one.body.kind, 'Node');
      const web = await getJson(`${url}/api/v1/namespaces/default/services/web`);
      assert.equal(web.body.metadata.name, 'web');
      const missing = await getJson(`${url}/api/v1/namespaces/default/services/nope`);
      assert.equal(missing.status, 404);
      assert.deepEqual([missing.body.kind, missing.body.reason, missing.body.code], ['Status', 'NotFound', 404]);
      assert.equal((await getJson(`${url}/api/v1/pods`)).status, 404);
      assert.equal((await getJson(`${url}/api/v1/namespaces/default/nodes`)).status, 404);
      const post = await fetch(`${url}/api/v1/services`, { method: 'POST', body: '{}' });
      assert.equal(post.status, 405);
      assert.equal(((await post.json()) as Json).reason, 'MethodNotAllowed');
    });

    it('paginates with limit/continue over a consistent snapshot', async () => {
      for (const n of ['a', 'b', 'c', 'd', 'e']) server.put(svc('default', n));
      const names: string[] = [];
      let token: string | undefined;
      let pages = 0;
      do {
        const q = `limit=2${token ? `&continue=${encodeURIComponent(token)}` : ''}`;
        const { body } = await getJson(`${url}/api/v1/services?${q}`);
        assert.equal(body.metadata.resourceVersion, '5', 'every page reads at the first page RV');
        names.push(...body.items.map((i: Json) => i.metadata.name));
        token = body.metadata.continue;
        if (token) assert.equal(body.metadata.remainingItemCount, 5 - names.length);
        if (pages++ === 0) {
          server.put(svc('default', 'f')); // after the first page: not in this list
          server.delete('Service', 'default', 'e');
        }
      } while (token);
      assert.equal(pages, 3);
      assert.deepEqual(names, ['a', 'b', 'c', 'd', 'e']);

      const bad = await getJson(`${url}/api/v1/services?limit=1&continue=garbage`);
      assert.equal(bad.status, 400);
      const first = await getJson(`${url}/api/v1/services?limit=1`);
      server.compact();
      const expired = await getJson(`${url}/api/v1/services?limit=1&continue=${first.body.metadata.continue}`);
      assert.equal(expired.status, 410);
      assert.equal(expired.body.reason, 'Expired');
    });

    it('filters lists by label and field selectors, and rejects bad selectors with 400', async () => {
      server.put(svc('default', 'a', { app: 'web', tier: 'front' }));
      server.put(svc('default', 'b', { app: 'db' }));
      server.put(svc('other', 'c', { 'service.kubernetes.io/headless': '' }));
      const names = async (q: string): Promise<string[]> => {
        const { status, body } = await getJson(`${url}/api/v1/services?${q}`);
        assert.equal(status, 200, q);
        return body.items.map((i: Json) => i.metadata.name);
      };
      const ls = (s: string): string => `labelSelector=${encodeURIComponent(s)}`;
      const fs = (s: string): string => `fieldSelector=${encodeURIComponent(s)}`;
      assert.deepEqual(await names(ls('app')), ['a', 'b']);
      assert.deepEqual(await names(ls('!app')), ['c']);
      assert.deepEqual(await names(ls('app=web')), ['a']);
      assert.deepEqual(await names(ls('app==db')), ['b']);
      assert.deepEqual(await names(ls('app!=web')), ['b', 'c']);
      assert.deepEqual(await names(ls('app, tier=front')), ['a']);
      assert.deepEqual(await names(ls('!service.kubernetes.io/headless,!service.kubernetes.io/service-proxy-name')), ['a', 'b']);
      assert.deepEqual(await names(fs('metadata.name=b')), ['b']);
      assert.deepEqual(await names(fs('metadata.namespace!=default')), ['c']);
      assert.deepEqual(await names(`${fs('metadata.namespace==default')}&${ls('app!=db')}`), ['a']);
      for (const q of [ls('app in (web,db)'), ls('a=b=c'), fs('spec.clusterIP=1.2.3.4'), fs('nonsense')]) {
        const { status, body } = await getJson(`${url}/api/v1/services?${q}`);
        assert.equal(status, 400, q);
        assert.equal(body.reason, 'BadRequest');
      }
    });
  });

  describe('watch over raw HTTP', () => {
    it('sends initial ADDED events, then live events in order, chunked, one JSON per line', async () => {
      server.put(svc('default', 'a'));
      server.put(svc('default', 'b'));
      const w = await rawWatch(`${url}/api/v1/services?watch=true`);
      assert.equal(w.headers['content-type'], 'application/json');
      assert.equal(w.headers['transfer-encoding'], 'chunked');
      await until(() => w.events.length === 2, 'initial events');
      server.put(svc('default', 'a', {}, 81));
      server.put(svc('default', 'c'));
      server.delete('Service', 'default', 'b');
      server.put({ kind: 'Node', metadata: { name: 'n1' } }); // another kind: not on this watch
      await until(() => w.events.length === 5, 'live events');
      assert.deepEqual(w.events.map((e) => `${e.type} ${e.object.metadata.name}`),
        ['ADDED a', 'ADDED b', 'MODIFIED a', 'ADDED c', 'DELETED b']);
      for (const e of w.events) assert.deepEqual([e.object.kind, e.object.apiVersion], ['Service', 'v1']);
      assert.deepEqual(w.events.slice(2).map((e) => e.object.metadata.resourceVersion), ['3', '4', '5']);
      assert.equal(w.events[4]!.object.spec.clusterIP, '10.96.0.10', 'DELETED carries the last object');
      assert.equal(server.openWatches(), 1);
      w.close();
      await until(() => server.openWatches() === 0, 'the server to notice the closed watch');
    });

    it('replays history after a resourceVersion, then goes live', async () => {
      server.put(svc('default', 'a')); // 1
      server.put(svc('default', 'b')); // 2
      server.put(svc('default', 'a', {}, 81)); // 3
      server.delete('Service', 'default', 'b'); // 4
      const w = await rawWatch(`${url}/api/v1/services?watch=1&resourceVersion=2`);
      await until(() => w.events.length === 2, 'replay');
      server.put(svc('default', 'c')); // 5
      await until(() => w.events.length === 3, 'live event');
      assert.deepEqual(w.events.map((e) => `${e.type} ${e.object.metadata.name} ${e.object.metadata.resourceVersion}`),
        ['MODIFIED a 3', 'DELETED b 4', 'ADDED c 5']);
      w.close();
    });

    it('turns selector transitions into ADDED/DELETED, and filters by namespace path', async () => {
      server.put(svc('default', 'a', { app: 'web' }));
      const w = await rawWatch(`${url}/api/v1/namespaces/default/services?watch=true&labelSelector=app%3Dweb`);
      await until(() => w.events.length === 1, 'initial event');
      server.put(svc('default', 'a', { app: 'db' })); // 2: leaves the selector
      server.put(svc('default', 'a', { app: 'db' }, 81)); // 3: still out: nothing
      server.put(svc('other', 'x', { app: 'web' })); // 4: other namespace: nothing
      server.put(svc('default', 'a', { app: 'web' })); // 5: back in
      server.put(svc('default', 'a', { app: 'web' }, 82)); // 6
      await until(() => w.events.length === 4, 'events');
      assert.deepEqual(w.events.map((e) => `${e.type} ${e.object.metadata.resourceVersion} ${e.object.metadata.labels.app}`),
        ['ADDED 1 web', 'DELETED 2 web', 'ADDED 5 web', 'MODIFIED 6 web']);
      w.close();
    });

    it('answers a compacted resourceVersion with a 200 stream holding one 410 ERROR event', async () => {
      server.put(svc('default', 'a'));
      server.put(svc('default', 'a', {}, 81));
      server.compact();
      const w = await rawWatch(`${url}/api/v1/services?watch=true&resourceVersion=1`);
      assert.equal(await w.ended, 'end');
      assert.deepEqual(w.events, [{
        type: 'ERROR',
        object: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'too old resource version: 1 (2)', reason: 'Expired', code: 410 },
      }]);
      // From the compaction point on, watching works.
      const ok = await rawWatch(`${url}/api/v1/services?watch=true&resourceVersion=2`);
      server.put(svc('default', 'b'));
      await until(() => ok.events.length === 1, 'live event');
      assert.equal(ok.events[0]!.type, 'ADDED');
      ok.close();
    });

    it('ends the stream cleanly after timeoutSeconds', async () => {
      const t0 = Date.now();
      const w = await rawWatch(`${url}/api/v1/nodes?watch=true&timeoutSeconds=0.2`);
      assert.equal(await w.ended, 'end');
      assert.ok(Date.now() - t0 >= 150);
      assert.equal(server.openWatches(), 0);
    });

    it('records every request', async () => {
      await fetch(`${url}/api/v1/nodes?limit=3`);
      const w = await rawWatch(`${url}/api/v1/nodes?watch=true&resourceVersion=0`);
      w.close();
      assert.deepEqual(server.requests.map(({ method, path, query, watch }) => ({ method, path, query, watch })), [
        { method: 'GET', path: '/api/v1/nodes', query: { limit: '3' }, watch: false },
        { method: 'GET', path: '/api/v1/nodes', query: { watch: 'true', resourceVersion: '0' }, watch: true },
      ]);
      assert.ok(server.requests.every((r) => typeof r.at === 'number' && r.at <= Date.now()));
    });
  });

  describe('with @kubernetes/client-node', () => {
    function serviceListWatch(kc: KubeConfig): ListWatch<V1Service> {
      const api = kc.makeApiClient(CoreV1Api);
      return new ListWatch<V1Service>('/api/v1/services', new Watch(kc), () => api.listServiceForAllNamespaces(), false);
    }
    const names = (lw: ListWatch<V1Service>): string[] =>
      lw.list().map((s) => `${s.metadata!.namespace}/${s.metadata!.name}@${s.metadata!.resourceVersion}`).sort();

    it('ListWatch lists, then follows live events', async () => {
      server.put(svc('default', 'a'));
      server.put(svc('kube-system', 'dns'));
      const lw = serviceListWatch(kubeConfig(url));
      const seen: string[] = [];
      lw.on('add', (s) => seen.push(`add ${s.metadata!.name}`));
      lw.on('update', (s) => seen.push(`update ${s.metadata!.name}`));
      lw.on('delete', (s) => seen.push(`delete ${s.metadata!.name}`));
      try {
        await lw.start();
        assert.deepEqual(names(lw), ['default/a@1', 'kube-system/dns@2']);
        await until(() => server.openWatches() === 1, 'the watch');
        assert.equal(server.requests.at(-1)!.query.resourceVersion, '2');
        server.put(svc('default', 'a', {}, 81));
        server.put(svc('default', 'b'));
        server.delete('Service', 'kube-system', 'dns');
        await until(() => seen.length === 5, 'events');
        assert.deepEqual(seen, ['add a', 'add dns', 'update a', 'add b', 'delete dns']);
        assert.deepEqual(names(lw), ['default/a@3', 'default/b@4']);
        assert.equal(lw.latestResourceVersion(), '5');
      } finally {
        await lw.stop();
      }
    });

    it('ListWatch relists after a 410 and its cache ends right', async () => {
      server.put(svc('default', 'a'));
      server.put(svc('default', 'b'));
      const lw = serviceListWatch(kubeConfig(url));
      // ListWatch stops on a watch error; restarting on 'error' is the documented pattern.
      let stopped = false;
      lw.on('error', () => setTimeout(() => void (stopped || lw.start()), 10));
      try {
        await lw.start();
        await until(() => server.openWatches() === 1, 'the watch');
        // While the client is cut off, things change and history is compacted.
        assert.equal(server.cutWatches(), 1);
        server.put(svc('default', 'a', {}, 81));
        server.delete('Service', 'default', 'b');
        server.put(svc('default', 'c'));
        server.compact();
        await until(() => names(lw).join() === 'default/a@3,default/c@5' && server.openWatches() === 1, 'the relist');
        const paths = server.requests.map((r) => (r.watch ? `watch rv=${r.query.resourceVersion}` : 'list'));
        assert.deepEqual(paths, ['list', 'watch rv=2', 'watch rv=2', 'list', 'watch rv=5']);
      } finally {
        stopped = true;
        await lw.stop();
      }
    });

    it('Watch receives BOOKMARK events when asked for them', async () => {
      server.put(svc('default', 'a'));
      const events: Array<[string, Json]> = [];
      const req = await new Watch(kubeConfig(url)).watch('/api/v1/services', { allowWatchBookmarks: true, resourceVersion: '1' },
        (type, obj) => events.push([type, obj]), () => {});
      try {
        await until(() => events.some(([t]) => t === 'BOOKMARK'), 'a bookmark');
        const [, obj] = events.find(([t]) => t === 'BOOKMARK')!;
        assert.deepEqual(obj, { kind: 'Service', apiVersion: 'v1', metadata: { resourceVersion: '1' } });
      } finally {
        req.abort();
      }
      // Without allowWatchBookmarks there are none.
      const plain = await rawWatch(`${url}/api/v1/services?watch=true&resourceVersion=1`);
      await new Promise((r) => setTimeout(r, 150));
      assert.deepEqual(plain.events, []);
      plain.close();
    });

    it('cutWatches makes the client\'s done callback fire', async () => {
      let done: unknown = 'not called';
      const req = await new Watch(kubeConfig(url)).watch('/api/v1/nodes', {}, () => {}, (err) => { done = err; });
      try {
        await until(() => server.openWatches() === 1, 'the watch');
        assert.equal(server.cutWatches(), 1);
        await until(() => done !== 'not called', 'done');
        assert.equal(server.openWatches(), 0);
      } finally {
        req.abort();
      }
    });

    it('failNext answers 500 with a Status, then the next request succeeds', async () => {
      server.put(svc('default', 'a'));
      const api = kubeConfig(url).makeApiClient(CoreV1Api);
      server.failNext(1);
      await assert.rejects(api.listServiceForAllNamespaces(), (err: Json) => {
        assert.equal(err.code, 500);
        assert.equal(JSON.parse(err.body).reason, 'InternalError');
        return true;
      });
      assert.equal((await api.listServiceForAllNamespaces()).items.length, 1);

      // Only matching requests are failed, with the given status.
      server.failNext(2, 503, (r) => r.watch);
      assert.equal((await fetch(`${url}/api/v1/services`)).status, 200);
      const w1 = await getJson(`${url}/api/v1/services?watch=true`);
      assert.deepEqual([w1.status, w1.body.kind, w1.body.code, w1.body.reason], [503, 'Status', 503, 'ServiceUnavailable']);
      assert.equal((await fetch(`${url}/api/v1/services?watch=true`)).status, 503);
      const w3 = await rawWatch(`${url}/api/v1/services?watch=true`);
      w3.close();
    });
  });

  describe('faults', () => {
    it('goDown refuses connections; comeUp listens again on the same port', async () => {
      server.put(svc('default', 'a'));
      const w = await rawWatch(`${url}/api/v1/services?watch=true`);
      server.stall(true); // a list in flight is cut too
      const pending = fetch(`${url}/api/v1/services`).then(() => 'answered', (err: Json) => err.name);
      await until(() => server.requests.length === 2, 'the stalled list');
      server.stall(false);
      await server.goDown();
      assert.equal(await w.ended, 'error');
      assert.equal(await pending, 'TypeError');
      await assert.rejects(fetch(`${url}/api/v1/services`), (err: Json) => {
        assert.equal(err.cause?.code, 'ECONNREFUSED');
        return true;
      });
      await server.comeUp();
      assert.equal(server.url, url);
      const { status, body } = await getJson(`${url}/api/v1/services`);
      assert.equal(status, 200);
      assert.equal(body.items.length, 1);
    });

    it("stall('headers') never answers lists or watches; stall(false) affects only new requests", async () => {
      server.stall(true);
      for (const q of ['', '?watch=true']) {
        await assert.rejects(fetch(`${url}/api/v1/services${q}`, { signal: AbortSignal.timeout(300) }), { name: 'TimeoutError' });
      }
      server.stall(false);
      assert.equal((await fetch(`${url}/api/v1/services`)).status, 200);
    });

    it("stall('body') sends 200 and headers, then nothing; cutWatches drops it", async () => {
      server.put(svc('default', 'a'));
      server.stall(true, 'body');
      const w = await rawWatch(`${url}/api/v1/services?watch=true&allowWatchBookmarks=true`);
      server.stall(false);
      server.put(svc('default', 'b'));
      await new Promise((r) => setTimeout(r, 150)); // three bookmark intervals
      assert.deepEqual(w.events, []);
      assert.equal(server.openWatches(), 1);
      assert.equal(server.cutWatches(), 1);
      assert.equal(await w.ended, 'error');
    });

    it('delayMs slows every answer', async () => {
      server.delayMs = 150;
      const t0 = Date.now();
      assert.equal((await fetch(`${url}/api/v1/nodes`)).status, 200);
      assert.ok(Date.now() - t0 >= 140, `took ${Date.now() - t0} ms`);
      server.delayMs = 0;
      const t1 = Date.now();
      await fetch(`${url}/api/v1/nodes`);
      assert.ok(Date.now() - t1 < 140);
    });
  });
});
