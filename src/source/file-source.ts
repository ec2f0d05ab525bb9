// A source that reads Services, EndpointSlices and ServiceCIDRs from a file or a directory of .yaml/.yml/.json
// files (objects exactly as `kubectl get -o yaml|json` prints them), watches it, and turns each
// re-read into watch events by diffing against the previous read. A file that fails to read or
// parse is reported and its previous content kept.

import { watch, type FSWatcher } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { clip, deepEqual, objectRef } from '../model/k8s.js';
import type { ObjectEvent, ObjectKind, Source, SourceSink } from '../model/types.js';

const EXTENSIONS = new Set(['.yaml', '.yml', '.json']);
const KINDS = new Set<string>(['Service', 'EndpointSlice', 'ServiceCIDR']);

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

/** Bounds on what one file may cost to read. A document over a bound is reported and skipped;
 * the other documents of its file are still used. */
export const FILE_LIMITS = {
  /** A larger file is not read at all (its previous content is kept). */
  maxFileBytes: 64 << 20,
  /** A YAML line this long is a scalar no Service or EndpointSlice has; the YAML parser takes
   * seconds and GiBs on one, so its document is skipped before parsing. */
  maxLineBytes: 1 << 20,
  /** Longest string value in an object (JSON, or YAML spread over lines). */
  maxStringChars: 1 << 20,
  /** YAML aliases expanded per document (the yaml package's own default): a bomb is refused. */
  maxAliasCount: 100,
} as const;

export interface ParsedFile {
  readonly objects: Record<string, unknown>[];
  /** One per document or list item that could not be used; the rest of the file is. */
  readonly problems: ParseError[];
}

/** The documents of a YAML stream, split at `---` lines, each with its separator line. */
function yamlDocuments(text: string): string[] {
  const docs: string[] = [];
  let start = 0;
  const re = /^---(?=[ \t\r]|$)/gm;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (m.index > start) docs.push(text.slice(start, m.index));
    start = m.index;
  }
  docs.push(text.slice(start));
  return docs;
}

function longestLine(text: string): number {
  let max = 0, from = 0;
  for (let nl = text.indexOf('\n'); ; nl = text.indexOf('\n', from)) {
    const end = nl < 0 ? text.length : nl;
    max = Math.max(max, end - from);
    if (nl < 0) return max;
    from = nl + 1;
  }
}

/** Path of the first string longer than the limit, or null. */
function oversizedString(v: unknown, path: string): string | null {
  if (typeof v === 'string') return v.length > FILE_LIMITS.maxStringChars ? path || '(document)' : null;
  if (v === null || typeof v !== 'object') return null;
  for (const [k, x] of Object.entries(v)) {
    const hit = oversizedString(x, Array.isArray(v) ? `${path}[${k}]` : path ? `${path}.${k}` : k);
    if (hit) return hit;
  }
  return null;
}

/**
 * Every object in `text`: a single object, a JSON array, a `List` (or `ServiceList`, …; items
 * without kind get it from the list), or multi-document YAML. Kinds are not filtered here.
 * A document or list item that does not parse, is not an object, or breaks FILE_LIMITS is a
 * problem (file, document, item) and is left out; the others are returned.
 */
export function parseObjects(text: string, filename: string): ParsedFile {
  const objects: Record<string, unknown>[] = [];
  const problems: ParseError[] = [];
  const trimmed = text.trimStart();
  const isJsonFile = extname(filename).toLowerCase() === '.json';
  let json: { value: unknown } | null = null;
  if (isJsonFile || trimmed.startsWith('{') || trimmed.startsWith('[')) {
    try {
      json = { value: JSON.parse(text) };
    } catch (err) {
      if (isJsonFile) return { objects, problems: [new ParseError(filename, (err as Error).message)] };
    }
  }
  const docs: { where: string; value: unknown }[] = [];
  if (json) {
    docs.push({ where: 'document 1', value: json.value });
  } else {
    yamlDocuments(text).forEach((src, i) => {
      const where = `document ${i + 1}`;
      const line = longestLine(src);
      if (line > FILE_LIMITS.maxLineBytes) {
        problems.push(new ParseError(filename, `${where}: a line of ${line} bytes is over the ${FILE_LIMITS.maxLineBytes}-byte limit (document skipped)`));
        return;
      }
      const doc = parseDocument(src);
      const first = doc.errors[0];
      if (first) {
        problems.push(new ParseError(filename, `${where}: ${clip(first.message)} (document skipped)`));
        return;
      }
      try {
        docs.push({ where, value: doc.toJS({ maxAliasCount: FILE_LIMITS.maxAliasCount }) });
      } catch (err) {
        problems.push(new ParseError(filename, `${where}: ${clip((err as Error).message)} (document skipped)`));
      }
    });
  }
  for (const d of docs) flatten(d.value, d.where, filename, objects, problems);
  return { objects, problems };
}

function flatten(v: unknown, where: string, filename: string, out: Record<string, unknown>[], problems: ParseError[]): void {
  if (v === null || v === undefined) return; // empty YAML document
  if (Array.isArray(v)) {
    v.forEach((x, i) => flatten(x, `${where} item ${i + 1}`, filename, out, problems));
    return;
  }
  if (typeof v !== 'object') {
    problems.push(new ParseError(filename, `${where} is not an object (skipped)`));
    return;
  }
  const o = v as Record<string, unknown>;
  const kind = o['kind'];
  if (typeof kind === 'string' && kind.endsWith('List') && Array.isArray(o['items'])) {
    const itemKind = kind === 'List' ? undefined : kind.slice(0, -'List'.length);
    o['items'].forEach((item, i) => {
      if (itemKind && typeof item === 'object' && item !== null && !Array.isArray(item) && (item as Record<string, unknown>)['kind'] === undefined) {
        item = { apiVersion: o['apiVersion'], kind: itemKind, ...(item as Record<string, unknown>) };
      }
      flatten(item, `${where} items[${i}]`, filename, out, problems);
    });
    return;
  }
  const big = oversizedString(o, '');
  if (big !== null) {
    const ref = objectRef(o);
    const who = `${clip(String(kind))} ${ref ? `${clip(ref.namespace)}/${clip(ref.name)}` : '(unnamed)'}`;
    problems.push(new ParseError(filename, `${where}: ${who}: ${big} is longer than ${FILE_LIMITS.maxStringChars} characters (object skipped)`));
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
  /** The problems of the last read, so a re-read reports only new ones. */
  problems: string[];
}

/** Objects of kinds the source does not watch: said once, so a typo in `kind` is not silent. */
function unwatched(objects: readonly Record<string, unknown>[], file: string): ParseError[] {
  return objects.filter((o) => typeof o['kind'] !== 'string' || !KINDS.has(o['kind'])).map((o) => {
    const ref = objectRef(o);
    const who = ref ? `${clip(ref.namespace)}/${clip(ref.name)}` : '(unnamed)';
    return new ParseError(file, `${clip(String(o['kind'] ?? '(no kind)'))} ${who} is not a kind kube-xdp watches (Service, EndpointSlice, ServiceCIDR): ignored`);
  });
}

/** The objects of a re-read file. When some of its documents could not be used, an object the
 * previous read had and this one lacks may be in one of them: its previous version is kept
 * (nothing is lost to a broken edit) until the file reads cleanly. */
function keepMissing(parsed: ParsedFile, previous: readonly Record<string, unknown>[]): Record<string, unknown>[] {
  if (parsed.problems.length === 0) return parsed.objects;
  const have = new Set(parsed.objects.map(objectKey));
  return [...parsed.objects, ...previous.filter((o) => objectKey(o) !== null && !have.has(objectKey(o)))];
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
      let size: number;
      try {
        const st = await stat(p);
        if (!st.isFile()) {
          this.files.delete(p);
          continue;
        }
        stamp = `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
        size = st.size;
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
      if (size > FILE_LIMITS.maxFileBytes) {
        const err = new ParseError(p, `${size} bytes is over the ${FILE_LIMITS.maxFileBytes}-byte file limit`);
        if (!prev?.problems.includes(err.message)) sink.error(err, `${p} (keeping previous content)`);
        this.files.set(p, { stamp, objects: prev?.objects ?? [], problems: [err.message] });
        continue;
      }
      try {
        const parsed = parseObjects(await readFile(p, 'utf8'), p);
        // Reported once: a file rewritten again with the same bad document says nothing new.
        const problems = [...parsed.problems, ...unwatched(parsed.objects, p)];
        for (const e of problems) if (!prev?.problems.includes(e.message)) sink.error(e, `${p} (skipped, the rest of the file is used)`);
        this.files.set(p, { stamp, objects: keepMissing(parsed, prev?.objects ?? []), problems: problems.map((e) => e.message) });
      } catch (err) {
        sink.error(err as Error, `${p} (keeping previous content)`);
        this.files.set(p, { stamp, objects: prev?.objects ?? [], problems: prev?.problems ?? [] });
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
          sink.error(new Error(`${clip(key)} is also defined in ${first}; this copy is ignored`), p);
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
