// Runs the kube-xdp controller inside a lab node, the way the DaemonSet runs it on a host:
// in the node's network namespace (nsenter --net keeps /sys/fs/bpf visible), with a pin dir
// of its own. Its JSON log lines are parsed so tests can wait for syncs.
import { fileURLToPath } from 'node:url';
import type { Lab, LabProcess, NodeName } from './lab.js';

export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface LogLine { msg: string; level: number; time: number; [k: string]: unknown }

export class Controller {
  private constructor(readonly lab: Lab, readonly node: NodeName, readonly proc: LabProcess) {}

  /** `cli`: another build's main.js (an earlier release, for upgrade tests). */
  static async start(lab: Lab, node: NodeName, sourcePath: string, extra: string[] = [], cli = CLI): Promise<Controller> {
    return Controller.startWith(lab, node, ['--source', `file:${sourcePath}`], extra, cli);
  }

  /** Like start, with the caller's source flags (e.g. `--source kubernetes --api-server URL`)
   *  in place of `--source file:PATH`; the argv is otherwise the same. */
  static async startWith(lab: Lab, node: NodeName, sourceArgs: string[], extra: string[] = [], cli = CLI): Promise<Controller> {
    const n = lab.nodes[node];
    const proc = lab.spawn(n.ns, [
      process.execPath, cli, 'run', ...sourceArgs, '--node-name', node,
      '--external-interfaces', n.extIf, '--pod-interfaces', 'kxv*', '--bpf-pin-dir', lab.pinDir(node),
      '--metrics-bind-address', '',
      // socket hooks on the node's scratch cgroup, never the machine's (an earlier release
      // has no such flag, nor hooks)
      // JSON log lines, parsed below (an earlier release has no --logging-format: it prints JSON)
      ...(cli === CLI ? ['--cgroup-root', lab.cgroup(node), '--logging-format', 'json'] : []),
      ...extra,
    ], { useNsenter: true });
    const c = new Controller(lab, node, proc);
    await c.waitFor((l) => l.msg === 'synced', 20_000);
    return c;
  }

  logs(): LogLine[] {
    return this.proc.output().stderr.split('\n').filter((l) => l.startsWith('{')).flatMap((l) => {
      try {
        return [JSON.parse(l) as LogLine];
      } catch {
        return [];
      }
    });
  }

  syncs(): LogLine[] {
    return this.logs().filter((l) => l.msg === 'synced');
  }

  /** Resolves with the first log line after `after` lines that matches. */
  async waitFor(pred: (l: LogLine) => boolean, timeoutMs = 10_000, after = 0): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.logs().slice(after).find(pred);
      if (hit) return hit;
      if (this.proc.exitCode !== null || this.proc.signalCode !== null) {
        throw new Error(`controller on ${this.node} exited (${this.proc.exitCode ?? this.proc.signalCode}):\n${this.proc.output().stderr.slice(-3000)}`);
      }
      if (Date.now() > deadline) throw new Error(`controller on ${this.node}: no matching log line in ${timeoutMs} ms:\n${this.proc.output().stderr.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** The next sync that wrote something, after the current log. */
  nextWritingSync(timeoutMs = 10_000): Promise<LogLine> {
    return this.waitFor((l) => l.msg === 'synced' && (l.writes as number) > 0, timeoutMs, this.logs().length);
  }

  async inspect(): Promise<{ frontends: Array<{ protocol: string; address: string; port: number; scope: string; backends: Array<{ address: string }> }>; stats: Record<string, number> }> {
    const r = await this.lab.execNet(this.lab.nodes[this.node].ns, [process.execPath, CLI, 'inspect', '--bpf-pin-dir', this.lab.pinDir(this.node), '-o', 'json'], { check: true });
    return JSON.parse(r.stdout);
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    return new Promise((resolve) => {
      if (this.proc.exitCode !== null || this.proc.signalCode !== null) return resolve();
      this.proc.once('exit', () => resolve());
      this.proc.kill(signal);
    });
  }
}
