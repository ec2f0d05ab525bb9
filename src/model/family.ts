// One address family's view of a ServicePort: kube-proxy runs one proxier per family, and the
// rule-emitting modes render per family from this view. Pure.
import { cidrFamilyOf, ipFamilyOf } from './k8s.js';
import type { Endpoint, IPFamily, ServicePort } from './types.js';

/** `sp` restricted to `family` (its clusterIP of that family first and only), or null when the
 *  service port is not served in that family. */
export function familyView(sp: ServicePort, family: IPFamily): ServicePort | null {
  if (!sp.families.includes(family)) return null;
  const ofIP = (ip: string) => ipFamilyOf(ip) === family;
  const eps = (list: readonly Endpoint[]) => list.filter((ep) => ofIP(ep.ip));
  const hasAnyEndpoints = sp.familiesWithEndpoints.includes(family);
  return {
    ...sp,
    families: [family],
    clusterIPs: sp.clusterIPs.filter(ofIP),
    externalIPs: sp.externalIPs.filter(ofIP),
    loadBalancerIPs: sp.loadBalancerIPs.filter(ofIP),
    loadBalancerSourceRanges: sp.loadBalancerSourceRanges.filter((c) => cidrFamilyOf(c) === family),
    endpoints: eps(sp.endpoints),
    clusterEndpoints: eps(sp.clusterEndpoints),
    localEndpoints: eps(sp.localEndpoints),
    allReachableEndpoints: eps(sp.allReachableEndpoints),
    hasAnyEndpoints,
    familiesWithEndpoints: hasAnyEndpoints ? [family] : [],
  };
}
