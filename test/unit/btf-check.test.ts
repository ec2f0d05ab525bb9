// The load-time check of the codecs against the object's BTF: this build's object passes; an
// object compiled from a header with two fields swapped is refused before any pin is touched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { Libkx } from '../../src/kernel/libkx.js';
import { objectLayoutProblems } from '../../src/dataplane/ebpf/btf-check.js';
import { EbpfDataplane } from '../../src/dataplane/ebpf/dataplane.js';
import { Metrics } from '../../src/observe/metrics.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const OBJ = join(REPO, 'build/kube_xdp.bpf.o');

test('this build\'s object matches every codec', () => {
  assert.deepEqual(objectLayoutProblems(new Libkx(), OBJ), []);
});

test('an object whose backend_value has flags and port swapped is refused, and no pin is made', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kx-skew-'));
  try {
    cpSync(join(REPO, 'bpf'), join(dir, 'bpf'), { recursive: true });
    const header = join(dir, 'bpf/include/kx_maps.h');
    const text = readFileSync(header, 'utf8');
    const skewed = text.replace('\t__be16 port;\n\t__u8 flags;  /* KX_BE_* */', '\t__u8 flags;  /* KX_BE_* */\n\t__be16 port;');
    assert.notEqual(skewed, text, 'the header changed');
    writeFileSync(header, skewed);
    const obj = join(dir, 'skewed.bpf.o');
    const cc = spawnSync('clang', ['-O2', '-g', '-target', 'bpf', '-D__TARGET_ARCH_x86', `-I${join(REPO, 'build')}`, `-I${join(dir, 'bpf/include')}`,
      '-c', join(dir, 'bpf/kube_xdp.bpf.c'), '-o', obj], { encoding: 'utf8' });
    assert.equal(cc.status, 0, cc.stderr);
    const problems = objectLayoutProblems(new Libkx(), obj);
    assert.ok(problems.some((p) => p.startsWith('struct backend_value: fields addr, flags, port')), problems.join('\n'));

    const pinDir = join('/sys/fs/bpf', `kx-skew-${process.pid}`);
    const dp = new EbpfDataplane(new Libkx(), pino({ level: 'silent' }), new Metrics(), {
      objectPath: obj, pinDir, externalInterfaces: [], podInterfaces: [], xdpMode: 'auto', tcMode: 'auto', nodeAddresses: ['192.168.0.2'],
    });
    assert.throws(() => dp.start(), /skewed\.bpf\.o does not match this kube-xdp's map layouts \(another version's object\?\): .*struct backend_value/);
    assert.equal(existsSync(pinDir), false, 'no pin dir was created');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
