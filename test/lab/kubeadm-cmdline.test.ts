// kubeadm's kube-proxy DaemonSet, unchanged but for the image: `kube-proxy
// --config=/var/lib/kube-proxy/config.conf --hostname-override=$(NODE_NAME)` becomes `kube-xdp
// --config=… --hostname-override=node1`, no subcommand, with kubeadm's stock config.conf (every
// field at its zero value). kube-xdp's own settings (interfaces, pin dir, cgroup) come from its
// environment, as the DaemonSet's env gives them; here they point at this lab's node, pin dir
// and scratch cgroup. The Services come from the fake API server through the kubeconfig the
// config names. Then `kube-xdp --config=… --cleanup` removes what it programmed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseKlogLine } from './klog-lines.js';
import { cleanUpAll, createLab, ensureBpffs, labUnavailable, type Lab, type LabProcess } from './lab.js';
import { CLI } from './kube-xdp.js';
import { serviceObjects } from './manifests.js';
import { FakeApiServer } from '../helpers/fake-apiserver.js';

const FORWARDER = fileURLToPath(new URL('./netns-forward.js', import.meta.url));
const KUBEADM_CONFIG = fileURLToPath(new URL('../../../test/unit/fixtures/kubeadm-kube-proxy-config.conf', import.meta.url));
const KUBEADM_KUBECONFIG = '/var/lib/kube-proxy/kubeconfig.conf';
const WEB_IP = '10.96.0.10';

const unavailable = labUnavailable();
if (unavailable && process.env.CI === 'true') {
  test('kubeadm command line lab prerequisites (CI runs this as root)', () => assert.fail(unavailable));
}

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
// Lowering oom_score_adj needs CAP_SYS_RESOURCE, which some machines' root lacks (as kube-proxy,
// kube-xdp then warns and runs on).
const CAP_SYS_RESOURCE = 24;
const canLowerOomScore = (BigInt(`0x${/CapEff:\s*([0-9a-f]+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]}`) >> BigInt(CAP_SYS_RESOURCE)) & 1n;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("kubeadm's kube-proxy command line and config.conf, run by kube-xdp in a lab node", { skip: unavailable ?? false }, () => {
  let lab: Lab;
  let dir: string;
  let api: FakeApiServer;
  let forwarder: LabProcess | undefined;
  let proxy: LabProcess | undefined;
  let config: string;
  let env: NodeJS.ProcessEnv;

  /** kube-xdp's log lines: klog text, as kube-proxy prints by default (kubeadm's command line
   * asks for no other format). */
  const logs = (p: LabProcess): Json[] => p.output().stderr.split('\n').flatMap((l) => parseKlogLine(l) ?? []);

  async function waitForLog(p: LabProcess, pred: (l: Json) => boolean, timeoutMs = 20_000): Promise<Json> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = logs(p).find(pred);
      if (hit) return hit;
      if (p.exitCode !== null || p.signalCode !== null) throw new Error(`kube-xdp exited (${p.exitCode ?? p.signalCode}):\n${p.output().stderr.slice(-3000)}`);
      if (Date.now() > deadline) throw new Error(`no matching log line in ${timeoutMs} ms:\n${p.output().stderr.slice(-3000)}`);
      await sleep(50);
    }
  }

  before(async () => {
    ensureBpffs();
    lab = await createLab({ pods: [{ name: 'cl', node: 'node1' }, { name: 'b', node: 'node1' }, { name: 'c', node: 'node2' }] });
    dir = mkdtempSync(join(tmpdir(), 'kx-kubeadm-lab-'));
    const socketPath = join(dir, 'api.sock');
    api = new FakeApiServer({ socketPath });
    await api.start();
    forwarder = lab.spawn(lab.nodes.node1.ns, [process.execPath, FORWARDER, '127.0.0.1:6443', socketPath], { useNsenter: true });
    await forwarder.waitFor('listening', 10_000);
    api.put({
      apiVersion: 'v1', kind: 'Node', metadata: { name: 'node1' }, spec: { podCIDR: lab.nodes.node1.podCidr },
      status: { addresses: [{ type: 'InternalIP', address: lab.nodes.node1.ip }] },
    });
    for (const o of serviceObjects({ name: 'web', clusterIP: WEB_IP, port: 80, targetPort: 8080, protocols: ['TCP'], endpoints: [lab.pod('b'), lab.pod('c')] }) as Json[]) {
      delete o.metadata.resourceVersion;
      api.put(o);
    }
    // kubeadm's config.conf as is, but for the kubeconfig it names (kubeadm's points at the
    // service account; this one at the fake API server, reached inside node1).
    const kubeconfig = join(dir, 'kubeconfig.conf');
    writeFileSync(kubeconfig, [
      'apiVersion: v1', 'kind: Config', 'current-context: default',
      'clusters:', '- name: default', '  cluster:', '    server: http://127.0.0.1:6443',
      'contexts:', '- name: default', '  context:', '    cluster: default', '    user: default',
      'users:', '- name: default', '  user: {}',
    ].join('\n'));
    const text = readFileSync(KUBEADM_CONFIG, 'utf8');
    assert.ok(text.includes(KUBEADM_KUBECONFIG));
    config = join(dir, 'config.conf');
    writeFileSync(config, text.replace(KUBEADM_KUBECONFIG, kubeconfig));
    // The machine's KUBE_XDP_* never reach the child: only this lab's.
    env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KUBE_XDP_') && k !== 'KUBECONFIG'));
    Object.assign(env, {
      KUBE_XDP_EXTERNAL_INTERFACES: lab.nodes.node1.extIf, KUBE_XDP_POD_INTERFACES: 'kxv*',
      KUBE_XDP_BPF_PIN_DIR: lab.pinDir('node1'), KUBE_XDP_CGROUP_ROOT: lab.cgroup('node1'),
    });
  });

  after(async () => {
    await cleanUpAll([
      ['kube-xdp', () => proxy?.stop()],
      ['forwarder', () => forwarder?.stop()],
      ['fake API server', () => api?.stop()],
      ['lab', () => lab?.teardown()],
      ['temp dir', () => dir && rmSync(dir, { recursive: true, force: true })],
    ]);
  });

  test("`kube-xdp --config=… --hostname-override=node1` starts with kubeadm's zero values defaulted, serves traffic and /healthz", async () => {
    proxy = lab.spawn(lab.nodes.node1.ns, [process.execPath, CLI, `--config=${config}`, '--hostname-override=node1'], { useNsenter: true, env });
    const synced = await waitForLog(proxy, (l) => l.msg === 'synced' && l.writes > 0);
    assert.ok(synced, 'a sync that wrote');
    const start = logs(proxy).find((l) => l.msg === 'starting kube-xdp (eBPF mode)');
    assert.ok(start, 'kubeadm\'s mode "" runs kube-xdp\'s default, eBPF');
    assert.equal(start.node, 'node1');
    assert.equal(start.pinDir, lab.pinDir('node1'));
    assert.deepEqual(logs(proxy).filter((l) => l.level >= 40).map((l) => l.msg), canLowerOomScore ? [] : ['cannot set oom_score_adj'],
      'no warning for kubeadm\'s stock config');
    assert.ok(readdirSync(lab.pinDir('node1')).length > 0, 'pins in this lab\'s pin dir');
    // oomScoreAdj null → kube-proxy's -999 (nsenter execs node: the pid is kube-xdp's).
    if (canLowerOomScore) assert.equal(readFileSync(`/proc/${proxy.pid}/oom_score_adj`, 'utf8').trim(), '-999');
    else assert.equal(logs(proxy).find((l) => l.msg === 'cannot set oom_score_adj')?.oomScoreAdj, -999);

    const s = await lab.client(lab.pod('cl').ns, { proto: 'tcp', target: `${WEB_IP}:80`, count: 20, concurrency: 4, timeoutMs: 1500 });
    assert.equal(s.ok, 20, JSON.stringify(s.errors));
    assert.deepEqual(Object.keys(s.byPod).sort(), ['b', 'c']);

    // healthzBindAddress "" → 0.0.0.0:10256 (the DaemonSet's liveness probe), metricsBindAddress "" → 127.0.0.1:10249.
    const get = (url: string) => lab.execNet(lab.nodes.node1.ns, [process.execPath, '-e',
      `fetch(${JSON.stringify(url)}).then(async (r) => console.log(r.status, (await r.text()).length > 0)).catch((e) => { console.log('error', e.cause?.code ?? e.message); })`]);
    assert.equal((await get(`http://${lab.nodes.node1.ip}:10256/healthz`)).stdout.trim(), '200 true');
    assert.equal((await get('http://127.0.0.1:10249/metrics')).stdout.trim(), '200 true');
    assert.match((await get(`http://${lab.nodes.node1.ip}:10249/metrics`)).stdout.trim(), /^error ECONNREFUSED/, 'metrics on loopback only');
  });

  test('`kube-xdp --config=… --cleanup` removes what it programmed in this node and exits 0', async () => {
    assert.ok(proxy, 'the first test started kube-xdp');
    await proxy.stop();
    const pins = lab.pinDir('node1');
    assert.ok(existsSync(pins) && readdirSync(pins).length > 0, 'pins before cleanup');
    // Its pin dir from the environment, like every kube-xdp setting here (never the default one:
    // bpffs is shared by every namespace).
    const cleanup = lab.spawn(lab.nodes.node1.ns, [process.execPath, CLI, `--config=${config}`, '--cleanup'], { useNsenter: true, env });
    const code = await new Promise<number | null>((resolve) => {
      if (cleanup.exitCode !== null) resolve(cleanup.exitCode);
      else cleanup.once('exit', (c) => resolve(c));
    });
    assert.equal(code, 0, cleanup.output().stderr);
    assert.ok(!existsSync(pins) || readdirSync(pins).length === 0, `pins left: ${existsSync(pins) ? readdirSync(pins).join(', ') : ''}`);
    const chains = await lab.execNet(lab.nodes.node1.ns, ['iptables-save']);
    assert.doesNotMatch(chains.stdout, /KUBE-/, 'no KUBE-* chain left in node1');
  });
});
