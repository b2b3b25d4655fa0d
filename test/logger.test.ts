// The review log is written asynchronously (src/observability/logger.ts). These tests run `podvisor serve` as a child
// process and check that the last lines before each way the buffer can be cut short still reach stdout: SIGTERM, a
// fatal error (an uncaught exception, injected by test/fixtures/fatal-on-sigusr2.mjs) and a config reload that
// changes the log level. Loopback only, bounded by each test's timeout.
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { generateServingCertificate } from '../src/server/certificate-authority.js';
import { fixtureReview } from './support/harness.js';
import { startPodvisorProcess, type PodvisorProcess } from './support/podvisor-process.js';

const FATAL = fileURLToPath(new URL('./fixtures/fatal-on-sigusr2.mjs', import.meta.url));
const REVIEWS = 300;
const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

interface Setup {
  readonly configFile: string;
  readonly ca: string;
  config(logLevel: string): string;
}

async function setup(): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), 'podvisor-logger-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const { ca, cert, key } = await generateServingCertificate('podvisor', 'podvisor-system');
  writeFileSync(join(dir, 'tls.crt'), cert);
  writeFileSync(join(dir, 'tls.key'), key);
  const configFile = join(dir, 'config.yaml');
  const config = (logLevel: string) =>
    [`logLevel: ${logLevel}`, 'server:', '  address: 127.0.0.1', '  port: 0', '  opsAddress: 127.0.0.1', '  opsPort: 0', '  drainSeconds: 0', 'tls:', `  certFile: ${join(dir, 'tls.crt')}`, `  keyFile: ${join(dir, 'tls.key')}`].join('\n');
  writeFileSync(configFile, config('info'));
  return { configFile, ca, config };
}

async function start(s: Setup, nodeArgs: string[] = []): Promise<PodvisorProcess> {
  const p = await startPodvisorProcess(s.configFile, 20_000, { keepReviews: true, nodeArgs });
  cleanup.push(() => p.kill());
  return p;
}

/** Posts `count` reviews one after another over one keep-alive connection; returns their uids. */
async function sendReviews(p: PodvisorProcess, ca: string, prefix: string, count: number): Promise<string[]> {
  const agent = new Agent({ ca, keepAlive: true, maxSockets: 1 });
  const uids: string[] = [];
  try {
    for (let i = 0; i < count; i += 1) {
      const uid = `${prefix}-${String(i).padStart(5, '0')}`;
      const review = fixtureReview('review-01-pod-create.json');
      review.request['uid'] = uid;
      const status = await new Promise<number>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', servername: 'localhost', port: p.admissionPort, path: '/mutate', method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        req.end(JSON.stringify(review));
      });
      expect(status).toBe(200);
      uids.push(uid);
    }
  } finally {
    agent.destroy();
  }
  return uids;
}

const reviewUids = (p: PodvisorProcess) => new Set(p.logs.filter((l) => l.msg === 'review').map((l) => String(l['uid'])));

describe('the asynchronous review log loses no line', () => {
  it('on SIGTERM: every review answered before it is in the log, then "podvisor stopped"', async () => {
    const s = await setup();
    const p = await start(s);
    const uids = await sendReviews(p, s.ca, 'sigterm', REVIEWS);
    const seenAtSignal = reviewUids(p).size;
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    console.log(`SIGTERM: ${seenAtSignal} of ${REVIEWS} review lines on stdout when the signal was sent`);
    const seen = reviewUids(p);
    expect(uids.filter((uid) => !seen.has(uid))).toEqual([]);
    expect(p.logs.at(-1)?.msg).toBe('podvisor stopped');
  }, 60_000);

  it('on a fatal error: every review answered before it is in the log, then the error itself; exit code 1', async () => {
    const s = await setup();
    const p = await start(s, ['--import', FATAL]);
    const uids = await sendReviews(p, s.ca, 'fatal', REVIEWS);
    const seenAtFault = reviewUids(p).size;
    p.child.kill('SIGUSR2');
    expect(await p.exited).toBe(1);
    console.log(`fatal error: ${seenAtFault} of ${REVIEWS} review lines on stdout when the fault was injected`);
    const seen = reviewUids(p);
    expect(uids.filter((uid) => !seen.has(uid))).toEqual([]);
    const fatal = p.logs.find((l) => l.msg === 'fatal error');
    expect(fatal?.level).toBe(60);
    expect((fatal?.['err'] as { message?: string } | undefined)?.message).toMatch(/induced fatal error/);
  }, 60_000);

  it('on a config reload to logLevel warn: every line before the change is written, none of the reviews after it', async () => {
    const s = await setup();
    const p = await start(s);
    const before = await sendReviews(p, s.ca, 'before', REVIEWS);
    writeFileSync(`${s.configFile}.tmp`, s.config('warn'));
    renameSync(`${s.configFile}.tmp`, s.configFile);
    const changed = await p.waitForLog((l) => l.msg === 'log level changed', 10_000);
    expect([changed['from'], changed['to']]).toEqual(['info', 'warn']);
    const seen = reviewUids(p);
    expect(before.filter((uid) => !seen.has(uid))).toEqual([]);
    // Lines are in order: every review line before the level change line.
    const changeAt = p.logs.indexOf(changed);
    expect(p.logs.findIndex((l, i) => i > changeAt && l.msg === 'review')).toBe(-1);
    const after = await sendReviews(p, s.ca, 'after', 50);
    await sleep(600); // past the periodic flush
    const late = reviewUids(p);
    expect(after.filter((uid) => late.has(uid))).toEqual([]);
  }, 60_000);
});
