import { pino, type Logger } from 'pino';
import type { Operation } from '../admission/types.js';
import type { FeatureName } from '../features/feature.js';
import type { SkipReason } from '../mutation/pipeline.js';

export type { Logger };

/**
 * stdout, written asynchronously: lines collect in a buffer that is written (off the request path) once it holds
 * LOG_BUFFER_BYTES, at least every LOG_FLUSH_MS, on `flushLog` (config reload, shutdown) and synchronously when the
 * process exits (process.exit, an uncaught exception: pino's exit hook). Lost only on SIGKILL: at most the last
 * LOG_FLUSH_MS of lines. Past LOG_MAX_BUFFER_BYTES (stdout not draining) lines are dropped rather than the server blocked.
 */
const LOG_BUFFER_BYTES = 16 * 1024;
const LOG_MAX_WRITE_BYTES = 64 * 1024;
const LOG_FLUSH_MS = 250;
const LOG_MAX_BUFFER_BYTES = 16 * 1024 * 1024;

/**
 * pino's sonic-boom destination for stdout, fed Buffers. In its default (string) mode sonic-boom measures the UTF-8
 * length of the whole string it is accumulating on every line written, so a line cost more the fuller the buffer
 * was (measured: 2x a line's formatting at 4 KiB, 8x at 64 KiB); in buffer mode it only adds lengths, and each line
 * is encoded once, here.
 */
function stdoutDestination(): pino.DestinationStream & { flushSync(): void; readonly fd: number } {
  const boom = pino.destination({ dest: 1, sync: false, contentMode: 'buffer', minLength: LOG_BUFFER_BYTES, maxWrite: LOG_MAX_WRITE_BYTES, maxLength: LOG_MAX_BUFFER_BYTES, periodicFlush: LOG_FLUSH_MS });
  const buffers = boom as unknown as { write(chunk: Buffer): boolean; flushSync(): void; readonly fd: number };
  return {
    // Looked up on every call: on EPIPE pino replaces the destination's methods with no-ops.
    write: (line: string) => buffers.write(Buffer.from(line)),
    flushSync: () => buffers.flushSync(),
    get fd() {
      return buffers.fd;
    },
  };
}

/** Loggers made by createLogger: their review lines are formatted by writeReviewLine (no formatters, mixins, hooks). */
const plainLoggers = new WeakSet<Logger>();

/**
 * pino's `isoTime`, formatted once per millisecond: at thousands of lines a second, Date#toISOString was as costly as
 * the rest of the review line.
 */
function isoTimeOncePerMillisecond(): () => string {
  let millis = -1;
  let text = '';
  return () => {
    const now = Date.now();
    if (now !== millis) {
      millis = now;
      text = `,"time":"${new Date(now).toISOString()}"`;
    }
    return text;
  };
}

/** JSON lines on stdout (tests: another destination). Whole objects and secrets are never logged at info. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  const stream = destination ?? stdoutDestination();
  const log = pino({ level, base: { service: 'podvisor' }, timestamp: isoTimeOncePerMillisecond() }, stream);
  plainLoggers.add(log);
  return log;
}

/** The fields of the one line logged per review (msg "review"), in the order they are written. */
export interface ReviewLine {
  readonly uid: string;
  readonly kind: string;
  readonly namespace: string | undefined;
  /** The object's name, or its generateName (which a direct POST may send as anything). */
  readonly name: unknown;
  readonly operation: Operation;
  readonly features: readonly FeatureName[];
  readonly injected: readonly FeatureName[];
  readonly skip: SkipReason | undefined;
  readonly decision: 'allowed' | 'patched' | 'denied';
  readonly durationMs: number;
}

/** A list of podvisor's own names (nothing to escape), as JSON. */
const nameList = (names: readonly string[]) => (names.length === 0 ? '[]' : `["${names.join('","')}"]`);

interface PinoInternals {
  readonly [key: symbol]: unknown;
}

/**
 * Logs a review at info: exactly the line `log.info(line, 'review')` writes (test/review-line.test.ts compares them),
 * assembled here from pino's own pieces (level prefix, time, bindings, end of line) and written to its stream. The
 * generic path walks the object, dispatches on every value's type and serializes the arrays with a safe-stringify;
 * here each field is known. Strings are escaped by JSON.stringify, as pino does from Node 25 on (before, it leaves a
 * lone surrogate raw). A logger made elsewhere, or a name that is not a string, goes through pino itself.
 */
export function writeReviewLine(log: Logger, line: ReviewLine): void {
  if (!log.isLevelEnabled('info')) return;
  if (!plainLoggers.has(log) || (line.name !== undefined && typeof line.name !== 'string')) {
    log.info(line, 'review');
    return;
  }
  const internals = log as unknown as PinoInternals;
  const { symbols } = pino;
  const prefix = (internals[symbols.lsCacheSym] as Record<number, string>)[log.levels.values['info']!]!;
  const time = (internals[symbols.timeSym] as () => string)();
  let text = `${prefix}${time}${internals[symbols.chindingsSym] as string},"uid":${JSON.stringify(line.uid)},"kind":${JSON.stringify(line.kind)}`;
  if (line.namespace !== undefined) text += `,"namespace":${JSON.stringify(line.namespace)}`;
  if (line.name !== undefined) text += `,"name":${JSON.stringify(line.name)}`;
  // Operation (checked by the envelope check), feature names, skip reason and decision are podvisor's own words.
  text += `,"operation":"${line.operation}","features":${nameList(line.features)},"injected":${nameList(line.injected)}`;
  if (line.skip !== undefined) text += `,"skip":"${line.skip}"`;
  text += `,"decision":"${line.decision}","durationMs":${Number.isFinite(line.durationMs) ? line.durationMs : null},"msg":"review"${internals[symbols.endSym] as string}`;
  (internals[symbols.streamSym] as { write(text: string): void }).write(text);
}

/** Writes what is buffered now, synchronously (before a level change, at shutdown). No-op for other streams. */
export function flushLog(log: Logger): void {
  const stream = (log as unknown as Record<symbol, unknown>)[pino.symbols.streamSym] as { flushSync?: () => void; fd?: number } | undefined;
  if (typeof stream?.flushSync !== 'function' || (stream.fd ?? -1) < 0) return;
  try {
    stream.flushSync();
  } catch {
    // A closed or broken stdout: nothing left to flush to.
  }
}
