// Fetch and cache a Debian 12 cloud kernel for the qemu harness: the 6.1 series
// (linux-image-6.1.0-*-cloud-amd64-unsigned: Debian 12's own kernel, IPVS as modules, no TCX) and
// the 6.12 backports (linux-image-6.12.*+deb12-cloud-amd64-unsigned, TCX).
// Layout: $KUBE_XDP_KERNEL_CACHE (default /var/cache/kube-xdp/kernels)/<package>_<version>/
// holding the unpacked package (boot/vmlinuz-*, lib/modules/<ver>/) plus a `.complete` marker.
// Only `apt-cache` (local) is asked when the kernel is cached: no network on later runs.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export interface Kernel {
  /** bzImage to pass to qemu -kernel. */
  vmlinuz: string;
  /** lib/modules/<version> of the unpacked package (kernel/**.ko, modules.builtin; no modules.dep). */
  modulesDir: string;
  /** `uname -r` inside the guest, e.g. 6.1.0-56-cloud-amd64. */
  version: string;
}

export class KernelUnavailableError extends Error {
  override name = 'KernelUnavailableError';
}

/** The kernel series the harness boots. */
export type KernelSeries = '6.1' | '6.12';
export const KERNEL_SERIES: readonly KernelSeries[] = ['6.1', '6.12'];

/** Package names of a series; group 1 orders them (ABI number for 6.1, patch level for 6.12). */
const PKG_RE: Record<KernelSeries, RegExp> = {
  '6.1': /^linux-image-6\.1\.0-(\d+)-cloud-amd64-unsigned$/,
  '6.12': /^linux-image-6\.12\.(\d+)\+deb12-cloud-amd64-unsigned$/,
};
const APT_PATTERN: Record<KernelSeries, string> = {
  '6.1': '^linux-image-6\\.1\\.0-[0-9]+-cloud-amd64-unsigned$',
  '6.12': '^linux-image-6\\.12\\.[0-9]+\\+deb12-cloud-amd64-unsigned$',
};

export function kernelCacheDir(): string {
  return process.env.KUBE_XDP_KERNEL_CACHE || '/var/cache/kube-xdp/kernels';
}

async function run(cmd: string, args: string[], opts: { cwd?: string } = {}): Promise<string> {
  try {
    const { stdout } = await exec(cmd, args, { cwd: opts.cwd, maxBuffer: 64 << 20, env: { ...process.env, LC_ALL: 'C' } });
    return stdout;
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new KernelUnavailableError(`${cmd} not found: the kernel harness needs a Debian host with apt`);
    throw new KernelUnavailableError(`${cmd} ${args.join(' ')} failed: ${(e.stderr || e.message).trim()}`);
  }
}

/** The newest package apt can install (ABI number decides), as [{ pkg, abi, version }] or []. */
async function aptCandidates(series: KernelSeries): Promise<{ pkg: string; abi: number; version: string }[]> {
  const re = PKG_RE[series];
  let names: string[] = [];
  try {
    const out = await run('apt-cache', ['search', '--names-only', APT_PATTERN[series]]);
    names = out.split('\n').map((l) => l.split(' - ')[0]!.trim()).filter((n) => re.test(n));
  } catch {
    return [];
  }
  const byAbi = names.map((pkg) => ({ pkg, abi: Number(re.exec(pkg)![1]) })).sort((a, b) => b.abi - a.abi);
  const res: { pkg: string; abi: number; version: string }[] = [];
  for (const c of byAbi) {
    const pol = await run('apt-cache', ['policy', c.pkg]).catch(() => '');
    const m = /Candidate:\s*(\S+)/.exec(pol);
    if (m && m[1] !== '(none)') { res.push({ ...c, version: m[1]! }); break; } // newest installable only
  }
  return res;
}

async function resolveDir(dir: string): Promise<Kernel> {
  const boot = join(dir, 'boot');
  const vm = (await readdir(boot)).find((f) => f.startsWith('vmlinuz-'));
  if (!vm) throw new KernelUnavailableError(`no boot/vmlinuz-* in ${dir}`);
  const version = vm.slice('vmlinuz-'.length);
  const modulesDir = join(dir, 'lib', 'modules', version);
  // The .deb ships no modules.dep (depmod runs in postinst): initramfs.ts reads each module's
  // .modinfo `depends=` itself, so only the tree and modules.builtin are required here.
  if (!existsSync(join(modulesDir, 'modules.builtin'))) throw new KernelUnavailableError(`no modules.builtin in ${modulesDir}`);
  return { vmlinuz: join(boot, vm), modulesDir, version };
}

/** Newest complete kernel already in the cache (used when apt knows no candidate, e.g. offline). */
async function newestCached(cache: string, series: KernelSeries): Promise<string | undefined> {
  if (!existsSync(cache)) return undefined;
  const re = PKG_RE[series];
  const dirs = (await readdir(cache))
    .map((d) => ({ d, m: re.exec(d.split('_')[0]!) }))
    .filter((x) => x.m && existsSync(join(cache, x.d, '.complete')))
    .sort((a, b) => Number(b.m![1]) - Number(a.m![1]));
  return dirs[0] ? join(cache, dirs[0].d) : undefined;
}

export interface EnsureKernelInfo {
  kernel: Kernel;
  cached: boolean;
  downloadBytes?: number;
  downloadMs?: number;
}

const memo = new Map<KernelSeries, Promise<EnsureKernelInfo>>();

/** Like ensureKernel, also says whether the cache served it and what a download cost. */
export function ensureKernelInfo(series: KernelSeries = '6.1'): Promise<EnsureKernelInfo> {
  let p = memo.get(series);
  if (!p) {
    p = doEnsure(series);
    memo.set(series, p);
    p.catch(() => memo.delete(series));
  }
  return p;
}

export async function ensureKernel(series: KernelSeries = '6.1'): Promise<Kernel> {
  return (await ensureKernelInfo(series)).kernel;
}

async function doEnsure(series: KernelSeries): Promise<EnsureKernelInfo> {
  const cache = kernelCacheDir();
  const cands = await aptCandidates(series);
  const best = cands[0];
  if (!best) {
    const hit = await newestCached(cache, series);
    if (hit) return { kernel: await resolveDir(hit), cached: true };
    throw new KernelUnavailableError(
      `apt knows no ${APT_PATTERN[series]} package and none is cached in ` + cache +
      ': run `apt-get update` on a Debian 12 (bookworm) host with bookworm and bookworm-security in sources, ' +
      'or point KUBE_XDP_KERNEL_CACHE at a directory holding an unpacked one');
  }
  const dir = join(cache, `${best.pkg}_${best.version.replace(/[^A-Za-z0-9.+~-]/g, '_')}`);
  if (existsSync(join(dir, '.complete'))) return { kernel: await resolveDir(dir), cached: true };

  await mkdir(cache, { recursive: true });
  const tmp = await mkdtemp(join(cache, '.tmp-'));
  try {
    const t0 = Date.now();
    // apt-get download writes into the cwd. As root apt warns that the download is unsandboxed: harmless.
    await run('apt-get', ['download', '-q', `${best.pkg}=${best.version}`], { cwd: tmp });
    const downloadMs = Date.now() - t0;
    const deb = (await readdir(tmp)).find((f) => f.endsWith('.deb'));
    if (!deb) throw new KernelUnavailableError(`apt-get download ${best.pkg} produced no .deb`);
    const downloadBytes = (await stat(join(tmp, deb))).size;
    const root = join(tmp, 'root');
    await run('dpkg-deb', ['-x', join(tmp, deb), root]);
    await writeFile(join(root, '.complete'), `${best.pkg} ${best.version} ${downloadBytes}\n`);
    const kernel = await resolveDir(root); // validate before publishing
    void kernel;
    await rm(dir, { recursive: true, force: true });
    await rename(root, dir);
    return { kernel: await resolveDir(dir), cached: false, downloadBytes, downloadMs };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
