// Prometheus metrics on a prom-client Registry of their own (one per Metrics: tests and several
// controllers in one process never share a series), with prom-client's default process and
// Node.js metrics. Every metric is described by a MetricDef; kube-proxy's are in
// kube-proxy-metrics.ts, kube-xdp's own are named at their call sites (prefix kubexdp_).
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export type Labels = Readonly<Record<string, string>>;
export type MetricType = 'counter' | 'gauge' | 'histogram';

export interface MetricDef {
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  /** Label names; when absent, those of the first sample's labels. */
  readonly labelNames?: readonly string[];
  readonly buckets?: readonly number[];
}

/** Default buckets of kube-xdp's own histograms (seconds). */
export const DURATION_BUCKETS = [0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192, 16.384, 30, 60, 120, 300] as const;

type Made = { def: MetricDef; metric: Counter | Gauge | Histogram };

const labelKey = (labels: Labels) => JSON.stringify(Object.keys(labels).sort().map((k) => [k, labels[k]]));

export class Metrics {
  readonly registry = new Registry();
  private readonly made = new Map<string, Made>();
  /** Current value per series (a histogram's: its count), for get(): prom-client reads asynchronously. */
  private readonly values = new Map<string, Map<string, number>>();

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /** Registers the metrics now (they are served before their first sample); idempotent. */
  define(...defs: readonly MetricDef[]): void {
    for (const d of defs) this.family(d, {});
  }

  inc(def: MetricDef, labels?: Labels, by?: number): void;
  inc(name: string, help: string, labels?: Labels, by?: number): void;
  inc(a: MetricDef | string, ...rest: unknown[]): void {
    const [def, labels = {}, by = 1] = typeof a === 'string'
      ? [{ name: a, help: rest[0] as string, type: 'counter' as const }, rest[1] as Labels | undefined, rest[2] as number | undefined]
      : [a, rest[0] as Labels | undefined, rest[1] as number | undefined];
    (this.family(def, labels, 'counter') as Counter).inc({ ...labels }, by);
    this.record(def.name, labels, (v) => v + by);
  }

  set(def: MetricDef, value: number, labels?: Labels): void;
  set(name: string, help: string, value: number, labels?: Labels): void;
  set(a: MetricDef | string, ...rest: unknown[]): void {
    const [def, value, labels = {}] = typeof a === 'string'
      ? [{ name: a, help: rest[0] as string, type: 'gauge' as const }, rest[1] as number, rest[2] as Labels | undefined]
      : [a, rest[0] as number, rest[1] as Labels | undefined];
    (this.family(def, labels, 'gauge') as Gauge).set({ ...labels }, value);
    this.record(def.name, labels, () => value);
  }

  /** A histogram sample (cumulative `le` buckets, _sum and _count). */
  observe(def: MetricDef, value: number, labels?: Labels): void;
  observe(name: string, help: string, value: number, buckets?: readonly number[]): void;
  observe(a: MetricDef | string, ...rest: unknown[]): void {
    const [def, value, labels = {}] = typeof a === 'string'
      ? [{ name: a, help: rest[0] as string, type: 'histogram' as const, buckets: (rest[2] as readonly number[] | undefined) ?? DURATION_BUCKETS }, rest[1] as number, {}]
      : [a, rest[0] as number, rest[1] as Labels | undefined];
    (this.family(def, labels, 'histogram') as Histogram).observe({ ...labels }, value);
    this.record(def.name, labels, (v) => v + 1);
  }

  /** A counter's or gauge's current value, a histogram's sample count; 0 when never set. */
  get(name: string, labels: Labels = {}): number {
    return this.values.get(name)?.get(labelKey(labels)) ?? 0;
  }

  /** The text exposition of every metric of this registry. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private record(name: string, labels: Labels, next: (v: number) => number): void {
    let series = this.values.get(name);
    if (!series) this.values.set(name, (series = new Map()));
    const k = labelKey(labels);
    series.set(k, next(series.get(k) ?? 0));
  }

  private family(def: MetricDef, labels: Labels, want?: MetricType): Counter | Gauge | Histogram {
    const have = this.made.get(def.name);
    if (have) {
      if (want && have.def.type !== want) throw new Error(`metric ${def.name} is a ${have.def.type}, not a ${want}`);
      return have.metric;
    }
    if (want && def.type !== want) throw new Error(`metric ${def.name} is a ${def.type}, not a ${want}`);
    const opts = { name: def.name, help: def.help, labelNames: [...(def.labelNames ?? Object.keys(labels))], registers: [this.registry] };
    const metric = def.type === 'counter' ? new Counter(opts)
      : def.type === 'gauge' ? new Gauge(opts)
      : new Histogram({ ...opts, buckets: [...(def.buckets ?? DURATION_BUCKETS)] });
    this.made.set(def.name, { def, metric });
    return metric;
  }
}
