// The eBPF mode's view: the pinned maps (describe.ts) named with the owner file. Pure.
import type { Description } from '../dataplane/ebpf/describe.js';
import { ownerLookup, type OwnerFile, type OwnerRecord } from './owners.js';
import { sortServices, type InspectedBackend, type InspectedFrontend, type InspectedService, type InspectView } from './view.js';

export function ebpfView(d: Description, stats: Readonly<Record<string, number>>, owners: OwnerFile | null, source: string): InspectView {
  const owner = ownerLookup(owners);
  const groups = new Map<OwnerRecord | string, { protocol: string; frontends: InspectedFrontend[]; backends: Map<string, InspectedBackend> }>();
  let unnamed = 0;
  for (const f of d.frontends) {
    const o = owner(f.protocol, f.address, f.port);
    if (!o) unnamed++;
    // an unnamed frontend stands alone with its other scopes
    const key = o?.record ?? `${f.protocol} ${f.address} ${f.port}`;
    const g = groups.get(key) ?? groups.set(key, { protocol: f.protocol, frontends: [], backends: new Map() }).get(key)!;
    g.frontends.push({ kind: o?.kind ?? 'unknown', address: f.address, port: f.port, scope: f.scope, flags: f.flags, backends: f.backends.length });
    for (const b of f.backends) {
      g.backends.set(`${b.address} ${b.port}`, {
        address: b.address, port: b.port, local: b.flags.includes('local'), terminating: b.flags.includes('terminating'),
      });
    }
  }
  const services = [...groups].map(([key, g]): InspectedService => {
    const r = typeof key === 'string' ? null : key;
    return {
      service: r?.service ?? null, portName: r?.portName ?? '', type: r?.type ?? 'unknown', protocol: g.protocol,
      affinitySeconds: r?.affinitySeconds ?? null, frontends: g.frontends, backends: [...g.backends.values()],
    };
  });
  const notes = [
    ...(owners === null ? ['no owner file: the controller has not synced since it started writing one, or it is not kube-xdp'] : []),
    ...(unnamed > 0 && owners !== null ? [`${unnamed} frontends match no Service of the owner file (written at the last sync)`] : []),
  ];
  return { mode: 'ebpf', source, services: sortServices(services), counters: stats, notes };
}
