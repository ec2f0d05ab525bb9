// Counters and gauges in Prometheus text format: no client library needed for this much.
export type Labels = Readonly<Record<string, string>>;

interface Family { help: string; type: 'counter' | 'gauge' | 'histogram'; values: Map<string, number> }

/** kube-proxy's buckets for sync and network-programming durations (seconds). */
export const DURATION_BUCKETS = [0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192, 16.384, 30, 60, 120, 300] as const;

const labelKey = (labels: Labels) =>
  Object.keys(labels).sort().map((k) => `${k}="${String(labels[k]).replace(/["\\\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`))}"`).join(',');

export class Metrics {
  private readonly families = new Map<string, Family>();

  private family(name: string, type: Family['type'], help: string): Family {
    let f = this.families.get(name);
    if (!f) this.families.set(name, (f = { help, type, values: new Map() }));
    return f;
  }

  inc(name: string, help: string, labels: Labels = {}, by = 1): void {
    const f = this.family(name, 'counter', help);
    const k = labelKey(labels);
    f.values.set(k, (f.values.get(k) ?? 0) + by);
  }

  set(name: string, help: string, value: number, labels: Labels = {}): void {
    this.family(name, 'gauge', help).values.set(labelKey(labels), value);
  }

  /** A histogram sample: cumulative `le` buckets, _sum and _count, as Prometheus expects. */
  observe(name: string, help: string, value: number, buckets: readonly number[] = DURATION_BUCKETS): void {
    const f = this.family(name, 'histogram', help);
    // Every bucket is printed, also those no sample reached, for the series to be complete.
    if (!f.values.has('_count')) for (const le of buckets) f.values.set(`_bucket{le="${le}"}`, 0);
    const add = (k: string) => f.values.set(k, (f.values.get(k) ?? 0) + 1);
    for (const le of buckets) if (value <= le) add(`_bucket{le="${le}"}`);
    add('_bucket{le="+Inf"}');
    f.values.set('_sum', (f.values.get('_sum') ?? 0) + value);
    add('_count');
  }

  get(name: string, labels: Labels = {}): number {
    return this.families.get(name)?.values.get(labelKey(labels)) ?? 0;
  }

  render(): string {
    const out: string[] = [];
    for (const [name, f] of [...this.families].sort(([a], [b]) => a.localeCompare(b))) {
      out.push(`# HELP ${name} ${f.help}`, `# TYPE ${name} ${f.type}`);
      if (f.type === 'histogram') {
        const buckets = [...f.values].filter(([k]) => k.startsWith('_bucket')).sort(([a], [b]) => bucketBound(a) - bucketBound(b));
        for (const [k, v] of buckets) out.push(`${name}${k} ${v}`);
        out.push(`${name}_sum ${f.values.get('_sum') ?? 0}`, `${name}_count ${f.values.get('_count') ?? 0}`);
      } else for (const [k, v] of f.values) out.push(`${name}${k ? `{${k}}` : ''} ${v}`);
    }
    return `${out.join('\n')}\n`;
  }
}

function bucketBound(key: string): number {
  const le = /le="([^"]+)"/.exec(key)![1]!;
  return le === '+Inf' ? Infinity : Number(le);
}
