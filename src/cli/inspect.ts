// `kube-xdp inspect`: what the dataplane of this node (this network namespace) serves, per
// Service port, read back from the kernel: the eBPF pins, or kube-proxy-style iptables rules,
// nftables tables or IPVS virtual servers. Table, wide, JSON or YAML.
import { ConfigError, readFlags } from '../config/flags.js';
import { DEFAULT_PIN_DIR } from '../config/run-config.js';
import { OUTPUTS, formatView, type Output } from '../inspect/format.js';
import { NothingToInspectError, detectInspectMode, readMode } from '../inspect/read.js';
import type { InspectMode } from '../inspect/view.js';

const MODES = ['auto', 'ebpf', 'iptables', 'ipvs', 'nftables'] as const;

export function inspect(argv: string[]): void {
  const { values } = readFlags(argv, {
    'bpf-pin-dir': { type: 'string', default: DEFAULT_PIN_DIR },
    mode: { type: 'string', default: 'auto' },
    output: { type: 'string', short: 'o', default: 'table' },
  });
  const output = values.output as Output;
  if (!OUTPUTS.includes(output)) throw new ConfigError('output', `must be one of ${OUTPUTS.join(', ')}, not ${JSON.stringify(output)}`);
  const asked = values.mode as (typeof MODES)[number];
  if (!MODES.includes(asked)) throw new ConfigError('mode', `must be one of ${MODES.join(', ')}, not ${JSON.stringify(asked)}`);
  const pinDir = values['bpf-pin-dir'] as string;
  // A reader closing the pipe early (`inspect | head`) is not an error: stop quietly.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  try {
    const mode: InspectMode = asked === 'auto' ? detectInspectMode(pinDir).mode : asked;
    const { view, extra } = readMode(mode, pinDir);
    process.stdout.write(formatView(view, output, extra));
  } catch (err) {
    if (!(err instanceof NothingToInspectError)) throw err;
    process.stderr.write(`kube-xdp inspect: ${err.message}\n`);
    process.exitCode = 3;
  }
}
