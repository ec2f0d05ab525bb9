// The prefilter's bits as the controller computes them (the datapath hashes the same way: the
// BPF fixtures reach frontends only through these bits).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Prefilter, vipBits } from '../../src/dataplane/ebpf/prefilter.js';
import { MemoryMaps } from './helpers/memory-maps.js';

test('an address sets two bits of 2^22, a port one; words are written once, when they gain a bit', () => {
  const bits = vipBits('10.96.0.10');
  assert.equal(bits.length, 2);
  for (const b of bits) assert.ok(b >= 0 && b < 2 ** 22);
  assert.notDeepEqual(vipBits('10.96.0.11'), bits);
  // (a * 0x9e3779b1 mod 2^32) >> 10, as the C code computes it in u32
  const a = (10 << 24 | 96 << 16 | 0 << 8 | 10) >>> 0;
  assert.equal(bits[0], Number((BigInt(a) * 0x9e3779b1n) % 2n ** 32n >> 10n));

  const mem = new MemoryMaps();
  const f = new Prefilter();
  f.addFrontend('10.96.0.10');
  f.addBackendPort(8080);
  assert.ok(f.has('portBits', 8080) && !f.has('portBits', 8081));
  assert.ok(bits.every((b) => f.has('vipBloom', b)));
  assert.equal(f.writeTo(mem), new Set(bits.map((b) => b >>> 6)).size + 1, 'the Bloom words holding the bits, and one port word');
  assert.equal(f.writeTo(mem), 0, 'nothing new');
  f.addFrontend('10.96.0.10');
  assert.equal(f.writeTo(mem), 0, 'bits already set');

  // a restarted controller starts from what the maps hold: the bits survive
  const g = new Prefilter();
  g.readFrom(mem);
  assert.ok(g.has('portBits', 8080) && bits.every((b) => g.has('vipBloom', b)));
});
