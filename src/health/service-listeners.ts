// The healthCheckNodePort listeners (kube-proxy's ServiceHealthServer), the part that touches
// sockets: after each sync the wanted set is diffed against the open listeners; a Service
// whose port changed is reopened, one whose port cannot be bound is logged, counted and
// tried again at the next sync. Nothing here can fail a sync.
import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';
import type { Metrics } from '../observe/metrics.js';
import { serviceHealthAnswer, type HealthCheckService } from './service-health.js';

interface Instance {
  readonly namespace: string;
  readonly name: string;
  readonly port: number;
  localEndpoints: number;
  readonly servers: Server[];
  closed: boolean;
}

export interface ServiceListenersOptions {
  /** From healthCheckAddresses; fixed for the process, as kube-proxy's are. */
  readonly addresses: readonly string[];
  /** The proxier's health (without the Node), reported as serviceProxyHealthy. */
  readonly proxyHealthy: () => boolean;
  readonly log: Logger;
  readonly metrics: Metrics;
}

export class ServiceListeners {
  private readonly open = new Map<string, Instance>();

  constructor(private readonly opts: ServiceListenersOptions) {}

  /** Makes the open listeners those of `wanted`. Resolves when the new ones are listening or
   *  have failed (callers need not wait: a failure is handled here). */
  sync(wanted: readonly HealthCheckService[]): Promise<void> {
    const byKey = new Map(wanted.map((s) => [`${s.namespace}/${s.name}`, s]));
    for (const [key, inst] of this.open) {
      if (byKey.get(key)?.port === inst.port) continue;
      this.opts.log.info({ namespace: inst.namespace, name: inst.name, port: inst.port }, 'closing healthCheckNodePort');
      this.close(key, inst);
    }
    const opening: Promise<void>[] = [];
    for (const [key, s] of byKey) {
      const existing = this.open.get(key);
      if (existing) {
        existing.localEndpoints = s.localEndpoints;
        continue;
      }
      const inst: Instance = { namespace: s.namespace, name: s.name, port: s.port, localEndpoints: s.localEndpoints, servers: [], closed: false };
      this.open.set(key, inst);
      opening.push(this.listen(key, inst));
    }
    this.gauge();
    return Promise.all(opening).then(() => undefined);
  }

  /** The ports listening now, by "namespace/name" (for tests and logs). */
  ports(): Map<string, number> {
    return new Map([...this.open].map(([k, i]) => [k, i.port]));
  }

  closeAll(): void {
    for (const [key, inst] of this.open) this.close(key, inst);
  }

  private async listen(key: string, inst: Instance): Promise<void> {
    const log = { namespace: inst.namespace, name: inst.name, port: inst.port };
    try {
      for (const address of this.opts.addresses) {
        if (inst.closed) return;
        const server = createServer((_req, res) => {
          const a = serviceHealthAnswer(inst, inst.localEndpoints, this.opts.proxyHealthy());
          res.writeHead(a.status, a.headers).end(a.body);
        });
        inst.servers.push(server);
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          // ipv6Only: '::' must not take the IPv4 port from the 0.0.0.0 listener beside it.
          server.listen({ port: inst.port, host: address, ipv6Only: address.includes(':') }, () => {
            server.off('error', reject);
            resolve();
          });
        });
        // closed meanwhile by a sync that no longer wants it
        if (inst.closed) return void server.close();
      }
      this.opts.log.info({ ...log, addresses: this.opts.addresses }, 'opened healthCheckNodePort');
    } catch (err) {
      // As kube-proxy: whatever was opened is closed so the next sync retries from scratch.
      this.opts.log.error({ ...log, err: (err as Error).message }, 'cannot open healthCheckNodePort: retrying at the next sync');
      this.opts.metrics.inc('kubexdp_healthcheck_nodeport_bind_errors_total', 'healthCheckNodePort listeners that could not be opened', {});
      this.close(key, inst);
      this.gauge();
    }
  }

  private close(key: string, inst: Instance): void {
    inst.closed = true;
    for (const s of inst.servers) if (s.listening) s.close();
    if (this.open.get(key) === inst) this.open.delete(key);
  }

  private gauge(): void {
    this.opts.metrics.set('kubexdp_healthcheck_nodeports', 'healthCheckNodePort listeners open or opening', this.open.size);
  }
}
