// Command-line flags with environment fallbacks (--node-name <-> KUBE_XDP_NODE_NAME), and the
// small value parsers whose errors name the flag.
import { parseArgs, type ParseArgsConfig } from 'node:util';

export class ConfigError extends Error {
  constructor(readonly flag: string, message: string) {
    super(`--${flag}: ${message}`);
    this.name = 'ConfigError';
  }
}

export type FlagSpec = Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string; default?: string }>;

export const envName = (flag: string) => `KUBE_XDP_${flag.toUpperCase().replace(/-/g, '_')}`;

/** Parses argv; a flag not given falls back to its env variable, then its default. Lists
 * (multiple) also accept comma-separated values. */
export function readFlags(argv: string[], spec: FlagSpec, env: NodeJS.ProcessEnv = process.env) {
  const options: NonNullable<ParseArgsConfig['options']> = {};
  for (const [name, s] of Object.entries(spec)) {
    options[name] = { type: s.type, ...(s.multiple ? { multiple: true } : {}), ...(s.short ? { short: s.short } : {}) };
  }
  const { values, positionals } = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  const out: Record<string, string | string[] | boolean | undefined> = {};
  for (const [name, s] of Object.entries(spec)) {
    const given = (values as Record<string, unknown>)[name];
    const fromEnv = env[envName(name)];
    if (s.multiple) {
      const list = (given as string[] | undefined) ?? (fromEnv !== undefined ? [fromEnv] : s.default !== undefined ? [s.default] : []);
      out[name] = list.flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '');
    } else if (s.type === 'boolean') {
      out[name] = (given as boolean | undefined) ?? (fromEnv !== undefined ? fromEnv === 'true' || fromEnv === '1' : false);
    } else {
      out[name] = (given as string | undefined) ?? fromEnv ?? s.default;
    }
  }
  return { values: out, positionals };
}

/** "500ms", "2s", "1m", or a bare number of milliseconds. */
export function parseDuration(flag: string, v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v.trim());
  if (!m) throw new ConfigError(flag, `${JSON.stringify(v)} is not a duration (e.g. 500ms, 30s, 1m)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 'ms') as 'ms'];
  return Number(m[1]) * unit;
}

export function oneOf<T extends string>(flag: string, v: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(v)) throw new ConfigError(flag, `${JSON.stringify(v)} is not one of ${allowed.join(', ')}`);
  return v as T;
}
