// The IPVS mode's view: virtual servers from `ipvsadm -Ln` (weights, connections) and
// `ipvsadm -Ln --stats --exact` (traffic), kind and traffic policy from kube-proxy's ipsets,
// names from the owner file (a virtual server is a Service's address:port). Pure.
import { ipPortEntry, setName, type SetId } from '../dataplane/ipvs/ipsets.js';
import { rsKey, vsKey, type ListedRealServer, type VirtualServer } from '../dataplane/ipvs/virtual-servers.js';
import type { IPFamily } from '../model/types.js';
import { ownerLookup, type OwnerFile, type OwnerRecord } from './owners.js';
import { sortServices, type FrontendKind, type InspectedService, type InspectView } from './view.js';

export interface IpvsStats { readonly conns: number; readonly inPackets: number; readonly outPackets: number; readonly inBytes: number; readonly outBytes: number }

/** `ipvsadm -Ln --stats --exact` → "vsKey" and "vsKey rsKey" → counters. */
export function parseIpvsStats(text: string): Map<string, IpvsStats> {
  const out = new Map<string, IpvsStats>();
  let vs = '';
  const stats = (m: RegExpExecArray): IpvsStats => ({
    conns: Number(m[3]), inPackets: Number(m[4]), outPackets: Number(m[5]), inBytes: Number(m[6]), outBytes: Number(m[7]),
  });
  for (const line of text.split('\n')) {
    const svc = /^(TCP|UDP|SCTP)\s+(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/.exec(line);
    if (svc) {
      vs = `${svc[2]}/${svc[1]}`;
      out.set(vs, stats(svc));
      continue;
    }
    const rs = /^\s+->\s+(\S+)()\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/.exec(line);
    if (rs && vs) out.set(`${vs} ${rs[1]}`, stats(rs));
  }
  return out;
}

/** What kube-proxy's sets say about one virtual server: how it is reached, which endpoint set. */
function kindOf(vs: VirtualServer, sets: ReadonlyMap<string, ReadonlySet<string>>, family: IPFamily): { kind: FrontendKind; local: boolean } {
  const has = (id: SetId, entry: string) => sets.get(setName(id, family))?.has(entry) ?? false;
  const entry = ipPortEntry(vs.address, vs.protocol.toLowerCase(), vs.port);
  if (has('clusterIP', entry)) return { kind: 'ClusterIP', local: false };
  if (has('externalIP', entry) || has('externalIPLocal', entry)) return { kind: 'ExternalIP', local: has('externalIPLocal', entry) };
  if (has('loadBalancer', entry)) return { kind: 'LoadBalancer', local: has('loadBalancerLocal', entry) };
  const np = (['TCP', 'UDP', 'SCTP'] as const).indexOf(vs.protocol as 'TCP');
  const [all, local] = ([['nodePortTCP', 'nodePortLocalTCP'], ['nodePortUDP', 'nodePortLocalUDP'], ['nodePortSCTP', 'nodePortLocalSCTP']] as const)[np] ?? [];
  const npEntry = vs.protocol === 'SCTP' ? entry : String(vs.port);
  if (all && has(all, npEntry)) return { kind: 'NodePort', local: has(local!, npEntry) };
  return { kind: 'unknown', local: false };
}

const counters = (s: IpvsStats | undefined) => (s ? { ...s } : undefined);

export function ipvsView(
  servers: readonly VirtualServer<ListedRealServer>[], stats: ReadonlyMap<string, IpvsStats>,
  sets: ReadonlyMap<string, ReadonlySet<string>>, owners: OwnerFile | null, source: string,
): InspectView {
  const owner = ownerLookup(owners);
  const groups = new Map<OwnerRecord | string, { protocol: string; affinity: number | null; services: { vs: VirtualServer<ListedRealServer>; kind: FrontendKind; local: boolean }[] }>();
  for (const vs of servers) {
    const family: IPFamily = vs.address.includes(':') ? 'IPv6' : 'IPv4';
    const o = owner(vs.protocol, vs.address, vs.port);
    const fromSets = kindOf(vs, sets, family);
    const key = o?.record ?? vsKey(vs);
    const g = groups.get(key) ?? groups.set(key, { protocol: vs.protocol, affinity: vs.persistenceTimeout, services: [] }).get(key)!;
    g.services.push({ vs, kind: fromSets.kind !== 'unknown' ? fromSets.kind : o?.kind ?? 'unknown', local: fromSets.local });
  }
  const out = [...groups].map(([key, g]): InspectedService => {
    const r = typeof key === 'string' ? null : key;
    const backends = new Map<string, InspectedService['backends'][number]>();
    for (const { vs } of g.services) {
      for (const rs of vs.realServers) {
        const prev = backends.get(rsKey(rs));
        const s = stats.get(`${vsKey(vs)} ${rsKey(rs)}`);
        // one real server behind several virtual servers: connections and traffic add up
        const sum = (k: string, v: number | undefined) => (prev?.counters?.[k] ?? 0) + (v ?? 0);
        backends.set(rsKey(rs), {
          address: rs.address, port: rs.port, local: null, // weight 0: kube-proxy drains a removed endpoint's connections
          terminating: rs.weight === 0 ? true : null, weight: rs.weight,
          counters: {
            activeConns: sum('activeConns', rs.activeConns), inactiveConns: sum('inactiveConns', rs.inactiveConns),
            ...Object.fromEntries(Object.entries(s ?? {}).map(([k, v]) => [k, sum(k, v)])),
          },
        });
      }
    }
    const kinds = new Set(g.services.map((s) => s.kind));
    return {
      service: r?.service ?? null, portName: r?.portName ?? '', protocol: g.protocol, affinitySeconds: g.affinity,
      type: r?.type ?? (kinds.has('LoadBalancer') ? 'LoadBalancer' : kinds.has('NodePort') ? 'NodePort' : kinds.has('ClusterIP') ? 'ClusterIP' : 'unknown'),
      frontends: g.services.map(({ vs, kind, local }) => ({
        kind, address: vs.address, port: vs.port, scope: local ? 'local' : 'cluster',
        flags: [vs.scheduler, ...vs.schedFlags], backends: vs.realServers.length, counters: counters(stats.get(vsKey(vs))),
      })),
      backends: [...backends.values()],
    };
  });
  const unnamed = out.filter((s) => s.service === null).length;
  const notes = [
    ...(owners === null ? ['no owner file: virtual servers are shown without Service names (kube-proxy wrote them, or kube-xdp has not synced)'] : []),
    ...(unnamed > 0 && owners !== null ? [`${unnamed} virtual servers match no Service of the owner file`] : []),
  ];
  return { mode: 'ipvs', source, services: sortServices(out), counters: {}, notes };
}

