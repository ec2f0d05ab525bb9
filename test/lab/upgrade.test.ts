// A rolling upgrade of the DaemonSet, node by node: node1 runs the previous release's controller
// (built from git: its TypeScript, its libkx.so, its BPF object) under steady traffic and held
// connections; it is stopped as the kubelet stops a pod (SIGTERM) and this build's controller
// starts on the same pins. Its maps are migrated (other sizes, conntrack of layout version 1),
// and no connection fails: new ones keep being served, held ones keep their backend.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLab, ensureBpffs, labUnavailable, type Lab } from './lab.js';
import { Controller } from './kube-xdp.js';
import { writeSource, type LabService } from './manifests.js';
import type { Summary } from './client.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const CLIENT = fileURLToPath(new URL('./client.js', import.meta.url));
/** The last commit of the release before datapath v2 (as test/bpf/upgrade.test.ts). */
const PREVIOUS_RELEASE = '319d9ae';
const CLUSTER_IP = '10.96.0.10', NODE_PORT = 30080;

const unavailable = labUnavailable();
if (unavailable && process.env.CI === 'true') test('upgrade lab prerequisites (CI runs this as root)', () => assert.fail(unavailable));

/** The previous release, built as `make build` builds it, sharing this checkout's node_modules. */
function buildPrevious(dir: string): string {
  execFileSync('sh', ['-ec', `git -C "${REPO}" archive ${PREVIOUS_RELEASE} | tar -x -C "${dir}"`]);
  symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'));
  mkdirSync(join(dir, 'build'));
  copyFileSync(join(REPO, 'build/vmlinux.h'), join(dir, 'build/vmlinux.h'));
  const sh = (cmd: string) => execFileSync('sh', ['-ec', cmd], { cwd: dir, stdio: 'pipe' });
  sh('clang -O2 -g -Wall -Werror -target bpf -D__TARGET_ARCH_x86 -Ibuild -Ibpf/include -c bpf/kube_xdp.bpf.c -o build/kube_xdp.bpf.o');
  sh('cc -O2 -g -Wall -Werror -fPIC -shared -o build/libkx.so native/*.c -lbpf');
  sh(`"${process.execPath}" node_modules/typescript/bin/tsc -p tsconfig.json`);
  return join(dir, 'dist/src/cli/main.js');
}

describe('rolling upgrade from the previous release under traffic', { skip: unavailable ?? false }, () => {
  let lab: Lab;
  let dir = '';
  let source = '';
  let previousCli = '';
  const controllers: Controller[] = [];

  before(async () => {
    ensureBpffs();
    dir = mkdtempSync(join(tmpdir(), 'kx-upgrade-'));
    mkdirSync(join(dir, 'previous'));
    previousCli = buildPrevious(join(dir, 'previous'));
    lab = await createLab({ pods: [{ name: 'cl', node: 'node1' }, { name: 'b', node: 'node1' }, { name: 'c', node: 'node2' }] });
    source = join(dir, 'services.json');
    const web: LabService = {
      name: 'web', clusterIP: CLUSTER_IP, port: 80, targetPort: 8080, type: 'NodePort', nodePort: NODE_PORT, protocols: ['TCP'],
      endpoints: [lab.pod('b'), lab.pod('c')],
    };
    writeSource(source, [web]);
    controllers.push(await Controller.start(lab, 'node1', source, [], previousCli), await Controller.start(lab, 'node2', source));
  });

  after(async () => {
    for (const c of controllers) await c.kill('SIGTERM');
    await lab?.teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('node1: previous release -> this one; no connection fails, held ones keep their backend', async () => {
    const DURATION_MS = 6000;
    const steady = [
      lab.spawn(lab.pod('cl').ns, [process.execPath, CLIENT, '--tcp', '--target', `${CLUSTER_IP}:80`, '--steady', '--interval-ms', '20', '--duration-ms', String(DURATION_MS)]),
      lab.spawn(lab.ext.ns, [process.execPath, CLIENT, '--tcp', '--target', `${lab.nodes.node1.ip}:${NODE_PORT}`, '--steady', '--interval-ms', '20', '--duration-ms', String(DURATION_MS)]),
    ];
    const held = [
      lab.spawn(lab.pod('cl').ns, [process.execPath, CLIENT, '--tcp', '--target', `${CLUSTER_IP}:80`, '--hold', '--interval-ms', '50', '--duration-ms', String(DURATION_MS), '--timeout-ms', '2000']),
      lab.spawn(lab.ext.ns, [process.execPath, CLIENT, '--tcp', '--target', `${lab.nodes.node1.ip}:${NODE_PORT}`, '--hold', '--interval-ms', '50', '--duration-ms', String(DURATION_MS), '--timeout-ms', '2000']),
    ];
    await new Promise((r) => setTimeout(r, 1500));
    await controllers[0]!.kill('SIGTERM');
    controllers[0] = await Controller.start(lab, 'node1', source);
    const logs = controllers[0].logs();
    const migrated = logs.filter((l) => typeof l.msg === 'string' && l.msg.endsWith('entries migrated')).map((l) => `${l['map']}: ${l['copied']}`);
    assert.ok(migrated.some((m) => m.startsWith('kx_ct:')), `conntrack migrated: ${migrated.join(', ')}`);
    assert.ok(migrated.some((m) => m.startsWith('kx_frontends:')), `Service maps migrated: ${migrated.join(', ')}`);

    const summaries = await Promise.all([...steady, ...held].map(async (p) => {
      if (p.exitCode === null && p.signalCode === null) await new Promise((r) => p.once('exit', r));
      const lines = p.output().stdout.trim().split('\n');
      return JSON.parse(lines[lines.length - 1]!) as Summary;
    }));
    for (const [i, s] of summaries.entries()) {
      assert.equal(s.failed, 0, `${['pod -> ClusterIP', 'outside -> NodePort', 'held pod -> ClusterIP', 'held outside -> NodePort'][i]}: ${JSON.stringify(s.errors)} ${JSON.stringify(s.timeline ?? [])}`);
      assert.ok(s.ok > 20, JSON.stringify(s));
    }
    for (const s of summaries.slice(2)) assert.equal(Object.keys(s.byPod).length, 1, `a held connection moved: ${JSON.stringify(s.byPod)}`);
  });
});
