// From the kernel's IPVS table and the desired one to the `ipvsadm --restore` commands that
// turn the first into the second, with kube-proxy's graceful termination: a real server that is
// no longer wanted first gets weight 0 (no new connections) and is deleted once it has none
// left; UDP and SCTP real servers are deleted at once (expire_nodest_conn drops their flows).
// Everything is read from the kernel's listing, so no memory survives between syncs. Pure.
import type { Protocol } from '../../model/types.js';
import {
  realServerArgs, rsKey, serviceArgs, serviceOptions, vsKey, type ListedRealServer, type RealServer, type VirtualServer,
} from './virtual-servers.js';

export interface IpvsPlan {
  /** `ipvsadm --restore` lines, deletions of services first. */
  readonly lines: readonly string[];
  readonly servicesAdded: number;
  readonly servicesEdited: number;
  readonly servicesDeleted: number;
  readonly realServersAdded: number;
  readonly realServersEdited: number;
  readonly realServersDeleted: number;
  /** Unwanted real servers kept at weight 0 while connections drain ("vs/rs"). */
  readonly terminating: readonly string[];
}

/** kube-proxy's IsRsGracefulTerminationNeeded. */
export const gracefulTermination = (p: Protocol) => p === 'TCP';

const sameService = (a: VirtualServer, b: VirtualServer) =>
  a.scheduler === b.scheduler && a.persistenceTimeout === b.persistenceTimeout && a.schedFlags.join() === b.schedFlags.join();

/**
 * @param owned  which of the kernel's virtual servers kube-xdp may delete (not those in
 *               ipvs.excludeCIDRs, say)
 */
export function planIpvs(
  current: readonly VirtualServer<ListedRealServer>[],
  desired: readonly VirtualServer[],
  owned: (vs: VirtualServer) => boolean,
): IpvsPlan {
  const deletes: string[] = [];
  const services: string[] = [];
  const reals: string[] = [];
  const terminating: string[] = [];
  const n = { servicesAdded: 0, servicesEdited: 0, servicesDeleted: 0, realServersAdded: 0, realServersEdited: 0, realServersDeleted: 0 };
  const wanted = new Set(desired.map(vsKey));
  for (const vs of current) {
    if (wanted.has(vsKey(vs)) || !owned(vs)) continue;
    deletes.push(`-D ${serviceArgs(vs)}`);
    n.servicesDeleted++;
  }
  const now = new Map(current.map((vs) => [vsKey(vs), vs]));
  for (const vs of desired) {
    const cur = now.get(vsKey(vs));
    if (!cur) {
      services.push(`-A ${serviceArgs(vs)} ${serviceOptions(vs)}`);
      n.servicesAdded++;
    } else if (!sameService(cur, vs)) {
      services.push(`-E ${serviceArgs(vs)} ${serviceOptions(vs)}`);
      n.servicesEdited++;
    }
    const have = new Map((cur?.realServers ?? []).map((rs) => [rsKey(rs), rs]));
    const want = new Set(vs.realServers.map(rsKey));
    for (const rs of vs.realServers) {
      const h = have.get(rsKey(rs));
      if (!h) {
        reals.push(`-a ${realServerArgs(vs, rs)}`);
        n.realServersAdded++;
      } else if (h.weight !== rs.weight) {
        // Also brings back a real server that was draining.
        reals.push(`-e ${realServerArgs(vs, rs)}`);
        n.realServersEdited++;
      }
    }
    for (const rs of cur?.realServers ?? []) {
      if (want.has(rsKey(rs))) continue;
      if (!gracefulTermination(vs.protocol) || rs.activeConns + rs.inactiveConns === 0) {
        reals.push(`-d ${serviceArgs(vs)} -r ${rsKey(rs)}`);
        n.realServersDeleted++;
        continue;
      }
      terminating.push(`${vsKey(vs)}/${rsKey(rs)}`);
      if (rs.weight !== 0) {
        reals.push(`-e ${realServerArgs(vs, { ...rs, weight: 0 } satisfies RealServer)}`);
        n.realServersEdited++;
      }
    }
  }
  return { lines: [...deletes, ...services, ...reals], ...n, terminating };
}
