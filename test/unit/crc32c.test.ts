// The CRC32c tables the datapath updates SCTP checksums with: the committed header is the
// generator's output, the byte table gives CRC32c's check value, and the zero-byte matrices
// advance a register exactly as feeding zeros one by one does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { header, zeroMatrices } from '../../scripts/gen-crc32c-tables.js';
import { crc32c, crc32cTable } from '../../src/dataplane/ebpf/frames.js';

const HEADER = fileURLToPath(new URL('../../../bpf/include/kx_crc32c_tables.h', import.meta.url));

test('bpf/include/kx_crc32c_tables.h is the generator\'s output', () => {
  assert.equal(readFileSync(HEADER, 'utf8'), header());
});

test('CRC32c check value; the 2^k zero-byte matrices equal 2^k single zero bytes', () => {
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
  const table = crc32cTable();
  const step = (reg: number) => (table[reg & 0xff]! ^ (reg >>> 8)) >>> 0;
  const apply = (m: number[], v: number) => m.reduce((r, col, i) => ((v >>> i) & 1 ? (r ^ col) >>> 0 : r), 0);
  const ms = zeroMatrices();
  for (const [k, reg] of [[0, 0xdeadbeef], [3, 0x12345678], [7, 0x80000001]] as const) {
    let want: number = reg;
    for (let i = 0; i < 2 ** k; i++) want = step(want);
    assert.equal(apply(ms[k]!, reg), want, `2^${k} zero bytes`);
  }
});
