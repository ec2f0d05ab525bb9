// One logger for the process, on stderr (stdout stays free for command output): klog's text
// format by default, as kube-proxy prints; JSON lines with --logging-format=json (kube-proxy's
// flag and logging.format).
import { pino, type DestinationStream, type Logger } from 'pino';
import { klogLine } from './klog.js';

export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = typeof LOG_FORMATS[number];
/** pino's level names, the values --log-level takes. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export function createLogger(level = process.env.KUBE_XDP_LOG_LEVEL ?? 'info', format: LogFormat = 'text'): Logger {
  const out = pino.destination(2);
  const dest: DestinationStream = format === 'json' ? out : { write: (line: string) => out.write(klogLine(JSON.parse(line) as Record<string, unknown>)) };
  return pino({ level, base: { component: 'kube-xdp' } }, dest);
}
