// One kind's informer: client-node's ListWatch (list, then watch from the list's
// resourceVersion, relist on 410 Gone) under a supervisor that client-node lacks:
// - any other error stops a ListWatch silently: restart it after a jittered backoff, resuming
//   the watch from the last resourceVersion;
// - a watch that sends nothing (not even a BOOKMARK) for inactivityMs is abandoned and resumed;
// - every relistPeriodMs a fresh ListWatch lists everything again.
// The reflector's own store of trimmed objects is the truth of what was delivered: each list
// is reconciled against it (objects gone are DELETED, unchanged ones produce nothing), so a
// restart or relist never flaps an entry.
import { ADD, DELETE, ERROR, ListWatch, UPDATE, type KubeConfig, type KubernetesListObject, type KubernetesObject, type Watch } from '@kubernetes/client-node';
import { deepEqual } from '../../model/k8s.js';
import { backoffDelay, type BackoffOptions } from './backoff.js';
import { getJson, openWatch, type WatchHandle } from './http.js';
import { trimObject, type WatchedKind } from './trim.js';

type Obj = Record<string, unknown>;

export interface ReflectorOptions {
  readonly kind: WatchedKind;
  /** Collection path, e.g. /api/v1/services. */
  readonly path: string;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  readonly requestTimeoutMs: number;
  readonly inactivityMs: number;
  readonly relistPeriodMs: number;
  readonly backoff: BackoffOptions;
  readonly pageSize?: number;
  readonly random?: () => number;
}

export type ReflectorEvent = { type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: Obj };

export interface ReflectorSink {
  event(e: ReflectorEvent): void;
  /** A complete list was reconciled (the first one makes the kind synced). */
  listed(count: number): void;
  /** The informer failed or went quiet and restarts after `retryInMs`. */
  restarting(reason: string, retryInMs: number): void;
  /** A watch event or list item that could not be used (no metadata). */
  malformed(context: string): void;
}

const keyOf = (o: Obj): string => {
  const m = (o['metadata'] ?? {}) as Obj;
  return `${String(m['namespace'] ?? '')}/${String(m['name'] ?? '')}`;
};
const hasMeta = (o: unknown): o is Obj => typeof o === 'object' && o !== null && typeof (o as Obj)['metadata'] === 'object' && (o as Obj)['metadata'] !== null;

export class Reflector {
  private readonly store = new Map<string, Obj>();
  private lw: ListWatch<KubernetesObject> | null = null;
  /** Bumped on every restart: callbacks of an abandoned ListWatch or watch are ignored. */
  private generation = 0;
  private attempt = 0;
  private stopped = true;
  private retryTimer: NodeJS.Timeout | null = null;
  private inactivityTimer: NodeJS.Timeout | null = null;
  private relistTimer: NodeJS.Timeout | null = null;
  private watchHandle: WatchHandle | null = null;
  private lastResourceVersion = '';

  constructor(private readonly kc: KubeConfig, private readonly opts: ReflectorOptions, private readonly sink: ReflectorSink) {}

  start(): void {
    this.stopped = false;
    this.connect(true);
    this.relistTimer = setInterval(() => this.connect(true), this.opts.relistPeriodMs);
    this.relistTimer.unref();
  }

  stop(): void {
    this.stopped = true;
    this.generation++;
    for (const t of [this.retryTimer, this.inactivityTimer]) if (t) clearTimeout(t);
    if (this.relistTimer) clearInterval(this.relistTimer);
    this.retryTimer = this.inactivityTimer = this.relistTimer = null;
    this.abandon();
  }

  /** Objects currently known (trimmed). */
  objects(): Obj[] {
    return [...this.store.values()];
  }

  private abandon(): void {
    this.watchHandle?.abort();
    this.watchHandle = null;
    void this.lw?.stop();
  }

  /**
   * (Re)starts the informer with a new ListWatch. `fresh` lists everything; otherwise its first
   * "list" is the store as it stands, so the watch resumes from the last resourceVersion seen
   * (a 410 then makes ListWatch list for real).
   */
  private connect(fresh: boolean): void {
    if (this.stopped) return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const gen = ++this.generation;
    this.abandon();
    let resume = !fresh && this.lastResourceVersion !== '';
    const listFn = async (): Promise<KubernetesListObject<KubernetesObject>> => {
      if (!resume) return this.list(gen);
      resume = false;
      return { metadata: { resourceVersion: this.lastResourceVersion }, items: this.objects() as unknown as KubernetesObject[] };
    };
    const lw = new ListWatch<KubernetesObject>(this.opts.path, this.watchAdapter(gen) as unknown as Watch, listFn, false,
      this.opts.labelSelector, this.opts.fieldSelector);
    const current = (f: (o: Obj) => void) => (o: KubernetesObject) => {
      if (gen === this.generation) f(o as unknown as Obj);
    };
    lw.on(ADD, current((o) => this.upsert(o)));
    lw.on(UPDATE, current((o) => this.upsert(o)));
    lw.on(DELETE, current((o) => this.remove(o)));
    lw.on(ERROR, (err?: unknown) => this.fail(gen, err instanceof Error ? err.message : String(err)));
    this.lw = lw;
    lw.start().catch((err: Error) => this.fail(gen, err.message));
  }

  private fail(gen: number, reason: string): void {
    if (this.stopped || gen !== this.generation) return;
    this.generation++; // ignore anything more from the failed attempt
    if (this.inactivityTimer) clearTimeout(this.inactivityTimer);
    this.inactivityTimer = null;
    this.abandon();
    this.attempt++;
    const delay = backoffDelay(this.attempt, this.opts.backoff, (this.opts.random ?? Math.random)());
    this.sink.restarting(reason, delay);
    this.retryTimer = setTimeout(() => this.connect(false), delay);
    this.retryTimer.unref();
  }

  private armInactivity(gen: number): void {
    if (this.inactivityTimer) clearTimeout(this.inactivityTimer);
    this.inactivityTimer = setTimeout(() => this.fail(gen, `watch ${this.opts.path}: nothing received for ${this.opts.inactivityMs} ms`), this.opts.inactivityMs);
    this.inactivityTimer.unref();
  }

  /** Paged list, trimmed, reconciled against the store before ListWatch sees it. */
  private async list(gen: number): Promise<KubernetesListObject<KubernetesObject>> {
    this.armInactivity(gen); // a list that never completes counts as silence too
    const items: Obj[] = [];
    let resourceVersion = '';
    let cont: string | undefined;
    do {
      const page = (await getJson(this.kc, this.opts.path, {
        labelSelector: this.opts.labelSelector, fieldSelector: this.opts.fieldSelector,
        limit: String(this.opts.pageSize ?? 500), continue: cont,
      }, this.opts.requestTimeoutMs)) as Obj;
      const meta = (page['metadata'] ?? {}) as Obj;
      resourceVersion = String(meta['resourceVersion'] ?? '');
      cont = typeof meta['continue'] === 'string' && meta['continue'] !== '' ? meta['continue'] : undefined;
      const pageItems = Array.isArray(page['items']) ? page['items'] : [];
      for (const [i, item] of pageItems.entries()) {
        if (hasMeta(item)) items.push(trimObject(this.opts.kind, item));
        else this.sink.malformed(`list ${this.opts.path}: items[${i}] has no metadata`);
      }
    } while (cont !== undefined && gen === this.generation);
    if (gen !== this.generation) throw new Error('abandoned');
    const listed = new Set(items.map(keyOf));
    for (const [key, old] of this.store) if (!listed.has(key)) this.remove(old);
    for (const o of items) this.upsert(o);
    this.attempt = 0;
    this.lastResourceVersion = resourceVersion;
    this.sink.listed(items.length);
    return { metadata: { resourceVersion }, items: items as unknown as KubernetesObject[] };
  }

  /** The object ListWatch calls as its Watch: our transport, with bookmarks and a server-side timeout. */
  private watchAdapter(gen: number) {
    return {
      watch: async (path: string, query: Record<string, string>, callback: (type: string, obj: Obj) => void, done: (err: unknown) => void) => {
        if (gen !== this.generation) return { abort: () => {} };
        this.armInactivity(gen);
        // A server-side timeout between 5 and 10 minutes, as client-go's reflector picks it.
        const timeoutSeconds = String(300 + Math.floor((this.opts.random ?? Math.random)() * 300));
        this.watchHandle = openWatch(this.kc, path, { ...query, allowWatchBookmarks: 'true', timeoutSeconds }, (type, object) => {
          if (gen !== this.generation) return;
          this.armInactivity(gen);
          this.attempt = 0;
          const rv = hasMeta(object) ? (object['metadata'] as Obj)['resourceVersion'] : undefined;
          if (type !== 'ERROR' && typeof rv === 'string' && rv !== '') this.lastResourceVersion = rv;
          if (type === 'ERROR' || type === 'BOOKMARK') return callback(type, object);
          if (!hasMeta(object)) return this.sink.malformed(`watch ${path}: ${type} event without metadata`);
          callback(type, trimObject(this.opts.kind, object));
        }, (err) => {
          if (gen === this.generation) done(err);
        });
        return this.watchHandle;
      },
    };
  }

  private upsert(o: Obj): void {
    const key = keyOf(o);
    const old = this.store.get(key);
    if (old !== undefined && deepEqual(old, o)) return;
    this.store.set(key, o);
    this.sink.event({ type: old === undefined ? 'ADDED' : 'MODIFIED', object: o });
  }

  private remove(o: Obj): void {
    const key = keyOf(o);
    const old = this.store.get(key);
    if (old === undefined) return;
    this.store.delete(key);
    this.sink.event({ type: 'DELETED', object: old });
  }
}
