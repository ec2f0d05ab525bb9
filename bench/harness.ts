// What the benchmarks share: cleanups run however they end, and the controller run in a scratch
// network namespace with its pino lines parsed.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

const cleanups: Array<{ what: string; fn: () => void }> = [];
/** Registers fn (run by cleanupAll, newest first); the returned function runs it now instead. */
export function onCleanup(what: string, fn: () => void): () => void {
  const entry = { what, fn };
  cleanups.push(entry);
  return () => {
    const i = cleanups.indexOf(entry);
    if (i >= 0) cleanups.splice(i, 1);
    fn();
  };
}
export function cleanupAll(): void {
  while (cleanups.length) {
    const { what, fn } = cleanups.pop()!;
    try {
      fn();
    } catch (e) {
      process.stderr.write(`bench cleanup (${what}) failed: ${(e as Error).message}\n`);
    }
  }
}

export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
export const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

export interface Controller { proc: ChildProcess; lines: Record<string, unknown>[]; stderrTail: () => string }

/** `argv` (e.g. taskset … node main.js run …) in network namespace `netns`, logging JSON lines
 * (parsed into `lines`). */
export function spawnController(netns: string, argv: string[]): Controller {
  const proc = spawn('nsenter', [`--net=/run/netns/${netns}`, '--', ...argv, '--logging-format', 'json'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const lines: Record<string, unknown>[] = [];
  let partial = '', tail = '';
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (chunk: string) => {
    tail = (tail + chunk).slice(-4000);
    const parts = (partial + chunk).split('\n');
    partial = parts.pop()!;
    for (const l of parts) {
      try {
        lines.push(JSON.parse(l) as Record<string, unknown>);
      } catch { /* not a log line */ }
    }
  });
  return { proc, lines, stderrTail: () => tail };
}

/** The first `synced` line; an error line or the controller's exit fails. */
export async function waitForSync(c: Controller, what: string, timeoutMs: number): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const hit = c.lines.find((l) => l.msg === 'synced');
    if (hit) return hit;
    const failed = c.lines.find((l) => (l.level as number) >= 50);
    if (failed) throw new Error(`${what}: controller error: ${JSON.stringify(failed).slice(0, 2000)}`);
    if (c.proc.exitCode !== null || c.proc.signalCode !== null) throw new Error(`${what}: controller exited (${c.proc.exitCode ?? c.proc.signalCode}):\n${c.stderrTail()}`);
    if (Date.now() > deadline) throw new Error(`${what}: no sync in ${timeoutMs / 1000} s:\n${c.stderrTail()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export function stopController(c: Controller): void {
  const pid = c.proc.pid;
  if (pid === undefined || c.proc.exitCode !== null || c.proc.signalCode !== null || !alive(pid)) return;
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 150 && alive(pid); i++) sleepSync(100);
  if (alive(pid)) process.kill(pid, 'SIGKILL');
}

export function rssKb(pid: number | undefined): number | null {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}
