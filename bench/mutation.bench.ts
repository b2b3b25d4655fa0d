// npm run bench:mutation — the CPU time of the pure core of POST /mutate, in process, no HTTP: the envelope check, the
// mutation (opt-in, features, guard, diff, patch encoding) and the response's serialization, for the scenarios of
// bench/scenarios.ts, every review distinct. The bodies are JSON-parsed ahead of each timed batch (the server's body
// parse is measured by `npm run bench` against the floor). CPU time is process.cpuUsage() over a batch.
//
// Profile it: `node --cpu-prof --import tsx bench/mutation.bench.ts`. BENCH_DIST=<dir> measures another build
// (default dist/, built by `npm run bench:mutation`), so two builds can be compared one after the other.
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { reviewMutation as ReviewMutation } from '../src/admission/mutate-review.js';
import type { parseAdmissionReview as ParseAdmissionReview } from '../src/admission/review.js';
import type { AdmissionResponse } from '../src/admission/types.js';
import type { parseConfig as ParseConfig } from '../src/config/load.js';
import { scenarios } from './scenarios.js';

const DIST = process.env['BENCH_DIST'] ?? fileURLToPath(new URL('../dist', import.meta.url));
const BATCH = Number(process.env['BENCH_BATCH'] ?? 2000);
const BATCHES = Number(process.env['BENCH_BATCHES'] ?? 15);

const { reviewMutation } = (await import(join(DIST, 'admission/mutate-review.js'))) as { reviewMutation: typeof ReviewMutation };
const review = (await import(join(DIST, 'admission/review.js'))) as {
  parseAdmissionReview: typeof ParseAdmissionReview;
  serializeReviewResponse?: (response: AdmissionResponse) => string;
  reviewResponse?: (response: AdmissionResponse) => unknown;
};
const { parseConfig } = (await import(join(DIST, 'config/load.js'))) as { parseConfig: typeof ParseConfig };
// A build without serializeReviewResponse left the serialization to fastify: JSON.stringify of reviewResponse().
const serialize = review.serializeReviewResponse ?? ((response: AdmissionResponse) => JSON.stringify(review.reviewResponse!(response)));

const env = { config: parseConfig({}) };
const answer = (body: unknown) => serialize(reviewMutation(review.parseAdmissionReview(body), env).response);

console.log(`in-process review CPU time (${DIST}), ${BATCHES} batches of ${BATCH} distinct reviews, node ${process.version}`);
for (const scenario of scenarios()) {
  for (let i = 0; i < 5000; i += 1) answer(JSON.parse(scenario.next()));
  const perReview: number[] = [];
  for (let batch = 0; batch < BATCHES; batch += 1) {
    const bodies = Array.from({ length: BATCH }, () => JSON.parse(scenario.next()) as unknown);
    const started = process.cpuUsage();
    for (const body of bodies) answer(body);
    const spent = process.cpuUsage(started);
    perReview.push((spent.user + spent.system) / BATCH);
  }
  perReview.sort((a, b) => a - b);
  const median = perReview[perReview.length >> 1]!;
  console.log(`  ${scenario.name.padEnd(34)} median ${median.toFixed(1).padStart(6)} µs, min ${perReview[0]!.toFixed(1).padStart(6)} µs CPU per review`);
}
