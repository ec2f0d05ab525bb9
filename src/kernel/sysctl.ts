// Per-network-namespace sysctls under /proc/sys/net (they follow the caller's netns).
// Keys are slash paths ("net/ipv4/conf/eth0.100/accept_local"): interface names may hold dots.
import { readFileSync, writeFileSync } from 'node:fs';

/** Sets a sysctl and returns its previous value, or null if it already had this value. */
export function ensureSysctl(key: string, value: string): string | null {
  const path = `/proc/sys/${key}`;
  const before = readFileSync(path, 'utf8').trim();
  if (before === value) return null;
  writeFileSync(path, value);
  return before;
}
