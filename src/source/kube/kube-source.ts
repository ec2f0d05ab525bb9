// The `kubernetes` source: informers for v1 Services, discovery.k8s.io/v1 EndpointSlices,
// this node's v1 Node and (nftables mode) networking.k8s.io/v1 ServiceCIDRs, each under a
// Reflector's supervision. `synced` fires once every kind has
// been listed completely — before that the runner writes nothing to the dataplane.
import type { KubeConfig } from '@kubernetes/client-node';
import type { Metrics } from '../../observe/metrics.js';
import type { ObjectKind, Source, SourceSink } from '../../model/types.js';
import type { BackoffOptions } from './backoff.js';
import { Reflector } from './reflector.js';
import { nodeInfo, type WatchedKind } from './trim.js';

/** kube-proxy's informer filter: Services with their own proxy, and headless Services' slices, are not ours. */
export const PROXY_LABEL_SELECTOR = '!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless';

export interface KubeSourceOptions {
  readonly nodeName: string;
  readonly requestTimeoutMs: number;
  readonly inactivityMs: number;
  readonly relistPeriodMs: number;
  readonly backoff: BackoffOptions;
  /** Watch ServiceCIDRs (the nftables mode drops traffic to unallocated ClusterIPs in them). */
  readonly serviceCIDRs?: boolean;
}

const PATHS: Record<WatchedKind, string> = {
  Service: '/api/v1/services',
  EndpointSlice: '/apis/discovery.k8s.io/v1/endpointslices',
  Node: '/api/v1/nodes',
  ServiceCIDR: '/apis/networking.k8s.io/v1/servicecidrs',
};

export class KubeSource implements Source {
  private reflectors: Reflector[] = [];

  constructor(private readonly kc: KubeConfig, private readonly opts: KubeSourceOptions, private readonly metrics: Metrics) {}

  async start(sink: SourceSink): Promise<void> {
    const unsynced = new Set<WatchedKind>(['Service', 'EndpointSlice', 'Node']);
    const reflector = (kind: WatchedKind, selectors: { labelSelector?: string; fieldSelector?: string }) =>
      new Reflector(this.kc, { kind, path: PATHS[kind], ...selectors, requestTimeoutMs: this.opts.requestTimeoutMs,
        inactivityMs: this.opts.inactivityMs, relistPeriodMs: this.opts.relistPeriodMs, backoff: this.opts.backoff }, {
        event: (e) => {
          this.metrics.inc('kubexdp_api_watch_events_total', 'Object changes delivered by the informers', { kind, type: e.type });
          if (kind === 'Node') sink.node?.(e.type === 'DELETED' ? null : nodeInfo(e.object));
          else sink.event({ kind: kind as ObjectKind, type: e.type, object: e.object });
        },
        listed: (count) => {
          this.metrics.inc('kubexdp_api_lists_total', 'Complete lists reconciled, per kind', { kind });
          if (kind === 'Node' && count === 0 && unsynced.has('Node')) {
            sink.error(new Error(`Node ${JSON.stringify(this.opts.nodeName)} not found: no zone for topology hints, node IPs from flags or interfaces`), 'Node informer');
          }
          if (unsynced.delete(kind) && unsynced.size === 0) sink.synced();
        },
        restarting: (reason, retryInMs) => {
          if (kind === 'ServiceCIDR' && /\b404\b|NotFound|not found/i.test(reason)) {
            // Older API servers (before Kubernetes 1.33) have no v1 ServiceCIDR: said once, not retried.
            cidrs?.stop();
            sink.error(new Error(reason), 'ServiceCIDR informer: this API server serves no networking.k8s.io/v1 ServiceCIDRs; no drop rule for unallocated ClusterIPs');
            return;
          }
          this.metrics.inc('kubexdp_api_restarts_total', 'Informer restarts after an error or silence, per kind', { kind });
          sink.error(new Error(reason), `${kind} informer: restarting in ${Math.round(retryInMs)} ms; the dataplane keeps its state`);
        },
        malformed: (context) => {
          this.metrics.inc('kubexdp_api_malformed_total', 'Watch events or list items without metadata, ignored', { kind });
          sink.error(new Error(context), `${kind} informer: ignored`);
        },
      });
    // Not waited for: an API server without ServiceCIDRs must not hold up the first sync.
    const cidrs = this.opts.serviceCIDRs ? reflector('ServiceCIDR', {}) : null;
    this.reflectors = [
      reflector('Service', { labelSelector: PROXY_LABEL_SELECTOR }),
      reflector('EndpointSlice', { labelSelector: PROXY_LABEL_SELECTOR }),
      reflector('Node', { fieldSelector: `metadata.name=${this.opts.nodeName}` }),
      ...(cidrs ? [cidrs] : []),
    ];
    for (const r of this.reflectors) r.start();
  }

  async stop(): Promise<void> {
    for (const r of this.reflectors) r.stop();
    this.reflectors = [];
  }
}
