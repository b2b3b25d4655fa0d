// npm run soak — a bounded soak of the compiled server, on loopback only: SOAK_REQUESTS reviews (default 1 000 000)
// from a mix of the fixtures over SOAK_CONNECTIONS keep-alive connections, then it stops by itself.
// Reports the server process's RSS at start (after a warm-up), middle and end, and every error; exit code 1 when
// there was an error or RSS grew by 10 % or more from start to end.
//
//   npm run soak                               # build, then 1 000 000 reviews
//   SOAK_REQUESTS=50000 npx tsx scripts/soak.ts  # against the existing dist/
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { findWorkloadKind, splitApiVersion } from '../src/workload/kinds.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIXTURES = join(ROOT, 'test/fixtures');
const REQUESTS = positive('SOAK_REQUESTS', 1_000_000);
const CONNECTIONS = positive('SOAK_CONNECTIONS', 8);
const WARMUP = Math.min(20_000, Math.floor(REQUESTS / 20));
const CLI = process.env['SOAK_CLI'] ?? join(ROOT, 'dist/cli.js');
/** Every uid has this length, so a response can be compared with the first one for its body by substitution. */
const UID_PLACEHOLDER = 'soak-uid-000000000000';

function positive(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name}: expected a positive integer`);
  return value;
}

interface Body {
  readonly name: string;
  /** The review split around its uid. */
  readonly before: string;
  readonly after: string;
}

function split(name: string, review: { request: Record<string, unknown> }): Body {
  const text = JSON.stringify({ ...review, request: { ...review.request, uid: UID_PLACEHOLDER } });
  const at = text.indexOf(UID_PLACEHOLDER);
  return { name, before: text.slice(0, at), after: text.slice(at + UID_PLACEHOLDER.length) };
}

/** The four AdmissionReview fixtures, every workload manifest as CREATE (and UPDATE where handled), one non-opted-in Pod. */
function reviewMix(): Body[] {
  const bodies: Body[] = [];
  for (const file of readdirSync(FIXTURES).sort()) {
    if (file.startsWith('review-') && file.endsWith('.json')) {
      bodies.push(split(file, JSON.parse(readFileSync(join(FIXTURES, file), 'utf8'))));
      continue;
    }
    if (!file.endsWith('.yaml')) continue;
    for (const doc of parseAllDocuments(readFileSync(join(FIXTURES, file), 'utf8'))) {
      const object = doc.toJS() as Record<string, unknown>;
      const { group, version } = splitApiVersion(String(object['apiVersion']));
      const workload = findWorkloadKind(group, version, String(object['kind']));
      if (workload === undefined) continue;
      const meta = (object['metadata'] ?? {}) as { name?: string; namespace?: string };
      for (const operation of workload.group === '' ? ['CREATE'] : ['CREATE', 'UPDATE']) {
        const request = {
          uid: UID_PLACEHOLDER,
          kind: { group, version, kind: workload.kind },
          resource: { group, version, resource: `${workload.kind.toLowerCase()}s` },
          operation,
          name: meta.name,
          namespace: meta.namespace ?? 'default',
          userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller' },
          object,
          ...(operation === 'UPDATE' ? { oldObject: object } : {}),
        };
        bodies.push(split(`${file} ${operation}`, { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request } as never));
      }
    }
  }
  const plain = JSON.parse(readFileSync(join(FIXTURES, 'review-01-pod-create.json'), 'utf8'));
  delete plain.request.object.metadata.annotations;
  bodies.push(split('review-01 not opted in', plain));
  return bodies;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Resident set size of a process, from /proc (Linux). */
function rssBytes(pid: number): number {
  const line = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (line === null) throw new Error(`no VmRSS for ${pid}`);
  return Number(line[1]) * 1024;
}

async function startServer(dir: string, port: number, opsPort: number): Promise<ChildProcess> {
  const config = join(dir, 'config.yaml');
  // logLevel stays at the default (info): one JSON line per review, as deployed, to /dev/null.
  writeFileSync(config, `server:\n  address: 127.0.0.1\n  port: ${port}\n  opsAddress: 127.0.0.1\n  opsPort: ${opsPort}\n  drainSeconds: 0\ntls:\n  certDir: ${dir}\n`);
  const child = fork(CLI, ['serve', '--config', config], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit', 'ipc'], execArgv: [] });
  for (let i = 0; i < 300; i += 1) {
    if (child.exitCode !== null) throw new Error(`podvisor exited with ${child.exitCode}`);
    await new Promise((r) => setTimeout(r, 100));
    if (await fetch(`http://127.0.0.1:${opsPort}/readyz`).then((r) => r.ok, () => false)) return child;
  }
  child.kill('SIGKILL');
  throw new Error('podvisor did not become ready within 30 s');
}

interface Outcome {
  readonly status: number;
  readonly text: string;
}

function post(agent: Agent, port: number, body: string): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', servername: 'localhost', port, path: '/mutate', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** A valid answer: 200, an AdmissionReview echoing the uid, allowed boolean, patchType iff patch. */
function answerProblem(outcome: Outcome, uid: string): string | undefined {
  if (outcome.status !== 200) return `HTTP ${outcome.status}: ${outcome.text.slice(0, 200)}`;
  let answer: { apiVersion?: unknown; kind?: unknown; response?: { uid?: unknown; allowed?: unknown; patch?: unknown; patchType?: unknown } };
  try {
    answer = JSON.parse(outcome.text);
  } catch {
    return `not JSON: ${outcome.text.slice(0, 200)}`;
  }
  const response = answer.response;
  if (answer.apiVersion !== 'admission.k8s.io/v1' || answer.kind !== 'AdmissionReview' || response === undefined) return 'not an AdmissionReview';
  if (response.uid !== uid) return `uid ${JSON.stringify(response.uid)} instead of ${uid}`;
  if (typeof response.allowed !== 'boolean') return 'allowed is not a boolean';
  if ((response.patch === undefined) !== (response.patchType === undefined)) return 'patchType without patch or patch without patchType';
  return undefined;
}

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

async function main(): Promise<void> {
  const bodies = reviewMix();
  const dir = mkdtempSync(join(tmpdir(), 'podvisor-soak-'));
  const port = await freePort();
  const opsPort = await freePort();
  const server = await startServer(dir, port, opsPort);
  const pid = server.pid!;
  const ca = readFileSync(join(dir, 'ca.crt'), 'utf8');
  const agent = new Agent({ ca, keepAlive: true, maxSockets: CONNECTIONS });
  const rss: Record<string, number> = { cold: rssBytes(pid) };
  let peak = rss['cold']!;
  const errors = new Map<string, { count: number; example: string }>();
  const fail = (kind: string, example: string) => {
    const entry = errors.get(kind) ?? { count: 0, example };
    entry.count += 1;
    errors.set(kind, entry);
  };
  /** The first answer for each body, uid replaced: every later answer for that body must be the same bytes. */
  const expected = new Map<string, string>();
  let sent = 0;
  let done = 0;
  const started = Date.now();
  console.log(`podvisor soak: ${REQUESTS} reviews (${bodies.length} different), ${CONNECTIONS} keep-alive connections, server pid ${pid} on 127.0.0.1:${port}, node ${process.version}`);
  console.log(`  RSS cold (just ready): ${mib(rss['cold']!)}`);

  const milestones = new Map<number, string>([
    [WARMUP, 'start'],
    [Math.floor(REQUESTS / 2), 'middle'],
    [REQUESTS, 'end'],
  ]);
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssBytes(pid));
  }, 1000);
  const progressEvery = Math.max(1, Math.floor(REQUESTS / 10));

  const worker = async () => {
    for (;;) {
      const n = sent;
      if (n >= REQUESTS) return;
      sent += 1;
      const body = bodies[n % bodies.length]!;
      const uid = `soak-uid-${String(n).padStart(12, '0')}`;
      try {
        const outcome = await post(agent, port, body.before + uid + body.after);
        const problem = answerProblem(outcome, uid);
        if (problem !== undefined) fail(`invalid answer (${body.name})`, problem);
        else {
          const normalized = outcome.text.replace(uid, UID_PLACEHOLDER);
          const first = expected.get(body.name);
          if (first === undefined) expected.set(body.name, normalized);
          else if (first !== normalized) fail(`answer differs from the first one (${body.name})`, normalized.slice(0, 300));
        }
      } catch (err) {
        fail(`request error ${(err as NodeJS.ErrnoException).code ?? ''}`, (err as Error).message);
      }
      done += 1;
      const label = milestones.get(done);
      if (label !== undefined) {
        rss[label] = rssBytes(pid);
        peak = Math.max(peak, rss[label]!);
        console.log(`  RSS ${label} (after ${done} reviews): ${mib(rss[label]!)}`);
      }
      if (done % progressEvery === 0) {
        const seconds = (Date.now() - started) / 1000;
        console.log(`  ${done} reviews, ${seconds.toFixed(0)} s, ${(done / seconds).toFixed(0)} reviews/s, errors ${[...errors.values()].reduce((s, e) => s + e.count, 0)}`);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: CONNECTIONS }, worker));
  } finally {
    clearInterval(sampler);
    agent.destroy();
    server.kill('SIGTERM');
    await new Promise((r) => (server.exitCode !== null ? r(undefined) : server.once('exit', r)));
    rmSync(dir, { recursive: true, force: true });
  }

  const seconds = (Date.now() - started) / 1000;
  const errorCount = [...errors.values()].reduce((s, e) => s + e.count, 0);
  const growth = (rss['end']! - rss['start']!) / rss['start']!;
  console.log(`\n${done} reviews in ${seconds.toFixed(1)} s (${(done / seconds).toFixed(0)} reviews/s)`);
  console.log(`RSS: cold ${mib(rss['cold']!)}, start ${mib(rss['start']!)} (after ${WARMUP} warm-up reviews), middle ${mib(rss['middle']!)}, end ${mib(rss['end']!)}, peak ${mib(peak)}`);
  console.log(`RSS growth start → end: ${(growth * 100).toFixed(1)} % (goal < 10 %)`);
  console.log(`errors: ${errorCount} (goal 0)`);
  for (const [kind, { count, example }] of errors) console.log(`  ${count} × ${kind}: ${example}`);
  if (errorCount > 0 || growth >= 0.1) process.exitCode = 1;
}

await main();
