// Where the API server is and how to authenticate: --kubeconfig, $KUBECONFIG, or in-cluster
// (the ServiceAccount token and CA), with --api-server overriding the server address. In a
// cluster the default address is the `kubernetes` Service's ClusterIP — which kube-xdp itself
// programs — so a node being bootstrapped needs --api-server pointing at the real endpoint.
import { existsSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import { ConfigError } from '../../config/flags.js';
import { validApiServer } from '../../config/run-config.js';

export const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export interface KubeConfigOptions {
  readonly kubeconfig?: string;
  readonly apiServer?: string;
}

/** Which credentials `loadKubeConfig` would use, in kube-proxy's order. */
export function kubeConfigOrigin(opts: KubeConfigOptions, env: NodeJS.ProcessEnv, inCluster: boolean): 'kubeconfig-flag' | 'KUBECONFIG' | 'in-cluster' | 'api-server-only' {
  if (opts.kubeconfig) return 'kubeconfig-flag';
  if (env.KUBECONFIG) return 'KUBECONFIG';
  if (inCluster) return 'in-cluster';
  if (opts.apiServer) return 'api-server-only';
  throw new ConfigError('kubeconfig', 'no API server credentials: give --kubeconfig, set KUBECONFIG, run in a pod with a ServiceAccount, or give --api-server');
}

export function loadKubeConfig(opts: KubeConfigOptions, env: NodeJS.ProcessEnv = process.env): { kc: KubeConfig; origin: string } {
  const server = opts.apiServer ? validApiServer(opts.apiServer) : undefined;
  const origin = kubeConfigOrigin(opts, env, existsSync(SERVICE_ACCOUNT_TOKEN));
  // In a pod, loadFromCluster builds the address from KUBERNETES_SERVICE_HOST/PORT.
  if (origin === 'in-cluster' && !server && !(env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT)) {
    throw new ConfigError('api-server', 'in a pod without KUBERNETES_SERVICE_HOST/PORT, give --api-server');
  }
  const kc = new KubeConfig();
  try {
    if (origin === 'kubeconfig-flag') kc.loadFromFile(opts.kubeconfig!);
    else if (origin === 'KUBECONFIG') kc.loadFromDefault();
    else if (origin === 'in-cluster') kc.loadFromCluster(); // --api-server replaces its address below
    else kc.loadFromClusterAndUser({ name: 'api-server', server: server!, skipTLSVerify: server!.startsWith('http:') }, { name: 'anonymous' });
  } catch (err) {
    throw new ConfigError('kubeconfig', `${origin === 'kubeconfig-flag' ? opts.kubeconfig : origin}: ${(err as Error).message}`);
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new ConfigError('kubeconfig', `${opts.kubeconfig ?? env.KUBECONFIG ?? origin}: no current context with a cluster`);
  if ((server && cluster.server !== server) || ((server ?? cluster.server).startsWith('http:') && !cluster.skipTLSVerify)) {
    // client-node refuses plain http unless told TLS is not verified; with http there is no TLS
    // (kubectl proxy, a test server), so say so for that cluster.
    const url = server ?? cluster.server;
    kc.loadFromOptions({
      clusters: kc.clusters.map((c) => (c.name === cluster.name ? { ...c, server: url, skipTLSVerify: c.skipTLSVerify || url.startsWith('http:') } : c)),
      users: kc.users,
      contexts: kc.contexts,
      currentContext: kc.currentContext,
    });
  }
  if (!/^https?:\/\/[^/]+/.test(kc.getCurrentCluster()!.server)) {
    throw new ConfigError('api-server', `the API server address ${JSON.stringify(kc.getCurrentCluster()!.server)} is not an http(s) URL`);
  }
  return { kc, origin };
}
