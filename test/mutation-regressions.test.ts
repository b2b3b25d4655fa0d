// Minimal regressions for the bugs the property tests (test/mutation-properties.test.ts) found, each posted to the
// real HTTPS server: an answer must be a valid AdmissionReview or a 4xx with a message, never a 500.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { answerProblems } from './support/answer-properties.js';
import { run } from './support/harness.js';
import { deeplyNested } from './support/review-arbitraries.js';
import { startTestServer, type TestServer } from './support/server.js';

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(async () => {
  await t.close();
});

const env = { config: parseConfig({}) };

function podReview(object: Record<string, unknown>, request: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'b7e4c1f2-0000-4000-8000-000000000001',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      operation: 'CREATE',
      namespace: 'default',
      userInfo: { username: 'alice', groups: ['system:authenticated'] },
      object: { apiVersion: 'v1', kind: 'Pod', ...object },
      ...request,
    },
  };
}

/** Posts the body and returns every problem of the answer (empty when it is a valid answer or a 4xx with a message). */
async function problemsOf(body: Record<string, unknown> | string, wellTyped: boolean): Promise<string[]> {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const reply = await t.post('/mutate', text);
  let json: unknown;
  try {
    json = reply.json();
  } catch {
    return [`HTTP ${reply.status}, not JSON: ${reply.text.slice(0, 200)}`];
  }
  return answerProblems('/mutate', text, { status: reply.status, json }, env, { wellTyped });
}

describe('regressions found by the property tests', () => {
  it('userInfo.groups that is not an array (the envelope is not type-checked there): no 500', async () => {
    const body = podReview({ metadata: { annotations: { 'podvisor.io/lxcfs': 'true' } }, spec: { containers: [{ name: 'c', image: 'nginx' }] } }, { userInfo: { username: 'alice', groups: 1.5 } });
    expect(await problemsOf(body, false)).toEqual([]);
  });

  it('a Pod without spec.containers opted into the agent: a valid answer (mutating admission runs before validation, so the apiserver sends it)', async () => {
    const body = podReview({ metadata: { annotations: { 'podvisor.io/agent': 'process' } }, spec: {} });
    expect(await problemsOf(body, true)).toEqual([]);
  });

  it('spec.volumes: null in an opted-in Pod (`volumes:` left empty in YAML, e.g. through `podvisor inject`): a valid answer', async () => {
    const body = podReview({ metadata: { annotations: { 'podvisor.io/lxcfs': 'true' } }, spec: { containers: [{ name: 'c', image: 'nginx' }], volumes: null } });
    expect(await problemsOf(body, false)).toEqual([]);
  });

  it('a null entry in volumeMounts of an opted-in Pod (a direct POST, or `- ` left empty in YAML): a 4xx with a message or a valid answer', async () => {
    const body = podReview({ metadata: { annotations: { 'podvisor.io/lxcfs': 'true' } }, spec: { containers: [{ name: 'c', image: 'nginx', volumeMounts: [null] }] } });
    expect(await problemsOf(body, false)).toEqual([]);
  });

  it('capabilities.add: null in a container of a Pod opted into the agent (`add:` left empty in YAML): a 4xx with a message or a valid answer', async () => {
    const body = podReview({ metadata: { annotations: { 'podvisor.io/agent': 'process' } }, spec: { containers: [{ name: 'c', image: 'nginx', securityContext: { capabilities: { add: null } } }] } });
    expect(await problemsOf(body, false)).toEqual([]);
  });

  it('an object nested 2 000 levels deep in an unknown field of an opted-in Pod (a 17 KB body): no 500', async () => {
    const body = JSON.stringify(podReview({ metadata: { annotations: { 'podvisor.io/lxcfs': 'true' } }, spec: { containers: [{ name: 'c', image: 'nginx' }], x: '@' } }));
    expect(await problemsOf(body.replace('"@"', deeplyNested(2_000)), false)).toEqual([]);
  });

  it('a container whose resources is a number (a direct POST; the apiserver never sends it): a 4xx with a message, not a 500', async () => {
    const body = podReview({ metadata: { annotations: { 'podvisor.io/fuse': 'true' } }, spec: { containers: [{ name: 'c', image: 'rclone', resources: 1.5 }] } });
    expect(await problemsOf(body, false)).toEqual([]);
  });

  it('an owner mount that names podvisor\'s LXCFS volume, which does not exist, is not made to resolve to a hostPath', async () => {
    // The input is invalid (`volumeMounts[0].name: Not found`); adding podvisor-lxcfs-proc-cpuinfo would make the
    // owner's mount at /proc/self a host LXCFS file outside runc's /proc allowlist (or, at /data, a writable one).
    const body = podReview({
      metadata: { annotations: { 'podvisor.io/lxcfs': 'true' } },
      spec: { containers: [{ name: 'c', image: 'nginx', volumeMounts: [{ name: 'podvisor-lxcfs-proc-cpuinfo', mountPath: '/proc/self' }] }] },
    });
    expect(await problemsOf(body, true)).toEqual([]);
  });
});

describe('regressions found by the property tests, in the pure pipeline', () => {
  it('apparmor refused by a warn-mode policy, then FUSE writes its own profile: a re-run on the output patches nothing', () => {
    // Found by PODVISOR_FUZZ_RUNS=100000 (seed 356462421). First run: the guard rolls apparmor back (baseline warns
    // on Unconfined), FUSE gives the container Localhost/podvisor-fuse, status features [fuse]. Re-run: apparmor keeps
    // that profile as the owner's and counts as applied, status features [apparmor, fuse]: a `replace` of the status.
    const config = parseConfig({ policy: { default: { warn: { level: 'baseline' } } } });
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p', namespace: 'default', annotations: { 'podvisor.io/apparmor': 'unconfined', 'podvisor.io/fuse': 'true' } },
      spec: { containers: [{ name: 'c', image: 'rclone', securityContext: { capabilities: { add: ['SYS_ADMIN'] } } }] },
    };
    const r = run(pod, { env: { config } });
    expect(r.outcome.patch.length).toBeGreaterThan(0);
    expect(r.rerun.patch).toEqual([]);
  });
});
