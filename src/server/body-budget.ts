import type { IncomingMessage } from 'node:http';

export interface BodyLimits {
  /** One body, in bytes: larger is a 413 before or while it is read (fastify's bodyLimit). */
  readonly maxBytes: number;
  /** Bodies being received at once, over all connections. */
  readonly maxInFlight: number;
  /** Bytes the bodies being received may hold together (each counted at its declared length). */
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

export interface BodyBudget {
  /** A request arrived (the server's request handler, before fastify): its body now counts against the budget. */
  admit(request: IncomingMessage): void;
  /** Its body has been read (the content-type parser): it no longer counts. */
  release(request: IncomingMessage): void;
  /** Bodies being received now, and the bytes they may hold. */
  inFlight(): { bodies: number; bytes: number };
}

interface Receiving {
  readonly request: IncomingMessage;
  readonly bytes: number;
}

/**
 * The bodies in flight, bounded together across connections: a client that opens many requests and stalls mid-body
 * holds at most `maxInFlightBytes` together. fastify reads each body (its own string reader, the cheapest way it has);
 * this only counts them: a body counts at its declared Content-Length (at most `maxBytes`, which fastify enforces
 * while reading), from its request's arrival until fastify hands it to the parser. Over either limit the body that has
 * been arriving the longest is shed (its connection closed): a stalled body is always the oldest, and a fresh review
 * — a few KiB arriving at once — keeps being answered. The header and body timeouts (serverFactory in
 * admission-app.ts) shed the rest. No timer, no listener and no work per chunk: a request that ends without reaching
 * the parser (aborted, or answered without its body being read and its connection closed) is dropped from the count
 * when the count next runs over a limit, and one declared over `maxBytes` is never counted (fastify answers 413 and
 * closes without reading it).
 */
export function createBodyBudget(limits: BodyLimits): BodyBudget {
  // Insertion order is arrival order: the first entry is the oldest body still arriving.
  const receiving = new Map<IncomingMessage, Receiving>();
  let bytes = 0;

  const remove = (entry: Receiving): void => {
    receiving.delete(entry.request);
    bytes -= entry.bytes;
  };
  const over = () => receiving.size > limits.maxInFlight || bytes > limits.maxInFlightBytes;
  /**
   * Bodies that ended without reaching the parser no longer hold anything. A request answered without its body being
   * read (a 404, a 413) is neither complete nor destroyed once Node has finished its response; its closed connection
   * says it is over.
   */
  const forgetEnded = (): void => {
    for (const entry of receiving.values()) {
      const { request } = entry;
      if (request.destroyed || request.complete || request.socket.destroyed) remove(entry);
    }
  };
  const shedOldest = (except: Receiving): boolean => {
    for (const entry of receiving.values()) {
      if (entry === except) continue;
      remove(entry);
      // Closed: nothing is answered on a connection that is shed; fastify's reader ends with the socket.
      entry.request.socket.destroy();
      return true;
    }
    return false;
  };

  return {
    inFlight: () => ({ bodies: receiving.size, bytes }),
    admit(request) {
      const declared = request.headers['content-length'];
      // No body to read (GET, `Content-Length: 0`): nothing to count.
      if ((declared === undefined || declared === '0') && request.headers['transfer-encoding'] === undefined) return;
      // A body without a length (chunked) may grow to the limit.
      const length = declared === undefined ? limits.maxBytes : Number(declared) || 0;
      // Over the limit: fastify answers 413 without reading a byte of it.
      if (length > limits.maxBytes) return;
      const entry: Receiving = { request, bytes: length };
      receiving.set(request, entry);
      bytes += length;
      if (!over()) return;
      forgetEnded();
      while (over() && shedOldest(entry));
    },
    release(request) {
      const entry = receiving.get(request);
      if (entry !== undefined) remove(entry);
    },
  };
}

/** The body as JSON (any Content-Type: what is not JSON is a 400). */
export function parseJsonBody(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new BodyError(`body: not valid JSON (${(err as Error).message})`, 400, 'PODVISOR_INVALID_JSON');
  }
}
