// Echo server for lab pods: answers every TCP connection (and each line sent on it) and UDP datagram with one JSON line
// naming itself and the peer it saw, so tests can tell which backend answered and whether
// the client address survived the dataplane (NAT vs. DSR).
// Usage: node echo-server.js --name <pod> --port <p> [--port <p2>...]
import { createServer, type Server } from 'node:net';
import { createSocket, type Socket } from 'node:dgram';

function parseArgs(argv: string[]): { name: string; ports: number[] } {
  let name = '';
  const ports: number[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    if (a === '--name' && v !== undefined) { name = v; i++; }
    else if (a === '--port' && v !== undefined) { ports.push(Number(v)); i++; }
    else throw new Error(`echo-server: unknown argument ${a}`);
  }
  if (!name || ports.length === 0 || ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) {
    throw new Error('usage: echo-server --name <pod> --port <p> [--port <p2>...]');
  }
  return { name, ports };
}

function listenTcp(name: string, port: number): Promise<Server> {
  const srv = createServer((sock) => {
    sock.on('error', () => { /* peer reset: nothing to answer */ });
    const reply = {
      pod: name,
      peer: `${sock.remoteAddress}:${sock.remotePort}`,
      local: `${sock.localAddress}:${sock.localPort}`,
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
    srv.listen({ host: '0.0.0.0', port, backlog: 4096 }, () => resolve(srv));
  });
}

function listenUdp(name: string, port: number): Promise<Socket> {
  const sock = createSocket('udp4');
  sock.on('message', (_msg, rinfo) => {
    // Node cannot read a datagram's destination address (no IP_PKTINFO): `local` is the bound one.
    const reply = { pod: name, peer: `${rinfo.address}:${rinfo.port}`, local: `0.0.0.0:${port}` };
    sock.send(JSON.stringify(reply) + '\n', rinfo.port, rinfo.address);
  });
  return new Promise((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(port, '0.0.0.0', () => {
      sock.removeListener('error', reject);
      sock.on('error', () => { /* e.g. ICMP errors on send: keep serving */ });
      resolve(sock);
    });
  });
}

async function main(): Promise<void> {
  const { name, ports } = parseArgs(process.argv.slice(2));
  await Promise.all(ports.flatMap((p) => [listenTcp(name, p), listenUdp(name, p)]));
  process.stdout.write('ready\n');
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => process.exit(0));
}

main().catch((err: unknown) => {
  process.stderr.write(`echo-server: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
