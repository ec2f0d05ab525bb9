// klog's text format, as kube-proxy prints its logs (structured logging, KEP-1602):
//   I1204 06:01:02.345678   12345 kube-xdp] "synced" services=3 took="2ms"
// The header is klog's: severity letter, month and day, local time to the microsecond, the
// process id right-aligned in 7 columns, then the source; kube-xdp names itself where klog
// names a file:line. Values: strings quoted, numbers and booleans bare, the rest as JSON.

/** pino's numeric levels → klog's severities (klog has no debug or trace: both are info at a
 * higher -v, and klog does not print the verbosity). */
const SEVERITY = (level: number): string => (level >= 60 ? 'F' : level >= 50 ? 'E' : level >= 40 ? 'W' : 'I');

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** Fields pino adds that the klog header already carries. */
const HEADER_FIELDS = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'component']);

function value(key: string, v: unknown): string {
  // pino's serialized error: klog prints err="<message>"
  if (key === 'err' && v !== null && typeof v === 'object' && typeof (v as { message?: unknown }).message === 'string') {
    return JSON.stringify((v as { message: string }).message);
  }
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  return JSON.stringify(v);
}

/** One pino record (its JSON line, parsed) as one klog text line, newline included. */
export function klogLine(rec: Record<string, unknown>, pid = process.pid): string {
  const t = new Date(typeof rec.time === 'number' ? rec.time : Date.now());
  const micros = pad(t.getMilliseconds(), 3) + '000';
  const head = `${SEVERITY(Number(rec.level))}${pad(t.getMonth() + 1)}${pad(t.getDate())} ${pad(t.getHours())}:${pad(t.getMinutes())}:${pad(t.getSeconds())}.${micros} ${String(pid).padStart(7)} ${typeof rec.component === 'string' ? rec.component : 'kube-xdp'}]`;
  const fields = Object.entries(rec).filter(([k, v]) => !HEADER_FIELDS.has(k) && v !== undefined).map(([k, v]) => `${k}=${value(k, v)}`);
  return `${[head, JSON.stringify(String(rec.msg ?? '')), ...fields].join(' ')}\n`;
}
