// The filesystems kube-xdp needs, found in /proc/mounts, never assumed: cgroup v2 (at
// /sys/fs/cgroup on unified hosts, /sys/fs/cgroup/unified on hybrid ones, elsewhere by choice)
// and bpffs (not mounted at boot on every machine).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Mount points of filesystems of `type` in a /proc/mounts text (octal escapes decoded). */
export function mountPointsIn(mounts: string, type: string): string[] {
  return mounts.split('\n').flatMap((line) => {
    const [, point, t] = line.split(' ');
    return t === type && point ? [point.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))] : [];
  });
}

// read, not spawned: a process low on memory must not need fork() to learn it
const mounts = (): string => readFileSync('/proc/self/mounts', 'utf8');

/** The first cgroup2 mount point, or null. */
export function cgroup2Mount(): string | null {
  return mountPointsIn(mounts(), 'cgroup2')[0] ?? null;
}

/** Mounts bpffs on /sys/fs/bpf unless it is there. */
export function ensureBpffs(): void {
  if (!mountPointsIn(mounts(), 'bpf').includes('/sys/fs/bpf')) execFileSync('mount', ['-t', 'bpf', 'bpf', '/sys/fs/bpf']);
}
