// `kube-xdp trace`: where does this packet go? Answered by the loaded programs themselves, run on
// a scratch copy of the live maps (src/dataplane/ebpf/trace-run.ts), as text or JSON.
import { ConfigError, readFlags } from '../config/flags.js';
import { DEFAULT_OBJECT, DEFAULT_PIN_DIR } from '../config/run-config.js';
import { formatTrace, parseTracePacket } from '../dataplane/ebpf/trace.js';
import { traceLive } from '../dataplane/ebpf/trace-run.js';
import { Libkx } from '../kernel/libkx.js';

export function trace(argv: string[]): void {
  const { values } = readFlags(argv, {
    src: { type: 'string' },
    dst: { type: 'string' },
    from: { type: 'string', default: 'pod' },
    'bpf-pin-dir': { type: 'string', default: DEFAULT_PIN_DIR },
    'bpf-object': { type: 'string', default: DEFAULT_OBJECT },
    output: { type: 'string', short: 'o', default: 'text' },
  });
  if (values.output !== 'text' && values.output !== 'json') throw new ConfigError('output', `must be text or json, not ${JSON.stringify(values.output)}`);
  const packet = parseTracePacket({ src: values.src as string | undefined, dst: values.dst as string | undefined, from: values.from as string });
  const r = traceLive(new Libkx(), { pinDir: values['bpf-pin-dir'] as string, objectPath: values['bpf-object'] as string, packet });
  process.stdout.write(values.output === 'json' ? `${JSON.stringify(r, null, 2)}\n` : formatTrace(r));
}
