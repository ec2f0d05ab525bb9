// One qemu (TCG) boot of a Debian 12 cloud kernel (6.1 by default, or 6.12) serving many commands.
//
// Channels: ttyS0 (qemu stdio) is the kernel console only, kept in memory for error messages
// (KUBE_XDP_VM_CONSOLE=1 streams it to stderr). ttyS1 is the command channel: qemu connects it
// as a client to a unix socket this process listens on, so nothing the guest writes is lost
// before the host is attached. The guest's /init (initramfs.ts) answers, one at a time:
//   host  -> "<id> <timeout s> <base64 script>\n"
//   guest -> "<<<KX-BEGIN id>>>\n" base64(stdout) "<<<KX-STDERR id>>>\n" base64(stderr)
//            "<<<KX-END id rc>>>\n"
// Output is base64, so no byte of it can look like a marker, and console messages never mix in.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureKernelInfo, type Kernel, type KernelSeries } from './kernel.js';
import { buildInitramfs, type Initramfs, type InitramfsOptions } from './initramfs.js';
import { kubeXdpFiles, kubeXdpLibraries, type KubeXdpFilesOptions } from './guest-kube-xdp.js';

export interface BootOptions {
  /** Which Debian cloud kernel (default 6.1). */
  kernel?: KernelSeries;
  /** Guest path -> content (mode 0755), e.g. a script to run. */
  extraFiles?: Record<string, string | Buffer>;
  memoryMb?: number;
  /** Until the guest's command channel is ready (default 120 s: TCG on a loaded host). */
  timeoutMs?: number;
  /** Copy the host's Node binary to /usr/local/bin/node (≈ +30 MB compressed initramfs). */
  withNode?: boolean;
  /** Kernel modules to load (default initramfs.DEFAULT_MODULES). */
  modules?: string[];
  /** Kernel modules present for modprobe but not loaded at boot. */
  loadableModules?: string[];
  /** Extra host binaries to copy (same path in the guest, with their libraries). */
  binaries?: string[];
  /** Extra kernel command line. */
  append?: string;
  /**
   * kube-xdp under /opt/kube-xdp (guest-kube-xdp.ts: dist/src, the lab echo server and client,
   * the runtime node_modules, build/libkx.so and its libraries), plus Node (withNode) and
   * /usr/sbin/conntrack when the host has it. Files in extraFiles win over the bundle's.
   * Raises the default memory to KUBE_XDP_MEMORY_MB.
   */
  withKubeXdp?: boolean | KubeXdpFilesOptions;
}

/** Host tools kube-xdp runs that the base initramfs lacks (added with withKubeXdp when present). */
export const KUBE_XDP_BINARIES = ['/usr/sbin/conntrack'];
/** Default guest memory: the unpacked initramfs (Node ≈ 100 MB) lives in RAM. */
export const DEFAULT_MEMORY_MB = 512;
/** Default with withKubeXdp: room for the controller, echo servers and clients (each Node ≈ 40-60 MB RSS). */
export const KUBE_XDP_MEMORY_MB = 1024;

export interface RunResult { code: number; stdout: string; stderr: string }

export interface BootStats {
  /** Spawn of qemu to the guest's READY on ttyS1. */
  bootMs: number;
  initramfsBytes: number;
  initramfsCached: boolean;
  initramfsBuildMs: number;
  kernelCached: boolean;
  kernelDownloadBytes?: number;
  kernelDownloadMs?: number;
  modules: string[];
  missingModules: string[];
}

const live = new Set<ChildProcess>();
/** Socket dirs and per-boot initrds to remove if the process ends without close(). */
const temps = new Set<string>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const killAll = () => {
    for (const c of live) { try { c.kill('SIGKILL'); } catch { /* gone */ } }
    for (const t of temps) { try { rmSync(t, { recursive: true, force: true }); } catch { /* best effort */ } }
  };
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => { killAll(); process.kill(process.pid, sig); });
  }
}

const MAX_CMD_BYTES = 32 << 10; // the guest tty buffers ~64 KiB: pass bigger things as extraFiles
const CONSOLE_KEEP = 64 << 10;

export class KernelVM {
  readonly kernel: Kernel;
  readonly stats: BootStats;
  private child: ChildProcess;
  private server: Server;
  private sock: Socket;
  private sockDir: string;
  private initrd: Initramfs;
  private consoleBuf = '';
  private rx = '';
  private nextId = 1;
  private tail: Promise<unknown> = Promise.resolve();
  private pending: { id: number; resolve: (r: RunResult) => void; reject: (e: Error) => void } | undefined;
  private dead: Error | undefined;
  private exited: Promise<void>;

  private constructor(init: {
    kernel: Kernel; stats: BootStats; child: ChildProcess; server: Server; sock: Socket; sockDir: string;
    initrd: Initramfs; console: () => string; exited: Promise<void>; rx: string;
  }) {
    this.kernel = init.kernel;
    this.stats = init.stats;
    this.child = init.child;
    this.server = init.server;
    this.sock = init.sock;
    this.sockDir = init.sockDir;
    this.initrd = init.initrd;
    this.exited = init.exited;
    this.rx = init.rx;
    this.consoleBuf = init.console();
    this.child.stdout?.on('data', (d: Buffer) => this.onConsole(d));
    this.child.stderr?.on('data', (d: Buffer) => this.onConsole(d));
    this.sock.on('data', (d: Buffer) => { this.rx += d.toString('latin1'); this.parse(); });
    this.sock.on('close', () => this.fail(new Error('command channel closed')));
    this.exited.then(() => this.fail(new Error(`qemu exited (code ${this.child.exitCode}, signal ${this.child.signalCode})`)));
  }

  /** The kernel console (ttyS0) and qemu's own messages, last 64 KiB. */
  get console(): string { return this.consoleBuf; }

  static async boot(opts: BootOptions = {}): Promise<KernelVM> {
    installExitHook();
    const info = await ensureKernelInfo(opts.kernel);
    const kernel = info.kernel;
    const ifsOpts: InitramfsOptions = {};
    if (opts.withNode) ifsOpts.withNode = true;
    if (opts.modules) ifsOpts.modules = opts.modules;
    if (opts.loadableModules) ifsOpts.loadableModules = opts.loadableModules;
    if (opts.binaries) ifsOpts.binaries = opts.binaries;
    if (opts.extraFiles) ifsOpts.extraFiles = opts.extraFiles;
    if (opts.withKubeXdp) {
      const kxOpts = opts.withKubeXdp === true ? {} : opts.withKubeXdp;
      ifsOpts.withNode = true;
      ifsOpts.extraFiles = { ...await kubeXdpFiles(undefined, kxOpts), ...opts.extraFiles };
      const extraBins = KUBE_XDP_BINARIES.filter((b) => existsSync(b) && !(opts.binaries ?? []).includes(b));
      ifsOpts.binaries = [...(opts.binaries ?? []), ...extraBins];
      ifsOpts.libraries = await kubeXdpLibraries();
    }
    const initrd = await buildInitramfs(kernel, ifsOpts);
    const qemu = ['/usr/bin/qemu-system-x86_64', '/usr/local/bin/qemu-system-x86_64'].find((p) => existsSync(p));
    if (!qemu) throw new Error('qemu-system-x86_64 not found: apt-get install qemu-system-x86');

    const sockDir = await mkdtemp(join(tmpdir(), 'kx-vm-'));
    temps.add(sockDir);
    if (initrd.path !== initrd.basePath) temps.add(initrd.path);
    const sockPath = join(sockDir, 'ttyS1.sock');
    const server = createServer();
    await new Promise<void>((res, rej) => { server.once('error', rej); server.listen(sockPath, () => res()); });
    const connected = new Promise<Socket>((res) => server.once('connection', res));

    const args = [
      '-nographic', '-nodefaults', '-no-user-config', '-monitor', 'none', '-no-reboot',
      '-accel', 'tcg', '-cpu', 'max', '-smp', '1', '-m', String(opts.memoryMb ?? (opts.withKubeXdp ? KUBE_XDP_MEMORY_MB : DEFAULT_MEMORY_MB)),
      '-kernel', kernel.vmlinuz, '-initrd', initrd.path,
      '-append', `console=ttyS0 quiet panic=-1 mitigations=off ${opts.append ?? ''}`.trim(),
      '-serial', 'stdio',
      '-chardev', `socket,id=kx,path=${sockPath}`, '-serial', 'chardev:kx',
    ];
    // setpriv --pdeathsig: qemu dies with this process even on SIGKILL (no 'exit' event then).
    const setpriv = existsSync('/usr/bin/setpriv') ? '/usr/bin/setpriv' : undefined;
    const t0 = Date.now();
    const child = setpriv
      ? spawn(setpriv, ['--pdeathsig', 'KILL', qemu, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
      : spawn(qemu, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    live.add(child);
    const exited = new Promise<void>((res) => child.once('exit', () => { live.delete(child); res(); }));
    child.once('error', () => { /* reported through exit/timeout */ });
    let consoleEarly = '';
    const early = (d: Buffer) => {
      const s = d.toString('utf8');
      consoleEarly = (consoleEarly + s).slice(-CONSOLE_KEEP);
      if (process.env.KUBE_XDP_VM_CONSOLE) process.stderr.write(s);
    };
    child.stdout.on('data', early);
    child.stderr.on('data', early);

    const timeoutMs = opts.timeoutMs ?? 120_000;
    let timer: NodeJS.Timeout | undefined;
    const cleanup = async () => {
      try { child.kill('SIGKILL'); } catch { /* gone */ }
      await Promise.race([exited, new Promise((r) => setTimeout(r, 2000).unref())]);
      server.close();
      await rm(sockDir, { recursive: true, force: true });
      if (initrd.path !== initrd.basePath) await rm(initrd.path, { force: true });
      temps.delete(sockDir);
      temps.delete(initrd.path);
    };
    try {
      const bad = new Promise<never>((_, rej) => {
        timer = setTimeout(() => rej(new Error(`guest not ready after ${timeoutMs} ms`)), timeoutMs);
        void exited.then(() => rej(new Error(`qemu exited during boot (code ${child.exitCode})`)));
      });
      const sock = await Promise.race([connected, bad]);
      let rx = '';
      const ready = new Promise<string>((res) => {
        const onData = (d: Buffer) => {
          rx += d.toString('latin1');
          const m = /<<<KX-READY (\S+)>>>\r?\n/.exec(rx);
          if (m) { sock.off('data', onData); rx = rx.slice(m.index + m[0].length); res(m[1]!); }
        };
        sock.on('data', onData);
      });
      await Promise.race([ready, bad]);
      const bootMs = Date.now() - t0;
      clearTimeout(timer);
      child.stdout.off('data', early);
      child.stderr.off('data', early);
      if (process.env.KUBE_XDP_VM_CONSOLE) {
        child.stdout.on('data', (d: Buffer) => process.stderr.write(d));
      }
      const stats: BootStats = {
        bootMs, initramfsBytes: initrd.bytes, initramfsCached: initrd.baseCached, initramfsBuildMs: initrd.buildMs,
        kernelCached: info.cached, modules: initrd.modules, missingModules: initrd.missingModules,
      };
      if (info.downloadBytes !== undefined) stats.kernelDownloadBytes = info.downloadBytes;
      if (info.downloadMs !== undefined) stats.kernelDownloadMs = info.downloadMs;
      return new KernelVM({ kernel, stats, child, server, sock, sockDir, initrd, console: () => consoleEarly, exited, rx });
    } catch (err) {
      clearTimeout(timer);
      await cleanup();
      (err as Error).message += `\n--- guest console (tail) ---\n${consoleEarly.slice(-4000)}`;
      throw err;
    }
  }

  /** Every command's first line (70 characters) and how long it took, for the suites' reports. */
  readonly latencies: [cmd: string, ms: number][] = [];

  /** Run a shell script (/bin/sh = dash; busybox applets in PATH) in the guest; commands run one at a time, in call order. */
  run(cmd: string, timeoutMs = 30_000): Promise<RunResult> {
    const p = this.tail.then(async () => {
      const t0 = Date.now();
      const r = await this.exec(cmd, timeoutMs);
      this.latencies.push([cmd.split('\n')[0]!.slice(0, 70), Date.now() - t0]);
      return r;
    });
    this.tail = p.catch(() => undefined);
    return p;
  }

  /** Like run, and a non-zero exit throws with the command's output; returns stdout. */
  async check(cmd: string, timeoutMs?: number): Promise<string> {
    const r = await this.run(cmd, timeoutMs);
    if (r.code !== 0) throw new Error(`${cmd}\nexit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    return r.stdout;
  }

  private exec(cmd: string, timeoutMs: number): Promise<RunResult> {
    if (this.dead) return Promise.reject(this.dead);
    const b64 = Buffer.from(cmd).toString('base64');
    if (b64.length > MAX_CMD_BYTES) return Promise.reject(new Error(`command too long (${b64.length} B base64): pass it in extraFiles`));
    const id = this.nextId++;
    const guestTimeout = Math.max(1, Math.ceil(timeoutMs / 1000));
    return new Promise<RunResult>((resolve, reject) => {
      // Guest-side `timeout -s KILL` ends the command; the host timer (plus grace) catches a stuck guest.
      const timer = setTimeout(() => {
        this.fail(new Error(`no answer from the guest ${timeoutMs + 10_000} ms after: ${cmd.slice(0, 200)}`));
      }, timeoutMs + 10_000);
      this.pending = {
        id,
        resolve: (r) => { clearTimeout(timer); this.pending = undefined; resolve(r); },
        reject: (e) => { clearTimeout(timer); this.pending = undefined; reject(e); },
      };
      this.sock.write(`${id} ${guestTimeout} ${b64}\n`);
    });
  }

  private parse(): void {
    for (;;) {
      const p = this.pending;
      if (!p) return;
      const re = new RegExp(`<<<KX-BEGIN ${p.id}>>>\\r?\\n([A-Za-z0-9+/=\\r\\n]*)<<<KX-STDERR ${p.id}>>>\\r?\\n([A-Za-z0-9+/=\\r\\n]*)<<<KX-END ${p.id} (\\d+)>>>\\r?\\n`);
      const m = re.exec(this.rx);
      if (!m) return;
      this.rx = this.rx.slice(m.index + m[0].length);
      p.resolve({
        code: Number(m[3]),
        stdout: Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64').toString('utf8'),
        stderr: Buffer.from(m[2]!.replace(/\s+/g, ''), 'base64').toString('utf8'),
      });
    }
  }

  private onConsole(d: Buffer): void {
    this.consoleBuf = (this.consoleBuf + d.toString('utf8')).slice(-CONSOLE_KEEP);
  }

  private fail(err: Error): void {
    if (!this.dead) {
      err.message += `\n--- guest console (tail) ---\n${this.consoleBuf.slice(-4000)}`;
      this.dead = err;
    }
    this.pending?.reject(this.dead);
  }

  /** Power the guest off (poweroff -f), kill qemu if it lingers, remove temp files. */
  async close(): Promise<void> {
    const closing = new Error('VM closed');
    if (!this.dead && this.child.exitCode === null) {
      // Sent as a command: the guest powers off before it could answer.
      const b64 = Buffer.from('poweroff -f').toString('base64');
      this.sock.write(`${this.nextId++} 10 ${b64}\n`);
    }
    this.dead ??= closing;
    const gone = await Promise.race([this.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000).unref())]);
    if (!gone && this.child.pid) {
      try { process.kill(this.child.pid, 'SIGKILL'); } catch { /* gone */ }
      await this.exited;
    }
    live.delete(this.child);
    this.sock.destroy();
    this.server.close();
    await rm(this.sockDir, { recursive: true, force: true });
    if (this.initrd.path !== this.initrd.basePath) await rm(this.initrd.path, { force: true });
    temps.delete(this.sockDir);
    temps.delete(this.initrd.path);
  }
}

/**
 * Why the harness cannot run here (null when it can): qemu, busybox-static, the host tools to
 * copy in, and a cloud kernel (cached, or downloadable through apt: this may download it).
 */
export async function harnessUnavailable(series: KernelSeries = '6.1'): Promise<string | null> {
  if (process.getuid?.() !== 0) return 'not root (the kernel cache and apt-get download need root)';
  if (!['/usr/bin/qemu-system-x86_64', '/usr/local/bin/qemu-system-x86_64'].some((p) => existsSync(p))) {
    return 'qemu-system-x86_64 missing (apt-get install qemu-system-x86)';
  }
  if (!['/bin/busybox', '/usr/bin/busybox'].some((p) => existsSync(p))) return 'busybox missing (apt-get install busybox-static)';
  for (const b of ['/bin/dash', '/usr/sbin/ipvsadm', '/usr/sbin/ipset', '/usr/sbin/ip', '/usr/sbin/xtables-nft-multi', '/usr/sbin/xtables-legacy-multi']) {
    if (!existsSync(b)) return `${b} missing (apt-get install ipvsadm ipset iptables iproute2)`;
  }
  try {
    await ensureKernelInfo(series);
  } catch (err) {
    return `no cloud kernel: ${(err as Error).message}`;
  }
  return null;
}
