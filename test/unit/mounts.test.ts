import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mountPointsIn } from '../../src/kernel/mounts.js';

// /proc/mounts of a systemd hybrid host (these machines), and of a container that mounted the
// node's hierarchy as the DaemonSet does.
const HYBRID = `sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
tmpfs /sys/fs/cgroup tmpfs ro,nosuid,nodev,noexec,mode=755 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate 0 0
cgroup /sys/fs/cgroup/systemd cgroup rw,nosuid,nodev,noexec,relatime,xattr,name=systemd 0 0
bpf /sys/fs/bpf bpf rw,relatime 0 0
none /run/kube\\040xdp/cgroupv2 cgroup2 rw,relatime 0 0
`;

test('mount points by type: cgroup2 on a hybrid host is /sys/fs/cgroup/unified (not the v1 tmpfs above it); octal escapes decoded', () => {
  assert.deepEqual(mountPointsIn(HYBRID, 'cgroup2'), ['/sys/fs/cgroup/unified', '/run/kube xdp/cgroupv2']);
  assert.deepEqual(mountPointsIn(HYBRID, 'bpf'), ['/sys/fs/bpf']);
  assert.deepEqual(mountPointsIn(HYBRID, 'cgroup'), ['/sys/fs/cgroup/systemd']);
  assert.deepEqual(mountPointsIn('', 'cgroup2'), []);
});
