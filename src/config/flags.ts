// Command-line flags with environment fallbacks (--node-name <-> KUBE_XDP_NODE_NAME), and the
// small value parsers whose errors name the flag.
import { parseArgs, type ParseArgsConfig } from 'node:util';

export class ConfigError extends Error {
  constructor(readonly flag: string, message: string) {
    super(`--${flag}: ${message}`);
    this.name = 'ConfigError';
  }
}

/** " (did you mean x?)" for a name one or two edits away from a known one (a case slip counts as none). */
export function suggest(name: string, known: readonly string[]): string {
  let best: string | null = null;
  let bestD = 3;
  for (const k of known) {
    const d = k.toLowerCase() === name.toLowerCase() ? 0 : editDistance(name, k);
    if (d < bestD) [best, bestD] = [k, d];
  }
  return best === null ? '' : ` (did you mean ${best}?)`;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
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
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: normalize(argv, spec), options, allowPositionals: true, strict: true });
  } catch (err) {
    throw flagError(err as Error & { code?: string }, Object.keys(spec));
  }
  const { values, positionals } = parsed;
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

/** kube-proxy's command line as pflag reads it: `--flag_name` is `--flag-name`, and a boolean
 *  takes `--flag=true|false`. */
function normalize(argv: string[], spec: FlagSpec): string[] {
  const out: string[] = [];
  for (const [i, arg] of argv.entries()) {
    if (arg === '--') return [...out, ...argv.slice(i)];
    const m = /^--([^=]+)(?:=(.*))?$/s.exec(arg);
    if (!m) {
      out.push(arg);
      continue;
    }
    const name = m[1]!.replace(/_/g, '-');
    if (spec[name]?.type === 'boolean' && m[2] !== undefined) {
      if (m[2] !== 'true' && m[2] !== 'false') throw new ConfigError(name, `${JSON.stringify(m[2])} is not true or false`);
      if (m[2] === 'true') out.push(`--${name}`);
      continue;
    }
    out.push(m[2] === undefined ? `--${name}` : `--${name}=${m[2]}`);
  }
  return out;
}

/** parseArgs' errors as ConfigErrors naming the flag, an unknown one with the closest known name. */
function flagError(err: Error & { code?: string }, known: string[]): Error {
  const name = /'(-[^' ]+)/.exec(err.message)?.[1]?.replace(/^-+/, '') ?? '';
  if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const hint = suggest(name, known).replace(/did you mean (\S+)\?/, 'did you mean --$1?');
    return new UnknownFlagError(name, `unknown flag${hint}`);
  }
  if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') return new ConfigError(name, err.message.includes('argument missing') ? 'needs a value' : err.message);
  return err;
}

/** An unknown flag: the command answers with its usage. */
export class UnknownFlagError extends ConfigError {}

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
