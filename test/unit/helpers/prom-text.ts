// A strict parser of Prometheus' text exposition format (version 0.0.4), for tests: every line
// is `# HELP name text`, `# TYPE name type`, a sample `name{label="value",…} value [timestamp]`
// or empty; each sample belongs to a family whose TYPE came before it; a family is declared
// once; histograms have, per label set, ascending `le` buckets that are cumulative and end at
// +Inf equal to _count, and a _sum. Throws on the first violation, naming the line.

export type FamilyType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Family {
  readonly name: string;
  type: FamilyType;
  help: string | null;
  readonly samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set<FamilyType>(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

/** A float as Prometheus reads it (Go's strconv.ParseFloat: Inf and NaN in any case; prom-client
 *  prints NaN as "Nan"). */
function parseValue(text: string, where: string): number {
  if (/^\+?inf(inity)?$/i.test(text)) return Infinity;
  if (/^-inf(inity)?$/i.test(text)) return -Infinity;
  if (/^nan$/i.test(text)) return NaN;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) throw new Error(`${where}: bad value ${JSON.stringify(text)}`);
  return Number(text);
}

/** `{a="x",b="y"}` from position i (at `{`): the labels and the position after `}`. */
function parseLabels(line: string, i: number, where: string): [Record<string, string>, number] {
  const labels: Record<string, string> = {};
  i++;
  while (line[i] !== '}') {
    const m = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(line.slice(i));
    if (!m) throw new Error(`${where}: bad label at column ${i}`);
    const name = m[1]!;
    if (name in labels) throw new Error(`${where}: label ${name} twice`);
    i += m[0].length;
    let value = '';
    for (;;) {
      const c = line[i++];
      if (c === undefined) throw new Error(`${where}: unterminated label value`);
      if (c === '"') break;
      if (c === '\\') {
        const e = line[i++];
        if (e === 'n') value += '\n';
        else if (e === '\\' || e === '"') value += e;
        else throw new Error(`${where}: bad escape \\${e}`);
      } else value += c;
    }
    labels[name] = value;
    if (line[i] === ',') i++;
    else if (line[i] !== '}') throw new Error(`${where}: expected , or } at column ${i}`);
  }
  return [labels, i + 1];
}

/** The family a sample name belongs to (a histogram's _bucket/_sum/_count, a summary's _sum/_count). */
function familyOf(families: Map<string, Family>, name: string): Family | undefined {
  const f = families.get(name);
  if (f && f.type !== 'histogram') return f;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!name.endsWith(suffix)) continue;
    const base = families.get(name.slice(0, -suffix.length));
    if (base?.type === 'histogram' || (base?.type === 'summary' && suffix !== '_bucket')) return base;
  }
  return undefined;
}

export function parsePrometheusText(text: string): Map<string, Family> {
  if (text !== '' && !text.endsWith('\n')) throw new Error('the text does not end with a newline');
  const families = new Map<string, Family>();
  const seen = new Set<string>();
  const lines = text.split('\n');
  lines.pop();
  lines.forEach((line, n) => {
    const where = `line ${n + 1} (${JSON.stringify(line.slice(0, 80))})`;
    if (line === '') return;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) throw new Error(`${where}: a comment that is neither HELP nor TYPE`);
      const [, what, name, rest] = m as unknown as [string, 'HELP' | 'TYPE', string, string];
      if (!METRIC_NAME.test(name)) throw new Error(`${where}: bad metric name`);
      let f = families.get(name);
      if (what === 'TYPE') {
        if (!TYPES.has(rest as FamilyType)) throw new Error(`${where}: bad type`);
        if (f && (f.samples.length > 0 || f.type !== 'untyped' || seen.has(`TYPE ${name}`))) throw new Error(`${where}: TYPE after samples or twice`);
        seen.add(`TYPE ${name}`);
        if (f) f.type = rest as FamilyType;
        else families.set(name, (f = { name, type: rest as FamilyType, help: null, samples: [] }));
      } else {
        if (seen.has(`HELP ${name}`)) throw new Error(`${where}: HELP twice`);
        seen.add(`HELP ${name}`);
        const help = rest.replace(/\\(.?)/g, (_, e: string) => {
          if (e !== 'n' && e !== '\\') throw new Error(`${where}: bad escape in HELP`);
          return e === 'n' ? '\n' : '\\';
        });
        if (f) f.help = help;
        else families.set(name, { name, type: 'untyped', help, samples: [] });
      }
      return;
    }
    const m = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
    if (!m) throw new Error(`${where}: not a sample`);
    const name = m[0];
    let i = name.length;
    let labels: Record<string, string> = {};
    if (line[i] === '{') [labels, i] = parseLabels(line, i, where);
    const rest = line.slice(i);
    const v = /^ (\S+)( -?\d+)?$/.exec(rest);
    if (!v) throw new Error(`${where}: expected " value [timestamp]"`);
    const value = parseValue(v[1]!, where);
    const f = familyOf(families, name);
    if (!f || !seen.has(`TYPE ${f.name}`)) throw new Error(`${where}: sample of no family declared with TYPE before it`);
    for (const l of Object.keys(labels)) if (!LABEL_NAME.test(l)) throw new Error(`${where}: bad label name ${l}`);
    const series = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seen.has(series)) throw new Error(`${where}: series twice`);
    seen.add(series);
    if (f.type === 'counter' && !(value >= 0)) throw new Error(`${where}: negative or NaN counter`);
    f.samples.push({ name, labels, value });
  });
  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f);
  return families;
}

function checkHistogram(f: Family): void {
  const groups = new Map<string, { buckets: [number, number][]; sum?: number; count?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    const g = groups.get(key) ?? { buckets: [] };
    groups.set(key, g);
    if (s.name === `${f.name}_bucket`) {
      if (le === undefined) throw new Error(`${f.name}: a bucket without le`);
      g.buckets.push([parseValue(le, `${f.name} le`), s.value]);
    } else if (s.name === `${f.name}_sum`) g.sum = s.value;
    else if (s.name === `${f.name}_count`) g.count = s.value;
    else throw new Error(`${f.name}: sample ${s.name} in a histogram`);
  }
  for (const [key, g] of groups) {
    const at = `${f.name}${key}`;
    if (g.sum === undefined || g.count === undefined) throw new Error(`${at}: no _sum or _count`);
    for (let i = 1; i < g.buckets.length; i++) {
      if (!(g.buckets[i]![0] > g.buckets[i - 1]![0])) throw new Error(`${at}: le not ascending`);
      if (g.buckets[i]![1] < g.buckets[i - 1]![1]) throw new Error(`${at}: buckets not cumulative`);
    }
    const last = g.buckets.at(-1);
    if (!last || last[0] !== Infinity) throw new Error(`${at}: the last bucket is not +Inf`);
    if (last[1] !== g.count) throw new Error(`${at}: +Inf bucket ${last[1]} is not _count ${g.count}`);
  }
}

/** A histogram family's bucket bounds (of its first label set), +Inf left out. */
export function bucketBounds(f: Family): number[] {
  const first = f.samples.find((s) => s.name === `${f.name}_bucket`);
  if (!first) return [];
  const { le: _, ...rest } = first.labels;
  const key = JSON.stringify(Object.entries(rest).sort());
  return f.samples
    .filter((s) => s.name === `${f.name}_bucket` && JSON.stringify(Object.entries((({ le: _l, ...r }) => r)(s.labels)).sort()) === key)
    .map((s) => Number(s.labels.le === '+Inf' ? Infinity : s.labels.le))
    .filter((b) => b !== Infinity);
}
