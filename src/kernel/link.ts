// A dummy interface and its addresses, through ip(8). Runs in the caller's netns.
import { isIPv6 } from 'node:net';
import { checkCommand, runCommand } from './command.js';

export function linkExists(name: string): boolean {
  return runCommand('ip', ['link', 'show', 'dev', name]).code === 0;
}

/** Creates the dummy interface if missing; it stays down (addresses on it are still local). */
export function ensureDummy(name: string): boolean {
  if (linkExists(name)) return false;
  checkCommand('ip', ['link', 'add', name, 'type', 'dummy']);
  return true;
}

export function deleteLink(name: string): boolean {
  if (!linkExists(name)) return false;
  checkCommand('ip', ['link', 'del', name]);
  return true;
}

/** The addresses on `name` (global and host scope, both families). */
export function linkAddresses(name: string): string[] {
  const out = JSON.parse(checkCommand('ip', ['-j', 'addr', 'show', 'dev', name])) as { addr_info?: { local?: string; scope?: string }[] }[];
  return out.flatMap((l) => l.addr_info ?? []).filter((a) => a.local && a.scope !== 'link').map((a) => a.local!);
}

export function addAddress(name: string, ip: string): void {
  // nodad: on a link that is down, an IPv6 address would otherwise stay tentative (not local).
  checkCommand('ip', ['addr', 'add', `${ip}/${isIPv6(ip) ? 128 : 32}`, 'dev', name, ...(isIPv6(ip) ? ['nodad'] : [])]);
}

export function deleteAddress(name: string, ip: string): void {
  checkCommand('ip', ['addr', 'del', `${ip}/${isIPv6(ip) ? 128 : 32}`, 'dev', name]);
}
