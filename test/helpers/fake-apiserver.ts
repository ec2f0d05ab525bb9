// A fake Kubernetes API server for tests: real list and watch over HTTP with real Kubernetes
// JSON for Services, EndpointSlices, Nodes and ServiceCIDRs, plus the faults a watcher has to survive
// (cut streams, 410 Expired, refused connections, 5xx, stalls, slow answers).
// Only node built-ins; @kubernetes/client-node's ListWatch works against it.
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type FakeKind = 'Service' | 'EndpointSlice' | 'Node' | 'ServiceCIDR';
export interface FakeRequest { method: string; path: string; query: Record<string, string>; watch: boolean; at: number }

type Json = Record<string, unknown>;
type Filter = (obj: Json) => boolean;

interface KindInfo { apiVersion: string; prefix: string; plural: string; namespaced: boolean }
const KINDS: Record<FakeKind, KindInfo> = {
  Service: { apiVersion: 'v1', prefix: '/api/v1/', plural: 'services', namespaced: true },
  EndpointSlice: { apiVersion: 'discovery.k8s.io/v1', prefix: '/apis/discovery.k8s.io/v1/', plural: 'endpointslices', namespaced: true },
  Node: { apiVersion: 'v1', prefix: '/api/v1/', plural: 'nodes', namespaced: false },
  ServiceCIDR: { apiVersion: 'networking.k8s.io/v1', prefix: '/apis/networking.k8s.io/v1/', plural: 'servicecidrs', namespaced: false },
};

/** One stored change, kept for replay. `obj` is absent for a delete, `prev` for a create. */
interface Change { rv: number; kind: FakeKind; obj?: Json; prev?: Json }

/** A watch request. Only `streaming` watches get events and bookmarks (stalled ones stay silent). */
interface Watcher { kind: FakeKind; match: Filter; res: http.ServerResponse; streaming: boolean; timers: NodeJS.Timeout[] }

interface Route { kind: FakeKind; namespace?: string; name?: string }

/** A 4xx/5xx answer with its Status body; thrown by parsers, caught by the request handler. */
class StatusError extends Error {
  constructor(readonly code: number, readonly reason: string, message: string, readonly details?: Json) {
    super(message);
  }
}

const REASONS: Record<number, string> = {
  400: 'BadRequest', 401: 'Unauthorized', 403: 'Forbidden', 404: 'NotFound', 405: 'MethodNotAllowed',
  409: 'Conflict', 410: 'Expired', 429: 'TooManyRequests', 500: 'InternalError', 503: 'ServiceUnavailable', 504: 'Timeout',
};

export class FakeApiServer {
  /** Every request received, in order (recorded on arrival, before any delay or fault). */
  readonly requests: FakeRequest[] = [];
  /** Added before answering every request. */
  delayMs = 0;

  private readonly host: string;
  private readonly bookmarkIntervalMs: number;
  private readonly server: http.Server;
  /** Optional second listener on a unix socket: reachable from other network namespaces. */
  private readonly unixServer: http.Server | null;
  private readonly socketPath: string | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly watchers = new Set<Watcher>();
  private readonly objects = new Map<FakeKind, Map<string, Json>>(
    (Object.keys(KINDS) as FakeKind[]).map((k) => [k, new Map()]),
  );
  private rv = 0;
  /** History holds every change after `floor`; a watch from an older RV gets 410. */
  private history: Change[] = [];
  private floor = 0;
  /** Consistent snapshots behind continue tokens, as a real list's continue reads at its first page's RV. */
  private readonly snapshots = new Map<number, { rv: number; items: Json[] }>();
  private nextSnapshot = 1;
  private port = 0;
  private failure: { left: number; status: number; match: (r: FakeRequest) => boolean } | undefined;
  private stallMode: 'headers' | 'body' | undefined;

  constructor(opts: { host?: string; bookmarkIntervalMs?: number; socketPath?: string } = {}) {
    this.host = opts.host ?? '127.0.0.1';
    this.bookmarkIntervalMs = opts.bookmarkIntervalMs ?? 1000;
    this.socketPath = opts.socketPath;
    const make = () => {
      const server = http.createServer((req, res) => this.onRequest(req, res));
      server.on('connection', (s) => {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
      });
      return server;
    };
    this.server = make();
    this.unixServer = opts.socketPath ? make() : null;
  }

  // ---- lifecycle -----------------------------------------------------------------------

  /** Listens (port 0 = any free port) and returns the base URL. */
  async start(port = 0): Promise<string> {
    await this.listen(port);
    this.port = (this.server.address() as AddressInfo).port;
    return this.url;
  }

  get url(): string {
    if (!this.port) throw new Error('FakeApiServer: not started');
    return `http://${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.port}`;
  }

  /** Closes the listener and destroys every open socket (watches included). */
  async stop(): Promise<void> {
    await this.goDown();
    this.snapshots.clear();
  }

  // ---- objects -------------------------------------------------------------------------

  get resourceVersion(): number {
    return this.rv;
  }

  /** Creates or updates an object, as the API server would store it, and tells the watches. */
  put(input: Record<string, unknown>): Record<string, unknown> {
    const kind = input.kind;
    if (!isKind(kind)) throw new Error(`FakeApiServer.put: kind must be one of ${Object.keys(KINDS).join(', ')}, got ${String(kind)}`);
    const obj = clone(input);
    const meta: Json = { ...(obj.metadata as Json | undefined) };
    if (typeof meta.name !== 'string' || !meta.name) throw new Error('FakeApiServer.put: metadata.name is required');
    if (KINDS[kind].namespaced) meta.namespace = typeof meta.namespace === 'string' && meta.namespace ? meta.namespace : 'default';
    else delete meta.namespace;
    const key = keyOf(meta.namespace as string | undefined, meta.name);
    const prev = this.objects.get(kind)!.get(key);
    const prevMeta = prev?.metadata as Json | undefined;
    const now = timestamp();
    this.rv++;
    meta.uid = prevMeta?.uid ?? (typeof meta.uid === 'string' && meta.uid ? meta.uid : randomUUID());
    meta.creationTimestamp = prevMeta?.creationTimestamp ?? now;
    meta.resourceVersion = String(this.rv);
    // A real server returns managedFields on every object; consumers are expected to drop them.
    meta.managedFields = [{
      manager: 'fake-apiserver', operation: 'Update', apiVersion: KINDS[kind].apiVersion, time: now,
      fieldsType: 'FieldsV1', fieldsV1: { 'f:metadata': {} },
    }];
    const stored: Json = { ...obj, kind, apiVersion: KINDS[kind].apiVersion, metadata: meta };
    this.objects.get(kind)!.set(key, stored);
    this.record({ rv: this.rv, kind, obj: stored, ...(prev ? { prev } : {}) });
    return clone(stored);
  }

  /** Deletes an object; watches get DELETED with its last content at the new resourceVersion. */
  delete(kind: FakeKind, namespace: string, name: string): boolean {
    const key = keyOf(KINDS[kind].namespaced ? namespace : undefined, name);
    const prev = this.objects.get(kind)!.get(key);
    if (!prev) return false;
    this.objects.get(kind)!.delete(key);
    this.rv++;
    this.record({ rv: this.rv, kind, prev });
    return true;
  }

  get(kind: FakeKind, namespace: string, name: string): Record<string, unknown> | undefined {
    const obj = this.objects.get(kind)!.get(keyOf(KINDS[kind].namespaced ? namespace : undefined, name));
    return obj && clone(obj);
  }

  // ---- faults --------------------------------------------------------------------------

  /** Destroys every watch socket (stalled ones too) mid-stream, with no terminating chunk. */
  cutWatches(): number {
    const n = this.watchers.size;
    for (const w of [...this.watchers]) this.closeWatch(w, true);
    return n;
  }

  /** Forgets history: a later watch from an older resourceVersion (or a continue token) gets 410. */
  compact(): void {
    this.history = [];
    this.floor = this.rv;
    this.snapshots.clear();
  }

  /** Closes the listener and every socket: new connections are refused until comeUp(). */
  async goDown(): Promise<void> {
    for (const w of [...this.watchers]) this.closeWatch(w, true);
    const closed = [this.server, this.unixServer].map((server) => server?.listening
      ? new Promise<void>((resolve) => server.close(() => resolve()))
      : Promise.resolve());
    for (const s of this.sockets) s.destroy();
    await Promise.all(closed);
  }

  /** Listens again on the same port. */
  async comeUp(): Promise<void> {
    if (!this.port) throw new Error('FakeApiServer: comeUp before start');
    if (!this.server.listening || (this.unixServer && !this.unixServer.listening)) await this.listen(this.port);
  }

  /** The next n requests for which `match` holds (all, by default) get `status` and a Status body. */
  failNext(n: number, status = 500, match: (r: FakeRequest) => boolean = () => true): void {
    this.failure = n > 0 ? { left: n, status, match } : undefined;
  }

  /** While on, new watches (and, for 'headers', all requests) are accepted and never answered:
   *  'headers' sends nothing at all, 'body' sends 200 and headers but no events or bookmarks. */
  stall(on: boolean, what: 'headers' | 'body' = 'headers'): void {
    this.stallMode = on ? what : undefined;
  }

  /** Watches whose 200 response is open (body-stalled ones included). */
  openWatches(): number {
    let n = 0;
    for (const w of this.watchers) if (w.res.headersSent) n++;
    return n;
  }

  // ---- HTTP ----------------------------------------------------------------------------

  private async listen(port: number): Promise<void> {
    if (this.unixServer && this.socketPath && !this.unixServer.listening) {
      rmSync(this.socketPath, { force: true });
      await new Promise<void>((resolve, reject) => {
        this.unixServer!.once('error', reject);
        this.unixServer!.listen(this.socketPath, () => resolve());
      });
    }
    if (this.server.listening) return;
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.server.once('error', onError);
      this.server.listen(port, this.host, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    const query = Object.fromEntries(url.searchParams);
    const r: FakeRequest = {
      method: req.method ?? 'GET', path: url.pathname, query,
      watch: query.watch === 'true' || query.watch === '1', at: Date.now(),
    };
    this.requests.push(r);
    // Faults are decided on arrival, so a later failNext()/stall() never changes a request in flight.
    const fail = this.failure && this.failure.match(r) ? this.failure.status : undefined;
    if (fail !== undefined && --this.failure!.left <= 0) this.failure = undefined;
    const stalled = this.stallMode;
    const answer = (): void => {
      if (res.destroyed) return;
      try {
        if (fail !== undefined) {
          throw new StatusError(fail, REASONS[fail] ?? (fail >= 500 ? 'InternalError' : 'BadRequest'), `fake failure (HTTP ${fail})`);
        }
        this.answer(r, res, stalled);
      } catch (err) {
        if (!(err instanceof StatusError)) throw err;
        sendJson(res, err.code, status(err.code, err.reason, err.message, err.details));
      }
    };
    if (this.delayMs > 0) {
      const t = setTimeout(answer, this.delayMs).unref();
      res.on('close', () => clearTimeout(t));
    } else {
      answer();
    }
  }

  private answer(r: FakeRequest, res: http.ServerResponse, stalled: 'headers' | 'body' | undefined): void {
    if (stalled === 'headers') {
      // Accept and say nothing; a watch is still tracked so cutWatches() can drop it.
      if (r.watch) this.addWatcher({ kind: 'Service', match: () => false, res, streaming: false, timers: [] });
      return;
    }
    if (r.method !== 'GET') throw new StatusError(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`);
    const route = parseRoute(r.path);
    if (!route) throw new StatusError(404, 'NotFound', 'the server could not find the requested resource');
    const match = this.filterFor(route, r.query);
    if (r.watch) return this.watch(route.kind, match, r.query, res, stalled === 'body');
    if (route.name !== undefined) {
      const obj = this.objects.get(route.kind)!.get(keyOf(route.namespace, route.name));
      if (!obj) {
        const plural = KINDS[route.kind].plural;
        throw new StatusError(404, 'NotFound', `${plural} "${route.name}" not found`, { name: route.name, kind: plural });
      }
      return sendJson(res, 200, obj);
    }
    sendJson(res, 200, this.list(route.kind, match, r.query));
  }

  private filterFor(route: Route, query: Record<string, string>): Filter {
    const labels = parseLabelSelector(query.labelSelector ?? '');
    const fields = parseFieldSelector(query.fieldSelector ?? '');
    return (obj) => {
      const meta = obj.metadata as Json;
      return (route.namespace === undefined || meta.namespace === route.namespace)
        && (route.name === undefined || meta.name === route.name)
        && labels(obj) && fields(obj);
    };
  }

  /** Current matching objects, in etcd key order. */
  private matching(kind: FakeKind, match: Filter): Json[] {
    return [...this.objects.get(kind)!.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, obj]) => obj)
      .filter(match);
  }

  private list(kind: FakeKind, match: Filter, query: Record<string, string>): Json {
    let rv = this.rv;
    let items: Json[];
    let offset = 0;
    if (query.continue) {
      const tok = decodeContinue(query.continue);
      const snap = this.snapshots.get(tok.id);
      if (!snap) throw new StatusError(410, 'Expired', 'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.');
      ({ rv, items } = snap);
      offset = tok.offset;
    } else {
      items = this.matching(kind, match);
    }
    const limit = query.limit ? Number(query.limit) : 0;
    if (!Number.isInteger(limit) || limit < 0) throw new StatusError(400, 'BadRequest', `invalid limit: ${query.limit}`);
    const page = limit > 0 ? items.slice(offset, offset + limit) : items.slice(offset);
    const remaining = items.length - offset - page.length;
    const metadata: Json = { resourceVersion: String(rv) };
    if (remaining > 0) {
      let id = query.continue ? decodeContinue(query.continue).id : 0;
      if (!id) {
        id = this.nextSnapshot++;
        this.snapshots.set(id, { rv, items });
      }
      metadata.continue = Buffer.from(JSON.stringify({ id, offset: offset + page.length })).toString('base64url');
      metadata.remainingItemCount = remaining;
    }
    return {
      kind: `${kind}List`, apiVersion: KINDS[kind].apiVersion, metadata,
      // Like the real server for built-in types, list items carry no kind/apiVersion.
      items: page.map(({ kind: _k, apiVersion: _a, ...rest }) => rest),
    };
  }

  private watch(kind: FakeKind, match: Filter, query: Record<string, string>, res: http.ServerResponse, stallBody: boolean): void {
    const rvParam = query.resourceVersion ?? '';
    const from = rvParam === '' ? 0 : Number(rvParam);
    if (!Number.isInteger(from) || from < 0) throw new StatusError(400, 'BadRequest', `invalid resource version: ${rvParam}`);
    const timeoutSec = query.timeoutSeconds ? Number(query.timeoutSeconds) : 0;
    if (!(timeoutSec >= 0)) throw new StatusError(400, 'BadRequest', `invalid timeoutSeconds: ${query.timeoutSeconds}`);
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked', 'Cache-Control': 'no-cache, private' });
    res.flushHeaders();
    if (stallBody) {
      this.addWatcher({ kind, match, res, streaming: false, timers: [] });
      return;
    }
    if (from !== 0 && from < this.floor) {
      // What the real watch cache says for a compacted RV: a 200 stream with one 410 ERROR event.
      writeEvent(res, 'ERROR', status(410, 'Expired', `too old resource version: ${from} (${this.floor})`));
      res.end();
      return;
    }
    const w: Watcher = { kind, match, res, streaming: true, timers: [] };
    if (from === 0) {
      // No RV (or "0"): synthetic ADDED for the current state, then live events.
      for (const obj of this.matching(kind, match)) writeEvent(res, 'ADDED', obj);
    } else {
      for (const ch of this.history) if (ch.kind === kind && ch.rv > from) send(w, ch);
    }
    if (query.allowWatchBookmarks === 'true') {
      const info = KINDS[kind];
      w.timers.push(setInterval(() => writeEvent(res, 'BOOKMARK', {
        kind, apiVersion: info.apiVersion, metadata: { resourceVersion: String(this.rv) },
      }), this.bookmarkIntervalMs).unref());
    }
    if (timeoutSec > 0) w.timers.push(setTimeout(() => this.closeWatch(w, false), timeoutSec * 1000).unref());
    this.addWatcher(w);
  }

  private addWatcher(w: Watcher): void {
    this.watchers.add(w);
    w.res.on('close', () => this.closeWatch(w, false));
  }

  /** Ends a watch: cleanly (terminating chunk) or abruptly (socket destroyed). */
  private closeWatch(w: Watcher, abrupt: boolean): void {
    if (!this.watchers.delete(w)) return;
    for (const t of w.timers) clearTimeout(t);
    if (abrupt) w.res.socket?.destroy();
    else if (!w.res.writableEnded) w.res.end();
  }

  private record(ch: Change): void {
    this.history.push(ch);
    for (const w of this.watchers) if (w.streaming && w.kind === ch.kind) send(w, ch);
  }
}

// ---- watch events ----------------------------------------------------------------------

/** Sends a change as the watch cache would for this watcher's filter: an object that starts
 *  matching is ADDED, one that stops matching (or is deleted) is DELETED with its previous
 *  content at the change's resourceVersion. */
function send(w: Watcher, ch: Change): void {
  const now = ch.obj !== undefined && w.match(ch.obj);
  const before = ch.prev !== undefined && w.match(ch.prev);
  if (now) writeEvent(w.res, before ? 'MODIFIED' : 'ADDED', ch.obj!);
  else if (before) {
    const meta = { ...(ch.prev!.metadata as Json), resourceVersion: String(ch.rv) };
    writeEvent(w.res, 'DELETED', { ...ch.prev!, metadata: meta });
  }
}

/** One event per line; each write goes out as its own chunk, at once. */
function writeEvent(res: http.ServerResponse, type: string, object: Json): void {
  if (!res.writableEnded && !res.destroyed) res.write(`${JSON.stringify({ type, object })}\n`);
}

// ---- routes and selectors --------------------------------------------------------------

function parseRoute(path: string): Route | undefined {
  for (const kind of Object.keys(KINDS) as FakeKind[]) {
    const { prefix, plural, namespaced } = KINDS[kind];
    if (!path.startsWith(prefix)) continue;
    const p = path.slice(prefix.length).split('/').map(decodeURIComponent);
    if (p.length === 1 && p[0] === plural) return { kind };
    if (!namespaced && p.length === 2 && p[0] === plural && p[1]) return { kind, name: p[1] };
    if (namespaced && p[0] === 'namespaces' && p[1] && p[2] === plural) {
      if (p.length === 3) return { kind, namespace: p[1] };
      if (p.length === 4 && p[3]) return { kind, namespace: p[1], name: p[3] };
    }
  }
  return undefined;
}

const KEY = String.raw`(?:[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?`;
const VALUE = String.raw`(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?`;
const EXISTS = new RegExp(`^(!?)\\s*(${KEY})$`);
const COMPARE = new RegExp(`^(${KEY})\\s*(==|=|!=)\\s*(${VALUE})$`);

/** Equality-based label selectors: `k`, `!k`, `k=v`, `k==v`, `k!=v` (set-based ones are a 400). */
function parseLabelSelector(sel: string): Filter {
  const terms = selectorTerms(sel).map((term): Filter => {
    const labelOf = (obj: Json, k: string): string | undefined =>
      ((obj.metadata as Json).labels as Record<string, string> | undefined)?.[k];
    let m = EXISTS.exec(term);
    if (m) {
      const [, not, k] = m as unknown as [string, string, string];
      return (obj) => (labelOf(obj, k) !== undefined) !== (not === '!');
    }
    m = COMPARE.exec(term);
    if (m) {
      const [, k, op, v] = m as unknown as [string, string, string, string];
      return op === '!=' ? (obj) => labelOf(obj, k) !== v : (obj) => labelOf(obj, k) === v;
    }
    throw new StatusError(400, 'BadRequest', `unable to parse requirement: invalid label selector term "${term}"`);
  });
  return (obj) => terms.every((t) => t(obj));
}

/** Field selectors on metadata.name and metadata.namespace, with =, == and !=. */
function parseFieldSelector(sel: string): Filter {
  const terms = selectorTerms(sel).map((term): Filter => {
    const m = /^([A-Za-z.]+)\s*(==|=|!=)\s*(.*)$/.exec(term);
    if (!m) throw new StatusError(400, 'BadRequest', `invalid field selector term "${term}"`);
    const [, field, op, v] = m as unknown as [string, string, string, string];
    if (field !== 'metadata.name' && field !== 'metadata.namespace') {
      throw new StatusError(400, 'BadRequest', `field label not supported: ${field}`);
    }
    const key = field === 'metadata.name' ? 'name' : 'namespace';
    const get = (obj: Json): string => ((obj.metadata as Json)[key] as string | undefined) ?? '';
    return op === '!=' ? (obj) => get(obj) !== v : (obj) => get(obj) === v;
  });
  return (obj) => terms.every((t) => t(obj));
}

function selectorTerms(sel: string): string[] {
  if (sel.trim() === '') return [];
  return sel.split(',').map((t) => t.trim());
}

// ---- small helpers ---------------------------------------------------------------------

function isKind(k: unknown): k is FakeKind {
  return typeof k === 'string' && Object.hasOwn(KINDS, k);
}

function keyOf(namespace: string | undefined, name: string): string {
  return namespace === undefined ? name : `${namespace}/${name}`;
}

/** A JSON round trip: what a real server would have stored (undefined dropped, no sharing). */
function clone(obj: Json): Json {
  return JSON.parse(JSON.stringify(obj)) as Json;
}

/** RFC 3339 at second precision, as Kubernetes writes metadata timestamps. */
function timestamp(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function decodeContinue(token: string): { id: number; offset: number } {
  try {
    const t = JSON.parse(Buffer.from(token, 'base64url').toString()) as { id?: unknown; offset?: unknown };
    if (Number.isInteger(t.id) && Number.isInteger(t.offset)) return { id: t.id as number, offset: t.offset as number };
  } catch { /* fall through */ }
  throw new StatusError(400, 'BadRequest', 'continue key is not valid');
}

function status(code: number, reason: string, message: string, details?: Json): Json {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code };
}

function sendJson(res: http.ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}
