// Run inside a lab namespace: accepts TCP on HOST:PORT there and pipes each connection to a
// unix socket, which is not bound to any network namespace. This is how a controller inside a
// node namespace reaches the fake API server the test runs in its own namespace, without any
// link into the root namespace. A failed or broken upstream resets the TCP side.
import { createConnection, createServer } from 'node:net';

const [listen, socketPath] = process.argv.slice(2);
if (!listen || !socketPath) {
  console.error('usage: netns-forward HOST:PORT UNIX_SOCKET');
  process.exit(2);
}
const i = listen.lastIndexOf(':');
const server = createServer((client) => {
  const upstream = createConnection(socketPath);
  client.pipe(upstream).pipe(client);
  upstream.on('error', () => client.resetAndDestroy());
  upstream.on('close', () => client.destroy());
  client.on('error', () => upstream.destroy());
  client.on('close', () => upstream.destroy());
});
server.listen(Number(listen.slice(i + 1)), listen.slice(0, i), () => console.log('listening'));
process.on('SIGTERM', () => process.exit(0));
