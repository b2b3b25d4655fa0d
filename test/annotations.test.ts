import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closestName } from '../src/closest-name.js';
import { VERSION } from '../src/version.js';
import { config, run } from './support/harness.js';
import { asDaemonSet, containerOf, reviewFor, runChecked } from './support/security-features.js';
import { startTestServer, type TestServer } from './support/server.js';

/** Objects are plain JSON here; tests index into them freely. */
type KubeObject = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function pod(annotations: Record<string, string>, container: Record<string, unknown> = {}): KubeObject {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'web', annotations }, spec: { containers: [{ name: 'app', image: 'nginx:1.27', ...container }] } };
}

describe('typos are warnings that name the closest valid name', () => {
  it('an unknown podvisor.io/ key is reported, on a Pod and on a template, even when nothing opts in', () => {
    const r = run(pod({ 'podvisor.io/fuze': 'true' }));
    expect(r.outcome.skip).toBe('not_opted_in');
    expect(r.outcome.warnings).toEqual(['metadata.annotations: unknown key "podvisor.io/fuze" ignored (did you mean "podvisor.io/fuse"?)']);
    const ds = run(asDaemonSet(pod({ 'podvisor.io/LXCFS': 'true', 'podvisor.io/container': 'app' })));
    expect(ds.outcome.warnings).toEqual([
      'spec.template.metadata.annotations: unknown key "podvisor.io/LXCFS" ignored (did you mean "podvisor.io/lxcfs"?)',
      'spec.template.metadata.annotations: unknown key "podvisor.io/container" ignored (did you mean "podvisor.io/containers"?)',
    ]);
    expect(run(pod({ 'podvisor.io/exclude': 'true' })).outcome.warnings).toEqual([
      'metadata.annotations: unknown key "podvisor.io/exclude" ignored (podvisor.io/exclude is a label, not an annotation)',
    ]);
    // Other prefixes are not podvisor's business.
    expect(run(pod({ 'lxcfs.podvisor.io/enabled': 'true', 'example.com/fuze': 'x' })).outcome.warnings).toEqual([]);
  });

  it('an unknown agent feature does not grant the rest: the privileged container stays as written', () => {
    const r = run(pod({ 'podvisor.io/agent': 'process,ebpf-tracng' }, { securityContext: { privileged: true } }));
    expect(r.outcome.patch).toEqual([]);
    expect(r.outcome.warnings).toEqual(['podvisor.io/agent: unknown feature "ebpf-tracng" (did you mean "ebpf-tracing"?); skipped']);
  });

  it('AppArmor forms people write by habit get the annotation form they meant', () => {
    const cases: [string, string][] = [
      ['RuntimeDefault', 'runtime/default'],
      ['runtime-default', 'runtime/default'],
      ['localhost:k8s-nginx', 'localhost/k8s-nginx'],
      ['Unconfinde', 'unconfined'],
    ];
    for (const [value, meant] of cases) {
      const r = run(pod({ 'podvisor.io/apparmor': value }));
      expect(r.outcome.patch).toEqual([]);
      expect(r.outcome.warnings).toEqual([`podvisor.io/apparmor: invalid value ${JSON.stringify(value)} (did you mean "${meant}"?); skipped`]);
    }
    expect(run(pod({ 'podvisor.io/apparmor': 'banana' })).outcome.warnings).toEqual([
      'podvisor.io/apparmor: invalid value "banana", expected runtime/default, localhost/<profile> or unconfined; skipped',
    ]);
  });

  it('correct spellings stay silent', () => {
    const r = runChecked(pod({ 'podvisor.io/agent': 'process', 'podvisor.io/apparmor': 'runtime/default', 'podvisor.io/agent-containers': 'app' }), { env: { config: config() } });
    expect(r.outcome.warnings.filter((w) => w.includes('unknown') || w.includes('invalid'))).toEqual([]);
    expect(containerOf(r.result, 'app').securityContext?.capabilities?.add).toEqual(['DAC_READ_SEARCH', 'SYS_PTRACE']);
  });

  it('closestName tolerates typos, not unrelated words', () => {
    expect(closestName('ebpf-tracng', ['ebpf-tracing', 'ebpf-profiling'])).toBe('ebpf-tracing');
    expect(closestName('proces', ['process', 'host-metrics'])).toBe('process');
    expect(closestName('telepathy', ['process', 'host-metrics'])).toBeUndefined();
  });
});

describe('on the server', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(async () => t.close());

  it('typos come back as admission warnings (kubectl prints them), with no patch', async () => {
    const answer = (await t.post('/mutate', reviewFor(pod({ 'podvisor.io/fuze': 'true', 'podvisor.io/agent': 'process,ebpf-tracng' })))).json();
    expect(answer.response.allowed).toBe(true);
    expect(answer.response.patch).toBeUndefined();
    expect(answer.response.warnings).toEqual([
      'metadata.annotations: unknown key "podvisor.io/fuze" ignored (did you mean "podvisor.io/fuse"?)',
      'podvisor.io/agent: unknown feature "ebpf-tracng" (did you mean "ebpf-tracing"?); skipped',
    ]);
  });

  it('/metrics carries podvisor_build_info with the release and the Node version', async () => {
    const metrics = (await t.ops('/metrics')).text;
    expect(metrics).toContain(`podvisor_build_info{version="${VERSION}",node="${process.version}"} 1`);
  });
});
