// The floor: a bare node:https server that answers every POST with a canned AdmissionReview, after reading and
// JSON-parsing the body like any webhook must. Same certificate, keep-alive and TLS settings as podvisor.
// The answer is podvisor's own answer for the scenario, sent by the bench over IPC (`{ response }`).
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { createServer } from 'node:https';

const [certDir, port] = process.argv.slice(2) as [string, string];
let canned = '{}';

function collectBody(req: IncomingMessage, chunks: Buffer[]): void {
  req.on('data', (c: Buffer) => chunks.push(c));
}

function parseBody(chunks: Buffer[]): unknown {
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

const server = createServer(
  { cert: readFileSync(`${certDir}/tls.crt`), key: readFileSync(`${certDir}/tls.key`), minVersion: 'TLSv1.2', keepAliveTimeout: 100_000 },
  (req, res) => {
    const chunks: Buffer[] = [];
    collectBody(req, chunks);
    req.on('end', () => {
      parseBody(chunks);
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
      res.end(canned);
    });
  },
);
process.on('message', (message: { response: string }) => {
  canned = message.response;
  process.send?.('ok');
});
server.listen(Number(port), '127.0.0.1', () => process.send?.('ready'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
