// npm run bench — podvisor's POST /mutate against the bare node:https floor, side by side in the same run, loopback only.
//
// 1. Throughput (closed loop, autocannon): for each scenario the floor (bench/floor-server.ts, answering podvisor's own bytes for that review)
//    and podvisor are loaded alternately, BENCH_ROUNDS times each, BENCH_SECONDS per run, BENCH_CONNECTIONS keep-alive
//    TLS connections. Printed: req/s, latency percentiles, CPU µs per review (from /proc/<pid>/stat), the ratio, and
//    podvisor's p99 at half of its own saturation rate (open loop, evenly paced: `paced`).
// 2. Breakdown: both servers run again under --cpu-prof; each scenario loads each server for BENCH_PROFILE_SECONDS, in
//    BENCH_PROFILE_SLICES slices alternated between the servers, and the samples inside those windows are charged to
//    stages (bench/cpu-profile-stages.ts), in CPU µs per review. BENCH_DETAIL=1 adds the top frames of each stage.
//
// Every request is a distinct review (uid and names change: bench/scenarios.ts).
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
import { readProfile, STAGES, type ProfileIndex, type Stage, type StageTotals } from './cpu-profile-stages.js';
import { scenarios as benchScenarios, type Scenario } from './scenarios.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 5);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 2);
const PROFILE_SECONDS = Number(process.env['BENCH_PROFILE_SECONDS'] ?? 4);
const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? 16);
/** The profile of each server and scenario is taken in this many slices, alternated between the servers. */
const PROFILE_SLICES = Number(process.env['BENCH_PROFILE_SLICES'] ?? 4);
/** BENCH_DETAIL=1: the frames with the most self time in each stage, under the breakdown. */
const DETAIL = process.env['BENCH_DETAIL'] === '1';
const SERVER_CPU = process.env['BENCH_SERVER_CPU'] ?? '1';
const CLIENT_CPU = process.env['BENCH_CLIENT_CPU'] ?? '0';
const PIN = availableParallelism() >= 2 && existsSync('/usr/bin/taskset');
/** Ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ, 100 on Linux). */
const CLOCK_TICKS = Number(process.env['BENCH_CLK_TCK'] ?? 100);
const scenarios = benchScenarios();

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
  const profiling = cpuProfileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', cpuProfileDir, '--cpu-prof-interval', '1000'];
  const { child, reviewLines } = spawnNode([...profiling, '--import', 'tsx', join(ROOT, 'bench/floor-server.ts'), certDir, String(port)]);
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`floor server exited with ${code}`)));
  });
  return { child, port, reviewLines, stop: stopper(child) };
}

/** podvisor as deployed: the compiled CLI with the default config (logLevel info), TLS from `certDir`. */
async function startPodvisor(certDir: string, cli: string, cpuProfileDir?: string): Promise<Server> {
  const [port, opsPort] = [await freePort(), await freePort()];
  const config = join(certDir, `config-${port}.yaml`);
  writeFileSync(config, `server:\n  address: 127.0.0.1\n  port: ${port}\n  opsAddress: 127.0.0.1\n  opsPort: ${opsPort}\n  drainSeconds: 0\ntls:\n  certDir: ${certDir}\n`);
  const profiling = cpuProfileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', cpuProfileDir, '--cpu-prof-interval', '1000'];
  const { child, reviewLines } = spawnNode([...profiling, cli, 'serve', '--config', config]);
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

/** Latencies (ms) of the answered reviews and the server's CPU µs over the load window [from, to]. */
function measurement(samples: readonly number[], errors: number, cpu: number, from: number, to: number): Measurement {
  const sorted = Float64Array.from(samples).sort();
  return {
    requests: samples.length,
    rps: samples.length / ((to - from) / 1e6),
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    p999: percentile(sorted, 99.9),
    errors,
    cpuPerReview: cpu / Math.max(1, samples.length),
    from,
    to,
  };
}

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
async function measure(server: Server, scenario: Scenario, options: { seconds?: number } = {}): Promise<Measurement> {
  const { seconds = SECONDS } = options;
  const samples: number[] = [];
  let instance: autocannon.Instance | undefined;
  const cpuBefore = cpuMicros(pidOf(server));
  const from = nowMicros();
  const done = new Promise<autocannon.Result>((resolve, reject) => {
    instance = autocannon(
      {
        url: `https://127.0.0.1:${server.port}/mutate`,
        // A distinct review for every request (bench/scenarios.ts).
        requests: [{ method: 'POST', path: '/mutate', headers: { 'content-type': 'application/json' }, setupRequest: (req: autocannon.Request) => ({ ...req, body: scenario.next() }) }],
        connections: CONNECTIONS,
        duration: seconds,
        // Loopback benchmark against our own generated certificate; the tests verify the CA.
        tlsOptions: { rejectUnauthorized: false },
      } as autocannon.Options,
      (err, result) => (err ? reject(err) : resolve(result)),
    );
  });
  instance!.on('response', (_client, _status, _bytes, responseTime) => samples.push(responseTime));
  const result = await done;
  const to = nowMicros();
  return measurement(samples, result.errors + result.non2xx + result.timeouts, cpuMicros(pidOf(server)) - cpuBefore, from, to);
}

/**
 * An open-loop run at a fixed rate: requests are scheduled evenly (rate per second) over CONNECTIONS keep-alive
 * connections, and each latency is measured from its scheduled time, so a server that falls behind is charged for the
 * queue (no coordinated omission). autocannon's `overallRate` sends each second's requests in a burst at its start,
 * which measures the burst, not the rate.
 */
async function paced(server: Server, scenario: Scenario, rate: number, seconds = SECONDS): Promise<Measurement> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS, rejectUnauthorized: false });
  const samples: number[] = [];
  let errors = 0;
  const total = Math.max(1, Math.round(rate * seconds));
  const interval = 1000 / rate;
  const cpuBefore = cpuMicros(pidOf(server));
  const from = nowMicros();
  const start = performance.now();
  let sent = 0;
  let done = 0;
  await new Promise<void>((resolve) => {
    const fire = (scheduled: number) => {
      const body = scenario.next();
      const req = request(
        { host: '127.0.0.1', port: server.port, path: '/mutate', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
        (res) => {
          res.resume();
          res.on('end', () => {
            if (res.statusCode === 200) samples.push(performance.now() - scheduled);
            else errors += 1;
            if ((done += 1) === total) resolve();
          });
        },
      );
      req.on('error', () => {
        errors += 1;
        if ((done += 1) === total) resolve();
      });
      req.end(body);
    };
    const tick = () => {
      const due = Math.min(total, Math.floor((performance.now() - start) / interval) + 1);
      while (sent < due) fire(start + sent++ * interval);
      if (sent < total) setTimeout(tick, Math.max(0, start + sent * interval - performance.now()));
    };
    tick();
  });
  const to = nowMicros();
  agent.destroy();
  return measurement(samples, errors, cpuMicros(pidOf(server)) - cpuBefore, from, to);
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

const format = (m: Measurement) =>
  `${m.rps.toFixed(0).padStart(6)} req/s  ${m.cpuPerReview.toFixed(0).padStart(4)} µs CPU/review  p50 ${m.p50.toFixed(2).padStart(5)} ms  p99 ${m.p99.toFixed(2).padStart(5)} ms  p99.9 ${m.p999.toFixed(2).padStart(5)} ms  errors ${m.errors}`;

/** A podvisor build under test: this checkout's dist/, and optionally a baseline build (BENCH_BASELINE=<dir>/cli.js). */
interface Variant {
  readonly label: string;
  readonly cli: string;
}

const VARIANTS: Variant[] = [
  ...(process.env['BENCH_BASELINE'] === undefined ? [] : [{ label: 'baseline', cli: process.env['BENCH_BASELINE'] }]),
  { label: 'podvisor', cli: join(ROOT, 'dist/cli.js') },
];

interface ScenarioResult {
  readonly scenario: Scenario;
  /** Median over the rounds, per variant label and 'floor'. */
  readonly ratio: Record<string, number>;
  readonly cpuPerReview: Record<string, number>;
  readonly halfLoadP99: Record<string, number>;
  /** The profiled load windows of each server (PROFILE_SLICES, alternated). */
  readonly windows: Record<string, Measurement[]>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function throughput(certDir: string, ca: string): Promise<ScenarioResult[]> {
  const variants = await Promise.all(VARIANTS.map(async (v) => ({ ...v, server: await startPodvisor(certDir, v.cli) })));
  const floor = await startFloor(certDir);
  const results: ScenarioResult[] = [];
  const width = Math.max(...VARIANTS.map((v) => v.label.length), 5) + 2;
  try {
    for (const scenario of scenarios) {
      // The floor answers with podvisor's own answer for this review, so both send the same bytes.
      const answer = await post(variants.at(-1)!.server.port, ca, scenario.body);
      if (answer.status !== 200) throw new Error(`${scenario.name}: podvisor answered ${answer.status}: ${answer.text}`);
      await setFloorResponse(floor, answer.text);
      await measure(floor, scenario, { seconds: 2 });
      for (const v of variants) await measure(v.server, scenario, { seconds: 2 });
      console.log(scenario.name);
      const ratios: Record<string, number[]> = {};
      const cpu: Record<string, number[]> = { floor: [] };
      for (let round = 1; round <= ROUNDS; round += 1) {
        const floorRun = await measure(floor, scenario);
        cpu['floor']!.push(floorRun.cpuPerReview);
        console.log(`  round ${round}  ${'floor'.padEnd(width)}${format(floorRun)}`);
        for (const v of variants) {
          // Review lines may be written asynchronously: let the earlier ones arrive before counting, the last ones after.
          await sleep(300);
          const linesBefore = v.server.reviewLines();
          const run = await measure(v.server, scenario);
          await sleep(300);
          (ratios[v.label] ??= []).push(run.rps / floorRun.rps);
          (cpu[v.label] ??= []).push(run.cpuPerReview);
          console.log(`           ${v.label.padEnd(width)}${format(run)}  ${(run.rps / floorRun.rps).toFixed(2)}x the floor, review log lines ${v.server.reviewLines() - linesBefore}`);
        }
      }
      const ratio: Record<string, number> = {};
      const halfLoadP99: Record<string, number> = {};
      for (const v of variants) {
        ratio[v.label] = median(ratios[v.label]!);
        // A short saturation run right before the half-load run, so "half" refers to the machine's current state.
        const saturation = (await measure(v.server, scenario, { seconds: Math.min(SECONDS, 3) })).rps;
        const half = Math.max(1, Math.round(saturation / 2));
        const halfLoad = await paced(v.server, scenario, half);
        halfLoadP99[v.label] = halfLoad.p99;
        const met = (ok: boolean) => (ok ? 'met' : 'NOT met');
        console.log(`  ${v.label}: ${ratio[v.label]!.toFixed(2)}x the floor's throughput, median of ${ROUNDS} (target ≥ ${scenario.target}x: ${met(ratio[v.label]! >= scenario.target)}); CPU/review ${(median(cpu[v.label]!) / median(cpu['floor']!)).toFixed(2)}x the floor's`);
        console.log(`  ${v.label} at half of its saturation (${half} req/s): p50 ${halfLoad.p50.toFixed(2)} ms, p99 ${halfLoad.p99.toFixed(2)} ms (target ≤ 2 ms: ${met(halfLoad.p99 <= 2)}), p99.9 ${halfLoad.p999.toFixed(2)} ms, errors ${halfLoad.errors}`);
      }
      console.log('');
      results.push({ scenario, ratio, halfLoadP99, cpuPerReview: Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, median(v)])), windows: {} });
    }
  } finally {
    for (const v of variants) await v.server.stop();
    await floor.stop();
  }
  return results;
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
  const dirs: Record<string, string> = {};
  const servers: { label: string; server: Server }[] = [];
  try {
    dirs['floor'] = mkdtempSync(join(tmpdir(), 'podvisor-bench-prof-'));
    servers.push({ label: 'floor', server: await startFloor(certDir, dirs['floor']) });
    for (const v of VARIANTS) {
      dirs[v.label] = mkdtempSync(join(tmpdir(), 'podvisor-bench-prof-'));
      servers.push({ label: v.label, server: await startPodvisor(certDir, v.cli, dirs[v.label]) });
    }
    for (const result of results) {
      const { scenario } = result;
      await setFloorResponse(servers[0]!.server, (await post(servers.at(-1)!.server.port, ca, scenario.body)).text);
      for (const { server } of servers) await measure(server, scenario, { seconds: 1 });
      // Short slices, alternated: on a shared machine each server is profiled through the same moments.
      for (let slice = 0; slice < PROFILE_SLICES; slice += 1) {
        for (const { label, server } of servers) (result.windows[label] ??= []).push(await measure(server, scenario, { seconds: PROFILE_SECONDS / PROFILE_SLICES }));
      }
    }
  } finally {
    // --cpu-prof writes the profile when the process exits (podvisor: SIGTERM → drain → exit).
    for (const { server } of servers) await server.stop();
  }
  const profiles = Object.fromEntries(servers.map(({ label, server }) => [label, mainThreadProfile(dirs[label]!, pidOf(server))]));
  for (const dir of Object.values(dirs)) rmSync(dir, { recursive: true, force: true });

  console.log(`CPU µs per review by stage (--cpu-prof, ${PROFILE_SECONDS} s of load per server and scenario in ${PROFILE_SLICES} alternated slices)`);
  // Each stage's share of the profile's busy samples × the server's CPU time per review measured unprofiled above
  // (/proc): V8 samples wall-clock time (a preempted stack keeps being charged on a shared CPU) and profiling adds
  // its own cost, but the shares hold.
  const labels = servers.map((s) => s.label);
  const totalsOf = (r: ScenarioResult, label: string): StageTotals => {
    const micros = Object.fromEntries(STAGES.map((s) => [s, 0])) as Record<Stage, number>;
    let windowMicros = 0;
    for (const w of r.windows[label]!) {
      const totals = profiles[label]!.window(w.from, w.to);
      for (const s of STAGES) micros[s] += totals.micros[s];
      windowMicros += totals.windowMicros;
    }
    return { micros, windowMicros };
  };
  const busyOf = (totals: StageTotals) => Object.values(totals.micros).reduce((a, b) => a + b, 0);
  const columns = results.map((r) =>
    Object.fromEntries(
      labels.map((label) => {
        const totals = totalsOf(r, label);
        const busy = busyOf(totals);
        return [label, Object.fromEntries(STAGES.map((s) => [s, busy === 0 ? 0 : (totals.micros[s] / busy) * r.cpuPerReview[label]!]))];
      }),
    ) as Record<string, Record<string, number>>,
  );
  const width = Math.max(...STAGES.map((s) => s.length)) + 1;
  const cell = Math.max(...labels.map((l) => l.length)) + 2;
  console.log(`${''.padEnd(width)}${results.map((_r, i) => `[${i + 1}]`.padEnd(cell * labels.length)).join('  ')}`);
  console.log(`${''.padEnd(width)}${results.map(() => labels.map((l) => l.padStart(cell)).join('')).join('  ')}`);
  for (const stage of STAGES) {
    if (columns.every((c) => labels.every((l) => c[l]![stage]! < 0.05))) continue;
    console.log(`${stage.padEnd(width)}${columns.map((c) => labels.map((l) => c[l]![stage]!.toFixed(1).padStart(cell)).join('')).join('  ')}`);
  }
  const total = (column: Record<string, number>) => Object.values(column).reduce((a, b) => a + b, 0);
  console.log(`${'total (= CPU/review above)'.padEnd(width)}${columns.map((c) => labels.map((l) => total(c[l]!).toFixed(1).padStart(cell)).join('')).join('  ')}`);
  results.forEach((r, i) => console.log(`[${i + 1}] ${r.scenario.name}`));
  if (DETAIL) {
    for (const [i, r] of results.entries()) {
      for (const label of labels) {
        const busy = busyOf(totalsOf(r, label));
        console.log(`\n[${i + 1}] ${label}: the frames with the most self time per stage, CPU µs per review`);
        for (const stage of STAGES) {
          const frames = new Map<string, number>();
          for (const w of r.windows[label]!) for (const [frame, micros] of profiles[label]!.topFrames(w.from, w.to, stage, 8)) frames.set(frame, (frames.get(frame) ?? 0) + micros);
          if (frames.size === 0) continue;
          console.log(`  ${stage}`);
          for (const [frame, micros] of [...frames].sort((a, b) => b[1] - a[1]).slice(0, 8)) console.log(`    ${((micros / busy) * r.cpuPerReview[label]!).toFixed(2).padStart(7)}  ${frame}`);
        }
      }
    }
  }
}

/**
 * `npm run bench:capacity`: for each scenario, the highest rate one podvisor process pinned to one CPU answers with
 * p99 ≤ CAPACITY_P99_MS: offered rates step up by a twentieth of the saturation rate, BENCH_SECONDS each, until p99
 * passes the bound or the rate is no longer reached. The floor is run at each rate too, as the machine's reference.
 */
const CAPACITY_P99_MS = Number(process.env['BENCH_CAPACITY_P99_MS'] ?? 5);

async function capacity(certDir: string, ca: string): Promise<void> {
  const podvisor = await startPodvisor(certDir, VARIANTS.at(-1)!.cli);
  // The floor at the same rates: its p99 is what the machine and the load generator add to any server's.
  const floor = await startFloor(certDir);
  try {
    console.log(`capacity: highest offered rate with p99 ≤ ${CAPACITY_P99_MS} ms, one podvisor process on one CPU, ${CONNECTIONS} connections; the floor at the same rate alongside\n`);
    const rows: string[] = [];
    for (const scenario of scenarios) {
      await setFloorResponse(floor, (await post(podvisor.port, ca, scenario.body)).text);
      await measure(podvisor, scenario, { seconds: 2 });
      const saturation = (await measure(podvisor, scenario, { seconds: Math.min(SECONDS, 3) })).rps;
      let best: { rate: number; run: Measurement } | undefined;
      // From a twentieth of the saturation rate up, a twentieth at a time.
      for (let step = 1; step <= 20; step += 1) {
        const rate = Math.round((saturation * step) / 20);
        const run = await paced(podvisor, scenario, rate);
        const reference = await paced(floor, scenario, rate);
        const ok = run.p99 <= CAPACITY_P99_MS && run.rps >= rate * 0.97 && run.errors === 0;
        console.log(
          `  ${scenario.name}: offered ${rate} req/s → ${run.rps.toFixed(0)} req/s, p99 ${run.p99.toFixed(2)} ms, ${run.cpuPerReview.toFixed(0)} µs CPU/review ${ok ? 'ok' : 'over'} (floor: p99 ${reference.p99.toFixed(2)} ms)`,
        );
        if (!ok) break;
        best = { rate, run };
      }
      rows.push(
        best === undefined
          ? `  ${scenario.name.padEnd(34)} no rate met p99 ≤ ${CAPACITY_P99_MS} ms (saturation ${saturation.toFixed(0)} req/s)`
          : `  ${scenario.name.padEnd(34)} ${best.rate} reviews/s per CPU at p99 ${best.run.p99.toFixed(2)} ms (saturation ${saturation.toFixed(0)} req/s, ${best.run.cpuPerReview.toFixed(0)} µs CPU/review)`,
      );
    }
    console.log(`\ncapacity (p99 ≤ ${CAPACITY_P99_MS} ms)`);
    for (const row of rows) console.log(row);
  } finally {
    await podvisor.stop();
    await floor.stop();
  }
}

async function main(): Promise<void> {
  if (PIN) execFileSync('taskset', ['-a', '-p', '-c', CLIENT_CPU, String(process.pid)], { stdio: 'ignore' });
  const certDir = mkdtempSync(join(tmpdir(), 'podvisor-bench-'));
  const tls = await loadTls({ certDir, service: 'podvisor', namespace: 'podvisor-system' });
  console.log(
    `podvisor bench (${VARIANTS.map((v) => `${v.label}: ${v.cli}`).join(', ')}): ${ROUNDS} alternated rounds of ${SECONDS} s per scenario, ${CONNECTIONS} keep-alive TLS connections, node ${process.version}, loopback only, ` +
      (PIN ? `servers pinned to CPU ${SERVER_CPU}, load generator to CPU ${CLIENT_CPU}\n` : 'not pinned\n'),
  );
  try {
    if (process.env['BENCH_CAPACITY'] === '1') return await capacity(certDir, tls.ca!);
    const results = await throughput(certDir, tls.ca!);
    await breakdown(certDir, tls.ca!, results);
    console.log('\nsummary');
    for (const r of results) {
      for (const v of VARIANTS) {
        console.log(`  ${v.label.padEnd(9)} ${r.scenario.name.padEnd(34)} ${r.ratio[v.label]!.toFixed(2)}x the floor (target ${r.scenario.target}x)  p99 at half saturation ${r.halfLoadP99[v.label]!.toFixed(2)} ms (target 2 ms)`);
      }
    }
  } finally {
    rmSync(certDir, { recursive: true, force: true });
  }
}

await main();
