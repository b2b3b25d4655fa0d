// A hostile client against the real server (`podvisor serve` as a child process, loopback only): many connections
// holding unfinished bodies, connections that never send a request, and too many connections. The server's RSS must
// stay bounded and fresh reviews must still be answered. Bounded: every test ends within its timeout.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { connect as connectTcp } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { generateServingCertificate } from '../src/server/certificate-authority.js';
import { fixtureText } from './support/harness.js';
import { startPodvisorProcess, type PodvisorProcess } from './support/podvisor-process.js';

const MiB = 1024 * 1024;
const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

interface Running {
  readonly podvisor: PodvisorProcess;
  readonly ca: string;
  readonly agent: Agent;
}

async function start(server: Record<string, number>): Promise<Running> {
  const dir = mkdtempSync(join(tmpdir(), 'podvisor-limits-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const { ca, cert, key } = await generateServingCertificate('podvisor', 'podvisor-system');
  writeFileSync(join(dir, 'tls.crt'), cert);
  writeFileSync(join(dir, 'tls.key'), key);
  const lines = ['logLevel: info', 'server:', '  address: 127.0.0.1', '  port: 0', '  opsAddress: 127.0.0.1', '  opsPort: 0', '  drainSeconds: 0'];
  for (const [name, value] of Object.entries(server)) lines.push(`  ${name}: ${value}`);
  lines.push('tls:', `  certFile: ${join(dir, 'tls.crt')}`, `  keyFile: ${join(dir, 'tls.key')}`);
  writeFileSync(join(dir, 'config.yaml'), lines.join('\n'));
  const podvisor = await startPodvisorProcess(join(dir, 'config.yaml'));
  cleanup.push(() => podvisor.kill());
  const agent = new Agent({ ca, keepAlive: true, maxSockets: 2 });
  cleanup.push(() => agent.destroy());
  return { podvisor, ca, agent };
}

function rss(pid: number): number {
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
}

function review(running: Running, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', servername: 'localhost', port, path: '/mutate', method: 'POST', agent: running.agent, headers: { 'content-type': 'application/json' } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.setTimeout(5_000, () => req.destroy(new Error('no answer within 5 s')));
    req.end(fixtureText('review-01-pod-create.json'));
  });
}

interface Stalled {
  readonly socket: TLSSocket;
  /** Set when the server closed the connection. */
  closed: boolean;
}

/** Declares a `declared`-byte body, sends `sent` bytes of it, and stalls (the socket stays open). */
function stall(running: Running, port: number, declared: number, sent: number): Promise<Stalled> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', ca: running.ca }, () => {
      socket.write(`POST /mutate HTTP/1.1\r\nHost: podvisor\r\nContent-Type: application/json\r\nContent-Length: ${declared}\r\n\r\n`);
      socket.write(`{"pad":"${'x'.repeat(sent - 8)}`, () => resolve(stalled));
    });
    const stalled: Stalled = { socket, closed: false };
    // Read what the server sends (a 408, or nothing before it closes), so that its close is seen.
    socket.resume();
    socket.on('error', () => undefined);
    socket.on('close', () => (stalled.closed = true));
    socket.once('error', reject);
    cleanup.push(() => void socket.destroy());
  });
}

/** Opens 80 connections that each send 3.5 MiB of a 4 MiB body and stall; RSS growth (peak) and the ones left open. */
async function stallEighty(running: Running): Promise<{ before: number; growth: number; open: number }> {
  const { admissionPort, child } = running.podvisor;
  for (let i = 0; i < 20; i += 1) expect(await review(running, admissionPort)).toBe(200);
  const before = rss(child.pid!);
  const stalled: Stalled[] = [];
  let peak = before;
  for (let i = 0; i < 80; i += 1) {
    stalled.push(await stall(running, admissionPort, 4 * MiB - 1, 3.5 * MiB));
    if (i % 10 === 9) {
      await sleep(50);
      peak = Math.max(peak, rss(child.pid!));
      // Fresh reviews keep being answered while the stalled bodies are held.
      expect(await review(running, admissionPort)).toBe(200);
    }
  }
  await sleep(500);
  peak = Math.max(peak, rss(child.pid!));
  return { before, growth: peak - before, open: stalled.filter((s) => !s.closed).length };
}

describe('a hostile client against POST /mutate', () => {
  it('control: with the in-flight limits lifted, 80 stalled bodies of 3.5 MiB grow RSS by 200 MiB or more', async () => {
    const running = await start({ maxInFlightBodyBytes: 1024 * MiB, maxInFlightBodies: 1000, headersTimeoutMs: 60_000, bodyTimeoutMs: 60_000 });
    const { before, growth, open } = await stallEighty(running);
    console.log(`control: RSS before ${(before / MiB).toFixed(0)} MiB, +${(growth / MiB).toFixed(0)} MiB with 80 × 3.5 MiB sent; stalled bodies still open: ${open}`);
    expect(open).toBe(80);
    expect(growth).toBeGreaterThan(200 * MiB);
  }, 90_000);

  it('80 connections stalled mid-body (3.5 MiB each) hold at most the in-flight budget; fresh reviews are answered', async () => {
    const budget = 16 * MiB;
    const running = await start({ maxInFlightBodyBytes: budget, headersTimeoutMs: 60_000, bodyTimeoutMs: 60_000 });
    const { admissionPort } = running.podvisor;
    const { before, growth, open } = await stallEighty(running);
    const peak = before + growth;
    console.log(`RSS before ${(before / MiB).toFixed(0)} MiB, peak ${(peak / MiB).toFixed(0)} MiB (+${(growth / MiB).toFixed(0)} MiB) with 80 × 3.5 MiB sent (280 MiB); stalled bodies still open: ${open}`);
    // What the budget holds: 16 MiB / 3.5 MiB → 4 bodies; every other stalled connection was shed (closed).
    expect(open).toBeLessThanOrEqual(Math.floor(budget / (3.5 * MiB)) + 1);
    // Without the budget the bodies alone would be 280 MiB; allow the budget plus garbage not yet collected.
    expect(growth).toBeLessThan(budget + 96 * MiB);
    for (let i = 0; i < 10; i += 1) expect(await review(running, admissionPort)).toBe(200);
  }, 90_000);

  it('a body that stalls is cut off by the body timeout, a connection that sends nothing by the header timeout', async () => {
    const running = await start({ headersTimeoutMs: 500, bodyTimeoutMs: 1_000 });
    const { admissionPort } = running.podvisor;
    const stalledBody = await stall(running, admissionPort, 100_000, 1_000);
    const silent = await new Promise<Stalled>((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port: admissionPort, servername: 'localhost', ca: running.ca }, () => resolve(entry));
      const entry: Stalled = { socket, closed: false };
      socket.resume();
      socket.on('close', () => (entry.closed = true));
      socket.once('error', reject);
      cleanup.push(() => void socket.destroy());
    });
    // A TCP connection that never starts TLS: the handshake timeout.
    const raw = connectTcp({ host: '127.0.0.1', port: admissionPort });
    let rawClosed = false;
    raw.on('close', () => (rawClosed = true));
    raw.on('error', () => undefined);
    cleanup.push(() => void raw.destroy());
    const started = Date.now();
    while ((!stalledBody.closed || !silent.closed || !rawClosed) && Date.now() - started < 10_000) {
      expect(await review(running, admissionPort)).toBe(200);
      await sleep(100);
    }
    expect([stalledBody.closed, silent.closed, rawClosed]).toEqual([true, true, true]);
    // Checked every 500 ms: closed within the timeout plus one check, not Node's default 30 s interval.
    expect(Date.now() - started).toBeLessThan(4_000);
  }, 30_000);

  it('past maxConnections new connections are closed at once; once the hog leaves, reviews are answered again', async () => {
    const running = await start({ maxConnections: 16, headersTimeoutMs: 60_000, bodyTimeoutMs: 60_000 });
    const { admissionPort } = running.podvisor;
    const hog: Stalled[] = [];
    for (let i = 0; i < 16; i += 1) hog.push(await stall(running, admissionPort, 10_000, 100));
    const refused = await review(running, admissionPort).then(
      (status) => `answered ${status}`,
      (err: Error) => err.message,
    );
    expect(refused).not.toMatch(/^answered/);
    for (const s of hog) s.socket.destroy();
    await sleep(200);
    running.agent.destroy();
    const fresh = { ...running, agent: new Agent({ ca: running.ca, keepAlive: true, maxSockets: 2 }) };
    cleanup.push(() => fresh.agent.destroy());
    expect(await review(fresh, admissionPort)).toBe(200);
  }, 30_000);
});
