// `kube-xdp inspect`: what the pinned maps hold, as a table like `ipvsadm -Ln` or as JSON.
import { readFlags } from '../config/flags.js';
import { DEFAULT_PIN_DIR } from '../config/run-config.js';
import { readMaps } from '../dataplane/ebpf/apply.js';
import { CONTROLLED_MAPS } from '../dataplane/ebpf/dataplane.js';
import { describeMaps, formatDescription } from '../dataplane/ebpf/describe.js';
import { KernelMaps } from '../dataplane/ebpf/kernel-maps.js';
import { STAT_NAMES, STATS_MAP } from '../dataplane/ebpf/maps.js';
import { Libkx } from '../kernel/libkx.js';

export function inspect(argv: string[]): void {
  const { values } = readFlags(argv, {
    'bpf-pin-dir': { type: 'string', default: DEFAULT_PIN_DIR },
    output: { type: 'string', short: 'o', default: 'table' },
  });
  const lib = new Libkx();
  const maps = KernelMaps.openPinned(lib, values['bpf-pin-dir'] as string, [...CONTROLLED_MAPS, STATS_MAP]);
  try {
    const d = describeMaps(readMaps(maps));
    const counters = maps.sumPerCpu(STATS_MAP, STAT_NAMES.length);
    const stats = Object.fromEntries(STAT_NAMES.map((n, i) => [n, Number(counters[i])]));
    if (values.output === 'json') {
      process.stdout.write(`${JSON.stringify({ ...d, stats }, null, 2)}\n`);
    } else {
      process.stdout.write(formatDescription(d));
      process.stdout.write(`packets: ${STAT_NAMES.map((n) => `${n}=${stats[n]}`).join(' ')}\n`);
    }
  } finally {
    maps.close();
  }
}
