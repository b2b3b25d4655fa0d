// npm run bench — podvisor's POST /mutate against the bare node:https floor, in the same run, on loopback only.
// Each server runs in its own process; autocannon drives them from this one (2 cores: one each).
// Bounded: every measurement lasts BENCH_SECONDS (default 10) and stops by itself.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { loadTls } from '../src/server/tls.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 10);
const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? 10);

interface Scenario {
  readonly name: string;
  readonly body: string;
}

function review(fixture: string): string {
  return readFileSync(join(ROOT, 'test/fixtures', fixture), 'utf8');
}

const scenarios: Scenario[] = [
  { name: 'Pod CREATE, opted in (review-01)', body: review('review-01-pod-create.json') },
  { name: 'DaemonSet CREATE (review-11)', body: review('review-11-daemonset-create.json') },
  {
    name: 'Pod CREATE, not opted in',
    body: JSON.stringify(
      ((r) => {
        delete r.request.object.metadata.annotations;
        return r;
      })(JSON.parse(review('review-01-pod-create.json'))),
    ),
  },
];

/** A port free right now on loopback, so runs never collide with a leftover process. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as import('node:net').AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

function startFloor(certDir: string, port: number, response: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = fork(join(ROOT, 'bench/floor-server.ts'), [certDir, String(port)], {
      cwd: ROOT,
      env: { ...process.env, FLOOR_RESPONSE: response },
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      execArgv: ['--import', 'tsx'],
    });
    child.once('message', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`floor server exited with ${code}`)));
  });
}

/** podvisor as deployed: the compiled CLI, logging one JSON line per review at info (to /dev/null here). */
async function startPodvisor(certDir: string, port: number, opsPort: number): Promise<ChildProcess> {
  const config = join(certDir, 'config.yaml');
  writeFileSync(config, `server:\n  address: 127.0.0.1\n  port: ${port}\n  opsAddress: 127.0.0.1\n  opsPort: ${opsPort}\n  drainSeconds: 0\ntls:\n  certDir: ${certDir}\n`);
  const child = fork(join(ROOT, 'dist/cli.js'), ['serve', '--config', config], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit', 'ipc'], execArgv: [] });
  for (let i = 0; i < 100; i += 1) {
    await new Promise((r) => setTimeout(r, 100));
    const ok = await fetch(`http://127.0.0.1:${opsPort}/readyz`).then((r) => r.ok, () => false);
    if (ok) return child;
  }
  throw new Error('podvisor did not become ready');
}

function post(port: number, ca: string, body: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/mutate', method: 'POST', ca, servername: 'localhost', agent: new Agent({ ca }), headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve(text));
    });
    req.on('error', reject);
    req.end(body);
  });
}

interface Measurement {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  readonly errors: number;
}

/** Percentile of ascending samples (nearest rank). */
function percentile(sorted: Float64Array, p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/**
 * One autocannon run. autocannon's own histogram truncates latencies to whole milliseconds, so the percentiles are
 * computed from the exact per-response durations it reports in its `response` events.
 */
async function measure(port: number, body: string, options: { rate?: number; seconds?: number } = {}): Promise<Measurement> {
  const { rate, seconds = SECONDS } = options;
  const samples: number[] = [];
  let instance: autocannon.Instance | undefined;
  const done = new Promise<autocannon.Result>((resolve, reject) => {
    instance = autocannon({
    url: `https://127.0.0.1:${port}/mutate`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    connections: CONNECTIONS,
    duration: seconds,
    ...(rate !== undefined && { overallRate: rate }),
    // Loopback benchmark against our own generated certificate; the tests verify the CA.
    tlsOptions: { rejectUnauthorized: false },
  } as autocannon.Options, (err, result) => (err ? reject(err) : resolve(result)));
  });
  instance!.on('response', (_client, _status, _bytes, responseTime) => samples.push(responseTime));
  const result = await done;
  const sorted = Float64Array.from(samples).sort();
  return {
    rps: result.requests.average,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    p999: percentile(sorted, 99.9),
    errors: result.errors + result.non2xx + result.timeouts,
  };
}

const format = (m: Measurement) =>
  `${m.rps.toFixed(0).padStart(7)} req/s  p50 ${m.p50.toFixed(2).padStart(6)} ms  p99 ${m.p99.toFixed(2).padStart(6)} ms  p99.9 ${m.p999.toFixed(2).padStart(6)} ms  errors ${m.errors}`;

async function main(): Promise<void> {
  const certDir = mkdtempSync(join(tmpdir(), 'podvisor-bench-'));
  const tls = await loadTls({ certDir, service: 'podvisor', namespace: 'podvisor-system' });
  const [podvisorPort, opsPort, floorPort] = [await freePort(), await freePort(), await freePort()];
  const podvisor = await startPodvisor(certDir, podvisorPort, opsPort);
  const children: ChildProcess[] = [podvisor];
  process.once('exit', () => children.forEach((child) => child.kill('SIGKILL')));
  try {
    console.log(`podvisor bench: ${SECONDS}s per run, ${CONNECTIONS} keep-alive connections, node ${process.version}, loopback only\n`);
    for (const scenario of scenarios) {
      // The floor answers with podvisor's own answer for this review, so both send the same bytes.
      const canned = await post(podvisorPort, tls.ca!, scenario.body);
      const floor = await startFloor(certDir, floorPort, canned);
      children.push(floor);
      // Warm up both JITs before measuring.
      await measure(floorPort, scenario.body, { seconds: 2 });
      await measure(podvisorPort, scenario.body, { seconds: 2 });
      const floorRun = await measure(floorPort, scenario.body);
      const podvisorRun = await measure(podvisorPort, scenario.body);
      const halfLoad = await measure(podvisorPort, scenario.body, { rate: Math.max(1, Math.round(podvisorRun.rps / 2)) });
      floor.kill('SIGTERM');
      console.log(scenario.name);
      console.log(`  floor     ${format(floorRun)}`);
      console.log(`  podvisor  ${format(podvisorRun)}`);
      console.log(`  ratio     ${(podvisorRun.rps / floorRun.rps).toFixed(2)}x the floor's throughput`);
      console.log(`  podvisor at 50% of its max (${Math.round(podvisorRun.rps / 2)} req/s): p99 ${halfLoad.p99.toFixed(2)} ms, p99.9 ${halfLoad.p999.toFixed(2)} ms\n`);
    }
  } finally {
    for (const child of children) child.kill('SIGTERM');
  }
}

await main();
