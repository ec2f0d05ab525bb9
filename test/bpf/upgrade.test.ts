// An upgrade over the previous release's pins: flows established through the previous
// release's programs (its object built from git, PREVIOUS_RELEASE) keep their backend, their
// SNAT port and their reply translation once this build's controller has loaded over the same
// pins (maps of another size migrated, the others reused) and synced the same Services.
// Needs root, git history and clang; under CI=true a non-root run fails instead of skipping.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Libkx } from '../../src/kernel/libkx.js';
import { EbpfDataplane } from '../../src/dataplane/ebpf/dataplane.js';
import { encodeAll, u32Codec, type Codec } from '../../src/dataplane/ebpf/codec.js';
import { BE_LOCAL, FE_NODEPORT, MAPS, SCOPE_EXT, SCOPE_INT, STAT_NAMES, STATS_MAP } from '../../src/dataplane/ebpf/maps.js';
import { Metrics } from '../../src/observe/metrics.js';
import { objects } from '../unit/helpers/kube-objects.js';
import { ready, service, slice, tcp as tcpPort } from '../unit/helpers/kube-proxy-fake.js';
import { ensureBpffs, KX_OBJ, PROGRAM_NAME, removePinRoot, REPO, TC_ACT_OK, uniquePinRoot, XDP_PASS, type Program } from './fixture.js';
import { buildFrame, parseFrame, TCP } from './packet.js';
import { KernelMaps } from '../../src/dataplane/ebpf/kernel-maps.js';

/** The last commit of the release before datapath v2 (its map sizes and counters differ). */
const PREVIOUS_RELEASE = '319d9ae';
const isRoot = process.getuid?.() === 0;
if (!isRoot && process.env.CI === 'true') test('upgrade', () => assert.fail('CI=true requires root'));

const NODE = '192.168.0.2', CIP = '172.30.0.41', BE_R = '10.180.1.1', BE_L = '10.180.0.1', POD = '10.180.0.7', CLIENT = '203.0.113.9';
const ACK = 0x10, SYN = 0x02;
const FLOWS = 40;

describe('upgrade from the previous release under established flows', { skip: isRoot ? false : 'needs root (bpffs, BPF_PROG_TEST_RUN)' }, () => {
  const lib = new Libkx();
  const pinDir = uniquePinRoot('kx-upgrade');
  let dir = '';
  let oldObj = '';
  let dp: EbpfDataplane | null = null;
  let handle: number | null = null;

  before(() => {
    ensureBpffs();
    dir = mkdtempSync(join(tmpdir(), 'kx-prev-'));
    execFileSync('sh', ['-ec', `git -C "${REPO}" archive ${PREVIOUS_RELEASE} bpf | tar -x -C "${dir}"`]);
    oldObj = join(dir, 'kube_xdp.bpf.o');
    const cc = spawnSync('clang', ['-O2', '-g', '-target', 'bpf', '-D__TARGET_ARCH_x86', `-I${join(REPO, 'build')}`, `-I${join(dir, 'bpf/include')}`,
      '-c', join(dir, 'bpf/kube_xdp.bpf.c'), '-o', oldObj], { encoding: 'utf8' });
    assert.equal(cc.status, 0, cc.stderr);
  });
  after(() => {
    if (handle !== null) lib.objClose(handle);
    dp?.close();
    removePinRoot(pinDir);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const run = (h: number, p: Program, frame: Buffer) => {
    const r = lib.progTestRun({ fd: lib.objProgFd(h, PROGRAM_NAME[p]), label: p }, frame);
    assert.equal(r.retval, p === 'xdp' ? XDP_PASS : TC_ACT_OK);
    return parseFrame(Buffer.from(r.data));
  };
  const put = <K, V>(h: number, name: string, kc: Codec<K>, vc: Codec<V>, keys: K[], values: V[]) =>
    lib.mapUpdateBatch({ fd: lib.objMapFd(h, name), label: name }, encodeAll(kc, keys), encodeAll(vc, values), keys.length);

  test('flows opened through the previous release continue through this one', () => {
    // the previous release, programmed as it programmed itself: a NodePort with a remote
    // backend (SNAT) and a ClusterIP with a local one
    const old = lib.objOpenLoad(oldObj, pinDir);
    put(old, MAPS.config.name, u32Codec, MAPS.config.value, [0], [{ nodeAddr: NODE, flags: 0 }]);
    put(old, MAPS.backends.name, u32Codec, MAPS.backends.value, [1, 2], [{ addr: BE_R, port: 8080, flags: 0 }, { addr: BE_L, port: 8080, flags: BE_LOCAL }]);
    put(old, MAPS.slots.name, MAPS.slots.key, MAPS.slots.value, [{ svcId: 1, slot: 0 }, { svcId: 2, slot: 0 }], [{ backendId: 1 }, { backendId: 2 }]);
    put(old, MAPS.revnat.name, u32Codec, MAPS.revnat.value, [1, 2], [{ addr: NODE, port: 3001 }, { addr: CIP, port: 80 }]);
    put(old, MAPS.frontends.name, MAPS.frontends.key, MAPS.frontends.value,
      [{ addr: NODE, port: 3001, proto: TCP, scope: SCOPE_EXT }, { addr: CIP, port: 80, proto: TCP, scope: SCOPE_INT }],
      [{ svcId: 1, count: 1, flags: FE_NODEPORT, affinityTimeout: 0, revNatId: 1 }, { svcId: 2, count: 1, flags: 0, affinityTimeout: 0, revNatId: 2 }]);
    const opened: { prog: Program; client: string; sport: number; dst: string; dport: number; seen: { src: string; sport: number; dst: string; dport: number } }[] = [];
    for (let i = 0; i < FLOWS; i++) {
      for (const [prog, client, dst, dport, be] of [['xdp', CLIENT, NODE, 3001, BE_R], ['tc', POD, CIP, 80, BE_L]] as const) {
        const sport = 30000 + i;
        const out = run(old, prog, buildFrame({ src: client, dst, sport, dport, proto: TCP, tcpFlags: SYN }));
        assert.equal(out.dst, be);
        // the backend's SYN-ACK: the flow moves to kx_ct
        const back = run(old, prog, buildFrame({ src: out.dst, dst: out.src, sport: out.dport, dport: out.sport, proto: TCP, tcpFlags: SYN | ACK }));
        assert.deepEqual([back.src, back.sport, back.dst, back.dport], [dst, dport, client, sport]);
        opened.push({ prog, client, sport, dst, dport, seen: { src: out.src, sport: out.sport, dst: out.dst, dport: out.dport } });
      }
    }
    const oldStats = KernelMaps.ofObject(lib, old, [STATS_MAP]).sumPerCpu(STATS_MAP, 11);
    lib.objClose(old);

    // this build's controller over the same pins, with the same Services from the API objects
    dp = new EbpfDataplane(lib, pino({ level: 'silent' }), new Metrics(), {
      objectPath: KX_OBJ, pinDir, externalInterfaces: [], podInterfaces: [], xdpMode: 'auto', tcMode: 'auto', nodeAddresses: [NODE],
    });
    dp.start();
    // before its first sync the Services are already served: the resized maps were migrated
    assert.deepEqual(dp.describe().frontends.map((f) => `${f.address}:${f.port} -> ${f.backends.map((b) => b.address).join(',')}`).sort(),
      [`${CIP}:80 -> ${BE_L}`, `${NODE}:3001 -> ${BE_R}`]);
    const o = objects(
      service('ns1', 'np', { type: 'NodePort', clusterIP: '172.30.0.42', ports: [tcpPort('p80', 80, { nodePort: 3001, targetPort: 8080 })] }),
      slice('ns1', 'np', [ready(BE_R, 'node2')], [tcpPort('p80', 8080)]),
      service('ns1', 'cip', { clusterIP: CIP, ports: [tcpPort('p80', 80, { targetPort: 8080 })] }),
      slice('ns1', 'cip', [ready(BE_L, 'node1')], [tcpPort('p80', 8080)]),
    );
    dp.sync(o.state({ nodeName: 'node1' }));
    handle = lib.objOpenLoad(KX_OBJ, pinDir); // this build's programs, on the controller's maps

    // every flow's next packet goes where it went, under the same SNAT port, and so do replies
    const stats0 = KernelMaps.ofObject(lib, handle, [STATS_MAP]).sumPerCpu(STATS_MAP, STAT_NAMES.length);
    for (const f of opened) {
      const out = run(handle, f.prog, buildFrame({ src: f.client, dst: f.dst, sport: f.sport, dport: f.dport, proto: TCP, tcpFlags: ACK }));
      assert.deepEqual({ src: out.src, sport: out.sport, dst: out.dst, dport: out.dport }, f.seen, `${f.client}:${f.sport}`);
      const back = run(handle, f.prog, buildFrame({ src: f.seen.dst, dst: f.seen.src, sport: f.seen.dport, dport: f.seen.sport, proto: TCP, tcpFlags: ACK }));
      assert.deepEqual([back.src, back.sport, back.dst, back.dport], [f.dst, f.dport, f.client, f.sport]);
    }
    const stats = KernelMaps.ofObject(lib, handle, [STATS_MAP]).sumPerCpu(STATS_MAP, STAT_NAMES.length);
    const delta = (name: (typeof STAT_NAMES)[number]) => Number(stats[STAT_NAMES.indexOf(name)]! - stats0[STAT_NAMES.indexOf(name)]!);
    assert.equal(delta('established'), opened.length);
    assert.equal(delta('reply'), opened.length);
    assert.equal(delta('new_flow') + delta('ct_lost'), 0, 'no flow started over');
    // the previous release's counters were carried over into the larger stats map
    assert.deepEqual(stats0.slice(0, 11), oldStats);
  });
});
