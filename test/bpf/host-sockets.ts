// The socket hooks of a fixture against real sockets: a scratch network namespace plays the
// node's and a scratch cgroup (a child of the cgroup2 mount, never its root) holds the probe
// (socket-probe.ts) that connect()s from there. Nothing is made outside them; close() removes
// both, and the fixture's close() the links.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, rmdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { cgroup2Mount } from '../../src/kernel/mounts.js';
import type { Dataplane } from './fixture.js';

const PROBE = fileURLToPath(new URL('./socket-probe.js', import.meta.url));

export interface ProbeFlow { proto: 'tcp' | 'udp'; dst: string; port: number; sends: number }

/** Routes to anywhere (default routes to a neighbour that never answers) and a loopback. */
const NETNS_SETUP = [
  'ip link set lo up',
  'ip link add kxa type veth peer name kxb',
  'ip link set kxa up', 'ip link set kxb up',
  'ip addr add 192.0.2.1/24 dev kxa', 'ip -6 addr add 2001:db8::1/64 dev kxa nodad',
  'ip route add default via 192.0.2.2 dev kxa', 'ip -6 route add default via 2001:db8::2 dev kxa',
].join('\n');

export class HostSockets {
  readonly ns: string;
  readonly cgroup: string;

  constructor(private readonly dp: Dataplane) {
    const root = cgroup2Mount();
    if (!root) throw new Error('no cgroup2 mount in /proc/mounts: the socket hooks need one');
    const id = `kxsock-${process.pid}-${randomBytes(3).toString('hex')}`;
    this.ns = id;
    this.cgroup = `${root}/${id}`;
    execFileSync('ip', ['netns', 'add', this.ns]);
    try {
      execFileSync('ip', ['netns', 'exec', this.ns, 'sh', '-ec', NETNS_SETUP]);
      mkdirSync(this.cgroup);
      dp.attachSocketHooks(this.cgroup);
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** Per flow, the distinct outcomes of its sends (see socket-probe.ts). */
  run(flows: readonly ProbeFlow[]): string[][] {
    if (flows.length === 0) return [];
    const r = spawnSync('nsenter', [`--net=/run/netns/${this.ns}`, 'sh', '-ec', 'echo $$ > "$0/cgroup.procs"; exec "$@"',
      this.cgroup, process.execPath, PROBE, this.dp.pinRoot], { input: JSON.stringify(flows), encoding: 'utf8', timeout: 120_000 });
    if (r.status !== 0) throw new Error(`socket probe exited ${r.status ?? r.signal}: ${r.stderr}`);
    return JSON.parse(r.stdout) as string[][];
  }

  close(): void {
    spawnSync('ip', ['netns', 'del', this.ns]);
    try {
      rmdirSync(this.cgroup); // empty: spawnSync waited for the probe
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
}
