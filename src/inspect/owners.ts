// Which Service owns which address:port, for the modes whose kernel state carries no names (eBPF
// maps, IPVS virtual servers). The controller writes it after every successful sync; `inspect`
// reads it. It lives on tmpfs beside the pins (bpffs holds only BPF objects): one file per pin
// dir for eBPF, per network namespace for IPVS. The records are pure; the file is the edge.
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Logger } from 'pino';
import type { ProxyState, ServicePort } from '../model/types.js';
import type { FrontendKind } from './view.js';

export const OWNER_DIR = '/run/kube-xdp';

export interface OwnerRecord {
  readonly service: string;
  readonly portName: string;
  readonly type: ServicePort['type'];
  readonly protocol: ServicePort['protocol'];
  readonly port: number;
  readonly nodePort: number | null;
  readonly clusterIPs: readonly string[];
  readonly externalIPs: readonly string[];
  readonly loadBalancerIPs: readonly string[];
  readonly affinitySeconds: number | null;
}

export interface OwnerFile {
  readonly version: 1;
  readonly generation: number | null;
  readonly services: readonly OwnerRecord[];
}

export function ownerRecord(sp: ServicePort): OwnerRecord {
  return {
    service: `${sp.namespace}/${sp.name}`, portName: sp.portName, type: sp.type, protocol: sp.protocol, port: sp.port,
    nodePort: sp.nodePort, clusterIPs: sp.clusterIPs, externalIPs: sp.externalIPs, loadBalancerIPs: sp.loadBalancerIPs,
    affinitySeconds: sp.sessionAffinityTimeoutSeconds,
  };
}

export const ownerFileForPins = (pinDir: string) => `${OWNER_DIR}/${basename(pinDir)}.json`;
/** The inode of /proc/self/ns/net names the network namespace the caller runs in. */
export const ownerFileForNetns = () => `${OWNER_DIR}/netns-${statSync('/proc/self/ns/net').ino}.json`;

export interface Owner { readonly record: OwnerRecord; readonly kind: FrontendKind }

/** Pure: (protocol, address, port) → the Service port and the field the address comes from.
 *  Exact addresses first; otherwise the port is taken as a NodePort on any node address. */
export function ownerLookup(file: OwnerFile | null): (protocol: string, address: string, port: number) => Owner | null {
  const exact = new Map<string, Owner>();
  const nodePorts = new Map<string, Owner>();
  for (const record of file?.services ?? []) {
    const add = (kind: FrontendKind, ips: readonly string[]) => {
      for (const ip of ips) {
        const k = `${record.protocol} ${ip} ${record.port}`;
        if (!exact.has(k)) exact.set(k, { record, kind });
      }
    };
    add('ClusterIP', record.clusterIPs);
    add('ExternalIP', record.externalIPs);
    add('LoadBalancer', record.loadBalancerIPs);
    if (record.nodePort !== null) nodePorts.set(`${record.protocol} ${record.nodePort}`, { record, kind: 'NodePort' });
  }
  return (protocol, address, port) => exact.get(`${protocol} ${address} ${port}`) ?? nodePorts.get(`${protocol} ${port}`) ?? null;
}

/** null when there is no file (a controller that never synced, or kube-proxy's own state). */
export function readOwnerFile(path: string): OwnerFile | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const f = JSON.parse(text) as OwnerFile;
  if (f.version !== 1) throw new Error(`${path}: owner file version ${String(f.version)}, this kube-xdp reads version 1`);
  return f;
}

export function removeOwnerFile(path: string): void {
  rmSync(path, { force: true });
}

/** Writes the file after a sync when the Service ports changed (the tracker reuses unchanged
 *  ports' frozen objects, so identity tells). A failure is logged once and never fails the sync:
 *  only inspect's names depend on the file. */
export class OwnerFileWriter {
  private last: readonly ServicePort[] | null = null;
  private readonly records = new WeakMap<ServicePort, OwnerRecord>();
  private failed = false;

  constructor(readonly path: string, private readonly log: Logger) {}

  write(state: ProxyState): void {
    const last = this.last;
    if (last !== null && state.services.length === last.length && state.services.every((sp, i) => sp === last[i])) return;
    const services = state.services.map((sp) => this.records.get(sp) ?? this.records.set(sp, ownerRecord(sp)).get(sp)!);
    const file: OwnerFile = { version: 1, generation: state.generation ?? null, services };
    try {
      mkdirSync(dirname(this.path), { recursive: true });
      // rename: a reader sees the old file or the new one, never half of one
      writeFileSync(`${this.path}.tmp`, JSON.stringify(file));
      renameSync(`${this.path}.tmp`, this.path);
      this.last = state.services;
      this.failed = false;
    } catch (err) {
      if (!this.failed) this.log.warn({ path: this.path, err: (err as Error).message }, 'cannot write the Service owner file: inspect will show addresses without names');
      this.failed = true;
    }
  }
}
