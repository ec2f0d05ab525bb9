// `make demo`: the built-in lab, no cluster needed. Builds two nodes, an external client and
// pods in network namespaces, runs kube-xdp on both nodes, programs a ClusterIP and a
// NodePort Service with 3 endpoints each, shows where 30 requests land, what bpftool and
// kube-xdp inspect see; then node1 again on the Kubernetes API source (a fake API server), then
// the same with the iptables mode (kube-proxy's rules), and tears everything down.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLab, ensureBpffs, labUnavailable, type Lab } from '../test/lab/lab.js';
import { CLI, Controller } from '../test/lab/kube-xdp.js';
import { writeSource } from '../test/lab/manifests.js';
import type { Summary } from '../test/lab/client.js';
import { serviceObjects, type LabService } from '../test/lab/manifests.js';
import { FakeApiServer } from '../test/helpers/fake-apiserver.js';
import { fileURLToPath } from 'node:url';

const FORWARDER = fileURLToPath(new URL('../test/lab/netns-forward.js', import.meta.url));

const say = (s = '') => process.stdout.write(`${s}\n`);
const head = (s: string) => say(`\n\x1b[1m== ${s}\x1b[0m`);

function spread(s: Summary): string {
  const pods = Object.entries(s.byPod).sort(([a], [b]) => a.localeCompare(b));
  return `${s.ok} ok, ${s.failed} failed  ` + pods.map(([p, n]) => `${p}=${n} ${'#'.repeat(n)}`).join('  ');
}

async function demo(lab: Lab, dir: string): Promise<void> {
  const source = join(dir, 'services.json');
  const [a, b, c] = [lab.pod('a'), lab.pod('b'), lab.pod('c')];
  const services: LabService[] = [
    { name: 'web', clusterIP: '10.96.0.10', port: 80, targetPort: 8080, protocols: ['TCP'], endpoints: [a, b, c] },
    { name: 'shop', clusterIP: '10.96.0.20', port: 80, targetPort: 8080, type: 'NodePort', nodePort: 30080, protocols: ['TCP', 'UDP'], endpoints: [a, b, c] },
  ];
  writeSource(source, services);
  head('lab');
  say(`external client ${lab.ext.ip} | node1 ${lab.nodes.node1.ip} (pods ${lab.nodes.node1.pods.map((p) => `${p.name}=${p.ip}`).join(' ')}) | node2 ${lab.nodes.node2.ip} (pods ${lab.nodes.node2.pods.map((p) => `${p.name}=${p.ip}`).join(' ')})`);
  say(`services: ClusterIP web 10.96.0.10:80 and NodePort shop :30080, endpoints a (node1), b, c (node2)`);

  head('kube-xdp run on node1 and node2 (XDP on eth0, tc on the pod veths)');
  const controllers = [await Controller.start(lab, 'node1', source), await Controller.start(lab, 'node2', source)];
  try {
    for (const ctl of controllers) {
      const sync = ctl.syncs()[0]!;
      const attach = ctl.logs().filter((l) => /attached|TCX|clsact/.test(l.msg)).map((l) => l.msg);
      say(`${ctl.node}: ${attach.join('; ')}; first sync wrote ${sync.writes} map entries in ${sync.durationMs} ms`);
    }

    head('30 TCP requests from pod cl to the ClusterIP 10.96.0.10:80');
    say(spread(await lab.client(lab.pod('cl').ns, { proto: 'tcp', target: '10.96.0.10:80', count: 30 })));
    head(`30 TCP requests from the external client to NodePort ${lab.nodes.node1.ip}:30080`);
    const np = await lab.client(lab.ext.ns, { proto: 'tcp', target: `${lab.nodes.node1.ip}:30080`, count: 30 });
    say(spread(np));
    say(`backends saw the client as: ${Object.keys(np.seenPeers).map((p) => p.split(':')[0]).filter((v, i, all) => all.indexOf(v) === i).join(', ')} (the node address when SNATed to node2)`);
    head(`30 UDP requests from the external client to NodePort ${lab.nodes.node1.ip}:30080`);
    const udp = await lab.client(lab.ext.ns, { proto: 'udp', target: `${lab.nodes.node1.ip}:30080`, count: 30 });
    say(`${spread(udp)}\nreplies came from: ${Object.keys(udp.replyPeers).join(', ')}`);

    head(`bpftool map dump pinned ${lab.pinDir('node1')}/kx_frontends (excerpt)`);
    const dump = await lab.execNet(lab.nodes.node1.ns, ['bpftool', 'map', 'dump', 'pinned', `${lab.pinDir('node1')}/kx_frontends`], { check: true });
    say(dump.stdout.split('\n').slice(0, 16).join('\n'));
    say('    ...');

    head('kube-xdp inspect (node1)');
    const insp = await lab.execNet(lab.nodes.node1.ns, [process.execPath, CLI, 'inspect', '--bpf-pin-dir', lab.pinDir('node1')], { check: true });
    say(insp.stdout.trimEnd());
  } finally {
    for (const ctl of controllers) await ctl.kill('SIGTERM');
  }
  await apiSource(lab, dir, services);
  await iptablesMode(lab, source);
}

/** The same Services served by a (fake, in-process) Kubernetes API server over list/watch. */
async function apiSource(lab: Lab, dir: string, services: LabService[]): Promise<void> {
  head('kube-xdp run --source kubernetes on node1, watching an API server (the tests\' fake: real list/watch JSON)');
  const socketPath = join(dir, 'api.sock');
  const api = new FakeApiServer({ socketPath });
  await api.start();
  const forwarder = lab.spawn(lab.nodes.node1.ns, [process.execPath, FORWARDER, '127.0.0.1:6443', socketPath], { useNsenter: true });
  let ctl: Controller | null = null;
  try {
    await forwarder.waitFor('listening', 10_000);
    api.put({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'node1', labels: { 'topology.kubernetes.io/zone': 'zone-a' } }, status: { addresses: [{ type: 'InternalIP', address: lab.nodes.node1.ip }] } });
    for (const o of services.flatMap(serviceObjects)) api.put(o as Record<string, unknown>);
    ctl = await Controller.startWith(lab, 'node1', ['--source', 'kubernetes', '--api-server', 'http://127.0.0.1:6443', '--hostname-override', 'node1'], ['--healthz-bind-address', '']);
    const first = ctl.syncs()[0]!;
    say(`node1 restarted on the API source: first sync wrote ${first.writes} map entries (the pinned maps already held these Services)`);
    const [web] = serviceObjects({ ...services[0]!, endpoints: [lab.pod('a')] }).slice(1) as Array<Record<string, unknown>>;
    (web!['metadata'] as Record<string, unknown>)['annotations'] = { 'endpoints.kubernetes.io/last-change-trigger-time': new Date().toISOString() };
    const next = ctl.nextWritingSync();
    api.put(web!);
    const sync = await next;
    say(`scaled web to 1 endpoint over the watch: synced ${sync.writes} writes, ${sync.sinceTriggerMs} ms after the EndpointSlice's trigger time`);
    say(spread(await lab.client(lab.pod('cl').ns, { proto: 'tcp', target: '10.96.0.10:80', count: 30 })));
    api.cutWatches();
    const restart = await ctl.waitFor((l) => /informer: restarting/.test(String(l.context)), 10_000);
    say(`API watches cut: "${restart.context}" — traffic meanwhile: ${spread(await lab.client(lab.pod('cl').ns, { proto: 'tcp', target: '10.96.0.10:80', count: 10 }))}`);
  } finally {
    await ctl?.kill('SIGTERM');
    await forwarder.stop();
    await api.stop();
  }
}

async function cleanupNodes(lab: Lab): Promise<void> {
  for (const n of Object.values(lab.nodes)) {
    await lab.execNet(n.ns, [process.execPath, CLI, 'cleanup', '--bpf-pin-dir', lab.pinDir(n.name), '--pod-interfaces', 'kxv*'], { check: true });
  }
}

async function iptablesMode(lab: Lab, source: string): Promise<void> {
  head('kube-xdp cleanup, then kube-xdp run --mode iptables on both nodes (kube-proxy\'s rules)');
  await cleanupNodes(lab);
  const controllers = [];
  try {
    for (const n of Object.values(lab.nodes)) {
      controllers.push(await Controller.start(lab, n.name, source, ['--mode', 'iptables', '--cluster-cidr', '10.244.0.0/16', '--node-ip', n.ip]));
    }
    for (const ctl of controllers) {
      const sync = ctl.syncs()[0]!;
      say(`${ctl.node}: first sync wrote ${sync.writes} rules with iptables-restore in ${sync.durationMs} ms`);
    }
    head('30 TCP requests from pod cl to the ClusterIP 10.96.0.10:80');
    say(spread(await lab.client(lab.pod('cl').ns, { proto: 'tcp', target: '10.96.0.10:80', count: 30 })));
    head(`30 TCP requests from the external client to NodePort ${lab.nodes.node1.ip}:30080`);
    const np = await lab.client(lab.ext.ns, { proto: 'tcp', target: `${lab.nodes.node1.ip}:30080`, count: 30 });
    say(spread(np));
    say(`backends saw the client as: ${[...new Set(Object.keys(np.seenPeers).map((p) => p.split(':')[0]))].join(', ')} (KUBE-EXT masquerades external traffic)`);
    head('iptables-save -t nat on node1 (the web Service)');
    const save = await lab.execNet(lab.nodes.node1.ns, ['iptables-save', '-t', 'nat'], { check: true });
    say(save.stdout.split('\n').filter((l) => l.includes('default/web')).join('\n'));
  } finally {
    for (const ctl of controllers) await ctl.kill('SIGTERM');
  }
  await cleanupNodes(lab);
  const left = await lab.execNet(lab.nodes.node1.ns, ['iptables-save'], { check: true });
  say(`\nkube-xdp cleanup: ${left.stdout.split('\n').filter((l) => l.includes('KUBE-')).length} lines mention KUBE- on node1 afterwards`);
}

async function main(): Promise<void> {
  const why = labUnavailable();
  if (why) throw new Error(why);
  ensureBpffs();
  const dir = mkdtempSync(join(tmpdir(), 'kube-xdp-demo-'));
  const lab = await createLab({
    pods: [{ name: 'cl', node: 'node1' }, { name: 'a', node: 'node1' }, { name: 'b', node: 'node2' }, { name: 'c', node: 'node2' }],
  });
  try {
    await demo(lab, dir);
  } finally {
    await lab.teardown();
    rmSync(dir, { recursive: true, force: true });
    head('lab torn down: namespaces, links, pinned maps and programs removed');
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
