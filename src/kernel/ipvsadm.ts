// The kernel's IPVS table through ipvsadm (numeric output only). Runs in the caller's netns.
import { checkCommand } from './command.js';

/** `ipvsadm -Ln`: services, real servers, weights and connection counts. */
export function listIpvs(): string {
  return checkCommand('ipvsadm', ['-L', '-n']);
}

/** `ipvsadm -Ln --stats --exact`: connections, packets and bytes per service and real server. */
export function listIpvsStats(): string {
  return checkCommand('ipvsadm', ['-L', '-n', '--stats', '--exact']);
}

/** Applies `ipvsadm --restore` lines; ipvsadm stops at the first failing line. */
export function restoreIpvs(lines: readonly string[]): void {
  if (lines.length === 0) return;
  checkCommand('ipvsadm', ['--restore'], lines.map((l) => `${l}\n`).join(''));
}

/** `ipvsadm --set tcp tcpfin udp` (seconds; 0 keeps the kernel's value). */
export function setIpvsTimeouts(tcp: number, tcpFin: number, udp: number): void {
  checkCommand('ipvsadm', ['--set', String(tcp), String(tcpFin), String(udp)]);
}

/** Removes every virtual server (kube-proxy's cleanup does the same). */
export function clearIpvs(): void {
  checkCommand('ipvsadm', ['-C']);
}
