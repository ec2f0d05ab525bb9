// deploy/helm/kube-xdp/, rendered and checked against deploy/kube-xdp.yaml and kube-xdp's own
// parsers. `helm template` is not run: helm is not installable here. The chart's templates use Go
// text/template built-ins only (no sprig: no default, quote, toYaml, nindent, include), so Go's own
// text/template, compiled to WebAssembly (@evertdespiegeleer/go-template), renders them as Helm
// does. What is emulated here, not Helm's code: the top-level objects (.Values, .Release, .Chart),
// the shared `define`s (_helpers.tpl prepended to each template, as Helm parses all files into one
// template set) and the values merge (values.yaml coalesced with overrides like `--set`/`-f`:
// maps merged key by key, lists and scalars replaced, null deletes the key). One difference: this
// renderer errors on a missing key (Helm's `--strict`/lint behaviour; plain Helm prints a zero).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { parse as renderGo } from '@evertdespiegeleer/go-template';
import { parse, parseAllDocuments } from 'yaml';
import { parseKubeProxyConfiguration } from '../../src/config/kube-proxy-config.js';
import { runConfig, type RunConfig } from '../../src/config/run-config.js';

// The compiled test lives in dist/test/unit/.
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CHART = join(ROOT, 'deploy/helm/kube-xdp');
const read = (p: string) => readFileSync(p, 'utf8');

type Obj = Record<string, any>;
const NAME = 'kube-xdp';
const CAPS = ['BPF', 'PERFMON', 'NET_ADMIN', 'NET_RAW', 'SYS_RESOURCE'];
const isMap = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Helm's coalescing of user values over the chart's: maps merge, null deletes, the rest replaces. */
function merge(base: Obj, over: Obj): Obj {
  const out: Obj = structuredClone(base);
  for (const [k, v] of Object.entries(over)) {
    if (v === null) delete out[k];
    else if (isMap(v) && isMap(out[k])) out[k] = merge(out[k], v);
    else out[k] = structuredClone(v);
  }
  return out;
}

const chartMeta = parse(read(join(CHART, 'Chart.yaml'))) as Obj;
const defaults = parse(read(join(CHART, 'values.yaml'))) as Obj;
const helpers = read(join(CHART, 'templates/_helpers.tpl'));
const templates = readdirSync(join(CHART, 'templates')).filter((f) => !f.startsWith('_')).sort();

interface Rendered { readonly docs: Obj[]; readonly notes: string }

/** Renders every template as `helm template kube-xdp deploy/helm/kube-xdp -n NS` with overrides. */
async function render(overrides: Obj = {}, namespace = 'kube-system'): Promise<Rendered> {
  const top = {
    Values: merge(defaults, overrides),
    Release: { Name: NAME, Namespace: namespace, Service: 'Helm', IsInstall: true, IsUpgrade: false, Revision: 1 },
    Chart: { Name: chartMeta.name, Version: chartMeta.version, AppVersion: chartMeta.appVersion, Description: chartMeta.description },
  };
  const docs: Obj[] = [];
  let notes = '';
  for (const f of templates) {
    const text = await renderGo(helpers + read(join(CHART, 'templates', f)), top);
    if (f === 'NOTES.txt') { notes = text; continue; }
    for (const [i, d] of parseAllDocuments(text).entries()) {
      assert.deepEqual(d.errors.map((e) => e.message), [], `${f}: document ${i} has YAML errors:\n${text}`);
      const o = d.toJS() as unknown;
      if (o === null) continue; // an empty document (comments only), as Helm skips
      assert.ok(isMap(o), `${f}: document ${i} is not an object`);
      docs.push(o);
    }
  }
  return { docs, notes };
}

function loadRaw(): Obj[] {
  return parseAllDocuments(read(join(ROOT, 'deploy/kube-xdp.yaml'))).map((d) => d.toJS() as Obj);
}
const oneOf = (docs: Obj[], kind: string): Obj => {
  const found = docs.filter((d) => d.kind === kind);
  assert.equal(found.length, 1, `exactly one ${kind}`);
  return found[0]!;
};
const mainContainer = (ds: Obj): Obj => {
  const c = (ds.spec.template.spec.containers as Obj[]).find((x) => x.name === NAME);
  assert.ok(c, `container ${NAME}`);
  return c;
};
const kpcOf = (docs: Obj[]) => parseKubeProxyConfiguration(parse(oneOf(docs, 'ConfigMap').data['config.conf'] as string));

/** `kube-xdp run` as the kubelet would start it: $(VAR) expanded, the ConfigMap's file in place. */
function runConfigOf(docs: Obj[], extraEnv: Record<string, string> = {}): RunConfig {
  const c = mainContainer(oneOf(docs, 'DaemonSet'));
  const dir = mkdtempSync(join(tmpdir(), 'kx-helm-'));
  try {
    const conf = join(dir, 'config.conf');
    writeFileSync(conf, oneOf(docs, 'ConfigMap').data['config.conf'] as string);
    const env: Record<string, string> = { NODE_NAME: 'node-a', ...extraEnv };
    for (const e of c.env as Obj[]) if (typeof e.value === 'string') env[e.name] = e.value;
    const argv = (c.command as string[]).slice(2)
      .map((a) => a.replace(/\$\((\w+)\)/g, (_, n: string) => env[n] ?? ''))
      .map((a) => (a === '/var/lib/kube-xdp/config.conf' ? conf : a));
    return runConfig(argv, env);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
/** A RunConfig as plain data (it holds no per-call path), comparable across renders. */
const comparable = (cfg: RunConfig) => JSON.parse(JSON.stringify(cfg)) as Obj;

describe('deploy/helm/kube-xdp (default values)', async () => {
  const { docs, notes } = await render();
  const raw = loadRaw();
  const ds = oneOf(docs, 'DaemonSet');
  const rawDs = oneOf(raw, 'DaemonSet');
  const pod = ds.spec.template.spec as Obj;
  const rawPod = rawDs.spec.template.spec as Obj;
  const c = mainContainer(ds);
  const rawC = mainContainer(rawDs);

  it('renders the objects of deploy/kube-xdp.yaml, named and namespaced alike, with Helm\'s labels', () => {
    assert.deepEqual(docs.map((d) => d.kind).sort(), ['ClusterRole', 'ClusterRoleBinding', 'ConfigMap', 'DaemonSet', 'ServiceAccount']);
    for (const d of docs) {
      const r = oneOf(raw, d.kind);
      assert.equal(d.apiVersion, r.apiVersion, `${d.kind}: apiVersion`);
      assert.equal(d.metadata.name, r.metadata.name, `${d.kind}: name`);
      assert.equal(d.metadata.namespace, r.metadata.namespace, `${d.kind}: namespace`);
      assert.deepEqual(d.metadata.labels, {
        'app.kubernetes.io/name': NAME, 'app.kubernetes.io/instance': NAME, 'app.kubernetes.io/version': chartMeta.appVersion,
        'app.kubernetes.io/managed-by': 'Helm', 'helm.sh/chart': `${NAME}-${chartMeta.version}`,
      }, `${d.kind}: labels`);
    }
    assert.equal(chartMeta.appVersion, JSON.parse(read(join(ROOT, 'package.json'))).version, 'appVersion = package.json version');
    assert.match(notes, /DaemonSet kube-system\/kube-xdp, mode ebpf/);
    assert.match(notes, /apiServer is not set/);
    assert.doesNotMatch(notes, /WARNING/);
  });

  it('has the same RBAC as the raw manifest (servicecidrs included)', () => {
    assert.deepEqual(oneOf(docs, 'ClusterRole').rules, oneOf(raw, 'ClusterRole').rules);
    const b = oneOf(docs, 'ClusterRoleBinding');
    const rb = oneOf(raw, 'ClusterRoleBinding');
    assert.deepEqual(b.roleRef, rb.roleRef);
    assert.deepEqual(b.subjects, rb.subjects);
    assert.ok((b.subjects as Obj[]).some((s) => s.kind === 'ServiceAccount' && s.name === oneOf(docs, 'ServiceAccount').metadata.name));
    assert.equal(pod.serviceAccountName, oneOf(docs, 'ServiceAccount').metadata.name);
  });

  it('privileges: only init containers are privileged; the main container has exactly the capability list', () => {
    for (const x of pod.containers as Obj[]) assert.notEqual(x.securityContext?.privileged, true, `${x.name} is not privileged`);
    // Nowhere outside initContainers: walk the pod spec without them.
    const { initContainers, ...rest } = pod;
    assert.doesNotMatch(JSON.stringify(rest), /"privileged":true/);
    assert.ok((initContainers as Obj[]).every((x) => x.securityContext?.privileged === true));
    const sc = c.securityContext as Obj;
    assert.equal(sc.privileged, false);
    assert.equal(sc.allowPrivilegeEscalation, false);
    assert.deepEqual(sc.capabilities, { drop: ['ALL'], add: CAPS });
    assert.deepEqual(sc, rawC.securityContext);
  });

  it('has the raw DaemonSet\'s pod: host network, scheduling, volumes, init containers, mounts, probes', () => {
    assert.deepEqual(ds.spec.selector, rawDs.spec.selector);
    assert.deepEqual(ds.spec.template.metadata.labels, rawDs.spec.template.metadata.labels);
    assert.deepEqual(ds.spec.updateStrategy, rawDs.spec.updateStrategy);
    for (const k of ['hostNetwork', 'dnsPolicy', 'priorityClassName', 'nodeSelector', 'tolerations', 'terminationGracePeriodSeconds', 'volumes', 'serviceAccountName']) {
      assert.deepEqual(pod[k], rawPod[k], `pod.${k}`);
    }
    assert.notEqual(pod.hostPID, true);
    assert.deepEqual(pod.imagePullSecrets, []);
    const strip = (x: Obj) => { const { imagePullPolicy, ...r } = x; assert.equal(imagePullPolicy, 'IfNotPresent'); return r; };
    assert.deepEqual((pod.initContainers as Obj[]).map(strip), rawPod.initContainers);
    assert.deepEqual(pod.containers.map((x: Obj) => x.name), [NAME]);
    assert.deepEqual(strip(c), rawC, 'main container: image, command, env, securityContext, resources, probes, volumeMounts');
  });

  it('holds a KubeProxyConfiguration kube-xdp accepts, equal to the raw manifest\'s', () => {
    const kpc = kpcOf(docs);
    assert.equal(kpc.mode, 'ebpf');
    assert.deepEqual(kpc.clusterCIDRs, ['10.244.0.0/16']);
    assert.equal(kpc.healthzBindAddress, '0.0.0.0:10256');
    assert.equal(kpc.metricsBindAddress, '127.0.0.1:10249');
    assert.deepEqual(kpc.warnings, []);
    // The chart writes more sections (nftables, ipvs, logging, oomScoreAdj), at their defaults.
    assert.deepEqual(kpc, kpcOf(raw));
  });

  it('gives `kube-xdp run` the configuration the raw manifest gives it', () => {
    const cfg = runConfigOf(docs);
    assert.equal(cfg.source.kind, 'kubernetes');
    assert.equal(cfg.proxy.nodeName, 'node-a');
    assert.equal(cfg.proxy.mode, 'ebpf');
    assert.deepEqual(cfg.externalInterfaces, ['eth0']);
    assert.equal(cfg.cgroupRoot, '/run/kube-xdp/cgroupv2');
    assert.deepEqual(comparable(cfg), comparable(runConfigOf(raw)));
  });
});

describe('deploy/helm/kube-xdp (overrides)', () => {
  it('puts each override where it belongs', async () => {
    const { docs, notes } = await render({
      mode: 'nftables',
      image: { tag: '0.2.0-rc1' },
      extraArgs: ['--xdp-mode', 'generic'],
      nodeSelector: { 'node-role.kubernetes.io/worker': 'true' },
      config: { clusterCIDR: '10.100.0.0/16,fd00:10::/56', masqueradeAll: true },
      apiServer: 'https://192.0.2.10:6443',
      externalInterfaces: ['eth0', 'eth1'],
      podInterfaces: 'veth*',
      extraCapabilities: ['SYS_ADMIN'],
      extraEnv: [{ name: 'KUBE_XDP_TEST', value: 'x' }],
      podLabels: { team: 'net' },
      healthz: { port: 10666 },
    }, 'kube-xdp');
    const ds = oneOf(docs, 'DaemonSet');
    const pod = ds.spec.template.spec as Obj;
    const c = mainContainer(ds);
    for (const x of [...pod.initContainers, ...pod.containers] as Obj[]) assert.equal(x.image, 'ghcr.io/kube-xdp/kube-xdp:0.2.0-rc1', `${x.name}: image`);
    // Helm merges maps: the default os selector stays.
    assert.deepEqual(pod.nodeSelector, { 'kubernetes.io/os': 'linux', 'node-role.kubernetes.io/worker': 'true' });
    assert.deepEqual((c.command as string[]).slice(-4), ['--api-server', 'https://192.0.2.10:6443', '--xdp-mode', 'generic']);
    assert.deepEqual(c.securityContext.capabilities.add, [...CAPS, 'SYS_ADMIN']);
    assert.equal(ds.spec.template.metadata.labels.team, 'net');
    assert.equal(ds.spec.template.metadata.labels['app.kubernetes.io/name'], NAME, 'selector label kept');
    assert.equal(c.livenessProbe.httpGet.port, 10666);
    assert.equal(c.readinessProbe.httpGet.port, 10666);
    for (const d of docs) if (!d.kind.startsWith('Cluster')) assert.equal(d.metadata.namespace, 'kube-xdp');
    assert.equal(oneOf(docs, 'ClusterRoleBinding').subjects[0].namespace, 'kube-xdp');
    assert.match(notes, /WARNING: namespace kube-xdp/);
    assert.doesNotMatch(notes, /apiServer is not set/);

    const kpc = kpcOf(docs);
    assert.equal(kpc.mode, 'nftables');
    assert.deepEqual(kpc.clusterCIDRs, ['10.100.0.0/16', 'fd00:10::/56']);
    assert.equal(kpc.masqueradeAll, true);
    assert.equal(kpc.nftables.masqueradeAll, true);
    assert.equal(kpc.healthzBindAddress, '0.0.0.0:10666');

    const cfg = runConfigOf(docs);
    assert.equal(cfg.proxy.mode, 'nftables');
    assert.equal(cfg.source.kind === 'kubernetes' && cfg.source.apiServer, 'https://192.0.2.10:6443');
    assert.equal(cfg.xdpMode, 'generic');
    assert.deepEqual(cfg.externalInterfaces, ['eth0', 'eth1']);
    assert.deepEqual(cfg.podInterfaces, ['veth*']);
    const env = new Map((c.env as Obj[]).map((e) => [e.name as string, e.value as unknown]));
    assert.equal(env.get('KUBE_XDP_TEST'), 'x');
  });

  it('writes config.extra fields and values that need quoting as YAML reads them back', async () => {
    const { docs } = await render({
      config: { extra: { bindAddress: '::', conntrack: { maxPerCore: 0 } }, logging: { verbosity: 4 } },
      metrics: { bindAddress: '[::1]' },
      podAnnotations: { 'example.com/note': 'a: "b" # c' },
      externalInterfaces: 'eth0,bond0',
    });
    const kpc = kpcOf(docs);
    assert.equal(kpc.bindAddress, '::');
    assert.equal(kpc.metricsBindAddress, '[::1]:10249');
    assert.equal(kpc.verbosity, 4);
    const ds = oneOf(docs, 'DaemonSet');
    assert.equal(ds.spec.template.metadata.annotations['example.com/note'], 'a: "b" # c');
    assert.deepEqual(runConfigOf(docs).externalInterfaces, ['eth0', 'bond0']);
  });

  it('fails to render a value of the wrong shape or a missing key', async () => {
    // A string where a list belongs: `range` cannot iterate over it (Helm fails alike).
    await assert.rejects(render({ extraArgs: '--xdp-mode=generic' }), /range can't iterate over/);
    await assert.rejects(render({ config: { extra: 'bindAddress: "::"' } }), /range can't iterate over/);
    // A key the templates read, removed (null deletes it, as with Helm's --set key=null).
    await assert.rejects(render({ config: { clusterCIDR: null } }), /clusterCIDR/);
    // The renderer is not lenient: the unchanged chart still renders.
    await assert.doesNotReject(render());
  });
});
