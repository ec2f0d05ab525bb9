// /metrics, and kube-proxy's /healthz and /livez (src/health/proxier-health.ts decides what
// they answer).
import { createServer, type Server } from 'node:http';
import type { HttpAnswer } from '../health/answer.js';
import { healthzAnswer, livezAnswer, type ProxierHealth } from '../health/proxier-health.js';
import { KP } from './kube-proxy-metrics.js';
import type { MetricDef, Metrics } from './metrics.js';

const HEALTH_PATHS: Record<string, { answer: (h: ProxierHealth) => HttpAnswer; metric: MetricDef }> = {
  '/healthz': { answer: healthzAnswer, metric: KP.proxyHealthz },
  '/livez': { answer: livezAnswer, metric: KP.proxyLivez },
};

/** Serves /metrics when `serveMetrics`, and /healthz and /livez when `health` is given (kube-proxy
 *  binds them apart). `metrics` also counts the health answers. */
export function serveObservability(bind: string, metrics: Metrics, serveMetrics: boolean, health: ProxierHealth | null): Promise<Server> {
  const [host, port] = splitHostPort(bind);
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const h = HEALTH_PATHS[path];
    if (path === '/metrics' && serveMetrics) {
      metrics.render().then(
        (text) => res.writeHead(200, { 'content-type': metrics.contentType }).end(text),
        (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`),
      );
    } else if (h && health) {
      const a = h.answer(health);
      metrics.inc(h.metric, { code: String(a.status) });
      res.writeHead(a.status, a.headers).end(a.body);
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
