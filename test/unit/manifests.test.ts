// deploy/*.yaml and the Dockerfile, checked at the schema level: the objects a cluster install
// needs, least-privilege RBAC, the DaemonSet's host access, the ConfigMap through kube-xdp's own
// KubeProxyConfiguration parser, and an image layout that matches the paths the code resolves.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { envName } from '../../src/config/flags.js';
import { parseKubeProxyConfiguration } from '../../src/config/kube-proxy-config.js';
import { DEFAULT_OBJECT, runConfig } from '../../src/config/run-config.js';
import { defaultLibkxPath } from '../../src/kernel/libkx.js';

// The compiled test lives in dist/test/unit/.
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');

// Parsed YAML, checked field by field.
type Obj = Record<string, any>;
const NAME = 'kube-xdp';
const LABELS = { 'app.kubernetes.io/name': NAME };

function loadDocs(path: string): Obj[] {
  const docs = parseAllDocuments(read(path));
  assert.ok(Array.isArray(docs), `${path}: not a YAML stream`);
  return docs.map((d, i) => {
    assert.deepEqual(d.errors.map((e) => e.message), [], `${path}: document ${i} has YAML errors`);
    const o = d.toJS() as unknown;
    assert.ok(o !== null && typeof o === 'object' && !Array.isArray(o), `${path}: document ${i} is not an object`);
    return o as Obj;
  });
}

const manifest = loadDocs('deploy/kube-xdp.yaml');
const one = (kind: string): Obj => {
  const found = manifest.filter((d) => d.kind === kind);
  assert.equal(found.length, 1, `exactly one ${kind}`);
  return found[0]!;
};
const container = (ds: Obj, name: string): Obj => {
  const c = (ds.spec.template.spec.containers as Obj[]).find((x) => x.name === name);
  assert.ok(c, `container ${name}`);
  return c;
};
const sortRule = (r: Obj) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Array.isArray(v) ? [...v].sort() : v]));

/** Checks what any DaemonSet touching the node's dataplane needs; returns the pod spec. */
function checkNodeDaemonSet(ds: Obj): Obj {
  const labels = ds.spec.template.metadata.labels as Obj;
  const selector = Object.entries(ds.spec.selector.matchLabels as Obj);
  assert.ok(selector.length > 0 && selector.every(([k, v]) => labels[k] === v), 'selector matches the template labels');
  const pod = ds.spec.template.spec as Obj;
  assert.equal(pod.hostNetwork, true);
  assert.notEqual(pod.hostPID, true, 'no hostPID');
  assert.equal(pod.priorityClassName, 'system-node-critical');
  assert.ok((pod.tolerations as Obj[]).some((t) => t.operator === 'Exists' && t.key === undefined && t.effect === undefined),
    'a toleration for every taint (operator Exists, no key)');
  assert.deepEqual(pod.nodeSelector, { 'kubernetes.io/os': 'linux' });
  const volumes = new Map((pod.volumes as Obj[]).map((v) => [v.name as string, v]));
  assert.equal(volumes.size, (pod.volumes as Obj[]).length, 'volume names are unique');
  for (const c of [...(pod.initContainers ?? []), ...pod.containers] as Obj[]) {
    for (const m of (c.volumeMounts ?? []) as Obj[]) assert.ok(volumes.has(m.name), `${c.name}: volumeMount ${m.name} is a declared volume`);
  }
  return pod;
}

/** The (container, volume) pair mounted at mountPath. */
function mountAt(pod: Obj, c: Obj, mountPath: string): { mount: Obj; volume: Obj } {
  const mount = (c.volumeMounts as Obj[]).find((m) => m.mountPath === mountPath);
  assert.ok(mount, `${c.name} mounts ${mountPath}`);
  return { mount, volume: (pod.volumes as Obj[]).find((v) => v.name === mount.name)! };
}

describe('deploy/kube-xdp.yaml', () => {
  it('holds exactly the objects an install needs, labelled, in kube-system', () => {
    for (const [i, d] of manifest.entries()) {
      assert.equal(typeof d.apiVersion, 'string', `document ${i}: apiVersion`);
      assert.equal(typeof d.kind, 'string', `document ${i}: kind`);
      assert.equal(typeof d.metadata?.name, 'string', `document ${i}: metadata.name`);
      assert.equal(d.metadata.name, NAME, `${d.kind}: name`);
      assert.deepEqual(d.metadata.labels, LABELS, `${d.kind}: labels`);
      if (d.kind.startsWith('Cluster')) assert.equal(d.metadata.namespace, undefined, `${d.kind} is cluster-scoped`);
      else assert.equal(d.metadata.namespace, 'kube-system', `${d.kind}: namespace`);
    }
    assert.deepEqual(manifest.map((d) => d.kind).sort(), ['ClusterRole', 'ClusterRoleBinding', 'ConfigMap', 'DaemonSet', 'ServiceAccount']);
    assert.deepEqual(Object.fromEntries(manifest.map((d) => [d.kind, d.apiVersion])), {
      ServiceAccount: 'v1', ConfigMap: 'v1', DaemonSet: 'apps/v1',
      ClusterRole: 'rbac.authorization.k8s.io/v1', ClusterRoleBinding: 'rbac.authorization.k8s.io/v1',
    });
  });

  it('grants read on Services, Nodes, EndpointSlices, ServiceCIDRs and create/patch on Events, nothing more', () => {
    const rules = (one('ClusterRole').rules as Obj[]).map(sortRule);
    const key = (r: Obj) => JSON.stringify(r);
    assert.deepEqual(rules.sort((a, b) => key(a).localeCompare(key(b))), [
      { apiGroups: ['', 'events.k8s.io'], resources: ['events'], verbs: ['create', 'patch'] },
      { apiGroups: [''], resources: ['nodes', 'services'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['networking.k8s.io'], resources: ['servicecidrs'], verbs: ['get', 'list', 'watch'] },
    ].sort((a, b) => key(a).localeCompare(key(b))));
  });

  it('binds the role to the ServiceAccount', () => {
    const b = one('ClusterRoleBinding');
    assert.deepEqual(b.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: one('ClusterRole').metadata.name });
    const sa = one('ServiceAccount');
    assert.deepEqual(b.subjects, [{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: sa.metadata.namespace }]);
    assert.equal(one('DaemonSet').spec.template.spec.serviceAccountName, sa.metadata.name);
  });

  it('runs a host-network pod on every node', () => {
    const ds = one('DaemonSet');
    const pod = checkNodeDaemonSet(ds);
    assert.deepEqual(ds.spec.updateStrategy, { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } });
    assert.equal(pod.dnsPolicy, 'ClusterFirstWithHostNet');
    assert.equal(pod.terminationGracePeriodSeconds, 30);
    assert.deepEqual(pod.containers.map((c: Obj) => c.name), [NAME]);
    const c = container(ds, NAME);
    assert.equal(c.image, `ghcr.io/kube-xdp/kube-xdp:${JSON.parse(read('package.json')).version}`, 'image tag = package.json version');
    assert.equal(c.securityContext?.privileged, false, 'the main container is not privileged');
    assert.deepEqual(c.resources?.requests, { cpu: '100m', memory: '128Mi' });
  });

  it('runs `kube-xdp run` against the API server, named after its node', () => {
    const c = container(one('DaemonSet'), NAME);
    const cmd = c.command as string[];
    assert.deepEqual(cmd.slice(0, 2), [NAME, 'run']);
    const flag = (f: string) => {
      const i = cmd.indexOf(f);
      assert.ok(i > 0 && i + 1 < cmd.length, `command has ${f} VALUE`);
      return cmd[i + 1];
    };
    assert.equal(flag('--source'), 'kubernetes');
    assert.equal(flag('--hostname-override'), '$(NODE_NAME)');
    assert.ok(!cmd.includes('--api-server'), '--api-server is left to the installer (commented out)');
    const env = new Map((c.env as Obj[]).map((e) => [e.name as string, e]));
    assert.deepEqual(env.get('NODE_NAME')?.valueFrom, { fieldRef: { fieldPath: 'spec.nodeName' } });
    // The variable is the one `--external-interfaces` falls back to.
    assert.equal(envName('external-interfaces'), 'KUBE_XDP_EXTERNAL_INTERFACES');
    assert.equal(env.get('KUBE_XDP_EXTERNAL_INTERFACES')?.value, 'eth0');
    // --config points into the ConfigMap's mount, at a key the ConfigMap has.
    const pod = one('DaemonSet').spec.template.spec as Obj;
    const config = flag('--config')!;
    const { mount, volume } = mountAt(pod, c, posix.dirname(config));
    assert.equal(volume.configMap?.name, one('ConfigMap').metadata.name);
    assert.equal(mount.readOnly, true);
    assert.ok(posix.basename(config) in one('ConfigMap').data, `ConfigMap has key ${posix.basename(config)}`);
  });

  it('gives the socket hooks the node\'s cgroup2 root: an init container mounts it in the host\'s namespaces, the controller gets it as --cgroup-root', () => {
    const pod = one('DaemonSet').spec.template.spec as Obj;
    const c = container(one('DaemonSet'), NAME);
    const init = (pod.initContainers as Obj[]).find((x) => x.name === 'mount-cgroup')!;
    assert.ok(init, 'a mount-cgroup init container');
    const cmd = (init.command as string[]).join(' ');
    assert.match(cmd, /^nsenter --mount=\/hostproc\/1\/ns\/mnt --cgroup=\/hostproc\/1\/ns\/cgroup -- sh -ec /);
    assert.match(cmd, /mount -t cgroup2 none \/run\/kube-xdp\/cgroupv2/);
    assert.match(cmd, /mountpoint -q \/run\/kube-xdp\/cgroupv2 \|\|/, 'mounts once, whatever restarts');
    assert.deepEqual(mountAt(pod, init, '/hostproc').volume.hostPath, { path: '/proc', type: 'Directory' });
    const args = c.command as string[];
    assert.equal(args[args.indexOf('--cgroup-root') + 1], '/run/kube-xdp/cgroupv2');
    assert.deepEqual(mountAt(pod, c, '/run/kube-xdp/cgroupv2').volume.hostPath, { path: '/run/kube-xdp/cgroupv2', type: 'DirectoryOrCreate' });
  });

  it('mounts bpffs in the host\'s mount namespace when the node has not, before the controller binds /sys/fs/bpf', () => {
    const pod = one('DaemonSet').spec.template.spec as Obj;
    const inits = pod.initContainers as Obj[];
    const init = inits.find((x) => x.name === 'mount-bpffs');
    assert.ok(init, 'a mount-bpffs init container');
    assert.deepEqual(init.command, ['nsenter', '--mount=/hostproc/1/ns/mnt', '--', 'sh', '-ec', 'mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf']);
    assert.deepEqual(mountAt(pod, init, '/hostproc').volume.hostPath, { path: '/proc', type: 'Directory' });
    const c = container(one('DaemonSet'), NAME);
    assert.equal(mountAt(pod, c, '/sys/fs/bpf').volume.hostPath?.path, '/sys/fs/bpf');
  });

  it('gives the main container a capability list (each justified), only the init containers are privileged', () => {
    const ds = one('DaemonSet');
    const pod = ds.spec.template.spec as Obj;
    const c = container(ds, NAME);
    const sc = c.securityContext as Obj;
    assert.equal(sc.allowPrivilegeEscalation, false);
    assert.deepEqual(sc.capabilities.drop, ['ALL']);
    // test/lab/capabilities.test.ts runs the controller with exactly this list.
    assert.deepEqual(sc.capabilities.add, ['BPF', 'PERFMON', 'NET_ADMIN', 'NET_RAW', 'SYS_RESOURCE']);
    assert.ok(!(sc.capabilities.add as string[]).includes('SYS_ADMIN'), 'no CAP_SYS_ADMIN');
    const text = read('deploy/kube-xdp.yaml');
    for (const cap of sc.capabilities.add as string[]) {
      assert.match(text, new RegExp(`^\\s+- ${cap} # \\S.{10,}$`, 'm'), `${cap}: a comment justifying it on its line`);
    }
    for (const x of pod.containers as Obj[]) assert.notEqual(x.securityContext?.privileged, true, `${x.name} is not privileged`);
    assert.ok((pod.initContainers as Obj[]).every((x) => x.securityContext?.privileged === true), 'the init containers (they mount, write /proc/sys) are privileged');
    // /proc/sys is read-only unprivileged: an init container sets accept_local for every
    // interface (pod veths come later), which the controller then finds set.
    const sysctls = (pod.initContainers as Obj[]).find((x) => x.name === 'net-sysctls');
    assert.ok(sysctls, 'a net-sysctls init container');
    assert.match((sysctls.command as string[]).join(' '), /echo 1 > \/proc\/sys\/net\/ipv4\/conf\/all\/accept_local/);
  });

  it('mounts bpffs (HostToContainer: Bidirectional needs privileged), the xtables lock and the kernel modules from the host', () => {
    const pod = one('DaemonSet').spec.template.spec as Obj;
    const c = container(one('DaemonSet'), NAME);
    const bpf = mountAt(pod, c, '/sys/fs/bpf');
    assert.equal(bpf.mount.mountPropagation, 'HostToContainer');
    assert.deepEqual(bpf.volume.hostPath, { path: '/sys/fs/bpf', type: 'DirectoryOrCreate' });
    const lock = mountAt(pod, c, '/run/xtables.lock');
    assert.deepEqual(lock.volume.hostPath, { path: '/run/xtables.lock', type: 'FileOrCreate' });
    const mods = mountAt(pod, c, '/lib/modules');
    assert.equal(mods.mount.readOnly, true);
    assert.equal(mods.volume.hostPath?.path, '/lib/modules');
  });

  it('probes /livez (liveness) and /healthz (readiness) on the configured healthz port', () => {
    const c = container(one('DaemonSet'), NAME);
    const raw = parse(one('ConfigMap').data['config.conf']) as Obj;
    const healthzPort = Number(String(raw.healthzBindAddress).split(':').pop());
    assert.equal(healthzPort, 10256);
    for (const [probe, path] of [[c.livenessProbe, '/livez'], [c.readinessProbe, '/healthz']] as [Obj, string][]) {
      assert.ok(probe?.httpGet, 'httpGet probe');
      assert.deepEqual(probe.httpGet, { host: '127.0.0.1', path, port: healthzPort });
    }
    assert.equal(c.livenessProbe.initialDelaySeconds, 15);
    assert.equal(c.livenessProbe.periodSeconds, 10);
    assert.equal(c.livenessProbe.failureThreshold, 3);
    assert.equal(c.readinessProbe.periodSeconds, 5);
  });

  it('holds a KubeProxyConfiguration kube-xdp accepts', () => {
    const text = one('ConfigMap').data['config.conf'];
    assert.equal(typeof text, 'string');
    const raw = parse(text) as Obj;
    const kpc = parseKubeProxyConfiguration(raw);
    assert.equal(kpc.mode, 'ebpf');
    assert.equal(kpc.masqueradeBit, 14);
    assert.deepEqual(kpc.clusterCIDRs, ['10.244.0.0/16']);
    assert.deepEqual(kpc.nodePortAddresses, []);
    assert.equal(kpc.localhostNodePorts, true);
    assert.equal(kpc.minSyncPeriodMs, 1000);
    assert.equal(kpc.syncPeriodMs, 30_000);
    assert.equal(kpc.metricsBindAddress, '127.0.0.1:10249');
    assert.equal(kpc.healthzBindAddress, '0.0.0.0:10256');
  });

  it("gives `kube-xdp run` a valid configuration (command, env, ConfigMap; --api-server once uncommented)", () => {
    const ds = one('DaemonSet');
    const c = container(ds, NAME);
    const dir = mkdtempSync(join(tmpdir(), 'kx-manifest-'));
    try {
      const conf = join(dir, 'config.conf');
      writeFileSync(conf, one('ConfigMap').data['config.conf']);
      const env: Record<string, string> = { NODE_NAME: 'node-a' };
      for (const e of c.env as Obj[]) if (typeof e.value === 'string') env[e.name] = e.value;
      // The kubelet expands $(VAR) from the container's env; the ConfigMap is mounted elsewhere here.
      const argv = (c.command as string[]).slice(2)
        .map((a) => a.replace(/\$\((\w+)\)/g, (_, n: string) => env[n] ?? ''))
        .map((a) => (a === '/var/lib/kube-xdp/config.conf' ? conf : a));
      const cfg = runConfig(argv, env);
      assert.equal(cfg.source.kind, 'kubernetes');
      assert.equal(cfg.proxy.nodeName, 'node-a');
      assert.equal(cfg.proxy.mode, 'ebpf');
      assert.deepEqual(cfg.externalInterfaces, ['eth0']);
      assert.equal(cfg.proxy.masqueradeBit, 14);
      assert.equal(cfg.healthzBindAddress, '0.0.0.0:10256');
      assert.equal(cfg.metricsBindAddress, '127.0.0.1:10249');
      // The commented-out flag names a real one: uncommented with an address, it is accepted.
      const commented = [...read('deploy/kube-xdp.yaml').matchAll(/^\s*# - (\S+)$/gm)].map((m) => m[1]!);
      const i = commented.indexOf('--api-server');
      assert.ok(i >= 0, 'a commented-out --api-server');
      assert.equal(commented[i + 1], 'https://<control-plane>:6443');
      const withServer = runConfig([...argv, '--api-server', commented[i + 1]!.replace('<control-plane>', '192.0.2.10')], env);
      assert.equal(withServer.source.kind === 'kubernetes' && withServer.source.apiServer, 'https://192.0.2.10:6443');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('deploy/kube-xdp-cleanup.yaml', () => {
  const docs = loadDocs('deploy/kube-xdp-cleanup.yaml');

  it('runs `kube-xdp cleanup` once per node with the same host access', () => {
    assert.deepEqual(docs.map((d) => d.kind), ['DaemonSet']);
    const ds = docs[0]!;
    assert.equal(ds.metadata.namespace, 'kube-system');
    const pod = checkNodeDaemonSet(ds);
    const [init] = pod.initContainers as Obj[];
    assert.ok(init);
    assert.deepEqual(init.command, [NAME, 'cleanup']);
    assert.equal(init.image, container(one('DaemonSet'), NAME).image, 'same image as the DaemonSet');
    assert.equal(init.securityContext?.privileged, true);
    for (const path of ['/sys/fs/bpf', '/run/xtables.lock', '/lib/modules']) {
      assert.equal(mountAt(pod, init, path).volume.hostPath?.path, path);
    }
  });
});

// --- Dockerfile -------------------------------------------------------------------------------

interface Instruction { readonly op: string; readonly args: string }
interface Stage { readonly from: string; readonly name: string | null; readonly body: Instruction[] }

/** Instructions (continuations joined, comments dropped) grouped by FROM. */
function dockerStages(text: string): Stage[] {
  const logical: string[] = [];
  let cur = '';
  for (const line of text.split('\n')) {
    if (/^\s*#/.test(line)) continue;
    if (/\\\s*$/.test(line)) { cur += `${line.replace(/\\\s*$/, '')} `; continue; }
    cur += line;
    if (cur.trim() !== '') logical.push(cur.trim().replace(/\s+/g, ' '));
    cur = '';
  }
  const stages: Stage[] = [];
  for (const l of logical) {
    const m = /^(\w+)\s+(.*)$/.exec(l);
    assert.ok(m, `Dockerfile: cannot read ${JSON.stringify(l)}`);
    const op = m[1]!.toUpperCase();
    if (op === 'FROM') {
      const f = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(m[2]!);
      assert.ok(f, `Dockerfile: FROM ${m[2]}`);
      stages.push({ from: f[1]!, name: f[2] ?? null, body: [] });
    } else {
      assert.ok(stages.length > 0 || op === 'ARG', `Dockerfile: ${op} before FROM`);
      stages.at(-1)?.body.push({ op, args: m[2]! });
    }
  }
  return stages;
}

const workdir = (s: Stage) => s.body.filter((i) => i.op === 'WORKDIR').at(-1)?.args ?? '/';
const runs = (s: Stage) => s.body.filter((i) => i.op === 'RUN').map((i) => i.args).join(' ; ');
const aptPackages = (s: Stage) => new Set(
  [...runs(s).matchAll(/apt-get install ([^;&|]*)/g)].flatMap((m) => m[1]!.split(' ')).filter((w) => w !== '' && !w.startsWith('-')),
);
interface Copy { readonly from: string | null; readonly srcs: string[]; readonly targets: string[] }
/** The arguments of every `make` command (a command: at the start or after ; && ||). */
const makeTargets = (sh: string) => [...sh.matchAll(/(?:^|[;&|]) ?make ([^;&|]*)/g)].flatMap((m) => m[1]!.trim().split(' '));
/** COPY [--from=X] SRC... DEST: each source's absolute target (DEST/basename when DEST is a
 * directory: several sources or a trailing slash; else DEST itself), against the WORKDIR. */
function copies(s: Stage): Copy[] {
  return s.body.filter((i) => i.op === 'COPY').map((i) => {
    const words = i.args.split(' ');
    const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length) ?? null;
    const paths = words.filter((w) => !w.startsWith('--'));
    assert.ok(paths.length >= 2, `COPY ${i.args}`);
    const srcs = paths.slice(0, -1);
    const dest = paths.at(-1)!;
    const dir = srcs.length > 1 || dest.endsWith('/');
    const targets = srcs.map((src) => posix.resolve(workdir(s), dest, dir ? posix.basename(src) : ''));
    return { from, srcs, targets };
  });
}

describe('Dockerfile', () => {
  const stages = dockerStages(read('Dockerfile'));
  const [build, runtime] = stages;

  it('has a build stage and a slim runtime stage', () => {
    assert.equal(stages.length, 2);
    assert.equal(build!.from, 'node:20-bookworm');
    assert.equal(build!.name, 'build');
    assert.match(runtime!.from, /^node:20-bookworm-slim$/);
  });

  it('installs the build and runtime tools', () => {
    const b = aptPackages(build!);
    for (const p of ['clang', 'llvm', 'libbpf-dev', 'bpftool', 'libelf-dev', 'zlib1g-dev', 'gcc', 'make']) assert.ok(b.has(p), `build installs ${p}`);
    const r = aptPackages(runtime!);
    for (const p of ['libbpf1', 'libelf1', 'iptables', 'nftables', 'ipset', 'ipvsadm', 'conntrack', 'iproute2', 'kmod', 'ca-certificates']) {
      assert.ok(r.has(p), `runtime installs ${p}`);
    }
    assert.match(runs(runtime!), /--no-install-recommends/);
    for (const dev of ['clang', 'llvm', 'gcc', 'make', 'libbpf-dev']) assert.ok(!r.has(dev), `runtime does not install ${dev}`);
  });

  it('compiles without the Makefile targets that re-run apt-get and npm ci', () => {
    const sh = runs(build!);
    assert.match(sh, /npm ci\b/);
    const targets = makeTargets(sh).filter((w) => !w.includes('='));
    assert.deepEqual(targets.sort(), ['bpf', 'native']);
    assert.match(sh, /npx tsc -p tsconfig\.json/);
    assert.match(sh, /npm prune --omit=dev/);
    // build/vmlinux.h exists before make runs (its Makefile rule reads the build host's BTF).
    const dump = sh.search(/bpftool btf dump file "?\$\{?VMLINUX_BTF\}?"? format c > build\/vmlinux\.h/);
    assert.ok(dump >= 0 && dump < sh.search(/(?:^|[;&|]) ?make /), 'build/vmlinux.h is dumped from $VMLINUX_BTF before make');
    assert.ok(build!.body.some((i) => i.op === 'ARG' && /^VMLINUX_BTF=\/sys\/kernel\/btf\/vmlinux$/.test(i.args)), 'ARG VMLINUX_BTF');
  });

  it('takes its sources from files the build context holds', () => {
    const ignore = read('.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
    const toRe = (p: string) => new RegExp(`^${p.split('**/').map((part) => part.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')).join('(?:.*/)?')}$`);
    const ignored = (path: string) => {
      const parts = path.split('/');
      return parts.some((_, i) => ignore.some((p) => toRe(p).test(parts.slice(0, i + 1).join('/'))));
    };
    for (const c of copies(build!)) {
      assert.equal(c.from, null);
      for (const s of c.srcs) {
        assert.ok(existsSync(join(ROOT, s)), `${s} exists in the repository`);
        assert.ok(!ignored(s), `${s} is not excluded by .dockerignore`);
      }
    }
    for (const p of ['node_modules', 'dist', 'build', '.git']) assert.ok(ignored(p), `.dockerignore excludes ${p}`);
    assert.ok(ignored('bench/results/x.json'));
    // Everything the TypeScript build compiles from src/ is copied.
    assert.ok(copies(build!).some((c) => c.srcs.includes('src')));
  });

  it('copies into the runtime only what the build stage produced', () => {
    const root = workdir(build!);
    const makefile = read('Makefile');
    const targetFiles = (t: string) => (new RegExp(`^${t}:(.*)$`, 'm').exec(makefile)?.[1] ?? '').trim().split(/\s+/).map((f) => f.replace('$(BUILD)', 'build'));
    const sh = runs(build!);
    const copiedIntoBuild = copies(build!).flatMap((c) => c.targets.map((t) => posix.relative(root, t)));
    const produced = (rel: string): boolean => {
      if (copiedIntoBuild.some((p) => rel === p || rel.startsWith(`${p}/`))) return true;
      if (rel === 'node_modules') return /npm ci\b/.test(sh);
      if (rel === 'dist') return /\btsc\b/.test(sh);
      return makeTargets(sh).some((t) => targetFiles(t).includes(rel));
    };
    const fromBuild = copies(runtime!).filter((c) => c.from === 'build');
    assert.ok(fromBuild.length > 0);
    const shipped: string[] = [];
    for (const c of fromBuild) {
      c.srcs.forEach((s, i) => {
        assert.ok(s.startsWith(`${root}/`), `${s} is under the build WORKDIR ${root}`);
        const rel = posix.relative(root, s);
        assert.ok(produced(rel), `${rel} is produced by the build stage`);
        shipped.push(c.targets[i]!);
      });
    }
    // The layout the code resolves from dist/: ../../../build/{kube_xdp.bpf.o,libkx.so}.
    const app = '/opt/kube-xdp';
    assert.equal(relative(ROOT, DEFAULT_OBJECT), join('build', 'kube_xdp.bpf.o'));
    const saved = process.env.KUBE_XDP_LIBKX;
    delete process.env.KUBE_XDP_LIBKX;
    try {
      assert.equal(relative(ROOT, defaultLibkxPath()), join('build', 'libkx.so'));
    } finally {
      if (saved !== undefined) process.env.KUBE_XDP_LIBKX = saved;
    }
    for (const p of ['package.json', 'node_modules', 'dist', 'build/kube_xdp.bpf.o', 'build/libkx.so']) {
      assert.ok(shipped.includes(`${app}/${p}`), `runtime has ${app}/${p} (got ${shipped.join(', ')})`);
    }
  });

  it('puts kube-xdp on PATH and leaves the command to the DaemonSet', () => {
    assert.match(read('src/cli/main.ts'), /^#!\/usr\/bin\/env node\n/);
    assert.match(runs(build!), /chmod [0-7]*755 dist\/src\/cli\/main\.js|chmod \+x dist\/src\/cli\/main\.js/);
    assert.match(runs(runtime!), /ln -s \/opt\/kube-xdp\/dist\/src\/cli\/main\.js \/usr\/local\/bin\/kube-xdp/);
    assert.ok(!runtime!.body.some((i) => i.op === 'ENTRYPOINT'), 'no ENTRYPOINT: the DaemonSet gives the command');
    assert.deepEqual(JSON.parse(runtime!.body.filter((i) => i.op === 'CMD').at(-1)!.args), ['kube-xdp', '--help']);
    assert.equal(container(one('DaemonSet'), NAME).command[0], 'kube-xdp');
  });
});
