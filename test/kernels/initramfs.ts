// Build a gzip'd newc cpio initramfs for the qemu kernel harness (vm.ts): busybox-static with
// its applets, /init, the netfilter/IPVS/ipset modules (dependency-ordered, insmod'ed by /init),
// host binaries (ipvsadm, ipset, iptables nft+legacy with the xtables extensions, ip) with their
// shared libraries, optionally Node, plus caller files.
//
// The newc archive is written here (no cpio tool, no staging directory, no root needed for
// /dev/console). The base archive is cached under <kernel cache>/initramfs/<sha256>.cpio.gz
// (.cpio, uncompressed, with Node: see compressBase) and the caller's extra files go into a
// second small gzip'd archive appended to it: Linux unpacks concatenated cpio archives in order.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { appendFile, copyFile, mkdir, readFile, readdir, realpath, rename, stat, writeFile } from 'node:fs/promises';
import { basename, join, posix } from 'node:path';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import type { Kernel } from './kernel.js';
import { kernelCacheDir } from './kernel.js';

const exec = promisify(execFile);
const HARNESS_VERSION = 6; // bump when the archive layout or /init changes

// ---------------------------------------------------------------------------------------------
// newc writer

export type CpioEntry =
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'file'; path: string; data: Buffer | string; mode?: number }
  | { type: 'symlink'; path: string; target: string }
  | { type: 'chardev'; path: string; major: number; minor: number; mode?: number };

/** Serialize entries as a newc ("070701") cpio archive, ending with TRAILER!!!. */
export function newc(entries: CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  const pad4 = (n: number) => Buffer.alloc((4 - (n % 4)) % 4);
  const push = (name: string, mode: number, data: Buffer, rdev: [number, number] = [0, 0]) => {
    const nameBuf = Buffer.from(name + '\0');
    const fields = [ino++, mode, 0, 0, 1, 0, data.length, 0, 0, rdev[0], rdev[1], nameBuf.length, 0];
    const hdr = Buffer.from('070701' + fields.map((f) => (f >>> 0).toString(16).padStart(8, '0')).join(''));
    parts.push(hdr, nameBuf, pad4(hdr.length + nameBuf.length), data, pad4(data.length));
  };
  for (const e of entries) {
    const p = e.path.replace(/^\/+/, '');
    switch (e.type) {
      case 'dir': push(p, 0o040000 | (e.mode ?? 0o755), Buffer.alloc(0)); break;
      case 'file': push(p, 0o100000 | (e.mode ?? 0o644), typeof e.data === 'string' ? Buffer.from(e.data) : e.data); break;
      case 'symlink': push(p, 0o120777, Buffer.from(e.target)); break;
      case 'chardev': push(p, 0o020000 | (e.mode ?? 0o600), Buffer.alloc(0), [e.major, e.minor]); break;
    }
  }
  push('TRAILER!!!', 0, Buffer.alloc(0));
  return Buffer.concat(parts);
}

/** Collects entries, creating parent directories once and letting later files win. */
class Tree {
  private entries = new Map<string, CpioEntry>();
  /** existing: directories/symlinks already present (in the base archive): no parent entry for them. */
  constructor(private existing: Set<string> = new Set()) {}
  add(e: CpioEntry): void {
    const p = guestPath(posix.normalize('/' + e.path));
    for (let d = posix.dirname(p); d !== '/'; d = posix.dirname(d)) {
      if (!this.entries.has(d) && !this.existing.has(d)) this.entries.set(d, { type: 'dir', path: d });
    }
    this.entries.set(p, { ...e, path: p });
  }
  /** Paths of directories and symlinks (what a later archive must not re-create). */
  containers(): string[] {
    return [...this.entries.values()].filter((e) => e.type === 'dir' || e.type === 'symlink').map((e) => e.path);
  }
  list(): CpioEntry[] {
    // Parents before children: sort by path depth, then name.
    return [...this.entries.values()].sort((a, b) => {
      const da = a.path.split('/').length, db = b.path.split('/').length;
      return da - db || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
    });
  }
}

// ---------------------------------------------------------------------------------------------
// kernel modules

/** Modules the harness loads by default (IPVS + what ipvs-/iptables-mode kube-proxy rules use). */
export const DEFAULT_MODULES = [
  'libcrc32c', 'nf_defrag_ipv4', 'nf_defrag_ipv6', 'nf_conntrack', 'nf_nat', 'nf_conntrack_netlink',
  'ip_vs', 'ip_vs_rr', 'ip_vs_wrr', 'ip_vs_sh',
  'ip_set', 'ip_set_hash_ip', 'ip_set_hash_ipport', 'ip_set_hash_ipportip', 'ip_set_hash_ipportnet',
  'ip_set_hash_net', 'ip_set_bitmap_port', 'xt_set',
  'x_tables', 'xt_comment', 'xt_mark', 'xt_MASQUERADE', 'xt_addrtype', 'xt_conntrack', 'xt_nat',
  'xt_tcpudp', 'xt_multiport', 'xt_statistic', 'xt_physdev', 'xt_ipvs',
  'ip_tables', 'iptable_nat', 'iptable_filter', 'iptable_mangle', 'iptable_raw', 'ipt_REJECT',
  'ip6_tables', 'ip6table_nat', 'ip6table_filter', 'ip6table_mangle', 'ip6t_REJECT',
  'nfnetlink', 'nf_tables', 'nft_compat', 'nft_chain_nat', 'nft_ct', 'nft_nat', 'nft_masq',
  'nft_reject', 'nft_reject_inet',
  'veth', 'dummy', 'bridge', 'br_netfilter',
];

interface ModIndex { byName: Map<string, string>; builtin: Set<string> }

const modName = (file: string) => basename(file).replace(/\.ko(\.xz|\.zst|\.gz)?$/, '').replace(/-/g, '_');

async function walk(dir: string, out: string[] = []): Promise<string[]> {
  for (const d of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, d.name);
    if (d.isDirectory()) await walk(p, out);
    else if (/\.ko(\.xz|\.zst|\.gz)?$/.test(d.name)) out.push(p);
  }
  return out;
}

async function modIndex(modulesDir: string): Promise<ModIndex> {
  const byName = new Map<string, string>();
  for (const f of await walk(join(modulesDir, 'kernel'))) byName.set(modName(f), f);
  const builtin = new Set(
    (await readFile(join(modulesDir, 'modules.builtin'), 'utf8')).split('\n').filter(Boolean).map(modName));
  return { byName, builtin };
}

/** Module bytes, decompressed on the host (busybox insmod may not do xz/zstd). */
async function moduleBytes(file: string): Promise<Buffer> {
  if (file.endsWith('.ko')) return readFile(file);
  const tool = file.endsWith('.xz') ? 'xz' : file.endsWith('.zst') ? 'zstd' : 'gzip';
  const { stdout } = await exec(tool, ['-dc', file], { encoding: 'buffer', maxBuffer: 256 << 20 });
  return stdout;
}

/** `depends=` of a module's .modinfo (the .deb has no modules.dep: depmod runs in postinst). */
function modinfoDepends(ko: Buffer): string[] {
  const key = Buffer.from('\0depends=');
  const i = ko.indexOf(key);
  if (i < 0) return [];
  const end = ko.indexOf(0, i + key.length);
  return ko.subarray(i + key.length, end).toString().split(',').filter(Boolean).map((n) => n.replace(/-/g, '_'));
}

/** `alias=` entries of a module's .modinfo (what depmod writes to modules.alias). */
function modinfoAliases(ko: Buffer): string[] {
  const out: string[] = [];
  const key = Buffer.from('\0alias=');
  for (let i = ko.indexOf(key); i >= 0; i = ko.indexOf(key, i + 1)) {
    out.push(ko.subarray(i + key.length, ko.indexOf(0, i + key.length)).toString());
  }
  return out;
}

export interface ResolvedModules {
  /** Module names in load order (dependencies first). */
  order: string[];
  /** name -> decompressed .ko */
  bytes: Map<string, Buffer>;
  /** name -> its direct dependencies (for a modules.dep busybox modprobe can read). */
  deps: Map<string, string[]>;
  /** Requested names that are built in (nothing to load). */
  builtin: string[];
  /** Requested names this kernel does not have at all. */
  missing: string[];
}

export async function resolveModules(kernel: Kernel, wanted: string[]): Promise<ResolvedModules> {
  const idx = await modIndex(kernel.modulesDir);
  const order: string[] = [];
  const bytes = new Map<string, Buffer>();
  const deps = new Map<string, string[]>();
  const builtin: string[] = [];
  const missing: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = async (name: string, requested: boolean): Promise<void> => {
    const n = name.replace(/-/g, '_');
    if (state.has(n)) return;
    const file = idx.byName.get(n);
    if (!file) {
      state.set(n, 'done');
      if (idx.builtin.has(n)) { if (requested) builtin.push(n); } else missing.push(n);
      return;
    }
    state.set(n, 'visiting');
    const ko = await moduleBytes(file);
    const ds = modinfoDepends(ko);
    for (const dep of ds) await visit(dep, false);
    deps.set(n, ds.filter((d) => !idx.builtin.has(d)));
    bytes.set(n, ko);
    order.push(n);
    state.set(n, 'done');
  };
  for (const m of wanted) await visit(m, true);
  return { order, bytes, deps, builtin, missing };
}

// ---------------------------------------------------------------------------------------------
// host binaries and their libraries

/** Host binaries copied in (their ldd closure comes along). */
export const DEFAULT_BINARIES = [
  '/bin/dash', // /bin/sh in the guest: see initramfs() below
  '/usr/sbin/ipvsadm', '/usr/sbin/ipset', '/usr/sbin/ip',
  '/usr/sbin/xtables-nft-multi', '/usr/sbin/xtables-legacy-multi',
];
const XTABLES_DIR = '/usr/lib/x86_64-linux-gnu/xtables';

/** /lib and /lib64 are symlinks into /usr in the guest (usrmerge, like Debian 12). */
// Tree.add maps every path through it: the kernel unpacks in archive order and would not
// follow /lib before /usr/lib exists.
const guestPath = (p: string) => p.replace(/^\/lib(64)?\//, '/usr/lib$1/');

/** Every shared library (and the dynamic loader) the given ELF files need, by ldd. */
export async function lddClosure(files: string[]): Promise<string[]> {
  if (files.length === 0) return [];
  let out: string;
  try {
    out = (await exec('ldd', files, { maxBuffer: 16 << 20 })).stdout;
  } catch (err) {
    out = (err as { stdout?: string }).stdout ?? ''; // ldd exits 1 if one file is static
  }
  const libs = new Set<string>();
  for (const line of out.split('\n')) {
    const m = /=>\s*(\/\S+)\s*\(/.exec(line) ?? /^\s*(\/\S+)\s*\(0x/.exec(line);
    if (m) libs.add(m[1]!);
  }
  return [...libs].sort();
}

// ---------------------------------------------------------------------------------------------
// /init

/** The guest's PID 1. Console on ttyS0; the command channel on ttyS1 (see vm.ts). */
export function initScript(): string {
  return `#!/bin/sh
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mkdir -p /run/netns /run/lock
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
hostname kx-guest
KVER=$(uname -r)
: > /run/kx-modules.log
for m in $(cat /etc/kx/modules); do
  insmod /lib/modules/$KVER/kx/$m.ko >>/run/kx-modules.log 2>&1 || echo "insmod $m failed" >>/run/kx-modules.log
done
ip link set lo up
for f in /etc/kx/init.d/*; do [ -x "$f" ] && "$f"; done
# Command channel (host: vm.ts). Request line: "<id> <timeout s> <base64 script>".
# Reply: <<<KX-BEGIN id>>> base64(stdout) <<<KX-STDERR id>>> base64(stderr) <<<KX-END id rc>>>.
# /bin/sh is named by path: busybox timeout would run its own ash for a bare "sh".
# Output goes through files, so a command that backgrounds a daemon does not hold the reply.
exec 3<>/dev/ttyS1
stty raw -echo <&3
echo "<<<KX-READY $KVER>>>" >&3
while read -r id tmo b64 <&3; do
  echo "$b64" | base64 -d > /run/kx.cmd
  ( cd /root && exec timeout -s KILL "$tmo" /bin/sh /run/kx.cmd ) </dev/null >/run/kx.out 2>/run/kx.err 3<&-
  rc=$?
  { echo "<<<KX-BEGIN $id>>>"; base64 /run/kx.out; echo "<<<KX-STDERR $id>>>"; base64 /run/kx.err; echo "<<<KX-END $id $rc>>>"; } >&3
done
echo "kx: command channel closed" >/dev/console
poweroff -f
`;
}

// ---------------------------------------------------------------------------------------------
// build

export interface InitramfsOptions {
  /** Also copy process.execPath (Node) to /usr/local/bin/node. */
  withNode?: boolean;
  /** Module names (default DEFAULT_MODULES); dependencies are added. */
  modules?: string[];
  /** Modules placed in the tree and modules.dep but not loaded by /init: left for modprobe, as
   *  on a real node (kube-xdp loads them itself). Dependencies already loaded are not repeated. */
  loadableModules?: string[];
  /** Host binaries to copy besides DEFAULT_BINARIES (placed at the same path). */
  binaries?: string[];
  /** Guest path -> content, appended as a second archive (mode 0755). */
  extraFiles?: Record<string, string | Buffer>;
  /** Host shared libraries to copy (same path, /lib through /usr/lib), with the ones they need. */
  libraries?: string[];
  /**
   * Gzip the cached base archive (default: yes without Node, no with it). Under TCG the kernel
   * spends ~1.1 s more unpacking the 43 MB gzip'd Node archive than the 115 MB plain one.
   */
  compressBase?: boolean;
}

export interface Initramfs {
  /** The archive to pass to qemu -initrd (base + extras; a temp file when extras were given). */
  path: string;
  /** Size of that file in bytes. */
  bytes: number;
  /** The cached base archive (without extraFiles). */
  basePath: string;
  baseCached: boolean;
  modules: ResolvedModules['order'];
  missingModules: string[];
  buildMs: number;
}

async function busyboxEntries(tree: Tree, skip: Set<string>): Promise<void> {
  const bb = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));
  if (!bb) throw new Error('busybox not found: apt-get install busybox-static');
  const { stdout: file } = await exec('file', ['-L', bb]).catch(() => ({ stdout: 'statically linked' }));
  if (!/statically linked|static-pie/.test(file)) throw new Error(`${bb} is not static: apt-get install busybox-static`);
  tree.add({ type: 'file', path: '/bin/busybox', data: await readFile(bb), mode: 0o755 });
  const { stdout } = await exec(bb, ['--list-full']);
  for (const rel of stdout.split('\n').filter(Boolean)) {
    if (skip.has(basename(rel))) continue;
    const p = '/' + rel;
    if (p === '/bin/busybox') continue;
    tree.add({ type: 'symlink', path: p, target: '/bin/busybox' });
  }
}

async function fileKey(paths: string[]): Promise<string[]> {
  return Promise.all(paths.map(async (p) => {
    const s = await stat(p);
    return `${p}:${s.size}:${s.mtimeMs}`;
  }));
}

export async function buildInitramfs(kernel: Kernel, opts: InitramfsOptions = {}): Promise<Initramfs> {
  const t0 = Date.now();
  const wanted = opts.modules ?? DEFAULT_MODULES;
  const bins = [...DEFAULT_BINARIES, ...(opts.binaries ?? []), ...(opts.withNode ? [process.execPath] : [])];
  for (const b of bins) if (!existsSync(b)) throw new Error(`host binary ${b} missing (apt-get install ipvsadm ipset iptables iproute2)`);
  const xtables = existsSync(XTABLES_DIR)
    ? (await readdir(XTABLES_DIR)).filter((f) => f.endsWith('.so')).map((f) => join(XTABLES_DIR, f)) : [];
  const extraLibs = opts.libraries ?? [];
  for (const l of extraLibs) if (!existsSync(l)) throw new Error(`host library ${l} missing`);
  const libs = [...new Set([...await lddClosure([...bins, ...xtables, ...extraLibs]), ...extraLibs])].sort();
  const bbPath = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p)) ?? '/bin/busybox';

  const key = createHash('sha256').update(JSON.stringify({
    v: HARNESS_VERSION, kernel: kernel.vmlinuz, wanted, loadable: opts.loadableModules ?? [], init: initScript(),
    files: await fileKey([...bins, ...xtables, ...libs, ...(existsSync(bbPath) ? [bbPath] : [])]),
  })).digest('hex').slice(0, 16);
  const dir = join(kernelCacheDir(), 'initramfs');
  await mkdir(dir, { recursive: true });
  const compressBase = opts.compressBase ?? !opts.withNode;
  const basePath = join(dir, `${kernel.version}-${key}${opts.withNode ? '-node' : ''}.cpio${compressBase ? '.gz' : ''}`);
  const metaPath = basePath.replace(/\.cpio(\.gz)?$/, '.json');
  let baseCached = existsSync(basePath) && existsSync(metaPath);
  let meta: { modules: string[]; missing: string[]; containers: string[] };

  if (baseCached) {
    meta = JSON.parse(await readFile(metaPath, 'utf8'));
  } else {
    const tree = new Tree();
    for (const d of ['/proc', '/sys', '/dev', '/run', '/tmp', '/root', '/etc', '/mnt', '/usr/lib64', '/var']) {
      tree.add({ type: 'dir', path: d });
    }
    tree.add({ type: 'dir', path: '/tmp', mode: 0o1777 });
    tree.add({ type: 'chardev', path: '/dev/console', major: 5, minor: 1 });
    tree.add({ type: 'chardev', path: '/dev/null', major: 1, minor: 3, mode: 0o666 });
    tree.add({ type: 'symlink', path: '/lib', target: 'usr/lib' }); // guestPath() leaves these two alone
    tree.add({ type: 'symlink', path: '/lib64', target: 'usr/lib64' });
    tree.add({ type: 'symlink', path: '/var/run', target: '../run' });
    tree.add({ type: 'symlink', path: '/var/lock', target: '../run/lock' });

    // Host binaries shadow busybox applets of the same name (iproute2 ip has netns, busybox ip not).
    const xtNft = ['iptables', 'iptables-save', 'iptables-restore', 'ip6tables', 'ip6tables-save', 'ip6tables-restore',
      'iptables-nft', 'iptables-nft-save', 'iptables-nft-restore', 'ip6tables-nft', 'ip6tables-nft-save', 'ip6tables-nft-restore'];
    const xtLegacy = ['iptables-legacy', 'iptables-legacy-save', 'iptables-legacy-restore',
      'ip6tables-legacy', 'ip6tables-legacy-save', 'ip6tables-legacy-restore'];
    // Debian's busybox-static is built with FEATURE_SH_STANDALONE/PREFER_APPLETS: its ash runs
    // its own applet for `ip` even when /usr/sbin/ip comes first in PATH. So /bin/sh is the
    // host's dash (plain PATH lookup) and busybox applets are reached through their symlinks.
    const shadow = new Set([...bins.map((b) => basename(b)), ...xtNft, ...xtLegacy, 'node', 'sh']);
    await busyboxEntries(tree, shadow);

    for (const b of bins) {
      const dest = b === process.execPath ? '/usr/local/bin/node' : b;
      tree.add({ type: 'file', path: dest, data: await readFile(b), mode: 0o755 });
    }
    tree.add({ type: 'symlink', path: '/bin/sh', target: 'dash' });
    for (const n of xtNft) tree.add({ type: 'symlink', path: `/usr/sbin/${n}`, target: 'xtables-nft-multi' });
    for (const n of xtLegacy) tree.add({ type: 'symlink', path: `/usr/sbin/${n}`, target: 'xtables-legacy-multi' });
    for (const x of xtables) tree.add({ type: 'file', path: x, data: await readFile(x), mode: 0o644 });
    for (const l of libs) tree.add({ type: 'file', path: guestPath(l), data: await readFile(await realpath(l)), mode: 0o755 });

    for (const f of ['/etc/protocols', '/etc/services', '/etc/ethertypes']) {
      if (existsSync(f)) tree.add({ type: 'file', path: f, data: await readFile(f) });
    }
    tree.add({ type: 'file', path: '/etc/passwd', data: 'root:x:0:0:root:/root:/bin/sh\n' });
    tree.add({ type: 'file', path: '/etc/group', data: 'root:x:0:\n' });
    tree.add({ type: 'file', path: '/etc/hosts', data: '127.0.0.1 localhost kx-guest\n::1 localhost\n' });
    tree.add({ type: 'file', path: '/etc/nsswitch.conf', data: 'passwd: files\ngroup: files\nhosts: files\nprotocols: files\nservices: files\n' });

    const mods = await resolveModules(kernel, wanted);
    const loadable = await resolveModules(kernel, opts.loadableModules ?? []);
    const onDisk = new Map([...loadable.bytes, ...mods.bytes]);
    for (const [name, ko] of onDisk) {
      tree.add({ type: 'file', path: `/lib/modules/${kernel.version}/kx/${name}.ko`, data: ko });
    }
    tree.add({ type: 'file', path: '/etc/kx/modules', data: mods.order.join('\n') + '\n' });
    // modules.dep lists a module's dependencies so that `modprobe X` (ipvsadm runs it) finds them;
    // the ones /init loads are loaded already, so modprobe has nothing left to do for those.
    const deps = new Map([...loadable.deps, ...mods.deps]);
    const transitive = (n: string, acc: string[] = []): string[] => {
      for (const d of deps.get(n) ?? []) if (!acc.includes(d)) { acc.push(d); transitive(d, acc); }
      return acc;
    };
    const depLines = [...onDisk.keys()].map((n) => `kx/${n}.ko:${transitive(n).map((d) => ` kx/${d}.ko`).join('')}`);
    tree.add({ type: 'file', path: `/lib/modules/${kernel.version}/modules.dep`, data: depLines.join('\n') + '\n' });
    // modules.alias, so that the kernel's on-demand loads (request_module("sch_clsact")) find them.
    const aliasLines = [...onDisk].flatMap(([n, ko]) => modinfoAliases(ko).map((a) => `alias ${a} ${n}`));
    tree.add({ type: 'file', path: `/lib/modules/${kernel.version}/modules.alias`, data: aliasLines.join('\n') + '\n' });
    tree.add({ type: 'dir', path: '/etc/kx/init.d' });
    tree.add({ type: 'file', path: '/init', data: initScript(), mode: 0o755 });

    const cpio = newc(tree.list());
    const tmp = `${basePath}.${process.pid}.tmp`;
    await writeFile(tmp, compressBase ? gzipSync(cpio, { level: 6 }) : cpio);
    meta = { modules: mods.order, missing: [...mods.missing, ...loadable.missing], containers: tree.containers() };
    await writeFile(metaPath, JSON.stringify(meta));
    await rename(tmp, basePath);
    baseCached = false;
  }

  let path = basePath;
  if (opts.extraFiles && Object.keys(opts.extraFiles).length > 0) {
    // The kernel replaces an existing path whose type differs (e.g. the /lib symlink by a
    // directory), so the second archive names only parents the base archive lacks, and paths
    // under /lib, /lib64 go to their /usr targets. The kernel takes a gzip'd archive after an
    // uncompressed one as well.
    const extra = new Tree(new Set(meta.containers));
    for (const [p, data] of Object.entries(opts.extraFiles)) {
      extra.add({ type: 'file', path: guestPath(posix.normalize('/' + p)), data, mode: 0o755 });
    }
    const gz = gzipSync(newc(extra.list()), { level: 1 });
    path = join(tmpdir(), `kx-initrd-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}.cpio`);
    await copyFile(basePath, path);
    await appendFile(path, gz);
  }
  const bytes = (await stat(path)).size;
  return { path, bytes, basePath, baseCached, modules: meta.modules, missingModules: meta.missing, buildMs: Date.now() - t0 };
}
