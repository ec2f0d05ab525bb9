// `kube-xdp cleanup`: detach every program and remove the pinned maps and links.
import { readFlags } from '../config/flags.js';
import { DEFAULT_PIN_DIR, RUN_FLAGS } from '../config/run-config.js';
import { cleanupPins } from '../dataplane/ebpf/loader.js';
import { Libkx } from '../kernel/libkx.js';
import { createLogger } from '../observe/log.js';

export function cleanup(argv: string[]): void {
  const { values } = readFlags(argv, {
    'bpf-pin-dir': { type: 'string', default: DEFAULT_PIN_DIR },
    'pod-interfaces': RUN_FLAGS['pod-interfaces']!,
  });
  cleanupPins(new Libkx(), values['bpf-pin-dir'] as string, values['pod-interfaces'] as string[], createLogger());
}
