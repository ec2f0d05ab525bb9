// `kube-xdp inspect` on lab nodes: node1 runs the eBPF mode, node2 the iptables mode (legacy
// backend, in node2's netns only), on the same file source; inspect runs in each node's netns
// (nsenter --net, as the DaemonSet's `kubectl exec` would) and names every Service port. 1,500
// extra Services make the table larger than a pipe's buffer, so `inspect | head -1` really
// meets a closed pipe.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLab, ensureBpffs, labUnavailable, type Lab, type NodeName } from './lab.js';
import { CLI, Controller } from './kube-xdp.js';
import { writeSource, type LabService } from './manifests.js';
import type { InspectView } from '../../src/inspect/view.js';

const unavailable = labUnavailable();
if (unavailable && process.env.CI === 'true') {
  test('inspect lab prerequisites (CI runs this as root)', () => assert.fail(unavailable));
}

const WEB_IP = '10.96.0.10', STICKY_IP = '10.96.0.30', EMPTY_IP = '10.96.0.20';
const BULK = 1500;
const PIPE_BUFFER = 65_536;

describe('kube-xdp inspect in the netns lab (eBPF on node1, iptables on node2)', { skip: unavailable ?? false }, () => {
  let lab: Lab;
  let dir: string;
  const controllers: Controller[] = [];

  const inspect = async (node: NodeName, args: string[] = []) => {
    return lab.execNet(lab.nodes[node].ns, [process.execPath, CLI, 'inspect', '--bpf-pin-dir', lab.pinDir(node), ...args], { timeoutMs: 60_000 });
  };
  const view = async (node: NodeName): Promise<InspectView> => {
    const r = await inspect(node, ['-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as InspectView;
  };
  const service = (v: InspectView, name: string) => {
    const s = v.services.find((x) => x.service === name && x.protocol === 'TCP');
    assert.ok(s, `${name} not in ${v.services.slice(0, 5).map((x) => x.service).join(', ')}`);
    return s;
  };

  before(async () => {
    ensureBpffs();
    lab = await createLab({ pods: [{ name: 'b', node: 'node1' }, { name: 'c', node: 'node2' }] });
    dir = mkdtempSync(join(tmpdir(), 'kx-inspect-lab-'));
    const source = join(dir, 'services.json');
    const [b, c] = [lab.pod('b'), lab.pod('c')];
    const services: LabService[] = [
      { name: 'web', clusterIP: WEB_IP, port: 80, targetPort: 8080, type: 'NodePort', nodePort: 30080, protocols: ['TCP'], endpoints: [b, c] },
      { name: 'sticky', clusterIP: STICKY_IP, port: 80, targetPort: 8080, protocols: ['TCP'], affinityTimeoutS: 600, endpoints: [b, c] },
      { name: 'empty', clusterIP: EMPTY_IP, port: 80, targetPort: 8080, protocols: ['TCP'], endpoints: [] },
      ...Array.from({ length: BULK }, (_, i): LabService => ({
        name: `bulk-${i}`, clusterIP: `10.97.${Math.floor(i / 250)}.${(i % 250) + 1}`, port: 80, targetPort: 8080, protocols: ['TCP'], endpoints: [],
      })),
    ];
    writeSource(source, services);
    controllers.push(await Controller.start(lab, 'node1', source));
    controllers.push(await Controller.start(lab, 'node2', source, [
      '--mode', 'iptables', '--iptables-backend', 'legacy', '--cluster-cidr', '10.244.0.0/16', '--node-ip', lab.nodes.node2.ip,
    ]));
  });

  after(async () => {
    for (const c of controllers) await c.kill('SIGTERM');
    await lab?.teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('eBPF (auto-detected from the pins): Service names, type, frontends with scope, backends with local, affinity, counters', async () => {
    const v = await view('node1');
    assert.equal(v.mode, 'ebpf');
    const web = service(v, 'default/web');
    assert.equal(web.portName, 'tcp');
    assert.equal(web.type, 'NodePort');
    const n1 = lab.nodes.node1.ip;
    // the node's own clients reach NodePorts on 127.0.0.1 too (host scope), as with kube-proxy
    assert.deepEqual([...new Set(web.frontends.map((f) => `${f.kind} ${f.address}:${f.port}`))].sort(),
      ['ClusterIP 10.96.0.10:80', 'NodePort 127.0.0.1:30080', `NodePort ${n1}:30080`].sort());
    assert.deepEqual(web.frontends.filter((f) => f.kind === 'ClusterIP').map((f) => f.scope), ['internal', 'external', 'host']);
    assert.deepEqual(web.backends.map((b) => `${b.address} local=${b.local}`).sort(), [`${lab.pod('b').ip} local=true`, `${lab.pod('c').ip} local=false`].sort());
    assert.equal(service(v, 'default/sticky').affinitySeconds, 600);
    assert.ok(service(v, 'default/empty').frontends.every((f) => f.flags.includes('reject')));
    assert.equal(v.services.filter((s) => s.service?.startsWith('default/bulk-')).length, BULK);
    assert.ok('reply' in v.counters, JSON.stringify(v.counters));
    assert.deepEqual(v.notes, []);
  });

  test('iptables (auto-detected from KUBE-SERVICES): the same Services named from kube-proxy\'s rule comments', async () => {
    const v = await view('node2');
    assert.equal(v.mode, 'iptables');
    const web = service(v, 'default/web');
    assert.deepEqual([web.portName, web.type], ['tcp', 'NodePort']);
    assert.deepEqual(web.frontends.map((f) => `${f.kind} ${f.address}:${f.port} ${f.scope} ${f.backends}`), ['ClusterIP 10.96.0.10:80 cluster 2', 'NodePort *:30080 cluster 2']);
    assert.deepEqual(web.backends.map((b) => `${b.address}:${b.port}`).sort(), [`${lab.pod('b').ip}:8080`, `${lab.pod('c').ip}:8080`].sort());
    assert.equal(service(v, 'default/sticky').affinitySeconds, 600);
    assert.deepEqual(service(v, 'default/empty').frontends.map((f) => f.flags), [['reject']]);
    assert.equal(v.services.length, BULK + 3);
  });

  test('the table names namespace, name and port; -o yaml is YAML', async () => {
    for (const node of ['node1', 'node2'] as const) {
      const table = await inspect(node);
      assert.match(table.stdout, /^default\s+web\s+tcp\s+NodePort\s+TCP\s+10\.96\.0\.10:80,/m, node);
      const yaml = await inspect(node, ['-o', 'yaml']);
      assert.match(yaml.stdout, /^mode: (ebpf|iptables)\nsource: /, node);
    }
  });

  test('`inspect | head -1` exits 0 with nothing on stderr though its output outgrows the pipe', async () => {
    for (const node of ['node1', 'node2'] as const) {
      const full = await inspect(node, ['-o', 'wide']);
      assert.ok(full.stdout.length > 2 * PIPE_BUFFER, `${node}: ${full.stdout.length} bytes fit the pipe: the test proves nothing`);
      const r = await lab.execNet(lab.nodes[node].ns, ['bash', '-c',
        `"$0" "$1" inspect --bpf-pin-dir "$2" -o wide 2>/tmp/kx-inspect-epipe-$$ | head -1; s=\${PIPESTATUS[0]}; cat /tmp/kx-inspect-epipe-$$ >&2; rm -f /tmp/kx-inspect-epipe-$$; exit $s`,
        process.execPath, CLI, lab.pinDir(node)], { timeoutMs: 60_000 });
      assert.equal(r.code, 0, `${node}: ${r.stderr}`);
      assert.equal(r.stderr, '', node);
      assert.match(r.stdout, /^kube-xdp (ebpf|iptables) mode, read from .*\n$/, node);
    }
  });

  test('no pins: a plain answer, exit 3, no bpf_obj_get error', async () => {
    const r = await lab.execNet(lab.nodes.node1.ns, [process.execPath, CLI, 'inspect', '--mode', 'ebpf', '--bpf-pin-dir', `${lab.pinDir('node1')}-none`]);
    assert.equal(r.code, 3);
    assert.equal(r.stderr, `kube-xdp inspect: kube-xdp is not running in eBPF mode on this node (no pins at ${lab.pinDir('node1')}-none)\n`);
  });
});
