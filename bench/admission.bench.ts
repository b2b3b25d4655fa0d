// npm run bench — podvisor's POST /mutate against the bare node:https floor, side by side in the same run, loopback only.
//
// 1. Throughput: for each scenario the floor (bench/floor-server.ts, answering podvisor's own bytes for that review)
//    and podvisor are loaded alternately, BENCH_ROUNDS times each, BENCH_SECONDS per run, BENCH_CONNECTIONS keep-alive
//    TLS connections. Printed: req/s, latency percentiles, CPU µs per review (from /proc/<pid>/stat), the ratio, and
//    podvisor's p99 at half of its own saturation rate.
// 2. Breakdown: both servers run again under --cpu-prof; each scenario loads each server for BENCH_PROFILE_SECONDS and
//    the samples inside that window are charged to stages (bench/cpu-profile-stages.ts), in CPU µs per review.
//
// Servers are pinned to BENCH_SERVER_CPU (default 1) and this process (autocannon) to BENCH_CLIENT_CPU (default 0),
// when taskset exists and there are 2 CPUs or more. podvisor runs as deployed (dist/cli.js serve, logLevel info);
// its stdout is a pipe read by this process, and every review line is counted.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { createServer } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { loadTls } from '../src/server/tls.js';
import { readProfile, STAGES, type ProfileIndex, type StageTotals } from './cpu-profile-stages.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 5);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 2);
const PROFILE_SECONDS = Number(process.env['BENCH_PROFILE_SECONDS'] ?? 4);
const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? 16);
const SERVER_CPU = process.env['BENCH_SERVER_CPU'] ?? '1';
const CLIENT_CPU = process.env['BENCH_CLIENT_CPU'] ?? '0';
const PIN = availableParallelism() >= 2 && existsSync('/usr/bin/taskset');
/** Ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ, 100 on Linux). */
const CLOCK_TICKS = Number(process.env['BENCH_CLK_TCK'] ?? 100);

interface Scenario {
  readonly name: string;
  readonly body: string;
  /** The throughput ratio to the floor the issue asks for. */
  readonly target: number;
}

function review(fixture: string): string {
  return readFileSync(join(ROOT, 'test/fixtures', fixture), 'utf8');
}

const scenarios: Scenario[] = [
  { name: 'Pod CREATE, opted in (review-01)', body: review('review-01-pod-create.json'), target: 0.7 },
  { name: 'DaemonSet CREATE (review-11)', body: review('review-11-daemonset-create.json'), target: 0.7 },
  {
    name: 'Pod CREATE, not opted in',
    body: JSON.stringify(
      ((r) => {
        delete r.request.object.metadata.annotations;
        return r;
      })(JSON.parse(review('review-01-pod-create.json'))),
    ),
    target: 0.9,
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

interface Server {
  readonly child: ChildProcess;
  readonly port: number;
  /** Review log lines seen on stdout so far (podvisor only). */
  reviewLines(): number;
  stop(): Promise<void>;
}

/** node with `args`, pinned to the server CPU; stdout is a pipe this process drains (and counts review lines of). */
function spawnNode(args: string[]): { child: ChildProcess; reviewLines: () => number } {
  const command = PIN ? 'taskset' : process.execPath;
  const argv = PIN ? ['-c', SERVER_CPU, process.execPath, ...args] : args;
  const child = spawn(command, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  let lines = 0;
  const marker = Buffer.from('"msg":"review"');
  child.stdout!.on('data', (chunk: Buffer) => {
    for (let at = chunk.indexOf(marker); at !== -1; at = chunk.indexOf(marker, at + marker.length)) lines += 1;
  });
  return { child, reviewLines: () => lines };
}

function stopper(child: ChildProcess): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.once('exit', () => (clearTimeout(timer), resolve()));
      child.kill('SIGTERM');
    });
}

async function startFloor(certDir: string, cpuProfileDir?: string): Promise<Server> {
  const port = await freePort();
  const profiling = cpuProfileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', cpuProfileDir, '--cpu-prof-interval', '250'];
  const { child, reviewLines } = spawnNode([...profiling, '--import', 'tsx', join(ROOT, 'bench/floor-server.ts'), certDir, String(port)]);
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`floor server exited with ${code}`)));
  });
  return { child, port, reviewLines, stop: stopper(child) };
}

/** podvisor as deployed: the compiled CLI with the default config (logLevel info), TLS from `certDir`. */
async function startPodvisor(certDir: string, cpuProfileDir?: string): Promise<Server> {
  const [port, opsPort] = [await freePort(), await freePort()];
  const config = join(certDir, `config-${port}.yaml`);
  writeFileSync(config, `server:\n  address: 127.0.0.1\n  port: ${port}\n  opsAddress: 127.0.0.1\n  opsPort: ${opsPort}\n  drainSeconds: 0\ntls:\n  certDir: ${certDir}\n`);
  const profiling = cpuProfileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', cpuProfileDir, '--cpu-prof-interval', '250'];
  const { child, reviewLines } = spawnNode([...profiling, join(ROOT, 'dist/cli.js'), 'serve', '--config', config]);
  for (let i = 0; i < 150; i += 1) {
    await new Promise((r) => setTimeout(r, 100));
    if (child.exitCode !== null) throw new Error(`podvisor exited with ${child.exitCode}`);
    if (await fetch(`http://127.0.0.1:${opsPort}/readyz`).then((r) => r.ok, () => false)) return { child, port, reviewLines, stop: stopper(child) };
  }
  throw new Error('podvisor did not become ready');
}

function post(port: number, ca: string, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/mutate', method: 'POST', ca, servername: 'localhost', agent: new Agent({ ca }), headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** User + system CPU time of a process so far, µs. */
function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLOCK_TICKS;
}

/** The pid of the node process itself (under taskset it is the same pid: taskset execs). */
const pidOf = (server: Server) => server.child.pid!;

interface Measurement {
  readonly requests: number;
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  readonly errors: number;
  /** CPU µs the server spent per answered review during the run. */
  readonly cpuPerReview: number;
  /** process.hrtime µs at the start and end of the load (the clock of --cpu-prof). */
  readonly from: number;
  readonly to: number;
}

/** Percentile of ascending samples (nearest rank). */
function percentile(sorted: Float64Array, p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const nowMicros = () => Number(process.hrtime.bigint() / 1000n);

/**
 * One autocannon run. autocannon's own histogram truncates latencies to whole milliseconds, so the percentiles are
 * computed from the exact per-response durations it reports in its `response` events.
 */
async function measure(server: Server, body: string, options: { rate?: number; seconds?: number } = {}): Promise<Measurement> {
  const { rate, seconds = SECONDS } = options;
  const samples: number[] = [];
  let instance: autocannon.Instance | undefined;
  const cpuBefore = cpuMicros(pidOf(server));
  const from = nowMicros();
  const done = new Promise<autocannon.Result>((resolve, reject) => {
    instance = autocannon(
      {
        url: `https://127.0.0.1:${server.port}/mutate`,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        connections: CONNECTIONS,
        duration: seconds,
        ...(rate !== undefined && { overallRate: rate }),
        // Loopback benchmark against our own generated certificate; the tests verify the CA.
        tlsOptions: { rejectUnauthorized: false },
      } as autocannon.Options,
      (err, result) => (err ? reject(err) : resolve(result)),
    );
  });
  instance!.on('response', (_client, _status, _bytes, responseTime) => samples.push(responseTime));
  const result = await done;
  const to = nowMicros();
  const cpu = cpuMicros(pidOf(server)) - cpuBefore;
  const sorted = Float64Array.from(samples).sort();
  return {
    requests: samples.length,
    rps: samples.length / ((to - from) / 1e6),
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    p999: percentile(sorted, 99.9),
    errors: result.errors + result.non2xx + result.timeouts,
    cpuPerReview: cpu / Math.max(1, samples.length),
    from,
    to,
  };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

const format = (m: Measurement) =>
  `${m.rps.toFixed(0).padStart(6)} req/s  ${m.cpuPerReview.toFixed(0).padStart(4)} µs CPU/review  p50 ${m.p50.toFixed(2).padStart(5)} ms  p99 ${m.p99.toFixed(2).padStart(5)} ms  p99.9 ${m.p999.toFixed(2).padStart(5)} ms  errors ${m.errors}`;

interface ScenarioResult {
  readonly scenario: Scenario;
  readonly ratio: number;
  readonly halfLoadP99: number;
  floorWindow?: Measurement;
  podvisorWindow?: Measurement;
}

async function throughput(certDir: string, ca: string): Promise<ScenarioResult[]> {
  const podvisor = await startPodvisor(certDir);
  const floor = await startFloor(certDir);
  const results: ScenarioResult[] = [];
  try {
    for (const scenario of scenarios) {
      // The floor answers with podvisor's own answer for this review, so both send the same bytes.
      const answer = await post(podvisor.port, ca, scenario.body);
      if (answer.status !== 200) throw new Error(`${scenario.name}: podvisor answered ${answer.status}: ${answer.text}`);
      await setFloorResponse(floor, answer.text);
      await measure(floor, scenario.body, { seconds: 2 });
      await measure(podvisor, scenario.body, { seconds: 2 });
      console.log(scenario.name);
      const ratios: number[] = [];
      for (let round = 1; round <= ROUNDS; round += 1) {
        const floorRun = await measure(floor, scenario.body);
        // Review lines are written asynchronously: let the earlier ones arrive before counting, and the last ones after.
        await new Promise((r) => setTimeout(r, 300));
        const linesBefore = podvisor.reviewLines();
        const podvisorRun = await measure(podvisor, scenario.body);
        await new Promise((r) => setTimeout(r, 300));
        const lines = podvisor.reviewLines() - linesBefore;
        ratios.push(podvisorRun.rps / floorRun.rps);
        console.log(`  round ${round}  floor     ${format(floorRun)}`);
        console.log(`           podvisor  ${format(podvisorRun)}  review log lines ${lines}`);
        console.log(`           ratio     ${(podvisorRun.rps / floorRun.rps).toFixed(2)}x  CPU/review ${(podvisorRun.cpuPerReview / floorRun.cpuPerReview).toFixed(2)}x the floor's`);
      }
      const saturation = (await measureOnce(podvisor, scenario.body)).rps;
      const half = Math.max(1, Math.round(saturation / 2));
      const halfLoad = await measure(podvisor, scenario.body, { rate: half });
      const ratio = median(ratios);
      console.log(`  ratio (median of ${ROUNDS}): ${ratio.toFixed(2)}x the floor's throughput (target ≥ ${scenario.target}x) ${ratio >= scenario.target ? 'met' : 'NOT met'}`);
      console.log(`  podvisor at half of its saturation (${half} req/s): p50 ${halfLoad.p50.toFixed(2)} ms, p99 ${halfLoad.p99.toFixed(2)} ms (target ≤ 2 ms) ${halfLoad.p99 <= 2 ? 'met' : 'NOT met'}, p99.9 ${halfLoad.p999.toFixed(2)} ms, errors ${halfLoad.errors}\n`);
      results.push({ scenario, ratio, halfLoadP99: halfLoad.p99 });
    }
  } finally {
    await podvisor.stop();
    await floor.stop();
  }
  return results;
}

/** A short saturation run, right before the half-load run, so "half" refers to the current machine state. */
function measureOnce(server: Server, body: string): Promise<Measurement> {
  return measure(server, body, { seconds: Math.min(SECONDS, 3) });
}

function setFloorResponse(floor: Server, response: string): Promise<void> {
  return new Promise((resolve) => {
    floor.child.once('message', () => resolve());
    floor.child.send({ response });
  });
}

/** The main thread's profile (CPU.<date>.<time>.<pid>.<thread>.<n>.cpuprofile; tsx adds a loader thread to the floor). */
function mainThreadProfile(dir: string, pid: number): ProfileIndex {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile') && f.split('.')[3] === String(pid) && f.split('.')[4] === '0');
  if (files.length !== 1) throw new Error(`expected one main-thread .cpuprofile of ${pid} in ${dir}, found ${files.length}`);
  return readProfile(join(dir, files[0]!));
}

async function breakdown(certDir: string, ca: string, results: ScenarioResult[]): Promise<void> {
  const podvisorDir = mkdtempSync(join(tmpdir(), 'podvisor-bench-prof-'));
  const floorDir = mkdtempSync(join(tmpdir(), 'podvisor-bench-floor-prof-'));
  const podvisor = await startPodvisor(certDir, podvisorDir);
  const floor = await startFloor(certDir, floorDir);
  try {
    for (const result of results) {
      const { body } = result.scenario;
      await setFloorResponse(floor, (await post(podvisor.port, ca, body)).text);
      await measure(floor, body, { seconds: 1 });
      await measure(podvisor, body, { seconds: 1 });
      const f = await measure(floor, body, { seconds: PROFILE_SECONDS });
      const p = await measure(podvisor, body, { seconds: PROFILE_SECONDS });
      result.floorWindow = f;
      result.podvisorWindow = p;
    }
  } finally {
    // --cpu-prof writes the profile when the process exits (podvisor: SIGTERM → drain → exit).
    await podvisor.stop();
    await floor.stop();
  }
  const podvisorProfile = mainThreadProfile(podvisorDir, pidOf(podvisor));
  const floorProfile = mainThreadProfile(floorDir, pidOf(floor));
  console.log(`CPU µs per review by stage, profiled servers, ${PROFILE_SECONDS} s of load each per scenario`);
  console.log(`(each stage's share of the profile's busy samples × the CPU time /proc counted in the same window; profiling adds a little)`);
  // V8 samples on wall-clock time: on a shared CPU a preempted stack keeps being charged. Shares are still right, so
  // they are scaled to the CPU time the kernel counted for the process in that window.
  const perReview = (totals: StageTotals, run: Measurement) => {
    const busy = Object.values(totals.micros).reduce((a, b) => a + b, 0);
    return Object.fromEntries(STAGES.map((s) => [s, busy === 0 ? 0 : (totals.micros[s] / busy) * run.cpuPerReview])) as Record<string, number>;
  };
  const columns = results.map((r) => {
    const fw = r.floorWindow!;
    const pw = r.podvisorWindow!;
    return { floor: perReview(floorProfile.window(fw.from, fw.to), fw), podvisor: perReview(podvisorProfile.window(pw.from, pw.to), pw) };
  });
  const width = Math.max(...STAGES.map((s) => s.length)) + 2;
  console.log(`${''.padEnd(width)}${results.map((_r, i) => `${`[${i + 1}] floor`.padStart(12)}${'podvisor'.padStart(10)}`).join('')}`);
  for (const stage of STAGES) {
    if (columns.every((c) => c.floor[stage]! < 0.05 && c.podvisor[stage]! < 0.05)) continue;
    console.log(`${stage.padEnd(width)}${columns.map((c) => `${c.floor[stage]!.toFixed(1).padStart(12)}${c.podvisor[stage]!.toFixed(1).padStart(10)}`).join('')}`);
  }
  const total = (column: Record<string, number>) => Object.values(column).reduce((a, b) => a + b, 0);
  console.log(`${'total'.padEnd(width)}${columns.map((c) => `${total(c.floor).toFixed(1).padStart(12)}${total(c.podvisor).toFixed(1).padStart(10)}`).join('')}`);
  results.forEach((r, i) => console.log(`[${i + 1}] ${r.scenario.name}`));
  rmSync(podvisorDir, { recursive: true, force: true });
  rmSync(floorDir, { recursive: true, force: true });
}

async function main(): Promise<void> {
  if (PIN) execFileSync('taskset', ['-a', '-p', '-c', CLIENT_CPU, String(process.pid)], { stdio: 'ignore' });
  const certDir = mkdtempSync(join(tmpdir(), 'podvisor-bench-'));
  const tls = await loadTls({ certDir, service: 'podvisor', namespace: 'podvisor-system' });
  console.log(
    `podvisor bench: ${ROUNDS} alternated rounds of ${SECONDS} s per scenario, ${CONNECTIONS} keep-alive TLS connections, node ${process.version}, loopback only, ` +
      (PIN ? `servers pinned to CPU ${SERVER_CPU}, load generator to CPU ${CLIENT_CPU}\n` : 'not pinned\n'),
  );
  try {
    const results = await throughput(certDir, tls.ca!);
    await breakdown(certDir, tls.ca!, results);
    console.log('\nsummary');
    for (const r of results) console.log(`  ${r.scenario.name.padEnd(34)} ${r.ratio.toFixed(2)}x the floor (target ${r.scenario.target}x)  p99 at half saturation ${r.halfLoadP99.toFixed(2)} ms (target 2 ms)`);
  } finally {
    rmSync(certDir, { recursive: true, force: true });
  }
}

await main();
