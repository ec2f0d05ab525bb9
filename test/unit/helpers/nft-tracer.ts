// kube-proxy's runPacketFlowTests over an nftables ruleset. The tracer itself is production code
// now (src/trace/nftables.ts, also behind `kube-xdp trace --mode nftables`); this helper keeps
// the test-only parts and re-exports the rest for the tests that import it from here.
import assert from 'node:assert/strict';
import { traceNftPacket, type NftRuleView, type NftTracePath } from '../../../src/trace/nftables.js';
import type { PacketFlowTest } from './iptables-tracer.js';

export { checkNftRuleset, parseNftDump, traceNftPacket } from '../../../src/trace/nftables.js';
export type { NftRuleView, NftTracePath } from '../../../src/trace/nftables.js';
export type { Packet, TraceResult } from '../../../src/trace/types.js';
export type { PacketFlowTest } from './iptables-tracer.js';

/** kube-proxy's runPacketFlowTests over an nftables ruleset: every case is checked, then all
 *  failures are reported at once (with `dump`, if given, for context). */
export function runNftPacketFlowTests(
  view: NftRuleView, nodeIPs: readonly string[], cases: readonly PacketFlowTest[], dump?: () => string, path: NftTracePath = 'kube-proxy',
): void {
  const failures: string[] = [];
  for (const tc of cases) {
    const r = traceNftPacket(view, tc, nodeIPs, path);
    const errors: string[] = [];
    if (r.output !== tc.output) errors.push(`wrong output: expected ${JSON.stringify(tc.output)} got ${JSON.stringify(r.output)}`);
    if (r.masq !== (tc.masq ?? false)) errors.push(`wrong masq: expected ${tc.masq ?? false} got ${r.masq}`);
    if (errors.length > 0) {
      failures.push(`${JSON.stringify(tc.name)}: ${(tc.protocol ?? 'tcp').toLowerCase()} ${tc.sourceIP} -> ${tc.destIP}:${tc.destPort}\n  ${errors.join('\n  ')}\n  by matching:\n    ${r.matches.join('\n    ')}`);
    }
  }
  assert.equal(failures.length, 0, `${failures.length} packet flow case(s) failed (${path} path):\n${failures.join('\n')}${dump ? `\n\nruleset:\n${dump()}` : ''}`);
}
