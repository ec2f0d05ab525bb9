// kube-proxy's command line, as is: no subcommand (or `proxy`), kube-proxy's flag names and
// meanings, per-command --help, --version, a typo answered with the usage and a suggestion.
// Only invocations that stop before touching the node are spawned here; `--cleanup` for real
// runs in a lab namespace (test/lab/kubeadm-cmdline.test.ts).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { ConfigError } from '../../src/config/flags.js';
import { runConfig } from '../../src/config/run-config.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const VERSION = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

function kubeXdp(...args: string[]) {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' }, timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function configError(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof ConfigError && re.test(err.message), `expected ${re}`);
}

const EBPF = { KUBE_XDP_EXTERNAL_INTERFACES: 'eth0' };

describe('kube-xdp, as kube-proxy is run', () => {
  it('--version and per-command --help answer on stdout with exit 0', () => {
    for (const args of [['--version'], ['proxy', '--version'], ['run', '--version']]) {
      assert.deepEqual(kubeXdp(...args), { code: 0, stdout: `kube-xdp v${VERSION}\n`, stderr: '' }, args.join(' '));
    }
    const run = kubeXdp('run', '--help');
    assert.equal(run.code, 0);
    assert.match(run.stdout, /^usage: kube-xdp run \[flags\]\n {2}run {6}--source/);
    assert.doesNotMatch(run.stdout, /^ {2}inspect/m, 'only run\'s usage');
    const proxy = kubeXdp('--config=/nonexistent', '--help');
    assert.equal(proxy.code, 0, 'help wins over the other flags');
    assert.match(proxy.stdout, /^usage: kube-xdp \[proxy\] \[flags\]\n {2}proxy {4}kube-proxy's command line/);
    assert.match(kubeXdp('inspect', '-h').stdout, /^usage: kube-xdp inspect/);
    assert.match(kubeXdp('--help').stdout, /^usage: kube-xdp \[kube-proxy's flags\] \| kube-xdp <command>/);
  });

  it('answers a flag typo with the closest flag and the command\'s usage (exit 2)', () => {
    const r = kubeXdp('--config=/var/lib/kube-proxy/config.conf', '--hostname-overide=node1');
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^kube-xdp: --hostname-overide: unknown flag \(did you mean --hostname-override\?\)\nusage: kube-xdp \[proxy\]/);
    const i = kubeXdp('inspect', '--bpf-pin-dri', '/x');
    assert.equal(i.code, 2);
    assert.match(i.stderr, /--bpf-pin-dri: unknown flag \(did you mean --bpf-pin-dir\?\)\nusage: kube-xdp inspect/);
    assert.match(kubeXdp('--no-such-flag').stderr, /--no-such-flag: unknown flag\nusage/, 'no suggestion when nothing is close');
  });

  it('rejects kube-proxy\'s modes kube-xdp has not, before doing anything', () => {
    const r = kubeXdp('--proxy-mode=kernelspace', '--cleanup');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--proxy-mode: "kernelspace" is not supported: kernelspace is the Windows mode/);
  });
});

describe("kube-proxy's flags", () => {
  it('--proxy-mode selects the dataplane: kube-proxy\'s modes the fallbacks, ebpf ours; --mode is the same flag', () => {
    assert.equal(runConfig(['--proxy-mode=iptables'], {}).proxy.mode, 'iptables');
    assert.equal(runConfig(['--proxy-mode', 'ipvs'], {}).proxy.mode, 'ipvs');
    assert.equal(runConfig(['--proxy-mode=nftables'], {}).proxy.mode, 'nftables');
    assert.equal(runConfig(['--proxy-mode=ebpf'], EBPF).proxy.mode, 'ebpf');
    assert.equal(runConfig(['--mode=iptables'], {}).proxy.mode, 'iptables');
    configError(() => runConfig(['--proxy-mode=kernelspace'], {}), /--proxy-mode: "kernelspace" is not supported: kernelspace is the Windows mode/);
  });

  it('takes pflag\'s spellings: --flag=value, --bool=true|false, underscores', () => {
    const c = runConfig(['--proxy-mode=iptables', '--masquerade-all=true', '--hostname_override=n9', '--cluster-cidr=10.244.0.0/16,fd00:10::/56'], {});
    assert.equal(c.proxy.masqueradeAll, true);
    assert.equal(c.proxy.nodeName, 'n9');
    assert.deepEqual(c.proxy.clusterCIDRs, ['10.244.0.0/16', 'fd00:10::/56']);
    assert.equal(runConfig(['--proxy-mode=iptables', '--masquerade-all=false'], {}).proxy.masqueradeAll, false);
    configError(() => runConfig(['--proxy-mode=iptables', '--masquerade-all=yes'], {}), /--masquerade-all: "yes" is not true or false/);
  });

  it('--master is the API server; --kubeconfig the credentials', () => {
    const c = runConfig(['--master=https://10.0.0.1:6443', '--kubeconfig=/k'], EBPF);
    assert.equal(c.source.kind === 'kubernetes' && c.source.apiServer, 'https://10.0.0.1:6443');
    assert.equal(c.source.kind === 'kubernetes' && c.source.kubeconfig, '/k');
    configError(() => runConfig(['--master=10.0.0.1:6443'], EBPF), /--api-server: "10.0.0.1:6443" is not a URL/);
  });

  it('bind addresses take IP or IP:PORT (an IP alone gets kube-proxy\'s port); empty turns one off', () => {
    const c = runConfig(['--healthz-bind-address=0.0.0.0', '--metrics-bind-address=::1'], EBPF);
    assert.equal(c.healthzBindAddress, '0.0.0.0:10256');
    assert.equal(c.metricsBindAddress, '[::1]:10249');
    assert.equal(runConfig(['--metrics-bind-address=[::]:9999'], EBPF).metricsBindAddress, '[::]:9999');
    assert.equal(runConfig(['--healthz-bind-address='], EBPF).healthzBindAddress, '');
    configError(() => runConfig(['--healthz-bind-address=node1:10256'], EBPF), /--healthz-bind-address: "node1:10256" is not IP or IP:PORT/);
  });

  it('the sync periods per mode in Go\'s syntax; kube-xdp\'s --sync-period wins over both', () => {
    const ipt = runConfig(['--proxy-mode=iptables', '--iptables-sync-period=1m0s', '--iptables-min-sync-period=2s', '--ipvs-sync-period=5s'], {});
    assert.deepEqual([ipt.syncPeriodMs, ipt.minSyncPeriodMs], [60_000, 2_000]);
    const ipvs = runConfig(['--proxy-mode=ipvs', '--iptables-sync-period=1m0s', '--ipvs-sync-period=5s', '--ipvs-min-sync-period=0s'], {});
    assert.deepEqual([ipvs.syncPeriodMs, ipvs.minSyncPeriodMs], [5_000, 0]);
    assert.equal(runConfig(['--proxy-mode=ipvs', '--ipvs-sync-period=5s', '--sync-period=7s'], {}).syncPeriodMs, 7_000);
    configError(() => runConfig(['--proxy-mode=iptables', '--ipvs-sync-period=5'], {}), /--ipvs-sync-period: "5" is not a duration/);
    configError(() => runConfig(['--proxy-mode=iptables', '--iptables-sync-period=0s'], {}), /--iptables-sync-period: must be greater than 0/);
    const t = runConfig(['--proxy-mode=ipvs', '--ipvs-tcp-timeout=15m0s', '--ipvs-tcpfin-timeout=30s', '--ipvs-udp-timeout=1m'], {});
    assert.deepEqual([t.proxy.ipvs.tcpTimeoutS, t.proxy.ipvs.tcpFinTimeoutS, t.proxy.ipvs.udpTimeoutS], [900, 30, 60]);
    configError(() => runConfig(['--proxy-mode=ipvs', '--ipvs-tcp-timeout=1500ms'], {}), /--ipvs-tcp-timeout: "1500ms" must be whole seconds/);
  });

  it('--nodeport-addresses takes CIDRs and kube-proxy\'s keywords (primary)', () => {
    assert.deepEqual(runConfig(['--proxy-mode=iptables', '--nodeport-addresses=primary'], {}).proxy.nodePortAddresses, ['primary']);
    assert.deepEqual(runConfig(['--proxy-mode=iptables', '--nodeport-addresses=10.0.0.0/8,localhost'], {}).proxy.nodePortAddresses, ['10.0.0.0/8', 'localhost']);
    configError(() => runConfig(['--proxy-mode=iptables', '--nodeport-addresses=eth0'], {}), /--nodeport-addresses: "eth0" is not a CIDR or one of primary, all, localhost/);
  });

  it('--bind-address is the node\'s primary IP (0.0.0.0: not set); --node-ip wins', () => {
    assert.deepEqual(runConfig(['--proxy-mode=iptables', '--bind-address=192.168.77.1'], {}).proxy.nodeIPs, ['192.168.77.1']);
    assert.deepEqual(runConfig(['--proxy-mode=iptables', '--bind-address=0.0.0.0'], {}).proxy.nodeIPs, []);
    assert.deepEqual(runConfig(['--proxy-mode=iptables', '--bind-address=192.168.77.1', '--node-ip=192.168.77.2'], {}).proxy.nodeIPs, ['192.168.77.2']);
  });

  it('--v maps onto the log level (--log-level wins); --oom-score-adj in [-1000, 1000]', () => {
    assert.deepEqual(['0', '2', '4', '6'].map((v) => runConfig([`--v=${v}`], EBPF).logLevel), ['info', 'info', 'debug', 'trace']);
    assert.equal(runConfig(['--v=6', '--log-level=warn'], EBPF).logLevel, 'warn');
    configError(() => runConfig(['--v=high'], EBPF), /--v: "high" is not a log verbosity/);
    assert.equal(runConfig([], EBPF).oomScoreAdj, null, 'without kube-proxy\'s config or flag, left as inherited');
    assert.equal(runConfig(['--oom-score-adj=-999'], EBPF).oomScoreAdj, -999);
    configError(() => runConfig(['--oom-score-adj=-1001'], EBPF), /--oom-score-adj: "-1001" must be an integer in \[-1000, 1000\]/);
  });

  it('accepts what it cannot honour with a warning naming each flag, never silently', () => {
    const c = runConfig(['--conntrack-max-per-core=0', '--kube-api-qps=50', '--profiling', '--detect-local-mode=NodeCIDR'], EBPF);
    assert.deepEqual(c.warnings, [
      '--conntrack-max-per-core=0 is accepted but not honoured by kube-xdp',
      '--kube-api-qps=50 is accepted but not honoured by kube-xdp',
      '--profiling is accepted but not honoured by kube-xdp',
      '--detect-local-mode=NodeCIDR is accepted but not honoured by kube-xdp',
    ]);
    assert.deepEqual(runConfig(['--detect-local-mode=ClusterCIDR'], EBPF).warnings, [], 'kube-xdp\'s own behaviour');
  });

  it('--cleanup needs no eBPF interfaces (it only removes)', () => {
    assert.equal(runConfig(['--cleanup'], {}).cleanup, true);
    configError(() => runConfig([], {}), /--external-interfaces: at least one interface is required in eBPF mode/);
  });

  it('kube-xdp\'s own flags keep working beside kube-proxy\'s', () => {
    const c = runConfig(['--hostname-override=n1', '--external-interfaces=eth1', '--bpf-pin-dir=/sys/fs/bpf/t', '--cgroup-root=/sys/fs/cgroup/unified/t', '--bpf-map-sizes=ct=1024'], {});
    assert.deepEqual([c.externalInterfaces, c.pinDir, c.cgroupRoot, c.mapSizes], [['eth1'], '/sys/fs/bpf/t', '/sys/fs/cgroup/unified/t', { ct: 1024 }]);
    assert.equal(c.proxy.nodeName, 'n1');
  });
});
