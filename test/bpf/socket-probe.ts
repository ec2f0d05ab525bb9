// Runs inside a scratch network namespace and cgroup where a fixture's socket hooks are attached
// (flow-harness.ts starts it): marks this namespace as the node's (kx_sock_config), then for each
// flow of stdin opens `sends` sockets and connect()s them, each from a fresh choice (affinity
// forgotten, as kube-proxy's tracer forgets it). What the hooks decided is read from the kernel,
// not from the socket: getpeername() is hooked to answer with the Service address, so the real
// peer comes from /proc/net/{tcp,udp}{,6}. No packet needs an answer: a TCP SYN goes out to
// nowhere and its socket is closed at once.
//   node socket-probe.js PIN_ROOT < [{"proto":"tcp"|"udp","dst":IP,"port":N,"sends":N}, ...]
// prints one JSON array: per flow, the sorted distinct outcomes (pass | reject | drop | ip:port).
// reject/drop are the hooks' refusals (ECONNREFUSED/EHOSTUNREACH, told apart from the kernel's own
// by the kx_stats counters they bump); a connect() the hooks left alone is `pass`, also when the
// kernel refuses it (nothing listens at a loopback address).
import { readFileSync } from 'node:fs';
import { connect, isIP, type Socket as TcpSocket } from 'node:net';
import { createSocket } from 'node:dgram';
import { join } from 'node:path';
import { Libkx } from '../../src/kernel/libkx.js';
import { MAPS, STAT_NAMES, STATS_MAP } from '../../src/dataplane/ebpf/maps.js';

interface Flow { proto: 'tcp' | 'udp'; dst: string; port: number; sends: number }

const lib = new Libkx();
const pinRoot = process.argv[2]!;
const pinned = (name: string) => ({ fd: lib.objGet(join(pinRoot, name)), label: name });

/** The remote address the kernel holds for a socket of this local port, `ip:port` (IPv6 in []). */
function peerOf(proto: 'tcp' | 'udp', v6: boolean, localPort: number): string | null {
  const table = readFileSync(`/proc/net/${proto}${v6 ? '6' : ''}`, 'utf8').split('\n').slice(1);
  for (const line of table) {
    const f = line.trim().split(/\s+/);
    if (f.length < 3 || Number.parseInt(f[1]!.split(':')[1]!, 16) !== localPort) continue;
    const [hex, port] = f[2]!.split(':') as [string, string];
    return `${decode(hex)}:${Number.parseInt(port, 16)}`;
  }
  return null;
}

/** /proc/net's address: 32-bit words in host (little-endian) order. */
function decode(hex: string): string {
  const words = hex.match(/.{8}/g)!.map((w) => Buffer.from(w, 'hex').reverse());
  const b = Buffer.concat(words);
  if (b.length === 4) return [...b].join('.');
  if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) return `[::ffff:${[...b.subarray(12)].join('.')}]`;
  const groups = Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2).toString(16));
  return new URL(`http://[${groups.join(':')}]/`).hostname; // the WHATWG serializer compresses it
}

const codeOf = (e: Error) => (e as NodeJS.ErrnoException).code ?? e.message;
const REJECTED = STAT_NAMES.indexOf('rejected'), NO_BACKEND = STAT_NAMES.indexOf('no_backend');
const stats = pinned(STATS_MAP);
/** The refusal counters, summed over CPUs. */
function refusals(): [bigint, bigint] {
  const d = lib.mapDump(stats, STAT_NAMES.length);
  const stride = d.values.length / d.count;
  const sum = (i: number) => {
    let n = 0n;
    for (let off = 0; off < stride; off += 8) n += d.values.readBigUInt64LE(i * stride + off);
    return n;
  };
  return [sum(REJECTED), sum(NO_BACKEND)];
}

/** What a failed connect() means: the hooks' refusal, or the kernel's answer at the dialled address. */
function outcomeOfError(code: string, before: [bigint, bigint]): string {
  const [rejected, noBackend] = refusals();
  if (rejected > before[0]) return 'reject';
  if (noBackend > before[1]) return 'drop';
  return code === 'ECONNREFUSED' ? 'pass' : `error ${code}`;
}

function tcpOnce(f: Flow): Promise<string> {
  return new Promise((resolve) => {
    const before = refusals();
    const sock: TcpSocket = connect({ host: f.dst, port: f.port });
    const done = (o: string) => { sock.destroy(); resolve(o); };
    sock.on('error', (e) => done(outcomeOfError(codeOf(e), before)));
    // the SYN is on its way (or queued for a neighbour that never answers): the socket is bound;
    // one gone from the table already was answered at once (a loopback RST): its error follows
    let polls = 0;
    const poll = () => {
      if (sock.destroyed) return;
      const port = sock.localPort;
      const peer = port === undefined ? null : peerOf('tcp', isIP(f.dst) === 6, port);
      if (peer !== null) done(peer);
      else if (++polls < 10_000) setImmediate(poll);
      else done('no socket');
    };
    setImmediate(poll);
  });
}

function udpOnce(f: Flow): Promise<string> {
  return new Promise((resolve) => {
    const before = refusals();
    const sock = createSocket(isIP(f.dst) === 6 ? 'udp6' : 'udp4');
    sock.on('error', (e) => { sock.close(); resolve(outcomeOfError(codeOf(e), before)); });
    sock.connect(f.port, f.dst, ((e?: Error) => {
      if (e) return void (sock.close(), resolve(outcomeOfError(codeOf(e), before)));
      const peer = peerOf('udp', isIP(f.dst) === 6, sock.address().port);
      sock.close();
      resolve(peer ?? 'no socket');
    }) as () => void);
  });
}

function forgetAffinity(): void {
  for (const name of [MAPS.affinity.name, MAPS.affinity6.name]) {
    const m = pinned(name);
    const d = lib.mapDump(m, 4096);
    if (d.count) lib.mapDeleteBatch(m, d.keys, d.count);
    lib.close(m.fd);
  }
}

async function main(): Promise<void> {
  const config = pinned(MAPS.sockConfig.name);
  const value = Buffer.alloc(MAPS.sockConfig.value.size);
  MAPS.sockConfig.value.encode({ hostNetnsCookie: lib.netnsCookie() }, value, 0);
  lib.mapUpdate(config, Buffer.alloc(4), value);
  const flows = JSON.parse(readFileSync(0, 'utf8')) as Flow[];
  const out: string[][] = [];
  for (const f of flows) {
    const seen = new Set<string>();
    const dialled = isIP(f.dst) === 6 ? `[${f.dst}]:${f.port}` : `${f.dst}:${f.port}`;
    for (let i = 0; i < f.sends; i++) {
      const o = await (f.proto === 'tcp' ? tcpOnce(f) : udpOnce(f));
      seen.add(o === dialled ? 'pass' : o);
      forgetAffinity();
    }
    out.push([...seen].sort());
  }
  process.stdout.write(JSON.stringify(out));
}

await main();
