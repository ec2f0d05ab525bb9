// What `kube-xdp inspect` shows for any mode: one entry per Service port, read back from the
// kernel (maps, rules, virtual servers) and named. The readers build it; format.ts prints it.
import { hostPort } from '../dataplane/ipvs/virtual-servers.js';
import type { Protocol } from '../model/types.js';

export type InspectMode = 'ebpf' | 'iptables' | 'ipvs' | 'nftables';

/** How a frontend is reached: the Service field its address comes from. */
export type FrontendKind = 'ClusterIP' | 'NodePort' | 'ExternalIP' | 'LoadBalancer' | 'unknown';

export interface InspectedFrontend {
  readonly kind: FrontendKind;
  /** '*' for an iptables or nftables NodePort (every local address kube-proxy's KUBE-NODEPORTS or
   *  `fib daddr type local` matches). */
  readonly address: string;
  readonly port: number;
  /** eBPF: internal | external | host (the frontend map's scope). iptables/nftables/IPVS: cluster | local,
   *  the endpoint set the address leads to (a Local traffic policy: local). */
  readonly scope: string;
  /** Mode-specific notes: reject, drop, snat-remote, source-ranges, … */
  readonly flags: readonly string[];
  /** Backends this frontend leads to. */
  readonly backends: number;
  /** What the kernel counts for it, in the mode's own terms (iptables: rule hits; IPVS: --stats). */
  readonly counters?: Readonly<Record<string, number>>;
}

export interface InspectedBackend {
  readonly address: string;
  readonly port: number;
  /** On this node; null where the kernel state does not tell (iptables, IPVS without the owner file). */
  readonly local: boolean | null;
  readonly terminating: boolean | null;
  /** IPVS real server weight (0: draining). */
  readonly weight?: number;
  readonly counters?: Readonly<Record<string, number>>;
}

export interface InspectedService {
  /** "namespace/name"; null when nothing names the frontend (state written by someone else). */
  readonly service: string | null;
  readonly portName: string;
  /** The Service's type; in the iptables mode inferred from its rules. */
  readonly type: string;
  readonly protocol: Protocol | string;
  /** ClientIP affinity timeout in seconds; null: none. */
  readonly affinitySeconds: number | null;
  readonly frontends: readonly InspectedFrontend[];
  readonly backends: readonly InspectedBackend[];
}

export interface InspectView {
  readonly mode: InspectMode;
  /** Where the state was read from, for the header. */
  readonly source: string;
  readonly services: readonly InspectedService[];
  /** Node-wide counters (eBPF: kx_stats summed over CPUs). */
  readonly counters: Readonly<Record<string, number>>;
  /** Things the reader could not resolve, for the reader of the output. */
  readonly notes: readonly string[];
}

/** "ns/name:port" as kube-proxy prints a ServicePortName; the address when unnamed. */
export function serviceLabel(s: Pick<InspectedService, 'service' | 'portName'>): string {
  return s.service === null ? '?' : `${s.service}${s.portName ? `:${s.portName}` : ''}`;
}

const KIND_ORDER: readonly FrontendKind[] = ['ClusterIP', 'ExternalIP', 'LoadBalancer', 'NodePort', 'unknown'];
const SCOPE_ORDER = ['cluster', 'local', 'internal', 'external', 'host'];

/** Stable order: by name, unnamed last, then protocol and first frontend; frontends by kind,
 *  address, port and scope. */
export function sortServices(list: InspectedService[]): InspectedService[] {
  for (const s of list) {
    (s.frontends as InspectedFrontend[]).sort((a, b) => KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind) ||
      (a.address < b.address ? -1 : a.address > b.address ? 1 : 0) || a.port - b.port || SCOPE_ORDER.indexOf(a.scope) - SCOPE_ORDER.indexOf(b.scope));
  }
  const key = (s: InspectedService) => `${s.service === null ? '~' : serviceLabel(s)} ${s.protocol} ${s.frontends[0] ? hostPort(s.frontends[0].address, s.frontends[0].port) : ''}`;
  return list.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}
