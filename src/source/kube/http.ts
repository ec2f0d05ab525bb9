// The two requests a reflector makes, over node:http(s) with the KubeConfig's credentials and
// TLS: a list (JSON, with a deadline) and a watch (newline-delimited JSON events). Ours rather
// than client-node 1.4's Watch, which can be neither timed out nor aborted before the response
// headers arrive: a stalled API server would hang it forever.
import { request as httpRequest, type ClientRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

/** An HTTP error status; ListWatch relists when `statusCode` is 410 (a too-old resourceVersion). */
export class ApiError extends Error {
  constructor(readonly statusCode: number, message: string) {
    super(message);
    this.name = 'ApiError';
  }
}

export type Query = Readonly<Record<string, string | undefined>>;

async function open(kc: KubeConfig, path: string, query: Query): Promise<{ req: ClientRequest; response: Promise<IncomingMessage> }> {
  const server = kc.getCurrentCluster()!.server;
  const url = new URL(server.replace(/\/$/, '') + path);
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') url.searchParams.set(k, v);
  const opts: RequestOptions & Record<string, unknown> = { method: 'GET', headers: { accept: 'application/json' } };
  await kc.applyToHTTPSOptions(opts as never);
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  const req = send(url, opts);
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
  });
  req.end();
  return { req, response };
}

async function failure(res: IncomingMessage, path: string): Promise<ApiError> {
  let body = '';
  res.setEncoding('utf8');
  for await (const chunk of res) if (body.length < 4096) body += chunk;
  let message = body.trim().slice(0, 300);
  try {
    message = (JSON.parse(body) as { message?: string }).message ?? message;
  } catch { /* not a Status object */ }
  return new ApiError(res.statusCode ?? 0, `GET ${path}: HTTP ${res.statusCode}: ${message}`);
}

/** GET path as JSON; rejects on a non-2xx status (ApiError) or after timeoutMs without the whole body. */
export async function getJson(kc: KubeConfig, path: string, query: Query, timeoutMs: number): Promise<unknown> {
  const { req, response } = await open(kc, path, query);
  const timer = setTimeout(() => req.destroy(new Error(`GET ${path}: no complete answer within ${timeoutMs} ms`)), timeoutMs);
  try {
    const res = await response;
    if ((res.statusCode ?? 0) < 200 || (res.statusCode ?? 0) > 299) throw await failure(res, path);
    let body = '';
    res.setEncoding('utf8');
    for await (const chunk of res) body += chunk;
    try {
      return JSON.parse(body);
    } catch (err) {
      throw new Error(`GET ${path}: the answer is not JSON: ${(err as Error).message}`);
    }
  } finally {
    clearTimeout(timer);
  }
}

export interface WatchHandle {
  abort(): void;
}

/**
 * Starts a watch. `onEvent` gets each parsed event line (and `onLine` any line, for liveness);
 * `done` is called once: null when the server ended the stream cleanly, an Error otherwise
 * (ApiError for an HTTP status). Never called after abort().
 */
export function openWatch(
  kc: KubeConfig,
  path: string,
  query: Query,
  onEvent: (type: string, object: Record<string, unknown>) => void,
  done: (err: Error | null) => void,
): WatchHandle {
  let aborted = false;
  let req: ClientRequest | null = null;
  const finish = (err: Error | null) => {
    if (aborted) return;
    aborted = true;
    req?.destroy();
    done(err);
  };
  void (async () => {
    try {
      const opened = await open(kc, path, { ...query, watch: 'true' });
      req = opened.req;
      if (aborted) return void req.destroy();
      const res = await opened.response;
      if (res.statusCode !== 200) return finish(await failure(res, path));
      res.setEncoding('utf8');
      let buf = '';
      res.on('data', (chunk: string) => {
        buf += chunk;
        let nl: number;
        while (!aborted && (nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line === '') continue;
          let ev: { type?: unknown; object?: unknown };
          try {
            ev = JSON.parse(line) as typeof ev;
          } catch {
            return finish(new Error(`watch ${path}: a line is not JSON: ${line.slice(0, 120)}`));
          }
          if (typeof ev.type !== 'string' || typeof ev.object !== 'object' || ev.object === null) {
            return finish(new Error(`watch ${path}: not a watch event: ${line.slice(0, 120)}`));
          }
          onEvent(ev.type, ev.object as Record<string, unknown>);
        }
      });
      // 'aborted'/'error' = the connection broke mid-stream; 'end' = the server closed cleanly.
      res.on('aborted', () => finish(new Error(`watch ${path}: connection cut mid-stream`)));
      res.on('error', (err) => finish(err));
      res.on('end', () => finish(res.complete ? null : new Error(`watch ${path}: connection cut mid-stream`)));
    } catch (err) {
      finish(err as Error);
    }
  })();
  return {
    abort: () => {
      aborted = true;
      req?.destroy();
    },
  };
}
