// The IPVS reader: `ipvsadm -Ln` and `ipvsadm -Ln --stats --exact` listings (ipvsadm 1.31's
// layout), kube-proxy's ipsets as `kube-xdp render --mode ipvs` writes them for four Services,
// and the owner file that names the virtual servers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIpsetSave } from '../../src/dataplane/ipvs/ipsets.js';
import { parseIpvsadmList } from '../../src/dataplane/ipvs/virtual-servers.js';
import { ipvsView, parseIpvsStats } from '../../src/inspect/ipvs.js';
import type { OwnerFile } from '../../src/inspect/owners.js';

const LIST = `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.96.0.10:80 rr persistent 300
  -> 10.244.1.2:8080              Masq    1      2          1
  -> 10.244.2.2:8080              Masq    0      1          0
TCP  192.168.77.1:30080 rr persistent 300
  -> 10.244.1.2:8080              Masq    1      1          0
  -> 10.244.2.2:8080              Masq    0      0          0
TCP  203.0.113.9:443 rr
  -> 10.244.1.5:8443              Masq    1      0          0
TCP  192.168.77.1:30443 rr
  -> 10.244.1.5:8443              Masq    1      0          0
UDP  10.96.0.13:53 rr
TCP  10.99.0.1:80 rr
`;

const STATS = `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  10.96.0.10:80                       3       18       12     1080      648
  -> 10.244.1.2:8080                     2       12        8      720      432
  -> 10.244.2.2:8080                     1        6        4      360      216
TCP  192.168.77.1:30080                  1        6        4      360      216
  -> 10.244.1.2:8080                     1        6        4      360      216
  -> 10.244.2.2:8080                     0        0        0        0        0
`;

const SETS = `
add KUBE-LOOP-BACK 10.244.1.2,tcp:8080,10.244.1.2
add KUBE-LOOP-BACK 10.244.1.5,tcp:8443,10.244.1.5
add KUBE-LOOP-BACK 10.244.1.6,tcp:8443,10.244.1.6
add KUBE-CLUSTER-IP 10.96.0.10,tcp:80
add KUBE-CLUSTER-IP 10.96.0.11,tcp:443
add KUBE-CLUSTER-IP 10.96.0.13,udp:53
add KUBE-CLUSTER-IP 10.96.0.14,tcp:80
add KUBE-EXTERNAL-IP-LOCAL 198.51.100.7,tcp:443
add KUBE-LOAD-BALANCER 203.0.113.9,tcp:443
add KUBE-LOAD-BALANCER-FW 203.0.113.9,tcp:443
add KUBE-LOAD-BALANCER-LOCAL 203.0.113.9,tcp:443
add KUBE-LOAD-BALANCER-SOURCE-CIDR 203.0.113.9,tcp:443,192.0.2.0/24
add KUBE-NODE-PORT-TCP 30080
add KUBE-NODE-PORT-TCP 30084
add KUBE-NODE-PORT-TCP 30443
add KUBE-NODE-PORT-LOCAL-TCP 30084
add KUBE-NODE-PORT-LOCAL-TCP 30443
add KUBE-NODE-PORT-UDP 30053
add KUBE-HEALTH-CHECK-NODE-PORT 32000
add KUBE-IPVS-IPS 10.96.0.10
add KUBE-IPVS-IPS 10.96.0.11
add KUBE-IPVS-IPS 10.96.0.13
add KUBE-IPVS-IPS 10.96.0.14
add KUBE-IPVS-IPS 198.51.100.7
add KUBE-IPVS-IPS 203.0.113.9
`;

const OWNERS: OwnerFile = {
  version: 1, generation: 4, services: [
    { service: 'default/web', portName: 'http', type: 'NodePort', protocol: 'TCP', port: 80, nodePort: 30080, clusterIPs: ['10.96.0.10'], externalIPs: [], loadBalancerIPs: [], affinitySeconds: 300 },
    { service: 'shop/lb', portName: '', type: 'LoadBalancer', protocol: 'TCP', port: 443, nodePort: 30443, clusterIPs: ['10.96.0.11'], externalIPs: ['198.51.100.7'], loadBalancerIPs: ['203.0.113.9'], affinitySeconds: null },
    { service: 'default/empty', portName: 'dns', type: 'NodePort', protocol: 'UDP', port: 53, nodePort: 30053, clusterIPs: ['10.96.0.13'], externalIPs: [], loadBalancerIPs: [], affinitySeconds: null },
  ],
};

const view = (owners: OwnerFile | null) => ipvsView(parseIpvsadmList(LIST), parseIpvsStats(STATS), parseIpsetSave(SETS), owners, 'test');

test('parseIpvsStats: per virtual server and per real server', () => {
  const s = parseIpvsStats(STATS);
  assert.deepEqual(s.get('10.96.0.10:80/TCP'), { conns: 3, inPackets: 18, outPackets: 12, inBytes: 1080, outBytes: 648 });
  assert.deepEqual(s.get('10.96.0.10:80/TCP 10.244.2.2:8080'), { conns: 1, inPackets: 6, outPackets: 4, inBytes: 360, outBytes: 216 });
  assert.equal(s.size, 6);
});

test('virtual servers are named by address:port from the owner file, NodePorts by port', () => {
  const v = view(OWNERS);
  assert.deepEqual(v.services.map((s) => `${s.service}:${s.portName} ${s.type} ${s.protocol}`),
    ['default/empty:dns NodePort UDP', 'default/web:http NodePort TCP', 'shop/lb: LoadBalancer TCP', 'null: unknown TCP']);
  const web = v.services.find((s) => s.service === 'default/web')!;
  assert.equal(web.affinitySeconds, 300);
  assert.deepEqual(web.frontends.map((f) => `${f.kind} ${f.address}:${f.port} ${f.scope} ${f.backends}`),
    ['ClusterIP 10.96.0.10:80 cluster 2', 'NodePort 192.168.77.1:30080 cluster 2']);
  assert.deepEqual(web.frontends[0]!.counters, { conns: 3, inPackets: 18, outPackets: 12, inBytes: 1080, outBytes: 648 });
  assert.deepEqual(v.notes, ['1 virtual servers match no Service of the owner file']);
});

test('backends: weight, draining (weight 0) as terminating, connections and traffic summed over the virtual servers', () => {
  const web = view(OWNERS).services.find((s) => s.service === 'default/web')!;
  assert.deepEqual(web.backends, [
    { address: '10.244.1.2', port: 8080, local: null, terminating: null, weight: 1,
      counters: { activeConns: 3, inactiveConns: 1, conns: 3, inPackets: 18, outPackets: 12, inBytes: 1080, outBytes: 648 } },
    { address: '10.244.2.2', port: 8080, local: null, terminating: true, weight: 0,
      counters: { activeConns: 1, inactiveConns: 0, conns: 1, inPackets: 6, outPackets: 4, inBytes: 360, outBytes: 216 } },
  ]);
});

test('the ipsets give each frontend its kind and traffic policy (Local: KUBE-LOAD-BALANCER-LOCAL, KUBE-NODE-PORT-LOCAL-TCP)', () => {
  const lb = view(OWNERS).services.find((s) => s.service === 'shop/lb')!;
  assert.deepEqual(lb.frontends.map((f) => `${f.kind} ${f.address}:${f.port} ${f.scope}`),
    ['LoadBalancer 203.0.113.9:443 local', 'NodePort 192.168.77.1:30443 local']);
});

test('without the owner file: every virtual server on its own, kinds from the ipsets (10.99.0.1 is in none), a note', () => {
  const v = view(null);
  assert.ok(v.services.every((s) => s.service === null));
  assert.deepEqual(v.services.map((s) => `${s.type} ${s.frontends.map((f) => f.kind).join()}`).sort(),
    ['ClusterIP ClusterIP', 'ClusterIP ClusterIP', 'LoadBalancer LoadBalancer', 'NodePort NodePort', 'NodePort NodePort', 'unknown unknown']);
  assert.match(v.notes[0]!, /no owner file/);
});
