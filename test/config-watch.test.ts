// Config reload: a valid new file replaces the config at once (the next review sees it), an invalid one is rejected
// with a log line naming the field and a metric, and the old config stays in force.
import { mkdirSync, mkdtempSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load.js';
import { startServer, type RunningServer } from '../src/server/serve.js';
import { fixtureReview } from './support/harness.js';

let dir: string;
let certDir: string;
let server: RunningServer;
let agent: Agent;
const logLines: Record<string, unknown>[] = [];
let generation = 0;

/** A ConfigMap volume update: new timestamped dir, `..data` swapped atomically; config.yaml → ..data/config.yaml. */
function publish(text: string): void {
  const target = `..2026_${generation++}`;
  mkdirSync(join(dir, target));
  writeFileSync(join(dir, target, 'config.yaml'), text);
  symlinkSync(target, join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
}
const base = (extra: string): string => `logLevel: info
server: { address: 127.0.0.1, opsAddress: 127.0.0.1, port: 0, opsPort: 0, drainSeconds: 0 }
tls: { certDir: ${certDir} }
${extra}`;

function post(body: object): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', servername: 'localhost', port: server.admissionPort, path: '/mutate', method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString('utf8'))));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}
function metrics(): Promise<string> {
  return new Promise((resolve, reject) =>
    httpRequest({ host: '127.0.0.1', port: server.opsPort, path: '/metrics' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    }).on('error', reject).end(),
  );
}
/** review-01's Pod without its opt-in annotation, in namespace `web`. */
function plainPod(): object {
  const review = fixtureReview('review-01-pod-create.json') as { request: { object: { metadata: { annotations: Record<string, string> } } } };
  review.request.object.metadata.annotations = {};
  return review;
}
async function until(condition: () => Promise<boolean> | boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'podvisor-configmap-'));
  certDir = mkdtempSync(join(tmpdir(), 'podvisor-certs-'));
  publish(base(''));
  symlinkSync(join('..data', 'config.yaml'), join(dir, 'config.yaml'));
  const file = join(dir, 'config.yaml');
  const config = await loadConfig(file);
  const log = pino({ level: 'info' }, { write: (line: string) => void logLines.push(JSON.parse(line)) });
  server = await startServer(config, log, { configFile: file });
  agent = new Agent({ ca: (await import('node:fs')).readFileSync(join(certDir, 'ca.crt'), 'utf8'), keepAlive: true });
}, 30_000);
afterAll(async () => {
  agent?.destroy();
  await server?.shutdown('test done');
});

describe('config reload', () => {
  it('applies a valid new config to the next review (namespace default on)', async () => {
    expect((await post(plainPod())).response.patch).toBeUndefined();
    publish(base('namespaces:\n  web:\n    lxcfs: true\n'));
    await until(async () => (await post(plainPod())).response.patch !== undefined);
    expect(await metrics()).toMatch(/podvisor_config_reloads_total\{result="success"\} 1/);
  });

  it('rejects an invalid config, naming the field, counting it, and keeping the old config', async () => {
    publish(base('namespaces:\n  web:\n    lxcfs: true\nlxcfs:\n  files: [/proc/pressure/cpu]\n'));
    await until(() => logLines.some((l) => l['msg'] === 'config reload rejected; the previous config stays in force'));
    const line = logLines.find((l) => l['msg'] === 'config reload rejected; the previous config stays in force');
    expect(String(line?.['error'])).toContain('lxcfs.files.0');
    expect(await metrics()).toMatch(/podvisor_config_reloads_total\{result="failure"\} 1/);
    // Still the previous (valid) config: the namespace default stays on.
    expect((await post(plainPod())).response.patch).toBeDefined();
    // Unknown keys are rejected too (strict schema), with the key named.
    publish(base('namespaces:\n  web:\n    lxcfs: true\nlxcfss: {}\n'));
    await until(async () => /podvisor_config_reloads_total\{result="failure"\} 2/.test(await metrics()));
    expect(String(logLines.filter((l) => l['msg'] === 'config reload rejected; the previous config stays in force').at(-1)?.['error'])).toContain('lxcfss');
    expect((await post(plainPod())).response.patch).toBeDefined();
  });

  it('a later valid config applies again', async () => {
    publish(base(''));
    await until(async () => (await post(plainPod())).response.patch === undefined);
  });
});
