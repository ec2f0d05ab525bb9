// Kernel modules a mode needs: loaded, built in, or loadable with modprobe. The decision is pure
// (missingModules); reading /proc, /sys and /lib/modules and calling modprobe are the edges.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { release } from 'node:os';
import { CommandError, runCommand } from './command.js';

export interface ModuleFacts {
  /** /proc/modules and /sys/module (a built-in module with parameters shows there too). */
  readonly loaded: ReadonlySet<string>;
  /** /lib/modules/<release>/modules.builtin. */
  readonly builtin: ReadonlySet<string>;
}

export interface MissingModule {
  readonly name: string;
  readonly why: string;
}

/** Module names use `_` and `-` interchangeably (the kernel reports `_`). */
export const moduleName = (n: string) => n.replace(/-/g, '_');

export function parseProcModules(text: string): string[] {
  return text.split('\n').map((l) => l.split(' ')[0]!).filter((n) => n !== '').map(moduleName);
}

/** `kernel/net/netfilter/ipvs/ip_vs.ko` → `ip_vs`. */
export function parseModulesBuiltin(text: string): string[] {
  return text.split('\n').filter((l) => l.trim() !== '').map((l) => moduleName(l.trim().replace(/^.*\//, '').replace(/\.ko(\.\w+)?$/, '')));
}

/** The required modules that are neither loaded nor built in. Pure. */
export function missingModules(required: readonly string[], facts: ModuleFacts): string[] {
  return required.map(moduleName).filter((m) => !facts.loaded.has(m) && !facts.builtin.has(m));
}

export function readModuleFacts(kernelRelease = release()): ModuleFacts {
  const read = (p: string) => {
    try {
      return readFileSync(p, 'utf8');
    } catch {
      return '';
    }
  };
  const loaded = new Set(parseProcModules(read('/proc/modules')));
  if (existsSync('/sys/module')) for (const m of readdirSync('/sys/module')) loaded.add(moduleName(m));
  return { loaded, builtin: new Set(parseModulesBuiltin(read(`/lib/modules/${kernelRelease}/modules.builtin`))) };
}

/**
 * Loads what is missing with modprobe, as kube-proxy did before it started. Returns the modules
 * that are still unavailable, each with modprobe's answer.
 */
export function ensureModules(required: readonly string[]): MissingModule[] {
  const missing = missingModules(required, readModuleFacts());
  const still: MissingModule[] = [];
  for (const name of missing) {
    let r;
    try {
      r = runCommand('modprobe', ['--', name]);
    } catch (err) {
      still.push({ name, why: `not loaded, not built in, and modprobe could not run (${(err as CommandError).stderr})` });
      continue;
    }
    if (r.code !== 0) {
      still.push({ name, why: `not loaded, not built in, and \`modprobe ${name}\` failed: ${(r.stderr || r.stdout).trim() || `exit ${r.code}`}` });
    } else if (missingModules([name], readModuleFacts()).length > 0) {
      still.push({ name, why: `\`modprobe ${name}\` succeeded but the module does not show in /proc/modules` });
    }
  }
  return still;
}
