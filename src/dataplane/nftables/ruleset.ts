// An in-memory nftables table with the semantics of knftables' fake (sigs.k8s.io/knftables
// fake.go): "add" of an existing table/chain/set/map changes nothing, "flush" empties, "delete"
// of a missing object fails, an element with an existing key replaces it in place. Like the
// newer fake (and nft), a rule or element naming a missing chain (jump/goto) or set/map (@name)
// fails. Unlike the fake, apply() is transactional: a failing batch changes nothing. dump()
// prints the fake's Dump() (knftables v0.0.17 and later, which kube-proxy 1.33 uses): the
// table, the chains, sets and maps (each sorted), then the chains' rules, then the sets' and
// maps' elements — loadable by `nft -f` as it is. Our own code.
import { opText, type NftFamily, type NftObject, type NftOp } from './ops.js';

export interface NftRule {
  readonly rule: string;
  readonly comment?: string;
}

export interface NftChain {
  readonly name: string;
  readonly type?: 'filter' | 'nat';
  readonly hook?: string;
  readonly priority?: number;
  readonly comment?: string;
  rules: NftRule[];
}

export interface NftElement {
  readonly key: string[];
  readonly value?: string[];
  readonly comment?: string;
}

export interface NftSet {
  readonly name: string;
  readonly kind: 'set' | 'map';
  readonly type: string;
  readonly flags: readonly string[];
  readonly timeoutSeconds?: number;
  readonly comment?: string;
  elements: NftElement[];
}

/** An operation the table refused; `notFound` like knftables.IsNotFound. */
export class NftError extends Error {
  constructor(message: string, readonly notFound: boolean) {
    super(message);
    this.name = 'NftError';
  }
}

interface State {
  table: { comment?: string } | null;
  chains: Map<string, NftChain>;
  sets: Map<string, NftSet>;
}

const byteOrder = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const keyOf = (key: readonly string[]) => key.join(' . ');

function clone(s: State): State {
  return {
    table: s.table ? { ...s.table } : null,
    chains: new Map([...s.chains].map(([k, c]) => [k, { ...c, rules: [...c.rules] }])),
    sets: new Map([...s.sets].map(([k, v]) => [k, { ...v, elements: [...v.elements] }])),
  };
}

export class NftRuleset {
  private state: State = { table: null, chains: new Map(), sets: new Map() };

  constructor(readonly family: NftFamily, readonly table = 'kube-proxy') {}

  /** Whether the table exists. */
  get exists(): boolean {
    return this.state.table !== null;
  }
  get chains(): ReadonlyMap<string, NftChain> {
    return this.state.chains;
  }
  /** Sets and maps (one namespace, as in nft). */
  get sets(): ReadonlyMap<string, NftSet> {
    return this.state.sets;
  }

  /** Applies the operations in order, all or nothing; throws NftError on the first refused one. */
  apply(ops: readonly NftOp[]): void {
    const next = clone(this.state);
    for (const op of ops) {
      try {
        applyOne(next, op, this.family, this.table);
      } catch (err) {
        if (err instanceof NftError) {
          let line: string;
          try {
            line = opText(this.family, this.table, op);
          } catch {
            line = `${op.verb} ${op.obj.kind}`;
          }
          throw new NftError(`${err.message} (in "${line}")`, err.notFound);
        }
        throw err;
      }
    }
    this.state = next;
  }

  /** knftables fake Dump(): "" when the table does not exist. */
  dump(): string {
    const s = this.state;
    if (!s.table) return '';
    const w = (obj: NftObject) => `${opText(this.family, this.table, { verb: 'add', obj })}\n`;
    let out = w({ kind: 'table', ...(s.table.comment !== undefined ? { comment: s.table.comment } : {}) });
    const chains = [...s.chains.keys()].sort(byteOrder).map((name) => s.chains.get(name)!);
    const sets = (kind: 'set' | 'map') => [...s.sets.keys()].sort(byteOrder).map((name) => s.sets.get(name)!).filter((set) => set.kind === kind);
    const containers = [...sets('set'), ...sets('map')];
    // Every object first, then their contents: what `nft -f` can load as it is.
    for (const c of chains) out += w(chainObj(c));
    for (const set of containers) out += w(setObj(set));
    for (const c of chains) {
      for (const r of c.rules) out += w({ kind: 'rule', chain: c.name, rule: r.rule, ...(r.comment !== undefined ? { comment: r.comment } : {}) });
    }
    for (const set of containers) for (const e of set.elements) out += w(elementObj(set, e));
    return out;
  }

  /** `nft list chains` / `nft list sets` (+ maps) of the table, sorted. */
  listChains(): string[] {
    return [...this.state.chains.keys()].sort(byteOrder);
  }
  listSets(): string[] {
    return [...this.state.sets.values()].filter((s) => s.kind === 'set').map((s) => s.name).sort(byteOrder);
  }
  listMaps(): string[] {
    return [...this.state.sets.values()].filter((s) => s.kind === 'map').map((s) => s.name).sort(byteOrder);
  }
}

function chainObj(c: NftChain): NftObject {
  return {
    kind: 'chain', name: c.name,
    ...(c.type !== undefined ? { type: c.type, hook: c.hook!, priority: c.priority! } : {}),
    ...(c.comment !== undefined ? { comment: c.comment } : {}),
  };
}

function setObj(s: NftSet): NftObject {
  return {
    kind: s.kind, name: s.name, type: s.type, flags: s.flags,
    ...(s.timeoutSeconds !== undefined ? { timeoutSeconds: s.timeoutSeconds } : {}),
    ...(s.comment !== undefined ? { comment: s.comment } : {}),
  };
}

function elementObj(s: NftSet, e: NftElement): NftObject {
  return {
    kind: 'element', container: s.kind, name: s.name, key: e.key,
    ...(e.value ? { value: e.value } : {}),
    ...(e.comment !== undefined ? { comment: e.comment } : {}),
  };
}

const notFound = (msg: string) => new NftError(msg, true);

/** Chains a verdict text jumps to, and sets/maps it looks up ("@name"). */
function checkReferences(s: State, text: string): void {
  for (const m of text.matchAll(/(?:^|\s)(?:jump|goto)\s+(\S+)/g)) {
    if (!s.chains.has(m[1]!)) throw notFound(`no such chain ${JSON.stringify(m[1])}`);
  }
  for (const m of text.matchAll(/@([A-Za-z0-9_./-]+)/g)) {
    if (!s.sets.has(m[1]!)) throw notFound(`no such set or map ${JSON.stringify(m[1])}`);
  }
}

function applyOne(s: State, op: NftOp, family: NftFamily, table: string): void {
  const { verb, obj } = op;
  if (!s.table && !(obj.kind === 'table' && verb === 'add')) throw notFound(`no such table "${family} ${table}"`);
  switch (obj.kind) {
    case 'table':
      if (verb === 'add') {
        if (!s.table) s.table = obj.comment !== undefined ? { comment: obj.comment } : {};
      } else if (verb === 'flush') {
        s.chains.clear();
        s.sets.clear();
      } else {
        s.table = null;
        s.chains.clear();
        s.sets.clear();
      }
      return;
    case 'chain': {
      const existing = s.chains.get(obj.name);
      if (verb === 'add') {
        if (existing) return;
        s.chains.set(obj.name, {
          name: obj.name,
          ...(obj.type !== undefined ? { type: obj.type, hook: obj.hook!, priority: obj.priority! } : {}),
          ...(obj.comment !== undefined ? { comment: obj.comment } : {}),
          rules: [],
        });
        return;
      }
      if (!existing) throw notFound(`no such chain ${JSON.stringify(obj.name)}`);
      if (verb === 'flush') existing.rules = [];
      else s.chains.delete(obj.name);
      return;
    }
    case 'set':
    case 'map': {
      const existing = s.sets.get(obj.name);
      if (existing && existing.kind !== obj.kind) throw new NftError(`${JSON.stringify(obj.name)} is a ${existing.kind}, not a ${obj.kind}`, false);
      if (verb === 'add') {
        if (existing) return;
        if (!obj.type) throw new NftError(`${obj.kind} ${JSON.stringify(obj.name)} has no type`, false);
        s.sets.set(obj.name, {
          name: obj.name, kind: obj.kind, type: obj.type, flags: [...(obj.flags ?? [])],
          ...(obj.timeoutSeconds !== undefined ? { timeoutSeconds: obj.timeoutSeconds } : {}),
          ...(obj.comment !== undefined ? { comment: obj.comment } : {}),
          elements: [],
        });
        return;
      }
      if (!existing) throw notFound(`no such ${obj.kind} ${JSON.stringify(obj.name)}`);
      if (verb === 'flush') existing.elements = [];
      else s.sets.delete(obj.name);
      return;
    }
    case 'rule': {
      const chain = s.chains.get(obj.chain);
      if (!chain) throw notFound(`no such chain ${JSON.stringify(obj.chain)}`);
      if (verb !== 'add') throw new NftError(`cannot ${verb} a rule without its handle`, false);
      checkReferences(s, obj.rule);
      chain.rules.push({ rule: obj.rule, ...(obj.comment !== undefined ? { comment: obj.comment } : {}) });
      return;
    }
    case 'element': {
      const set = s.sets.get(obj.name);
      if (!set || set.kind !== obj.container) throw notFound(`no such ${obj.container} ${JSON.stringify(obj.name)}`);
      const key = keyOf(obj.key);
      const i = set.elements.findIndex((e) => keyOf(e.key) === key);
      if (verb === 'delete') {
        if (i === -1) throw notFound(`no such element ${JSON.stringify(key)}`);
        set.elements.splice(i, 1);
        return;
      }
      if (verb !== 'add') throw new NftError(`cannot ${verb} an element`, false);
      if (set.kind === 'map') {
        if (!obj.value || obj.value.length === 0) throw new NftError(`map element ${JSON.stringify(key)} has no value`, false);
        checkReferences(s, obj.value.join(' '));
      }
      const element: NftElement = {
        key: [...obj.key],
        ...(set.kind === 'map' ? { value: [...obj.value!] } : {}),
        ...(obj.comment !== undefined ? { comment: obj.comment } : {}),
      };
      if (i === -1) set.elements.push(element);
      else set.elements[i] = element;
      return;
    }
  }
}
