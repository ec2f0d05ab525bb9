// The iptables mode with real packets: two nodes, each running `kube-xdp run --mode iptables` in
// its own network namespace on the same file source. Everything kube-xdp writes lands in the
// lab's node namespaces (iptables-nft/legacy tables are per network namespace); the root
// namespace's tables are never read or written.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLab, labUnavailable, type Lab, type LabPod, type NodeName } from './lab.js';
import { parseKlogLine } from './klog-lines.js';
import { CLI, Controller, type LogLine } from './kube-xdp.js';
import { writeSource, type LabService } from './manifests.js';
import type { Summary } from './client.js';

const TOOLS = ['iptables-nft-restore', 'iptables-nft-save', 'iptables-legacy-save', 'conntrack'];
function unavailableHere(): string | null {
  const lab = labUnavailable();
  if (lab) return lab;
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin'];
  const missing = TOOLS.filter((t) => !dirs.some((d) => {
    try { accessSync(`${d}/${t}`, constants.X_OK); return true; } catch { return false; }
  }));
  return missing.length ? `iptables lab tools missing: ${missing.join(', ')} (Debian: iptables conntrack)` : null;
}

const unavailable = unavailableHere();
if (unavailable && process.env.CI === 'true') {
  test('iptables lab prerequisites (CI runs this as root)', () => assert.fail(unavailable));
}

const CLUSTER_CIDR = '10.244.0.0/16';
const WEB_IP = '10.96.0.10'; // NodePort 30080, externalTrafficPolicy Cluster
const LOCAL_IP = '10.96.0.11'; // NodePort 30081, externalTrafficPolicy Local, one endpoint on node1
const HAIRPIN_IP = '10.96.0.12'; // ClusterIP whose only endpoint is pod h
const EMPTY_IP = '10.96.0.13'; // NodePort 30083, no endpoints
const WEB_NP = 30080;
const LOCAL_NP = 30081;
const EMPTY_NP = 30083;

const addrs = (m: Record<string, number>): string[] => [...new Set(Object.keys(m).map((k) => k.split(':')[0]!))].sort();
const share = (s: Summary, pod: string): number => (s.byPod[pod] ?? 0) / s.ok;

// ---- comparing iptables-restore input with iptables-save output ---------------------------
// iptables-save does not print a rule as it was written: it reorders matches (`-d … -p tcp -m
// comment … -m tcp --dport`), adds /32 to addresses, quotes every comment, prints marks without
// padding (0x00004000 → 0x4000), MARK --or-mark/--xor-mark as --set-xmark X/X and X/0x0, the
// statistic probability as the kernel's fixed-point value (0.3333333333 → 0.33333333349) and
// REJECT's default --reject-with. So rules are compared in a canonical form: the chain, then the
// multiset of `[!]option=value` pairs (module loads `-m NAME` dropped: their options name them),
// values normalised as above. Rule order within a chain is kept (it matters: the statistic
// jumps), so a wrong endpoint, target, DNAT destination, probability or order still differs.

function tokenize(line: string): string[] {
  const out: string[] = [];
  const re = /"([^"]*)"|(\S+)/g;
  for (let m = re.exec(line); m; m = re.exec(line)) out.push(m[1] ?? m[2]!);
  return out;
}

const hexNorm = (v: string): string => v.replace(/0x[0-9a-f]+/gi, (h) => `0x${parseInt(h, 16).toString(16)}`);

function canonicalRule(line: string): { chain: string; rule: string } {
  const tok = tokenize(line);
  const items: string[] = [];
  let chain = '';
  let neg = false;
  for (let i = 0; i < tok.length; i++) {
    const t = tok[i]!;
    if (t === '!') { neg = true; continue; }
    if (t === '-A') { chain = tok[++i] ?? ''; continue; }
    if (t === '-m') { i++; continue; }
    if (!t.startsWith('-')) throw new Error(`cannot parse ${JSON.stringify(t)} in: ${line}`);
    let key = t;
    let val = '';
    const next = tok[i + 1];
    if (next !== undefined && next !== '!' && !next.startsWith('-')) { val = next; i++; }
    if ((key === '-s' || key === '-d') && !val.includes('/')) val += '/32';
    if (key === '--probability') val = Number(val).toFixed(6);
    if (key === '--or-mark') { key = '--set-xmark'; val = `${val}/${val}`; }
    if (key === '--xor-mark') { key = '--set-xmark'; val = `${val}/0x0`; }
    val = hexNorm(val);
    if (!(key === '--reject-with' && val === 'icmp-port-unreachable')) items.push(`${neg ? '!' : ''}${key}=${val}`);
    neg = false;
  }
  return { chain, rule: items.sort().join(' ') };
}

/** The KUBE-* rules of one table, per chain, in order, canonical; and the KUBE-* chains declared. */
function kubeTable(text: string, table: 'filter' | 'nat'): { rules: Record<string, string[]>; chains: string[] } {
  const rules: Record<string, string[]> = {};
  const chains = new Set<string>();
  let current = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) current = line.slice(1).trim();
    if (current !== table) continue;
    if (line.startsWith(':KUBE-')) chains.add(line.slice(1, line.indexOf(' ')));
    if (line.startsWith('-A KUBE-')) {
      const { chain, rule } = canonicalRule(line);
      (rules[chain] ??= []).push(rule);
    }
  }
  return { rules: Object.fromEntries(Object.entries(rules).sort(([a], [b]) => a.localeCompare(b))), chains: [...chains].sort() };
}

// ---- the test --------------------------------------------------------------------------------

describe('iptables mode in the netns lab', { skip: unavailable ?? false }, () => {
  let lab: Lab;
  let dir: string;
  let source: string;
  const controllers: Controller[] = [];
  const pods = (...names: string[]): LabPod[] => names.map((n) => lab.pod(n));
  const services = (webEndpoints: LabPod[]): LabService[] => [
    { name: 'web', clusterIP: WEB_IP, port: 80, targetPort: 8080, type: 'NodePort', nodePort: WEB_NP, endpoints: webEndpoints },
    { name: 'local', clusterIP: LOCAL_IP, port: 80, targetPort: 8080, type: 'NodePort', nodePort: LOCAL_NP, externalTrafficPolicy: 'Local', endpoints: pods('b') },
    { name: 'hairpin', clusterIP: HAIRPIN_IP, port: 80, targetPort: 8080, endpoints: pods('h') },
    { name: 'empty', clusterIP: EMPTY_IP, port: 80, targetPort: 8080, type: 'NodePort', nodePort: EMPTY_NP, endpoints: [] },
  ];
  const flags = (node: NodeName): string[] => ['--mode', 'iptables', '--cluster-cidr', CLUSTER_CIDR, '--node-ip', lab.nodes[node].ip];
  const save = async (node: NodeName, bin: 'iptables-nft-save' | 'iptables-legacy-save', table?: string): Promise<string> =>
    (await lab.execNet(lab.nodes[node].ns, [bin, ...(table ? ['-t', table] : [])], { check: true, timeoutMs: 30_000 })).stdout;

  /** `kube-xdp render` for the current source with the node's flags, next to what the node's kernel holds. */
  const renderedVsApplied = async (node: NodeName) => {
    // Run in the node's netns: render reads the iptables version (--random-fully) and
    // nf_conntrack_tcp_be_liberal of the namespace it runs in, as the controller did. It never
    // touches the kernel's tables.
    const r = await lab.execNet(lab.nodes[node].ns, [process.execPath, CLI, 'render', ...flags(node), '--source', source, '--node-name', node],
      { check: true, timeoutMs: 30_000 });
    const [kFilter, kNat] = [await save(node, 'iptables-nft-save', 'filter'), await save(node, 'iptables-nft-save', 'nat')];
    return {
      text: r.stdout,
      rendered: { filter: kubeTable(r.stdout, 'filter'), nat: kubeTable(r.stdout, 'nat') },
      applied: { filter: kubeTable(kFilter, 'filter'), nat: kubeTable(kNat, 'nat') },
      rawNat: kNat,
    };
  };
  const assertAppliedEqualsRender = async (node: NodeName, when: string) => {
    const v = await renderedVsApplied(node);
    assert.ok(Object.keys(v.rendered.nat.rules).filter((c) => c.startsWith('KUBE-SEP-')).length >= 6, `${node}: render has too few KUBE-SEP chains:\n${v.text}`);
    for (const table of ['filter', 'nat'] as const) {
      assert.deepEqual(v.applied[table].rules, v.rendered[table].rules, `${node} ${table} (${when}): kernel KUBE-* rules differ from render`);
      // The kernel also has the canary chain the sync loop watches (not part of a restore input).
      assert.deepEqual(v.applied[table].chains, [...v.rendered[table].chains, 'KUBE-PROXY-CANARY'].sort(),
        `${node} ${table} (${when}): kernel KUBE-* chains differ from render (a stale chain left, or one missing)`);
    }
    return v;
  };

  before(async () => {
    lab = await createLab({
      pods: [
        { name: 'cl', node: 'node1' }, { name: 'b', node: 'node1' }, { name: 'e', node: 'node1' },
        { name: 'c', node: 'node2' }, { name: 'd', node: 'node2' }, { name: 'h', node: 'node2' },
      ],
    });
    // A real node has a default route, so a packet to a Service IP that nothing DNATs (a
    // Service without endpoints) is forwarded, and FORWARD → KUBE-SERVICES can REJECT it. The
    // lab's nodes only route pod CIDRs; without this the node answers "network unreachable"
    // before the filter table is ever consulted. The gateway is the external host, which
    // does not forward: nothing leaves the lab.
    for (const n of Object.values(lab.nodes)) {
      await lab.exec(n.ns, ['ip', 'route', 'add', 'default', 'via', lab.ext.ip, 'dev', n.extIf], { check: true });
    }
    dir = mkdtempSync(join(tmpdir(), 'kx-iptables-lab-'));
    source = join(dir, 'services.json');
    writeSource(source, services(pods('b', 'c', 'd')));
    for (const node of ['node1', 'node2'] as const) controllers.push(await Controller.start(lab, node, source, flags(node)));
  });

  after(async () => {
    for (const c of controllers) await c.kill('SIGTERM');
    await lab?.teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('both controllers run the iptables mode on the nft backend and programmed the source', () => {
    for (const c of controllers) {
      const start = c.logs().find((l) => l.msg === 'starting kube-xdp (iptables mode)');
      assert.ok(start, `${c.node}: no iptables-mode start line`);
      assert.equal(start.backend, 'nft', `${c.node}: ${JSON.stringify(start)}`);
      const first = c.syncs()[0]!;
      assert.ok((first.writes as number) > 0, JSON.stringify(first));
    }
  });

  test('what the controllers applied equals `kube-xdp render` for the same source (both nodes)', async () => {
    for (const node of ['node1', 'node2'] as const) {
      const v = await assertAppliedEqualsRender(node, 'initial');
      // The brief's literal check, on top of the canonical comparison: every KUBE-SVC/KUBE-SEP
      // rule of the render is in the kernel under its chain, with its jump / DNAT target.
      const svcSep = v.text.split('\n').filter((l) => /^-A KUBE-(SVC|SEP)-/.test(l));
      assert.ok(svcSep.length >= 20, `render has ${svcSep.length} KUBE-SVC/SEP rules`);
      for (const l of svcSep) {
        const chain = l.split(' ')[1]!;
        const target = /-j (\S+)(?: --to-destination (\S+))?/.exec(l)!;
        const kernel = v.rawNat.split('\n').filter((k) => k.startsWith(`-A ${chain} `) && k.includes(`-j ${target[1]}`));
        assert.ok(kernel.some((k) => !target[2] || k.includes(`--to-destination ${target[2]}`)), `${node}: not in the kernel: ${l}`);
      }
    }
  });

  test('ClusterIP from a pod: TCP and UDP reach all 3 backends, unmasqueraded; replies come from the ClusterIP', async () => {
    const cl = lab.pod('cl');
    for (const proto of ['tcp', 'udp'] as const) {
      const s = await lab.client(cl.ns, { proto, target: `${WEB_IP}:80`, count: 300, concurrency: 10 });
      assert.equal(s.ok, 300, `${proto}: ${JSON.stringify(s.errors)}`);
      for (const p of ['b', 'c', 'd']) assert.ok(share(s, p) >= 0.15, `${proto} ${p}: ${JSON.stringify(s.byPod)}`);
      assert.deepEqual(Object.keys(s.replyPeers), [`${WEB_IP}:80`], proto);
      // the source is in the cluster CIDR: KUBE-SVC's `! -s 10.244.0.0/16 -j KUBE-MARK-MASQ` skips it
      assert.deepEqual(addrs(s.seenPeers), [cl.ip], proto);
    }
  });

  test('NodePort (externalTrafficPolicy Cluster) from outside: local and remote backends, all see the node address', async () => {
    // kube-proxy semantics: KUBE-EXT-… marks every packet for masquerade when the policy is
    // Cluster, so every backend, on this node or the other, sees the address the node's
    // MASQUERADE picked, never the external client's.
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
        assert.deepEqual(addrs(s.seenPeers), [n.ip], `${node} ${proto}: ${JSON.stringify(s.byPod)} ${JSON.stringify(addrs(s.seenPeers))}`);
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
      // KUBE-SEP's `-s <pod> -j KUBE-MARK-MASQ`: without it the pod would see its own address and
      // its reply would never be un-DNATed. The host side of the pod's veth has no address
      // (Calico-style routed veth), so MASQUERADE takes the node's primary address.
      assert.ok(!addrs(s.seenPeers).includes(h.ip), `${proto}: the backend saw itself: ${JSON.stringify(s.seenPeers)}`);
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
      assert.deepEqual(Object.keys(s.replyPeers), [`${n1.ip}:${LOCAL_NP}`], proto);
    }
    // node2 has no local endpoint: KUBE-EXT-… has no jump for an outside source (no DNAT) and
    // KUBE-EXTERNAL-SERVICES DROPs the NodePort in INPUT. A missing DROP would show as
    // ECONNREFUSED (node2's own RST), a REJECT also as ECONNREFUSED: only silence is right.
    for (const proto of ['tcp', 'udp'] as const) {
      const s = await lab.client(lab.ext.ns, { proto, target: `${n2.ip}:${LOCAL_NP}`, count: 3, concurrency: 3, timeoutMs: 700 });
      assert.deepEqual([s.ok, s.errors], [0, { ETIMEDOUT: 3 }], `${proto} via node2: ${JSON.stringify(s)}`);
    }
  });

  test('a Service without endpoints is rejected at once (ECONNREFUSED, not a timeout), ClusterIP and NodePort', async (t) => {
    // The client's timeout is far above a SYN retransmission (1 s): an ICMP error the kernel
    // rate-limited would still arrive for the retransmission, so only a missing REJECT times out.
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
  });

  test('scale 3 -> 1 -> 4 endpoints: new connections go only to the current endpoints; stale UDP conntrack removed; kernel = render after each step', async (t) => {
    const cl = lab.pod('cl');
    const report: string[] = [];
    const change = async (label: string, eps: LabPod[]): Promise<void> => {
      const marks = controllers.map((c) => c.logs().length);
      const t0 = Date.now();
      writeSource(source, services(eps));
      // A sync caused by a source change carries sinceChangeMs; a periodic one (nothing pending) has null.
      const lines: LogLine[] = await Promise.all(controllers.map((c, i) =>
        c.waitFor((l) => l.msg === 'synced' && l.sinceChangeMs !== null, 20_000, marks[i])));
      report.push(`${label}: ` + lines.map((l, i) => {
        const d = l.IPv4 as { partial?: boolean; deleted?: number; conntrack?: number } | undefined;
        return `${controllers[i]!.node} write->synced ${l.time - t0} ms (sinceChangeMs ${String(l.sinceChangeMs)}, sync ${String(l.durationMs)} ms, partial ${String(d?.partial)}, deleted chains ${String(d?.deleted)}, conntrack deletions ${String(d?.conntrack)})`;
      }).join('; '));
    };
    const onlyTo = (s: Summary, n: number, eps: string[], what: string) => {
      assert.equal(s.ok, n, `${what}: ${JSON.stringify(s.errors)}`);
      for (const p of Object.keys(s.byPod)) assert.ok(eps.includes(p), `${what}: ${p} is no endpoint any more: ${JSON.stringify(s.byPod)}`);
    };

    // UDP flows through node1's DNAT to every backend, just before the scale-down: kube-proxy
    // deletes the conntrack entries of removed UDP endpoints (UDP has no end; a kept entry
    // would send a client's later datagrams of the same flow to the removed pod).
    const udpEntries = async (): Promise<string[]> => {
      const r = await lab.execNet(lab.nodes.node1.ns, ['conntrack', '-L', '-p', 'udp', '--orig-dst', WEB_IP], { timeoutMs: 30_000 });
      assert.equal(r.code, 0, r.stderr);
      // `udp 17 29 src=<client> dst=<ClusterIP> sport dport src=<endpoint> dst=<client> …`: the reply source is the endpoint.
      return r.stdout.split('\n').flatMap((l) => [...l.matchAll(/src=(\S+)/g)].slice(1, 2).map((m) => m[1]!));
    };
    const udpBefore = await lab.client(cl.ns, { proto: 'udp', target: `${WEB_IP}:80`, count: 60, concurrency: 6 });
    assert.equal(udpBefore.ok, 60, JSON.stringify(udpBefore.errors));
    const entriesBefore = new Set(await udpEntries());
    for (const p of pods('b', 'c', 'd')) assert.ok(entriesBefore.has(p.ip), `no UDP conntrack entry to ${p.name} before the change: ${[...entriesBefore].join(' ')}`);

    await change('3 -> 1', pods('c'));
    const stale = (await udpEntries()).filter((ip) => ip !== lab.pod('c').ip);
    assert.deepEqual(stale, [], 'UDP conntrack entries to removed endpoints survived the sync');
    onlyTo(await lab.client(cl.ns, { proto: 'tcp', target: `${WEB_IP}:80`, count: 60, concurrency: 6 }), 60, ['c'], '1 endpoint, ClusterIP tcp');
    onlyTo(await lab.client(cl.ns, { proto: 'udp', target: `${WEB_IP}:80`, count: 30, concurrency: 3 }), 30, ['c'], '1 endpoint, ClusterIP udp');
    for (const n of Object.values(lab.nodes)) {
      onlyTo(await lab.client(lab.ext.ns, { proto: 'tcp', target: `${n.ip}:${WEB_NP}`, count: 20, concurrency: 2 }), 20, ['c'], `1 endpoint, NodePort via ${n.name}`);
    }
    for (const node of ['node1', 'node2'] as const) await assertAppliedEqualsRender(node, 'after 3 -> 1');

    await change('1 -> 4', pods('b', 'c', 'd', 'e'));
    const four = await lab.client(cl.ns, { proto: 'tcp', target: `${WEB_IP}:80`, count: 200, concurrency: 10 });
    onlyTo(four, 200, ['b', 'c', 'd', 'e'], '4 endpoints, ClusterIP tcp');
    for (const p of ['b', 'c', 'd', 'e']) assert.ok((four.byPod[p] ?? 0) > 0, `${p} gets nothing: ${JSON.stringify(four.byPod)}`);
    const fourUdp = await lab.client(cl.ns, { proto: 'udp', target: `${WEB_IP}:80`, count: 200, concurrency: 10 });
    onlyTo(fourUdp, 200, ['b', 'c', 'd', 'e'], '4 endpoints, ClusterIP udp');
    for (const p of ['b', 'c', 'd', 'e']) assert.ok((fourUdp.byPod[p] ?? 0) > 0, `udp ${p} gets nothing: ${JSON.stringify(fourUdp.byPod)}`);
    for (const n of Object.values(lab.nodes)) {
      onlyTo(await lab.client(lab.ext.ns, { proto: 'tcp', target: `${n.ip}:${WEB_NP}`, count: 40, concurrency: 4 }), 40, ['b', 'c', 'd', 'e'], `4 endpoints, NodePort via ${n.name}`);
    }
    for (const node of ['node1', 'node2'] as const) await assertAppliedEqualsRender(node, 'after 1 -> 4');

    for (const r of report) t.diagnostic(`programming time ${r}`);
    process.stderr.write(`# iptables programming time (file write -> synced on each node):\n${report.map((r) => `#   ${r}`).join('\n')}\n`);
  });

  test('kube-xdp cleanup removes every KUBE-* chain and rule of both backends, and is idempotent', async () => {
    // The controllers leave the dataplane programmed on exit (and would restore it while running).
    for (const c of controllers) await c.kill('SIGTERM');
    for (const c of controllers) assert.ok(c.logs().some((l) => l.msg.startsWith('stopping')), `${c.node} did not stop cleanly`);
    for (const node of ['node1', 'node2'] as const) {
      const ns = lab.nodes[node].ns;
      assert.match(await save(node, 'iptables-nft-save'), /KUBE-SVC-/, `${node}: nothing to clean up?`);
      const cleanup = () => lab.execNet(ns, [process.execPath, CLI, 'cleanup', '--bpf-pin-dir', lab.pinDir(node), '--pod-interfaces', 'kxv*'], { timeoutMs: 60_000 });
      for (const round of [1, 2]) {
        const r = await cleanup();
        assert.equal(r.code, 0, `${node} cleanup #${round}: ${r.stderr}`);
        // its log is klog text, as kube-proxy's --cleanup prints
        const removed = r.stderr.split('\n').flatMap((l) => parseKlogLine(l) ?? []).filter((l) => l.msg === 'removed iptables chains');
        if (round === 1) assert.ok(removed.some((l) => l['backend'] === 'nft'), `${node} cleanup #1 removed nothing from nft: ${r.stderr}`);
        else assert.deepEqual(removed, [], `${node} cleanup #2 found something left: ${r.stderr}`);
        for (const bin of ['iptables-nft-save', 'iptables-legacy-save'] as const) {
          const left = (await save(node, bin)).split('\n').filter((l) => l.includes('KUBE-'));
          assert.deepEqual(left, [], `${node} ${bin} after cleanup #${round}`);
        }
      }
    }
    // Real packets agree: the ClusterIP is not served any more (nothing DNATs; the default route's
    // gateway does not forward).
    const s = await lab.client(lab.pod('cl').ns, { proto: 'tcp', target: `${WEB_IP}:80`, count: 2, timeoutMs: 500 });
    assert.equal(s.ok, 0, JSON.stringify(s));
  });
});
