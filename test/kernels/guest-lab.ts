// The lab both mode suites build inside a qemu guest: the guest's root namespace is the node
// (eth0 towards an outside client in namespace `ext`), pods a, b, c (echo servers) and `client`
// are namespaces, Calico-style: a /32 routed per veth, proxy ARP on the host side for the
// pods' gateway 169.254.1.1 (proxy ARP answers for an address the node routes elsewhere, so
// the node has a default route). One Service `web`: ClusterIP, NodePort, TCP and UDP.
import type { Summary } from '../lab/client.js';
import type { LabPod } from '../lab/lab.js';
import { serviceObjects } from '../lab/manifests.js';
import { KUBE_XDP_GUEST_DIR } from './guest-kube-xdp.js';
import type { KernelVM } from './vm.js';

export const GUEST_CLI = `${KUBE_XDP_GUEST_DIR}/dist/src/cli/main.js`;
export const GUEST_LAB = `${KUBE_XDP_GUEST_DIR}/dist/test/lab`;
export const NODE_IP = '192.168.77.1';
export const EXT_IP = '192.168.77.100';
export const CLUSTER_IP = '10.96.0.10';
export const NODE_PORT = 30080;
export const PODS = { a: '10.244.1.2', b: '10.244.1.3', c: '10.244.1.4' } as const;
export const CLIENT_POD = '10.244.1.9';
export type PodName = keyof typeof PODS;

/** A lab pod of node1 as the manifests take it. */
export const labPod = (name: PodName): LabPod => ({ name, ns: name, node: 'node1', ip: PODS[name], hostIf: `v${name}`, ports: [8080], pid: 0 });

/** The Service and its EndpointSlices with these backends, as the file source reads them. */
export function labObjects(backends: readonly PodName[]): string {
  const items = serviceObjects({
    name: 'web', clusterIP: CLUSTER_IP, port: 80, targetPort: 8080, type: 'NodePort', nodePort: NODE_PORT,
    protocols: ['TCP', 'UDP'], endpoints: backends.map(labPod),
  });
  return JSON.stringify({ apiVersion: 'v1', kind: 'List', items });
}

/** extraFiles holding the objects for backends a, b, c and for a alone. */
export const LAB_FILES = { '/opt/kx/objects-abc.json': labObjects(['a', 'b', 'c']), '/opt/kx/objects-a.json': labObjects(['a']) };

export interface LabSetupOptions {
  /** Forwarding on and rp_filter off, as a CNI leaves a node (the eBPF mode forwards what XDP passes). */
  forwarding?: boolean;
  /** Transmit checksum offload off on the outside client: XDP then sees complete checksums, as from a NIC. */
  extTxOff?: boolean;
}

/** The script that builds the lab, starts the echo servers and puts the a, b, c objects in /tmp/objects.json. */
export function labSetup(o: LabSetupOptions = {}): string {
  return `set -e
${o.forwarding ? `echo 1 > /proc/sys/net/ipv4/ip_forward
echo 0 > /proc/sys/net/ipv4/conf/all/rp_filter
echo 0 > /proc/sys/net/ipv4/conf/default/rp_filter
` : ''}ip link set lo up
ip netns add ext
ip link add eth0 type veth peer name ext0 netns ext
ip addr add ${NODE_IP}/24 dev eth0
ip link set eth0 up
ip -n ext addr add ${EXT_IP}/24 dev ext0
ip -n ext link set ext0 up
ip -n ext link set lo up
${o.extTxOff ? 'ip netns exec ext ethtool -K ext0 tx off >/dev/null\n' : ''}ip -n ext route add 10.96.0.0/16 via ${NODE_IP}
ip route add default via ${EXT_IP} dev eth0
for p in ${Object.entries({ ...PODS, client: CLIENT_POD }).map(([n, ip]) => `${n}:${ip}`).join(' ')}; do
  n=\${p%%:*}; ip=\${p#*:}
  ip netns add $n
  ip link add v$n type veth peer name eth0 netns $n
  ip link set v$n up
  echo 1 > /proc/sys/net/ipv4/conf/v$n/proxy_arp
  ip route add $ip/32 dev v$n
  ip -n $n link set lo up
  ip -n $n addr add $ip/32 dev eth0
  ip -n $n link set eth0 up
  ip -n $n route add 169.254.1.1 dev eth0
  ip -n $n route add default via 169.254.1.1 dev eth0
done
for n in ${Object.keys(PODS).join(' ')}; do
  ip netns exec $n node ${GUEST_LAB}/echo-server.js --name $n --port 8080 > /tmp/echo-$n.log 2>&1 &
done
cp /opt/kx/objects-abc.json /tmp/objects.json
`;
}

/** The lab client in a guest namespace: its summary line. */
export async function guestClient(vm: KernelVM, ns: string, proto: 'tcp' | 'udp', target: string, count: number, timeoutMs: number): Promise<Summary> {
  const out = await vm.check(`ip netns exec ${ns} node ${GUEST_LAB}/client.js --${proto} --target ${target} --count ${count} --timeout-ms ${timeoutMs}`, 60_000);
  return JSON.parse(out.trim().split('\n').pop()!) as Summary;
}

/** The client addresses the backends saw, ports summed away. */
export function peersByIP(s: Summary): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [peer, n] of Object.entries(s.seenPeers)) out[peer.replace(/:\d+$/, '')] = (out[peer.replace(/:\d+$/, '')] ?? 0) + n;
  return out;
}
