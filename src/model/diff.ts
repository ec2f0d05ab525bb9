// Which Services changed between two states: what a partial sync rewrites. Pure.
import type { ProxyState, ServicePort } from './types.js';

function byService(state: ProxyState): Map<string, string> {
  const groups = new Map<string, ServicePort[]>();
  for (const sp of state.services) {
    const k = `${sp.namespace}/${sp.name}`;
    const list = groups.get(k);
    if (list) list.push(sp);
    else groups.set(k, [sp]);
  }
  return new Map([...groups].map(([k, list]) => [k, JSON.stringify(list)]));
}

/** "namespace/name" of every Service added, removed or changed (ports, addresses, endpoints). */
export function changedServices(prev: ProxyState, next: ProxyState): Set<string> {
  if (prev === next) return new Set();
  const a = byService(prev);
  const b = byService(next);
  const out = new Set<string>();
  for (const [k, v] of a) if (b.get(k) !== v) out.add(k);
  for (const k of b.keys()) if (!a.has(k)) out.add(k);
  return out;
}
