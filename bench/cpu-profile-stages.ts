// CPU time by stage, from a V8 `.cpuprofile` (node --cpu-prof) of a server under load.
// Each sample is charged to the stage of the innermost frame on its stack that belongs to a stage: a JSON.parse
// called by the body parser is "body parse", a JSON.stringify called by pino is "logging". Built-in frames (no URL,
// e.g. JSON.parse itself) and node core belong to their caller; node core under fastify, or under nothing of
// podvisor's (socket reads, TLS, (program)), is "TLS + HTTP", the floor every server pays.
import { readFileSync } from 'node:fs';

export const STAGES = [
  'TLS + HTTP (node core, native)',
  'body read + JSON.parse',
  'review envelope check',
  'framework (fastify routing, hooks, reply)',
  'route handler glue',
  'opt-in and mutation',
  'diff',
  'patch encoding',
  'response serialization',
  'logging',
  'metrics',
  'garbage collection',
  'other',
] as const;
export type Stage = (typeof STAGES)[number];

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber?: number;
}
interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: number[];
}
interface CpuProfile {
  readonly nodes: ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: number[];
  readonly timeDeltas: number[];
}

const LOGGING = /\/node_modules\/(pino|sonic-boom|thread-stream|pino-std-serializers|@pinojs|on-exit-leak-free|quick-format-unescaped|atomic-sleep|fast-redact|safe-stable-stringify)\//;
const METRICS = /\/node_modules\/(prom-client|tdigest|bintrees)\//;
const FRAMEWORK = /\/node_modules\/(fastify|@fastify|find-my-way|avvio|light-my-request|toad-cache|fast-querystring|process-warning|abstract-logging|rfdc|fastq|reusify|secure-json-parse|ret|safe-regex2|json-schema-ref-resolver)\//;
const SERIALIZER = /\/node_modules\/(fast-json-stringify|@fastify\/fast-json-stringify-compiler)\//;
/** What src/admission/patch.ts does to write a patch's JSON and base64; the rest of it is the diff. */
const PATCH_ENCODING = new Set(['encodePatch', 'patchJson', 'valueJson']);
const MUTATION = /\/(src|dist)\/(mutation|features|optin|policy|workload|config|k8s|annotations|json-value)[/.]|\/(src|dist)\/admission\/(mutate-review|object-input)\./;

/** The stage a frame belongs to, or undefined when its caller decides (built-ins, unknown code). */
function frameStage(frame: CallFrame, caller: CallFrame | undefined): Stage | undefined {
  const { url, functionName: name } = frame;
  // A body parser is what fastify's content-type parser calls (JSON.parse, a built-in, shows as its self time).
  if (caller !== undefined && /\/fastify\/lib\/content-type-parser\./.test(caller.url) && /\/(src|dist)\/server\//.test(url)) return 'body read + JSON.parse';
  if (url === '') {
    if (name === '(garbage collector)') return 'garbage collection';
    if (name === '(program)') return 'TLS + HTTP (node core, native)';
    return undefined;
  }
  if (LOGGING.test(url) || /\/observability\/logger\./.test(url)) return 'logging';
  if (METRICS.test(url) || /\/observability\/metrics\./.test(url)) return 'metrics';
  if (/\/admission\/patch\./.test(url)) return PATCH_ENCODING.has(name) ? 'patch encoding' : 'diff';
  if (/\/admission\/review\./.test(url)) return name === 'reviewResponse' || name.startsWith('serialize') ? 'response serialization' : 'review envelope check';
  if (/\/server\/review-response\./.test(url) || SERIALIZER.test(url)) return 'response serialization';
  if (MUTATION.test(url)) return 'opt-in and mutation';
  // The body parser (podvisor: fastify's string reader and `parseJsonBody`; the floor: `collectBody`/`parseBody`).
  if (/\/server\/body-budget\./.test(url) || name === 'parseJsonBody' || name === 'collectBody' || name === 'parseBody' || /\/fastify\/lib\/content-type-parser\./.test(url)) return 'body read + JSON.parse';
  if (/\/fastify\/lib\/reply\./.test(url) && name === 'serialize') return 'response serialization';
  if (FRAMEWORK.test(url)) return 'framework (fastify routing, hooks, reply)';
  if (/\/(src|dist)\/server\//.test(url)) return 'route handler glue';
  return undefined;
}

const isNodeCore = (frame: CallFrame) => frame.url.startsWith('node:') || frame.url.startsWith('internal/');
/** Stages whose calls into node core are HTTP work (writing the response, reading the socket), not their own. */
const HTTP_CALLERS: ReadonlySet<Stage> = new Set(['framework (fastify routing, hooks, reply)', 'route handler glue', 'other']);

export interface StageTotals {
  /** CPU microseconds per stage inside the window. */
  readonly micros: Record<Stage, number>;
  /** Wall-clock length of the window, µs. */
  readonly windowMicros: number;
}

export interface ProfileIndex {
  /** CPU time by stage for the samples taken between `from` and `to` (process.hrtime, µs: the profile's clock). */
  window(from: number, to: number): StageTotals;
  /** The frames that took the most self time in `stage` inside the window, µs each (BENCH_DETAIL=1). */
  topFrames(from: number, to: number, stage: Stage, count: number): [frame: string, micros: number][];
}

const frameName = ({ functionName, url, lineNumber }: CallFrame) =>
  `${functionName || '(anonymous)'} ${url.replace(/^.*\/(node_modules|src|dist|bench)\//, '$1/')}${lineNumber === undefined || url === '' ? '' : `:${lineNumber + 1}`}`;

export function readProfile(file: string): ProfileIndex {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const stageOf = new Map<number, Stage | null>();
  const resolve = (id: number): Stage | null => {
    const known = stageOf.get(id);
    if (known !== undefined) return known;
    const node = byId.get(id)!;
    if (node.callFrame.functionName === '(idle)') return null;
    const up = parent.get(id);
    const own = frameStage(node.callFrame, up === undefined ? undefined : byId.get(up)!.callFrame);
    // Unclaimed frames belong to their caller. Node core belongs to its caller too (sonic-boom's fs.write is
    // logging), except under fastify or nothing at all: that is the HTTP and TLS work every server does.
    const inherited = up === undefined ? 'other' : (resolve(up) ?? 'other');
    const stage = own ?? (isNodeCore(node.callFrame) && HTTP_CALLERS.has(inherited) ? 'TLS + HTTP (node core, native)' : inherited);
    stageOf.set(id, stage);
    return stage;
  };
  // Sample i is taken at start + Σ deltas[0..i] and stands for the time until the next sample.
  const times: number[] = [];
  let t = profile.startTime;
  for (const delta of profile.timeDeltas) times.push((t += delta));
  return {
    window(from, to) {
      const micros = Object.fromEntries(STAGES.map((s) => [s, 0])) as Record<Stage, number>;
      for (let i = 0; i < profile.samples.length; i += 1) {
        const at = times[i]!;
        if (at < from || at >= to) continue;
        const stage = resolve(profile.samples[i]!);
        if (stage === null) continue;
        const next = i + 1 < times.length ? times[i + 1]! : profile.endTime;
        micros[stage] += next - at;
      }
      return { micros, windowMicros: to - from };
    },
    topFrames(from, to, stage, count) {
      const self = new Map<string, number>();
      for (let i = 0; i < profile.samples.length; i += 1) {
        const at = times[i]!;
        if (at < from || at >= to || resolve(profile.samples[i]!) !== stage) continue;
        const node = byId.get(profile.samples[i]!)!;
        const name = frameName(node.callFrame);
        self.set(name, (self.get(name) ?? 0) + ((i + 1 < times.length ? times[i + 1]! : profile.endTime) - at));
      }
      return [...self].sort((a, b) => b[1] - a[1]).slice(0, count);
    },
  };
}
