// Lifecycle under load: `podvisor serve` runs as a child process on 127.0.0.1 while a load generator posts reviews
// over keep-alive HTTPS connections, and the test sends SIGTERM, reloads the config (valid, then invalid) or rotates
// the serving certificate. Each must cost 0 failed requests. Bounded: every test ends within its timeout.
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { generateServingCertificate } from '../src/server/certificate-authority.js';
import { fixtureReview } from './support/harness.js';
import { startLoad, UID, type LoadBody } from './support/load-generator.js';
import { startPodvisorProcess, type PodvisorProcess } from './support/podvisor-process.js';

const DRAIN_SECONDS = 1.5;
const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

function template(name: string, edit: (review: ReturnType<typeof fixtureReview>) => void = () => undefined): LoadBody {
  const review = fixtureReview('review-01-pod-create.json');
  edit(review);
  review.request['uid'] = UID;
  return { name, template: JSON.stringify(review) };
}

const BODIES: LoadBody[] = [
  template('pod opted in'),
  template('pod not opted in', (r) => delete (r.request['object'] as { metadata: { annotations?: unknown } }).metadata.annotations),
  { name: 'daemonset', template: JSON.stringify({ ...fixtureReview('review-11-daemonset-create.json'), request: { ...fixtureReview('review-11-daemonset-create.json').request, uid: UID } }) },
];

/** Writes a file the way a ConfigMap or Secret update lands: a new file renamed over the old one. */
function replaceFile(file: string, text: string): void {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

interface Setup {
  readonly dir: string;
  readonly configFile: string;
  readonly ca: string;
  readonly certFile: string;
  readonly keyFile: string;
  config(extra?: string): string;
}

async function setup(): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), 'podvisor-lifecycle-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const { ca, cert, key } = await generateServingCertificate('podvisor', 'podvisor-system');
  const certFile = join(dir, 'tls.crt');
  const keyFile = join(dir, 'tls.key');
  writeFileSync(certFile, cert);
  writeFileSync(keyFile, key);
  const configFile = join(dir, 'config.yaml');
  const config = (extra = '') =>
    [
      'logLevel: info',
      'server:',
      '  address: 127.0.0.1',
      '  port: 0',
      '  opsAddress: 127.0.0.1',
      '  opsPort: 0',
      `  drainSeconds: ${DRAIN_SECONDS}`,
      // The slow request below is held open through the whole drain: longer than the default header/body timeouts.
      '  headersTimeoutMs: 30000',
      '  bodyTimeoutMs: 30000',
      'tls:',
      `  certFile: ${certFile}`,
      `  keyFile: ${keyFile}`,
      extra,
    ].join('\n');
  writeFileSync(configFile, config());
  return { dir, configFile, ca, certFile, keyFile, config };
}

async function start(s: Setup): Promise<PodvisorProcess> {
  const p = await startPodvisorProcess(s.configFile);
  cleanup.push(() => p.kill());
  return p;
}

async function ops(p: PodvisorProcess, path: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://127.0.0.1:${p.opsPort}${path}`);
  return { status: res.status, text: await res.text() };
}

/** A request whose headers and first half of the body are sent now and the rest when `finish` is called. */
async function slowRequest(port: number, ca: string): Promise<{ finish(): Promise<{ status: number; text: string }> }> {
  const body = BODIES[0]!.template.replace(UID, '00000000-slow-0000-0000-000000000001');
  const half = Math.floor(body.length / 2);
  let resolveResponse!: (r: { status: number; text: string }) => void;
  let rejectResponse!: (e: Error) => void;
  const response = new Promise<{ status: number; text: string }>((resolve, reject) => ((resolveResponse = resolve), (rejectResponse = reject)));
  const req = request(
    { host: '127.0.0.1', servername: 'localhost', port, path: '/mutate', method: 'POST', ca, agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
    (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolveResponse({ status: res.statusCode ?? 0, text }));
      res.on('error', rejectResponse);
    },
  );
  req.on('error', rejectResponse);
  await new Promise<void>((resolve) => req.write(body.slice(0, half), () => resolve()));
  await sleep(100); // the server has read the headers and the first half: a request in flight
  return {
    finish() {
      req.end(body.slice(half));
      return response;
    },
  };
}

/** The fingerprint of the certificate a new TLS connection is served, verified against `ca`. */
function servedCertificate(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', ca }, () => {
      const fingerprint = socket.getPeerX509Certificate()?.fingerprint256 ?? '';
      socket.end();
      resolve(fingerprint);
    });
    socket.on('error', reject);
  });
}

function connectError(port: number, ca: string): Promise<string> {
  return servedCertificate(port, ca).then(
    () => 'connected',
    (err: NodeJS.ErrnoException) => err.code ?? err.message,
  );
}

describe('lifecycle under load (podvisor serve as a child process, loopback only)', () => {
  it('SIGTERM: not ready at once, every request answered through the drain, the one in flight completes, then refused cleanly', async () => {
    // The load is the apiserver's: once the pod is not ready, it opens no new connection to it but keeps sending on
    // its open keep-alive connections until podvisor closes them (see test/support/load-generator.ts).
    const s = await setup();
    const p = await start(s);
    const load = startLoad({ port: p.admissionPort, ca: [s.ca], connections: 4, bodies: BODIES, maxSeconds: 30 });
    cleanup.push(async () => void (await load.stop()));
    await load.waitForOk(300);
    const slow = await slowRequest(p.admissionPort, s.ca);

    const inFlight = load.snapshotInFlight();
    p.child.kill('SIGTERM');
    await p.waitForLog((l) => l.msg === 'shutting down: not ready, draining');
    const drainEnds = Date.now() + DRAIN_SECONDS * 1000;
    expect((await ops(p, '/readyz')).status).toBe(503);
    // Still served while the endpoint is being removed: open keep-alive connections and new connections alike.
    await load.waitForOk(100);
    expect(await connectError(p.admissionPort, s.ca)).toBe('connected');
    load.removeEndpoint();

    // Past the drain the server no longer listens; the slow request, in flight since before SIGTERM, still completes.
    await sleep(Math.max(0, drainEnds - Date.now()));
    let probe = await connectError(p.admissionPort, s.ca);
    // A probe that arrives as the listener closes is accepted and then reset: still closing, so probe again.
    for (let i = 0; (probe === 'connected' || probe === 'ECONNRESET') && i < 50; i += 1) probe = await sleep(100).then(() => connectError(p.admissionPort, s.ca));
    expect(probe).toBe('ECONNREFUSED');
    const answer = await slow.finish();
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.text).response).toMatchObject({ uid: '00000000-slow-0000-0000-000000000001', allowed: true, patchType: 'JSONPatch' });

    expect(await p.exited).toBe(0);
    expect(p.logs.some((l) => l.msg === 'podvisor stopped')).toBe(true);
    const report = await load.stop();
    console.log(`SIGTERM: ${report.ok} ok, ${report.failed.length} failed, ${inFlight} in flight at SIGTERM, ${report.rerouted} connections closed by the drain, ${report.refused} refused after it`);
    expect(report.failed).toEqual([]);
    expect(report.inFlightAtMark).toEqual({ ok: inFlight, refused: 0, failed: 0 });
    expect(report.ok).toBeGreaterThan(400);
    // Every worker ended cleanly: its connection closed after an answer, or refused once the server stopped listening.
    expect(report.rerouted + report.refused).toBe(4);
  }, 40_000);

  it('config reload under load: a valid config applies to the next request, an invalid one is rejected and the old stays', async () => {
    const s = await setup();
    const p = await start(s);
    const load = startLoad({ port: p.admissionPort, ca: [s.ca], connections: 4, bodies: BODIES, maxSeconds: 30 });
    cleanup.push(async () => void (await load.stop()));
    await load.waitForOk(300);

    load.mark(); // period 0 ends before the file changes; period 1 (the change) is not checked
    replaceFile(s.configFile, s.config('defaults:\n  lxcfs: true\n'));
    await p.waitForLog((l) => l.msg === 'config reloaded');
    const afterValid = load.mark();
    await load.waitForOk(300);
    replaceFile(s.configFile, s.config('defaults:\n  lxcfs: maybe\n'));
    const rejected = await p.waitForLog((l) => l.msg === 'config reload rejected; the previous config stays in force');
    expect(String(rejected['error'])).toMatch(/defaults\.lxcfs: /);
    const afterInvalid = load.mark();
    await load.waitForOk(300);

    const report = await load.stop();
    console.log(`config reload: ${report.ok} ok, ${report.failed.length} failed, ${report.refused} refused`);
    expect(report.failed).toEqual([]);
    expect(report.refused).toBe(0);
    // Sent before the reload: the pod without annotations was not opted in. Sent after it: every one is injected,
    // and still after the invalid config was rejected.
    expect(report.periods[0]!['pod not opted in']).toMatchObject({ patched: 0 });
    expect(report.periods[0]!['pod not opted in']!.unpatched).toBeGreaterThan(0);
    for (const period of [afterValid, afterInvalid]) {
      expect(report.periods[period]!['pod not opted in']).toMatchObject({ unpatched: 0 });
      expect(report.periods[period]!['pod not opted in']!.patched).toBeGreaterThan(0);
    }

    const metrics = (await ops(p, '/metrics')).text;
    expect(metrics).toMatch(/podvisor_config_reloads_total\{result="success"\} 1\b/);
    expect(metrics).toMatch(/podvisor_config_reloads_total\{result="failure"\} 1\b/);
    expect((await ops(p, '/readyz')).status).toBe(200);
  }, 40_000);

  it('certificate rotation under load: new handshakes get the new certificate, open connections keep going, 0 failed', async () => {
    const s = await setup();
    const next = await generateServingCertificate('podvisor', 'podvisor-system');
    const p = await start(s);
    // The caBundle holds both CAs during a rotation.
    const load = startLoad({ port: p.admissionPort, ca: [s.ca, next.ca], connections: 4, bodies: BODIES, maxSeconds: 30 });
    cleanup.push(async () => void (await load.stop()));
    await load.waitForOk(300);
    const before = await servedCertificate(p.admissionPort, s.ca);

    // Half a rotation first: the new certificate with the old key is refused, the old pair keeps serving.
    replaceFile(s.certFile, next.cert);
    await p.waitForLog((l) => l.msg === 'serving certificate not reloaded; keeping the current one');
    expect(await servedCertificate(p.admissionPort, s.ca)).toBe(before);
    await load.waitForOk(100);
    replaceFile(s.keyFile, next.key);
    await p.waitForLog((l) => l.msg === 'serving certificate reloaded');
    const after = await servedCertificate(p.admissionPort, next.ca);
    expect(after).toBe(new X509Certificate(next.cert).fingerprint256);
    expect(after).not.toBe(before);
    await load.waitForOk(300);

    const report = await load.stop();
    console.log(`certificate rotation: ${report.ok} ok, ${report.failed.length} failed, ${report.refused} refused`);
    expect(report.failed).toEqual([]);
    expect(report.refused).toBe(0);
    const metrics = (await ops(p, '/metrics')).text;
    expect(metrics).toMatch(/podvisor_tls_reloads_total\{result="success"\} 1\b/);
    expect(metrics).toMatch(/podvisor_tls_reloads_total\{result="failure"\} [1-9]/);
  }, 40_000);
});
