// healthCheckNodePort and kube-proxy's /healthz with real sockets, in the eBPF and iptables
// modes (the listeners are mode-independent code fed by each sync; IPVS cannot run on this
// kernel). Both nodes run `kube-xdp run` on one file source; the "cloud load balancer" is the
// external client namespace, probing each node's address.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLab, ensureBpffs, labUnavailable, type Lab, type LabPod, type NodeName } from './lab.js';
import { Controller } from './kube-xdp.js';
import { writeSource, type LabService } from './manifests.js';

const unavailable = labUnavailable();
if (unavailable && process.env.CI === 'true') {
  test('healthCheckNodePort lab prerequisites (CI runs this as root)', () => assert.fail(unavailable));
}

const HCNP = 32000;
const HEALTHZ_PORT = 10256;
const CLUSTER_CIDR = '10.244.0.0/16';

/** One HTTP GET on a new connection from inside `ns`: status, headers and body, or the error code. */
const GET_SCRIPT = `const http = require('node:http');
http.get({ host: process.argv[1], port: Number(process.argv[2]), path: process.argv[3], agent: false, timeout: 3000 }, (r) => {
  let body = '';
  r.on('data', (c) => (body += c)).on('end', () => console.log(JSON.stringify({ status: r.statusCode, headers: r.headers, body })));
}).on('error', (e) => console.log(JSON.stringify({ error: e.code }))).on('timeout', function () { this.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })); });`;

interface Got { status?: number; headers?: Record<string, string>; body?: string; error?: string }

for (const mode of ['ebpf', 'iptables'] as const) {
  describe(`healthCheckNodePort and /healthz in the netns lab (${mode} mode)`, { skip: unavailable ?? false }, () => {
    let lab: Lab;
    let dir: string;
    let source: string;
    const controllers: Partial<Record<NodeName, Controller>> = {};
    const pods = (...names: string[]): LabPod[] => names.map((n) => lab.pod(n));
    const lbLocal = (endpoints: LabPod[]): LabService => ({
      name: 'lb-local', clusterIP: '10.96.0.50', port: 80, targetPort: 8080, protocols: ['TCP'], type: 'LoadBalancer', nodePort: 30150,
      loadBalancerIP: '192.168.77.210', externalTrafficPolicy: 'Local', healthCheckNodePort: HCNP, endpoints,
    });
    const get = async (node: NodeName, port: number, path = '/'): Promise<Got> => {
      const r = await lab.exec(lab.ext.ns, [process.execPath, '-e', GET_SCRIPT, lab.nodes[node].ip, String(port), path], { check: true, timeoutMs: 10_000 });
      return JSON.parse(r.stdout) as Got;
    };
    const probe = async (node: NodeName) => {
      const g = await get(node, HCNP);
      assert.equal(g.error, undefined, `${node}:${HCNP} ${g.error}`);
      return { status: g.status, body: JSON.parse(g.body!) as { service: { namespace: string; name: string }; localEndpoints: number; serviceProxyHealthy: boolean }, headers: g.headers! };
    };
    /** Rewrites the source and waits for the first sync that wrote on each node. */
    const apply = async (services: LabService[]) => {
      const next = (['node1', 'node2'] as const).map((n) => controllers[n]!.nextWritingSync());
      writeSource(source, services);
      await Promise.all(next);
    };

    before(async () => {
      ensureBpffs();
      lab = await createLab({ pods: [{ name: 'b', node: 'node1' }, { name: 'e', node: 'node1' }, { name: 'c', node: 'node2' }, { name: 'd', node: 'node2' }] });
      dir = mkdtempSync(join(tmpdir(), `kx-hc-${mode}-`));
      source = join(dir, 'services.json');
      writeSource(source, [lbLocal(pods('b', 'e'))]);
      for (const node of ['node1', 'node2'] as const) {
        const flags = mode === 'iptables' ? ['--mode', 'iptables', '--cluster-cidr', CLUSTER_CIDR, '--node-ip', lab.nodes[node].ip] : [];
        controllers[node] = await Controller.start(lab, node, source, flags);
      }
    });
    after(async () => {
      for (const c of Object.values(controllers)) await c.kill('SIGTERM');
      await lab?.teardown();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    test('200 with localEndpoints 2 on the node with the endpoints, 503 on the other', async () => {
      const n1 = await probe('node1');
      assert.equal(n1.status, 200);
      assert.deepEqual(n1.body, { service: { namespace: 'default', name: 'lb-local' }, localEndpoints: 2, serviceProxyHealthy: true });
      assert.equal(n1.headers['content-type'], 'application/json');
      assert.equal(n1.headers['x-content-type-options'], 'nosniff');
      const n2 = await probe('node2');
      assert.equal(n2.status, 503);
      assert.deepEqual(n2.body, { service: { namespace: 'default', name: 'lb-local' }, localEndpoints: 0, serviceProxyHealthy: true });
    });

    test('/healthz and /livez answer as kube-proxy\'s', async () => {
      for (const node of ['node1', 'node2'] as const) {
        const h = await get(node, HEALTHZ_PORT, '/healthz');
        assert.equal(h.status, 200, `${node} /healthz: ${h.body ?? h.error}`);
        const body = JSON.parse(h.body!);
        assert.deepEqual(Object.keys(body), ['lastUpdated', 'currentTime', 'nodeEligible', 'healthy', 'status']);
        assert.equal(body.nodeEligible, true);
        assert.equal(body.healthy, true);
        const l = await get(node, HEALTHZ_PORT, '/livez');
        assert.equal(l.status, 200);
        assert.equal('nodeEligible' in JSON.parse(l.body!), false);
      }
    });

    test('the answers change with the first sync after the endpoints move', async () => {
      await apply([lbLocal(pods('c', 'd'))]);
      const [n1, n2] = [await probe('node1'), await probe('node2')];
      assert.deepEqual([n1.status, n1.body.localEndpoints], [503, 0]);
      assert.deepEqual([n2.status, n2.body.localEndpoints], [200, 2]);
    });

    test('removing the Service closes the port', async () => {
      await apply([]);
      for (const node of ['node1', 'node2'] as const) assert.equal((await get(node, HCNP)).error, 'ECONNREFUSED', node);
    });
  });
}
