// `kube-xdp probe`: the BPF features of this kernel (each tried for real) and the mode
// `--mode auto` would run here, with the reason each earlier mode was passed over. The checks
// are run's own (mode.ts), in its order, stopping at the first usable mode as run does.
import { ConfigError, readFlags } from '../config/flags.js';
import { RUN_FLAGS } from '../config/run-config.js';
import { Libkx } from '../kernel/libkx.js';
import { formatReport, probeKernel } from '../kernel/probe.js';
import { AUTO_ORDER, checkEbpf, checkRuleMode, type ConcreteMode, type ModeCheck } from './mode.js';

export interface AutoChoice {
  /** null: no mode can run here. */
  readonly mode: ConcreteMode | null;
  readonly checks: readonly ModeCheck[];
}

/** Pure: the auto choice as text, one line per mode checked. */
export function formatAutoChoice(a: AutoChoice): string {
  const lines = [`--mode auto would run: ${a.mode ?? 'nothing (no mode can run here)'}`];
  for (const c of a.checks) lines.push(`  ${c.mode.padEnd(9)} ${c.unusable === null ? 'usable' : `passed over: ${c.unusable}`}`);
  return lines.join('\n');
}

export function probe(argv: string[]): void {
  const { values } = readFlags(argv, {
    output: { type: 'string', short: 'o', default: 'text' },
    // as `run` reads them (KUBE_XDP_* in the DaemonSet), so `kubectl exec … probe` sees the node's
    'external-interfaces': RUN_FLAGS['external-interfaces']!,
    'bpf-object': RUN_FLAGS['bpf-object']!,
    'ipvs-scheduler': { type: 'string', default: 'rr' },
  });
  if (values.output !== 'text' && values.output !== 'json') throw new ConfigError('output', `must be text or json, not ${JSON.stringify(values.output)}`);
  const checks: ModeCheck[] = [];
  for (const mode of AUTO_ORDER) {
    const c: ModeCheck = mode === 'ebpf'
      ? checkEbpf({ externalInterfaces: values['external-interfaces'] as string[], objectPath: values['bpf-object'] as string })
      : checkRuleMode(mode, values['ipvs-scheduler'] as string);
    checks.push(c);
    if (c.unusable === null) break;
  }
  // checkEbpf probed the kernel unless it stopped earlier (no interfaces, no object)
  const r = checks[0]?.probe ?? probeKernel(new Libkx());
  const auto: AutoChoice = { mode: checks.find((c) => c.unusable === null)?.mode ?? null, checks: checks.map(({ mode, unusable }) => ({ mode, unusable })) };
  process.stdout.write(values.output === 'json' ? `${JSON.stringify({ ...r, auto }, null, 2)}\n` : `${formatReport(r)}\n${formatAutoChoice(auto)}\n`);
  if (r.ebpfUnusable !== null) process.exitCode = 3;
}
