// What decides whether and how the IPVS mode starts: the module check, --mode auto's choice,
// kube-proxy's sysctls per kernel, the ipvs settings from flags and the config file.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { chooseMode } from '../../src/cli/mode.js';
import { ConfigError } from '../../src/config/flags.js';
import { runConfig } from '../../src/config/run-config.js';
import { ipvsConfigs, ipvsSysctls } from '../../src/dataplane/ipvs/setup.js';
import { missingModules, parseModulesBuiltin, parseProcModules } from '../../src/kernel/modules.js';

const dir = mkdtempSync(join(tmpdir(), 'kx-ipvs-setup-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('kernel modules', () => {
  const procModules = [
    'ip_vs_rr 12288 1 - Live 0x0000000000000000',
    'ip_vs 204800 3 ip_vs_rr, Live 0x0000000000000000',
    'nf_conntrack 184320 4 xt_conntrack,nf_nat,ip_vs, Live 0x0000000000000000',
  ].join('\n');

  it('reads /proc/modules and modules.builtin', () => {
    assert.deepEqual(parseProcModules(procModules), ['ip_vs_rr', 'ip_vs', 'nf_conntrack']);
    assert.deepEqual(parseModulesBuiltin('kernel/net/netfilter/ipvs/ip_vs.ko\nkernel/net/netfilter/ipvs/ip_vs_sh.ko.xz\n\nkernel/drivers/net/dummy.ko\n'),
      ['ip_vs', 'ip_vs_sh', 'dummy']);
  });

  it('a module is there when loaded or built in; "-" and "_" are the same name', () => {
    const facts = { loaded: new Set(parseProcModules(procModules)), builtin: new Set(['ip_vs_sh']) };
    assert.deepEqual(missingModules(['ip_vs', 'ip_vs_rr', 'nf_conntrack'], facts), []);
    assert.deepEqual(missingModules(['ip_vs', 'ip_vs_sh', 'ip-vs-wrr', 'nf_conntrack'], facts), ['ip_vs_wrr']);
    assert.deepEqual(missingModules(['ip_vs', 'ip_vs_rr', 'nf_conntrack'], { loaded: new Set(), builtin: new Set() }), ['ip_vs', 'ip_vs_rr', 'nf_conntrack']);
  });
});

describe('--mode auto', () => {
  it('takes the first usable mode in the order eBPF, IPVS, iptables', () => {
    assert.equal(chooseMode([{ mode: 'ebpf', unusable: null }]), 'ebpf');
    assert.equal(chooseMode([{ mode: 'ebpf', unusable: 'no BTF' }, { mode: 'ipvs', unusable: null }]), 'ipvs');
    assert.equal(chooseMode([
      { mode: 'ebpf', unusable: 'no --external-interfaces given' }, { mode: 'ipvs', unusable: 'kernel module ip_vs missing' },
      { mode: 'iptables', unusable: null },
    ]), 'iptables');
  });

  it('says why when nothing can run', () => {
    assert.throws(() => chooseMode([
      { mode: 'ebpf', unusable: 'no BTF' }, { mode: 'ipvs', unusable: 'kernel module ip_vs missing' }, { mode: 'iptables', unusable: 'iptables-nft not found' },
    ]), /ebpf: no BTF; ipvs: kernel module ip_vs missing; iptables: iptables-nft not found/);
  });
});

describe('IPVS sysctls (kube-proxy NewProxier)', () => {
  const keys = (r: string, strict = false) => Object.fromEntries(ipvsSysctls(r, strict));

  it('conntrack, expire_nodest_conn, expire_quiescent_template and ip_forward always', () => {
    assert.deepEqual(keys('6.1.0-56-cloud-amd64'), {
      'net/ipv4/vs/conntrack': '1', 'net/ipv4/vs/expire_nodest_conn': '1', 'net/ipv4/vs/expire_quiescent_template': '1', 'net/ipv4/ip_forward': '1',
    });
  });

  it('conn_reuse_mode=0 only on kernels from 4.1 to before 5.9', () => {
    assert.equal(keys('4.0.9')['net/ipv4/vs/conn_reuse_mode'], undefined);
    assert.equal(keys('4.1.0')['net/ipv4/vs/conn_reuse_mode'], '0');
    assert.equal(keys('5.8.18-100.fc31.x86_64')['net/ipv4/vs/conn_reuse_mode'], '0');
    assert.equal(keys('5.9.0')['net/ipv4/vs/conn_reuse_mode'], undefined);
    assert.equal(keys('6.18.44-fc-v595')['net/ipv4/vs/conn_reuse_mode'], undefined);
  });

  it('strictARP adds arp_ignore=1 and arp_announce=2', () => {
    const k = keys('6.1.0', true);
    assert.equal(k['net/ipv4/conf/all/arp_ignore'], '1');
    assert.equal(k['net/ipv4/conf/all/arp_announce'], '2');
  });
});

describe('IPVS settings', () => {
  const base = ['--source', 'file:/dev/null', '--node-name', 'n1'];

  it('flags win over the config file, which wins over kube-proxy\'s defaults', () => {
    assert.deepEqual(runConfig([...base, '--mode', 'ipvs'], {}).proxy.ipvs,
      { scheduler: 'rr', excludeCIDRs: [], strictARP: false, tcpTimeoutS: 0, tcpFinTimeoutS: 0, udpTimeoutS: 0 });
    const file = join(dir, 'kpc.yaml');
    writeFileSync(file, [
      'apiVersion: kubeproxy.config.k8s.io/v1alpha1', 'kind: KubeProxyConfiguration', 'mode: ipvs',
      'iptables:', '  syncPeriod: 1m', 'ipvs:', '  scheduler: lc', '  syncPeriod: 45s', '  minSyncPeriod: 2s', '  excludeCIDRs: [10.200.0.0/16]',
      '  tcpFinTimeout: 30s', '',
    ].join('\n'));
    const fromFile = runConfig([...base, '--config', file], {});
    assert.equal(fromFile.proxy.mode, 'ipvs');
    assert.deepEqual(fromFile.proxy.ipvs, { scheduler: 'lc', excludeCIDRs: ['10.200.0.0/16'], strictARP: false, tcpTimeoutS: 0, tcpFinTimeoutS: 30, udpTimeoutS: 0 });
    // IPVS mode takes its sync periods from the ipvs section, as kube-proxy does.
    assert.equal(fromFile.syncPeriodMs, 45_000);
    assert.equal(fromFile.minSyncPeriodMs, 2_000);
    const flags = runConfig([...base, '--config', file, '--ipvs-scheduler', 'sh', '--ipvs-strict-arp', '--ipvs-exclude-cidrs', '10.201.0.0/16,fd00::/64'], {});
    assert.deepEqual(flags.proxy.ipvs, { scheduler: 'sh', excludeCIDRs: ['10.201.0.0/16', 'fd00::/64'], strictARP: true, tcpTimeoutS: 0, tcpFinTimeoutS: 30, udpTimeoutS: 0 });
  });

  it('names the flag or field that is wrong', () => {
    const bad = (argv: string[], re: RegExp) => assert.throws(() => runConfig([...base, ...argv], {}), (e: unknown) => e instanceof ConfigError && re.test(e.message));
    bad(['--ipvs-scheduler', 'fastest'], /--ipvs-scheduler: "fastest" is not an IPVS scheduler/);
    bad(['--ipvs-exclude-cidrs', '10.0.0.1'], /--ipvs-exclude-cidrs: "10.0.0.1" is not a CIDR/);
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nipvs:\n  tcpTimeout: 1500ms\n');
    bad(['--config', file], /ipvs.tcpTimeout: "1500ms" must be whole seconds/);
  });

  it('one IpvsConfig per family, with the node IP of that family and the mark', () => {
    const proxy = runConfig([...base, '--mode', 'ipvs', '--node-ip', '192.168.77.1', '--cluster-cidr', '10.244.0.0/16,fd00:10::/56', '--ipvs-scheduler', 'mh'], {}).proxy;
    const cfgs = ipvsConfigs(proxy, ['IPv4', 'IPv6'], { randomFully: true }, { IPv4: ['127.0.0.1', '192.168.77.1'], IPv6: ['::1', 'fd00:77::1'] });
    assert.deepEqual(cfgs.map((c) => [c.family, c.nodeIP, c.clusterCIDRs, c.scheduler, c.masqueradeMark]), [
      ['IPv4', '192.168.77.1', ['10.244.0.0/16'], 'mh', '0x00004000'],
      ['IPv6', 'fd00:77::1', ['fd00:10::/56'], 'mh', '0x00004000'],
    ]);
  });
});
