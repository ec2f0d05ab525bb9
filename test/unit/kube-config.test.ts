// The kubernetes source's configuration: where the API server is, credentials, timings, and
// the pure pieces (trimming, node facts, backoff, histogram metrics).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError } from '../../src/config/flags.js';
import { parseKubeProxyConfiguration } from '../../src/config/kube-proxy-config.js';
import { runConfig } from '../../src/config/run-config.js';
import { effectiveNodeIPs } from '../../src/controller/controller.js';
import { Metrics } from '../../src/observe/metrics.js';
import { backoffDelay } from '../../src/source/kube/backoff.js';
import { validApiServer } from '../../src/config/run-config.js';
import { kubeConfigOrigin, loadKubeConfig } from '../../src/source/kube/kubeconfig.js';
import { changeTriggerTime, nodeInfo, trimObject } from '../../src/source/kube/trim.js';

const dir = mkdtempSync(join(tmpdir(), 'kx-kubeconfig-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const KPC = { apiVersion: 'kubeproxy.config.k8s.io/v1alpha1', kind: 'KubeProxyConfiguration' };

function configError(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof ConfigError && re.test(err.message), `expected ${re}`);
}

const kubeconfigFile = join(dir, 'kubeconfig');
writeFileSync(kubeconfigFile, [
  'apiVersion: v1', 'kind: Config', 'current-context: lab',
  'clusters:', '- name: lab', '  cluster:', '    server: https://10.0.0.1:6443', '    insecure-skip-tls-verify: true',
  '- name: other', '  cluster:', '    server: https://10.9.9.9:6443',
  'users:', '- name: admin', '  user:', '    token: abc',
  'contexts:', '- name: lab', '  context:', '    cluster: lab', '    user: admin',
].join('\n'));

describe('API server credentials', () => {
  it('follows kube-proxy\'s order: --kubeconfig, $KUBECONFIG, in-cluster, --api-server alone', () => {
    assert.equal(kubeConfigOrigin({ kubeconfig: 'x', apiServer: 'https://a' }, { KUBECONFIG: 'y' }, true), 'kubeconfig-flag');
    assert.equal(kubeConfigOrigin({}, { KUBECONFIG: 'y' }, true), 'KUBECONFIG');
    assert.equal(kubeConfigOrigin({ apiServer: 'https://a' }, {}, true), 'in-cluster');
    assert.equal(kubeConfigOrigin({ apiServer: 'https://a' }, {}, false), 'api-server-only');
    configError(() => kubeConfigOrigin({}, {}, false), /--kubeconfig: no API server credentials/);
  });

  it('reads a kubeconfig file, and --api-server replaces only the current cluster\'s address', () => {
    const { kc, origin } = loadKubeConfig({ kubeconfig: kubeconfigFile }, {});
    assert.equal(origin, 'kubeconfig-flag');
    assert.equal(kc.getCurrentCluster()?.server, 'https://10.0.0.1:6443');
    assert.equal(kc.getCurrentUser()?.token, 'abc');
    const over = loadKubeConfig({ kubeconfig: kubeconfigFile, apiServer: 'https://192.168.1.10:6443' }, {}).kc;
    assert.equal(over.getCurrentCluster()?.server, 'https://192.168.1.10:6443');
    assert.equal(over.getCurrentUser()?.token, 'abc', 'credentials are kept');
    assert.equal(over.clusters.find((c) => c.name === 'other')?.server, 'https://10.9.9.9:6443');
  });

  it('--api-server alone talks to that server without credentials', () => {
    const { kc, origin } = loadKubeConfig({ apiServer: 'http://127.0.0.1:8080' }, {});
    assert.equal(origin, 'api-server-only');
    assert.equal(kc.getCurrentCluster()?.server, 'http://127.0.0.1:8080');
    assert.equal(kc.getCurrentCluster()?.skipTLSVerify, true, 'client-node refuses http otherwise; there is no TLS to verify');
    assert.equal(loadKubeConfig({ kubeconfig: kubeconfigFile, apiServer: 'https://192.168.1.10:6443' }, {}).kc.getCurrentCluster()?.skipTLSVerify, true, 'as the kubeconfig says');
    assert.equal(loadKubeConfig({ apiServer: 'https://192.168.1.10:6443' }, {}).kc.getCurrentCluster()?.skipTLSVerify, false);
  });

  it('names what is wrong', () => {
    configError(() => loadKubeConfig({ kubeconfig: join(dir, 'missing') }, {}), /--kubeconfig: .*missing/);
    configError(() => validApiServer('10.0.0.1:6443'), /--api-server: "10.0.0.1:6443"/);
    configError(() => validApiServer('ftp://10.0.0.1'), /scheme must be https or http/);
    configError(() => validApiServer('https://10.0.0.1:6443/api'), /want only scheme, host and port/);
    assert.equal(validApiServer('https://[fd00::1]:6443'), 'https://[fd00::1]:6443');
  });
});

describe('run configuration for the kubernetes source', () => {
  it('is the default source, with kube-proxy\'s bind addresses', () => {
    const c = runConfig(['--external-interfaces', 'eth0', '--api-server', 'https://10.0.0.1:6443'], {});
    assert.equal(c.source.kind, 'kubernetes');
    assert.deepEqual(c.source, { kind: 'kubernetes', apiServer: 'https://10.0.0.1:6443', requestTimeoutMs: 60_000, inactivityMs: 120_000, relistPeriodMs: 1_800_000, maxBackoffMs: 30_000 });
    assert.equal(c.metricsBindAddress, '127.0.0.1:10249');
    assert.equal(c.healthzBindAddress, '0.0.0.0:10256');
  });

  it('takes kubeconfig and bind addresses from the KubeProxyConfiguration; flags win', () => {
    const file = join(dir, 'kpc.yaml');
    writeFileSync(file, JSON.stringify({ ...KPC, clientConnection: { kubeconfig: '/var/lib/kube-xdp/kubeconfig' }, metricsBindAddress: '0.0.0.0:9999', healthzBindAddress: '' }));
    const c = runConfig(['--external-interfaces', 'eth0', '--config', file], {});
    assert.equal(c.source.kind === 'kubernetes' && c.source.kubeconfig, '/var/lib/kube-xdp/kubeconfig');
    assert.equal(c.metricsBindAddress, '0.0.0.0:9999');
    assert.equal(c.healthzBindAddress, '0.0.0.0:10256', 'empty in the file is kube-proxy\'s default');
    const f = runConfig(['--external-interfaces', 'eth0', '--config', file, '--kubeconfig', '/k', '--metrics-bind-address', '127.0.0.1:1'], {});
    assert.equal(f.source.kind === 'kubernetes' && f.source.kubeconfig, '/k');
    assert.equal(f.metricsBindAddress, '127.0.0.1:1');
    assert.equal(runConfig(['--external-interfaces', 'eth0', '--config', file, '--healthz-bind-address', ''], {}).healthzBindAddress, '', 'an empty flag turns it off');
  });

  it('rejects bad values, naming the flag or field', () => {
    const base = ['--external-interfaces', 'eth0'];
    configError(() => runConfig([...base, '--source', 'etcd'], {}), /--source: "etcd" is not supported: want kubernetes or file:PATH/);
    configError(() => runConfig([...base, '--api-watch-inactivity', '0s'], {}), /--api-watch-inactivity: must be greater than 0/);
    configError(() => runConfig([...base, '--api-relist-period', 'soon'], {}), /--api-relist-period: "soon"/);
    configError(() => runConfig([...base, '--healthz-bind-address', '10256'], {}), /--healthz-bind-address: "10256" is not IP or IP:PORT/);
    configError(() => runConfig([...base, '--api-server', 'kube:6443'], {}), /--api-server/);
    configError(() => parseKubeProxyConfiguration({ ...KPC, clientConnection: { kubeconfig: 3 } }), /clientConnection.kubeconfig: 3 is not a string/);
    configError(() => parseKubeProxyConfiguration({ ...KPC, metricsBindAddress: false }), /metricsBindAddress: false is not a string/);
  });

  it('--hostname-override names the node to watch', () => {
    const c = runConfig(['--external-interfaces', 'eth0', '--hostname-override', 'worker-7', '--node-name', 'ignored'], { NODE_NAME: 'env' });
    assert.equal(c.proxy.nodeName, 'worker-7');
    assert.equal(runConfig(['--external-interfaces', 'eth0'], { NODE_NAME: 'from-downward-api' }).proxy.nodeName, 'from-downward-api');
  });
});

describe('what the informers keep', () => {
  const managed = { managedFields: [{ manager: 'kubectl', fieldsV1: { 'f:spec': {} } }], generation: 3, creationTimestamp: '2026-01-01T00:00:00Z' };

  it('trims a Service to the fields the proxier reads', () => {
    const svc = {
      metadata: { name: 'web', namespace: 'default', resourceVersion: '7', uid: 'u1', labels: { app: 'web' }, annotations: { big: 'x'.repeat(1000) }, ...managed },
      spec: { type: 'ClusterIP', clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10'], selector: { app: 'web' }, ports: [{ port: 80, protocol: 'TCP' }], sessionAffinity: 'None' },
      status: { loadBalancer: {} , conditions: [] },
    };
    assert.deepEqual(trimObject('Service', svc), {
      apiVersion: 'v1', kind: 'Service',
      metadata: { name: 'web', namespace: 'default', resourceVersion: '7', uid: 'u1', labels: { app: 'web' } },
      spec: { type: 'ClusterIP', clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10'], ports: [{ port: 80, protocol: 'TCP' }], sessionAffinity: 'None' },
      status: { loadBalancer: {} },
    });
  });

  it('trims an EndpointSlice, keeping the trigger-time annotation and malformed values as they are', () => {
    const slice = {
      metadata: { name: 'web-abc', namespace: 'default', labels: { 'kubernetes.io/service-name': 'web' }, annotations: { 'endpoints.kubernetes.io/last-change-trigger-time': '2026-11-22T10:00:00Z', other: 'y' }, ...managed },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['10.244.1.5'], conditions: { ready: true }, nodeName: 'n1', targetRef: { kind: 'Pod', name: 'web-1' } }, 'garbage'],
      ports: [{ port: 8080, protocol: 'TCP', name: '' }],
    };
    const t = trimObject('EndpointSlice', slice);
    assert.deepEqual(t, {
      apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
      metadata: { name: 'web-abc', namespace: 'default', labels: { 'kubernetes.io/service-name': 'web' }, annotations: { 'endpoints.kubernetes.io/last-change-trigger-time': '2026-11-22T10:00:00Z' } },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['10.244.1.5'], conditions: { ready: true }, nodeName: 'n1' }, 'garbage'],
      ports: [{ port: 8080, protocol: 'TCP', name: '' }],
    });
    assert.equal(changeTriggerTime(t), Date.parse('2026-11-22T10:00:00Z'));
    assert.equal(changeTriggerTime({ metadata: { annotations: { 'endpoints.kubernetes.io/last-change-trigger-time': 'yesterday' } } }), null);
  });

  it('reads the Node\'s zone and addresses in kube-proxy\'s order', () => {
    const node = trimObject('Node', {
      metadata: { name: 'n1', labels: { 'topology.kubernetes.io/zone': 'z1', 'kubernetes.io/os': 'linux' }, ...managed },
      spec: { podCIDR: '10.244.1.0/24' },
      status: { addresses: [{ type: 'Hostname', address: 'n1' }, { type: 'ExternalIP', address: '203.0.113.5' }, { type: 'InternalIP', address: '192.168.77.1' }, { type: 'InternalIP', address: 'fd00::1' }], capacity: { cpu: '2' } },
    });
    assert.deepEqual(node['metadata'], { name: 'n1', labels: { 'topology.kubernetes.io/zone': 'z1' } });
    assert.deepEqual(nodeInfo(node), { name: 'n1', zone: 'z1', addresses: ['192.168.77.1', 'fd00::1', '203.0.113.5'], taints: [], deletionTimestamp: null });
    assert.deepEqual(nodeInfo({ metadata: { name: 'n2' } }), { name: 'n2', zone: null, addresses: [], taints: [], deletionTimestamp: null });
    assert.deepEqual(effectiveNodeIPs([], nodeInfo(node)), ['192.168.77.1', 'fd00::1']);
    assert.deepEqual(effectiveNodeIPs(['10.1.1.1'], nodeInfo(node)), ['10.1.1.1'], 'flags win');
    assert.deepEqual(effectiveNodeIPs([], null), []);
  });
});

describe('retry backoff', () => {
  it('doubles from the base up to the cap, with half of it jittered', () => {
    const opts = { baseMs: 500, maxMs: 30_000 };
    assert.equal(backoffDelay(1, opts, 0), 250);
    assert.equal(backoffDelay(1, opts, 0.999999) < 500, true);
    assert.equal(backoffDelay(2, opts, 0), 500);
    assert.equal(backoffDelay(4, opts, 1), 4000);
    assert.equal(backoffDelay(20, opts, 0), 15_000);
    assert.equal(backoffDelay(20, opts, 1), 30_000);
  });
});

describe('histogram metrics', () => {
  it('prints cumulative buckets, sum and count', async () => {
    const m = new Metrics();
    m.observe('x_seconds', 'h', 0.003, [0.001, 0.01, 0.1]);
    m.observe('x_seconds', 'h', 0.05, [0.001, 0.01, 0.1]);
    m.observe('x_seconds', 'h', 7, [0.001, 0.01, 0.1]);
    const text = await m.render();
    assert.match(text, /# TYPE x_seconds histogram/);
    const lines = text.split('\n').filter((l) => l.startsWith('x_seconds'));
    assert.deepEqual(lines, [
      'x_seconds_bucket{le="0.001"} 0', 'x_seconds_bucket{le="0.01"} 1', 'x_seconds_bucket{le="0.1"} 2', 'x_seconds_bucket{le="+Inf"} 3',
      'x_seconds_sum 7.053', 'x_seconds_count 3',
    ]);
  });
});
