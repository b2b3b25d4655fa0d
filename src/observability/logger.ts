import { pino, type Logger } from 'pino';

export type { Logger };

/** JSON lines on stdout. Whole objects and secrets are never logged at info. */
export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'podvisor' }, timestamp: pino.stdTimeFunctions.isoTime });
}
