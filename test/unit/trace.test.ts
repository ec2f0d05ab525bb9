// kube-xdp trace's pure part: the packet flags, the frame it builds (parsed back with checksums
// recomputed), what a run's return value and output frame mean, the host scope's answer from
// the maps, and the text report.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../src/config/flags.js';
import type { Description, DescribedFrontend } from '../../src/dataplane/ebpf/describe.js';
import { frameOf, parseFrame, SCTP, TCP, UDP } from '../../src/dataplane/ebpf/frames.js';
import {
  formatTrace, hostTrace, parseTracePacket, runOutcome, runTrace, traceFrame, type TracePacket,
} from '../../src/dataplane/ebpf/trace.js';

test('parseTracePacket: addresses canonical, ports, protocol, default source port, IPv6 in brackets', () => {
  assert.deepEqual(parseTracePacket({ src: '10.244.1.2', dst: '10.96.0.10:80/tcp' }),
    { from: 'pod', proto: 'TCP', src: '10.244.1.2', sport: 40000, dst: '10.96.0.10', dport: 80 });
  assert.deepEqual(parseTracePacket({ src: '[fd00:0::5]:1234', dst: '[fd00::a]:53/UDP', from: 'external' }),
    { from: 'external', proto: 'UDP', src: 'fd00::5', sport: 1234, dst: 'fd00::a', dport: 53 });
  assert.deepEqual(parseTracePacket({ src: 'fd00::5', dst: '[fd00::a]:9/SCTP' }).src, 'fd00::5');
  assert.deepEqual(parseTracePacket({ dst: '10.96.0.10:80/TCP', from: 'host' }).src, '0.0.0.0');
});

test('parseTracePacket: each mistake names its flag', () => {
  const bad: Array<[Parameters<typeof parseTracePacket>[0], RegExp]> = [
    [{ src: '10.0.0.1', dst: '10.96.0.10:80' }, /^--dst: .*TCP, UDP or SCTP/],
    [{ src: '10.0.0.1', dst: '10.96.0.10/TCP' }, /^--dst: .*has no port/],
    [{ src: '10.0.0.1', dst: '10.96.0.10:0/TCP' }, /^--dst: port 0/],
    [{ src: '10.0.0.300', dst: '10.96.0.10:80/TCP' }, /^--src: "10.0.0.300" is not IP\[:PORT\]/],
    [{ dst: '10.96.0.10:80/TCP' }, /^--src: is required/],
    [{ src: 'fd00::1', dst: '10.96.0.10:80/TCP' }, /^--src: .*different families/],
    [{ src: '10.0.0.1', dst: '10.96.0.10:80/TCP', from: 'node' }, /^--from: must be one of pod, external, host/],
  ];
  for (const [v, re] of bad) assert.throws(() => parseTracePacket(v), (e: unknown) => e instanceof ConfigError && re.test(e.message), JSON.stringify(v));
});

test('traceFrame: a TCP SYN, a UDP and an SCTP datagram in both families, every checksum valid', () => {
  for (const [src, dst] of [['10.244.1.2', '10.96.0.10'], ['fd44:1::2', 'fd96::a']] as const) {
    for (const [proto, number] of [['TCP', TCP], ['UDP', UDP], ['SCTP', SCTP]] as const) {
      const f = parseFrame(traceFrame({ from: 'pod', proto, src, sport: 40000, dst, dport: 80 }));
      assert.deepEqual([f.family, f.src, f.dst, f.sport, f.dport, f.proto], [src.includes(':') ? 6 : 4, src, dst, 40000, 80, number]);
      assert.ok(f.ipChecksumOk && f.l4ChecksumOk, `${proto} ${src}`);
    }
  }
});

const P: TracePacket = { from: 'pod', proto: 'TCP', src: '10.244.1.2', sport: 40000, dst: '10.96.0.10', dport: 80 };
const input = traceFrame(P);
const rewritten = (src: string, sport: number, dst: string, dport: number) => frameOf({ src, sport, dst, dport, proto: TCP });
/** The input answered with an ICMP port unreachable (only the fields runOutcome reads). */
function icmpAnswer(): Buffer {
  const out = Buffer.from(input);
  out[14 + 9] = 1;
  out.copy(out, 14 + 12, 14 + 16, 14 + 20); // from the dialled address
  input.copy(out, 14 + 16, 14 + 12, 14 + 16); // to the client
  out[34] = 3;
  out[35] = 3;
  return out;
}

test('runOutcome: drop, reject, translated and pass, by return value and output frame', () => {
  assert.deepEqual(runOutcome('pod', 2, input, input), { verdict: 'drop', action: 'TC_ACT_SHOT', output: null });
  assert.deepEqual(runOutcome('external', 1, input, input), { verdict: 'drop', action: 'XDP_DROP', output: null });
  assert.deepEqual(runOutcome('pod', 0, input, input), { verdict: 'pass', action: 'TC_ACT_OK', output: { src: P.src, sport: 40000, dst: P.dst, dport: 80 } });
  assert.deepEqual(runOutcome('external', 2, input, rewritten('192.168.77.1', 61001, '10.244.2.3', 8080)),
    { verdict: 'translated', action: 'XDP_PASS', output: { src: '192.168.77.1', sport: 61001, dst: '10.244.2.3', dport: 8080 } });
  assert.deepEqual(runOutcome('external', 3, input, icmpAnswer()),
    { verdict: 'reject', action: 'XDP_TX', output: { src: P.dst, dst: P.src, icmp: { type: 3, code: 3 } } });
  assert.equal(runOutcome('pod', 9, input, input).action, 'return value 9');
});

const backend = (address: string, id: number, flags: string[] = []) => ({ address, port: 8080, id, flags });
const frontend = (scope: DescribedFrontend['scope'], backends: DescribedFrontend['backends'], flags: string[] = []): DescribedFrontend =>
  ({ protocol: 'TCP', address: P.dst, port: 80, scope, svcId: 7, revNat: '10.96.0.10:80', flags, backends });
const D: Description = {
  nodeAddress: '192.168.77.1', nodeAddress6: null,
  frontends: [
    frontend('internal', [backend('10.244.1.3', 1, ['local']), backend('10.244.2.3', 2)]),
    frontend('external', [backend('10.244.1.3', 1, ['local']), backend('10.244.2.3', 2)]),
    { ...frontend('host', [backend('10.244.1.3', 1, ['local']), backend('10.244.2.3', 2)], ['affinity']), svcId: 9 },
    { ...frontend('external', [backend('10.244.1.3', 1, ['local']), backend('10.244.2.3', 2)], ['snat-remote']), address: '192.168.77.1', port: 30080, svcId: 8 },
  ],
};

test('runTrace: the frontend of the hook\'s scope, its backend set, the chosen backend and SNAT', () => {
  const out = rewritten(P.src, P.sport, '10.244.2.3', 8080);
  const r = runTrace({ ...P, from: 'pod' }, D, { retval: 0, input, out }, null, { new_flow: 1 });
  assert.equal(r.frontend?.scope, 'internal');
  assert.deepEqual(r.alsoAt, ['TCP 10.96.0.10:80 external']);
  assert.deepEqual(r.chosen, backend('10.244.2.3', 2));
  assert.equal(r.snat, null);
  const ext = { ...P, from: 'external' as const, src: '192.168.77.100', dst: '192.168.77.1', dport: 30080 };
  const s = runTrace(ext, D, { retval: 2, input: traceFrame(ext), out: rewritten('192.168.77.1', 61001, '10.244.2.3', 8080) }, null, { new_flow: 1 });
  assert.equal(s.frontend?.svcId, 8);
  assert.deepEqual(s.snat, { address: '192.168.77.1', port: 61001 });
  // a reply translated back chooses nothing
  const reply = runTrace({ ...P, from: 'pod' }, D, { retval: 0, input, out: rewritten('10.96.0.10', 80, '10.244.1.9', 40000) }, { table: 'kx_ct', dir: 'reply' }, { reply: 1 });
  assert.deepEqual([reply.verdict, reply.chosen, reply.snat], ['translated', null, null]);
});

test('hostTrace: the socket hooks\' answer from the host-scope frontends', () => {
  const h = { ...P, from: 'host' as const };
  const r = hostTrace(h, D);
  assert.deepEqual([r.ran, r.verdict, r.frontend?.scope, r.candidates.length], [false, 'translated', 'host', 2]);
  assert.match(r.action, /affinity/);
  const none = (flags: string[]): Description => ({ ...D, frontends: [frontend('host', [], flags)] });
  assert.deepEqual([hostTrace(h, none(['reject'])).verdict, hostTrace(h, none(['reject'])).action], ['reject', 'connect() fails with ECONNREFUSED']);
  assert.deepEqual([hostTrace(h, none([])).verdict, hostTrace(h, none([])).action], ['drop', 'connect() fails with EHOSTUNREACH']);
  assert.equal(hostTrace({ ...h, dport: 81 }, D).verdict, 'pass');
});

test('formatTrace: one line per question', () => {
  const ext = { ...P, from: 'external' as const, src: '192.168.77.100', dst: '192.168.77.1', dport: 30080 };
  const r = runTrace(ext, D, { retval: 2, input: traceFrame(ext), out: rewritten('192.168.77.1', 61001, '10.244.2.3', 8080) }, null, { new_flow: 1 });
  assert.equal(formatTrace(r), [
    'packet     TCP 192.168.77.100:40000 -> 192.168.77.1:30080 from outside (kx_xdp_ext, run with BPF_PROG_TEST_RUN on a scratch copy of the maps)',
    'verdict    translated (XDP_PASS)',
    'frontend   TCP 192.168.77.1:30080 external, backend set 8, snat-remote, replies from 10.96.0.10:80',
    'service    no other address in this backend set (the maps hold no namespace/name)',
    'backends   2 candidates',
    '  -> 10.244.1.3:8080              id 1      local',
    '  -> 10.244.2.3:8080              id 2',
    'chosen     10.244.2.3:8080 (id 2)',
    'snat       192.168.77.1:61001',
    'output     TCP 192.168.77.1:61001 -> 10.244.2.3:8080',
    'counters   new_flow +1',
    '',
  ].join('\n'));
  const pass = runTrace({ ...P, from: 'pod', dst: '10.244.2.3' }, D, { retval: 0, input: traceFrame({ ...P, dst: '10.244.2.3' }), out: traceFrame({ ...P, dst: '10.244.2.3' }) }, null, {});
  assert.match(formatTrace(pass), /^frontend {3}none of scope internal for TCP 10\.244\.2\.3:80: not a Service packet here$/m);
  assert.match(formatTrace(pass), /^counters {3}none moved$/m);
  assert.match(formatTrace(hostTrace({ ...P, from: 'host' }, D)), /computed from the maps: BPF_PROG_TEST_RUN cannot run socket hooks/);
});
