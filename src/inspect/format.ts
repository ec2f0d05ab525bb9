// `kube-xdp inspect` output: a table (one row per Service port, like kubectl get), `wide` (each
// frontend and backend on its own line with state and counters, like ipvsadm -Ln), JSON, YAML.
import { stringify } from 'yaml';
import { hostPort } from '../dataplane/ipvs/virtual-servers.js';
import type { InspectedBackend, InspectedFrontend, InspectView } from './view.js';

export const OUTPUTS = ['table', 'wide', 'json', 'yaml'] as const;
export type Output = (typeof OUTPUTS)[number];

const TABLE_BACKENDS = 3;

const frontendText = (f: InspectedFrontend) => hostPort(f.address, f.port);
const backendState = (b: InspectedBackend) => [
  b.local ? 'local' : '', b.terminating ? 'terminating' : '', b.weight !== undefined ? `weight ${b.weight}` : '',
].filter(Boolean).join(',');
const counterText = (c: Readonly<Record<string, number>> | undefined) => Object.entries(c ?? {}).map(([k, v]) => `${k}=${v}`).join(' ');
const affinityText = (s: number | null) => (s === null ? 'None' : `ClientIP ${s}s`);

function columns(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('   ').trimEnd()).join('\n');
}

function footer(v: InspectView): string[] {
  const counters = counterText(v.counters);
  return [...(counters ? [`packets: ${counters}`] : []), ...v.notes.map((n) => `note: ${n}`)];
}

function table(v: InspectView): string {
  const rows = [['NAMESPACE', 'NAME', 'PORT', 'TYPE', 'PROTO', 'FRONTENDS', 'BACKENDS', 'AFFINITY']];
  for (const s of v.services) {
    const [ns, name] = s.service?.split('/') ?? ['?', '?'];
    // eBPF lists one address per scope: show each address once
    const frontends = [...new Set(s.frontends.map(frontendText))];
    const backends = s.backends.map((b) => `${hostPort(b.address, b.port)}${backendState(b) ? ` (${backendState(b)})` : ''}`);
    const more = backends.length > TABLE_BACKENDS ? [`+${backends.length - TABLE_BACKENDS} more`] : [];
    const rejected = s.frontends.some((f) => f.flags.includes('reject'));
    rows.push([ns!, name!, s.portName || '-', s.type, s.protocol, frontends.join(','),
      backends.length ? [...backends.slice(0, TABLE_BACKENDS), ...more].join(',') : rejected ? '<none: rejected>' : '<none>', affinityText(s.affinitySeconds)]);
  }
  return [columns(rows), ...footer(v)].join('\n');
}

function wide(v: InspectView): string {
  const lines = [`kube-xdp ${v.mode} mode, read from ${v.source}`];
  for (const s of v.services) {
    lines.push(`${s.service === null ? '?' : `${s.service}${s.portName ? `:${s.portName}` : ''}`}  ${s.type} ${s.protocol}  affinity ${affinityText(s.affinitySeconds)}`);
    const rows: string[][] = [];
    for (const f of s.frontends) {
      rows.push(['  frontend', f.kind, frontendText(f), `scope ${f.scope || '-'}`, f.flags.join(',') || '-', `${f.backends} backends`, counterText(f.counters)]);
    }
    for (const b of s.backends) rows.push(['  backend', '', hostPort(b.address, b.port), backendState(b) || '-', '', '', counterText(b.counters)]);
    if (rows.length) lines.push(columns(rows));
  }
  return [...lines, ...footer(v)].join('\n');
}

/** `extra`: mode-specific fields JSON and YAML carry beside the view (eBPF: the raw map dump). */
export function formatView(v: InspectView, output: Output, extra: Readonly<Record<string, unknown>> = {}): string {
  switch (output) {
    case 'json': return `${JSON.stringify({ ...v, ...extra }, null, 2)}\n`;
    case 'yaml': return stringify({ ...v, ...extra });
    case 'wide': return `${wide(v)}\n`;
    case 'table': return `${table(v)}\n`;
  }
}
