// `kube-xdp trace` against the live dataplane without touching it. A test run writes what a
// packet writes (conntrack, affinity, SNAT ports, counters), so it never runs on the running
// controller's maps: the object is loaded on a scratch pin root beside the live one, the
// Service maps, prefilter, config and affinity are copied from the live pins (read only), plus
// the live conntrack entry of this very tuple if there is one (so an established flow keeps its
// backend in the answer), and the program runs there. The scratch root is removed afterwards,
// also on failure. The host scope's answer needs no run: it is read from the live maps.
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Libkx } from '../../kernel/libkx.js';
import { readMaps } from './apply.js';
import { objectLayoutProblems } from './btf-check.js';
import { CONTROLLED_MAPS } from './dataplane.js';
import { describeMaps } from './describe.js';
import { KernelMaps } from './kernel-maps.js';
import { CT_REPLY, LAYOUT_VERSION, MAPS, PROTO_NUMBER, STAT_NAMES, STATS_MAP, roleOf, type CtKey, type CtValue, type MapSpec } from './maps.js';
import { hostTrace, runTrace, TRACE_PROGRAM, traceFrame, type TracePacket, type TraceResult } from './trace.js';

/** The live maps the programs read that trace copies: Services, prefilter, config, affinity. */
const COPIED = (['frontends', 'slots', 'backends', 'revnat', 'config', 'srcRanges', 'clusterCidrs', 'affinityMatch', 'affinity',
  'vipBloom', 'portBits', 'frontends6', 'backends6', 'revnat6', 'config6', 'srcRanges6', 'clusterCidrs6', 'affinity6'] as const)
  .map((r) => MAPS[r].name);
/** Flow tables of the scratch copy: at most a flow's two entries go there, so they stay small
 *  (the object's sizes would preallocate hundreds of MB of LRU entries for one packet). */
const SCRATCH_FLOW_MAPS = [MAPS.ct, MAPS.ctNew, MAPS.ct6, MAPS.ctNew6, MAPS.sockRevnat, MAPS.sockRevnat6].map((m) => m.name);
const SCRATCH_FLOW_ENTRIES = 1024;

export interface TraceOptions { readonly pinDir: string; readonly objectPath: string; readonly packet: TracePacket }

export function traceLive(lib: Libkx, o: TraceOptions): TraceResult {
  const p = o.packet;
  if (!existsSync(join(o.pinDir, MAPS.frontends.name))) throw new Error(`kube-xdp is not running in eBPF mode on this node (no pins at ${o.pinDir})`);
  if (p.from === 'host') {
    const live = KernelMaps.openPinned(lib, o.pinDir, CONTROLLED_MAPS);
    try {
      return hostTrace(p, describeMaps(readMaps(live)));
    } finally {
      live.close();
    }
  }
  const problems = objectLayoutProblems(lib, o.objectPath);
  if (problems.length > 0) throw new Error(`${o.objectPath} does not match this kube-xdp's map layouts: ${problems.join('; ')}`);
  const ctMaps = (['ct', 'ctNew'] as const).map((t) => MAPS[roleOf(t, p.src) as 'ct' | 'ctNew' | 'ct6' | 'ctNew6']);
  const live = KernelMaps.openPinned(lib, o.pinDir, [...COPIED, MAPS.layout.name, ...ctMaps.map((m) => m.name)]);
  try {
    checkLayoutVersion(lib, live, o.pinDir);
    const sizes = Object.fromEntries([
      ...COPIED.map((n) => [n, lib.mapInfo(live.fd(n)).maxEntries] as const),
      ...SCRATCH_FLOW_MAPS.map((n) => [n, SCRATCH_FLOW_ENTRIES] as const),
    ]);
    // bpffs refuses dots in names; beside the live root, so on the same bpffs
    const root = join(dirname(resolve(o.pinDir)), `kx-trace-${process.pid}-${randomBytes(4).toString('hex')}`);
    let handle: number | null = null;
    try {
      handle = lib.objOpenLoad(o.objectPath, root, sizes);
      const scratch = KernelMaps.ofObject(lib, handle, [...CONTROLLED_MAPS, STATS_MAP]);
      for (const name of COPIED) copyMap(lib, live, scratch, name);
      const conntrack = copyFlow(lib, live, scratch, ctMaps, p);
      const d = describeMaps(readMaps(scratch));
      const before = scratch.sumPerCpu(STATS_MAP, STAT_NAMES.length);
      const prog = TRACE_PROGRAM[p.from];
      const input = traceFrame(p);
      const r = lib.progTestRun({ fd: lib.objProgFd(handle, prog), label: prog }, input);
      const after = scratch.sumPerCpu(STATS_MAP, STAT_NAMES.length);
      const counters = Object.fromEntries(STAT_NAMES.flatMap((n, i) => (after[i]! > before[i]! ? [[n, Number(after[i]! - before[i]!)]] : [])));
      return runTrace({ ...p, from: p.from }, d, { retval: r.retval, input, out: r.data }, conntrack, counters);
    } finally {
      try {
        if (handle !== null) lib.objClose(handle);
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    }
  } finally {
    live.close();
  }
}

/** Conntrack entries mean what this build's layout says (pins.ts converts older ones at a
 *  controller's start): a copy from pins of another version would be misread. */
function checkLayoutVersion(lib: Libkx, live: KernelMaps, pinDir: string): void {
  const v = Buffer.alloc(4);
  const version = lib.mapLookup(live.fd(MAPS.layout.name), Buffer.alloc(4), v) ? v.readUInt32LE() : 0;
  if (version !== LAYOUT_VERSION) {
    throw new Error(`the pins under ${pinDir} have layout version ${version}, this kube-xdp ${LAYOUT_VERSION}: trace with the release that runs there`);
  }
}

function copyMap(lib: Libkx, live: KernelMaps, scratch: KernelMaps, name: string): void {
  const [from, to] = [lib.mapInfo(live.fd(name)), lib.mapInfo(scratch.fd(name))];
  if (from.type !== to.type || from.keySize !== to.keySize || from.valueSize !== to.valueSize) {
    throw new Error(`pinned ${name} (type ${from.type}, key ${from.keySize} B, value ${from.valueSize} B) differs from the object's (type ${to.type}, key ${to.keySize} B, value ${to.valueSize} B)`);
  }
  const d = live.dump(name, from.keySize, from.valueSize, from.maxEntries);
  if (d.count > 0) scratch.updateBatch(name, d.keys, d.values, d.count);
}

/** The live entry keyed by this packet's tuple (a flow's forward entry, or its reply entry),
 *  copied to the scratch table it was found in. */
function copyFlow(lib: Libkx, live: KernelMaps, scratch: KernelMaps, tables: ReadonlyArray<MapSpec<CtKey, CtValue>>, p: TracePacket): TraceResult['conntrack'] {
  for (const m of tables) {
    const key = Buffer.alloc(m.key.size);
    m.key.encode({ saddr: p.src, daddr: p.dst, sport: p.sport, dport: p.dport, proto: PROTO_NUMBER[p.proto] }, key, 0);
    const value = Buffer.alloc(m.value.size);
    if (!lib.mapLookup(live.fd(m.name), key, value)) continue;
    lib.mapUpdate(scratch.fd(m.name), key, value);
    return { table: m.name, dir: m.value.decode(value, 0).dir === CT_REPLY ? 'reply' : 'forward' };
  }
  return null;
}
