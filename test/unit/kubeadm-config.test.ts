// kubeadm's own kube-proxy ConfigMap (`config.conf`, every field at its zero value) as kube-proxy
// reads it: strict decoding, SetDefaults_KubeProxyConfiguration, validation naming the field.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { parse } from 'yaml';
import { render } from '../../src/cli/render.js';
import { ConfigError } from '../../src/config/flags.js';
import { expandNodePortAddresses, parseKubeProxyConfiguration, readKubeProxyConfiguration } from '../../src/config/kube-proxy-config.js';
import { runConfig } from '../../src/config/run-config.js';

// The compiled test lives in dist/test/unit/; the fixture stays in the source tree.
export const KUBEADM_CONFIG = fileURLToPath(new URL('../../../test/unit/fixtures/kubeadm-kube-proxy-config.conf', import.meta.url));
const TEXT = readFileSync(KUBEADM_CONFIG, 'utf8');
const dir = mkdtempSync(join(tmpdir(), 'kx-kubeadm-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The kubeadm file with one line replaced (the line must exist, or the test proves nothing). */
/** The fixture with each `from` replaced by its `to` (pairs), written to a file. */
function edited(...pairs: string[]): string {
  let text = TEXT;
  for (let i = 0; i < pairs.length; i += 2) {
    assert.ok(text.includes(pairs[i]!), `fixture has ${JSON.stringify(pairs[i])}`);
    text = text.replace(pairs[i]!, pairs[i + 1]!);
  }
  const file = join(dir, `edited-${Math.random().toString(36).slice(2)}.conf`);
  writeFileSync(file, text);
  return file;
}

function configError(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof ConfigError && re.test(err.message), `expected ${re}`);
}

describe("kubeadm's config.conf", () => {
  it('is accepted, and every zero value resolves to kube-proxy\'s default (SetDefaults_KubeProxyConfiguration)', () => {
    const c = readKubeProxyConfiguration(KUBEADM_CONFIG);
    assert.equal(c.mode, null, 'mode "": kube-xdp\'s default mode');
    assert.equal(c.bindAddress, '0.0.0.0');
    assert.equal(c.healthzBindAddress, '0.0.0.0:10256');
    assert.equal(c.metricsBindAddress, '127.0.0.1:10249');
    assert.equal(c.oomScoreAdj, -999);
    assert.equal(c.syncPeriodMs, 30_000, 'iptables.syncPeriod 0s → 30s');
    assert.equal(c.minSyncPeriodMs, 1_000, 'iptables.minSyncPeriod 0s → 1s');
    assert.equal(c.masqueradeBit, 14, 'iptables.masqueradeBit null → 14');
    assert.equal(c.localhostNodePorts, true, 'iptables.localhostNodePorts null → true');
    assert.equal(c.masqueradeAll, false);
    assert.deepEqual(c.ipvs, { scheduler: 'rr', minSyncPeriodMs: 0, syncPeriodMs: 30_000, excludeCIDRs: [], strictARP: false, tcpTimeoutS: 0, tcpFinTimeoutS: 0, udpTimeoutS: 0 });
    assert.deepEqual(c.nftables, { masqueradeAll: false, masqueradeBit: 14, minSyncPeriodMs: 1_000, syncPeriodMs: 30_000 }, 'nftables section: the same defaults');
    assert.deepEqual(c.nodePortAddresses, [], 'null: every node address');
    assert.deepEqual(c.clusterCIDRs, ['10.244.0.0/16']);
    assert.equal(c.hostnameOverride, '');
    assert.equal(c.kubeconfig, '/var/lib/kube-proxy/kubeconfig.conf');
    assert.equal(c.verbosity, 0);
    assert.deepEqual(c.warnings, [], 'zero values are kube-proxy\'s defaults: nothing to warn about');
  });

  it('runs `kube-xdp --config … --cleanup` and the DaemonSet\'s command line (settings resolved, nothing started)', () => {
    const cleanup = runConfig([`--config=${KUBEADM_CONFIG}`, '--cleanup', '--bpf-pin-dir', join(dir, 'pins')], {});
    assert.equal(cleanup.cleanup, true);
    assert.equal(cleanup.pinDir, join(dir, 'pins'));
    // kubeadm's DaemonSet: kube-proxy --config=/var/lib/kube-proxy/config.conf --hostname-override=$(NODE_NAME),
    // kube-xdp's own settings from its environment (the DaemonSet's env).
    const c = runConfig([`--config=${KUBEADM_CONFIG}`, '--hostname-override=node-a'], { KUBE_XDP_EXTERNAL_INTERFACES: 'eth0' });
    assert.equal(c.cleanup, false);
    assert.equal(c.proxy.mode, 'ebpf');
    assert.equal(c.proxy.nodeName, 'node-a');
    assert.deepEqual(c.externalInterfaces, ['eth0']);
    assert.deepEqual(c.source, { kind: 'kubernetes', kubeconfig: '/var/lib/kube-proxy/kubeconfig.conf', requestTimeoutMs: 60_000, inactivityMs: 120_000, relistPeriodMs: 1_800_000, maxBackoffMs: 30_000 });
    assert.equal(c.syncPeriodMs, 30_000);
    assert.equal(c.minSyncPeriodMs, 1_000);
    assert.equal(c.healthzBindAddress, '0.0.0.0:10256', 'the DaemonSet\'s liveness probe finds /healthz');
    assert.equal(c.metricsBindAddress, '127.0.0.1:10249');
    assert.equal(c.oomScoreAdj, -999);
    assert.equal(c.logLevel, 'info');
    assert.deepEqual(c.warnings, []);
  });

  it('is accepted by render, and its clusterCIDR is in the rules', () => {
    const services = join(dir, 'services.yaml');
    writeFileSync(services, [
      'apiVersion: v1', 'kind: Service', 'metadata: {name: web, namespace: default}',
      'spec: {type: ClusterIP, clusterIP: 10.96.0.10, clusterIPs: [10.96.0.10], ipFamilies: [IPv4], ports: [{name: http, port: 80, protocol: TCP, targetPort: 8080}]}',
      '---', 'apiVersion: discovery.k8s.io/v1', 'kind: EndpointSlice',
      'metadata: {name: web-1, namespace: default, labels: {kubernetes.io/service-name: web}}', 'addressType: IPv4',
      'ports: [{name: http, port: 8080, protocol: TCP}]', 'endpoints: [{addresses: [10.244.1.5], conditions: {ready: true}}]',
    ].join('\n'));
    let out = '';
    let errors = '';
    const sink = (f: (s: string) => void) => new Writable({ write(chunk, _enc, cb) { f(String(chunk)); cb(); } });
    render(['--config', KUBEADM_CONFIG, '--mode', 'iptables', '--source', services, '--node-name', 'n1', '--node-ip', '192.168.77.1'],
      sink((s) => (out += s)), sink((s) => (errors += s)));
    assert.equal(errors, '');
    assert.match(out, /-A KUBE-SERVICES -m comment --comment "default\/web:http cluster IP" .*-d 10\.96\.0\.10 --dport 80 -j KUBE-SVC-/);
    assert.match(out, /-d 10\.96\.0\.10 --dport 80 ! -s 10\.244\.0\.0\/16 -j KUBE-MARK-MASQ/, 'clusterCIDR from the file masquerades off-cluster clients');
  });

  it('rejects an unknown field, naming it (strict decoding, as kube-proxy)', () => {
    configError(() => readKubeProxyConfiguration(edited('clusterCIDR: 10.244.0.0/16', 'clusterCidr: 10.244.0.0/16')),
      /--config: clusterCidr: unknown field \(did you mean clusterCIDR\?\)/);
    configError(() => readKubeProxyConfiguration(edited('  syncPeriod: 0s\nipvs:', '  syncPeriodd: 0s\nipvs:')),
      /iptables\.syncPeriodd: unknown field \(did you mean syncPeriod\?\)/);
    configError(() => readKubeProxyConfiguration(edited('  verbosity: 0', '  verbosity: 0\n  colour: true')), /logging\.colour: unknown field/);
    configError(() => readKubeProxyConfiguration(edited('mode: ""', 'mode: ""\nmode: iptables')), /--config: .*[Mm]ap keys must be unique/);
  });

  it('rejects a mistyped or invalid value, naming the field', () => {
    configError(() => readKubeProxyConfiguration(edited('  masqueradeBit: null\n  minSyncPeriod: 0s\n  syncPeriod: 0s\nipvs', '  masqueradeBit: "14"\n  minSyncPeriod: 0s\n  syncPeriod: 0s\nipvs')),
      /iptables\.masqueradeBit: "14" is not an integer/);
    configError(() => readKubeProxyConfiguration(edited('configSyncPeriod: 0s', 'configSyncPeriod: 15')), /configSyncPeriod: 15 is not a duration/);
    configError(() => readKubeProxyConfiguration(edited('configSyncPeriod: 0s', 'configSyncPeriod: 15 minutes')), /configSyncPeriod: "15 minutes" is not a duration/);
    configError(() => readKubeProxyConfiguration(edited('oomScoreAdj: null', 'oomScoreAdj: 2000')), /oomScoreAdj: 2000 must be in \[-1000, 1000\]/);
    configError(() => readKubeProxyConfiguration(edited('mode: ""', 'mode: kernelspace')), /mode: "kernelspace" is not supported: kernelspace is the Windows mode/);
    configError(() => readKubeProxyConfiguration(edited('nodePortAddresses: null', 'nodePortAddresses: [primary, eth0]')),
      /nodePortAddresses\[1\]: "eth0" is not a CIDR or one of primary, all, localhost/);
    configError(() => readKubeProxyConfiguration(edited('healthzBindAddress: ""', 'healthzBindAddress: localhost:10256')), /healthzBindAddress: "localhost:10256" is not IP or IP:PORT/);
    configError(() => readKubeProxyConfiguration(edited('detectLocalMode: ""', 'detectLocalMode: Nodecidr')), /detectLocalMode: "Nodecidr" is not one of/);
    configError(() => readKubeProxyConfiguration(edited('  syncPeriod: 0s\n  tcpFinTimeout', '  syncPeriod: -5s\n  tcpFinTimeout')), /ipvs\.syncPeriod: must be greater than 0/);
  });

  it('takes kube-proxy\'s non-zero values and keywords as kube-proxy does', () => {
    const c = readKubeProxyConfiguration(edited('nodePortAddresses: null', 'nodePortAddresses: [primary]'));
    assert.deepEqual(c.nodePortAddresses, ['primary']);
    assert.deepEqual(expandNodePortAddresses(c.nodePortAddresses, ['192.168.77.1', 'fd00:77::1']), ['192.168.77.1/32', 'fd00:77::1/128']);
    assert.deepEqual(expandNodePortAddresses(['all', '10.0.0.0/8'], []), ['0.0.0.0/0', '::/0', '10.0.0.0/8']);
    assert.deepEqual(expandNodePortAddresses(['localhost'], []), ['127.0.0.0/8', '::1/128']);
    assert.equal(readKubeProxyConfiguration(edited('metricsBindAddress: ""', 'metricsBindAddress: 0.0.0.0')).metricsBindAddress, '0.0.0.0:10249', 'an IP alone takes the default port');
    const v6 = readKubeProxyConfiguration(edited('bindAddress: 0.0.0.0', 'bindAddress: "::"'));
    assert.deepEqual([v6.healthzBindAddress, v6.metricsBindAddress], ['[::]:10256', '[::1]:10249'], 'an IPv6 bindAddress moves the defaults to IPv6');
    assert.equal(readKubeProxyConfiguration(edited('  verbosity: 0', '  verbosity: 4')).verbosity, 4);
    assert.equal(runConfig(['--config', edited('  verbosity: 0', '  verbosity: 4'), '--cleanup'], {}).logLevel, 'debug');
  });

  it('mode: nftables takes the nftables section\'s masquerade settings and periods, and nodePortAddresses defaults to primary', () => {
    const nft = edited('mode: ""', 'mode: nftables', 'nftables:\n  masqueradeAll: false\n  masqueradeBit: null\n  minSyncPeriod: 0s\n  syncPeriod: 0s',
      'nftables:\n  masqueradeAll: true\n  masqueradeBit: 9\n  minSyncPeriod: 2s\n  syncPeriod: 1m0s');
    const cfg = runConfig(['--config', nft, '--cleanup'], {});
    assert.equal(cfg.proxy.mode, 'nftables');
    assert.deepEqual([cfg.proxy.masqueradeAll, cfg.proxy.masqueradeBit, cfg.proxy.minSyncPeriodMs, cfg.proxy.syncPeriodMs], [true, 9, 2_000, 60_000]);
    assert.deepEqual(cfg.proxy.nodePortAddresses, ['primary'], 'kube-proxy\'s nftables default: the node\'s own IPs');
    const ipt = runConfig(['--config', edited('mode: ""', 'mode: iptables'), '--cleanup'], {});
    assert.deepEqual([ipt.proxy.masqueradeAll, ipt.proxy.masqueradeBit, ipt.proxy.nodePortAddresses], [false, 14, []], 'the iptables mode keeps its own section');
  });

  it('warns (never silently drops) what kube-xdp accepts but does not honour, and fields older kubeadm releases wrote', () => {
    const c = parseKubeProxyConfiguration({ ...parse(TEXT), udpIdleTimeout: '250ms', conntrack: { maxPerCore: 65536, tcpBeLiberal: true }, detectLocalMode: 'NodeCIDR' });
    assert.deepEqual(c.warnings, [
      'udpIdleTimeout: no longer a KubeProxyConfiguration field (kube-proxy ignores it too)',
      'detectLocalMode: NodeCIDR is not supported by kube-xdp: traffic is local when its source is in clusterCIDR',
      'conntrack.maxPerCore: 65536 is accepted but not honoured by kube-xdp',
      'conntrack.tcpBeLiberal: true is accepted but not honoured by kube-xdp',
    ]);
    const r = runConfig(['--config', edited('  maxPerCore: null', '  maxPerCore: 65536'), '--cleanup'], {});
    assert.deepEqual(r.warnings, [`${r.warnings[0]!.split(': ')[0]}: conntrack.maxPerCore: 65536 is accepted but not honoured by kube-xdp`]);
  });
});
