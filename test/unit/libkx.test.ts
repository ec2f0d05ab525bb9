// libkx against the real kernel: no mocks. Needs root; under CI=true a non-root run fails.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Libkx, type FdLike } from '../../src/kernel/libkx.js';
import { KernelError } from '../../src/kernel/kernel-error.js';

const repo = fileURLToPath(new URL('../../../', import.meta.url));
const OBJ = `${repo}build/empty.bpf.o`;
const HELPER = fileURLToPath(new URL('./fixtures/libkx-ns.js', import.meta.url));
const isRoot = process.getuid?.() === 0;
const runId = `${process.pid}-${randomBytes(3).toString('hex')}`;

if (!isRoot && process.env.CI === 'true') {
  test('libkx kernel tests', () => assert.fail('CI=true requires root for the libkx kernel tests'));
}

function sh(cmd: string, args: string[], allowFail = false): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0 && !allowFail) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.error?.message}`);
  return r.stdout ?? '';
}

const KEY = 4, VALUE = 16; // kx_test: __u32 → { __u64 a; __u32 b; __u32 c; }
function encode(entries: [number, bigint, number, number][]): { keys: Buffer; values: Buffer } {
  const keys = Buffer.alloc(entries.length * KEY), values = Buffer.alloc(entries.length * VALUE);
  entries.forEach(([k, a, b, c], i) => {
    keys.writeUInt32LE(k, i * KEY);
    values.writeBigUInt64LE(a, i * VALUE);
    values.writeUInt32LE(b, i * VALUE + 8);
    values.writeUInt32LE(c, i * VALUE + 12);
  });
  return { keys, values };
}
function decode(keys: Buffer, values: Buffer, count: number): Map<number, [bigint, number, number]> {
  const m = new Map<number, [bigint, number, number]>();
  for (let i = 0; i < count; i++) {
    m.set(keys.readUInt32LE(i * KEY), [values.readBigUInt64LE(i * VALUE), values.readUInt32LE(i * VALUE + 8), values.readUInt32LE(i * VALUE + 12)]);
  }
  return m;
}
function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

/** A 64-byte Ethernet/IPv4/UDP frame. */
function frame(): Buffer {
  const f = Buffer.alloc(64);
  Buffer.from('02000000000202000000000108004500', 'hex').copy(f, 0);
  f.writeUInt16BE(50, 16); // IP total length
  f[22] = 64; f[23] = 17; // ttl, udp
  Buffer.from([10, 0, 0, 1, 10, 0, 0, 2]).copy(f, 26);
  f.writeUInt16BE(1234, 34); f.writeUInt16BE(53, 36); f.writeUInt16BE(30, 38);
  return f;
}

describe('libkx (kernel)', { skip: isRoot ? false : 'needs root' }, () => {
  const pinRoot = `/sys/fs/bpf/kx-test-${runId}`;
  const handles: number[] = [];
  let kx: Libkx;

  before(() => {
    if (spawnSync('mountpoint', ['-q', '/sys/fs/bpf']).status !== 0) sh('mount', ['-t', 'bpf', 'bpf', '/sys/fs/bpf']);
    assert.ok(existsSync(OBJ), `${OBJ} missing: run make build/empty.bpf.o build/libkx.so`);
    kx = new Libkx();
  });
  after(() => {
    for (const h of handles) kx.objClose(h);
    rmSync(pinRoot, { recursive: true, force: true });
  });

  /** Opens empty.bpf.o with its maps pinned under pinRoot/sub; returns the handle and kx_test. */
  function open(sub: string): { h: number; map: FdLike } {
    const h = kx.objOpenLoad(OBJ, `${pinRoot}/${sub}`);
    handles.push(h);
    return { h, map: { fd: kx.objMapFd(h, 'kx_test'), label: 'kx_test' } };
  }

  test('open/load pins kx_test under the pin root', () => {
    const { map } = open('pin');
    assert.ok(existsSync(`${pinRoot}/pin/kx_test`));
    const info = kx.mapInfo(map);
    assert.deepEqual(
      { type: info.type, keySize: info.keySize, valueSize: info.valueSize, valueStride: info.valueStride, maxEntries: info.maxEntries, name: info.name },
      { type: 1, keySize: KEY, valueSize: VALUE, valueStride: VALUE, maxEntries: 1024, name: 'kx_test' },
    );
  });

  test('a second open/load with the same root reuses the pinned map', () => {
    const a = open('reuse'), b = open('reuse');
    assert.equal(kx.mapInfo(a.map).id, kx.mapInfo(b.map).id);
    const { keys, values } = encode([[7, 1n << 40n, 2, 3]]);
    kx.mapUpdate(a.map, keys, values);
    const out = Buffer.alloc(VALUE);
    assert.equal(kx.mapLookup(b.map, keys, out), true);
    assert.deepEqual(out, values);
    const pinned = kx.objGet(`${pinRoot}/reuse/kx_test`);
    try {
      assert.equal(kx.mapInfo(pinned).id, kx.mapInfo(a.map).id);
    } finally {
      kx.close(pinned);
    }
    assert.equal(kx.mapDelete(b.map, keys), true);
    assert.equal(kx.mapLookup(a.map, keys, out), false);
    assert.equal(kx.mapDelete(b.map, keys), false);
  });

  test('update_batch writes 1000 entries in one call; dump reads them back', () => {
    const { map } = open('batch');
    const entries = range(0, 1000).map((k): [number, bigint, number, number] => [k * 7 + 1, BigInt(k) * 1_000_000_007n, k, ~k >>> 0]);
    const { keys, values } = encode(entries);
    assert.equal(kx.mapUpdateBatch(map, keys, values, 1000), 1000);
    const dump = kx.mapDump(map);
    assert.equal(dump.count, 1000);
    const got = decode(dump.keys, dump.values, dump.count);
    for (const [k, a, b, c] of entries) assert.deepEqual(got.get(k), [a, b, c], `key ${k}`);
    assert.throws(() => kx.mapDump(map, 999), (e: unknown) => e instanceof KernelError && e.code === 'ENOSPC');
    assert.equal(kx.mapDump(map, 1000).count, 1000);
  });

  test('delete_batch skips missing keys and deletes the rest', () => {
    const { map } = open('delete');
    const { keys, values } = encode(range(0, 100).map((k): [number, bigint, number, number] => [k, 0n, 0, 0]));
    kx.mapUpdateBatch(map, keys, values, 100);
    // 50..149 interleaved with keys that never existed: missing first, last and in the middle.
    const del = [1000, ...range(50, 100).flatMap((k) => [k, k + 5000]), 2000];
    const dk = encode(del.map((k): [number, bigint, number, number] => [k, 0n, 0, 0])).keys;
    assert.equal(kx.mapDeleteBatch(map, dk, del.length), 50);
    const dump = kx.mapDump(map);
    assert.deepEqual([...decode(dump.keys, dump.values, dump.count).keys()].sort((x, y) => x - y), range(0, 50));
    assert.equal(kx.mapDeleteBatch(map, dk, del.length), 0);
  });

  test('update_batch on a full map throws a KernelError naming op and map', () => {
    const { map } = open('full');
    const fill = encode(range(0, 1024).map((k): [number, bigint, number, number] => [k, 0n, 0, 0]));
    assert.equal(kx.mapUpdateBatch(map, fill.keys, fill.values, 1024), 1024);
    const more = encode(range(5000, 5010).map((k): [number, bigint, number, number] => [k, 0n, 0, 0]));
    assert.throws(() => kx.mapUpdateBatch(map, more.keys, more.values, 10), (e: unknown) => {
      assert.ok(e instanceof KernelError);
      assert.equal(e.op, 'bpf_map_update_batch');
      assert.equal(e.target, 'kx_test');
      assert.ok(e.code === 'E2BIG' || e.code === 'ENOSPC', e.code);
      assert.match(e.message, /^bpf_map_update_batch\(kx_test\): (E2BIG|ENOSPC) \(errno \d+\)/);
      return true;
    });
  });

  test('errors name the operation, the target and the errno', () => {
    const { h } = open('errors');
    assert.throws(() => kx.objMapFd(h, 'nope'), { name: 'KernelError', op: 'bpf_object__find_map_by_name', target: 'nope', code: 'ENOENT', errno: 2 });
    assert.throws(() => kx.objOpenLoad(`${repo}build/missing.bpf.o`, null), { code: 'ENOENT', op: 'bpf_object__load' });
    assert.throws(() => kx.objGet(`${pinRoot}/errors/absent`), { code: 'ENOENT', target: `${pinRoot}/errors/absent` });
    assert.throws(() => kx.ifIndex('kx-no-such-if'), { code: 'ENODEV', op: 'if_nametoindex' });
    assert.ok(kx.ifList().some((i) => i.name === 'lo'));
  });

  test('an incompatible pinned map fails the load with libbpf\'s reason', () => {
    mkdirSync(`${pinRoot}/clash`, { recursive: true });
    sh('bpftool', ['map', 'create', `${pinRoot}/clash/kx_test`, 'type', 'hash', 'key', '4', 'value', '8', 'entries', '16', 'name', 'kx_test']);
    assert.throws(() => kx.objOpenLoad(OBJ, `${pinRoot}/clash`), (e: unknown) => {
      assert.ok(e instanceof KernelError);
      assert.equal(e.code, 'EINVAL');
      assert.match(e.detail ?? '', /couldn't reuse pinned map/);
      return true;
    });
  });

  test('prog_test_run: kx_empty_xdp passes a 64-byte frame unchanged', () => {
    const { h } = open('run');
    const r = kx.progTestRun({ fd: kx.objProgFd(h, 'kx_empty_xdp'), label: 'kx_empty_xdp' }, frame());
    assert.equal(r.retval, 2); // XDP_PASS
    assert.deepEqual(r.data, frame());
  });

  test('prog_test_run: kx_empty_tc returns TC_ACT_OK', () => {
    const { h } = open('run');
    const r = kx.progTestRun(kx.objProgFd(h, 'kx_empty_tc'), frame(), 10);
    assert.equal(r.retval, 0);
    assert.deepEqual(r.data, frame());
  });

  describe('attach inside a private network namespace', () => {
    const ns = `kxt-${runId}`;
    const nsPins = `${pinRoot}/ns`;
    const pins: string[] = [];

    /** Runs the fixture in the namespace; pins stay behind when it exits. */
    function inNs(req: Record<string, unknown>): { ok: boolean; result?: any; message?: string; code?: string } {
      const r = spawnSync('nsenter', [`--net=/run/netns/${ns}`, process.execPath, HELPER, JSON.stringify(req)], { encoding: 'utf8' });
      if (!r.stdout) throw new Error(`helper failed: ${r.stderr}`);
      return JSON.parse(r.stdout);
    }
    function ok(req: Record<string, unknown>): any {
      const r = inNs(req);
      assert.ok(r.ok, r.message);
      return r.result;
    }
    // bpftool 7.1 prints neither ifindex for XDP links nor a name for TCX ones (type 11).
    function linkOf(pin: string): { id: number; type: string | number; prog_id: number } {
      return JSON.parse(sh('bpftool', ['-j', 'link', 'show', 'pinned', pin]));
    }
    const ipLink = (dev: string) => sh('ip', ['netns', 'exec', ns, 'ip', '-d', 'link', 'show', 'dev', dev]);
    const tcFilters = (dev: string, dir: string) => sh('ip', ['netns', 'exec', ns, 'tc', 'filter', 'show', 'dev', dev, dir]);

    before(() => {
      sh('ip', ['netns', 'add', ns]);
      sh('ip', ['-n', ns, 'link', 'add', 'kxa', 'type', 'veth', 'peer', 'name', 'kxb']);
      for (const dev of ['lo', 'kxa', 'kxb']) sh('ip', ['-n', ns, 'link', 'set', dev, 'up']);
    });
    after(() => {
      for (const pin of pins) inNs({ op: 'detach-link', pin });
      sh('ip', ['netns', 'del', ns], true);
      rmSync(nsPins, { recursive: true, force: true });
    });

    test('interfaces and probe see only the namespace', () => {
      assert.deepEqual(ok({ op: 'if-list' }).map((i: { name: string }) => i.name).sort(), ['kxa', 'kxb', 'lo']);
      // This host's kernel (6.18) has every feature the probe knows; the links went on the namespace's lo.
      const p = ok({ op: 'probe' });
      const absent = Object.entries(p.features as Record<string, { ok: boolean; detail: string }>).filter(([, r]) => !r.ok);
      assert.deepEqual(absent, []);
      assert.equal(p.tc, 'tcx');
      assert.equal(p.ebpfUnusable, null);
    });

    test('XDP (generic): pinned link survives the process, re-attach replaces, detach removes', () => {
      const pin = `${nsPins}/xdp_kxa`;
      pins.push(pin);
      const req = { op: 'attach-xdp', obj: OBJ, pinRoot: nsPins, ifname: 'kxa', pin };
      ok(req);
      const first = linkOf(pin);
      assert.equal(first.type, 'xdp');
      assert.match(ipLink('kxa'), new RegExp(`xdpgeneric.*prog/xdp id ${first.prog_id} `, 's'));
      ok(req); // a new process, a new program: bpf_link_update on the pinned link
      const second = linkOf(pin);
      assert.equal(second.id, first.id);
      assert.notEqual(second.prog_id, first.prog_id);
      assert.match(ipLink('kxa'), new RegExp(`xdpgeneric.*prog/xdp id ${second.prog_id} `, 's'));
      assert.deepEqual(ok({ op: 'detach-link', pin }), { detached: true });
      assert.ok(!existsSync(pin));
      assert.doesNotMatch(ipLink('kxa'), /xdp/);
      assert.deepEqual(ok({ op: 'detach-link', pin }), { detached: false });
    });

    test('XDP: a pin whose interface is gone is replaced by a new link', () => {
      sh('ip', ['-n', ns, 'link', 'add', 'kxc', 'type', 'veth', 'peer', 'name', 'kxd']);
      const pin = `${nsPins}/xdp_moving`;
      pins.push(pin);
      ok({ op: 'attach-xdp', obj: OBJ, pinRoot: nsPins, ifname: 'kxc', pin });
      const stale = linkOf(pin);
      sh('ip', ['-n', ns, 'link', 'del', 'kxc']);
      ok({ op: 'attach-xdp', obj: OBJ, pinRoot: nsPins, ifname: 'kxa', pin });
      assert.notEqual(linkOf(pin).id, stale.id);
      assert.match(ipLink('kxa'), /xdpgeneric/);
      assert.deepEqual(ok({ op: 'detach-link', pin }), { detached: true });
    });

    test('XDP native mode on a veth', () => {
      const pin = `${nsPins}/xdp_native_kxb`;
      pins.push(pin);
      ok({ op: 'attach-xdp', obj: OBJ, pinRoot: nsPins, ifname: 'kxb', pin, mode: 1 });
      assert.match(ipLink('kxb'), new RegExp(` xdp .*prog/xdp id ${linkOf(pin).prog_id} `, 's'));
      assert.deepEqual(ok({ op: 'detach-link', pin }), { detached: true });
      assert.doesNotMatch(ipLink('kxb'), /xdp/);
    });

    for (const direction of ['ingress', 'egress'] as const) {
      test(`TCX ${direction}: pinned link, replace, detach`, () => {
        const pin = `${nsPins}/tcx_kxb_${direction}`;
        pins.push(pin);
        const req = { op: 'attach-tc', obj: OBJ, pinRoot: nsPins, ifname: 'kxb', direction, useTcx: true, pin };
        const { ifindex } = ok(req);
        const first = linkOf(pin);
        assert.ok(first.type === 'tcx' || first.type === 11, String(first.type));
        ok(req);
        const second = linkOf(pin);
        assert.equal(second.id, first.id);
        assert.notEqual(second.prog_id, first.prog_id);
        // A pin on another interface or hook is refused, not silently moved.
        const other = ok({ op: 'attach-tc', obj: OBJ, pinRoot: nsPins, ifname: 'kxa', direction, useTcx: true, pin: `${pin}_a` });
        pins.push(`${pin}_a`);
        assert.ok(other.ifindex !== ifindex);
        const clash = inNs({ ...req, ifname: 'kxa' });
        assert.equal(clash.ok, false);
        assert.equal(clash.code, 'EEXIST');
        assert.deepEqual(ok({ op: 'detach-tc', ifname: 'kxb', direction, useTcx: true, pin }), { detached: true });
        assert.ok(!existsSync(pin));
        assert.deepEqual(ok({ op: 'detach-link', pin: `${pin}_a` }), { detached: true });
      });
    }

    test('clsact fallback: filter replaced in place, detach removes only ours', () => {
      const req = { op: 'attach-tc', obj: OBJ, pinRoot: nsPins, ifname: 'kxb', direction: 'ingress', useTcx: false, pin: null };
      ok(req);
      assert.match(tcFilters('kxb', 'ingress'), /handle 0x6b78 kx_empty_tc/);
      ok(req);
      assert.equal(tcFilters('kxb', 'ingress').match(/handle 0x6b78 kx_empty_tc/g)?.length, 1);
      assert.deepEqual(ok({ op: 'detach-tc', ifname: 'kxb', direction: 'ingress', useTcx: false }), { detached: true });
      assert.doesNotMatch(tcFilters('kxb', 'ingress'), /kx_empty_tc/);
      assert.deepEqual(ok({ op: 'detach-tc', ifname: 'kxb', direction: 'ingress', useTcx: false }), { detached: false });
      assert.deepEqual(ok({ op: 'detach-tc', ifname: 'kxa', direction: 'egress', useTcx: false }), { detached: false });
    });
  });
});
