// Mode choice on this host's kernel, which has no IP_VS: `--mode ipvs` fails at start naming the
// module, and `--mode auto` runs another mode and says why not eBPF. Each run is confined to a
// network namespace of its own (auto ends up programming nftables there).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { CLI } from './kube-xdp.js';
import type { LabPod } from './lab.js';
import { serviceObjects } from './manifests.js';

const root = process.getuid?.() === 0;
const skip = !root && process.env.CI !== 'true' ? 'needs root (network namespaces)' : false;
const ns = `kx-modes-${process.pid}`;
const dir = mkdtempSync(join(tmpdir(), 'kx-modes-'));
const objects = join(dir, 'objects.json');

function inNs(args: string[], timeoutMs = 20_000) {
  return spawnSync('ip', ['netns', 'exec', ns, process.execPath, CLI, ...args], { encoding: 'utf8', timeout: timeoutMs });
}

describe('mode choice on a kernel without IP_VS', { skip }, () => {
  before(() => {
    assert.ok(root, 'must run as root');
    assert.equal(spawnSync('ip', ['netns', 'add', ns]).status, 0);
    spawnSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    const pod: LabPod = { name: 'a', ns: 'unused', node: 'node1', ip: '10.244.1.2', hostIf: 'unused', ports: [8080], pid: 0 };
    writeFileSync(objects, JSON.stringify({ kind: 'List', apiVersion: 'v1', items: serviceObjects({ name: 'web', clusterIP: '10.96.0.10', port: 80, targetPort: 8080, protocols: ['TCP'], endpoints: [pod] }) }));
  });
  after(() => {
    spawnSync('ip', ['netns', 'del', ns]);
    rmSync(dir, { recursive: true, force: true });
  });

  const common = ['--source', `file:${objects}`, '--node-name', 'node1', '--metrics-bind-address', '', '--healthz-bind-address', ''];

  it('the host really has no IP_VS (else this test proves nothing)', () => {
    assert.equal(spawnSync('test', ['-e', '/proc/net/ip_vs']).status, 1);
  });

  it('run --mode ipvs exits at start with an error naming ip_vs, and writes nothing', () => {
    const r = inNs(['run', '--mode', 'ipvs', ...common]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /--mode ipvs cannot run on this node: missing kernel modules: ip_vs: not loaded, not built in/);
    assert.match(r.stderr, /ip_vs_rr: not loaded/);
    const nat = spawnSync('ip', ['netns', 'exec', ns, 'iptables-save', '-t', 'nat'], { encoding: 'utf8' }).stdout;
    assert.doesNotMatch(nat, /KUBE-/);
    assert.equal(spawnSync('ip', ['-n', ns, 'link', 'show', 'kube-ipvs0']).status, 1, 'no kube-ipvs0 created');
  });

  it('run --mode auto passes eBPF by with the reason and runs the nftables mode (before IPVS and iptables)', async () => {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, CLI, 'run', '--mode', 'auto', '--logging-format', 'json', ...common], { stdio: ['ignore', 'ignore', 'pipe'] });
    const lines: Record<string, unknown>[] = [];
    let buf = '';
    const synced = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no sync within 20 s:\n${JSON.stringify(lines)}\n${buf}`)), 20_000);
      child.stderr.on('data', (d: Buffer) => { // pino logs to stderr
        buf += d.toString();
        for (const l of buf.split('\n').slice(0, -1)) lines.push(JSON.parse(l) as Record<string, unknown>);
        buf = buf.slice(buf.lastIndexOf('\n') + 1);
        if (lines.some((l) => l['msg'] === 'synced')) { clearTimeout(timer); resolve(); }
      });
      child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`exited ${code}: ${buf}`)); });
    });
    try {
      await synced;
    } finally {
      const exited = child.exitCode === null ? once(child, 'exit') : Promise.resolve();
      child.kill('SIGTERM');
      await exited;
    }
    const chose = lines.find((l) => typeof l['msg'] === 'string' && (l['msg'] as string).startsWith('--mode auto chose'));
    assert.ok(chose, 'the choice is logged');
    assert.equal(chose['mode'], 'nftables');
    assert.deepEqual(chose['checks'], { ebpf: 'no --external-interfaces given', nftables: 'usable' }, 'IPVS and iptables are not even tried');
    assert.ok(lines.some((l) => l['msg'] === 'starting kube-xdp (nftables mode)'));
    const table = spawnSync('ip', ['netns', 'exec', ns, 'nft', 'list', 'map', 'ip', 'kube-proxy', 'service-ips'], { encoding: 'utf8' }).stdout;
    assert.match(table, /10\.96\.0\.10 \. tcp \. 80 : goto service-/, `the nftables mode programmed the service:\n${table}`);
  });
});
