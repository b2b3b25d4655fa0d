// A bounded load generator for lifecycle tests, modelled on the kube-apiserver calling a webhook Service: `connections`
// workers each post fixture reviews back to back over their own keep-alive HTTPS connection (loopback only). Every
// request ends up counted as exactly one of:
// - ok: HTTP 200 with a valid AdmissionReview (uid echoed, allowed boolean, patchType iff patch);
// - refused: the TCP connection was refused (ECONNREFUSED): the server is no longer listening, a clean refusal;
// - failed: anything else (reset, hang-up, timeout, another status, an invalid answer).
// After `removeEndpoint()` (the pod turned not-ready and left the Service's endpoints), a worker keeps using its open
// keep-alive connection, as the apiserver does (conntrack keeps it pointed at this pod), but never opens a new one:
// a new connection would go to another endpoint, so the worker stops (`rerouted`).
import { Agent, request } from 'node:https';

export interface LoadBody {
  readonly name: string;
  /** The review as JSON text with the uid replaced by UID (below). */
  readonly template: string;
}

export const UID = '00000000-load-0000-0000-000000000000';

export interface Failure {
  readonly body: string;
  readonly at: number;
  readonly reason: string;
  readonly reusedSocket: boolean;
}

export interface LoadReport {
  readonly ok: number;
  readonly refused: number;
  /** Workers that stopped because their connection was closed after the endpoint was removed. */
  readonly rerouted: number;
  readonly failed: Failure[];
  /** ok answers with a patch and without, per body name, for the requests sent in each period (see `mark()`). */
  readonly periods: Record<string, { patched: number; unpatched: number }>[];
  /** Requests that were still in flight when `inFlightAt()` was called, and how they ended. */
  readonly inFlightAtMark: { ok: number; refused: number; failed: number };
}

export interface Load {
  /** ok answers so far. */
  ok(): number;
  /** Starts a new period: requests sent from now on are counted in it. Returns its index (the first period is 0). */
  mark(): number;
  /** Records the requests in flight right now (e.g. at SIGTERM); the report says how they ended. */
  snapshotInFlight(): number;
  /** The endpoint is gone from the Service: open connections are still used, no new one is opened. */
  removeEndpoint(): void;
  /** Waits for `count` more ok answers (bounded). */
  waitForOk(count: number, timeoutMs?: number): Promise<void>;
  /** Stops sending, waits for the requests in flight, and reports. Workers also stop by themselves when refused. */
  stop(): Promise<LoadReport>;
}

function answerProblem(status: number, text: string, uid: string): string | undefined {
  if (status !== 200) return `HTTP ${status}: ${text.slice(0, 200)}`;
  let answer: { apiVersion?: unknown; kind?: unknown; response?: Record<string, unknown> };
  try {
    answer = JSON.parse(text);
  } catch {
    return `not JSON: ${text.slice(0, 200)}`;
  }
  const r = answer.response;
  if (answer.apiVersion !== 'admission.k8s.io/v1' || answer.kind !== 'AdmissionReview' || r === undefined) return 'not an AdmissionReview';
  if (r['uid'] !== uid) return `uid ${JSON.stringify(r['uid'])} instead of ${uid}`;
  if (typeof r['allowed'] !== 'boolean') return 'allowed is not a boolean';
  if ((r['patch'] === undefined) !== (r['patchType'] === undefined)) return 'patchType iff patch violated';
  return undefined;
}

export function startLoad(options: { port: number; ca: string[]; connections: number; bodies: readonly LoadBody[]; maxSeconds: number }): Load {
  // One agent per worker, so each worker has exactly one keep-alive connection at a time.
  const agents = Array.from({ length: options.connections }, () => new Agent({ ca: options.ca, keepAlive: true, maxSockets: 1 }));
  const started = Date.now();
  let stopped = false;
  let endpointRemoved = false;
  let rerouted = 0;
  let period = 0;
  let sequence = 0;
  let okCount = 0;
  let refused = 0;
  const failed: Failure[] = [];
  const periods: LoadReport['periods'] = [];
  const counts = (index: number, name: string) => ((periods[index] ??= {})[name] ??= { patched: 0, unpatched: 0 });
  const inFlight = new Set<number>();
  let watched = new Set<number>();
  const inFlightAtMark = { ok: 0, refused: 0, failed: 0 };
  const okWaiters: { target: number; resolve: () => void }[] = [];

  const one = (agent: Agent, body: LoadBody, id: number): Promise<'ok' | 'refused' | 'failed'> =>
    new Promise((resolve) => {
      const uid = `00000000-load-0000-0000-${String(id).padStart(12, '0')}`;
      const text = body.template.replace(UID, uid);
      const sentIn = period;
      let reusedSocket = false;
      const fail = (reason: string) => {
        failed.push({ body: body.name, at: Date.now() - started, reason, reusedSocket });
        resolve('failed');
      };
      const req = request(
        { host: '127.0.0.1', servername: 'localhost', port: options.port, path: '/mutate', method: 'POST', agent, timeout: 15_000, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (err) => fail(`response: ${(err as NodeJS.ErrnoException).code ?? err.message}`));
          res.on('end', () => {
            const answer = Buffer.concat(chunks).toString('utf8');
            const problem = answerProblem(res.statusCode ?? 0, answer, uid);
            if (problem !== undefined) return fail(problem);
            okCount += 1;
            const bucket = counts(sentIn, body.name);
            if (answer.includes('"patchType":"JSONPatch"')) bucket.patched += 1;
            else bucket.unpatched += 1;
            for (const w of [...okWaiters]) if (okCount >= w.target) (okWaiters.splice(okWaiters.indexOf(w), 1), w.resolve());
            resolve('ok');
          });
        },
      );
      req.on('socket', () => (reusedSocket = req.reusedSocket));
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (err) => {
        if ((err as NodeJS.ErrnoException).code === 'ECONNREFUSED') {
          refused += 1;
          resolve('refused');
        } else fail(`${(err as NodeJS.ErrnoException).code ?? ''} ${err.message}`);
      });
      req.end(text);
    });

  const worker = async (index: number): Promise<void> => {
    const agent = agents[index]!;
    for (let n = index; !stopped && Date.now() - started < options.maxSeconds * 1000; n += options.connections) {
      const open = Object.values(agent.freeSockets).some((list) => (list?.length ?? 0) > 0);
      if (endpointRemoved && !open) {
        rerouted += 1;
        return;
      }
      const id = (sequence += 1);
      inFlight.add(id);
      const outcome = await one(agent, options.bodies[n % options.bodies.length]!, id);
      inFlight.delete(id);
      if (watched.has(id)) inFlightAtMark[outcome] += 1;
      // The server is gone: the apiserver would send elsewhere; this worker is done.
      if (outcome === 'refused') return;
    }
  };
  const workers = Promise.all(Array.from({ length: options.connections }, (_, i) => worker(i)));

  return {
    ok: () => okCount,
    mark: () => (period += 1),
    removeEndpoint: () => {
      endpointRemoved = true;
    },
    snapshotInFlight: () => {
      watched = new Set(inFlight);
      return watched.size;
    },
    waitForOk(count, timeoutMs = 10_000) {
      const target = okCount + count;
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`fewer than ${count} ok answers within ${timeoutMs} ms (failed: ${JSON.stringify(failed.slice(0, 3))})`)), timeoutMs);
        okWaiters.push({ target, resolve: () => (clearTimeout(timer), resolve()) });
      });
    },
    async stop() {
      stopped = true;
      await workers;
      for (const agent of agents) agent.destroy();
      return { ok: okCount, refused, rerouted, failed, periods, inFlightAtMark };
    },
  };
}
