// Fuzzing the real HTTPS server (127.0.0.1, generated CA verified) through one keep-alive connection: generated
// reviews, wrong envelopes, random and truncated bodies, random Content-Types, an oversized body and a garbage HTTP
// request. The server must answer each with a valid AdmissionReview (the same one the pure pipeline gives) or a 4xx
// with a JSON message, and still be healthy at the end.
//
// PODVISOR_FUZZ_SERVER_RUNS sets the number of generated requests (default 150).
//   PODVISOR_FUZZ_SERVER_RUNS=5000 npx vitest run test/admission-app-fuzz.test.ts
import { connect } from 'node:tls';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from 'node:https';
import { parseConfig } from '../src/config/load.js';
import { answerProblems, answerWithoutNetwork, type Endpoint } from './support/answer-properties.js';
import { fixtureReview } from './support/harness.js';
import { KNOWN_BUGS } from './support/known-bugs.js';
import { changedObjectField, rawBody, review, wrongEnvelope } from './support/review-arbitraries.js';
import { startTestServer, type TestServer } from './support/server.js';

const RUNS = Number(process.env['PODVISOR_FUZZ_SERVER_RUNS'] ?? 150);
const env = { config: parseConfig({}) };

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
  // One keep-alive connection for every request, as the apiserver reuses its connections.
  t.agent.destroy();
  (t as { agent: Agent }).agent = new Agent({ ca: t.ca, keepAlive: true, maxSockets: 1 });
});
afterAll(async () => {
  await t?.close();
});

/** A body and whether it is as well-typed as the apiserver's. */
const body = fc.oneof(
  { weight: 4, arbitrary: review.map((r) => ({ text: JSON.stringify(r.body), wellTyped: true })) },
  { weight: 2, arbitrary: wrongEnvelope.map((b) => ({ text: JSON.stringify(b), wellTyped: false })) },
  { weight: 2, arbitrary: rawBody.map((text) => ({ text, wellTyped: false })) },
  { weight: 1, arbitrary: changedObjectField('missing').map((b) => ({ text: JSON.stringify(b), wellTyped: false })) },
  { weight: 1, arbitrary: changedObjectField('wrongType').map((b) => ({ text: JSON.stringify(b), wellTyped: false })) },
);
const contentType = fc.constantFrom('application/json', 'application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'application/octet-stream');
const endpoint = fc.constantFrom<Endpoint>('/mutate', '/mutate', '/validate');

/** What the pure pipeline answers, or undefined when the body hits a known bug (see test/support/known-bugs.ts). */
function expected(path: Endpoint, text: string): { status: number; json: unknown } | undefined {
  try {
    return answerWithoutNetwork(path, text, env);
  } catch (err) {
    if (KNOWN_BUGS.some((b) => b.matches(err as Error))) return undefined;
    throw err;
  }
}

describe(`POST /mutate and /validate over one keep-alive HTTPS connection (${RUNS} generated requests)`, () => {
  it('every answer is a valid AdmissionReview equal to the pure pipeline\'s, or a 4xx with a JSON message', async () => {
    let answered = 0;
    await fc.assert(
      fc.asyncProperty(endpoint, body, contentType, async (path, { text, wellTyped }, type) => {
        const pure = expected(path, text);
        fc.pre(pure !== undefined);
        const reply = await t.post(path, text, { 'content-type': type });
        let json: unknown;
        try {
          json = reply.json();
        } catch {
          throw new Error(`HTTP ${reply.status} without a JSON body: ${reply.text.slice(0, 200)}`);
        }
        const problems = answerProblems(path, text, { status: reply.status, json }, env, { wellTyped });
        if (problems.length > 0) throw new Error(problems.join('\n'));
        // Same class of answer as the pure pipeline, and for a review the very same answer.
        expect(Math.floor(reply.status / 100)).toBe(Math.floor(pure!.status / 100));
        if (reply.status === 200) expect(json).toEqual(pure!.json);
        answered += 1;
      }),
      { numRuns: RUNS },
    );
    expect(answered).toBeGreaterThan(RUNS / 2);
  }, 60_000 + RUNS * 50);

  it('an oversized body gets a 413 with a message, and the next review is answered', async () => {
    const reply = await t.post('/mutate', JSON.stringify({ pad: 'x'.repeat(8 * 1024 * 1024 + 1) }));
    expect(reply.status).toBe(413);
    expect(reply.json().message).toMatch(/too large/i);
    const next = await t.post('/mutate', fixtureReview('review-01-pod-create.json'));
    expect(next.status).toBe(200);
    expect(next.json().response.patchType).toBe('JSONPatch');
  });

  it('a request that is not HTTP gets a 400 and a closed connection; the server keeps serving', async () => {
    const text = await new Promise<string>((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port: t.server.admissionPort, servername: 'localhost', ca: t.ca }, () => socket.end('GARBAGE \u0000\u00ff /mutate HTTP/9.9\r\nfoo\r\n\r\n'));
      let received = '';
      socket.setEncoding('latin1');
      socket.on('data', (chunk: string) => (received += chunk));
      socket.on('end', () => resolve(received));
      socket.on('close', () => resolve(received));
      socket.on('error', reject);
    });
    expect(text).toMatch(/^HTTP\/1\.1 400/);
    expect((await t.ops('/healthz')).status).toBe(200);
    const review = fixtureReview('review-01-pod-create.json');
    const reply = await t.post('/mutate', review);
    expect(reply.json().response).toMatchObject({ uid: review.request['uid'], allowed: true, patchType: 'JSONPatch' });
  });
});
