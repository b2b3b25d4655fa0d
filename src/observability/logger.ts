import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * stdout, written asynchronously: lines collect in a buffer that is written (off the request path) once it holds
 * LOG_BUFFER_BYTES, at least every LOG_FLUSH_MS, on `flushLog` (config reload, shutdown) and synchronously when the
 * process exits (process.exit, an uncaught exception: pino's exit hook). Lost only on SIGKILL: at most the last
 * LOG_FLUSH_MS of lines. Past LOG_MAX_BUFFER_BYTES (stdout not draining) lines are dropped rather than the server blocked.
 */
const LOG_BUFFER_BYTES = 4096;
const LOG_FLUSH_MS = 250;
const LOG_MAX_BUFFER_BYTES = 16 * 1024 * 1024;

/** JSON lines on stdout. Whole objects and secrets are never logged at info. */
export function createLogger(level: string): Logger {
  const stdout = pino.destination({ dest: 1, sync: false, minLength: LOG_BUFFER_BYTES, maxLength: LOG_MAX_BUFFER_BYTES, periodicFlush: LOG_FLUSH_MS });
  return pino({ level, base: { service: 'podvisor' }, timestamp: pino.stdTimeFunctions.isoTime }, stdout);
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
