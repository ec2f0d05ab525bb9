// One logger for the process: JSON lines on stderr (stdout stays free for command output).
import { pino, type Logger } from 'pino';

export function createLogger(level = process.env.KUBE_XDP_LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { component: 'kube-xdp' } }, pino.destination(2));
}
