// npm run bench:mutation — the CPU time of the pure core of POST /mutate, in process, no HTTP: the envelope check, the
// mutation (opt-in, features, guard, diff, patch encoding) and the response's serialization, for the scenarios of
// bench/scenarios.ts, every review distinct. The bodies are JSON-parsed ahead of each timed batch (the server's body
// parse is measured by `npm run bench` against the floor). CPU time is process.cpuUsage() over a batch.
//
// Profile it: `node --cpu-prof --import tsx bench/mutation.bench.ts`. BENCH_BASELINE=<dir>/cli.js (as for `npm run
// bench`) loads another build too, and the two are timed in alternated batches in the same process.
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import type { reviewMutation as ReviewMutation } from '../src/admission/mutate-review.js';
import type { parseAdmissionReview as ParseAdmissionReview } from '../src/admission/review.js';
import type { AdmissionResponse } from '../src/admission/types.js';
import type { parseConfig as ParseConfig } from '../src/config/load.js';
import { scenarios } from './scenarios.js';

const BATCH = Number(process.env['BENCH_BATCH'] ?? 500);
const BATCHES = Number(process.env['BENCH_BATCHES'] ?? 40);

interface Build {
  readonly label: string;
  answer(body: unknown): string;
}

/** The pure core of one build (dist/ or a baseline), loaded side by side: the module graphs of two dirs are separate. */
async function load(label: string, dist: string): Promise<Build> {
  const { reviewMutation } = (await import(join(dist, 'admission/mutate-review.js'))) as { reviewMutation: typeof ReviewMutation };
  const review = (await import(join(dist, 'admission/review.js'))) as {
    parseAdmissionReview: typeof ParseAdmissionReview;
    serializeReviewResponse?: (response: AdmissionResponse) => string;
    reviewResponse?: (response: AdmissionResponse) => unknown;
  };
  const { parseConfig } = (await import(join(dist, 'config/load.js'))) as { parseConfig: typeof ParseConfig };
  // A build without serializeReviewResponse left the serialization to fastify: JSON.stringify of reviewResponse().
  const serialize = review.serializeReviewResponse ?? ((response: AdmissionResponse) => JSON.stringify(review.reviewResponse!(response)));
  const env = { config: parseConfig({}) };
  return { label, answer: (body) => serialize(reviewMutation(review.parseAdmissionReview(body), env).response) };
}

const builds = [
  ...(process.env['BENCH_BASELINE'] === undefined ? [] : [await load('baseline', dirname(process.env['BENCH_BASELINE']))]),
  await load('podvisor', fileURLToPath(new URL('../dist', import.meta.url))),
];
const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!;

console.log(`in-process review CPU time, ${BATCHES} batches of ${BATCH} distinct reviews per build, builds alternated batch by batch, node ${process.version}`);
// BENCH_ONLY=<text>: only the scenarios whose name contains it (e.g. to profile one).
for (const scenario of scenarios().filter((s) => s.name.includes(process.env['BENCH_ONLY'] ?? ''))) {
  for (const build of builds) for (let i = 0; i < 5000; i += 1) build.answer(JSON.parse(scenario.next()));
  const perReview: number[][] = builds.map(() => []);
  for (let batch = 0; batch < BATCHES; batch += 1) {
    for (const [i, build] of builds.entries()) {
      const bodies = Array.from({ length: BATCH }, () => JSON.parse(scenario.next()) as unknown);
      const started = process.cpuUsage();
      for (const body of bodies) build.answer(body);
      const spent = process.cpuUsage(started);
      perReview[i]!.push((spent.user + spent.system) / BATCH);
    }
  }
  console.log(`  ${scenario.name}`);
  for (const [i, build] of builds.entries()) {
    // The ratio batch by batch (the same moment of a shared machine), then its median.
    const ratio = i === 0 ? '' : `, ${median(perReview[i]!.map((v, b) => v / perReview[0]![b]!)).toFixed(2)}x the baseline`;
    console.log(`    ${build.label.padEnd(9)} median ${median(perReview[i]!).toFixed(1).padStart(6)} µs, min ${Math.min(...perReview[i]!).toFixed(1).padStart(6)} µs CPU per review${ratio}`);
  }
}
