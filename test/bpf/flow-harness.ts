// kube-proxy's packet-flow scenarios (test/unit/helpers/packet-flow-tables.ts) against the real
// programs: the objects go the control plane's way (tracker → state → compile → plan →
// applyPlan) into a freshly loaded build/kube_xdp.bpf.o, then each flow's first packets go
// through kx_tc_pod (pod clients) or kx_xdp_ext (external clients) with BPF_PROG_TEST_RUN, and
// the node's own clients connect() through the socket hooks with real sockets (host-sockets.ts);
// each is reduced to what kube-proxy's tracer reports: endpoints reached and masquerade, or a
// verdict.
import { BlockList, isIP } from 'node:net';
import { isLoopback } from '../../src/model/cidr.js';
import type { IptablesConfig } from '../../src/dataplane/iptables/config.js';
import { compile, type EbpfNodeConfig } from '../../src/dataplane/ebpf/compile.js';
import { emptyApplied, plan } from '../../src/dataplane/ebpf/plan.js';
import { applyPlan } from '../../src/dataplane/ebpf/apply.js';
import { MAPS } from '../../src/dataplane/ebpf/maps.js';
import { Prefilter } from '../../src/dataplane/ebpf/prefilter.js';
import type { PacketFlowTest } from '../unit/helpers/iptables-tracer.js';
import { objects } from '../unit/helpers/kube-objects.js';
import { FAKE_IPTABLES_CONFIG, TEST_HOSTNAME, TEST_POD_CIDR } from '../unit/helpers/kube-proxy-fake.js';
import { flowId, type FlowScenario } from '../unit/helpers/packet-flow-tables.js';
import { Dataplane, KX_OBJ, TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT, XDP_DROP, XDP_PASS, XDP_TX, type Program } from './fixture.js';
import { buildFrame, buildFrame6, parseFrame, rejectProblem, SCTP, TCP, UDP } from './packet.js';
import { HostSockets } from './host-sockets.js';

/** First packets sent per flow, from distinct source ports: with 3 endpoints the chance of
 * missing one is 3·(2/3)^48 ≈ 1e-8. */
export const SENDS = 48;
/** Dump buffers for clearing per-flow state: a flow leaves at most 2·SENDS conntrack entries. */
const CLEAR_MAX = 1024;

/** kube-proxy's settings of one family mapped onto the eBPF node config (which serves both). */
export function ebpfNodeConfigOf(cfg: IptablesConfig): EbpfNodeConfig {
  const own = cfg.localAddresses.filter((a) => !isLoopback(a));
  const first = cfg.nodeIP !== null && !isLoopback(cfg.nodeIP) ? [cfg.nodeIP] : [];
  return {
    nodeAddresses: [...new Set([...first, ...own])],
    nodePortAddresses: cfg.nodePortAddresses,
    clusterCIDRs: cfg.clusterCIDRs,
    masqueradeAll: cfg.masqueradeAll,
    localhostNodePorts: cfg.localhostNodePorts,
  };
}

export type Client = 'pod' | 'host' | 'external';

function inCidrs(ip: string, cidrs: readonly string[]): boolean {
  const family = isIP(ip) === 6 ? 'ipv6' : 'ipv4';
  const list = new BlockList();
  for (const c of cidrs) {
    const [addr, len] = c.split('/') as [string, string | undefined];
    if ((isIP(addr) === 6 ? 'ipv6' : 'ipv4') !== family) continue;
    if (len === undefined) list.addAddress(addr, family);
    else list.addSubnet(addr, Number(len), family);
  }
  return list.check(ip, family);
}

/** Which program a flow's client reaches: pods through their veth's tc, the node's own sockets
 * the socket hooks, everyone else through the uplink's XDP. */
export function clientOf(s: FlowScenario, cfg: IptablesConfig, f: PacketFlowTest): Client {
  const host = [...s.nodeIPs, ...cfg.localAddresses, ...(cfg.nodeIP ? [cfg.nodeIP] : []), '127.0.0.0/8', '::1'];
  if (inCidrs(f.sourceIP, host)) return 'host';
  if (inCidrs(f.sourceIP, [...cfg.clusterCIDRs, TEST_POD_CIDR])) return 'pod';
  return 'external';
}

/** kube-proxy's expectation in the form outcomes are observed: 'pass' | 'drop' | 'reject', or the
 * sorted endpoints, each with " masq" when the source is to be masqueraded. */
export function expectedOf(f: PacketFlowTest, client: Client): string {
  if (f.output === '' || f.output === 'ACCEPT') return 'pass';
  if (f.output === 'DROP' || f.output === 'REJECT') return f.output.toLowerCase();
  // The node's own connection leaves from a node address whether kube-proxy masquerades it (to
  // the node address) or not (it has one already): no difference a backend can see.
  const masq = f.masq && client !== 'host';
  return f.output.split(', ').map((ep) => (masq ? `${ep} masq` : ep)).sort().join(', ');
}

const VERDICTS: Record<Program, { pass: number; drop: number; reject: number }> = {
  xdp: { pass: XDP_PASS, drop: XDP_DROP, reject: XDP_TX },
  tc: { pass: TC_ACT_OK, drop: TC_ACT_SHOT, reject: TC_ACT_REDIRECT },
};

/** One packet's fate: pass | drop | reject | "ip:port[ masq]", anything else spelled out. */
function outcomeOf(program: Program, input: Buffer, r: { verdict: number; out: Buffer }, nodeAddresses: readonly string[]): string {
  const v = VERDICTS[program];
  if (r.verdict === v.drop) return 'drop';
  if (r.verdict === v.reject) {
    const problem = rejectProblem(input, r.out);
    return problem ? `reject (bad: ${problem})` : 'reject';
  }
  if (r.verdict !== v.pass) return `verdict ${r.verdict}`;
  if (r.out.equals(input)) return 'pass';
  const sent = parseFrame(input);
  const got = parseFrame(r.out);
  let s = got.family === 6 ? `[${got.dst}]:${got.dport}` : `${got.dst}:${got.dport}`;
  if (!got.ipChecksumOk || (got.proto !== SCTP && !got.l4ChecksumOk)) s += ' bad-checksum';
  if (got.src !== sent.src) s += nodeAddresses.includes(got.src) ? ' masq' : ` src→${got.src}`;
  return s;
}

const PROTOCOLS: Record<string, number> = { TCP, UDP, SCTP };


export interface FlowResult {
  id: string;
  client: Client;
  family: 4 | 6;
  expected: string;
  /** Distinct per-packet (host: per-connect) outcomes, sorted, ", "-joined. */
  observed: string;
  agrees: boolean;
}

/** SENDS first packets of a flow, from distinct source ports, on empty conntrack: the distinct
 * outcomes, sorted and ", "-joined. kube-proxy's tracer sees every packet as a client's first
 * (its `recent --rcheck` never matches), so ClientIP affinity is forgotten after each packet. */
function sendFirstPackets(dp: Dataplane, program: Program, f: PacketFlowTest, nodeAddresses: readonly string[]): string {
  const seen = new Set<string>();
  dp.clearCt(CLEAR_MAX);
  for (let i = 0; i < SENDS; i++) {
    const spec = { src: f.sourceIP, dst: f.destIP, sport: 40000 + i, dport: f.destPort, proto: PROTOCOLS[(f.protocol ?? 'TCP').toUpperCase()]! };
    const frame = isIP(f.sourceIP) === 6 ? buildFrame6(spec) : buildFrame(spec);
    seen.add(outcomeOf(program, frame, dp.run(program, frame), nodeAddresses));
    dp.clearMap(MAPS.affinity.name, CLEAR_MAX);
    dp.clearMap(MAPS.affinity6.name, CLEAR_MAX);
  }
  return [...seen].sort().join(', ');
}

/** Runs one scenario on a freshly loaded object (pins removed afterwards, also on failure). */
export function runScenario(s: FlowScenario, opts: { masqueradeLocalEndpoints: boolean }): { results: FlowResult[]; problems: string[] } {
  const cfg: IptablesConfig = { ...FAKE_IPTABLES_CONFIG, ...s.config };
  const node: EbpfNodeConfig = { ...ebpfNodeConfigOf(cfg), masqueradeLocalEndpoints: opts.masqueradeLocalEndpoints };
  const dp = new Dataplane(KX_OBJ, 'kx-flows');
  let host: HostSockets | null = null;
  try {
    const io = dp.io();
    const prefilter = new Prefilter(); // as the controller keeps it
    const o = objects();
    let applied = emptyApplied();
    const results: FlowResult[] = [];
    const problems: string[] = [];
    for (const step of s.steps) {
      o.apply(...(step.apply ?? []));
      o.remove(...(step.remove ?? []));
      const compiled = compile(o.state({ nodeName: TEST_HOSTNAME, ...s.node }), node);
      problems.push(...compiled.problems.map((p) => `${p.service}: ${p.reason}`));
      prefilter.addDesired(compiled.desired.frontends.values());
      prefilter.writeTo(io);
      const p = plan(applied, compiled.desired);
      applyPlan(io, p);
      applied = p.next;
      const hostFlows: Array<{ base: Omit<FlowResult, 'observed' | 'agrees'>; f: PacketFlowTest }> = [];
      for (const f of step.flows) {
        const client = clientOf(s, cfg, f);
        const family = isIP(f.sourceIP) === 6 ? 6 : 4;
        const base = { id: flowId(s, f), client, family, expected: expectedOf(f, client) } as const;
        if (client === 'host') {
          hostFlows.push({ base, f });
          continue;
        }
        const observed = sendFirstPackets(dp, client === 'pod' ? 'tc' : 'xdp', f, node.nodeAddresses);
        results.push({ ...base, observed, agrees: observed === base.expected });
      }
      if (hostFlows.length) {
        host ??= new HostSockets(dp);
        dp.clearCt(CLEAR_MAX);
        const outcomes = host.run(hostFlows.map(({ f }) => ({ proto: (f.protocol ?? 'TCP').toLowerCase() as 'tcp' | 'udp', dst: f.destIP, port: f.destPort, sends: SENDS })));
        hostFlows.forEach(({ base }, i) => {
          const observed = outcomes[i]!.join(', ');
          results.push({ ...base, observed, agrees: observed === base.expected });
        });
      }
    }
    return { results, problems };
  } finally {
    host?.close();
    dp.close();
  }
}
