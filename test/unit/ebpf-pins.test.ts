// An upgrade that changed a map's layout: the pins the earlier build left are replaced, the
// compatible ones kept with their entries. Real kernel, real pins (bpftool map create makes the
// old-layout maps). Needs root; under CI=true a non-root run fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { Libkx } from '../../src/kernel/libkx.js';
import { dropIncompatiblePins, expectedLayouts, layoutMismatch } from '../../src/dataplane/ebpf/pins.js';
import { MAPS } from '../../src/dataplane/ebpf/maps.js';

const OBJ = fileURLToPath(new URL('../../../build/kube_xdp.bpf.o', import.meta.url));
const isRoot = process.getuid?.() === 0;

test('layoutMismatch names every field that differs', () => {
  const want = { name: 'kx_ct', type: 9, keySize: 16, valueSize: 32, maxEntries: 524288, flags: 0 };
  assert.equal(layoutMismatch(want, { type: 9, keySize: 16, valueSize: 32, maxEntries: 524288, flags: 0 }), null);
  assert.equal(layoutMismatch(want, { type: 9, keySize: 16, valueSize: 24, maxEntries: 1024, flags: 1 }), 'valueSize 24 (this build: 32), maxEntries 1024 (this build: 524288), flags 1 (this build: 0)');
});

test('pins of an older layout are replaced at load, compatible ones kept with their entries', { skip: !isRoot && process.env.CI !== 'true' ? 'needs root' : false }, () => {
  assert.ok(isRoot, 'CI=true requires root');
  const pinDir = `/sys/fs/bpf/kx-pins-${process.pid}-${randomBytes(3).toString('hex')}`;
  const lib = new Libkx();
  const log = pino({ level: 'silent' });
  mkdirSync(pinDir, { recursive: true });
  let handle: number | null = null;
  try {
    const create = (name: string, type: string, key: number, value: number, entries: number, extra: string[] = []) => {
      const r = spawnSync('bpftool', ['map', 'create', `${pinDir}/${name}`, 'type', type, 'key', String(key), 'value', String(value), 'entries', String(entries), 'name', name, ...extra], { encoding: 'utf8' });
      assert.equal(r.status, 0, `bpftool map create ${name}: ${r.stderr}`);
    };
    const fe = expectedLayouts().find((l) => l.name === MAPS.frontends.name)!;
    create('kx_ct', 'lru_hash', 16, 24, 524288);        // the layout before conntrack kept backend addresses
    create('kx_stats', 'percpu_array', 4, 8, 6);         // six counters then
    create(fe.name, 'hash', fe.keySize, fe.valueSize, fe.maxEntries, ['flags', String(fe.flags)]); // unchanged layout (libbpf reuses by type, sizes, flags)
    const key = Buffer.alloc(fe.keySize, 7), value = Buffer.alloc(fe.valueSize, 9);
    const feFd = lib.objGet(`${pinDir}/${fe.name}`);
    lib.mapUpdate(feFd, key, value);
    lib.close(feFd);

    assert.deepEqual(dropIncompatiblePins(lib, pinDir, log).sort(), ['kx_ct', 'kx_stats']);
    handle = lib.objOpenLoad(OBJ, pinDir);
    const ct = lib.mapInfo(lib.objMapFd(handle, 'kx_ct'));
    assert.equal(ct.valueSize, MAPS.ct.value.size, 'kx_ct recreated with this build\'s value size');
    const got = Buffer.alloc(fe.valueSize);
    assert.ok(lib.mapLookup(lib.objMapFd(handle, fe.name), key, got), 'the compatible pin was reused: its entry is still there');
    assert.deepEqual(got, value);
    assert.deepEqual(dropIncompatiblePins(lib, pinDir, log), [], 'nothing to drop once loaded');
  } finally {
    if (handle !== null) lib.objClose(handle);
    rmSync(pinDir, { recursive: true, force: true });
  }
});
