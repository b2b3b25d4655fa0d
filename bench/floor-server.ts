// The floor: a bare node:https server that answers every POST with a canned AdmissionReview, after reading and
// JSON-parsing the body like any webhook must. Same certificate, keep-alive and TLS settings as podvisor.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';

const [certDir, port] = process.argv.slice(2) as [string, string];
const canned = process.env['FLOOR_RESPONSE'] ?? '{}';
const server = createServer(
  { cert: readFileSync(`${certDir}/tls.crt`), key: readFileSync(`${certDir}/tls.key`), minVersion: 'TLSv1.2', keepAliveTimeout: 100_000 },
  (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      JSON.parse(Buffer.concat(chunks).toString('utf8'));
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
      res.end(canned);
    });
  },
);
server.listen(Number(port), '127.0.0.1', () => process.send?.('ready'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
