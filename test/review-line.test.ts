import { Writable } from 'node:stream';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createLogger, writeReviewLine, type ReviewLine } from '../src/observability/logger.js';

/** A pino destination that keeps every line written to it. */
function capture(): { stream: Writable; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { stream, lines };
}

/** A UTF-16 surrogate without its pair. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const text = fc.oneof(fc.string(), fc.string({ unit: 'binary', maxLength: 120 }), fc.constantFrom('', 'a"b\\c', '\u0000\u001f', '\u2028', 'é…😀', 'x'.repeat(101)));
const line: fc.Arbitrary<ReviewLine> = fc.record({
  uid: text,
  kind: fc.constantFrom('Pod', 'DaemonSet', 'other'),
  namespace: fc.option(text, { nil: undefined }),
  name: fc.option(text, { nil: undefined }),
  operation: fc.constantFrom('CREATE', 'UPDATE', 'DELETE'),
  features: fc.subarray(['lxcfs', 'agent', 'apparmor', 'fuse']),
  injected: fc.subarray(['lxcfs', 'agent', 'apparmor', 'fuse']),
  skip: fc.option(fc.constantFrom('not_opted_in', 'unsupported_kind'), { nil: undefined }),
  decision: fc.constantFrom('allowed', 'patched', 'denied'),
  durationMs: fc.oneof(fc.double({ min: 0, max: 1e4, noNaN: true }), fc.constant(Number.NaN), fc.constant(0.123)),
});

describe('the review line', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-11-21T09:42:17.123Z'));
  });
  afterEach(() => vi.useRealTimers());

  it("property: writeReviewLine writes exactly the line pino's log.info(line, 'review') writes", async () => {
    const { stream, lines } = capture();
    const log = createLogger('info', stream);
    await fc.assert(
      // pino on Node < 25 writes a lone surrogate raw (it becomes U+FFFD on stdout); JSON.stringify escapes it, as
      // pino does from Node 25 on: checked below.
      fc.asyncProperty(line.filter((l) => ![l.uid, l.namespace, l.name].some((t) => typeof t === 'string' && LONE_SURROGATE.test(t))), async (fields) => {
        lines.length = 0;
        writeReviewLine(log, fields);
        log.info(fields, 'review');
        await new Promise((resolve) => setImmediate(resolve));
        expect(lines).toHaveLength(2);
        expect(lines[0]).toBe(lines[1]);
        expect(JSON.parse(lines[0]!)).toMatchObject({ level: 30, time: '2026-11-21T09:42:17.123Z', service: 'podvisor', msg: 'review', uid: fields.uid });
      }),
      { numRuns: 500 },
    );
  });

  it('a lone surrogate is escaped, so the line stays valid JSON and keeps the text', async () => {
    const { stream, lines } = capture();
    const log = createLogger('info', stream);
    writeReviewLine(log, { uid: '\ud800x', kind: 'Pod', namespace: '\udc00', name: undefined, operation: 'CREATE', features: [], injected: [], skip: undefined, decision: 'allowed', durationMs: 1 });
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines[0]).toContain('"uid":"\\ud800x"');
    expect(JSON.parse(lines[0]!)).toMatchObject({ uid: '\ud800x', namespace: '\udc00' });
  });

  it('is not written above info; a generateName that is not a string is logged by pino as it is', async () => {
    const { stream, lines } = capture();
    const log = createLogger('warn', stream);
    const fields: ReviewLine = { uid: 'u', kind: 'Pod', namespace: 'ns', name: { odd: [1] }, operation: 'CREATE', features: [], injected: [], skip: 'not_opted_in', decision: 'allowed', durationMs: 1 };
    writeReviewLine(log, fields);
    log.level = 'info';
    writeReviewLine(log, fields);
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines.map((l) => JSON.parse(l))).toEqual([expect.objectContaining({ msg: 'review', name: { odd: [1] } })]);
  });

  it('the time is formatted once per millisecond and follows the clock', async () => {
    const { stream, lines } = capture();
    const log = createLogger('info', stream);
    log.info('a');
    vi.setSystemTime(new Date('2026-11-21T09:42:17.124Z'));
    log.info('b');
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines.map((l) => JSON.parse(l).time)).toEqual(['2026-11-21T09:42:17.123Z', '2026-11-21T09:42:17.124Z']);
  });
});
