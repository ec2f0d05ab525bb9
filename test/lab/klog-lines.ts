// Reads klog text lines (what kube-xdp prints by default, as kube-proxy does) back into records
// shaped like pino's: msg, level (W → 40, E → 50, F → 60, I → 30) and the key=value fields.
// A line that is not klog's gives null: a test never mistakes stray output for a log line.

const HEADER = /^([IWEF])(\d{4}) (\d{2}:\d{2}:\d{2}\.\d{6}) +(\d+) ([^\]]+)\] /;
const LEVEL: Record<string, number> = { I: 30, W: 40, E: 50, F: 60 };

export interface KlogRecord { msg: string; level: number; source: string; [field: string]: unknown }

/** The JSON value (string, object, array) or bare token at s[i], and where it ends. */
function valueAt(s: string, i: number): [unknown, number] {
  const open = s[i];
  if (open === '"' || open === '{' || open === '[') {
    // the shortest prefix that parses as JSON and is followed by a space or the end
    for (let j = i + 1; j <= s.length; j++) {
      if (j < s.length && s[j] !== ' ') continue;
      try {
        return [JSON.parse(s.slice(i, j)), j];
      } catch { /* not yet the end of the value */ }
    }
    throw new Error(`unterminated value at ${i}: ${s.slice(i)}`);
  }
  const end = s.indexOf(' ', i) < 0 ? s.length : s.indexOf(' ', i);
  const tok = s.slice(i, end);
  return [tok === 'true' ? true : tok === 'false' ? false : tok === 'null' ? null : Number.isFinite(Number(tok)) ? Number(tok) : tok, end];
}

export function parseKlogLine(line: string): KlogRecord | null {
  const h = HEADER.exec(line);
  if (!h) return null;
  let i = h[0].length;
  const [msg, after] = valueAt(line, i);
  const rec: KlogRecord = { msg: String(msg), level: LEVEL[h[1]!]!, source: h[5]! };
  i = after;
  while (i < line.length) {
    const eq = line.indexOf('=', i + 1);
    if (line[i] !== ' ' || eq < 0) throw new Error(`malformed field at ${i}: ${line.slice(i)}`);
    const [v, end] = valueAt(line, eq + 1);
    rec[line.slice(i + 1, eq)] = v;
    i = end;
  }
  return rec;
}
