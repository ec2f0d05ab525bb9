// Echo server for lab pods: answers every TCP connection (and each line sent on it) and UDP datagram with one JSON line
// naming itself and the peer it saw, so tests can tell which backend answered and whether
// the client address survived the dataplane (NAT vs. DSR).
// Usage: node echo-server.js --name <pod> --port <p> [--port <p2>...] [--ipv6]
// --ipv6 (a dual-stack pod) listens on IPv6 too, with sockets of its own (IPV6_V6ONLY), so an
// IPv4 peer still reads `a.b.c.d:port`; an IPv6 one reads `[addr]:port`.
import { createServer, type Server } from 'node:net';
import { createSocket, type Socket } from 'node:dgram';

type Family = 4 | 6;
const peerOf = (addr: string | undefined, port: number | undefined): string =>
  (addr?.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`);

function parseArgs(argv: string[]): { name: string; ports: number[]; families: Family[] } {
  let name = '';
  const ports: number[] = [];
  const families: Family[] = [4];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    if (a === '--ipv6') families.push(6);
    else if (a === '--name' && v !== undefined) { name = v; i++; }
    else if (a === '--port' && v !== undefined) { ports.push(Number(v)); i++; }
    else throw new Error(`echo-server: unknown argument ${a}`);
  }
  if (!name || ports.length === 0 || ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) {
    throw new Error('usage: echo-server --name <pod> --port <p> [--port <p2>...]');
  }
  return { name, ports, families };
}

function listenTcp(name: string, port: number, family: Family): Promise<Server> {
  const srv = createServer((sock) => {
    sock.on('error', () => { /* peer reset: nothing to answer */ });
    const reply = {
      pod: name,
      peer: peerOf(sock.remoteAddress, sock.remotePort),
      local: peerOf(sock.localAddress, sock.localPort),
    };
    // One line on connect, then one more per line the client sends, until the client closes:
    // short clients read the first line and go; a held connection shows an established flow
    // surviving dataplane changes.
    const line = JSON.stringify(reply) + '\n';
    sock.write(line);
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      for (let n = d.split('\n').length - 1; n > 0; n--) sock.write(line);
    });
    sock.on('end', () => sock.end());
  });
  return new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen({ host: family === 4 ? '0.0.0.0' : '::', ipv6Only: family === 6, port, backlog: 4096 }, () => resolve(srv));
  });
}

function listenUdp(name: string, port: number, family: Family): Promise<Socket> {
  const any = family === 4 ? '0.0.0.0' : '::';
  const sock = createSocket(family === 4 ? { type: 'udp4' } : { type: 'udp6', ipv6Only: true });
  sock.on('message', (_msg, rinfo) => {
    // Node cannot read a datagram's destination address (no IP_PKTINFO): `local` is the bound one.
    const reply = { pod: name, peer: peerOf(rinfo.address, rinfo.port), local: peerOf(any, port) };
    sock.send(JSON.stringify(reply) + '\n', rinfo.port, rinfo.address);
  });
  return new Promise((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(port, any, () => {
      sock.removeListener('error', reject);
      sock.on('error', () => { /* e.g. ICMP errors on send: keep serving */ });
      resolve(sock);
    });
  });
}

async function main(): Promise<void> {
  const { name, ports, families } = parseArgs(process.argv.slice(2));
  await Promise.all(ports.flatMap((p) => families.flatMap((f) => [listenTcp(name, p, f), listenUdp(name, p, f)])));
  process.stdout.write('ready\n');
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => process.exit(0));
}

main().catch((err: unknown) => {
  process.stderr.write(`echo-server: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
