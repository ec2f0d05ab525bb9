// Items grouped by a key, groups and their items in order of first appearance.
export function groupBy<T, K, V = T>(items: Iterable<T>, key: (t: T) => K, value: (t: T) => V = (t) => t as unknown as V): Map<K, V[]> {
  const out = new Map<K, V[]>();
  for (const t of items) {
    const list = out.get(key(t));
    if (list) list.push(value(t));
    else out.set(key(t), [value(t)]);
  }
  return out;
}
