// Counters and gauges in Prometheus text format: no client library needed for this much.
export type Labels = Readonly<Record<string, string>>;

interface Family { help: string; type: 'counter' | 'gauge'; values: Map<string, number> }

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

  get(name: string, labels: Labels = {}): number {
    return this.families.get(name)?.values.get(labelKey(labels)) ?? 0;
  }

  render(): string {
    const out: string[] = [];
    for (const [name, f] of [...this.families].sort(([a], [b]) => a.localeCompare(b))) {
      out.push(`# HELP ${name} ${f.help}`, `# TYPE ${name} ${f.type}`);
      for (const [k, v] of f.values) out.push(`${name}${k ? `{${k}}` : ''} ${v}`);
    }
    return `${out.join('\n')}\n`;
  }
}
