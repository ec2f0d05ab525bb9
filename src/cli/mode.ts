// Which dataplane runs: the one asked for, or with `--mode auto` the first this kernel can run,
// in the order eBPF → nftables → IPVS → iptables (nftables is kube-proxy's successor to both rule
// modes, and iptables on iptables-nft is the slowest at scale). What each mode needs is checked at
// start, before the source is read, so a node that cannot run the asked-for mode fails at once.
import { existsSync } from 'node:fs';
import type { ProxyMode } from '../config/kube-proxy-config.js';
import type { RunConfig } from '../config/run-config.js';
import { CommandError, runCommand } from '../kernel/command.js';
import { Libkx, defaultLibkxPath } from '../kernel/libkx.js';
import { ensureModules } from '../kernel/modules.js';
import { nftVersion } from '../kernel/nft.js';
import { probeKernel, type ProbeReport } from '../kernel/probe.js';

export type ConcreteMode = Exclude<ProxyMode, 'auto'>;
export const AUTO_ORDER: readonly ConcreteMode[] = ['ebpf', 'nftables', 'ipvs', 'iptables'];

export interface ModeCheck {
  readonly mode: ConcreteMode;
  /** null: usable; else why not. */
  readonly unusable: string | null;
  /** eBPF: the kernel probe the check ran (the loader reuses it rather than probing again). */
  readonly probe?: ProbeReport;
}

export class ModeUnavailableError extends Error {
  constructor(readonly mode: ConcreteMode, readonly why: string) {
    super(`--mode ${mode} cannot run on this node: ${why}`);
    this.name = 'ModeUnavailableError';
  }
}

/** Pure: the first usable mode of AUTO_ORDER, or an error listing why each was not. */
export function chooseMode(checks: readonly ModeCheck[]): ConcreteMode {
  for (const mode of AUTO_ORDER) {
    if (checks.find((c) => c.mode === mode)?.unusable === null) return mode;
  }
  throw new Error(`--mode auto: no mode can run here: ${checks.map((c) => `${c.mode}: ${c.unusable}`).join('; ')}`);
}

/** null when `bin args` runs and exits 0, else why not. */
function runs(bin: string, args: string[]): string | null {
  try {
    const r = runCommand(bin, args);
    return r.code === 0 ? null : `\`${bin} ${args.join(' ')}\` failed: ${(r.stderr || r.stdout).trim()}`;
  } catch (err) {
    return `${bin} not found (${(err as CommandError).stderr})`;
  }
}

/** IPVS needs ip_vs, the scheduler's module and nf_conntrack (loaded with modprobe if need be),
 *  and the ipvsadm and ipset tools the applier drives. */
export function checkIpvs(scheduler: string): string | null {
  const missing = ensureModules(['ip_vs', `ip_vs_${scheduler}`, 'nf_conntrack']);
  if (missing.length) return `missing kernel module${missing.length > 1 ? 's' : ''}: ${missing.map((m) => `${m.name}: ${m.why}`).join('; ')}`;
  return runs('ipvsadm', ['--version']) ?? runs('ipset', ['--version']);
}

/** eBPF needs its interfaces named, its object and shim, and every required kernel feature
 *  (probe.ts: each tried for real, the missing ones named with the kernel that brought them). */
export function checkEbpf(cfg: Pick<RunConfig, 'externalInterfaces' | 'objectPath'>): ModeCheck {
  const no = (unusable: string): ModeCheck => ({ mode: 'ebpf', unusable });
  if (cfg.externalInterfaces.length === 0) return no('no --external-interfaces given');
  if (!existsSync(cfg.objectPath)) return no(`BPF object ${cfg.objectPath} not found`);
  let lib: Libkx;
  try {
    lib = new Libkx();
  } catch (err) {
    return no(`the libbpf shim ${defaultLibkxPath()} cannot be loaded: ${(err as Error).message}`);
  }
  const probe = probeKernel(lib);
  return { mode: 'ebpf', unusable: probe.ebpfUnusable, probe };
}

export function checkIptables(): string | null {
  const nft = runs('iptables-nft', ['--version']);
  return nft === null ? null : runs('iptables-legacy', ['--version']);
}

/** nftables needs nft ≥ 1.0.1 (older ones parse the whole ruleset; kube-proxy refuses them
 *  too) and a kernel with nf_tables: asked as knftables asks, with `nft --check add table`, which
 *  the kernel validates and nothing applies. */
export function checkNftables(): string | null {
  const v = nftVersion();
  if (v === null) return 'the nft binary does not run (install nftables)';
  const [a, b, c] = v;
  if (!(a > 1 || (a === 1 && (b > 0 || c >= 1)))) return `nft ${v.join('.')} is older than 1.0.1`;
  return runs('nft', ['--check', 'add', 'table', 'ip', 'kube-proxy']);
}

/** A rule-writing mode's check (`scheduler`: the IPVS scheduler whose module it needs). */
export function checkRuleMode(mode: Exclude<ConcreteMode, 'ebpf'>, scheduler: string): ModeCheck {
  const unusable = { nftables: checkNftables, ipvs: () => checkIpvs(scheduler), iptables: checkIptables }[mode]();
  return { mode, unusable };
}

export function checkMode(mode: ConcreteMode, cfg: RunConfig): ModeCheck {
  return mode === 'ebpf' ? checkEbpf(cfg) : checkRuleMode(mode, cfg.proxy.ipvs.scheduler);
}

/** The mode to run and, for auto, every check made (for the log). Throws ModeUnavailableError
 *  when an explicitly asked-for eBPF or IPVS mode cannot run. */
export function resolveMode(cfg: RunConfig): { mode: ConcreteMode; checks: ModeCheck[] } {
  const asked = cfg.proxy.mode;
  if (asked !== 'auto') {
    // iptables reports its own problems when it starts; eBPF needs kernel features, IPVS modules.
    const check = asked === 'iptables' ? { mode: asked, unusable: null } : checkMode(asked, cfg);
    if (check.unusable !== null) throw new ModeUnavailableError(asked, check.unusable);
    return { mode: asked, checks: [check] };
  }
  const checks: ModeCheck[] = [];
  for (const mode of AUTO_ORDER) {
    const c = checkMode(mode, cfg);
    checks.push(c);
    if (c.unusable === null) break;
  }
  return { mode: chooseMode(checks), checks };
}
