// Every codec must match the compiled object's BTF: the C headers are the source of truth.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Codec } from '../../src/dataplane/ebpf/codec.js';
import { codecProblems } from '../../src/dataplane/ebpf/btf-check.js';
import type { BtfStruct } from '../../src/kernel/libkx.js';
import { MAPS, STAT_NAMES, STATS_MAP } from '../../src/dataplane/ebpf/maps.js';
import { KX_LIMITS } from '../../src/dataplane/ebpf/limits.js';
import { expectedLayouts } from '../../src/dataplane/ebpf/pins.js';

const OBJECT = fileURLToPath(new URL('../../../build/kube_xdp.bpf.o', import.meta.url));

interface BtfType {
  id: number; kind: string; name?: string; size?: number; type_id?: number; nr_elems?: number;
  members?: { name: string; type_id: number; bits_offset: number }[];
}

const types = new Map<number, BtfType>(
  (JSON.parse(execFileSync('bpftool', ['btf', 'dump', 'file', OBJECT, '-j'], { encoding: 'utf8' })).types as BtfType[])
    .map((t) => [t.id, t]),
);
const byName = (kind: string, name: string) => [...types.values()].find((t) => t.kind === kind && t.name === name);

function sizeOf(id: number): number {
  const t = types.get(id)!;
  if (t.kind === 'TYPEDEF' || t.kind === 'VOLATILE' || t.kind === 'CONST') return sizeOf(t.type_id!);
  if (t.kind === 'ARRAY') return t.nr_elems! * sizeOf(t.type_id!);
  assert.ok(t.size !== undefined, `BTF type ${id} (${t.kind}) has no size`);
  return t.size;
}

function resolveName(id: number): string {
  const t = types.get(id)!;
  return t.kind === 'PTR' ? resolveName(t.type_id!) : t.name ?? `<anon ${t.kind}>`;
}

/** A struct as bpftool reads the object's BTF (an independent reader: libbpf's, in
 * btf-check.ts, is what the controller uses at load). */
function btfStruct(name: string): BtfStruct | null {
  const s = byName('STRUCT', name);
  if (!s) return null;
  return { size: s.size!, members: s.members!.map((m) => ({ name: m.name, bitOffset: m.bits_offset, size: sizeOf(m.type_id) })) };
}

function checkCodec(codec: Codec<unknown>): void {
  assert.deepEqual(codecProblems(codec, btfStruct(codec.struct)), []);
}

/** An `__uint(name, n)` member: a pointer to an array of n ints. */
const uintOf = (m: { type_id: number }): number => types.get(types.get(m.type_id)!.type_id!)!.nr_elems!;

/** key/value/max_entries of a BTF-defined map (`struct { __type(key, ...) ... } name SEC(".maps")`). */
function mapDef(name: string) {
  const v = byName('VAR', name);
  assert.ok(v, `map ${name} not in the object's BTF`);
  const def = types.get(v.type_id!)!;
  const member = (m: string) => def.members!.find((x) => x.name === m)!;
  return {
    key: resolveName(member('key').type_id),
    value: resolveName(member('value').type_id),
    maxEntries: uintOf(member('max_entries')),
    type: uintOf(member('type')),
    flags: def.members!.some((x) => x.name === 'map_flags') ? uintOf(member('map_flags')) : 0,
  };
}

for (const [role, spec] of Object.entries(MAPS)) {
  test(`BTF: ${spec.name} (${role}) key and value codecs match the C structs`, () => {
    const def = mapDef(spec.name);
    assert.equal(def.key, spec.key.struct);
    assert.equal(def.value, spec.value.struct);
    checkCodec(spec.key as Codec<unknown>);
    checkCodec(spec.value as Codec<unknown>);
    if (role in KX_LIMITS) assert.equal(def.maxEntries, KX_LIMITS[role as keyof typeof KX_LIMITS], `max_entries of ${spec.name}`);
  });
}

test('BTF: the stats map has one counter per STAT_NAMES entry', () => {
  assert.equal(mapDef(STATS_MAP).maxEntries, STAT_NAMES.length);
});

test('BTF: the layouts pins.ts expects of pinned maps are the object\'s (type, sizes, max_entries, flags)', () => {
  for (const want of expectedLayouts()) {
    const def = mapDef(want.name);
    assert.deepEqual({ type: def.type, maxEntries: def.maxEntries, flags: def.flags }, { type: want.type, maxEntries: want.maxEntries, flags: want.flags }, want.name);
  }
});
