// `kube-xdp render --mode nftables`: a List of Services, EndpointSlices and ServiceCIDRs (other
// kinds ignored with a line saying so) → knftables' Dump() of the full-sync transaction, one
// block per family under `# IPv4:` / `# IPv6:`; `mode: nftables` in --config does the same.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { render } from '../../src/cli/render.js';

const dir = mkdtempSync(join(tmpdir(), 'kx-render-nft-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const LIST = JSON.stringify({
  apiVersion: 'v1', kind: 'List', items: [
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default' },
      spec: { type: 'NodePort', clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10', 'fd00:96::10'], ipFamilies: ['IPv4', 'IPv6'],
        ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080, nodePort: 30080 }] } },
    { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'web-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'web' } },
      addressType: 'IPv4', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints: [{ addresses: ['10.244.1.5'], conditions: { ready: true } }] },
    { apiVersion: 'networking.k8s.io/v1', kind: 'ServiceCIDR', metadata: { name: 'kubernetes' }, spec: { cidrs: ['10.96.0.0/16', 'fd00:96::/112'] } },
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'other', namespace: 'default' }, data: {} },
  ],
});

function run(args: string[]): { out: string; err: string } {
  const file = join(dir, `list-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, LIST);
  let out = '', err = '';
  const sink = (f: (s: string) => void) => new Writable({ write(chunk, _enc, cb) { f(String(chunk)); cb(); } });
  render([...args, '--source', file, '--node-name', 'n1'], sink((s) => (out += s)), sink((s) => (err += s)));
  return { out, err };
}

describe('render --mode nftables', () => {
  it('prints one Dump per family, with the ServiceCIDRs dropped and the node IPs as nodeport-ips', () => {
    const { out, err } = run(['--mode', 'nftables', '--node-ip', '192.168.77.1', '--node-ip', 'fd77::1', '--cluster-cidr', '10.244.0.0/16']);
    const [v4, v6] = out.split('# IPv6:\n');
    assert.match(v4!, /^# IPv4:\nadd table ip kube-proxy \{ comment "rules for kube-proxy" ; \}\n/);
    assert.match(v6!, /^add table ip6 kube-proxy \{ comment "rules for kube-proxy" ; \}\n/);
    assert.match(v4!, /^add rule ip kube-proxy cluster-ips-check ip daddr \{ 10\.96\.0\.0\/16 \} drop comment "Drop traffic to unallocated ClusterIPs"$/m);
    assert.match(v6!, /^add rule ip6 kube-proxy cluster-ips-check ip6 daddr \{ fd00:96::\/112 \} drop comment "Drop traffic to unallocated ClusterIPs"$/m);
    assert.match(v4!, /^add element ip kube-proxy nodeport-ips \{ 192\.168\.77\.1 \}$/m);
    assert.match(v6!, /^add element ip6 kube-proxy nodeport-ips \{ fd77::1 \}$/m);
    assert.match(v4!, /^add element ip kube-proxy service-nodeports \{ tcp \. 30080 : goto external-\S+-default\/web\/tcp\/http \}$/m);
    assert.match(v4!, /dnat to 10\.244\.1\.5:8080$/m);
    assert.match(v6!, /^add element ip6 kube-proxy no-endpoint-services \{ fd00:96::10 \. tcp \. 80 comment "default\/web:http" : goto reject-chain \}$/m, 'no IPv6 endpoint: rejected');
    // definitions first, then rules, then elements: loadable by nft -f as it is
    const firstRule = v4!.indexOf('\nadd rule '), lastDef = Math.max(v4!.lastIndexOf('\nadd chain '), v4!.lastIndexOf('\nadd map '), v4!.lastIndexOf('\nadd set '));
    assert.ok(lastDef < firstRule && firstRule < v4!.indexOf('\nadd element '), 'Dump order');
    assert.match(err, /"ConfigMap" "other": not a kind render reads \(Service, EndpointSlice, ServiceCIDR\): ignored/);
  });

  it('takes mode: nftables from a KubeProxyConfiguration, its nftables section\'s masquerade bit, and defaults nodePortAddresses to primary', () => {
    const cfg = join(dir, 'kube-proxy.yaml');
    writeFileSync(cfg, ['apiVersion: kubeproxy.config.k8s.io/v1alpha1', 'kind: KubeProxyConfiguration', 'mode: nftables', 'nftables:', '  masqueradeBit: 9'].join('\n'));
    const { out } = run(['--config', cfg, '--node-ip', '192.168.77.1']);
    assert.match(out, /^add rule ip kube-proxy mark-for-masquerade mark set mark or 0x00000200$/m);
    assert.match(out, /^add element ip kube-proxy nodeport-ips \{ 192\.168\.77\.1 \}$/m, 'primary: the node IP');
    assert.doesNotMatch(out, /# IPv6:/, 'an IPv4 node: one family');
  });
});
