// The iptables reader on real `iptables-save -c` output: kube-xdp's render of four Services
// restored into a scratch netns with iptables-legacy-restore and saved back (iptables-save
// reorders matches, adds /32, quotes comments), counters edited in to check they are carried.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { iptablesView, parseIptablesSave, splitWords } from '../../src/inspect/iptables.js';
import { formatView } from '../../src/inspect/format.js';

const SAVE = `
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-EXT-CDGGSHYLG3RE2FKL - [0:0]
:KUBE-EXT-EQPZH4W7LN3ZNZNG - [0:0]
:KUBE-EXT-FLO43DYR2GV4AWHL - [0:0]
:KUBE-FW-EQPZH4W7LN3ZNZNG - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SEP-4EX2N4PG4ASNZOBF - [0:0]
:KUBE-SEP-4KKYTOG5IDEQOSPY - [0:0]
:KUBE-SEP-4W7E3RLODYROV5X2 - [0:0]
:KUBE-SEP-65MJ3HLPM4FIPW4H - [0:0]
:KUBE-SEP-UIQK3OSOSTRHRPBX - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-CDGGSHYLG3RE2FKL - [0:0]
:KUBE-SVC-EQPZH4W7LN3ZNZNG - [0:0]
:KUBE-SVC-FLO43DYR2GV4AWHL - [0:0]
:KUBE-SVL-EQPZH4W7LN3ZNZNG - [0:0]
[0:0] -A KUBE-EXT-CDGGSHYLG3RE2FKL -m comment --comment "masquerade traffic for default/web:http external destinations" -j KUBE-MARK-MASQ
[0:0] -A KUBE-EXT-CDGGSHYLG3RE2FKL -j KUBE-SVC-CDGGSHYLG3RE2FKL
[0:0] -A KUBE-EXT-EQPZH4W7LN3ZNZNG -s 10.244.0.0/16 -m comment --comment "pod traffic for shop/lb external destinations" -j KUBE-SVC-EQPZH4W7LN3ZNZNG
[0:0] -A KUBE-EXT-EQPZH4W7LN3ZNZNG -m comment --comment "masquerade LOCAL traffic for shop/lb external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ
[0:0] -A KUBE-EXT-EQPZH4W7LN3ZNZNG -m comment --comment "route LOCAL traffic for shop/lb external destinations" -m addrtype --src-type LOCAL -j KUBE-SVC-EQPZH4W7LN3ZNZNG
[0:0] -A KUBE-EXT-EQPZH4W7LN3ZNZNG -j KUBE-SVL-EQPZH4W7LN3ZNZNG
[0:0] -A KUBE-EXT-FLO43DYR2GV4AWHL -s 10.244.0.0/16 -m comment --comment "pod traffic for default/nolocal external destinations" -j KUBE-SVC-FLO43DYR2GV4AWHL
[0:0] -A KUBE-EXT-FLO43DYR2GV4AWHL -m comment --comment "masquerade LOCAL traffic for default/nolocal external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ
[0:0] -A KUBE-EXT-FLO43DYR2GV4AWHL -m comment --comment "route LOCAL traffic for default/nolocal external destinations" -m addrtype --src-type LOCAL -j KUBE-SVC-FLO43DYR2GV4AWHL
[0:0] -A KUBE-FW-EQPZH4W7LN3ZNZNG -s 192.0.2.0/24 -m comment --comment "shop/lb loadbalancer IP" -j KUBE-EXT-EQPZH4W7LN3ZNZNG
[0:0] -A KUBE-FW-EQPZH4W7LN3ZNZNG -m comment --comment "other traffic to shop/lb will be dropped by KUBE-PROXY-FIREWALL"
[0:0] -A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
[0:0] -A KUBE-NODEPORTS -p tcp -m comment --comment "default/nolocal" -m tcp --dport 30084 -j KUBE-EXT-FLO43DYR2GV4AWHL
[0:0] -A KUBE-NODEPORTS -p tcp -m comment --comment "default/web:http" -m tcp --dport 30080 -j KUBE-EXT-CDGGSHYLG3RE2FKL
[0:0] -A KUBE-NODEPORTS -p tcp -m comment --comment "shop/lb" -m tcp --dport 30443 -j KUBE-EXT-EQPZH4W7LN3ZNZNG
[0:0] -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
[0:0] -A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0
[0:0] -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
[0:0] -A KUBE-SEP-4EX2N4PG4ASNZOBF -s 10.244.2.2/32 -m comment --comment "default/web:http" -j KUBE-MARK-MASQ
[0:0] -A KUBE-SEP-4EX2N4PG4ASNZOBF -p tcp -m comment --comment "default/web:http" -m recent --set --name KUBE-SEP-4EX2N4PG4ASNZOBF --mask 255.255.255.255 --rsource -m tcp -j DNAT --to-destination 10.244.2.2:8080
[0:0] -A KUBE-SEP-4KKYTOG5IDEQOSPY -s 10.244.2.5/32 -m comment --comment "shop/lb" -j KUBE-MARK-MASQ
[0:0] -A KUBE-SEP-4KKYTOG5IDEQOSPY -p tcp -m comment --comment "shop/lb" -m tcp -j DNAT --to-destination 10.244.2.5:8443
[0:0] -A KUBE-SEP-4W7E3RLODYROV5X2 -s 10.244.1.5/32 -m comment --comment "shop/lb" -j KUBE-MARK-MASQ
[0:0] -A KUBE-SEP-4W7E3RLODYROV5X2 -p tcp -m comment --comment "shop/lb" -m tcp -j DNAT --to-destination 10.244.1.5:8443
[0:0] -A KUBE-SEP-65MJ3HLPM4FIPW4H -s 10.244.2.9/32 -m comment --comment "default/nolocal" -j KUBE-MARK-MASQ
[0:0] -A KUBE-SEP-65MJ3HLPM4FIPW4H -p tcp -m comment --comment "default/nolocal" -m tcp -j DNAT --to-destination 10.244.2.9:80
[0:0] -A KUBE-SEP-UIQK3OSOSTRHRPBX -s 10.244.1.2/32 -m comment --comment "default/web:http" -j KUBE-MARK-MASQ
[5:300] -A KUBE-SEP-UIQK3OSOSTRHRPBX -p tcp -m comment --comment "default/web:http" -m recent --set --name KUBE-SEP-UIQK3OSOSTRHRPBX --mask 255.255.255.255 --rsource -m tcp -j DNAT --to-destination 10.244.1.2:8080
[0:0] -A KUBE-SERVICES -d 10.96.0.14/32 -p tcp -m comment --comment "default/nolocal cluster IP" -m tcp --dport 80 -j KUBE-SVC-FLO43DYR2GV4AWHL
[7:420] -A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment "default/web:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-CDGGSHYLG3RE2FKL
[0:0] -A KUBE-SERVICES -d 10.96.0.11/32 -p tcp -m comment --comment "shop/lb cluster IP" -m tcp --dport 443 -j KUBE-SVC-EQPZH4W7LN3ZNZNG
[0:0] -A KUBE-SERVICES -d 198.51.100.7/32 -p tcp -m comment --comment "shop/lb external IP" -m tcp --dport 443 -j KUBE-EXT-EQPZH4W7LN3ZNZNG
[0:0] -A KUBE-SERVICES -d 203.0.113.9/32 -p tcp -m comment --comment "shop/lb loadbalancer IP" -m tcp --dport 443 -j KUBE-FW-EQPZH4W7LN3ZNZNG
[0:0] -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
[0:0] -A KUBE-SVC-CDGGSHYLG3RE2FKL ! -s 10.244.0.0/16 -d 10.96.0.10/32 -p tcp -m comment --comment "default/web:http cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ
[0:0] -A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment "default/web:http -> 10.244.1.2:8080" -m recent --rcheck --seconds 300 --reap --name KUBE-SEP-UIQK3OSOSTRHRPBX --mask 255.255.255.255 --rsource -j KUBE-SEP-UIQK3OSOSTRHRPBX
[0:0] -A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment "default/web:http -> 10.244.2.2:8080" -m recent --rcheck --seconds 300 --reap --name KUBE-SEP-4EX2N4PG4ASNZOBF --mask 255.255.255.255 --rsource -j KUBE-SEP-4EX2N4PG4ASNZOBF
[0:0] -A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment "default/web:http -> 10.244.1.2:8080" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-UIQK3OSOSTRHRPBX
[0:0] -A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment "default/web:http -> 10.244.2.2:8080" -j KUBE-SEP-4EX2N4PG4ASNZOBF
[0:0] -A KUBE-SVC-EQPZH4W7LN3ZNZNG ! -s 10.244.0.0/16 -d 10.96.0.11/32 -p tcp -m comment --comment "shop/lb cluster IP" -m tcp --dport 443 -j KUBE-MARK-MASQ
[0:0] -A KUBE-SVC-EQPZH4W7LN3ZNZNG -m comment --comment "shop/lb -> 10.244.1.5:8443" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-4W7E3RLODYROV5X2
[0:0] -A KUBE-SVC-EQPZH4W7LN3ZNZNG -m comment --comment "shop/lb -> 10.244.2.5:8443" -j KUBE-SEP-4KKYTOG5IDEQOSPY
[0:0] -A KUBE-SVC-FLO43DYR2GV4AWHL ! -s 10.244.0.0/16 -d 10.96.0.14/32 -p tcp -m comment --comment "default/nolocal cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ
[0:0] -A KUBE-SVC-FLO43DYR2GV4AWHL -m comment --comment "default/nolocal -> 10.244.2.9:80" -j KUBE-SEP-65MJ3HLPM4FIPW4H
[0:0] -A KUBE-SVL-EQPZH4W7LN3ZNZNG -m comment --comment "shop/lb -> 10.244.1.5:8443" -j KUBE-SEP-4W7E3RLODYROV5X2
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FIREWALL - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-SERVICES - [0:0]
[0:0] -A KUBE-EXTERNAL-SERVICES -p udp -m comment --comment "default/empty:dns has no endpoints" -m addrtype --dst-type LOCAL -m udp --dport 30053 -j REJECT --reject-with icmp-port-unreachable
[0:0] -A KUBE-EXTERNAL-SERVICES -p tcp -m comment --comment "default/nolocal has no local endpoints" -m addrtype --dst-type LOCAL -m tcp --dport 30084 -j DROP
[0:0] -A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
[0:0] -A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
[0:0] -A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
[0:0] -A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
[0:0] -A KUBE-NODEPORTS -p tcp -m comment --comment "shop/lb health check node port" -m tcp --dport 32000 -j ACCEPT
[0:0] -A KUBE-PROXY-FIREWALL -d 203.0.113.9/32 -p tcp -m comment --comment "shop/lb traffic not accepted by KUBE-FW-EQPZH4W7LN3ZNZNG" -m tcp --dport 443 -j DROP
[0:0] -A KUBE-SERVICES -d 10.96.0.13/32 -p udp -m comment --comment "default/empty:dns has no endpoints" -m udp --dport 53 -j REJECT --reject-with icmp-port-unreachable
COMMIT
`;

test('splitWords: quoted comments with spaces and escapes are one word', () => {
  assert.deepEqual(splitWords('-m comment --comment "a/b:c cluster IP" -j X'), ['-m', 'comment', '--comment', 'a/b:c cluster IP', '-j', 'X']);
  assert.deepEqual(splitWords('--comment "say \\"hi\\""'), ['--comment', 'say "hi"']);
});

test('parseIptablesSave: tables, chains, counters', () => {
  const rules = parseIptablesSave(SAVE);
  assert.equal(rules.filter((r) => r.table === 'filter').length, 9);
  const capture = rules.find((r) => r.chain === 'KUBE-SERVICES' && r.args.includes('10.96.0.10/32'))!;
  assert.deepEqual([capture.table, capture.packets, capture.bytes], ['nat', 7, 420]);
});

const view = () => iptablesView(parseIptablesSave(SAVE), 'test');
const brief = (name: string) => {
  const s = view().services.find((x) => x.service === name)!;
  return {
    type: s.type, portName: s.portName, protocol: s.protocol, affinity: s.affinitySeconds,
    frontends: s.frontends.map((f) => `${f.kind} ${f.address}:${f.port} ${f.scope} [${f.flags.join(',')}] ${f.backends}`),
    backends: s.backends.map((b) => `${b.address}:${b.port} local=${b.local}`),
  };
};

test('every Service port is named from the chain comments, in order', () => {
  assert.deepEqual(view().services.map((s) => `${s.service}:${s.portName}`), ['default/empty:dns', 'default/nolocal:', 'default/web:http', 'shop/lb:']);
});

test('NodePort with ClientIP affinity: ClusterIP and NodePort frontends, both endpoints, counters from -c', () => {
  assert.deepEqual(brief('default/web'), {
    type: 'NodePort', portName: 'http', protocol: 'TCP', affinity: 300,
    frontends: ['ClusterIP 10.96.0.10:80 cluster [] 2', 'NodePort *:30080 cluster [] 2'],
    backends: ['10.244.1.2:8080 local=null', '10.244.2.2:8080 local=null'],
  });
  const s = view().services.find((x) => x.service === 'default/web')!;
  assert.deepEqual(s.frontends[0]!.counters, { connections: 7 });
  assert.deepEqual(s.backends[0]!.counters, { connections: 5 });
});

test('LoadBalancer, externalTrafficPolicy Local: external frontends reach the local endpoint only (KUBE-SVL), source ranges on the LB IP', () => {
  assert.deepEqual(brief('shop/lb'), {
    type: 'LoadBalancer', portName: '', protocol: 'TCP', affinity: null,
    frontends: [
      'ClusterIP 10.96.0.11:443 cluster [] 2', 'ExternalIP 198.51.100.7:443 local [] 1',
      'LoadBalancer 203.0.113.9:443 local [source-ranges] 1', 'NodePort *:30443 local [] 1',
    ],
    backends: ['10.244.1.5:8443 local=true', '10.244.2.5:8443 local=false'],
  });
});

test('no endpoints: REJECT frontends from the filter table; Local policy without local endpoints: the NodePort drops', () => {
  assert.deepEqual(brief('default/empty').frontends, ['ClusterIP 10.96.0.13:53 cluster [reject] 0', 'NodePort *:30053 cluster [reject] 0']);
  assert.equal(brief('default/empty').protocol, 'UDP');
  assert.deepEqual(brief('default/nolocal').frontends, ['ClusterIP 10.96.0.14:80 cluster [] 1', 'NodePort *:30084 local [drop] 0']);
});

test('rules of no Service (another tool\'s, kube-proxy\'s fixed chains) are left out', () => {
  const extra = `*nat\n-A KUBE-SERVICES -d 10.0.0.1/32 -p tcp -m comment --comment "hand made" -m tcp --dport 1 -j ACCEPT\nCOMMIT\n`;
  assert.equal(iptablesView(parseIptablesSave(SAVE + extra), 't').services.length, 4);
});

test('table output: one row per Service port, namespace and name first', () => {
  const lines = formatView(view(), 'table').trimEnd().split('\n');
  assert.match(lines[0]!, /^NAMESPACE\s+NAME\s+PORT\s+TYPE\s+PROTO\s+FRONTENDS\s+BACKENDS\s+AFFINITY$/);
  assert.match(lines[3]!, /^default\s+web\s+http\s+NodePort\s+TCP\s+10\.96\.0\.10:80,\*:30080\s+10\.244\.1\.2:8080,10\.244\.2\.2:8080\s+ClientIP 300s$/);
  assert.match(lines[4]!, /^shop\s+lb\s+-\s+LoadBalancer\s+TCP\s+.*10\.244\.1\.5:8443 \(local\)/);
  assert.match(lines[1]!, /<none: rejected>/);
  assert.equal(lines.length, 5);
});
