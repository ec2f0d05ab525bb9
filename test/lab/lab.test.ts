// The lab itself, with plain routing (no kube-xdp dataplane): real packets between namespaces.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createLab, ensureBpffs, labUnavailable, listNetns, sweepLabs, withLab, type Lab } from './lab.js';

// Privileged: under CI a missing privilege must fail (createLab throws), elsewhere it may skip.
const why = labUnavailable();
const skip = why !== null && process.env.CI !== 'true' ? why : false;
const ECHO = fileURLToPath(new URL('./echo-server.js', import.meta.url));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const alive = (pid: number): boolean => {
  try { process.kill(pid, 0); return true; } catch { return false; }
};
const rootLinks = (): string => execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })
  .split('\n').map((l) => l.split(':')[1]?.trim() ?? '').sort().join(' ');
const total = (m: Record<string, number>): number => Object.values(m).reduce((a, b) => a + b, 0);

test('the lab can run here (root, iproute2, nsenter, ethtool)', { skip }, () => {
  assert.equal(why, null);
});

describe('netns lab', { skip }, () => {
  let lab: Lab;
  let linksBefore = '';

  before(async () => {
    linksBefore = rootLinks();
    lab = await createLab({
      pods: [
        { name: 'a', node: 'node1', ports: [8080] }, { name: 'b', node: 'node1', ports: [8080, 9090] },
        { name: 'c', node: 'node2', ports: [8080] }, { name: 'd', node: 'node2', ports: [8080] },
      ],
    });
  });
  after(async () => { await lab?.teardown(); });

  test('topology matches the spec', () => {
    assert.match(lab.id, /^[0-9a-f]{5}$/);
    assert.equal(lab.nodes.node1.ip, '192.168.77.1');
    assert.deepEqual(lab.nodes.node2.pods.map((p) => p.name), ['c', 'd']);
    const [a, b] = [lab.pod('a'), lab.pod('b')];
    assert.deepEqual([a.ip, a.hostIf, b.ip, b.hostIf], ['10.244.1.1', 'kxv1', '10.244.1.2', 'kxv2']);
    const ours = listNetns().filter((n) => n.startsWith(lab.prefix)).sort();
    assert.deepEqual(ours, ['a', 'b', 'c', 'd', 'ext', 'n1', 'n2', 'wire'].map((s) => `kx${lab.id}-${s}`));
    for (const p of lab.pods) assert.ok(alive(p.pid), `echo server of ${p.name} runs`);
  });

  test('whatever sends into a node has tx checksum offload off', async () => {
    const senders: [string, string[]][] = [
      [lab.wire.ns, ['n1', 'n2', 'ext']], [lab.ext.ns, ['eth0']],
      [lab.nodes.node1.ns, ['eth0']], [lab.nodes.node2.ns, ['eth0']],
      ...lab.pods.map((p): [string, string[]] => [p.ns, ['eth0']]),
    ];
    await Promise.all(senders.map(async ([ns, ifs]) => {
      for (const i of ifs) {
        const r = await lab.exec(ns, ['ethtool', '-k', i], { check: true });
        assert.match(r.stdout, /^tx-checksumming: off/m, `${ns} ${i}`);
      }
    }));
  });

  test('nothing was added to the root network namespace', () => {
    assert.equal(rootLinks(), linksBefore);
  });

  test('TCP from a pod on node1 to a pod on node2 keeps the client address', async () => {
    const [a, c] = [lab.pod('a'), lab.pod('c')];
    const s = await lab.client(a.ns, { proto: 'tcp', target: `${c.ip}:8080`, count: 10 });
    assert.deepEqual([s.ok, s.failed, s.byPod], [10, 0, { c: 10 }]);
    assert.deepEqual(s.replyPeers, { [`${c.ip}:8080`]: 10 });
    const seen = Object.keys(s.seenPeers);
    assert.equal(seen.length, 10, 'a new source port per connection');
    for (const p of seen) assert.equal(p.split(':')[0], a.ip, 'no NAT in plain routing');
  });

  test('UDP request/replies: the reply comes from the server pod', async () => {
    const [a, d] = [lab.pod('a'), lab.pod('d')];
    const s = await lab.client(a.ns, { proto: 'udp', target: `${d.ip}:8080`, count: 10, concurrency: 5 });
    assert.deepEqual([s.ok, s.failed, s.byPod], [10, 0, { d: 10 }]);
    assert.deepEqual(s.replyPeers, { [`${d.ip}:8080`]: 10 });
    assert.equal(total(s.seenPeers), 10);
    for (const p of Object.keys(s.seenPeers)) assert.equal(p.split(':')[0], a.ip);
  });

  test('pods on one node reach each other, on every port', async () => {
    const [c, b] = [lab.pod('c'), lab.pod('b')];
    for (const port of [8080, 9090]) {
      const s = await lab.client(c.ns, { proto: 'tcp', target: `${b.ip}:${port}`, count: 3 });
      assert.deepEqual(s.byPod, { b: 3 });
    }
  });

  test('ext reaches node addresses but has no route to pod IPs', async () => {
    const n1 = lab.nodes.node1;
    const srv = lab.spawn(n1.ns, [process.execPath, ECHO, '--name', 'node1', '--port', '9000']);
    await srv.waitFor('ready');
    const s = await lab.client(lab.ext.ns, { proto: 'tcp', target: `${n1.ip}:9000`, count: 10 });
    assert.deepEqual([s.ok, s.byPod], [10, { node1: 10 }]);
    for (const p of Object.keys(s.seenPeers)) assert.equal(p.split(':')[0], lab.ext.ip);
    await srv.stop();
    const off = await lab.client(lab.ext.ns, { proto: 'tcp', target: `${lab.pod('c').ip}:8080`, count: 2, timeoutMs: 500 });
    assert.deepEqual([off.ok, off.errors], [0, { ENETUNREACH: 2 }]);
  });

  test('steady mode records failures once the server goes away', async () => {
    const n2 = lab.nodes.node2;
    const srv = lab.spawn(n2.ns, [process.execPath, ECHO, '--name', 'node2', '--port', '9100']);
    await srv.waitFor('ready');
    const run = lab.client(lab.pod('a').ns, { proto: 'tcp', target: `${n2.ip}:9100`, steady: { intervalMs: 20, durationMs: 1000 } });
    // Stop the server once it has served someone (the client closes first, so its finished
    // connections wait in TIME-WAIT), not after a guessed delay.
    for (let i = 0; i < 100; i++) {
      const ss = await lab.exec(lab.pod('a').ns, ['ss', '-Htn', 'state', 'time-wait', 'dport', '=', ':9100']);
      if (ss.stdout.trim()) break;
      await sleep(50);
    }
    await srv.stop();
    const s = await run;
    assert.ok(s.ok > 0 && s.failed > 0, JSON.stringify(s));
    // A connection still in the backlog when the server dies is reset; later ones are refused.
    assert.ok((s.errors.ECONNREFUSED ?? 0) > 0 && (s.errors.ECONNREFUSED ?? 0) + (s.errors.ECONNRESET ?? 0) === s.failed, JSON.stringify(s.errors));
    assert.equal(s.timeline?.length, s.failed);
    const ts = s.timeline?.map((e) => e.t) ?? [];
    assert.deepEqual(ts, [...ts].sort((x, y) => x - y));
  });

  test('addPod / removePod', async () => {
    const a = lab.pod('a');
    const e = await lab.addPod({ name: 'e', node: 'node2', ports: [7000] });
    assert.equal(e.ip, '10.244.2.3');
    const s = await lab.client(a.ns, { proto: 'tcp', target: `${e.ip}:7000`, count: 2 });
    assert.deepEqual(s.byPod, { e: 2 });
    await lab.removePod('e');
    assert.ok(!listNetns().includes(e.ns));
    assert.ok(!alive(e.pid));
    assert.deepEqual(lab.nodes.node2.pods.map((p) => p.name), ['c', 'd']);
    const gone = await lab.client(a.ns, { proto: 'tcp', target: `${e.ip}:7000`, count: 1, timeoutMs: 500 });
    assert.equal(gone.ok, 0);
    const f = await lab.addPod({ name: 'f', node: 'node2' });
    assert.equal(f.ip, '10.244.2.4', 'a freed IP is not reused at once');
  });

  test('teardown removes namespaces, processes and pin dirs, and is idempotent', async () => {
    ensureBpffs();
    mkdirSync(lab.pinDir('node1'));
    const pids = lab.pods.map((p) => p.pid);
    await lab.teardown();
    assert.deepEqual(listNetns().filter((n) => n.startsWith(lab.prefix)), []);
    assert.ok(!existsSync(lab.pinDir('node1')));
    for (const pid of pids) assert.ok(!alive(pid), `pid ${pid} killed`);
    await lab.teardown();
  });

  test('withLab tears down even when the body throws', async () => {
    let seen: Lab | undefined;
    await assert.rejects(withLab({ pods: [{ name: 'x', node: 'node1' }] }, (l) => {
      seen = l;
      ensureBpffs();
      mkdirSync(l.pinDir('node2'));
      throw new Error('boom');
    }), /boom/);
    assert.ok(seen);
    assert.deepEqual(listNetns().filter((n) => n.startsWith(seen!.prefix)), []);
    assert.ok(!existsSync(seen.pinDir('node2')));
    assert.ok(!alive(seen.pod('x').pid));
  });

  test('sweepLabs removes a stale lab and spares a live one', async () => {
    await withLab({ pods: [] }, (live) => {
      const stale = `kx${(parseInt(live.id, 16) ^ 0xfffff).toString(16).padStart(5, '0')}`; // no marker: owner gone
      execFileSync('ip', ['netns', 'add', `${stale}-wire`]);
      assert.deepEqual(sweepLabs(stale), [`${stale}-wire`]);
      assert.deepEqual(sweepLabs(`kx${live.id}`), []);
      assert.ok(listNetns().includes(live.wire.ns));
    });
  });
});
