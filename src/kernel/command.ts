// Running the kernel's userspace tools (iptables, ipset, ipvsadm, ip): one way to call them and
// one error type that names the command, its exit code and what it said.
import { spawn, spawnSync } from 'node:child_process';

export class CommandError extends Error {
  constructor(readonly command: string, readonly code: number | null, readonly stderr: string) {
    super(`${command} failed (exit ${code}): ${stderr.trim()}`);
    this.name = 'CommandError';
  }
}

export interface CommandResult { code: number | null; stdout: string; stderr: string }

/** Runs `bin args` with `input` on stdin; throws only when it cannot start. */
export function runCommand(bin: string, args: readonly string[], input?: string): CommandResult {
  const r = spawnSync(bin, args, { input, encoding: 'utf8', maxBuffer: 1 << 30 });
  if (r.error) throw new CommandError(`${bin} ${args.join(' ')}`, null, r.error.message);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** runCommand without blocking the event loop (health and metrics keep answering): for the
 *  commands that can take seconds, a restore of every rule. `input` is streamed to stdin. */
export function runCommandAsync(bin: string, args: readonly string[], input?: string): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [], err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.once('error', (e) => reject(new CommandError(`${bin} ${args.join(' ')}`, null, e.message)));
    // EPIPE: the command stopped reading (it failed part-way); its exit status says why
    child.stdin.on('error', () => {});
    child.once('close', (code) => resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
    child.stdin.end(input ?? '');
  });
}

/** Like runCommand, and a non-zero exit throws; returns stdout. */
export function checkCommand(bin: string, args: readonly string[], input?: string): string {
  const r = runCommand(bin, args, input);
  if (r.code !== 0) throw new CommandError(`${bin} ${args.join(' ')}`, r.code, r.stderr || r.stdout);
  return r.stdout;
}
