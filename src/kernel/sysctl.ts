// Per-network-namespace sysctls under /proc/sys/net (they follow the caller's netns).
// Keys are slash paths ("net/ipv4/conf/eth0.100/accept_local"): interface names may hold dots.
import { readFileSync, writeFileSync } from 'node:fs';

export function readSysctl(key: string): string {
  return readFileSync(`/proc/sys/${key}`, 'utf8').trim();
}

/** Sets a sysctl and returns its previous value, or null if it already had this value. */
export function ensureSysctl(key: string, value: string): string | null {
  const before = readSysctl(key);
  if (before === value) return null;
  writeFileSync(`/proc/sys/${key}`, value);
  return before;
}
