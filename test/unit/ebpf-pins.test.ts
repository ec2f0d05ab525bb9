// An upgrade that changed a map's layout: the pins the earlier build left are replaced when
// their key or value layout changed, migrated (entries copied) when only their size did, kept
// when identical. Real kernel, real pins (bpftool map create makes the old-layout maps).
// Needs root; under CI=true a non-root run fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { Libkx } from '../../src/kernel/libkx.js';
import { catchUpMigration, expectedLayouts, finishMigration, layoutMismatch, preparePins } from '../../src/dataplane/ebpf/pins.js';
import { KX_LIMITS } from '../../src/dataplane/ebpf/limits.js';
import { IDLE_IPV6_FLOW_ENTRIES, maxEntriesByName, parseMapSizes, sizesFor, type MapSizes } from '../../src/dataplane/ebpf/map-sizes.js';
import { MAPS } from '../../src/dataplane/ebpf/maps.js';

const OBJ = fileURLToPath(new URL('../../../build/kube_xdp.bpf.o', import.meta.url));
const isRoot = process.getuid?.() === 0;

test('layoutMismatch names every field that differs', () => {
  const want = { name: 'kx_ct', type: 9, keySize: 16, valueSize: 32, maxEntries: 524288, flags: 0 };
  assert.equal(layoutMismatch(want, { type: 9, keySize: 16, valueSize: 32, maxEntries: 524288, flags: 0 }), null);
  assert.equal(layoutMismatch(want, { type: 9, keySize: 16, valueSize: 24, maxEntries: 1024, flags: 1 }), 'valueSize 24 (this build: 32), maxEntries 1024 (this build: 524288), flags 1 (this build: 0)');
});

test('pins: another layout replaced, another size migrated with its entries (also on a resize by flag), the same reused', { skip: !isRoot && process.env.CI !== 'true' ? 'needs root' : false }, () => {
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
    const layout = (name: string) => expectedLayouts().find((l) => l.name === name)!;
    const fe = layout(MAPS.frontends.name), be = layout(MAPS.backends.name);
    create('kx_ct_new', 'lru_hash', 16, 24, 131072);     // the layout before conntrack kept backend addresses
    create('kx_stats', 'percpu_array', 4, 8, 6);         // six counters then
    create(fe.name, 'hash', fe.keySize, fe.valueSize, fe.maxEntries, ['flags', String(fe.flags)]); // unchanged layout (libbpf reuses by type, sizes, flags)
    create(be.name, 'hash', be.keySize, be.valueSize, 262144, ['flags', String(be.flags)]); // an earlier, smaller size
    const put = (name: string, size: { keySize: number; valueSize: number }, k: number, v: number) => {
      const fd = lib.objGet(`${pinDir}/${name}`);
      lib.mapUpdate(fd, Buffer.alloc(size.keySize, k), Buffer.alloc(size.valueSize, v));
      lib.close(fd);
    };
    put(fe.name, fe, 7, 9);
    for (let i = 1; i <= 3; i++) put(be.name, be, i, 10 + i);
    const lookup = (h: number, name: string, size: { keySize: number; valueSize: number }, k: number): Buffer | null => {
      const got = Buffer.alloc(size.valueSize);
      return lib.mapLookup(lib.objMapFd(h, name), Buffer.alloc(size.keySize, k), got) ? got : null;
    };

    const asidePins = () => spawnSync('ls', [pinDir], { encoding: 'utf8' }).stdout.split('\n').filter((n) => /__v\d+$/.test(n));
    const load = (sizes: MapSizes = KX_LIMITS) => {
      const migrating = preparePins(lib, pinDir, sizes, log);
      const h = lib.objOpenLoad(OBJ, pinDir, maxEntriesByName(sizes));
      catchUpMigration(lib, h, pinDir, finishMigration(lib, h, pinDir, migrating, log), log);
      return { h, migrating };
    };
    let r = load();
    handle = r.h;
    assert.deepEqual(r.migrating.map((m) => m.name).sort(), [be.name, "kx_stats"]);
    assert.equal(lib.mapInfo(lib.objMapFd(handle, 'kx_ct_new')).valueSize, MAPS.ctNew.value.size, 'kx_ct_new recreated with this build\'s value size');
    assert.deepEqual(lookup(handle, fe.name, fe, 7), Buffer.alloc(fe.valueSize, 9), 'the compatible pin was reused: its entry is still there');
    assert.equal(lib.mapInfo(lib.objMapFd(handle, be.name)).maxEntries, be.maxEntries, 'kx_backends resized');
    for (let i = 1; i <= 3; i++) assert.deepEqual(lookup(handle, be.name, be, i), Buffer.alloc(be.valueSize, 10 + i), `backend ${i} migrated`);
    lib.objClose(handle);
    handle = null;

    // a resize by --bpf-map-sizes migrates the same way; nothing is left aside
    r = load(sizesFor(parseMapSizes(['backends=4096']), { ipv6: true }));
    handle = r.h;
    assert.deepEqual(r.migrating.map((m) => m.name), [be.name]);
    assert.equal(lib.mapInfo(lib.objMapFd(handle, be.name)).maxEntries, 4096);
    for (let i = 1; i <= 3; i++) assert.deepEqual(lookup(handle, be.name, be, i), Buffer.alloc(be.valueSize, 10 + i));
    assert.deepEqual(asidePins(), []);
    lib.objClose(handle);
    handle = null;
    assert.deepEqual(load(sizesFor(parseMapSizes(['backends=4096']), { ipv6: true })).migrating, [], 'nothing to migrate once loaded');
  } finally {
    if (handle !== null) lib.objClose(handle);
    rmSync(pinDir, { recursive: true, force: true });
  }
});

test('conntrack migrated across a resize: flows the previous programs open after the copy are copied once this build attaches, never over this build\'s entries', { skip: !isRoot && process.env.CI !== 'true' ? 'needs root' : false }, () => {
  assert.ok(isRoot, 'CI=true requires root');
  const pinDir = `/sys/fs/bpf/kx-pins-${process.pid}-${randomBytes(3).toString('hex')}`;
  const lib = new Libkx();
  const log = pino({ level: 'silent' });
  mkdirSync(pinDir, { recursive: true });
  let handle: number | null = null;
  try {
    const ct = expectedLayouts().find((l) => l.name === MAPS.ct.name)!;
    const r = spawnSync('bpftool', ['map', 'create', `${pinDir}/${ct.name}`, 'type', 'lru_hash', 'key', String(ct.keySize), 'value', String(ct.valueSize), 'entries', '4096', 'name', ct.name], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const key = (k: number) => Buffer.alloc(ct.keySize, k), value = (v: number) => Buffer.alloc(ct.valueSize, v);
    const put = (fd: number, k: number, v: number) => lib.mapUpdate(fd, key(k), value(v));
    const get = (fd: number, k: number) => { const v = Buffer.alloc(ct.valueSize); return lib.mapLookup(fd, key(k), v) ? v[0] : null; };
    let fd = lib.objGet(`${pinDir}/${ct.name}`);
    put(fd, 1, 11);
    lib.close(fd);

    const migrating = preparePins(lib, pinDir, KX_LIMITS, log);
    handle = lib.objOpenLoad(OBJ, pinDir, maxEntriesByName(KX_LIMITS));
    const pending = finishMigration(lib, handle, pinDir, migrating, log);
    assert.deepEqual(pending.map((m) => m.name), [ct.name], 'conntrack waits for the attach; nothing else');
    const live = lib.objMapFd(handle, ct.name);
    assert.equal(get(live, 1), 11, 'copied at the load');
    // the previous programs, still attached, keep writing the map they hold (now the aside pin)
    fd = lib.objGet(`${pinDir}/${ct.name}__v2`);
    put(fd, 2, 22); // a flow opened during the switch
    put(fd, 3, 33); // ... whose key this build's programs wrote since
    lib.close(fd);
    put(live, 3, 44);
    assert.equal(get(live, 2), null);

    catchUpMigration(lib, handle, pinDir, pending, log);
    assert.equal(get(live, 2), 22, 'the flow opened during the switch is in the new map');
    assert.equal(get(live, 3), 44, 'this build\'s entry is kept');
    assert.equal(get(live, 1), 11);
    assert.deepEqual(spawnSync('ls', [pinDir], { encoding: 'utf8' }).stdout.split('\n').filter((n) => /__v\d+$/.test(n)), [], 'the aside pin is removed');
  } finally {
    if (handle !== null) lib.objClose(handle);
    rmSync(pinDir, { recursive: true, force: true });
  }
});

test('a node without IPv6: the IPv6 flow tables the operator did not size shrink, sizes the operator set stay (the default value too), nothing else moves', () => {
  const sizes = sizesFor(parseMapSizes(['affinity6=4096', 'ct=1000', `ct-new6=${KX_LIMITS.ctNew6}`]), { ipv6: false });
  assert.equal(sizes.ct6, IDLE_IPV6_FLOW_ENTRIES);
  assert.equal(sizes.ctNew6, KX_LIMITS.ctNew6);
  assert.equal(sizes.affinity6, 4096);
  assert.equal(sizes.ct, 1000);
  assert.equal(sizes.backends6, KX_LIMITS.backends6, 'hash maps without preallocation keep their capacity');
});

test('--bpf-map-sizes: known maps, positive sizes, errors that name the flag', () => {
  assert.deepEqual(sizesFor(parseMapSizes([]), { ipv6: true }), KX_LIMITS);
  const s = sizesFor(parseMapSizes(['backends=2097152', 'ct-new=262144']), { ipv6: true });
  assert.equal(s.backends, 2097152);
  assert.equal(s.ctNew, 262144);
  assert.equal(maxEntriesByName(s).kx_ct_new, 262144);
  assert.throws(() => parseMapSizes(['kx_backends=10']), /--bpf-map-sizes: "kx_backends=10": want MAP=ENTRIES with MAP one of frontends, .*ct-new/);
  assert.throws(() => parseMapSizes(['backends=0']), /entries must be in \[1, 2147483647\]/);
});
