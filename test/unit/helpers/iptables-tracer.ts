// kube-proxy's runPacketFlowTests over iptables-restore text. The tracer itself is production
// code now (src/trace/iptables.ts, also behind `kube-xdp trace --mode iptables`); this helper
// keeps the test-only parts and re-exports the rest for the tests that import it from here.
import assert from 'node:assert/strict';
import { tracePacket } from '../../../src/trace/iptables.js';
import type { Packet } from '../../../src/trace/types.js';

export { parseRestoreText, tracePacket } from '../../../src/trace/iptables.js';
export type { Packet, TraceResult } from '../../../src/trace/types.js';

export interface PacketFlowTest extends Packet {
  name: string;
  output: string;
  masq?: boolean;
}

/** kube-proxy's runPacketFlowTests: every case is checked, then all failures are reported at once. */
export function runPacketFlowTests(rulesText: string, nodeIPs: readonly string[], cases: readonly PacketFlowTest[]): void {
  const failures: string[] = [];
  for (const tc of cases) {
    const r = tracePacket(rulesText, tc, nodeIPs);
    const errors: string[] = [];
    if (r.output !== tc.output) errors.push(`wrong output: expected ${JSON.stringify(tc.output)} got ${JSON.stringify(r.output)}`);
    if (r.masq !== (tc.masq ?? false)) errors.push(`wrong masq: expected ${tc.masq ?? false} got ${r.masq}`);
    if (errors.length > 0) {
      failures.push(`${JSON.stringify(tc.name)}: ${(tc.protocol ?? 'tcp').toLowerCase()} ${tc.sourceIP} -> ${tc.destIP}:${tc.destPort}\n  ${errors.join('\n  ')}\n  by matching:\n    ${r.matches.join('\n    ')}`);
    }
  }
  assert.equal(failures.length, 0, `${failures.length} packet flow case(s) failed:\n${failures.join('\n')}\n\nrules:\n${rulesText}`);
}
