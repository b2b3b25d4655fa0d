// Starts the real podvisor server (HTTPS + ops HTTP) on 127.0.0.1 with generated certs, and a client that verifies
// the generated CA — never rejectUnauthorized: false.
import { mkdtempSync, readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { parseConfig } from '../../src/config/load.js';
import { startServer, type RunningServer } from '../../src/server/serve.js';

export interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
  json<T = any>(): T; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export interface TestServer {
  readonly server: RunningServer;
  readonly ca: string;
  readonly certDir: string;
  readonly agent: Agent;
  post(path: string, body: string | object, headers?: Record<string, string>): Promise<Reply>;
  ops(path: string): Promise<Reply>;
  close(): Promise<void>;
}

export async function startTestServer(overrides: Record<string, any> = {}): Promise<TestServer> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const certDir = overrides['tls']?.certDir ?? mkdtempSync(join(tmpdir(), 'podvisor-certs-'));
  const config = parseConfig({
    logLevel: 'silent',
    ...overrides,
    server: { address: '127.0.0.1', opsAddress: '127.0.0.1', port: 0, opsPort: 0, drainSeconds: 0, ...overrides['server'] },
    tls: { certDir, ...overrides['tls'] },
  });
  const server = await startServer(config, pino({ level: 'silent' }));
  const ca = readFileSync(join(certDir, 'ca.crt'), 'utf8');
  const agent = new Agent({ ca, keepAlive: true, maxSockets: 4 });
  const post = (path: string, body: string | object, headers: Record<string, string> = {}) =>
    new Promise<Reply>((resolve, reject) => {
      const payload = typeof body === 'string' ? body : JSON.stringify(body);
      const req = httpsRequest(
        { host: '127.0.0.1', servername: 'localhost', port: server.admissionPort, path, method: 'POST', agent, headers: { 'content-type': 'application/json', ...headers } },
        (res) => collect(res, resolve, reject),
      );
      req.on('error', reject);
      req.end(payload);
    });
  const ops = (path: string) =>
    new Promise<Reply>((resolve, reject) => {
      httpRequest({ host: '127.0.0.1', port: server.opsPort, path }, (res) => collect(res, resolve, reject)).on('error', reject).end();
    });
  return {
    server,
    ca,
    certDir,
    agent,
    post,
    ops,
    async close() {
      agent.destroy();
      await server.shutdown('test done');
    },
  };
}

function collect(res: import('node:http').IncomingMessage, resolve: (r: Reply) => void, reject: (e: Error) => void): void {
  const chunks: Buffer[] = [];
  res.on('data', (c: Buffer) => chunks.push(c));
  res.on('error', reject);
  res.on('end', () => {
    const text = Buffer.concat(chunks).toString('utf8');
    resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) });
  });
}
