// The model shared by every dataplane mode (eBPF, iptables, IPVS, nftables).
// Built once by model/tracker.ts (endpoint selection in model/endpoints.ts); a mode only reads it.

export type Protocol = 'TCP' | 'UDP' | 'SCTP';
export type IPFamily = 'IPv4' | 'IPv6';

/** One endpoint of one service port. */
export interface Endpoint {
  ip: string;
  port: number;
  nodeName: string | null;
  zone: string | null;
  /** `hints.forZones[].name`, sorted and unique; null when the endpoint has none. */
  zoneHints: string[] | null;
  /** `hints.forNodes[].name` (PreferSameNode), sorted and unique; null when none. */
  nodeHints: string[] | null;
  /** Conditions; a missing condition counts as ready / serving / not terminating. */
  ready: boolean;
  serving: boolean;
  terminating: boolean;
  /** nodeName === this node. */
  isLocal: boolean;
}

/** kube-proxy's ServicePortName + ServicePort info, for the node's address families. */
export interface ServicePort {
  /** "namespace/name:portName" (portName may be empty → "namespace/name:"). */
  id: string;
  namespace: string;
  name: string;
  portName: string;
  type: 'ClusterIP' | 'NodePort' | 'LoadBalancer';
  protocol: Protocol;
  port: number;
  nodePort: number | null;
  /** Families this port is served for: those of its clusterIPs that the node runs. */
  families: IPFamily[];
  /** Only the node's families (NodeFacts.ipFamilies). */
  clusterIPs: string[];
  externalIPs: string[];
  /** status.loadBalancer.ingress[].ip in VIP mode (ipMode Proxy is left to the load balancer). */
  loadBalancerIPs: string[];
  /** Trimmed CIDRs of the node's families. */
  loadBalancerSourceRanges: string[];
  /** Effective policy: 'Local' only when the port is reachable from outside (kube-proxy's ExternalPolicyLocal). */
  externalTrafficPolicy: 'Cluster' | 'Local';
  internalTrafficPolicy: 'Cluster' | 'Local';
  /** ClientIP affinity timeout; null = sessionAffinity None. */
  sessionAffinityTimeoutSeconds: number | null;
  /** Set only for a LoadBalancer with externalTrafficPolicy Local (kube-proxy's NeedsHealthCheck). */
  healthCheckNodePort: number | null;
  /** nodePort, externalIPs or loadBalancerIPs present (kube-proxy's ExternallyAccessible). */
  externallyAccessible: boolean;
  /** Whether clusterEndpoints / localEndpoints are computed at all (kube-proxy's UsesClusterEndpoints / UsesLocalEndpoints). */
  usesClusterEndpoints: boolean;
  usesLocalEndpoints: boolean;
  /** All of this port's endpoints of the served families, deduplicated, sorted by the string "ip:port" ("[ip]:port" for IPv6). */
  endpoints: Endpoint[];
  /** kube-proxy CategorizeEndpoints results (worked out per address family, then merged and sorted). */
  clusterEndpoints: Endpoint[];
  localEndpoints: Endpoint[];
  allReachableEndpoints: Endpoint[];
  hasAnyEndpoints: boolean;
  /** Families in which hasAnyEndpoints holds (per-family modes decide reject vs. forward with it). */
  familiesWithEndpoints: IPFamily[];
}

export interface NodeFacts {
  nodeName: string;
  zone: string | null;
  ipFamilies: IPFamily[];
}

/** Sorted by id, then protocol; deeply frozen. */
export interface ProxyState {
  services: ServicePort[];
  /** spec.cidrs of the networking.k8s.io/v1 ServiceCIDR objects, every family, sorted and unique
   *  (absent or empty: none known; the nftables mode then drops nothing as unallocated). */
  readonly serviceCIDRs?: readonly string[];
  /** The tracker's snapshot number (absent: a state built otherwise, e.g. by a test). */
  readonly generation?: number;
  /** The Services ("namespace/name") that differ from snapshot `since`; absent: everything may
   *  differ (the first snapshot, or new node facts). A dataplane that applied `since` redoes
   *  only these. */
  readonly changes?: {
    readonly since: number; readonly services: ReadonlySet<string>;
    /** Those Services' ports in this state (rebuilt objects): what a dataplane recompiles. */
    readonly ports: readonly ServicePort[];
  };
}

// ---- sources → tracker ------------------------------------------------------------------

/** ServiceCIDR: networking.k8s.io/v1, cluster-scoped; only its spec.cidrs are used (nftables mode). */
export type ObjectKind = 'Service' | 'EndpointSlice' | 'ServiceCIDR';

/** A watch event, as a Kubernetes watch or the file source delivers it. `object` is raw JSON. */
export interface ObjectEvent {
  kind: ObjectKind;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: unknown;
}

/** This node as the API server describes it (the kubernetes source's Node informer). */
export interface NodeInfo {
  readonly name: string;
  /** The topology.kubernetes.io/zone label (topology hints), or null. */
  readonly zone: string | null;
  /** status.addresses of type InternalIP, then ExternalIP (kube-proxy's node IP order). */
  readonly addresses: readonly string[];
  /** spec.taints[].key (the proxier's health: ToBeDeletedByClusterAutoscaler). */
  readonly taints: readonly string[];
  /** metadata.deletionTimestamp, or null: the Node is being deleted. */
  readonly deletionTimestamp: string | null;
}

export interface SourceSink {
  event(e: ObjectEvent): void;
  /** The own Node changed (null: it does not exist). Only sources that watch Nodes call it. */
  node?(info: NodeInfo | null): void;
  /** After the first complete read / list of every kind. */
  synced(): void;
  /** A problem the source survived (unreadable file, parse error, …); `context` names where. */
  error(err: Error, context: string): void;
}

export interface Source {
  start(sink: SourceSink): Promise<void>;
  stop(): Promise<void>;
}
