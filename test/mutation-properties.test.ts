// Property tests of the pure pipeline behind POST /mutate and POST /validate (JSON parser → envelope check →
// reviewMutation / reviewValidation), with generated reviews: random pod specs in every handled kind and operation,
// wrong types in every envelope field and in the object, random and truncated JSON, huge and deeply nested bodies.
//
// PODVISOR_FUZZ_RUNS sets the number of generated reviews per property (default 1 000: 5 000 in all, about 5 s).
// Long run (at least 100 000 generated reviews):
//   PODVISOR_FUZZ_RUNS=100000 npx vitest run test/mutation-properties.test.ts
// A failure prints fast-check's seed and path; PODVISOR_FUZZ_SEED replays a seed.
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import type { MutationEnvironment } from '../src/mutation/pipeline.js';
import { answerProblems, answerWithoutNetwork, type Endpoint } from './support/answer-properties.js';
import { KNOWN_BUGS, type KnownBug } from './support/known-bugs.js';
import { fixtureReview } from './support/harness.js';
import { changedObjectField, deeplyNested, rawBody, review, wrongEnvelope } from './support/review-arbitraries.js';

const RUNS = Number(process.env['PODVISOR_FUZZ_RUNS'] ?? 1000);
const SEED = process.env['PODVISOR_FUZZ_SEED'] === undefined ? undefined : Number(process.env['PODVISOR_FUZZ_SEED']);
/** Generous: about 2 ms per generated review, so the long run is bounded too. */
const TIMEOUT = 30_000 + RUNS * 4;
const params = { numRuns: RUNS, ...(SEED !== undefined ? { seed: SEED } : {}) };

/** The configurations the properties run under: defaults, ≤ 1.29 AppArmor annotations and defaults on, policies. */
const ENVIRONMENTS: Record<string, MutationEnvironment> = {
  default: { config: parseConfig({}) },
  'kubernetes 1.29, legacy capabilities, defaults on': {
    config: parseConfig({
      kubernetesVersion: '1.29',
      agent: { capabilityModel: 'legacy', bpfMemlock: false },
      defaults: { lxcfs: true },
      lxcfs: { files: ['/proc/cpuinfo', '/proc/meminfo', '/proc/stat', '/proc/slabinfo', '/sys/devices/system/cpu'] },
      namespaces: { shop: { fuse: true, apparmor: 'runtime/default', agent: 'process', labels: { 'podvisor.io/agent': 'host-metrics' } } },
    }),
  },
  'policies: privileged denied, baseline and restricted namespaces': {
    config: parseConfig({
      policy: {
        default: { warn: { level: 'baseline' }, privileged: 'deny' },
        namespaces: [
          { name: 'restricted', match: { names: ['restricted'] }, enforce: { level: 'baseline' } },
          {
            name: 'agents',
            match: { names: ['agents', 'observability'] },
            enforce: { level: 'restricted' },
            audit: { level: 'restricted' },
            allowances: [{ name: 'agent', capabilities: ['SYS_PTRACE', 'DAC_READ_SEARCH'], hostPID: true, hostPaths: [{ pathPrefix: '/var/log' }], fuse: true }],
          },
        ],
      },
    }),
  },
};
const environment = fc.constantFrom(...Object.keys(ENVIRONMENTS));
const endpoint = fc.constantFrom<Endpoint>('/mutate', '/mutate', '/mutate', '/validate');

const knownBugHits = new Map<string, number>();
afterAll(() => {
  if (knownBugHits.size > 0) console.log(`inputs skipped because they hit a known bug: ${[...knownBugHits].map(([n, c]) => `${c} × ${n}`).join('; ')}`);
});

/** One generated body through the pipeline; the property fails with every problem of the answer. */
function holds(path: Endpoint, envName: string, text: string, wellTyped: boolean, knownBugs: readonly KnownBug[] = KNOWN_BUGS): void {
  const env = ENVIRONMENTS[envName]!;
  let answer;
  try {
    answer = answerWithoutNetwork(path, text, env);
  } catch (err) {
    const known = knownBugs.find((b) => b.matches(err as Error));
    if (known === undefined) throw err;
    knownBugHits.set(known.name, (knownBugHits.get(known.name) ?? 0) + 1);
    fc.pre(false);
    return;
  }
  const problems = answerProblems(path, text, answer, env, { wellTyped });
  if (problems.length > 0) throw new Error(`${path} (${envName}): ${problems.join('\n')}`);
  tally(answer);
}

/** What the generated reviews got, so a property that only ever saw skips or 400s cannot pass unnoticed. */
const tallies = { patched: 0, denied: 0, unchanged: 0, rejected: 0 };
function tally(answer: { status: number; json: unknown }): void {
  const response = (answer.json as { response?: { allowed?: boolean; patch?: string } }).response;
  if (answer.status !== 200) tallies.rejected += 1;
  else if (response?.allowed === false) tallies.denied += 1;
  else if (response?.patch !== undefined) tallies.patched += 1;
  else tallies.unchanged += 1;
}
function resetTallies(): typeof tallies {
  const before = { ...tallies };
  Object.assign(tallies, { patched: 0, denied: 0, unchanged: 0, rejected: 0 });
  return before;
}

describe(`pipeline properties (${RUNS} generated reviews per property)`, () => {
  it('random pod specs in every kind and operation: valid answer, clean patch, idempotent, no new duplicate or violation', () => {
    resetTallies();
    fc.assert(fc.property(endpoint, environment, review, (path, env, r) => holds(path, env, JSON.stringify(r.body), true)), params);
    const seen = resetTallies();
    console.log(`random pod specs: ${JSON.stringify(seen)}`);
    // The generator must reach the interesting paths: patches, denials by policy, and untouched objects (each is
    // over 10 % of the reviews; a run of fewer than 100 is too small to tell).
    if (RUNS >= 100) {
      expect(seen.patched).toBeGreaterThan(RUNS * 0.1);
      expect(seen.denied).toBeGreaterThan(0);
      expect(seen.unchanged).toBeGreaterThan(0);
    }
  }, TIMEOUT);

  it('a wrong type or a missing value in any envelope field: 400 with a message, or a valid answer', () => {
    fc.assert(fc.property(endpoint, environment, wrongEnvelope, (path, env, body) => holds(path, env, JSON.stringify(body), false)), params);
  }, TIMEOUT);

  it('random text, random JSON and truncated reviews: 400 with a message, or a valid answer', () => {
    fc.assert(fc.property(endpoint, environment, rawBody, (path, env, text) => holds(path, env, text, false)), params);
  }, TIMEOUT);
});

describe('huge and deeply nested reviews (under the 8 MiB body limit)', () => {
  const big = () => {
    const r = fixtureReview('review-01-pod-create.json');
    return { r, object: r.request['object'] as { metadata: { annotations: Record<string, string> }; spec: Record<string, unknown> } };
  };

  it('a Pod with 300 containers, 300 volumes and 1 000 annotations: answered, patch valid and idempotent', () => {
    const { r, object } = big();
    const containers = object.spec['containers'] as Record<string, unknown>[];
    for (let i = 0; i < 300; i += 1) containers.push({ ...structuredClone(containers[0]!), name: `c${i}` });
    const volumes = object.spec['volumes'] as Record<string, unknown>[];
    for (let i = 0; i < 300; i += 1) volumes.push({ name: `v${i}`, emptyDir: {} });
    for (let i = 0; i < 1000; i += 1) object.metadata.annotations[`example.com/k~${i}/x`] = `ü${'v'.repeat(100)}`;
    object.metadata.annotations['podvisor.io/fuse'] = 'true';
    object.metadata.annotations['podvisor.io/agent'] = 'process,ebpf-tracing';
    const text = JSON.stringify(r);
    expect(text.length).toBeLessThan(8 * 1024 * 1024);
    holds('/mutate', 'default', text, true);
    holds('/validate', 'policies: privileged denied, baseline and restricted namespaces', text, true);
  });

  it('a 1 MiB annotation value and a 100 000-element array in an unknown field: answered', () => {
    const { r, object } = big();
    object.metadata.annotations['example.com/blob'] = '🙂'.repeat(256 * 1024);
    object.spec['x-unknown'] = Array.from({ length: 100_000 }, (_, i) => i);
    holds('/mutate', 'default', JSON.stringify(r), true);
  });

  it.each([100, 1_000, 10_000, 100_000])('an object nested %i levels deep in the pod spec: a valid answer', (depth) => {
    const { r } = big();
    const text = JSON.stringify(r).replace('"spec":{', `"spec":{"x-nested":${deeplyNested(depth)},`);
    holds('/mutate', 'default', text, false, []);
    holds('/validate', 'policies: privileged denied, baseline and restricted namespaces', text, false, []);
  });

  it.each([1_000, 100_000, 1_000_000])('an envelope nested %i levels deep in a field podvisor does not read: a valid answer', (depth) => {
    const { r } = big();
    const text = JSON.stringify({ ...r, request: { ...r.request, options: '@' } }).replace('"@"', deeplyNested(depth));
    expect(text.length).toBeLessThan(8 * 1024 * 1024);
    holds('/mutate', 'default', text, false, []);
  });
});

describe('objects the apiserver does not validate before mutating admission, and objects it never sends', () => {
  it('a field of an opted-in Pod missing (the apiserver runs mutating webhooks before validation): valid answer', () => {
    resetTallies();
    fc.assert(fc.property(endpoint, environment, changedObjectField('missing'), (path, env, body) => holds(path, env, JSON.stringify(body), false)), params);
    if (RUNS >= 100) expect(resetTallies().patched).toBeGreaterThan(RUNS * 0.1);
  }, TIMEOUT);

  it('a field of an opted-in Pod replaced by a value of another type (a direct POST): 400 with a message, or a valid answer', () => {
    fc.assert(fc.property(endpoint, environment, changedObjectField('wrongType'), (path, env, body) => holds(path, env, JSON.stringify(body), false)), params);
  }, TIMEOUT);
});
