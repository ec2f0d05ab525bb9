import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError } from '../../src/config/flags.js';
import { parseGoDuration, parseKubeProxyConfiguration } from '../../src/config/kube-proxy-config.js';
import { runConfig } from '../../src/config/run-config.js';
import { masqueradeMarkFor } from '../../src/dataplane/iptables/config.js';
import { iptablesConfigs, proxyFamilies } from '../../src/dataplane/iptables/setup.js';

const KPC = { apiVersion: 'kubeproxy.config.k8s.io/v1alpha1', kind: 'KubeProxyConfiguration' };
const dir = mkdtempSync(join(tmpdir(), 'kx-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function configError(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof ConfigError && re.test(err.message));
}

describe('KubeProxyConfiguration', () => {
  it('reads the fields kube-xdp uses', () => {
    const c = parseKubeProxyConfiguration({
      ...KPC, mode: 'iptables', clusterCIDR: '10.244.0.0/16,fd00:10::/56', nodePortAddresses: ['192.168.77.0/24'],
      hostnameOverride: 'node1', iptables: { masqueradeAll: true, masqueradeBit: 12, localhostNodePorts: false, minSyncPeriod: '1s', syncPeriod: '1m0s' },
      ipvs: { scheduler: 'wrr', excludeCIDRs: ['10.0.0.0/8'], strictARP: true, tcpTimeout: '15m0s', udpTimeout: '0s' },
      nftables: { syncPeriod: '1m' }, // the nftables mode's own section
    });
    assert.deepEqual(c, {
      mode: 'iptables', hostnameOverride: 'node1', bindAddress: '0.0.0.0', clusterCIDRs: ['10.244.0.0/16', 'fd00:10::/56'], nodePortAddresses: ['192.168.77.0/24'],
      masqueradeAll: true, masqueradeBit: 12, localhostNodePorts: false, minSyncPeriodMs: 1000, syncPeriodMs: 60_000, kubeconfig: '',
      metricsBindAddress: '127.0.0.1:10249', healthzBindAddress: '0.0.0.0:10256', oomScoreAdj: -999, verbosity: 0, logFormat: 'text',
      ipvs: { scheduler: 'wrr', minSyncPeriodMs: 0, syncPeriodMs: 30_000, excludeCIDRs: ['10.0.0.0/8'], strictARP: true, tcpTimeoutS: 900, tcpFinTimeoutS: 0, udpTimeoutS: 0 },
      nftables: { masqueradeAll: false, masqueradeBit: 14, minSyncPeriodMs: 1000, syncPeriodMs: 60_000 },
      warnings: [],
    });
    assert.equal(parseKubeProxyConfiguration({ ...KPC, mode: '' }).mode, null, '"" is kube-xdp\'s default mode');
  });

  it('names the field that is wrong', () => {
    configError(() => parseKubeProxyConfiguration({ ...KPC, apiVersion: 'v1' }), /apiVersion: "v1"/);
    configError(() => parseKubeProxyConfiguration({ ...KPC, mode: 'userspace' }), /--config: mode: "userspace" is not supported/);
    configError(() => parseKubeProxyConfiguration({ ...KPC, clusterCIDR: '10.244.0.0/16,nope' }), /clusterCIDR: "nope" \(entry 1\)/);
    configError(() => parseKubeProxyConfiguration({ ...KPC, nodePortAddresses: ['10.0.0.0/8', '1.2.3.4'] }), /nodePortAddresses\[1\]: "1.2.3.4"/);
    configError(() => parseKubeProxyConfiguration({ ...KPC, iptables: { masqueradeBit: 32 } }), /iptables.masqueradeBit: 32 must be/);
    configError(() => parseKubeProxyConfiguration({ ...KPC, iptables: { masqueradeAll: 'yes' } }), /iptables.masqueradeAll: "yes" is not true or false/);
    configError(() => parseKubeProxyConfiguration({ ...KPC, iptables: { syncPeriod: '30 seconds' } }), /iptables.syncPeriod: "30 seconds"/);
    configError(() => parseKubeProxyConfiguration({ ...KPC, iptables: { syncPeriod: '-1s' } }), /iptables.syncPeriod: must be greater than 0/);
  });

  it('parses Go durations', () => {
    assert.equal(parseGoDuration('f', '1h30m'), 5_400_000);
    assert.equal(parseGoDuration('f', '250ms'), 250);
    assert.equal(parseGoDuration('f', '1.5s'), 1500);
    configError(() => parseGoDuration('f', '5'), /f: "5"/);
  });
});

describe('run configuration', () => {
  const file = join(dir, 'kube-proxy.yaml');
  writeFileSync(file, [
    `apiVersion: ${KPC.apiVersion}`, `kind: ${KPC.kind}`, 'mode: iptables', 'clusterCIDR: 10.244.0.0/16',
    'iptables:', '  masqueradeBit: 13', '  syncPeriod: 45s',
  ].join('\n'));
  const base = ['--source', 'file:/dev/null', '--node-name', 'n1'];

  it('iptables mode from the config file; flags win over it', () => {
    const c = runConfig([...base, '--config', file], {});
    assert.equal(c.proxy.mode, 'iptables');
    assert.deepEqual(c.proxy.clusterCIDRs, ['10.244.0.0/16']);
    assert.equal(c.proxy.masqueradeBit, 13);
    assert.equal(c.syncPeriodMs, 45_000);
    const f = runConfig([...base, '--config', file, '--cluster-cidr', '10.0.0.0/8', '--sync-period', '10s', '--iptables-masquerade-bit', '14'], {});
    assert.deepEqual(f.proxy.clusterCIDRs, ['10.0.0.0/8']);
    assert.equal(f.syncPeriodMs, 10_000);
    assert.equal(f.proxy.masqueradeBit, 14);
    assert.equal(f.proxy.fibForward, false);
    assert.equal(runConfig([...base, '--mode', 'iptables', '--bpf-fib-forward'], {}).proxy.fibForward, true);
  });

  it('the eBPF mode still needs its interfaces; iptables mode does not', () => {
    configError(() => runConfig(base, {}), /--external-interfaces: at least one interface/);
    assert.equal(runConfig([...base, '--mode', 'iptables'], {}).proxy.mode, 'iptables');
    configError(() => runConfig([...base, '--mode', 'userspace'], {}), /--mode: "userspace" is not supported: unknown mode \(want ebpf, iptables, ipvs, nftables, auto or ""\)/);
    configError(() => runConfig([...base, '--mode', 'iptables', '--cluster-cidr', '10.244.0.0'], {}), /--cluster-cidr: "10.244.0.0" is not a CIDR/);
    configError(() => runConfig([...base, '--mode', 'iptables', '--iptables-localhost-nodeports', 'yes'], {}), /--iptables-localhost-nodeports/);
  });

  it('one iptables config per family, with the mark derived from the bit as kube-proxy does', () => {
    assert.equal(masqueradeMarkFor(14), '0x00004000');
    assert.equal(masqueradeMarkFor(0), '0x00000001');
    const c = runConfig([...base, '--mode', 'iptables', '--cluster-cidr', '10.244.0.0/16,fd00:10::/56', '--node-ip', '192.168.77.1'], {});
    const families = proxyFamilies(c.proxy);
    assert.deepEqual(families, ['IPv4', 'IPv6']);
    const configs = iptablesConfigs(c.proxy, families, {
      localAddresses: { IPv4: ['127.0.0.1', '192.168.77.9'], IPv6: ['::1', 'fd00:77::1'] }, randomFully: true, conntrackTCPLiberal: false,
    });
    assert.deepEqual(configs.map((x) => [x.family, x.nodeIP, x.clusterCIDRs, x.masqueradeMark]), [
      ['IPv4', '192.168.77.1', ['10.244.0.0/16'], '0x00004000'],
      ['IPv6', 'fd00:77::1', ['fd00:10::/56'], '0x00004000'],
    ]);
  });
});
