// A source that reads Services and EndpointSlices from a file or a directory of .yaml/.yml/.json
// files (objects exactly as `kubectl get -o yaml|json` prints them), watches it, and turns each
// re-read into watch events by diffing against the previous read. A file that fails to read or
// parse is reported and its previous content kept.

import { watch, type FSWatcher } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { deepEqual, objectRef } from '../model/k8s.js';
import type { ObjectEvent, ObjectKind, Source, SourceSink } from '../model/types.js';

const EXTENSIONS = new Set(['.yaml', '.yml', '.json']);
const KINDS = new Set<string>(['Service', 'EndpointSlice']);

export class ParseError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
    this.name = 'ParseError';
  }
}

// ---- pure parsing -----------------------------------------------------------------------

/**
 * Every object in `text`: a single object, a JSON array, a `List` (or `ServiceList`, …; items
 * without kind get it from the list), or multi-document YAML. Kinds are not filtered here.
 * Throws ParseError (file name + parser message) when the text is not valid JSON/YAML or holds
 * something other than objects.
 */
export function parseObjects(text: string, filename: string): Record<string, unknown>[] {
  const docs: unknown[] = [];
  const trimmed = text.trimStart();
  const looksJson = extname(filename).toLowerCase() === '.json' || trimmed.startsWith('{') || trimmed.startsWith('[');
  let jsonError: Error | null = null;
  if (looksJson) {
    try {
      docs.push(JSON.parse(text));
    } catch (err) {
      jsonError = err as Error;
    }
  }
  if (!looksJson || jsonError !== null) {
    if (extname(filename).toLowerCase() === '.json') throw new ParseError(filename, jsonError!.message);
    for (const doc of parseAllDocuments(text)) {
      const first = doc.errors[0];
      if (first) throw new ParseError(filename, first.message);
      docs.push(doc.toJS());
    }
  }
  const out: Record<string, unknown>[] = [];
  docs.forEach((d, i) => flatten(d, `document ${i + 1}`, filename, out));
  return out;
}

function flatten(v: unknown, where: string, filename: string, out: Record<string, unknown>[]): void {
  if (v === null || v === undefined) return; // empty YAML document
  if (Array.isArray(v)) {
    v.forEach((x, i) => flatten(x, `${where} item ${i + 1}`, filename, out));
    return;
  }
  if (typeof v !== 'object') throw new ParseError(filename, `${where} is not an object`);
  const o = v as Record<string, unknown>;
  const kind = o['kind'];
  if (typeof kind === 'string' && kind.endsWith('List') && Array.isArray(o['items'])) {
    const itemKind = kind === 'List' ? undefined : kind.slice(0, -'List'.length);
    o['items'].forEach((item, i) => {
      if (itemKind && typeof item === 'object' && item !== null && !Array.isArray(item) && (item as Record<string, unknown>)['kind'] === undefined) {
        item = { apiVersion: o['apiVersion'], kind: itemKind, ...(item as Record<string, unknown>) };
      }
      flatten(item, `${where} items[${i}]`, filename, out);
    });
    return;
  }
  out.push(o);
}

/** "Kind/namespace/name" of a Service or EndpointSlice, or null for other kinds / no name. */
export function objectKey(o: Record<string, unknown>): string | null {
  const ref = objectRef(o);
  if (!ref || typeof o['kind'] !== 'string' || !KINDS.has(o['kind'])) return null;
  return `${o['kind']}/${ref.namespace}/${ref.name}`;
}

/** Watch events that turn `prev` into `next` (both keyed by objectKey), sorted by key. */
export function diffObjects(prev: ReadonlyMap<string, unknown>, next: ReadonlyMap<string, unknown>): ObjectEvent[] {
  const events: ObjectEvent[] = [];
  const keys = [...new Set([...prev.keys(), ...next.keys()])].sort();
  for (const key of keys) {
    const kind = key.slice(0, key.indexOf('/')) as ObjectKind;
    const a = prev.get(key);
    const b = next.get(key);
    if (b === undefined) events.push({ kind, type: 'DELETED', object: a });
    else if (a === undefined) events.push({ kind, type: 'ADDED', object: b });
    else if (!deepEqual(a, b)) events.push({ kind, type: 'MODIFIED', object: b });
  }
  return events;
}

// ---- the watching source ----------------------------------------------------------------

export interface FileSourceOptions {
  /** Coalesce change notifications for this long before re-reading (default 50 ms). */
  debounceMs?: number;
  /** Fallback poll (stat-based) for filesystems where fs.watch misses changes (default 5 s). */
  pollIntervalMs?: number;
}

interface FileEntry {
  /** ino/size/mtime/ctime when last read; the poll re-reads only files whose stamp changed. */
  stamp: string;
  objects: Record<string, unknown>[];
}

export class FileSource implements Source {
  private readonly path: string;
  private readonly debounceMs: number;
  private readonly pollIntervalMs: number;
  private sink: SourceSink | null = null;
  private isDir = false;
  private readonly files = new Map<string, FileEntry>();
  private current = new Map<string, Record<string, unknown>>();
  private watcher: FSWatcher | null = null;
  private debounceTimer: NodeJS.Timeout | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private rerun: { force: boolean } | null = null;
  private stopped = false;
  private missingReported = false;

  constructor(path: string, opts: FileSourceOptions = {}) {
    this.path = resolve(path);
    this.debounceMs = opts.debounceMs ?? 50;
    this.pollIntervalMs = opts.pollIntervalMs ?? 5000;
  }

  /** Reads everything once, emits events and `synced`, then watches. Rejects if the path does not exist. */
  async start(sink: SourceSink): Promise<void> {
    this.sink = sink;
    this.stopped = false;
    this.isDir = (await stat(this.path)).isDirectory();
    this.startWatcher();
    await this.reload(true);
    sink.synced();
    this.pollTimer = setInterval(() => {
      if (!this.watcher) this.startWatcher();
      this.schedule(false);
    }, this.pollIntervalMs);
    this.pollTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.debounceTimer = this.pollTimer = null;
    this.watcher?.close();
    this.watcher = null;
    await this.running;
  }

  private get dir(): string {
    return this.isDir ? this.path : dirname(this.path);
  }

  /** Watch the directory (also for a single file: editors replace files by rename, which a
   *  watch on the file itself would not survive). */
  private startWatcher(): void {
    try {
      const w = watch(this.dir, (_event, filename) => {
        const name = filename?.toString() ?? null;
        if (name !== null && !this.relevant(name)) return;
        this.schedule(true);
      });
      w.on('error', (err) => {
        this.sink?.error(err, `watch ${this.dir}`);
        w.close();
        if (this.watcher === w) this.watcher = null; // the poll re-creates it
      });
      this.watcher = w;
    } catch (err) {
      this.sink?.error(err as Error, `watch ${this.dir}`);
      this.watcher = null;
    }
  }

  private relevant(name: string): boolean {
    if (!this.isDir) return name === basename(this.path);
    return !name.startsWith('.') && EXTENSIONS.has(extname(name).toLowerCase());
  }

  /** Re-read after `debounceMs`, coalescing every request made meanwhile (the timer is not
   *  pushed back, so a file written continuously is still re-read). `force` re-reads files even
   *  when their stat looks unchanged. */
  private schedule(force: boolean): void {
    if (this.stopped) return;
    this.rerun = { force: force || (this.rerun?.force ?? false) };
    if (this.debounceTimer) return;
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = null;
      void this.kick();
    }, this.debounceMs);
  }

  private async kick(): Promise<void> {
    if (this.running || this.stopped || !this.rerun) return;
    const { force } = this.rerun;
    this.rerun = null;
    this.running = this.reload(force).catch((err: Error) => this.sink?.error(err, `file source ${this.path}`));
    await this.running;
    this.running = null;
    if (this.rerun) void this.kick();
  }

  private async listFiles(): Promise<string[]> {
    if (!this.isDir) return [this.path];
    const names = await readdir(this.path);
    return names.filter((n) => this.relevant(n)).sort().map((n) => join(this.path, n));
  }

  private async reload(force: boolean): Promise<void> {
    const sink = this.sink!;
    let paths: string[];
    try {
      paths = await this.listFiles();
    } catch (err) {
      sink.error(err as Error, `read directory ${this.path} (keeping previous content)`);
      return;
    }
    if (this.isDir) for (const p of [...this.files.keys()]) if (!paths.includes(p)) this.files.delete(p);

    for (const p of paths) {
      let stamp: string;
      try {
        const st = await stat(p);
        if (!st.isFile()) {
          this.files.delete(p);
          continue;
        }
        stamp = `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' && this.isDir) {
          this.files.delete(p); // removed between readdir and stat
        } else if (!this.missingReported) {
          this.missingReported = true;
          sink.error(err as Error, `${p} (keeping previous content)`);
        }
        continue;
      }
      if (!this.isDir) this.missingReported = false;
      const prev = this.files.get(p);
      if (!force && prev?.stamp === stamp) continue;
      try {
        const objects = parseObjects(await readFile(p, 'utf8'), p);
        this.files.set(p, { stamp, objects });
      } catch (err) {
        sink.error(err as Error, `${p} (keeping previous content)`);
        this.files.set(p, { stamp, objects: prev?.objects ?? [] });
      }
    }
    if (this.stopped) return;

    const next = new Map<string, Record<string, unknown>>();
    const from = new Map<string, string>();
    for (const [p, entry] of [...this.files].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      for (const o of entry.objects) {
        if (typeof o['kind'] !== 'string' || !KINDS.has(o['kind'])) continue;
        const key = objectKey(o);
        if (key === null) {
          sink.error(new Error(`${o['kind']} without metadata.name ignored`), p);
          continue;
        }
        const first = from.get(key);
        if (first !== undefined) {
          sink.error(new Error(`${key} is also defined in ${first}; this copy is ignored`), p);
          continue;
        }
        from.set(key, p);
        next.set(key, o);
      }
    }
    const events = diffObjects(this.current, next);
    this.current = next;
    for (const e of events) sink.event(e);
  }
}
