// Connect latency of the node's own clients (issue 12's benchmark): a host process's TCP
// connect() to a ClusterIP through the eBPF mode's socket hook, against kube-proxy's way (the
// iptables mode's nat OUTPUT DNAT, iptables-legacy), at 1 and 10,000 Services, p50/p90/p99.
//
// How: per mode and size, a scratch network namespace kxconn-<pid>-<n> (a veth pair, the
// backend address 10.244.0.1 on one end), the real controller in it (`kube-xdp run --source
// file:DIR`, the eBPF mode with --cgroup-root on a scratch child cgroup), N Services of one
// endpoint each (10.244.0.1:8080). bench/connect-lat.c listens on the backend and times COUNT
// blocking connect()s (local delivery: the handshake completes inside the syscall) to the last
// Service's ClusterIP and as many to the backend directly in the same namespace, taking turns:
// "added" is the ClusterIP's quantile minus the direct one's. In the eBPF mode the client runs in the
// hooks' cgroup, so its direct connect() pays the hook's frontend miss too; in the iptables mode
// it pays the nat OUTPUT chain's traversal. Nothing is asserted. Results:
// bench/results/connect.json and a Markdown table on stdout. KXBENCH_CONNECT_SIZES narrows a run.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { cgroup2Mount } from '../src/kernel/mounts.js';
import { writeSource, type LabService } from '../test/lab/manifests.js';
import { REPO, ensureBpffs } from '../test/bpf/fixture.js';
import { cleanupAll, onCleanup, spawnController, stopController, waitForSync } from './harness.js';

const SIZES = (process.env.KXBENCH_CONNECT_SIZES ?? '1,10000').split(',').map(Number);
const COUNT = Number(process.env.KXBENCH_CONNECT_COUNT ?? 20_000);
const CLI = `${REPO}dist/src/cli/main.js`;
const BACKEND = '10.244.0.1', BACKEND_PORT = 8080;
const SYNC_TIMEOUT_MS = 10 * 60_000;
const log = (msg: string) => process.stderr.write(`bench/connect: ${msg}\n`);

type Mode = 'ebpf' | 'iptables';
interface Lat { count: number; failed: number; p50: number; p90: number; p99: number; mean: number }
interface Row { mode: Mode; services: number; direct: Lat; service: Lat; added: { p50: number; p90: number; p99: number; mean: number } }

const clusterIP = (i: number) => `10.96.${(i >> 8) & 255}.${i & 255}`;
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8' });

function writeServices(path: string, n: number): void {
  const backend = { name: 'backend', ns: '', node: 'node1' as const, ip: BACKEND, hostIf: '', ports: [BACKEND_PORT], pid: 0 };
  const services: LabService[] = Array.from({ length: n }, (_, i) => ({
    name: `svc-${i}`, clusterIP: clusterIP(i + 1), port: 80, targetPort: BACKEND_PORT, protocols: ['TCP'], endpoints: [backend],
  }));
  writeSource(path, services);
}

/** connect-lat in the namespace (and the cgroup, when given): the backend directly and the
 *  ClusterIP, taking turns. */
function measure(helper: string, netns: string, cgroup: string | null, clusterIp: string): { direct: Lat; service: Lat } {
  const argv = [helper, BACKEND, String(BACKEND_PORT), String(COUNT), BACKEND, String(BACKEND_PORT), clusterIp, '80'];
  const r = spawnSync('nsenter', [`--net=/run/netns/${netns}`, '--', 'sh', '-ec',
    cgroup ? 'echo $$ > "$0/cgroup.procs"; exec "$@"' : 'exec "$@"', cgroup ?? '', ...argv], { encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`connect-lat exited ${r.status ?? r.signal}: ${r.stderr}`);
  const [direct, service] = JSON.parse(r.stdout) as [Lat, Lat];
  for (const l of [direct, service]) if (l.failed > 0) throw new Error(`connect-lat: ${l.failed} of ${COUNT} connect()s failed`);
  return { direct, service };
}

async function measureMode(mode: Mode, n: number, helper: string, work: string): Promise<Row> {
  const netns = `kxconn-${process.pid}-${mode}-${n}`;
  sh('ip', ['netns', 'add', netns]);
  const delNs = onCleanup(`netns ${netns}`, () => spawnSync('ip', ['netns', 'del', netns]));
  for (const cmd of [['link', 'add', 'kxa', 'type', 'veth', 'peer', 'name', 'kxb'], ['addr', 'add', `${BACKEND}/24`, 'dev', 'kxa'],
    ['link', 'set', 'lo', 'up'], ['link', 'set', 'kxa', 'up'], ['link', 'set', 'kxb', 'up'],
    // a node has a default route: kube-proxy's DNAT in nat OUTPUT comes after the route lookup
    ['route', 'add', 'default', 'via', '10.244.0.2', 'dev', 'kxa']]) sh('ip', ['-n', netns, ...cmd]);
  const cgroupRoot = cgroup2Mount();
  if (!cgroupRoot) throw new Error('no cgroup2 mount');
  const cgroup = mode === 'ebpf' ? join(cgroupRoot, netns) : null;
  const delCg = cgroup ? (mkdirSync(cgroup), onCleanup(`cgroup ${cgroup}`, () => rmdirSync(cgroup))) : () => {};
  const pinDir = `/sys/fs/bpf/${netns}`;
  const source = join(work, `services-${n}.json`);
  writeServices(source, n);
  const common = ['--source', `file:${source}`, '--node-name', 'bench', '--node-ip', BACKEND, '--metrics-bind-address', '', '--healthz-bind-address', ''];
  const args = mode === 'ebpf'
    ? [...common, '--external-interfaces', 'kxb', '--pod-interfaces', 'nomatch*', '--bpf-pin-dir', pinDir, '--cgroup-root', cgroup!]
    : [...common, '--mode', 'iptables', '--iptables-backend', 'legacy'];
  const delPins = onCleanup(`pins ${pinDir}`, () => rmSync(pinDir, { recursive: true, force: true }));
  log(`${mode}, ${n} Services: starting the controller`);
  const c = spawnController(netns, [process.execPath, CLI, 'run', ...args]);
  const stop = onCleanup(`controller pid ${c.proc.pid}`, () => stopController(c));
  await waitForSync(c, `${mode} ${n} Services`, SYNC_TIMEOUT_MS);
  const target = clusterIP(n);
  const { direct, service } = measure(helper, netns, cgroup, target);
  log(`${mode}, ${n} Services: direct p50 ${direct.p50} ns, ${target}:80 p50 ${service.p50} ns`);
  stop();
  if (mode === 'ebpf') spawnSync('nsenter', [`--net=/run/netns/${netns}`, '--', process.execPath, CLI, 'cleanup', '--bpf-pin-dir', pinDir, '--pod-interfaces', 'nomatch*']);
  delPins();
  delCg();
  delNs();
  return {
    mode, services: n, direct, service,
    added: { p50: service.p50 - direct.p50, p90: service.p90 - direct.p90, p99: service.p99 - direct.p99, mean: service.mean - direct.mean },
  };
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.error('bench/connect: needs root (network namespaces, cgroups, BPF)');
    process.exit(1);
  }
  ensureBpffs();
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(sig, () => { cleanupAll(); process.exit(130); });
  process.on('exit', cleanupAll);
  const work = mkdtempSync(join(tmpdir(), 'kxbench-connect-'));
  onCleanup(`work dir ${work}`, () => rmSync(work, { recursive: true, force: true }));
  const helper = join(work, 'connect-lat');
  sh('cc', ['-O2', '-Wall', '-Werror', '-o', helper, join(REPO, 'bench/connect-lat.c')]);
  const rows: Row[] = [];
  for (const n of SIZES) for (const mode of ['ebpf', 'iptables'] as const) rows.push(await measureMode(mode, n, helper, work));
  cleanupAll();
  const result = {
    kernel: release(), cpus: cpus().length, date: new Date().toISOString(), connects_per_measurement: COUNT,
    method: 'blocking TCP connect() to a local listener, timed alone; added = Service quantile minus the direct connect()\'s in the same namespace and cgroup',
    rows,
  };
  mkdirSync(join(REPO, 'bench/results'), { recursive: true });
  writeFileSync(join(REPO, 'bench/results/connect.json'), `${JSON.stringify(result, null, 2)}\n`);
  const us = (ns: number) => (ns / 1000).toFixed(2);
  console.log('| mode | Services | direct p50 / p99 (µs) | ClusterIP p50 / p99 (µs) | added p50 / p99 (µs) |');
  console.log('|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.mode === 'ebpf' ? 'eBPF socket hook' : 'iptables DNAT (legacy)'} | ${r.services} | ${us(r.direct.p50)} / ${us(r.direct.p99)} | ${us(r.service.p50)} / ${us(r.service.p99)} | ${us(r.added.p50)} / ${us(r.added.p99)} |`);
  }
}

await main();
