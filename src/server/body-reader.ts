import type { IncomingMessage } from 'node:http';

export interface BodyLimits {
  /** One body, in bytes: larger is a 413 before or while it is read. */
  readonly maxBytes: number;
  /** Bodies being received at once, over all connections. */
  readonly maxInFlight: number;
  /** Bytes buffered by the bodies being received, together. */
  readonly maxInFlightBytes: number;
}

/** A body podvisor will not read: the error handler answers `statusCode` with `message`. */
export class BodyError extends Error {
  readonly statusCode: number;
  readonly code: string;
  constructor(message: string, statusCode: number, code: string) {
    super(message);
    this.statusCode = statusCode;
    this.code = code;
  }
}

export interface BodyReader {
  /** Reads one request body and JSON-parses it (any Content-Type: what is not JSON is a 400). */
  read(request: IncomingMessage, done: (err: Error | null, body?: unknown) => void): void;
  /** Bodies being received now, and the bytes they hold. */
  inFlight(): { bodies: number; bytes: number };
}

interface Receiving {
  bytes: number;
  shed(): void;
}

/**
 * Bodies are read here, not by fastify, so that the memory they hold is bounded across connections: a client that
 * opens many requests and stalls mid-body holds at most `maxInFlightBytes` together. Over either limit, the body that
 * has been arriving the longest is shed (its connection closed): a stalled body is always the oldest, and a fresh
 * review — a few KiB arriving at once — keeps being answered. The header and body timeouts (serverFactory in
 * admission-app.ts) shed the rest.
 */
export function createBodyReader(limits: BodyLimits): BodyReader {
  // Insertion order is arrival order: the first entry is the oldest body still arriving.
  const receiving = new Map<IncomingMessage, Receiving>();
  let bytes = 0;

  const shedOldest = (except: IncomingMessage): void => {
    for (const [request, entry] of receiving) {
      if (request === except) continue;
      entry.shed();
      return;
    }
  };

  return {
    inFlight: () => ({ bodies: receiving.size, bytes }),
    read(request, done) {
      const declared = Number(request.headers['content-length']);
      if (declared > limits.maxBytes) {
        done(new BodyError(`body too large: ${declared} bytes, the limit is ${limits.maxBytes}`, 413, 'FST_ERR_CTP_BODY_TOO_LARGE'));
        return;
      }
      const chunks: Buffer[] = [];
      let finished = false;
      const finish = (err: Error | null, body?: unknown): void => {
        if (finished) return;
        finished = true;
        const entry = receiving.get(request);
        if (entry !== undefined) bytes -= entry.bytes;
        receiving.delete(request);
        request.removeListener('data', onData);
        request.removeListener('end', onEnd);
        request.removeListener('close', onClose);
        done(err, body);
      };
      const entry: Receiving = {
        bytes: 0,
        shed() {
          // Closed first: nothing is answered on a connection that is shed.
          request.socket.destroy();
          finish(new BodyError('body: shed, too many bodies in flight (slow or stalled client)', 503, 'PODVISOR_BODY_SHED'));
        },
      };
      const onData = (chunk: Buffer): void => {
        if (entry.bytes + chunk.length > limits.maxBytes) {
          finish(new BodyError(`body too large: over the limit of ${limits.maxBytes} bytes`, 413, 'FST_ERR_CTP_BODY_TOO_LARGE'));
          return;
        }
        chunks.push(chunk);
        entry.bytes += chunk.length;
        bytes += chunk.length;
        while (bytes > limits.maxInFlightBytes && receiving.size > 1) shedOldest(request);
      };
      const onEnd = (): void => {
        const text = chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks, entry.bytes).toString('utf8');
        let body: unknown;
        try {
          body = parseJsonBody(text);
        } catch (err) {
          finish(new BodyError(`body: not valid JSON (${(err as Error).message})`, 400, 'PODVISOR_INVALID_JSON'));
          return;
        }
        finish(null, body);
      };
      const onClose = (): void => finish(new BodyError('body: connection closed before the body was complete', 400, 'PODVISOR_BODY_INCOMPLETE'));
      receiving.set(request, entry);
      if (receiving.size > limits.maxInFlight) shedOldest(request);
      request.on('data', onData);
      request.on('end', onEnd);
      request.on('close', onClose);
    },
  };
}

/** Named, so that a CPU profile charges JSON.parse (a built-in, shown as its caller's time) to body parsing. */
function parseJsonBody(text: string): unknown {
  return JSON.parse(text);
}
