// The nftables mode with real packets: two nodes, each running `kube-xdp run --mode nftables` in
// its own network namespace on the same file source. nftables tables are per network namespace:
// everything lands in the lab's node namespaces (and one scratch namespace where `render`'s
// output is loaded for comparison); the root namespace's ruleset is never read or written.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLab, labUnavailable, type Lab, type LabPod, type NodeName } from './lab.js';
import { parseKlogLine } from './klog-lines.js';
import { CLI, Controller, type LogLine } from './kube-xdp.js';
import { writeSource, type LabService } from './manifests.js';
import type { Summary } from './client.js';

function unavailableHere(): string | null {
  const lab = labUnavailable();
  if (lab) return lab;
  for (const [bin, pkg] of [['nft', 'nftables'], ['conntrack', 'conntrack']]) {
    try {
      execFileSync(bin!, ['--version'], { stdio: 'ignore' });
    } catch {
      return `${bin} missing (Debian: ${pkg})`;
    }
  }
  return null;
}

const unavailable = unavailableHere();
if (unavailable && process.env.CI === 'true') {
  test('nftables lab prerequisites (CI runs this as root)', () => assert.fail(unavailable));
}

const CLUSTER_CIDR = '10.244.0.0/16';
const WEB_IP = '10.96.0.10'; // NodePort 30080, externalTrafficPolicy Cluster
const LOCAL_IP = '10.96.0.11'; // NodePort 30081, externalTrafficPolicy Local, one endpoint on node1
const HAIRPIN_IP = '10.96.0.12'; // ClusterIP whose only endpoint is pod h
const EMPTY_IP = '10.96.0.13'; // NodePort 30083, no endpoints
const LATE_IP = '10.96.0.20'; // added during the test whose transaction the kernel rejects
const WEB_NP = 30080;
const LOCAL_NP = 30081;
const EMPTY_NP = 30083;

const addrs = (m: Record<string, number>): string[] => [...new Set(Object.keys(m).map((k) => k.split(':')[0]!))].sort();
const share = (s: Summary, pod: string): number => (s.byPod[pod] ?? 0) / s.ok;

// ---- comparing two tables as the kernel holds them ------------------------------------------
// `nft -j list table` is the kernel's own view, so a table loaded from `render`'s text and one
// built by the controller's transactions (full, then partial ones) print the same JSON when
// their contents are equal — except for handles (allocation order) and the order of set and
// map elements (hash order). Those two are normalised; rule order within a chain is kept.

interface TableView { chains: Record<string, { def: string; rules: string[] }>; sets: Record<string, { def: string; elements: string[] }> }

function tableView(json: string): TableView {
  const view: TableView = { chains: {}, sets: {} };
  const items = (JSON.parse(json) as { nftables: Record<string, Record<string, unknown>>[] }).nftables;
  const strip = (o: Record<string, unknown>, ...drop: string[]) => JSON.stringify(Object.fromEntries(Object.entries(o).filter(([k]) => !['handle', ...drop].includes(k))));
  for (const item of items) {
    const [kind, o] = Object.entries(item)[0]!;
    if (kind === 'chain') view.chains[o['name'] as string] = { def: strip(o), rules: [] };
    if (kind === 'set' || kind === 'map') {
      view.sets[o['name'] as string] = { def: `${kind} ${strip(o, 'elem')}`, elements: ((o['elem'] as unknown[] | undefined) ?? []).map((e) => JSON.stringify(e)).sort() };
    }
  }
  for (const item of items) if (item['rule']) view.chains[item['rule']['chain'] as string]!.rules.push(strip(item['rule']));
  return view;
}

// ---- the test --------------------------------------------------------------------------------

describe('nftables mode in the netns lab', { skip: unavailable ?? false }, () => {
  let lab: Lab;
  let dir: string;
  let source: string;
  const controllers: Controller[] = [];
  const pods = (...names: string[]): LabPod[] => names.map((n) => lab.pod(n));
  const services = (webEndpoints: LabPod[], extra: LabService[] = []): LabService[] => [
    { name: 'web', clusterIP: WEB_IP, port: 80, targetPort: 8080, type: 'NodePort', nodePort: WEB_NP, endpoints: webEndpoints },
    { name: 'local', clusterIP: LOCAL_IP, port: 80, targetPort: 8080, type: 'NodePort', nodePort: LOCAL_NP, externalTrafficPolicy: 'Local', endpoints: pods('b') },
    { name: 'hairpin', clusterIP: HAIRPIN_IP, port: 80, targetPort: 8080, endpoints: pods('h') },
    { name: 'empty', clusterIP: EMPTY_IP, port: 80, targetPort: 8080, type: 'NodePort', nodePort: EMPTY_NP, endpoints: [] },
    ...extra,
  ];
  const flags = (node: NodeName): string[] => ['--mode', 'nftables', '--cluster-cidr', CLUSTER_CIDR, '--node-ip', lab.nodes[node].ip];
  const listTable = async (ns: string): Promise<string> =>
    (await lab.execNet(ns, ['nft', '-j', 'list', 'table', 'ip', 'kube-proxy'], { check: true, timeoutMs: 30_000 })).stdout;

  /** `kube-xdp render` for the current source with the node's flags, loaded into a scratch
   *  namespace, beside the node's live table. */
  const renderedVsApplied = async (node: NodeName): Promise<{ text: string; rendered: TableView; applied: TableView }> => {
    const r = await lab.execNet(lab.nodes[node].ns, [process.execPath, CLI, 'render', ...flags(node), '--source', source, '--node-name', node],
      { check: true, timeoutMs: 30_000 });
    const scratch = `${lab.prefix}nftr`;
    execFileSync('ip', ['netns', 'add', scratch]);
    try {
      execFileSync('ip', ['netns', 'exec', scratch, 'nft', '-f', '-'], { input: r.stdout });
      const rendered = tableView(execFileSync('ip', ['netns', 'exec', scratch, 'nft', '-j', 'list', 'table', 'ip', 'kube-proxy'], { encoding: 'utf8' }));
      return { text: r.stdout, rendered, applied: tableView(await listTable(lab.nodes[node].ns)) };
    } finally {
      execFileSync('ip', ['netns', 'del', scratch]);
    }
  };
  /** Equal, but for chains the controller flushed and will delete in a later sync (kube-proxy
   *  deletes a stale chain over a second after the map element naming it is gone): those must
   *  be empty service chains (their names have a "/"). */
  const assertAppliedEqualsRender = async (node: NodeName, when: string, staleAllowed: boolean): Promise<string[]> => {
    const v = await renderedVsApplied(node);
    assert.match(v.text, /^# IPv4:\nadd table ip kube-proxy \{ comment "rules for kube-proxy" ; \}\n/, v.text.slice(0, 200));
    assert.ok(Object.keys(v.rendered.chains).filter((c) => c.startsWith('endpoint-')).length >= 6, `${node}: render has too few endpoint chains:\n${v.text}`);
    const stale = Object.keys(v.applied.chains).filter((c) => !(c in v.rendered.chains));
    for (const c of stale) assert.ok(c.includes('/') && v.applied.chains[c]!.rules.length === 0, `${node} (${when}): chain ${c} is not in render and not a flushed service chain`);
    if (!staleAllowed) assert.deepEqual(stale, [], `${node} (${when}): stale chains were not deleted`);
    for (const c of stale) delete v.applied.chains[c];
    assert.deepEqual(v.applied, v.rendered, `${node} (${when}): the kernel's table differs from render`);
    return stale;
  };

  before(async () => {
    lab = await createLab({
      pods: [
        { name: 'cl', node: 'node1' }, { name: 'b', node: 'node1' }, { name: 'e', node: 'node1' },
        { name: 'c', node: 'node2' }, { name: 'd', node: 'node2' }, { name: 'h', node: 'node2' },
      ],
    });
    // As in the iptables lab: a default route, so a packet to a Service IP nothing DNATs is
    // forwarded and filter-forward can reject it (the gateway, the external host, forwards nothing).
    for (const n of Object.values(lab.nodes)) {
      await lab.exec(n.ns, ['ip', 'route', 'add', 'default', 'via', lab.ext.ip, 'dev', n.extIf], { check: true });
    }
    dir = mkdtempSync(join(tmpdir(), 'kx-nftables-lab-'));
    source = join(dir, 'services.json');
    writeSource(source, services(pods('b', 'c', 'd')));
    for (const node of ['node1', 'node2'] as const) controllers.push(await Controller.start(lab, node, source, flags(node)));
  });

  after(async () => {
    for (const c of controllers) await c.kill('SIGTERM');
    await lab?.teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('both controllers run the nftables mode and programmed the source in one full transaction', () => {
    for (const c of controllers) {
      assert.ok(c.logs().some((l) => l.msg === 'starting kube-xdp (nftables mode)'), `${c.node}: no nftables-mode start line`);
      const first = c.syncs()[0]!;
      const d = first.IPv4 as { partial: boolean; ops: number; chains: number } | undefined;
      assert.ok(d && d.partial === false && d.ops > 50 && d.chains >= 10, `${c.node}: ${JSON.stringify(first)}`);
    }
  });

  test('what the controllers applied equals `kube-xdp render` for the same source (both nodes)', async () => {
    for (const node of ['node1', 'node2'] as const) await assertAppliedEqualsRender(node, 'initial', false);
  });

  test('kube-xdp inspect reads the live table: every Service port named, its frontends and backends', async () => {
    const r = await lab.execNet(lab.nodes.node1.ns, [process.execPath, CLI, 'inspect', '-o', 'json', '--bpf-pin-dir', lab.pinDir('node1')], { check: true, timeoutMs: 30_000 });
    const v = JSON.parse(r.stdout) as { mode: string; services: { service: string; portName: string; protocol: string; type: string; frontends: { kind: string; address: string; port: number; flags: string[] }[]; backends: { address: string; port: number }[] }[] };
    assert.equal(v.mode, 'nftables', 'auto-detected from the kube-proxy table');
    const of = (name: string, proto: string) => v.services.find((s) => s.service === `default/${name}` && s.protocol === proto);
    const web = of('web', 'TCP');
    assert.ok(web, JSON.stringify(v.services.map((s) => s.service)));
    assert.equal(web.type, 'NodePort');
    assert.deepEqual(web.frontends.map((f) => `${f.kind} ${f.address}:${f.port}`).sort(), [`ClusterIP ${WEB_IP}:80`, `NodePort ${lab.nodes.node1.ip}:${WEB_NP}`]);
    assert.deepEqual(web.backends.map((b) => b.address).sort(), pods('b', 'c', 'd').map((p) => p.ip).sort());
    assert.deepEqual(of('empty', 'TCP')?.frontends.map((f) => `${f.kind} ${f.flags.join(',')}`).sort(), ['ClusterIP reject', 'NodePort reject']);
    assert.deepEqual(of('hairpin', 'TCP')?.backends.map((b) => b.address), [lab.pod('h').ip]);
  });

  test('ClusterIP from a pod: TCP and UDP reach all 3 backends, unmasqueraded; replies come from the ClusterIP', async () => {
    const cl = lab.pod('cl');
    for (const proto of ['tcp', 'udp'] as const) {
      const s = await lab.client(cl.ns, { proto, target: `${WEB_IP}:80`, count: 300, concurrency: 10 });
      assert.equal(s.ok, 300, `${proto}: ${JSON.stringify(s.errors)}`);
      for (const p of ['b', 'c', 'd']) assert.ok(share(s, p) >= 0.15, `${proto} ${p}: ${JSON.stringify(s.byPod)}`);
      assert.deepEqual(Object.keys(s.replyPeers), [`${WEB_IP}:80`], proto);
      // the source is in the cluster CIDR: the service chain's `ip saddr != 10.244.0.0/16 jump mark-for-masquerade` skips it
      assert.deepEqual(addrs(s.seenPeers), [cl.ip], proto);
    }
  });

  test('NodePort (externalTrafficPolicy Cluster) from outside: local and remote backends, all see the node address', async () => {
    for (const node of ['node1', 'node2'] as const) {
      const n = lab.nodes[node];
      for (const proto of ['tcp', 'udp'] as const) {
        const s = await lab.client(lab.ext.ns, { proto, target: `${n.ip}:${WEB_NP}`, count: 90, concurrency: 6 });
        assert.equal(s.ok, 90, `${node} ${proto}: ${JSON.stringify(s.errors)}`);
        assert.deepEqual(Object.keys(s.replyPeers), [`${n.ip}:${WEB_NP}`], `${node} ${proto}`);
        const local = node === 'node1' ? ['b'] : ['c', 'd'];
        const remote = node === 'node1' ? ['c', 'd'] : ['b'];
        const sum = (ps: string[]) => ps.reduce((a, p) => a + (s.byPod[p] ?? 0), 0);
        assert.ok(sum(local) > 0 && sum(remote) > 0, `${node} ${proto}: ${JSON.stringify(s.byPod)}`);
        // external-…'s `jump mark-for-masquerade`, then masquerading's `masquerade fully-random`
        assert.deepEqual(addrs(s.seenPeers), [n.ip], `${node} ${proto}: ${JSON.stringify(addrs(s.seenPeers))}`);
      }
    }
  });

  test('hairpin: the only endpoint of a Service reaches its own ClusterIP and sees a masqueraded source', async () => {
    const h = lab.pod('h');
    for (const proto of ['tcp', 'udp'] as const) {
      const s = await lab.client(h.ns, { proto, target: `${HAIRPIN_IP}:80`, count: 20, concurrency: 2 });
      assert.equal(s.ok, 20, `${proto}: ${JSON.stringify(s.errors)}`);
      assert.deepEqual(s.byPod, { h: 20 }, proto);
      assert.deepEqual(Object.keys(s.replyPeers), [`${HAIRPIN_IP}:80`], proto);
      // endpoint-…'s `ip saddr <pod> jump mark-for-masquerade`
      assert.deepEqual(addrs(s.seenPeers), [lab.nodes.node2.ip], proto);
    }
  });

  test('externalTrafficPolicy Local: the client address survives via the endpoint\'s node; the other node drops', async () => {
    const [n1, n2] = [lab.nodes.node1, lab.nodes.node2];
    for (const proto of ['tcp', 'udp'] as const) {
      const s = await lab.client(lab.ext.ns, { proto, target: `${n1.ip}:${LOCAL_NP}`, count: 20, concurrency: 2 });
      assert.equal(s.ok, 20, `${proto}: ${JSON.stringify(s.errors)}`);
      assert.deepEqual(s.byPod, { b: 20 }, proto);
      assert.deepEqual(addrs(s.seenPeers), [lab.ext.ip], `${proto}: the backend must see the real client`);
    }
    // node2 has no local endpoint: no-endpoint-nodeports maps the port to `drop` (a REJECT or
    // no rule at all would show as ECONNREFUSED: only silence is right).
    for (const proto of ['tcp', 'udp'] as const) {
      const s = await lab.client(lab.ext.ns, { proto, target: `${n2.ip}:${LOCAL_NP}`, count: 3, concurrency: 3, timeoutMs: 700 });
      assert.deepEqual([s.ok, s.errors], [0, { ETIMEDOUT: 3 }], `${proto} via node2: ${JSON.stringify(s)}`);
    }
  });

  test('a Service without endpoints is rejected at once (ECONNREFUSED, not a timeout), ClusterIP and NodePort', async (t) => {
    const cases: [string, string, string][] = [
      ['pod -> ClusterIP', lab.pod('cl').ns, `${EMPTY_IP}:80`],
      ['outside -> node1 NodePort', lab.ext.ns, `${lab.nodes.node1.ip}:${EMPTY_NP}`],
      ['outside -> node2 NodePort', lab.ext.ns, `${lab.nodes.node2.ip}:${EMPTY_NP}`],
    ];
    for (const [what, ns, target] of cases) {
      const s = await lab.client(ns, { proto: 'tcp', target, count: 5, timeoutMs: 4000 });
      assert.deepEqual([s.ok, s.errors], [0, { ECONNREFUSED: 5 }], `${what}: ${JSON.stringify(s)}`);
      t.diagnostic(`${what}: 5 sequential connects refused in ${s.durationMs} ms`);
    }
    // cluster-ips-check: a port the ClusterIP does not serve is rejected too
    const s = await lab.client(lab.pod('cl').ns, { proto: 'tcp', target: `${WEB_IP}:81`, count: 2, timeoutMs: 4000 });
    assert.deepEqual([s.ok, s.errors], [0, { ECONNREFUSED: 2 }], `ClusterIP, unserved port: ${JSON.stringify(s)}`);
  });

  test('scale 3 -> 1 -> 4: partial syncs, only current endpoints; stale UDP conntrack removed; stale chains deleted later; kernel = render', async (t) => {
    const cl = lab.pod('cl');
    const report: string[] = [];
    const change = async (label: string, eps: LabPod[]): Promise<LogLine[]> => {
      const marks = controllers.map((c) => c.logs().length);
      const t0 = Date.now();
      writeSource(source, services(eps));
      const lines: LogLine[] = await Promise.all(controllers.map((c, i) =>
        c.waitFor((l) => l.msg === 'synced' && l.sinceChangeMs !== null, 20_000, marks[i])));
      report.push(`${label}: ` + lines.map((l, i) => {
        const d = l.IPv4 as Record<string, unknown>;
        return `${controllers[i]!.node} write->synced ${l.time - t0} ms (sync ${String(l.durationMs)} ms, ${JSON.stringify(d)})`;
      }).join('; '));
      return lines;
    };
    const onlyTo = (s: Summary, n: number, eps: string[], what: string) => {
      assert.equal(s.ok, n, `${what}: ${JSON.stringify(s.errors)}`);
      for (const p of Object.keys(s.byPod)) assert.ok(eps.includes(p), `${what}: ${p} is no endpoint any more: ${JSON.stringify(s.byPod)}`);
    };
    const udpEntries = async (): Promise<string[]> => {
      const r = await lab.execNet(lab.nodes.node1.ns, ['conntrack', '-L', '-p', 'udp', '--orig-dst', WEB_IP], { timeoutMs: 30_000 });
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.split('\n').flatMap((l) => [...l.matchAll(/src=(\S+)/g)].slice(1, 2).map((m) => m[1]!));
    };
    const udpBefore = await lab.client(cl.ns, { proto: 'udp', target: `${WEB_IP}:80`, count: 60, concurrency: 6 });
    assert.equal(udpBefore.ok, 60, JSON.stringify(udpBefore.errors));
    const entriesBefore = new Set(await udpEntries());
    for (const p of pods('b', 'c', 'd')) assert.ok(entriesBefore.has(p.ip), `no UDP conntrack entry to ${p.name} before the change: ${[...entriesBefore].join(' ')}`);

    const marks = controllers.map((c) => c.logs().length);
    for (const l of await change('3 -> 1', pods('c'))) assert.equal((l.IPv4 as { partial: boolean }).partial, true, JSON.stringify(l));
    assert.deepEqual((await udpEntries()).filter((ip) => ip !== lab.pod('c').ip), [], 'UDP conntrack entries to removed endpoints survived the sync');
    onlyTo(await lab.client(cl.ns, { proto: 'tcp', target: `${WEB_IP}:80`, count: 60, concurrency: 6 }), 60, ['c'], '1 endpoint, ClusterIP tcp');
    onlyTo(await lab.client(cl.ns, { proto: 'udp', target: `${WEB_IP}:80`, count: 30, concurrency: 3 }), 30, ['c'], '1 endpoint, ClusterIP udp');
    for (const n of Object.values(lab.nodes)) {
      onlyTo(await lab.client(lab.ext.ns, { proto: 'tcp', target: `${n.ip}:${WEB_NP}`, count: 20, concurrency: 2 }), 20, ['c'], `1 endpoint, NodePort via ${n.name}`);
    }
    // The removed endpoints' chains are flushed now, deleted by a sync over a second later.
    for (const node of ['node1', 'node2'] as const) {
      const stale = await assertAppliedEqualsRender(node, 'after 3 -> 1', true);
      // two removed endpoints × the tcp and udp ports of web
      assert.equal(stale.filter((c) => c.startsWith('endpoint-')).length, 4, `${node}: the removed endpoints' chains: ${stale.join(' ')}`);
    }

    await new Promise((r) => setTimeout(r, 1200));
    await change('1 -> 4', pods('b', 'c', 'd', 'e'));
    controllers.forEach((c, i) => {
      // by this sync, or a periodic one between the two changes
      const deleted = c.logs().slice(marks[i]).filter((l) => l.msg === 'synced').reduce((n, l) => n + ((l.IPv4 as { staleDeleted?: number }).staleDeleted ?? 0), 0);
      assert.equal(deleted, 4, `${c.node}: stale chains deleted since 3 -> 1`);
    });
    const four = await lab.client(cl.ns, { proto: 'tcp', target: `${WEB_IP}:80`, count: 200, concurrency: 10 });
    onlyTo(four, 200, ['b', 'c', 'd', 'e'], '4 endpoints, ClusterIP tcp');
    for (const p of ['b', 'c', 'd', 'e']) assert.ok((four.byPod[p] ?? 0) > 0, `${p} gets nothing: ${JSON.stringify(four.byPod)}`);
    const fourUdp = await lab.client(cl.ns, { proto: 'udp', target: `${WEB_IP}:80`, count: 200, concurrency: 10 });
    onlyTo(fourUdp, 200, ['b', 'c', 'd', 'e'], '4 endpoints, ClusterIP udp');
    for (const node of ['node1', 'node2'] as const) await assertAppliedEqualsRender(node, 'after 1 -> 4', false);

    for (const r of report) t.diagnostic(`programming time ${r}`);
  });

  test('a transaction the kernel rejects fails the sync with nft\'s message, keeps the ruleset, and the retry is a full sync', async () => {
    // Another writer put an element for the next Service's address in service-ips with another
    // verdict: kube-proxy's `add element` of the same key with a different value is refused
    // (EEXIST), and with it the whole transaction.
    const n1 = lab.nodes.node1;
    const c1 = controllers[0]!;
    await lab.execNet(n1.ns, ['nft', 'add', 'element', 'ip', 'kube-proxy', 'service-ips', `{ ${LATE_IP} . tcp . 80 : drop }`], { check: true });
    const mark = c1.logs().length;
    writeSource(source, services(pods('b', 'c', 'd', 'e'), [{ name: 'late', clusterIP: LATE_IP, port: 80, targetPort: 8080, endpoints: pods('e') }]));
    const failed = await c1.waitFor((l) => l.msg.startsWith('sync failed'), 20_000, mark);
    assert.match(JSON.stringify(failed), /nft -f - failed \(exit 1\).*File exists/, JSON.stringify(failed));
    const retried = await c1.waitFor((l) => l.msg === 'synced', 20_000, mark);
    const d = retried.IPv4 as { partial: boolean };
    assert.equal(d.partial, false, `the sync after a failure is a full one: ${JSON.stringify(retried)}`);
    // (That the rejected transaction changed nothing is the kernel's atomicity: next test.)
    const s = await lab.client(lab.pod('cl').ns, { proto: 'tcp', target: `${LATE_IP}:80`, count: 10, concurrency: 2 });
    assert.deepEqual([s.ok, s.byPod], [10, { e: 10 }], `the full sync replaced the foreign element: ${JSON.stringify(s)}`);
    await assertAppliedEqualsRender('node1', 'after the failed sync and its retry', true);
  });

  test('a rejected transaction leaves the table exactly as it was (nft -f is atomic)', async () => {
    const ns = lab.nodes.node2.ns;
    const before = await listTable(ns);
    const bad = 'add chain ip kube-proxy kx-atomicity-probe\nflush chain ip kube-proxy services\nadd rule ip kube-proxy no-such-chain drop\n';
    const r = await lab.execNet(ns, ['nft', '-f', '-'], { input: bad, timeoutMs: 30_000 });
    assert.notEqual(r.code, 0, 'the kernel accepted a rule in a missing chain?');
    assert.deepEqual(tableView(await listTable(ns)), tableView(before));
  });

  test('kube-xdp cleanup removes both kube-proxy tables, and is idempotent', async () => {
    for (const c of controllers) await c.kill('SIGTERM');
    for (const c of controllers) assert.ok(c.logs().some((l) => l.msg.startsWith('stopping')), `${c.node} did not stop cleanly`);
    for (const node of ['node1', 'node2'] as const) {
      const ns = lab.nodes[node].ns;
      const cleanup = () => lab.execNet(ns, [process.execPath, CLI, 'cleanup', '--bpf-pin-dir', lab.pinDir(node), '--pod-interfaces', 'kxv*'], { timeoutMs: 60_000 });
      for (const round of [1, 2]) {
        const r = await cleanup();
        assert.equal(r.code, 0, `${node} cleanup #${round}: ${r.stderr}`);
        const removed = r.stderr.split('\n').flatMap((l) => parseKlogLine(l) ?? []).filter((l) => l.msg === 'removed nftables tables');
        if (round === 1) assert.ok(removed.some((l) => JSON.stringify(l).includes('ip kube-proxy')), `${node} cleanup #1 removed no table: ${r.stderr}`);
        else assert.deepEqual(removed, [], `${node} cleanup #2 found something left: ${r.stderr}`);
        const tables = (await lab.execNet(ns, ['nft', 'list', 'tables'], { check: true })).stdout;
        assert.doesNotMatch(tables, /kube-proxy/, `${node} after cleanup #${round}: ${tables}`);
      }
    }
    const s = await lab.client(lab.pod('cl').ns, { proto: 'tcp', target: `${WEB_IP}:80`, count: 2, timeoutMs: 500 });
    assert.equal(s.ok, 0, JSON.stringify(s));
  });
});
