// kube-xdp itself for the qemu guest (vm.ts `withKubeXdp`): extraFiles that put the compiled
// controller, the lab echo server and client, and the runtime node_modules under /opt/kube-xdp,
// so that `node /opt/kube-xdp/dist/src/cli/main.js run --mode ipvs ...` runs inside the guest.
//
// node_modules is the dependency closure of the runtime packages only (package.json `dependencies`
// + `optionalDependencies` found on disk, resolved as Node does: the nearest node_modules up
// the tree first). @kubernetes/client-node (~57 MB) is left out: kube-xdp imports it only for
// `--source kubernetes`, and the guest runs on the file source.
import { existsSync } from 'node:fs';
import { readFile, readdir, realpath, stat } from 'node:fs/promises';
import { basename, dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lddClosure } from './initramfs.js';

/** Where the bundle goes in the guest. */
export const KUBE_XDP_GUEST_DIR = '/opt/kube-xdp';

/** kube-xdp's runtime dependencies (package.json's) minus @kubernetes/client-node: the guests
 *  run the file source, and the client is most of the install. */
const runtimePackages = async (root: string): Promise<string[]> =>
  Object.keys((await readPkg(root)).dependencies ?? {}).filter((d) => d !== '@kubernetes/client-node');

/** The repository root: this file is test/kernels/ in the sources, dist/test/kernels/ once built. */
export function repoRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (let d = here; d !== dirname(d); d = dirname(d)) {
    if (basename(d) !== 'dist' && existsSync(join(d, 'package.json')) && existsSync(join(d, 'node_modules'))) return d;
  }
  throw new Error(`no repository root (package.json + node_modules) above ${here}`);
}

export interface KubeXdpFilesOptions {
  /** Guest directory (default KUBE_XDP_GUEST_DIR). */
  guestDir?: string;
  /** Also the BPF fixture suites (dist/test/bpf, their helpers) to run under the guest's kernel. */
  withBpfTests?: boolean;
}

export interface KubeXdpBundle {
  /** Guest path -> content, for BootOptions.extraFiles. */
  files: Record<string, Buffer>;
  /** Sum of the file sizes (what the guest's RAM holds once unpacked). */
  bytes: number;
  /** Package directories copied, relative to node_modules (e.g. "ref-struct-di/node_modules/debug"). */
  packages: string[];
  /** Dependencies named in a package.json but found nowhere (optional ones are expected here). */
  missing: string[];
}

// ---------------------------------------------------------------------------------------------
// dependency closure

interface PackageJson { name?: string; dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> }

async function readPkg(dir: string): Promise<PackageJson> {
  return JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as PackageJson;
}

/** Node's lookup for `name` required from a file in `fromDir`: <d>/node_modules/<name> for d = fromDir and each ancestor up to root (skipping node_modules dirs themselves). */
export function resolvePackage(root: string, fromDir: string, name: string): string | undefined {
  for (let d = fromDir; ; d = dirname(d)) {
    if (basename(d) !== 'node_modules') {
      const c = join(d, 'node_modules', name);
      if (existsSync(join(c, 'package.json'))) return c;
    }
    if (d === root || dirname(d) === d || !d.startsWith(root + sep)) return undefined;
  }
}

/** Package directories (absolute) of the runtime closure of `names`, and what could not be found. */
export async function dependencyClosure(root: string, names: readonly string[]): Promise<{ dirs: string[]; missing: string[] }> {
  const seen = new Set<string>();
  const missing = new Set<string>();
  const visit = async (fromDir: string, name: string, optional: boolean): Promise<void> => {
    const dir = resolvePackage(root, fromDir, name);
    if (!dir) {
      if (!optional) missing.add(`${name} (from ${relative(root, fromDir) || '.'})`);
      return;
    }
    if (seen.has(dir)) return;
    seen.add(dir);
    const pkg = await readPkg(dir);
    for (const d of Object.keys(pkg.dependencies ?? {})) await visit(dir, d, false);
    for (const d of Object.keys(pkg.optionalDependencies ?? {})) await visit(dir, d, true);
  };
  for (const n of names) await visit(root, n, false);
  return { dirs: [...seen].sort(), missing: [...missing].sort() };
}

// ---------------------------------------------------------------------------------------------
// what to copy of a package

/** Never loaded by Node: documentation, type declarations, source maps, TypeScript and C sources. */
const SKIP_FILE = /(\.(md|markdown|map|ts|mts|cts|gyp|gypi|c|cc|cpp|h|hpp|o|a|mk)|^(CHANGELOG|HISTORY|AUTHORS|CONTRIBUTING)(\..*)?|^(Makefile|appveyor\.yml|\.travis\.yml|\.npmignore|\.eslintrc.*|\.prettierrc.*|\.editorconfig))$/i;
/** Top-level folders of a package it does not load from at run time (only at the top: yaml has dist/doc/). */
const SKIP_DIR = new Set(['test', 'tests', '__tests__', 'docs', 'doc', 'example', 'examples', 'benchmark', 'benchmarks', 'bench', 'coverage', '.github', 'node_modules']);
/** In a native addon package (binding.gyp): sources and the build tree, except the addon itself. */
const SKIP_DIR_NATIVE = new Set(['deps', 'src', 'include', 'build', 'prebuilds']);

async function packageFiles(pkgDir: string): Promise<string[]> {
  const out: string[] = [];
  const native = existsSync(join(pkgDir, 'binding.gyp'));
  const walk = async (dir: string, top: boolean): Promise<void> => {
    for (const d of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, d.name);
      if (d.isDirectory() || (d.isSymbolicLink() && (await stat(p)).isDirectory())) {
        if (d.name === 'node_modules' || (top && (SKIP_DIR.has(d.name) || (native && SKIP_DIR_NATIVE.has(d.name))))) continue;
        await walk(p, false);
      } else if (!SKIP_FILE.test(d.name)) {
        out.push(p);
      }
    }
  };
  await walk(pkgDir, true);
  if (native) {
    // node-gyp-build looks in build/Release, build/Debug, then prebuilds/<platform>-<arch>/.
    for (const sub of ['build/Release', 'build/Debug']) {
      const d = join(pkgDir, sub);
      if (existsSync(d)) for (const f of await readdir(d)) if (f.endsWith('.node')) out.push(join(d, f));
    }
    const pre = join(pkgDir, 'prebuilds', `${process.platform}-${process.arch}`);
    if (existsSync(pre)) for (const f of await readdir(pre)) out.push(join(pre, f));
    if (!out.some((f) => f.endsWith('.node'))) throw new Error(`${pkgDir}: native addon without a built .node file (npm rebuild?)`);
  }
  return out;
}

async function treeFiles(dir: string, keep: (name: string) => boolean): Promise<string[]> {
  const out: string[] = [];
  for (const d of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (d.isFile() && keep(d.name)) out.push(join(d.parentPath ?? d.path, d.name));
  }
  return out.sort();
}

// ---------------------------------------------------------------------------------------------

/** Host shared libraries build/libkx.so needs (libbpf, libelf, ...), for InitramfsOptions.libraries. */
export async function kubeXdpLibraries(root: string = repoRoot()): Promise<string[]> {
  const so = join(root, 'build', 'libkx.so');
  return existsSync(so) ? lddClosure([so]) : [];
}

const memo = new Map<string, Promise<KubeXdpBundle>>();

/** The bundle with its sizes (memoized per root and options: dist/ is not expected to change during a run). */
export function kubeXdpBundle(root: string = repoRoot(), opts: KubeXdpFilesOptions = {}): Promise<KubeXdpBundle> {
  const key = JSON.stringify([root, opts.guestDir ?? KUBE_XDP_GUEST_DIR, opts.withBpfTests === true]);
  let p = memo.get(key);
  if (!p) {
    p = build(root, opts);
    memo.set(key, p);
    p.catch(() => memo.delete(key));
  }
  return p;
}

/** extraFiles for the guest: /opt/kube-xdp/{package.json, dist/src/**, dist/test/lab/{echo-server,client}.js, build/{libkx.so,*.bpf.o}, node_modules/...}. */
export async function kubeXdpFiles(root: string = repoRoot(), opts: KubeXdpFilesOptions = {}): Promise<Record<string, Buffer>> {
  return (await kubeXdpBundle(root, opts)).files;
}

async function build(root: string, opts: KubeXdpFilesOptions): Promise<KubeXdpBundle> {
  const guestDir = opts.guestDir ?? KUBE_XDP_GUEST_DIR;
  const distSrc = join(root, 'dist', 'src');
  if (!existsSync(join(distSrc, 'cli', 'main.js'))) throw new Error(`${distSrc}/cli/main.js missing: run make build`);

  const hostFiles: string[] = [join(root, 'package.json')];
  const srcJs = await treeFiles(distSrc, (n) => !n.endsWith('.map'));
  hostFiles.push(...srcJs);
  for (const f of ['echo-server.js', 'client.js']) {
    const p = join(root, 'dist', 'test', 'lab', f);
    if (!existsSync(p)) throw new Error(`${p} missing: run make build`);
    hostFiles.push(p);
  }
  const libkx = join(root, 'build', 'libkx.so');
  if (existsSync(libkx)) hostFiles.push(libkx);
  // The eBPF mode's objects (build/kube_xdp.bpf.o, and empty.bpf.o the fixtures use).
  if (existsSync(join(root, 'build'))) hostFiles.push(...await treeFiles(join(root, 'build'), (n) => n.endsWith('.bpf.o')));
  if (opts.withBpfTests) {
    for (const d of ['bpf', 'unit/helpers']) hostFiles.push(...await treeFiles(join(root, 'dist', 'test', d), (n) => n.endsWith('.js')));
    hostFiles.push(join(root, 'dist', 'scripts', 'gen-crc32c-tables.js')); // the fixtures' CRC32c (SCTP)
  }

  const { dirs, missing } = await dependencyClosure(root, await runtimePackages(root));
  for (const d of dirs) hostFiles.push(...await packageFiles(d));

  const files: Record<string, Buffer> = {};
  let bytes = 0;
  await Promise.all(hostFiles.map(async (f) => {
    const data = await readFile(await realpath(f));
    files[`${guestDir}/${relative(root, f).split(sep).join('/')}`] = data;
    bytes += data.length;
  }));

  const nm = join(root, 'node_modules');
  return { files, bytes, packages: dirs.map((d) => relative(nm, d).split(sep).join('/')), missing };
}
