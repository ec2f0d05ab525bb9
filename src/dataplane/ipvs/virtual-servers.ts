// IPVS virtual and real servers as plain data, and their two text forms: the `ipvsadm --restore`
// lines the renderer prints (`ipvsadm -Sn` prints the same form back) and the `ipvsadm -Ln`
// listing the applier reads, which also carries each real server's connection counts. Pure.
import { isIPv6 } from 'node:net';
import type { Protocol } from '../../model/types.js';

export interface RealServer {
  readonly address: string;
  readonly port: number;
  readonly weight: number;
}

/** A real server as the kernel lists it: with its connection counts. */
export interface ListedRealServer extends RealServer {
  readonly activeConns: number;
  readonly inactiveConns: number;
}

export interface VirtualServer<R extends RealServer = RealServer> {
  readonly protocol: Protocol;
  readonly address: string;
  readonly port: number;
  readonly scheduler: string;
  /** Persistence (sessionAffinity ClientIP) in seconds; null = none. */
  readonly persistenceTimeout: number | null;
  /** Scheduler flags, as ipvsadm's -b names them (kube-proxy sets mh-port for "mh"). */
  readonly schedFlags: readonly string[];
  readonly realServers: readonly R[];
}

const PROTO_FLAG: Record<Protocol, string> = { TCP: '-t', UDP: '-u', SCTP: '--sctp-service' };
const FLAG_PROTO: Record<string, Protocol> = { '-t': 'TCP', '-u': 'UDP', '--sctp-service': 'SCTP' };

/** "10.96.0.1:443", "[fd00::1]:443" */
export const hostPort = (address: string, port: number) => (isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`);

/** Identity of a virtual server (kube-proxy's VirtualServer.String()). */
export const vsKey = (vs: Pick<VirtualServer, 'protocol' | 'address' | 'port'>) => `${hostPort(vs.address, vs.port)}/${vs.protocol}`;
export const rsKey = (rs: Pick<RealServer, 'address' | 'port'>) => hostPort(rs.address, rs.port);

export function serviceArgs(vs: Pick<VirtualServer, 'protocol' | 'address' | 'port'>): string {
  return `${PROTO_FLAG[vs.protocol]} ${hostPort(vs.address, vs.port)}`;
}

/** `-A`/`-E` arguments after the service: scheduler, flags, persistence. */
export function serviceOptions(vs: VirtualServer): string {
  return [
    `-s ${vs.scheduler}`,
    ...(vs.schedFlags.length ? [`-b ${vs.schedFlags.join(',')}`] : []),
    ...(vs.persistenceTimeout !== null ? [`-p ${vs.persistenceTimeout}`] : []),
  ].join(' ');
}

export const realServerArgs = (vs: VirtualServer, rs: RealServer) => `${serviceArgs(vs)} -r ${rsKey(rs)} -m -w ${rs.weight}`;

/** `ipvsadm --restore` input that creates exactly these servers (on an empty table). */
export function ipvsadmRestoreText(servers: readonly VirtualServer[]): string {
  const lines: string[] = [];
  for (const vs of servers) {
    lines.push(`-A ${serviceArgs(vs)} ${serviceOptions(vs)}`);
    for (const rs of vs.realServers) lines.push(`-a ${realServerArgs(vs, rs)}`);
  }
  return lines.map((l) => `${l}\n`).join('');
}

function splitHostPort(s: string): { address: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:]+):(\d+)$/.exec(s);
  if (!m) throw new Error(`${JSON.stringify(s)} is not ADDRESS:PORT`);
  return { address: m[1]!, port: Number(m[2]) };
}

/** Parses `ipvsadm -Sn` output (or ipvsadmRestoreText): only -A and -a lines, masquerading. */
export function parseIpvsadmSave(text: string): VirtualServer[] {
  const servers = new Map<string, { vs: Omit<VirtualServer, 'realServers'>; rs: RealServer[] }>();
  for (const line of text.split('\n')) {
    const words = line.trim().split(/\s+/);
    if (words[0] !== '-A' && words[0] !== '-a') continue;
    const protocol = FLAG_PROTO[words[1]!];
    if (!protocol) throw new Error(`unknown service kind in ${JSON.stringify(line)}`);
    const { address, port } = splitHostPort(words[2]!);
    const key = vsKey({ protocol, address, port });
    const opt = (flag: string) => {
      const i = words.indexOf(flag);
      return i < 0 ? null : words[i + 1] ?? null;
    };
    if (words[0] === '-A') {
      const p = opt('-p');
      const b = opt('-b');
      servers.set(key, {
        vs: { protocol, address, port, scheduler: opt('-s') ?? 'wlc', persistenceTimeout: p === null ? null : Number(p), schedFlags: b ? b.split(',') : [] },
        rs: [],
      });
    } else {
      const entry = servers.get(key);
      if (!entry) throw new Error(`real server before its service in ${JSON.stringify(line)}`);
      entry.rs.push({ ...splitHostPort(opt('-r')!), weight: Number(opt('-w') ?? '1') });
    }
  }
  return [...servers.values()].map(({ vs, rs }) => ({ ...vs, realServers: rs }));
}

/**
 * Parses `ipvsadm -Ln`:
 *   TCP  10.96.0.1:443 rr persistent 10800
 *     -> 10.0.0.1:6443                Masq    1      0          0
 * Only masquerading real servers are kube-xdp's; others are listed with their forward kind dropped.
 */
export function parseIpvsadmList(text: string): VirtualServer<ListedRealServer>[] {
  const out: { vs: Omit<VirtualServer, 'realServers'>; rs: ListedRealServer[] }[] = [];
  for (const line of text.split('\n')) {
    const svc = /^(TCP|UDP|SCTP)\s+(\S+)\s+(\S+)(.*)$/.exec(line);
    if (svc) {
      // After the scheduler: "(flag,flag)" and "persistent SECONDS", e.g. "sh (sh-fallback,sh-port) persistent 300".
      const flags = /\(([^)]*)\)/.exec(svc[4]!)?.[1];
      const persistent = /\bpersistent (\d+)/.exec(svc[4]!)?.[1];
      out.push({
        vs: {
          protocol: svc[1] as Protocol, ...splitHostPort(svc[2]!), scheduler: svc[3]!,
          persistenceTimeout: persistent === undefined ? null : Number(persistent), schedFlags: flags ? flags.split(',') : [],
        },
        rs: [],
      });
      continue;
    }
    const rs = /^\s+->\s+(\S+)\s+\S+\s+(\d+)\s+(\d+)\s+(\d+)/.exec(line);
    if (rs && out.length) {
      out[out.length - 1]!.rs.push({ ...splitHostPort(rs[1]!), weight: Number(rs[2]), activeConns: Number(rs[3]), inactiveConns: Number(rs[4]) });
    }
  }
  return out.map(({ vs, rs }) => ({ ...vs, realServers: rs }));
}

/** Sorted copy, for comparing what two sources list (the kernel lists in hash order). */
export function canonical<R extends RealServer>(servers: readonly VirtualServer<R>[]): VirtualServer<RealServer>[] {
  const byKey = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return [...servers]
    .map((vs) => ({
      ...vs,
      schedFlags: [...vs.schedFlags].sort(),
      realServers: vs.realServers.map((r) => ({ address: r.address, port: r.port, weight: r.weight })).sort((a, b) => byKey(rsKey(a), rsKey(b))),
    }))
    .sort((a, b) => byKey(vsKey(a), vsKey(b)));
}
