// Deletes conntrack entries with the conntrack(8) tool, in the caller's netns.
import { spawnSync } from 'node:child_process';
import type { ConntrackDeletion } from '../dataplane/conntrack.js';
import type { IPFamily } from '../model/types.js';

export function conntrackArgs(d: ConntrackDeletion, family: IPFamily): string[] {
  const base = ['-D', '-f', family === 'IPv6' ? 'ipv6' : 'ipv4', '-p', 'udp'];
  switch (d.kind) {
    case 'dst': return [...base, '--orig-dst', d.ip];
    case 'port': return [...base, '--orig-port-dst', String(d.port)];
    case 'nat': return [...base, '--orig-dst', d.dst, '--dst-nat', d.endpointIP];
    case 'port-nat': return [...base, '--orig-port-dst', String(d.port), '--dst-nat', d.endpointIP];
  }
}

/** Runs each deletion; "0 flow entries" (exit 1) is success. Returns the failures' messages. */
export function deleteConntrack(deletions: readonly ConntrackDeletion[], family: IPFamily): string[] {
  const failures: string[] = [];
  for (const d of deletions) {
    const args = conntrackArgs(d, family);
    const r = spawnSync('conntrack', args, { encoding: 'utf8' });
    const ok = r.status === 0 || (r.status === 1 && /0 flow entries/.test(r.stderr));
    if (!ok) failures.push(`conntrack ${args.join(' ')}: ${r.error?.message ?? r.stderr.trim()}`);
  }
  return failures;
}
