// The netns lab (DESIGN §4): a CNI-like two-node topology with real packets, built only inside
// namespaces named kx<id>-*. Nothing is ever created or configured in the root network
// namespace: every link is created by an `ip -n <lab ns>` and every exec is confined to a lab ns.
import { spawn as cpSpawn, execFileSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Summary } from './client.js';
import { cgroup2Mount } from '../../src/kernel/mounts.js';
import { OWNER_DIR } from '../../src/inspect/owners.js';

export type ClientSummary = Summary;
export type NodeName = 'node1' | 'node2';
export const NODE_NAMES: readonly NodeName[] = ['node1', 'node2'];

export interface PodSpec { name: string; node: NodeName; ports?: number[] }
export interface LabOptions {
  pods?: PodSpec[];
  /** IPv6 beside IPv4 (off: an IPv4-only lab as before): nodes fd77::<i>/64 on the wire, ext
   *  fd77::100, pods fd44:<node>::<k>/128 (k as the IPv4 one's last byte, in hex) behind a
   *  link-local gateway fe80::1 whose neighbour entry is pinned; IPv6 forwarding on the nodes,
   *  DAD off in every lab namespace. */
  dualStack?: boolean;
}
export interface LabPod {
  name: string; ns: string; node: NodeName; ip: string;
  /** dualStack only: the pod's IPv6 address. */
  ip6?: string;
  /** Host side of the pod's veth, in the node namespace. */
  hostIf: string; ports: number[];
  /** pid of the pod's echo server. */
  pid: number;
}
export interface LabNode {
  name: NodeName; ns: string; ip: string; extIf: 'eth0'; podCidr: string; pods: LabPod[];
  /** dualStack only: the node's IPv6 address on the wire and its pods' IPv6 prefix. */
  ip6?: string; podCidr6?: string;
}
export interface ExecResult { code: number; stdout: string; stderr: string }
export interface ExecOptions { input?: string; timeoutMs?: number; /** throw on a non-zero exit */ check?: boolean }
export interface SpawnOptions { useNsenter?: boolean; stdio?: StdioOptions; env?: NodeJS.ProcessEnv }
export type LabProcess = ChildProcess & {
  /** Output captured so far (last 1 MiB of each stream; empty if not piped). */
  output(): { stdout: string; stderr: string };
  /** Resolves with stdout once it matches; rejects on exit or timeout. */
  waitFor(pattern: string | RegExp, timeoutMs?: number): Promise<string>;
  /** SIGTERM, then SIGKILL after 2 s. */
  stop(): Promise<void>;
};
export interface ClientOptions {
  proto: 'tcp' | 'udp'; target: string; count?: number; timeoutMs?: number; concurrency?: number;
  steady?: { intervalMs?: number; durationMs: number };
  /** UDP: connect() each socket, so ICMP errors surface as ECONNREFUSED. */
  connected?: boolean;
  /** TCP: send a line of this many bytes on each connection and wait for its answer. */
  payload?: number;
}
export interface Lab {
  id: string;
  /** Every namespace, pin dir and marker of this lab starts with this. */
  prefix: string;
  nodes: Record<NodeName, LabNode>;
  ext: { ns: string; ip: string; /** dualStack only */ ip6?: string };
  /** The "physical" L2 network: bridge br0 with ports n1, n2, ext. */
  wire: { ns: string };
  pods: LabPod[];
  pod(name: string): LabPod;
  exec(ns: string, argv: string[], opts?: ExecOptions): Promise<ExecResult>;
  /** nsenter --net only: keeps the mount namespace, so /sys/fs/bpf stays visible. */
  execNet(ns: string, argv: string[], opts?: ExecOptions): Promise<ExecResult>;
  spawn(ns: string, argv: string[], opts?: SpawnOptions): LabProcess;
  /** cgroup: run the client in this cgroup (a node's, where its socket hooks are attached). */
  client(ns: string, args: ClientOptions | string[], opts?: { cgroup?: string }): Promise<ClientSummary>;
  addPod(spec: PodSpec): Promise<LabPod>;
  removePod(name: string): Promise<void>;
  pinDir(node: NodeName): string;
  /** The node's scratch cgroup (a child of the cgroup2 mount, made on first use), where its
   *  controller attaches the socket hooks: the node's processes that join it are the node's
   *  host-network clients. '' when the machine has no cgroup2. */
  cgroup(node: NodeName): string;
  teardown(): Promise<void>;
}

const HERE = fileURLToPath(new URL('.', import.meta.url));
const ECHO = `${HERE}echo-server.js`;
const CLIENT = `${HERE}client.js`;
const XDP_PASS_OBJ = fileURLToPath(new URL('../../../build/empty.bpf.o', import.meta.url));
const BPFFS = '/sys/fs/bpf';
const MARKERS = '/run/kx-labs'; // owner pid per lab id, so sweepLabs spares live labs
const CGROUP2 = cgroup2Mount();
const GW = '169.254.1.1';
const HOST_MAC = 'ee:ee:ee:ee:ee:ee';
const WIRE_NET = '192.168.77';
const WIRE_NET6 = 'fd77::'; // fd77::<i>/64
const GW6 = 'fe80::1';
const DEFAULT_PODS: PodSpec[] = [
  { name: 'a', node: 'node1' }, { name: 'b', node: 'node1' },
  { name: 'c', node: 'node2' }, { name: 'd', node: 'node2' },
];
const RESERVED = new Set(['wire', 'ext', 'n1', 'n2']);
const nodeIdx = (n: NodeName): number => (n === 'node1' ? 1 : 2);

/** `ip:port`, or `[ip]:port` for IPv6: how client.ts takes targets and reports peers. */
export const hostPort = (ip: string, port: number): string => (ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`);

/** IPv6 in a lab namespace: enabled, and no duplicate address detection (a tentative address
 *  cannot be used for a second or more). Set before links are made: they inherit `default`. */
const IPV6_ON = {
  'net.ipv6.conf.all.disable_ipv6': 0, 'net.ipv6.conf.default.disable_ipv6': 0,
  'net.ipv6.conf.all.accept_dad': 0, 'net.ipv6.conf.default.accept_dad': 0,
};

/** Why the lab cannot run here, or null. */
export function labUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'the netns lab needs root (namespaces, veth, sysctl)';
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin'];
  const has = (t: string): boolean => dirs.some((d) => {
    try { accessSync(`${d}/${t}`, constants.X_OK); return true; } catch { return false; }
  });
  const missing = ['ip', 'nsenter', 'ethtool'].filter((t) => !has(t));
  return missing.length ? `netns lab tools missing: ${missing.join(', ')} (Debian: iproute2 util-linux ethtool)` : null;
}

export { ensureBpffs } from '../../src/kernel/mounts.js';

export function listNetns(): string[] {
  const out = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return out.split('\n').map((l) => l.split(' ')[0] ?? '').filter(Boolean);
}

function run(argv: string[], opts: ExecOptions = {}, track?: (c: ChildProcess) => void): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const [cmd, ...args] = argv;
    const c = cpSpawn(cmd ?? '', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    track?.(c);
    let stdout = '';
    let stderr = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    c.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    c.stdin.on('error', () => { /* child exited before reading */ });
    c.stdin.end(opts.input ?? '');
    const timer = opts.timeoutMs ? setTimeout(() => c.kill('SIGKILL'), opts.timeoutMs) : undefined;
    c.on('error', (e) => { clearTimeout(timer); reject(e); });
    c.on('close', (code, signal) => {
      clearTimeout(timer);
      const r = { code: code ?? 128, stdout, stderr };
      if (opts.check && r.code !== 0) {
        reject(new Error(`${argv.join(' ')} failed (${signal ?? `exit ${code}`}): ${stderr.trim()}`));
      } else resolve(r);
    });
  });
}

function stopProc(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null || c.pid === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    const hard = setTimeout(() => c.kill('SIGKILL'), 2000);
    const give = setTimeout(resolve, 4000); // a D-state process must not hang teardown
    c.once('exit', () => { clearTimeout(hard); clearTimeout(give); resolve(); });
    c.kill('SIGTERM');
  });
}

function killPids(pids: Iterable<number>): void {
  for (const pid of pids) {
    if (pid === process.pid) continue;
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }
}

/** Kills whatever runs in the namespaces, then deletes them. Sync: usable on 'exit'. */
function destroyNamespaces(namespaces: string[]): void {
  const ipBatch = (lines: string[]): string => {
    if (!lines.length) return '';
    try {
      return execFileSync('ip', ['-force', '-batch', '-'], { input: lines.join('\n') + '\n', encoding: 'utf8', stdio: ['pipe', 'pipe', 'ignore'] });
    } catch (e) {
      return String((e as { stdout?: unknown }).stdout ?? ''); // -force: some namespaces were already gone
    }
  };
  killPids(ipBatch(namespaces.map((n) => `netns pids ${n}`)).split(/\s+/).filter(Boolean).map(Number));
  ipBatch(namespaces.map((n) => `netns del ${n}`));
}

/** Removes a lab's pin dirs (/sys/fs/bpf/kx<id>-*) and its marker. */
function removeLabFiles(labId: string): void {
  let pins: string[] = [];
  try { pins = readdirSync(BPFFS).filter((f) => f.startsWith(`${labId}-`)); } catch { /* no bpffs */ }
  for (const p of pins) rmSync(`${BPFFS}/${p}`, { recursive: true, force: true });
  // the controllers' owner files, named after their pin dirs
  let owners: string[] = [];
  try { owners = readdirSync(OWNER_DIR).filter((f) => f.startsWith(`${labId}-`)); } catch { /* none written */ }
  for (const f of owners) rmSync(`${OWNER_DIR}/${f}`, { force: true });
  removeLabCgroups(labId);
  rmSync(`${MARKERS}/${labId}`, { force: true });
}

/** rmdir of the lab's cgroups, once the processes killed in them are gone (a cgroup with a
 *  process, zombies included, is busy); links attached to a removed cgroup are detached. */
function removeLabCgroups(labId: string): void {
  if (!CGROUP2) return;
  let dirs: string[] = [];
  try { dirs = readdirSync(CGROUP2).filter((f) => f.startsWith(`${labId}-`)); } catch { return; }
  for (const d of dirs) {
    for (let tries = 0; ; tries++) {
      try {
        rmdirSync(`${CGROUP2}/${d}`);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EBUSY' || tries >= 100) throw e;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
      }
    }
  }
}

const live = new Set<LabImpl>();
let handlersInstalled = false;
function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  const all = (): void => {
    for (const lab of live) {
      try { lab.teardownSync(); } catch (e) { process.stderr.write(`lab ${lab.id} teardown: ${String(e)}\n`); }
    }
  };
  process.on('exit', all);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    const h = (): void => {
      all();
      process.removeListener(sig, h);
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig); // default action: die
    };
    process.on(sig, h);
  }
}

class LabImpl implements Lab {
  readonly prefix: string;
  readonly nodes: Record<NodeName, LabNode>;
  readonly ext: { ns: string; ip: string; ip6?: string };
  readonly wire: { ns: string };
  readonly pods: LabPod[] = [];
  private readonly namespaces = new Set<string>();
  private readonly procs = new Set<ChildProcess>();
  private readonly lastIdx: Record<NodeName, number> = { node1: 0, node2: 0 };
  private torn?: Promise<void>;
  private dead = false;

  constructor(readonly id: string, readonly dualStack = false) {
    this.prefix = `kx${id}-`;
    const node = (name: NodeName): LabNode => {
      const i = nodeIdx(name);
      return {
        name, ns: this.ns(`n${i}`), ip: `${WIRE_NET}.${i}`, extIf: 'eth0', podCidr: `10.244.${i}.0/24`, pods: [],
        ...(dualStack ? { ip6: `${WIRE_NET6}${i}`, podCidr6: `fd44:${i}::/64` } : {}),
      };
    };
    this.nodes = { node1: node('node1'), node2: node('node2') };
    this.ext = { ns: this.ns('ext'), ip: `${WIRE_NET}.100`, ...(dualStack ? { ip6: `${WIRE_NET6}100` } : {}) };
    this.wire = { ns: this.ns('wire') };
  }

  private ns(suffix: string): string { return `${this.prefix}${suffix}`; }

  private own(ns: string): string {
    if (!this.namespaces.has(ns)) throw new Error(`${ns} is not a namespace of lab ${this.id}`);
    if (this.dead) throw new Error(`lab ${this.id} is torn down`);
    return ns;
  }

  private track = (c: ChildProcess): void => {
    this.procs.add(c);
    c.once('exit', () => this.procs.delete(c));
  };

  private async ip(ns: string | null, lines: string[]): Promise<void> {
    const argv = ns === null ? ['ip', '-batch', '-'] : ['ip', '-n', this.own(ns), '-batch', '-'];
    await run(argv, { input: lines.join('\n') + '\n', check: true, timeoutMs: 30_000 });
  }

  /** sysctl via /proc/sys (the netns is the writer's), plus optional ethtool, in one process. */
  private async sh(ns: string, sysctls: Record<string, number>, txOff: string[] = []): Promise<void> {
    const cmds = Object.entries(sysctls).map(([k, v]) => `echo ${v} > /proc/sys/${k.replaceAll('.', '/')}`);
    // veth hands CHECKSUM_PARTIAL packets across namespaces, which a real wire never carries
    // and an XDP program cannot fix up: whatever sends into a node must checksum in software.
    for (const i of txOff) cmds.push(`ethtool -K ${i} tx off >/dev/null`);
    await this.exec(ns, ['sh', '-ec', cmds.join('\n')], { check: true, timeoutMs: 30_000 });
  }

  pod(name: string): LabPod {
    const p = this.pods.find((x) => x.name === name);
    if (!p) throw new Error(`lab ${this.id} has no pod ${name}`);
    return p;
  }

  pinDir(node: NodeName): string { return `${BPFFS}/${this.prefix}${node}`; }

  cgroup(node: NodeName): string {
    if (!CGROUP2) return '';
    const dir = `${CGROUP2}/${this.prefix}${node}`;
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  async build(pods: PodSpec[]): Promise<void> {
    mkdirSync(MARKERS, { recursive: true });
    writeFileSync(`${MARKERS}/kx${this.id}`, String(process.pid));
    const wire = this.wire.ns;
    const base = [wire, this.ext.ns, this.nodes.node1.ns, this.nodes.node2.ns];
    for (const n of base) this.namespaces.add(n);
    await this.ip(null, base.map((n) => `netns add ${n}`));
    const forward = {
      'net.ipv4.ip_forward': 1,
      'net.ipv4.conf.all.send_redirects': 0, 'net.ipv4.conf.default.send_redirects': 0,
      'net.ipv4.conf.all.rp_filter': 0, 'net.ipv4.conf.default.rp_filter': 0,
      'net.ipv4.conf.all.proxy_arp': 0, 'net.ipv4.conf.default.proxy_arp': 0,
    };
    const v6 = this.dualStack;
    // never the root namespace: only the lab's own ones
    const forward6 = v6 ? { ...IPV6_ON, 'net.ipv6.conf.all.forwarding': 1, 'net.ipv6.conf.default.forwarding': 1 } : {};
    await Promise.all([
      ...NODE_NAMES.map((n) => this.sh(this.nodes[n].ns, { ...forward, ...forward6 })), // before links: they inherit `default`
      ...(v6 ? [wire, this.ext.ns].map((ns) => this.sh(ns, IPV6_ON)) : []),
    ]);
    const ports: [string, string][] = [['n1', this.nodes.node1.ns], ['n2', this.nodes.node2.ns], ['ext', this.ext.ns]];
    // IPv6: no multicast snooping, so neighbour solicitations reach every port whatever MLD said
    await this.ip(wire, ['link set lo up', `link add br0 type bridge${v6 ? ' mcast_snooping 0' : ''}`, 'link set br0 up',
      ...ports.flatMap(([p, peerNs]) => [`link add ${p} type veth peer name eth0 netns ${peerNs}`, `link set ${p} master br0`, `link set ${p} up`])]);
    await Promise.all([
      this.sh(wire, {}, ports.map(([p]) => p)),
      // A frame a node's XDP program sends back (XDP_TX: kube-xdp's REJECT) reaches the wire at
      // once only when the peer veth runs XDP itself; with GRO alone it waits in the peer's
      // queue for the next packet. A real NIC transmits it; a pass-through program here does.
      this.ip(wire, ports.map(([p]) => `link set dev ${p} xdpdrv obj ${XDP_PASS_OBJ} sec xdp`)),
      this.ip(this.ext.ns, ['link set lo up', `addr add ${this.ext.ip}/24 dev eth0`,
        ...(v6 ? [`addr add ${this.ext.ip6}/64 dev eth0 nodad`] : []), 'link set eth0 up']),
      this.sh(this.ext.ns, {}, ['eth0']),
      ...NODE_NAMES.flatMap((name) => {
        const n = this.nodes[name];
        const other = this.nodes[name === 'node1' ? 'node2' : 'node1'];
        return [
          this.ip(n.ns, ['link set lo up', `addr add ${n.ip}/24 dev eth0`,
            ...(v6 ? [`addr add ${n.ip6}/64 dev eth0 nodad`] : []),
            'link set eth0 up', `route add ${other.podCidr} via ${other.ip}`,
            ...(v6 ? [`route add ${other.podCidr6} via ${other.ip6}`] : [])]),
          this.sh(n.ns, { 'net.ipv4.conf.eth0.rp_filter': 0, 'net.ipv4.conf.eth0.send_redirects': 0 }, ['eth0']),
        ];
      }),
    ]);
    await Promise.all(pods.map((p) => this.addPod(p)));
    const order = (p: LabPod): number => pods.findIndex((s) => s.name === p.name);
    this.pods.sort((x, y) => order(x) - order(y));
    for (const n of NODE_NAMES) this.nodes[n].pods.sort((x, y) => order(x) - order(y));
  }

  async addPod(spec: PodSpec): Promise<LabPod> {
    const { name, node: nodeName } = spec;
    if (!/^[a-z][a-z0-9-]{0,30}$/.test(name) || RESERVED.has(name)) throw new Error(`bad pod name ${JSON.stringify(name)}`);
    if (this.pods.some((p) => p.name === name)) throw new Error(`pod ${name} exists`);
    const node = this.nodes[nodeName];
    if (!node) throw new Error(`unknown node ${String(nodeName)}`);
    const used = new Set(node.pods.map((p) => Number(p.ip.split('.')[3])));
    let k = this.lastIdx[nodeName]; // round robin like host-local IPAM: a removed IP is not reused at once
    for (let i = 0; i < 254 && (i === 0 || used.has(k)); i++) k = (k % 254) + 1;
    if (used.has(k)) throw new Error(`node ${nodeName} has no free pod IP`);
    this.lastIdx[nodeName] = k;
    const v6 = this.dualStack;
    const pod: LabPod = {
      name, node: nodeName, ns: this.ns(name), ip: `10.244.${nodeIdx(nodeName)}.${k}`,
      ...(v6 ? { ip6: `fd44:${nodeIdx(nodeName)}::${k.toString(16)}` } : {}),
      hostIf: `kxv${k}`, ports: spec.ports ?? [8080], pid: 0,
    };
    node.pods.push(pod); // reserves k before any await
    this.namespaces.add(pod.ns);
    try {
      await this.ip(null, [`netns add ${pod.ns}`]);
      if (v6) await this.sh(pod.ns, IPV6_ON); // before eth0 exists
      // Calico-style: /32 on eth0, gateway 169.254.1.1, host veth MAC ee:ee:…, proxy_arp on.
      // Proxy ARP only answers for addresses the node has a route to, and lab nodes have no
      // default route, so the gateway's neighbour entry is pinned instead.
      await this.ip(pod.ns, ['link set lo up',
        `link add eth0 type veth peer name ${pod.hostIf} address ${HOST_MAC} netns ${node.ns}`,
        `addr add ${pod.ip}/32 dev eth0`, 'link set eth0 up',
        `route add ${GW} dev eth0 scope link`, `route add default via ${GW} dev eth0`,
        `neigh replace ${GW} lladdr ${HOST_MAC} dev eth0 nud permanent`,
        // IPv6 likewise: a /128, gateway fe80::1 (the host veth's, pinned: no neighbour discovery)
        ...(v6 ? [`addr add ${pod.ip6}/128 dev eth0 nodad`, `route add ::/0 via ${GW6} dev eth0`,
          `neigh replace ${GW6} lladdr ${HOST_MAC} dev eth0 nud permanent`] : [])]);
      await Promise.all([
        this.sh(node.ns, { [`net.ipv4.conf.${pod.hostIf}.proxy_arp`]: 1, [`net.ipv4.conf.${pod.hostIf}.rp_filter`]: 0 }),
        this.sh(pod.ns, {}, ['eth0']),
      ]);
      await this.ip(node.ns, [`link set ${pod.hostIf} up`, `route add ${pod.ip}/32 dev ${pod.hostIf}`,
        ...(v6 ? [`addr add ${GW6}/64 dev ${pod.hostIf} nodad`, `route add ${pod.ip6}/128 dev ${pod.hostIf}`] : [])]);
      const echo = this.spawn(pod.ns, [process.execPath, ECHO, '--name', name, ...pod.ports.flatMap((p) => ['--port', String(p)]),
        ...(v6 ? ['--ipv6'] : [])]);
      await echo.waitFor(/^ready$/m, 10_000);
      pod.pid = echo.pid ?? 0;
      this.pods.push(pod);
      return pod;
    } catch (e) {
      await this.dropPod(pod).catch(() => { /* already failing */ });
      throw e;
    }
  }

  async removePod(name: string): Promise<void> {
    await this.dropPod(this.pod(name));
  }

  private async dropPod(pod: LabPod): Promise<void> {
    const node = this.nodes[pod.node];
    await Promise.all([...this.procs].filter((c) => c.pid === pod.pid).map(stopProc));
    // Deleting the veth first makes the route vanish now, not when the netns is reaped.
    await run(['ip', '-n', node.ns, 'link', 'del', pod.hostIf]);
    destroyNamespaces([pod.ns]);
    this.namespaces.delete(pod.ns);
    for (const list of [node.pods, this.pods]) {
      const i = list.indexOf(pod);
      if (i >= 0) list.splice(i, 1);
    }
  }

  exec(ns: string, argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    return run(['ip', 'netns', 'exec', this.own(ns), ...argv], opts, this.track);
  }

  execNet(ns: string, argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    return run(['nsenter', `--net=/run/netns/${this.own(ns)}`, '--', ...argv], opts, this.track);
  }

  spawn(ns: string, argv: string[], opts: SpawnOptions = {}): LabProcess {
    const full = opts.useNsenter
      ? ['nsenter', `--net=/run/netns/${this.own(ns)}`, '--', ...argv]
      : ['ip', 'netns', 'exec', this.own(ns), ...argv];
    const c = cpSpawn(full[0] ?? '', full.slice(1), { stdio: opts.stdio ?? ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
    this.track(c);
    const out = { stdout: '', stderr: '' };
    const cap = (k: 'stdout' | 'stderr') => (d: string): void => {
      out[k] += d;
      if (out[k].length > 1 << 20) out[k] = out[k].slice(-(1 << 19));
    };
    c.stdout?.setEncoding('utf8').on('data', cap('stdout'));
    c.stderr?.setEncoding('utf8').on('data', cap('stderr'));
    let spawnErr: Error | undefined;
    c.on('error', (e) => { spawnErr = e; });
    const waitFor = (pattern: string | RegExp, timeoutMs = 10_000): Promise<string> =>
      new Promise((resolve, reject) => {
        const hit = (): boolean => (typeof pattern === 'string' ? out.stdout.includes(pattern) : pattern.test(out.stdout));
        const done = (err?: Error): void => {
          clearTimeout(timer);
          c.stdout?.off('data', check);
          c.off('exit', onExit);
          if (err) reject(err); else resolve(out.stdout);
        };
        const check = (): void => { if (hit()) done(); };
        const onExit = (): void => done(new Error(`${argv.join(' ')} in ${ns} exited (${c.exitCode ?? c.signalCode}) before ${String(pattern)}: ${spawnErr?.message ?? out.stderr.trim()}`));
        const timer = setTimeout(() => done(new Error(`${argv.join(' ')} in ${ns}: no ${String(pattern)} after ${timeoutMs} ms; stderr: ${out.stderr.trim()}`)), timeoutMs);
        c.stdout?.on('data', check);
        c.once('exit', onExit);
        if (hit()) done();
        else if (c.exitCode !== null || c.signalCode !== null) onExit();
      });
    return Object.assign(c, { output: () => ({ ...out }), waitFor, stop: () => stopProc(c) });
  }

  async client(ns: string, args: ClientOptions | string[], opts: { cgroup?: string } = {}): Promise<ClientSummary> {
    const argv = Array.isArray(args) ? args : clientArgv(args);
    const cmd = [process.execPath, CLIENT, ...argv];
    // join the cgroup before exec: every socket of the client is then under its hooks (nsenter
    // --net: `ip netns exec` remounts /sys, hiding the cgroup2 mount)
    const r = opts.cgroup
      ? await this.execNet(ns, ['sh', '-ec', 'echo $$ > "$0/cgroup.procs"; exec "$@"', opts.cgroup, ...cmd])
      : await this.exec(ns, cmd);
    if (r.code !== 0) throw new Error(`client ${argv.join(' ')} in ${ns} exited ${r.code}: ${r.stderr.trim()}`);
    return JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as ClientSummary;
  }

  teardown(): Promise<void> {
    this.torn ??= (async () => {
      await Promise.all([...this.procs].map(stopProc));
      this.teardownSync();
    })();
    return this.torn;
  }

  /** Everything but the graceful SIGTERM; safe to call repeatedly and from process 'exit'. */
  teardownSync(): void {
    this.dead = true;
    killPids([...this.procs].map((c) => c.pid ?? 0).filter(Boolean));
    destroyNamespaces([...this.namespaces]);
    removeLabFiles(`kx${this.id}`);
    live.delete(this);
    const left = listNetns().filter((n) => n.startsWith(this.prefix));
    if (left.length) throw new Error(`lab ${this.id}: namespaces left after teardown: ${left.join(' ')}`);
    this.namespaces.clear();
  }
}

function clientArgv(o: ClientOptions): string[] {
  const a = [`--${o.proto}`, '--target', o.target];
  if (o.count !== undefined) a.push('--count', String(o.count));
  if (o.timeoutMs !== undefined) a.push('--timeout-ms', String(o.timeoutMs));
  if (o.concurrency !== undefined) a.push('--concurrency', String(o.concurrency));
  if (o.steady) a.push('--steady', '--interval-ms', String(o.steady.intervalMs ?? 20), '--duration-ms', String(o.steady.durationMs));
  if (o.connected) a.push('--connected');
  if (o.payload) a.push('--payload', String(o.payload));
  return a;
}

export async function createLab(opts: LabOptions = {}): Promise<Lab> {
  const why = labUnavailable();
  if (why) throw new Error(why);
  const taken = listNetns();
  let id = '';
  do id = randomBytes(3).toString('hex').slice(0, 5);
  while (taken.some((n) => n.startsWith(`kx${id}-`)));
  const lab = new LabImpl(id, opts.dualStack ?? false);
  live.add(lab);
  installHandlers();
  try {
    await lab.build(opts.pods ?? DEFAULT_PODS);
  } catch (e) {
    await lab.teardown().catch(() => { /* report the build error */ });
    throw e;
  }
  return lab;
}

/** Runs every cleanup step in order, also those after one that failed (reported on stderr):
 * a failed stop must not leave the lab's namespaces behind. */
export async function cleanUpAll(steps: ReadonlyArray<readonly [string, () => Promise<unknown> | unknown]>): Promise<void> {
  for (const [what, step] of steps) {
    try {
      await step();
    } catch (e) {
      process.stderr.write(`cleanup of ${what} failed: ${String(e)}\n`);
    }
  }
}

/** Runs fn with a fresh lab and always tears it down. */
export async function withLab<T>(opts: LabOptions, fn: (lab: Lab) => Promise<T> | T): Promise<T> {
  const lab = await createLab(opts);
  try {
    return await fn(lab);
  } finally {
    await lab.teardown();
  }
}

/**
 * Removes leftover labs (namespaces `<prefix>…` shaped kx<5 hex>-*, their processes, pin dirs,
 * markers) whose owning process is gone; includeLive also takes labs of running processes.
 * Returns the namespaces removed.
 */
export function sweepLabs(prefix = 'kx', opts: { includeLive?: boolean } = {}): string[] {
  const idOf = (name: string): string | null => (name.startsWith(prefix) ? /^(kx[0-9a-f]{5})-/.exec(name)?.[1] ?? null : null);
  const alive = (labId: string): boolean => {
    if (opts.includeLive) return false;
    try {
      const pid = Number(readFileSync(`${MARKERS}/${labId}`, 'utf8'));
      if (pid === process.pid) return [...live].some((l) => `kx${l.id}` === labId);
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  const byLab = new Map<string, string[]>();
  const ids = (list: string[]): void => {
    for (const n of list) {
      const labId = idOf(n);
      if (labId && !byLab.has(labId)) byLab.set(labId, []);
    }
  };
  const nss = listNetns();
  ids(nss);
  try { ids(readdirSync(BPFFS)); } catch { /* no bpffs */ }
  try { ids(readdirSync(MARKERS).map((m) => `${m}-`)); } catch { /* none */ }
  const removed: string[] = [];
  for (const [labId] of byLab) {
    if (alive(labId)) continue;
    const mine = nss.filter((n) => n.startsWith(`${labId}-`));
    destroyNamespaces(mine);
    removeLabFiles(labId);
    removed.push(...mine);
  }
  return removed;
}
