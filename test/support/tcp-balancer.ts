// What a Service is to podvisor's replicas, for the end-to-end suite: one address (the `--webhook-url` both replicas
// register) whose TCP connections go round-robin to the replicas, TLS passed through untouched (as kube-proxy does), so
// the apiserver verifies each replica's own serving certificate against the registered caBundle.
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface TcpBalancer {
  readonly port: number;
  /** The replicas' ports; connections made from now on go to these. */
  setBackends(ports: readonly number[]): void;
  /** Connections handed to each backend port so far. */
  readonly connections: ReadonlyMap<number, number>;
  close(): Promise<void>;
}

export async function startTcpBalancer(port = 0): Promise<TcpBalancer> {
  let backends: readonly number[] = [];
  let next = 0;
  const connections = new Map<number, number>();
  const open = new Set<Socket>();
  const server: Server = createServer((client) => {
    open.add(client);
    client.once('close', () => open.delete(client));
    if (backends.length === 0) {
      client.destroy();
      return;
    }
    const backendPort = backends[next++ % backends.length]!;
    connections.set(backendPort, (connections.get(backendPort) ?? 0) + 1);
    const backend = connect({ host: '127.0.0.1', port: backendPort });
    open.add(backend);
    backend.once('close', () => open.delete(backend));
    // A reset on either side resets the other, as a dropped connection through kube-proxy would.
    backend.once('error', () => client.destroy());
    client.once('error', () => backend.destroy());
    client.pipe(backend).pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    setBackends(ports) {
      backends = [...ports];
    },
    connections,
    async close() {
      for (const socket of open) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
