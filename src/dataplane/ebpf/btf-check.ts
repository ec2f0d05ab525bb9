// The TypeScript codecs against the object's BTF, at load: a kube-xdp started with a
// --bpf-object of another version (or a rebuilt header) would write every map entry at the
// wrong offsets. The C headers are the source of truth; on any difference the controller
// refuses to start and says which struct and field differ.
import type { BtfStruct, Libkx } from '../../kernel/libkx.js';
import { FIELD_SIZE, type Codec } from './codec.js';
import { MAPS } from './maps.js';

const snake = (s: string) => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
/** Plain integer types have no struct to compare. */
const SCALARS = new Set(['__u8', '__u32', '__u64']);

/** What differs between a codec and the struct the object describes (pure). */
export function codecProblems(codec: Codec<unknown>, s: BtfStruct | null): string[] {
  if (SCALARS.has(codec.struct)) return [];
  if (!s) return [`struct ${codec.struct}: not in the object`];
  const out: string[] = [];
  if (s.size !== codec.size) out.push(`struct ${codec.struct}: size ${s.size}, kube-xdp expects ${codec.size}`);
  const members = s.members.filter((m) => m.name !== 'pad');
  const names = codec.fields.map((f) => snake(f.name));
  if (names.join(',') !== members.map((m) => m.name).join(',')) {
    out.push(`struct ${codec.struct}: fields ${members.map((m) => m.name).join(', ')}, kube-xdp expects ${names.join(', ')}`);
    return out;
  }
  for (const m of members) {
    const f = codec.fields.find((x) => snake(x.name) === m.name)!;
    if (f.offset * 8 !== m.bitOffset || FIELD_SIZE[f.type] !== m.size) {
      out.push(`struct ${codec.struct}.${m.name}: at ${m.bitOffset / 8} (${m.size} bytes), kube-xdp expects ${f.offset} (${FIELD_SIZE[f.type]} bytes)`);
    }
  }
  return out;
}

/** Every map codec against the object at objectPath (opened, never loaded). */
export function objectLayoutProblems(lib: Libkx, objectPath: string): string[] {
  const h = lib.objOpen(objectPath);
  try {
    const codecs = new Map<string, Codec<unknown>>();
    for (const m of Object.values(MAPS)) for (const c of [m.key, m.value] as Codec<unknown>[]) codecs.set(c.struct, c);
    return [...codecs.values()].flatMap((c) => codecProblems(c, SCALARS.has(c.struct) ? null : lib.objBtfStruct(h, c.struct)));
  } finally {
    lib.objClose(h);
  }
}
