// `kube-xdp trace` in the iptables and nftables modes, on a live lab: node1 runs
// `kube-xdp run --mode iptables`, node2 `--mode nftables`, on the same file source; trace runs
// in each node's network namespace (--mode auto must find the mode), walks the ruleset it reads
// there, and must leave it byte-identical. The root namespace's rules are never read or written.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLab, labUnavailable, type Lab, type NodeName } from './lab.js';
import { CLI, Controller } from './kube-xdp.js';
import { writeSource } from './manifests.js';
import type { RuleTraceReport } from '../../src/trace/report.js';

function unavailableHere(): string | null {
  const lab = labUnavailable();
  if (lab) return lab;
  for (const [bin, pkg] of [['nft', 'nftables'], ['iptables-nft-save', 'iptables'], ['conntrack', 'conntrack']]) {
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
  test('trace-rules lab prerequisites (CI runs this as root)', () => assert.fail(unavailable));
}

const CLUSTER_CIDR = '10.244.0.0/16';
const WEB_IP = '10.96.0.10'; // NodePort 30080, externalTrafficPolicy Cluster
const EMPTY_IP = '10.96.0.13'; // no endpoints
const WEB_NP = 30080;
const MODES: Record<NodeName, 'iptables' | 'nftables'> = { node1: 'iptables', node2: 'nftables' };

describe('kube-xdp trace over iptables and nftables rules in the netns lab', { skip: unavailable ?? false }, () => {
  let lab: Lab;
  let dir: string;
  const controllers: Controller[] = [];
  const texts: string[] = [];

  before(async () => {
    lab = await createLab({ pods: [{ name: 'cl', node: 'node1' }, { name: 'b', node: 'node1' }, { name: 'c', node: 'node2' }] });
    dir = mkdtempSync(join(tmpdir(), 'kx-trace-rules-lab-'));
    const source = join(dir, 'services.json');
    writeSource(source, [
      { name: 'web', clusterIP: WEB_IP, port: 80, targetPort: 8080, type: 'NodePort', nodePort: WEB_NP, endpoints: [lab.pod('b'), lab.pod('c')] },
      { name: 'empty', clusterIP: EMPTY_IP, port: 80, targetPort: 8080, endpoints: [] },
    ]);
    for (const node of ['node1', 'node2'] as const) {
      controllers.push(await Controller.start(lab, node, source, ['--mode', MODES[node], '--cluster-cidr', CLUSTER_CIDR, '--node-ip', lab.nodes[node].ip]));
    }
  });

  after(async () => {
    for (const c of controllers) await c.kill('SIGTERM');
    await lab?.teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (texts.length) console.log(texts.join('\n'));
  });

  /** What trace may not change: the whole ruleset the node's mode reads. */
  const ruleset = async (node: NodeName): Promise<string> => {
    const ns = lab.nodes[node].ns;
    const cmds = MODES[node] === 'iptables'
      ? [['iptables-nft-save', '-t', 'nat'], ['iptables-nft-save', '-t', 'filter'], ['iptables-legacy-save']]
      : [['nft', 'list', 'ruleset']];
    const out: string[] = [];
    for (const c of cmds) out.push((await lab.execNet(ns, c, { check: true, timeoutMs: 30_000 })).stdout.replace(/^# (Generated|Completed) .*\n/gm, ''));
    return out.join('');
  };
  const trace = async (node: NodeName, args: string[], json = true): Promise<RuleTraceReport | string> => {
    const r = await lab.execNet(lab.nodes[node].ns, [process.execPath, CLI, 'trace', ...args, ...(json ? ['-o', 'json'] : [])], { timeoutMs: 30_000 });
    assert.equal(r.code, 0, `trace ${args.join(' ')} on ${node}: ${r.stderr}`);
    return json ? (JSON.parse(r.stdout) as RuleTraceReport) : r.stdout;
  };

  for (const node of ['node1', 'node2'] as const) {
    test(`${node} (${MODES[node]}): ClusterIP, NodePort, no endpoints, non-Service; ruleset unchanged`, async () => {
      const before = await ruleset(node);
      const cl = lab.pod('cl');
      const web = [lab.pod('b'), lab.pod('c')].map((p) => `${p.ip}:8080`).sort();

      const cip = await trace(node, ['--src', cl.ip, '--dst', `${WEB_IP}:80/TCP`, '--from', 'pod']) as RuleTraceReport;
      assert.equal(cip.mode, MODES[node], '--mode auto found the node\'s mode');
      assert.deepEqual([cip.verdict, cip.service, [...cip.candidates].sort(), cip.masquerade], ['ACCEPT', 'default/web:tcp', web, false], JSON.stringify(cip, null, 2));
      assert.ok(cip.chains.length > 2, 'chains traversed are listed');

      const np = await trace(node, ['--src', `${lab.ext.ip}:5555`, '--dst', `${lab.nodes[node].ip}:${WEB_NP}/TCP`, '--from', 'external']) as RuleTraceReport;
      assert.deepEqual([np.verdict, np.service, [...np.candidates].sort(), np.masquerade], ['ACCEPT', 'default/web:tcp', web, true], JSON.stringify(np, null, 2));

      const empty = await trace(node, ['--src', cl.ip, '--dst', `${EMPTY_IP}:80/TCP`, '--from', 'pod']) as RuleTraceReport;
      assert.deepEqual([empty.verdict, empty.service, empty.candidates, empty.masquerade], ['REJECT', 'default/empty:tcp', [], false], JSON.stringify(empty, null, 2));

      const other = await trace(node, ['--src', cl.ip, '--dst', `${lab.ext.ip}:80/TCP`, '--from', 'pod']) as RuleTraceReport;
      assert.deepEqual([other.verdict, other.service, other.candidates, other.masquerade], ['ACCEPT', null, [], false], JSON.stringify(other, null, 2));

      const host = await trace(node, ['--dst', `${WEB_IP}:80/TCP`, '--from', 'host', '--mode', MODES[node]]) as RuleTraceReport;
      assert.deepEqual([host.verdict, host.service, [...host.candidates].sort()], ['ACCEPT', 'default/web:tcp', web], JSON.stringify(host, null, 2));

      for (const a of [['--src', cl.ip, '--dst', `${WEB_IP}:80/TCP`], ['--src', lab.ext.ip, '--dst', `${lab.nodes[node].ip}:${WEB_NP}/TCP`, '--from', 'external']]) {
        texts.push(`$ kube-xdp trace ${a.join(' ')}   # on ${node}\n${await trace(node, a, false) as string}`);
      }
      assert.equal(await ruleset(node), before, 'trace changed the ruleset');
    });
  }

  test('IPVS and unknown modes are refused with a clear message', async () => {
    const r = await lab.execNet(lab.nodes.node1.ns, [process.execPath, CLI, 'trace', '--src', '10.244.0.2', '--dst', `${WEB_IP}:80/TCP`, '--mode', 'ipvs']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /does not support the IPVS mode/);
  });
});
