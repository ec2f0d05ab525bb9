// Where cgroup v2 is mounted: /sys/fs/cgroup on unified hosts, /sys/fs/cgroup/unified on hybrid
// ones (systemd's hybrid mode), elsewhere by choice; read from /proc/mounts, never assumed.
import { readFileSync } from 'node:fs';

/** The first cgroup2 mount point in a /proc/mounts text (octal escapes decoded), or null. */
export function cgroup2MountIn(mounts: string): string | null {
  for (const line of mounts.split('\n')) {
    const [, point, type] = line.split(' ');
    if (type === 'cgroup2' && point) return point.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  }
  return null;
}

export function cgroup2Mount(): string | null {
  return cgroup2MountIn(readFileSync('/proc/mounts', 'utf8'));
}
