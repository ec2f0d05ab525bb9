// Lab traffic client: N TCP connections or UDP request/replies, summarised as one JSON line.
// Targets and peers are `IPv4:PORT` or `[IPv6]:PORT` (replyPeers and seenPeers keys too); an
// IPv6 target uses an IPv6 socket.
//   node client.js --tcp|--udp --target IP:PORT [--count N] [--timeout-ms T] [--concurrency C]
//   node client.js --tcp|--udp --target IP:PORT --steady [--interval-ms 20] --duration-ms D
//   node client.js --tcp --target IP:PORT --hold [--interval-ms 20] --duration-ms D
// --payload N (TCP) sends an N-byte line on each connection and waits for its answer (large
// segments: path MTU discovery must work).
// --connected (UDP) connects each socket first, so ICMP errors end a request as ECONNREFUSED.
// --record (steady mode) adds every attempt to the summary: its start (epoch ms) and the pod
// that answered, or the error.
// Hold mode keeps ONE connection and sends a line every interval: byPod counts the answers,
// so a connection that moved or broke shows up. It prints "first <pod>" on the first answer,
// before the summary line.
// Steady mode starts one attempt per interval (overlapping) and adds a timeline of failures;
// SIGTERM ends it early and still prints the summary.
import { connect, isIP } from 'node:net';
import { createSocket } from 'node:dgram';

export interface Summary {
  ok: number;
  failed: number;
  errors: Record<string, number>;
  byPod: Record<string, number>;
  /** UDP: rinfo of replies; TCP: socket remoteAddress:remotePort. */
  replyPeers: Record<string, number>;
  /** The client address the backend reported. */
  seenPeers: Record<string, number>;
  durationMs: number;
  /** Count and steady modes: the slowest and the median attempt (connect/request to its
   *  outcome), ms. */
  slowestMs?: number;
  medianMs?: number;
  /** Steady mode only: failures, `t` = ms from start when the attempt began. */
  timeline?: { t: number; code: string }[];
  /** --record: every attempt, `at` = epoch ms when it began. */
  records?: { at: number; pod?: string; code?: string }[];
}

const peerOf = (addr: string | undefined, port: number | undefined): string =>
  (addr?.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`);

type Outcome = { code: string } | { pod: string; replyPeer: string; seenPeer: string };

interface Args {
  proto: 'tcp' | 'udp';
  host: string;
  port: number;
  count: number;
  timeoutMs: number;
  concurrency: number;
  steady: boolean;
  hold: boolean;
  record: boolean;
  connected: boolean;
  payload: number;
  intervalMs: number;
  durationMs: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { proto: 'tcp', host: '', port: 0, count: 1, timeoutMs: 2000, concurrency: 1,
    steady: false, hold: false, record: false, connected: false, payload: 0, intervalMs: 20, durationMs: 0 };
  let proto = '';
  const num = (v: string | undefined, flag: string): number => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n < 0) throw new Error(`bad value for ${flag}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i];
    switch (f) {
      case '--tcp': case '--udp': proto = f.slice(2); break;
      case '--steady': a.steady = true; break;
      case '--hold': a.hold = true; break;
      case '--record': a.record = true; break;
      case '--connected': a.connected = true; break;
      case '--payload': a.payload = num(argv[++i], f); break;
      case '--target': {
        const t = argv[++i] ?? '';
        const c = t.lastIndexOf(':');
        const bracketed = /^\[([^\]]+)\]$/.exec(t.slice(0, c));
        a.host = bracketed ? bracketed[1]! : t.slice(0, c);
        a.port = Number(t.slice(c + 1));
        // an IPv6 address only in brackets: `fd00::10:80` is ambiguous
        const v6ok = bracketed ? isIP(a.host) === 6 : !a.host.includes(':');
        if (c < 1 || !v6ok || !Number.isInteger(a.port) || a.port < 1 || a.port > 65535) throw new Error(`bad --target ${t}`);
        break;
      }
      case '--count': a.count = num(argv[++i], f); break;
      case '--timeout-ms': a.timeoutMs = num(argv[++i], f); break;
      case '--concurrency': a.concurrency = Math.max(1, num(argv[++i], f)); break;
      case '--interval-ms': a.intervalMs = Math.max(1, num(argv[++i], f)); break;
      case '--duration-ms': a.durationMs = num(argv[++i], f); break;
      default: throw new Error(`unknown argument ${f}`);
    }
  }
  if (proto !== 'tcp' && proto !== 'udp') throw new Error('one of --tcp or --udp is required');
  if (!a.host) throw new Error('--target IP:PORT is required');
  if ((a.steady || a.hold) && a.durationMs <= 0) throw new Error('--steady and --hold need --duration-ms');
  if (a.hold && proto !== 'tcp') throw new Error('--hold is TCP only');
  a.proto = proto;
  return a;
}

function parseReply(text: string): { pod: string; peer: string } | null {
  try {
    const j = JSON.parse(text.trim()) as { pod?: unknown; peer?: unknown };
    return typeof j.pod === 'string' && typeof j.peer === 'string' ? { pod: j.pod, peer: j.peer } : null;
  } catch {
    return null;
  }
}

function errCode(e: unknown): string {
  return (e as NodeJS.ErrnoException)?.code ?? 'ERROR';
}

function tcpOnce(host: string, port: number, timeoutMs: number, payload = 0): Promise<Outcome> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    let buf = '';
    let replyPeer = '';
    let done = false;
    const finish = (o: Outcome): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(o);
    };
    const timer = setTimeout(() => finish({ code: 'ETIMEDOUT' }), timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => {
      replyPeer = peerOf(sock.remoteAddress, sock.remotePort);
      if (payload > 0) sock.write(`${'x'.repeat(payload)}\n`);
    });
    const lines = payload > 0 ? 2 : 1; // the greeting, then the answer to the payload
    const done1 = (): void => {
      const r = parseReply(buf.split('\n')[0]!);
      finish(r ? { pod: r.pod, replyPeer, seenPeer: r.peer } : { code: 'EBADREPLY' });
    };
    sock.on('data', (d: string) => {
      buf += d;
      if (buf.split('\n').length > lines) done1();
    });
    sock.on('end', done1);
    sock.on('error', (e) => finish({ code: errCode(e) }));
  });
}

// A fresh unconnected socket per request: a new source port each time, and the reply's
// source address is whatever actually arrived (a connected socket would filter it).
// `connected`: connect() first, so that an ICMP error (port unreachable) ends it as
// ECONNREFUSED, as it does for a connected application.
function udpOnce(host: string, port: number, timeoutMs: number, connected: boolean): Promise<Outcome> {
  return new Promise((resolve) => {
    const sock = createSocket(isIP(host) === 6 ? 'udp6' : 'udp4');
    let done = false;
    const finish = (o: Outcome): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.close();
      resolve(o);
    };
    const timer = setTimeout(() => finish({ code: 'ETIMEDOUT' }), timeoutMs);
    sock.on('message', (msg, rinfo) => {
      const r = parseReply(msg.toString('utf8'));
      finish(r ? { pod: r.pod, replyPeer: peerOf(rinfo.address, rinfo.port), seenPeer: r.peer } : { code: 'EBADREPLY' });
    });
    sock.on('error', (e) => finish({ code: errCode(e) }));
    const send = (): void => {
      const cb = (e: Error | null): void => { if (e) finish({ code: errCode(e) }); };
      if (connected) sock.send('ping\n', cb);
      else sock.send('ping\n', port, host, cb);
    };
    // connect() itself fails where a socket hook refuses (Node passes that error to the callback)
    if (connected) sock.connect(port, host, ((e?: Error) => (e ? finish({ code: errCode(e) }) : send())) as () => void);
    else send();
  });
}

function bump(m: Record<string, number>, k: string): void {
  m[k] = (m[k] ?? 0) + 1;
}

/** One connection, a line every interval; every answer (or the failure that ends it) recorded. */
function hold(a: Args, s: Summary, record: (o: Outcome, t: number) => void): Promise<void> {
  return new Promise((resolve) => {
    const start = performance.now();
    const sock = connect({ host: a.host, port: a.port });
    let buf = '';
    let replyPeer = '';
    let ended = false;
    let lastAnswer = performance.now();
    const end = (code?: string): void => {
      if (ended) return;
      ended = true;
      clearInterval(tick);
      if (code) record({ code }, performance.now() - start);
      sock.destroy();
      resolve();
    };
    const tick = setInterval(() => {
      if (performance.now() - start >= a.durationMs) return end();
      if (performance.now() - lastAnswer > a.timeoutMs) return end('ETIMEDOUT');
      sock.write('ping\n');
    }, a.intervalMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => { replyPeer = peerOf(sock.remoteAddress, sock.remotePort); });
    sock.on('data', (d: string) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const r = parseReply(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        lastAnswer = performance.now();
        // Announced at once, so a test can act on where the connection landed.
        if (s.ok === 0 && r) process.stdout.write(`first ${r.pod}\n`);
        record(r ? { pod: r.pod, replyPeer, seenPeer: r.peer } : { code: 'EBADREPLY' }, lastAnswer - start);
      }
    });
    sock.on('end', () => end('EEOF'));
    sock.on('error', (e) => end(errCode(e)));
  });
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const s: Summary = { ok: 0, failed: 0, errors: {}, byPod: {}, replyPeers: {}, seenPeers: {}, durationMs: 0 };
  const took: number[] = [];
  const once = async (): Promise<Outcome> => {
    const t0 = performance.now();
    const o = await (a.proto === 'tcp' ? tcpOnce(a.host, a.port, a.timeoutMs, a.payload) : udpOnce(a.host, a.port, a.timeoutMs, a.connected));
    took.push(performance.now() - t0);
    return o;
  };
  const start = performance.now();
  const record = (o: Outcome, t: number): void => {
    if ('code' in o) {
      s.failed++;
      bump(s.errors, o.code);
      s.timeline?.push({ t: Math.round(t), code: o.code });
    } else {
      s.ok++;
      bump(s.byPod, o.pod);
      bump(s.replyPeers, o.replyPeer);
      bump(s.seenPeers, o.seenPeer);
    }
  };

  if (a.hold) {
    await hold(a, s, record);
  } else if (a.steady) {
    s.timeline = [];
    let stop = false;
    process.once('SIGTERM', () => { stop = true; });
    process.once('SIGINT', () => { stop = true; });
    const inflight = new Set<Promise<void>>();
    if (a.record) s.records = [];
    while (!stop && performance.now() - start < a.durationMs) {
      const t = performance.now() - start;
      const at = Date.now();
      const p = once().then((o) => {
        record(o, t);
        s.records?.push('code' in o ? { at, code: o.code } : { at, pod: o.pod });
      });
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
      await new Promise((r) => setTimeout(r, a.intervalMs));
    }
    await Promise.all(inflight);
    s.timeline.sort((x, y) => x.t - y.t);
  } else {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < a.count) {
        next++;
        record(await once(), 0);
      }
    };
    await Promise.all(Array.from({ length: Math.min(a.concurrency, a.count) }, worker));
  }
  s.durationMs = Math.round(performance.now() - start);
  if (took.length) {
    const ms = (x: number): number => Math.round(x * 100) / 100;
    took.sort((x, y) => x - y);
    s.slowestMs = ms(took[took.length - 1]!);
    s.medianMs = ms(took[(took.length - 1) >> 1]!);
  }
  process.stdout.write(JSON.stringify(s) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`client: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(2);
});
