// A controller killed at any point of a sync (issue 16, part 4). The sync from state A to state
// B is cut after every step of its plan, and in the middle of every step (a batch the kernel
// only half applied), by stopping the writes there, as SIGKILL would. At every step a reader
// sends a new flow to every Service through the real programs (BPF_PROG_TEST_RUN over the same
// pinned maps): each must reach a backend of that Service in A or in B (or be dropped / passed
// only where A or B says so). Then a new controller starts on the pins, as a restarted
// DaemonSet pod does, and must converge to exactly the maps a clean controller writes for B,
// with nothing orphaned. Needs root; under CI=true a non-root run fails.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { Libkx } from '../../src/kernel/libkx.js';
import { Metrics } from '../../src/observe/metrics.js';
import { EbpfDataplane, CONTROLLED_MAPS } from '../../src/dataplane/ebpf/dataplane.js';
import { applyPlan, readMaps, type MapIO } from '../../src/dataplane/ebpf/apply.js';
import { compile } from '../../src/dataplane/ebpf/compile.js';
import { Prefilter } from '../../src/dataplane/ebpf/prefilter.js';
import { KernelMaps } from '../../src/dataplane/ebpf/kernel-maps.js';
import { plan, type Plan } from '../../src/dataplane/ebpf/plan.js';
import { appliedFromMaps, type MapDumps } from '../../src/dataplane/ebpf/readback.js';
import type { ProxyState, ServicePort } from '../../src/model/types.js';
import { endpoint, servicePort } from '../unit/helpers/service.js';
import { ensureBpffs, KX_OBJ, PROGRAM_NAME, removePinRoot, TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT, uniquePinRoot, XDP_DROP, XDP_PASS, XDP_TX, type Program } from './fixture.js';
import { buildFrame, parseFrame, TCP } from './packet.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot && process.env.CI === 'true') test('crash at any point of a sync', () => assert.fail('CI=true requires root'));

const NODE = '192.168.77.1';
const log = pino({ level: 'silent' });

/** Service i: ClusterIP 10.96.x.y:80; every third one also a NodePort 30000+i. */
function svc(i: number, eps: string[]): ServicePort {
  const list = eps.map((ip, j) => endpoint(ip, 8080, { isLocal: j % 2 === 0 }));
  const np = i % 3 === 0;
  return servicePort(`s${i}`, {
    id: `default/s${i}:http`, clusterIPs: [`10.96.${i >> 8}.${(i & 255) + 1}`],
    type: np ? 'NodePort' : 'ClusterIP', nodePort: np ? 30000 + i : null, externallyAccessible: np,
    endpoints: list, clusterEndpoints: list, localEndpoints: list.filter((e) => e.isLocal),
    allReachableEndpoints: list, hasAnyEndpoints: list.length > 0, familiesWithEndpoints: list.length ? ['IPv4'] : [],
  });
}
const pods = (i: number, n: number, gen = 0) => Array.from({ length: n }, (_, j) => `10.244.${(i % 60) + 1}.${10 + j + gen * 3}`);

// A: 120 Services × 3. B: 40 unchanged, 40 with endpoints replaced and one added, 20 deleted,
// 20 scaled to zero, 40 new.
const A: ProxyState = { services: Array.from({ length: 120 }, (_, i) => svc(i, pods(i, 3))) };
const B: ProxyState = {
  services: [
    ...Array.from({ length: 40 }, (_, i) => svc(i, pods(i, 3))),
    ...Array.from({ length: 40 }, (_, i) => svc(40 + i, [...pods(40 + i, 1), ...pods(40 + i, 3, 1)])),
    ...Array.from({ length: 20 }, (_, i) => svc(100 + i, [])),
    ...Array.from({ length: 40 }, (_, i) => svc(120 + i, pods(120 + i, 2))),
  ],
};

type Outcome = 'pass' | 'drop' | 'reject' | `to ${string}`;
/** What a new flow to one Service frontend may do in a state. */
function outcomes(s: ProxyState, id: string): Set<Outcome> {
  const sp = s.services.find((x) => x.id === id);
  if (!sp) return new Set(['pass']);
  if (sp.clusterEndpoints.length === 0) return new Set([sp.hasAnyEndpoints ? 'drop' : 'reject']);
  return new Set(sp.clusterEndpoints.map((e) => `to ${e.ip}:${e.port}` as Outcome));
}

/** The maps' meaning, without ids: frontend -> flags, backends in slot order, reverse NAT. */
function canonical(d: MapDumps): unknown {
  const be = new Map(d.backends.map(([id, v]) => [id, `${v.addr}:${v.port}/${v.flags}`]));
  const rn = new Map(d.revnat.map(([id, v]) => [id, `${v.addr}:${v.port}`]));
  const slots = new Map(d.slots.map(([k, v]) => [`${k.svcId}/${k.slot}`, v.backendId]));
  return {
    config: d.config,
    frontends: d.frontends.map(([k, v]) => ({
      key: `${k.addr}:${k.port}/${k.proto}/${k.scope}`, flags: v.flags, affinity: v.affinityTimeout, revnat: rn.get(v.revNatId),
      backends: Array.from({ length: v.count }, (_, s) => be.get(slots.get(`${v.svcId}/${s}`) ?? -1) ?? 'MISSING'),
    })).sort((a, b) => (a.key < b.key ? -1 : 1)),
  };
}

/** Stops writing after `steps` whole steps and `keysOfNext` keys of the next one: a kill. */
class CutIO implements MapIO {
  private done = 0;
  constructor(private readonly io: MapIO, private readonly steps: number, private readonly keysOfNext: number, private readonly afterStep: () => void) {}
  private step(n: number, run: (count: number) => void): void {
    if (this.done > this.steps) throw new Error('killed');
    const count = this.done === this.steps ? Math.min(this.keysOfNext, n) : n;
    if (count > 0) run(count);
    if (this.done === this.steps) { this.done++; throw new Error('killed'); }
    this.done++;
    this.afterStep();
  }
  updateBatch(map: string, keys: Buffer, values: Buffer, count: number): void {
    this.step(count, (c) => this.io.updateBatch(map, keys.subarray(0, (keys.length / count) * c), values.subarray(0, (values.length / count) * c), c));
  }
  deleteBatch(map: string, keys: Buffer, count: number): void {
    this.step(count, (c) => this.io.deleteBatch(map, keys.subarray(0, (keys.length / count) * c), c));
  }
  dump(map: string, keySize: number, valueSize: number, max: number) { return this.io.dump(map, keySize, valueSize, max); }
}

describe('a sync killed at any step converges after a restart, and no packet meets a wrong backend', { skip: isRoot ? false : 'needs root (bpffs, BPF_PROG_TEST_RUN)' }, () => {
  const lib = new Libkx();
  const pinDirs = new Set<string>();
  const open = new Set<EbpfDataplane>();
  let clientSeq = 0;

  before(() => ensureBpffs());
  after(() => {
    for (const d of open) d.close();
    for (const p of pinDirs) removePinRoot(p);
  });

  /** A controller's dataplane on pinDir (no interfaces to attach to: maps and programs only). */
  const controller = (pinDir: string): EbpfDataplane => {
    pinDirs.add(pinDir);
    const d = new EbpfDataplane(lib, log, new Metrics(), {
      objectPath: KX_OBJ, pinDir, externalInterfaces: [], podInterfaces: [], xdpMode: 'auto', tcMode: 'auto', nodeAddresses: [NODE],
    });
    d.start();
    open.add(d);
    return d;
  };
  const stop = (d: EbpfDataplane) => { d.close(); open.delete(d); };

  /** Sends a new flow to every frontend of every Service of A and B; returns the violations. */
  const reader = (progs: Record<Program, number>, states: ProxyState[]): string[] => {
    const bad: string[] = [];
    const verdicts: Record<Program, { pass: number; drop: number; reject: number }> = {
      xdp: { pass: XDP_PASS, drop: XDP_DROP, reject: XDP_TX }, tc: { pass: TC_ACT_OK, drop: TC_ACT_SHOT, reject: TC_ACT_REDIRECT },
    };
    for (const id of new Set([...A.services, ...B.services].map((s) => s.id))) {
      const allowed = new Set(states.flatMap((st) => [...outcomes(st, id)]));
      const sp = (A.services.find((s) => s.id === id) ?? B.services.find((s) => s.id === id))!;
      const targets: [Program, string, number][] = [['tc', sp.clusterIPs[0]!, 80]];
      if (sp.nodePort) targets.push(['xdp', NODE, sp.nodePort]);
      for (const [prog, addr, port] of targets) {
        const n = clientSeq++;
        const frame = buildFrame({ src: `100.${64 + (n >> 16)}.${(n >> 8) & 255}.${n & 255}`, dst: addr, sport: 40000, dport: port, proto: TCP });
        const r = lib.progTestRun({ fd: progs[prog], label: prog }, frame);
        const out = parseFrame(Buffer.from(r.data));
        const got: Outcome = r.retval === verdicts[prog].drop ? 'drop' : r.retval === verdicts[prog].reject ? 'reject'
          : out.dst === addr && out.dport === port ? 'pass' : `to ${out.dst}:${out.dport}`;
        if (!allowed.has(got)) bad.push(`${id} via ${prog}: ${got}, allowed ${[...allowed].join(' | ')}`);
      }
    }
    return bad;
  };

  test('every cut point of the A -> B sync', (t) => {
    // What a clean controller writes for B, and the length of the A -> B plan.
    const cleanDir = uniquePinRoot('kx-crash-clean');
    const clean = controller(cleanDir);
    clean.sync(B);
    const cleanMaps = KernelMaps.openPinned(lib, cleanDir, CONTROLLED_MAPS);
    const want = canonical(readMaps(cleanMaps));
    cleanMaps.close();
    stop(clean);

    let steps = -1;
    let cuts = 0, readings = 0;
    for (let k = 0; steps < 0 || k < steps; k++) {
      for (const half of [false, true]) {
        const pinDir = uniquePinRoot('kx-crash');
        const first = controller(pinDir);
        first.sync(A);
        const maps = KernelMaps.openPinned(lib, pinDir, CONTROLLED_MAPS);
        const obj = lib.objOpenLoad(KX_OBJ, pinDir); // the programs, over the same pinned maps
        try {
          const progs = { xdp: lib.objProgFd(obj, PROGRAM_NAME.xdp), tc: lib.objProgFd(obj, PROGRAM_NAME.tc) };
          const desiredB = compile(B, { nodeAddresses: [NODE] }).desired;
          // what the controller writes before the plan: B's addresses and ports past the prefilter
          const prefilter = new Prefilter();
          prefilter.readFrom(maps);
          prefilter.addDesired(desiredB.frontends.values());
          prefilter.writeTo(maps);
          const p: Plan = plan(appliedFromMaps(readMaps(maps)), desiredB);
          steps = p.steps.length;
          const step = p.steps[k];
          const bad: string[] = [];
          const check = () => { readings++; bad.push(...reader(progs, [A, B])); };
          check();
          assert.throws(() => applyPlan(new CutIO(maps, k, half && step ? Math.floor(step.keys.length / 2) : 0, check), p), /killed/);
          check();
          assert.deepEqual(bad.slice(0, 5), [], `cut at step ${k}${half ? ' (half applied)' : ''} of ${steps}: ${bad.length} flows met a wrong outcome`);
          cuts++;

          // The restarted controller: reads the pins back, syncs B.
          stop(first);
          const second = controller(pinDir);
          const r = second.sync(B);
          assert.ok(r.writes >= 0);
          const after = readMaps(maps);
          assert.deepEqual(canonical(after), want, `after the restart (cut at step ${k}${half ? ', half' : ''})`);
          const stale = appliedFromMaps(after).stale;
          assert.deepEqual(stale, { slots: [], backends: [], revnat: [], srcRanges: [], affinityMatch: [] }, 'nothing orphaned');
          assert.deepEqual(reader(progs, [B]).slice(0, 5), [], 'after the restart every flow follows B');
          stop(second);
        } finally {
          lib.objClose(obj);
          maps.close();
        }
        for (const d of open) stop(d);
        removePinRoot(pinDir);
      }
    }
    t.diagnostic(`plan of ${steps} steps; ${cuts} cut points (after each step and half-way through each); ${readings} map states read by ${clientSeq} flows`);
    assert.ok(steps >= 6, `a plan worth cutting (${steps} steps)`);
  });
});
