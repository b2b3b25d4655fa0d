import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import jsonpatch from 'fast-json-patch';
import { ConfigError, parseConfig } from '../src/config/load.js';
import { validatePod } from './support/kubernetes-rules.js';
import { annotationsOf, config, fixture, podOf, run, violations } from './support/harness.js';
import { asDaemonSet, containerOf, HAVE_KUBECTL, kubectlPatch, patchOf, reviewFor, runChecked } from './support/security-features.js';
import { startTestServer, type TestServer } from './support/server.js';

/** Objects are plain JSON here; tests index into them freely. */
type KubeObject = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const gateway = (): KubeObject => fixture('06-pod-annotation-keys-slashes.yaml');
const legacy = () => ({ config: config({ kubernetesVersion: '1.29' }) });
const KEY = 'container.apparmor.security.beta.kubernetes.io/';

function pod(annotations: Record<string, string>, containers: Record<string, unknown>[] = [{ name: 'app', image: 'busybox' }], spec: Record<string, unknown> = {}): KubeObject {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'web', annotations }, spec: { containers, ...spec } };
}

describe('apparmor on fixture 06', () => {
  it('≥ 1.30: exporter gets {Localhost, k8s-nginx}; gateway (same annotation already) left alone; every annotation kept', () => {
    const original = gateway();
    const r = runChecked(original);
    expect(r.outcome.features).toEqual(['apparmor']);
    // Keys are case-sensitive: the look-alike is not an opt-in, but a typo worth a warning.
    expect(r.outcome.warnings).toEqual(['metadata.annotations: unknown key "podvisor.io/LXCFS" ignored (did you mean "podvisor.io/lxcfs"?)']);
    expect(containerOf(r.result, 'exporter').securityContext).toEqual({ appArmorProfile: { type: 'Localhost', localhostProfile: 'k8s-nginx' } });
    expect(containerOf(r.result, 'gateway')).toEqual(containerOf(original, 'gateway'));
    const before = annotationsOf(original);
    const after = annotationsOf(r.result);
    expect(Object.keys(after).sort()).toEqual([...Object.keys(before), 'podvisor.io/status'].sort());
    for (const [key, value] of Object.entries(before)) expect(after[key]).toBe(value);
    // No LXCFS from the look-alike keys, and never a whole-map replace of the annotations.
    expect(r.outcome.patch.map((op) => op.path).sort()).toEqual(['/metadata/annotations/podvisor.io~1status', '/spec/containers/1/securityContext']);
  });

  it('≤ 1.29: the annotation for exporter at the escaped path, no field anywhere', () => {
    const r = runChecked(gateway(), { env: legacy() });
    expect(r.outcome.patch).toContainEqual({
      op: 'add',
      path: '/metadata/annotations/container.apparmor.security.beta.kubernetes.io~1exporter',
      value: 'localhost/k8s-nginx',
    });
    expect(JSON.stringify(r.outcome.patch)).not.toContain('appArmorProfile');
  });

  it.skipIf(!HAVE_KUBECTL)('kubectl patch --local agrees with fast-json-patch in both modes', () => {
    for (const env of [{}, legacy()]) {
      const original = gateway();
      const { outcome, result } = run(original, { env });
      expect(kubectlPatch(original, outcome.patch)).toEqual(result);
    }
  });
});

describe('apparmor rules', () => {
  it('values: runtime/default → RuntimeDefault, unconfined → Unconfined; invalid value → warning, no patch', () => {
    expect(containerOf(runChecked(pod({ 'podvisor.io/apparmor': 'runtime/default' })).result, 'app').securityContext).toEqual({ appArmorProfile: { type: 'RuntimeDefault' } });
    expect(containerOf(runChecked(pod({ 'podvisor.io/apparmor': 'unconfined' })).result, 'app').securityContext).toEqual({ appArmorProfile: { type: 'Unconfined' } });
    const bad = run(pod({ 'podvisor.io/apparmor': 'localhost/' }));
    expect(bad.outcome.patch).toEqual([]);
    expect(bad.outcome.warnings[0]).toMatch(/^podvisor\.io\/apparmor: invalid value "localhost\/"/);
  });

  it('never contradicts the owner: a different container field or annotation is kept, with a warning', () => {
    const field = run(pod({ 'podvisor.io/apparmor': 'localhost/x' }, [{ name: 'app', image: 'b', securityContext: { appArmorProfile: { type: 'RuntimeDefault' } } }]));
    expect(containerOf(field.result, 'app').securityContext?.appArmorProfile).toEqual({ type: 'RuntimeDefault' });
    expect(field.outcome.warnings).toEqual(['spec.containers[0]: owner\'s AppArmor container field "runtime/default" kept; podvisor.io/apparmor wanted "localhost/x"']);

    for (const env of [{}, legacy()]) {
      const annotation = run(pod({ 'podvisor.io/apparmor': 'localhost/x', [`${KEY}app`]: 'runtime/default' }), { env });
      // In force nowhere: no status claiming it either.
      expect(annotation.outcome.patch).toEqual([]);
      expect(annotation.outcome.warnings).toHaveLength(1);
      expect(violations(annotation.result)).toEqual([]);
    }
  });

  it('templates with a pod-level field: ≥ 1.30 sets the container field; ≤ 1.29 never writes a disagreeing annotation', () => {
    const daemonSet = asDaemonSet(pod({ 'podvisor.io/apparmor': 'localhost/x' }, undefined, { securityContext: { appArmorProfile: { type: 'RuntimeDefault' } } }));
    const modern = runChecked(daemonSet);
    expect(containerOf(modern.result, 'app').securityContext?.appArmorProfile).toEqual({ type: 'Localhost', localhostProfile: 'x' });
    const old = runChecked(daemonSet, { env: legacy() });
    expect(Object.keys(annotationsOf(old.result)).filter((k) => k.startsWith(KEY))).toEqual([]);
    expect(old.outcome.warnings).toEqual(['spec.template.spec.securityContext.appArmorProfile: "runtime/default" kept; no "localhost/x" annotation for app']);
    // The checker itself rejects the pair podvisor avoided.
    const rejected = structuredClone(podOf(old.result));
    rejected.metadata = { annotations: { [`${KEY}app`]: 'localhost/x' } };
    expect(validatePod(rejected, rejected.field)).toEqual([
      'spec.template.spec.containers[0].securityContext.appArmorProfile.type: Forbidden: apparmor type in annotation and field must match',
    ]);
  });

  it('never an annotation for a container that does not exist; init containers named in podvisor.io/containers count', () => {
    const r = runChecked(
      pod({ 'podvisor.io/apparmor': 'runtime/default', 'podvisor.io/containers': 'ghost,setup' }, undefined, { initContainers: [{ name: 'setup', image: 'b' }] }),
      { env: legacy() },
    );
    const keys = Object.keys(annotationsOf(r.result)).filter((k) => k.startsWith(KEY));
    expect(keys).toEqual([`${KEY}setup`]);
    expect(r.outcome.warnings).toContain('podvisor.io/containers: no container named "ghost"');
  });

  it('an explicit podvisor.io/apparmor wins over FUSE\'s default profile; RuntimeDefault with FUSE warns', () => {
    const r = runChecked(pod({ 'podvisor.io/apparmor': 'runtime/default', 'podvisor.io/fuse': 'true' }));
    expect(r.outcome.features).toEqual(['apparmor', 'fuse']);
    expect(containerOf(r.result, 'app').securityContext?.appArmorProfile).toEqual({ type: 'RuntimeDefault' });
    expect(r.outcome.warnings).toEqual(['spec.containers[0]: AppArmor RuntimeDefault denies mount; FUSE mounts fail on AppArmor nodes']);
    const localhost = runChecked(pod({ 'podvisor.io/apparmor': 'localhost/my-fuse', 'podvisor.io/fuse': 'true' }));
    expect(containerOf(localhost.result, 'app').securityContext?.appArmorProfile).toEqual({ type: 'Localhost', localhostProfile: 'my-fuse' });
  });

  it('Pod UPDATE is never patched (AppArmor annotations are immutable on update); Windows pods untouched', () => {
    expect(run(gateway(), { operation: 'UPDATE' }).outcome.patch).toEqual([]);
    const windows = run(pod({ 'podvisor.io/apparmor': 'runtime/default' }, undefined, { os: { name: 'windows' } }));
    expect(windows.outcome.patch).toEqual([]);
    expect(windows.outcome.skip).toBe('windows');
  });

  it('config: kubernetesVersion, fuse.appArmorProfile and defaults.apparmor are validated, naming the field', () => {
    expect(() => parseConfig({ kubernetesVersion: '2.0' })).toThrow(/kubernetesVersion: expected a Kubernetes version/);
    expect(() => parseConfig({ fuse: { appArmorProfile: 'podvisor-fuse' } })).toThrow(/fuse\.appArmorProfile: expected runtime\/default/);
    expect(() => parseConfig({ defaults: { apparmor: 'enforce' } })).toThrow(ConfigError);
    expect(() => parseConfig({ namespaces: { web: { apparmor: 'x' } } })).toThrow(/namespaces\.web\.apparmor: expected/);
    expect(parseConfig({ kubernetesVersion: 'v1.29.4', defaults: { apparmor: 'localhost/p' } }).defaults.apparmor).toBe('localhost/p');
  });

  it('a cluster default applies to every pod, and an owner "false" opts out', () => {
    const env = { config: config({ defaults: { apparmor: 'runtime/default' } }) };
    expect(containerOf(runChecked(pod({}), { env }).result, 'app').securityContext?.appArmorProfile).toEqual({ type: 'RuntimeDefault' });
    expect(run(pod({ 'podvisor.io/apparmor': 'false' }), { env }).outcome.patch).toEqual([]);
  });
});

describe('apparmor through the HTTPS server', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ kubernetesVersion: '1.29' });
  });
  afterAll(async () => t.close());

  it('06 with a ≤ 1.29 server config: annotation patch; the result passes the rules; re-admission: no patch', async () => {
    const object = gateway();
    const answer = (await t.post('/mutate', reviewFor(object))).json();
    const patch = patchOf(answer.response) as jsonpatch.Operation[];
    expect(patch[0]).toEqual({ op: 'add', path: '/metadata/annotations/container.apparmor.security.beta.kubernetes.io~1exporter', value: 'localhost/k8s-nginx' });
    const result = jsonpatch.applyPatch(structuredClone(object), patch, true, false).newDocument;
    expect(violations(result)).toEqual([]);
    expect(patchOf((await t.post('/mutate', reviewFor(result))).json().response)).toEqual([]);
  });
});
