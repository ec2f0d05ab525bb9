// What the maps hold, joined into services and backends: for `kube-xdp inspect` and tests.
import { addressBytes } from '../../model/cidr.js';
import type { MapDumps } from './readback.js';
import {
  BE_LOCAL, BE_TERMINATING, FE_AFFINITY, FE_LOCAL_ONLY, FE_MASQ_ALL, FE_MASQ_LOCAL, FE_MASQ_OFF_CLUSTER, FE_NODEPORT, FE_REJECT,
  FE_SRC_RANGES, PROTO_NAME, SCOPE_EXT, SCOPE_HOST,
} from './maps.js';

const FRONTEND_FLAGS: ReadonlyArray<readonly [number, string]> = [
  [FE_NODEPORT, 'snat-remote'], [FE_LOCAL_ONLY, 'local-only'], [FE_AFFINITY, 'affinity'], [FE_REJECT, 'reject'],
  [FE_SRC_RANGES, 'source-ranges'], [FE_MASQ_ALL, 'masquerade-all'], [FE_MASQ_OFF_CLUSTER, 'masquerade-off-cluster'],
  [FE_MASQ_LOCAL, 'snat-local'],
];

export interface DescribedBackend { readonly address: string; readonly port: number; readonly id: number; readonly flags: string[] }
export interface DescribedFrontend {
  readonly protocol: string; readonly address: string; readonly port: number; readonly scope: 'external' | 'internal' | 'host';
  readonly svcId: number; readonly revNat: string | null; readonly flags: string[]; readonly backends: DescribedBackend[];
}
export interface Description {
  readonly frontends: DescribedFrontend[]; readonly nodeAddress: string | null; readonly nodeAddress6: string | null;
}

const flagNames = (v: number, table: ReadonlyArray<readonly [number, string]>) => table.filter(([bit]) => v & bit).map(([, n]) => n);

export function describeMaps(d: MapDumps): Description {
  const backends = new Map(d.backends.map(([id, v]) => [id, v]));
  const revnat = new Map(d.revnat.map(([id, v]) => [id, hostPort(v.addr, v.port)]));
  const slots = new Map(d.slots.map(([k, v]) => [`${k.svcId}/${k.slot}`, v.backendId]));
  const frontends = d.frontends.map(([k, v]): DescribedFrontend => ({
    protocol: PROTO_NAME[k.proto] ?? String(k.proto),
    address: k.addr,
    port: k.port,
    scope: k.scope === SCOPE_EXT ? 'external' : k.scope === SCOPE_HOST ? 'host' : 'internal',
    svcId: v.svcId,
    revNat: revnat.get(v.revNatId) ?? null,
    flags: flagNames(v.flags, FRONTEND_FLAGS),
    backends: Array.from({ length: v.count }, (_, slot) => {
      const id = slots.get(`${v.svcId}/${slot}`) ?? 0;
      const b = backends.get(id);
      return {
        address: b?.addr ?? '?', port: b?.port ?? 0, id,
        flags: b ? flagNames(b.flags, [[BE_LOCAL, 'local'], [BE_TERMINATING, 'terminating']]) : ['missing'],
      };
    }),
  }));
  frontends.sort((a, b) => a.protocol.localeCompare(b.protocol) || ipOrder(a.address).localeCompare(ipOrder(b.address)) ||
    a.port - b.port || a.scope.localeCompare(b.scope));
  const node6 = d.config6?.nodeAddr;
  return { frontends, nodeAddress: d.config?.nodeAddr ?? null, nodeAddress6: node6 && node6 !== '::' ? node6 : null };
}

/** IPv4 before IPv6, each in numeric order. */
const ipOrder = (ip: string) => `${ip.includes(':') ? 6 : 4}${addressBytes(ip)?.toString('hex') ?? ip}`;
const hostPort = (ip: string, port: number) => (ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`);

/** A table in the spirit of `ipvsadm -Ln`. */
export function formatDescription(d: Description): string {
  const lines = [
    `kube-xdp eBPF dataplane (node address ${d.nodeAddress ?? 'unset'}${d.nodeAddress6 ? `, IPv6 ${d.nodeAddress6}` : ''})`,
    'Prot LocalAddress:Port            Scope     Flags',
    '  -> RemoteAddress:Port           Id        Flags',
  ];
  for (const f of d.frontends) {
    lines.push(`${f.protocol.padEnd(4)} ${hostPort(f.address, f.port).padEnd(28)} ${f.scope.padEnd(9)} ${f.flags.join(',')}${f.backends.length === 0 ? (f.flags.includes('reject') ? ' (no endpoints: rejected)' : ' (no local endpoints: dropped)') : ''}`);
    for (const b of f.backends) lines.push(`  -> ${hostPort(b.address, b.port).padEnd(28)} ${String(b.id).padEnd(9)} ${b.flags.join(',')}`);
  }
  return `${lines.join('\n')}\n`;
}
