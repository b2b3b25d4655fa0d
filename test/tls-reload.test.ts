// Hot reload of the serving certificate: cert-manager mode (a mounted Secret volume whose `..data` symlink is swapped
// like the kubelet does), under a client that keeps a keep-alive connection busy. No request may fail.
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { Agent, request as httpsRequest } from 'node:https';
import { connect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { generateCa, issueServingCertificate } from '../src/server/certificate-authority.js';
import { startServer, type RunningServer } from '../src/server/serve.js';
import { fixtureReview } from './support/harness.js';

let dir: string;
let server: RunningServer;
let first: { ca: string; cert: string; key: string };
let second: { ca: string; cert: string; key: string };
let generation = 0;

/** Writes a new timestamped directory and swaps `..data` to it atomically, as the kubelet's AtomicWriter does. */
function publish(files: Record<string, string>): void {
  const target = `..2026_11_22_${generation++}`;
  mkdirSync(join(dir, target));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, target, name), text);
  symlinkSync(target, join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
}

async function bundle(name: string): Promise<{ ca: string; cert: string; key: string }> {
  const ca = await generateCa(name, Date.now(), 10);
  const leaf = await issueServingCertificate(ca, 'podvisor', 'podvisor-system', Date.now(), 5);
  return { ca: ca.cert, cert: leaf.cert, key: leaf.key };
}

function servedCertificate(): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: server.admissionPort, servername: 'podvisor.podvisor-system.svc', ca: [first.ca, second.ca] }, () => {
      const raw = socket.getPeerCertificate().raw;
      socket.end();
      resolve(new X509Certificate(raw));
    });
    socket.on('error', reject);
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'podvisor-mounted-'));
  const a = await bundle('first-ca');
  const b = await bundle('second-ca');
  first = a;
  second = b;
  publish({ 'tls.crt': a.cert, 'tls.key': a.key, 'ca.crt': a.ca });
  for (const name of ['tls.crt', 'tls.key', 'ca.crt']) symlinkSync(join('..data', name), join(dir, name));
  const config = parseConfig({
    logLevel: 'silent',
    server: { address: '127.0.0.1', opsAddress: '127.0.0.1', port: 0, opsPort: 0, drainSeconds: 0 },
    tls: { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') },
  });
  server = await startServer(config, pino({ level: 'silent' }));
}, 30_000);

afterAll(async () => {
  await server?.shutdown('test done');
});

describe('TLS hot reload (setSecureContext) in cert-manager mode', () => {
  it('swaps the certificate on a ..data symlink swap without failing a request on a kept-alive connection', async () => {
    expect((await servedCertificate()).checkIssued(new X509Certificate(first.ca))).toBe(true);
    // The apiserver trusts both CAs during a rotation: the client does too. One socket, reused.
    const agent = new Agent({ ca: [first.ca, second.ca], keepAlive: true, maxSockets: 1 });
    const body = JSON.stringify(fixtureReview('review-01-pod-create.json'));
    const ports = new Set<number>();
    let ok = 0;
    let failed = 0;
    let stop = false;
    const loop = (async () => {
      while (!stop) {
        try {
          const status = await new Promise<number>((resolve, reject) => {
            const req = httpsRequest(
              { host: '127.0.0.1', port: server.admissionPort, servername: 'podvisor.podvisor-system.svc', path: '/mutate', method: 'POST', agent, headers: { 'content-type': 'application/json' } },
              (res) => {
                ports.add(res.socket.localPort ?? 0);
                res.resume();
                res.on('end', () => resolve(res.statusCode ?? 0));
              },
            );
            req.on('error', reject);
            req.end(body);
          });
          if (status === 200) ok++;
          else failed++;
        } catch {
          failed++;
        }
      }
    })();
    await new Promise((r) => setTimeout(r, 200));
    publish({ 'tls.crt': second.cert, 'tls.key': second.key, 'ca.crt': second.ca });
    const deadline = Date.now() + 5000;
    while (!(await servedCertificate()).checkIssued(new X509Certificate(second.ca))) {
      if (Date.now() > deadline) throw new Error('certificate not reloaded');
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 200));
    stop = true;
    await loop;
    agent.destroy();
    expect(failed).toBe(0);
    expect(ok).toBeGreaterThan(10);
    // The kept-alive connection survived the swap: every request went over one socket.
    expect(ports.size).toBe(1);
  });

  it('keeps the current certificate when the new key does not match it', async () => {
    const before = (await servedCertificate()).fingerprint256;
    const mismatched = await bundle('third-ca');
    publish({ 'tls.crt': mismatched.cert, 'tls.key': second.key, 'ca.crt': mismatched.ca });
    await new Promise((r) => setTimeout(r, 800));
    expect((await servedCertificate()).fingerprint256).toBe(before);
  });
});
