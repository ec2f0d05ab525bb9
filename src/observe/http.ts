// /metrics and /healthz. Healthy once the first sync after the source synced has been applied
// and the last sync attempt succeeded, as kube-proxy's healthz reports.
import { createServer, type Server } from 'node:http';
import type { Metrics } from './metrics.js';

export interface Health { readonly lastSyncOk: boolean; readonly lastSyncAt: Date | null }

/** Serves /metrics when `metrics` is given and /healthz when `health` is (kube-proxy binds them apart). */
export function serveObservability(bind: string, metrics: Metrics | null, health: (() => Health) | null): Promise<Server> {
  const [host, port] = splitHostPort(bind);
  const server = createServer((req, res) => {
    if (req.url === '/metrics' && metrics) {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(metrics.render());
    } else if (req.url === '/healthz' && health) {
      const h = health();
      const ok = h.lastSyncOk && h.lastSyncAt !== null;
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' })
        .end(JSON.stringify({ lastUpdated: h.lastSyncAt?.toISOString() ?? null, currentTime: new Date().toISOString(), ok }));
    } else {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

export function splitHostPort(bind: string): [string, number] {
  const i = bind.lastIndexOf(':');
  const port = Number(bind.slice(i + 1));
  if (i < 0 || !Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad bind address ${JSON.stringify(bind)}: want host:port`);
  return [bind.slice(0, i).replace(/^\[|\]$/g, ''), port];
}
