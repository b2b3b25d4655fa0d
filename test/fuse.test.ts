import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import jsonpatch from 'fast-json-patch';
import { KNOWN_FUSE_RESOURCES } from '../src/features/fuse.js';
import { config, fixture, fixtureReview, run, violations } from './support/harness.js';
import { validatePod } from './support/kubernetes-rules.js';
import {
  asDaemonSet,
  containerOf,
  expectValidAndIdempotent,
  HAVE_KUBECTL,
  kubectlPatch,
  patchOf,
  reviewFor,
  runChecked,
  statusOf,
} from './support/security-features.js';
import { startTestServer, type TestServer } from './support/server.js';

/** Objects are plain JSON here; tests index into them freely. */
type KubeObject = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const rclone = (): KubeObject => fixture('14-pod-fuse-rclone.yaml');

/** 14 with the rclone container's fields changed by `edit`. */
function rcloneWith(edit: (c: Record<string, any>) => void): KubeObject { // eslint-disable-line @typescript-eslint/no-explicit-any
  const pod = rclone();
  edit((pod['spec'] as { containers: Record<string, unknown>[] }).containers[0]!);
  return pod;
}

describe('fuse on the fixtures', () => {
  it('14: rclone gets limits smarter-devices/fuse "1", bare SYS_ADMIN, AppArmor Localhost podvisor-fuse; cpu/memory untouched', () => {
    const original = rclone();
    const r = runChecked(original);
    expect(r.outcome.features).toEqual(['fuse']);
    expect(r.outcome.warnings).toEqual([]);
    const c = containerOf(r.result, 'rclone');
    expect(c.resources).toEqual({ requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '500m', memory: '512Mi', 'smarter-devices/fuse': '1' } });
    expect(c.securityContext).toEqual({ capabilities: { add: ['SYS_ADMIN'] }, appArmorProfile: { type: 'Localhost', localhostProfile: 'podvisor-fuse' } });
    // RFC 6901: "/" in the resource name is ~1 in the patch path; no request is written (the apiserver copies it on Pods).
    expect(r.outcome.patch).toContainEqual({ op: 'add', path: '/spec/containers/0/resources/limits/smarter-devices~1fuse', value: '1' });
    expect(JSON.stringify(r.outcome.patch)).not.toMatch(/CAP_|privileged|requests/);
    expect(statusOf(r.result)).toEqual({ version: 1, features: ['fuse'], containers: ['rclone'], fuse: { resources: { rclone: 'smarter-devices/fuse' } } });
  });

  it('14 as a DaemonSet template: limit only (valid for templates), same security context, idempotent', () => {
    const r = runChecked(asDaemonSet(rclone()));
    const c = containerOf(r.result, 'rclone');
    expect(c.resources?.limits?.['smarter-devices/fuse']).toBe('1');
    expect(c.resources?.requests?.['smarter-devices/fuse']).toBeUndefined();
    expect(r.outcome.patch.every((op) => op.path.startsWith('/spec/template/'))).toBe(true);
  });

  it('07: the Windows pod opting into FUSE (and LXCFS) gets no patch and a warning', () => {
    const r = run(fixture('07-pod-windows.yaml'));
    expect(r.outcome.patch).toEqual([]);
    expect(r.outcome.skip).toBe('windows');
    expect(r.outcome.warnings).toEqual(['spec.os: Windows pod; podvisor injects nothing']);
    expect(violations(r.result)).toEqual([]);
  });

  it('review-01-pod-ephemeralcontainers with podvisor.io/fuse: no patch (subresource UPDATE, resources forbidden there)', () => {
    const request = fixtureReview('review-01-pod-ephemeralcontainers.json').request;
    const object = request['object'] as KubeObject;
    object['metadata'].annotations['podvisor.io/fuse'] = 'true';
    const r = run(object, { operation: 'UPDATE' });
    expect(r.outcome.patch).toEqual([]);
  });
});

describe('fuse rules', () => {
  it('resource name is configurable (squat.ai/fuse)', () => {
    const r = runChecked(rclone(), { env: { config: config({ fuse: { resourceName: 'squat.ai/fuse' } }) } });
    expect(containerOf(r.result, 'rclone').resources?.limits).toEqual({ cpu: '500m', memory: '512Mi', 'squat.ai/fuse': '1' });
    expect(r.outcome.patch).toContainEqual({ op: 'add', path: '/spec/containers/0/resources/limits/squat.ai~1fuse', value: '1' });
  });

  it.each(KNOWN_FUSE_RESOURCES)('%s already requested counts as FUSE requested: no second device resource, owner value kept', (name) => {
    const r = runChecked(rcloneWith((c) => (c['resources'].limits[name] = '2')));
    const limits = containerOf(r.result, 'rclone').resources?.limits ?? {};
    expect(Object.keys(limits).filter((k) => k.endsWith('/fuse'))).toEqual([name]);
    expect(limits[name]).toBe('2');
  });

  it('an owner request without a limit is completed with an equal limit (never a request alone)', () => {
    const r = runChecked(rcloneWith((c) => (c['resources'].requests['github.com/fuse'] = '1')));
    const res = containerOf(r.result, 'rclone').resources!;
    expect(res.limits?.['github.com/fuse']).toBe('1');
    expect(res.requests?.['github.com/fuse']).toBe('1');
    expect(res.limits?.['smarter-devices/fuse']).toBeUndefined();
  });

  it('an owner request that differs from its limit is kept with a warning (the owner\'s object, not podvisor\'s change)', () => {
    const r = run(rcloneWith((c) => {
      c['resources'].requests['smarter-devices/fuse'] = '1';
      c['resources'].limits['smarter-devices/fuse'] = '2';
    }));
    expect(r.outcome.patch.some((op) => op.path.includes('/resources'))).toBe(false);
    expect(r.outcome.warnings).toContain('spec.containers[0].resources: requests["smarter-devices/fuse"] must equal its limit; owner\'s values kept');
  });

  it('owner capabilities are kept and normalised: CAP_sys_admin → SYS_ADMIN, cap_chown → CHOWN, sorted, bare', () => {
    const r = runChecked(rcloneWith((c) => (c['securityContext'] = { capabilities: { add: ['NET_BIND_SERVICE', 'CAP_sys_admin', 'cap_chown'], drop: ['NET_RAW'] } })));
    expect(containerOf(r.result, 'rclone').securityContext?.capabilities).toEqual({ add: ['CHOWN', 'NET_BIND_SERVICE', 'SYS_ADMIN'], drop: ['NET_RAW'] });
  });

  it('an owner list that already has bare SYS_ADMIN is not reordered', () => {
    const r = runChecked(rcloneWith((c) => (c['securityContext'] = { capabilities: { add: ['SYS_ADMIN', 'CHOWN'] } })));
    expect(containerOf(r.result, 'rclone').securityContext?.capabilities?.add).toEqual(['SYS_ADMIN', 'CHOWN']);
  });

  it('owner AppArmor RuntimeDefault (container or pod level) is kept, with a warning that it denies mount', () => {
    const container = run(rcloneWith((c) => (c['securityContext'] = { appArmorProfile: { type: 'RuntimeDefault' } })));
    expect(containerOf(container.result, 'rclone').securityContext?.appArmorProfile).toEqual({ type: 'RuntimeDefault' });
    expect(container.outcome.warnings).toEqual(['spec.containers[0]: AppArmor RuntimeDefault denies mount; FUSE mounts fail on AppArmor nodes']);
    expectValidAndIdempotent(container);

    const pod = rclone();
    (pod['spec'] as Record<string, unknown>)['securityContext'] = { appArmorProfile: { type: 'RuntimeDefault' } };
    const podLevel = run(pod);
    expect(containerOf(podLevel.result, 'rclone').securityContext?.appArmorProfile).toBeUndefined();
    expect(podLevel.outcome.warnings).toHaveLength(1);
    expectValidAndIdempotent(podLevel);
  });

  it('an owner Localhost annotation is kept (no field that would disagree with it)', () => {
    const pod = rclone();
    pod['metadata'].annotations['container.apparmor.security.beta.kubernetes.io/rclone'] = 'localhost/my-fuse';
    const r = runChecked(pod);
    expect(containerOf(r.result, 'rclone').securityContext?.appArmorProfile).toBeUndefined();
    expect(r.outcome.warnings).toEqual([]);
  });

  it('allowPrivilegeEscalation: false is kept, with a warning (no_new_privs breaks setuid fusermount)', () => {
    const r = runChecked(rcloneWith((c) => (c['securityContext'] = { allowPrivilegeEscalation: false })));
    expect(containerOf(r.result, 'rclone').securityContext?.allowPrivilegeEscalation).toBe(false);
    expect(r.outcome.warnings).toEqual(['spec.containers[0].securityContext.allowPrivilegeEscalation: false breaks setuid fusermount (non-root FUSE)']);
  });

  it('kubernetesVersion 1.29: the AppArmor annotation instead of the field, never both', () => {
    const r = runChecked(rclone(), { env: { config: config({ kubernetesVersion: '1.29' }) } });
    expect(containerOf(r.result, 'rclone').securityContext).toEqual({ capabilities: { add: ['SYS_ADMIN'] } });
    expect(r.outcome.patch).toContainEqual({ op: 'add', path: '/metadata/annotations/container.apparmor.security.beta.kubernetes.io~1rclone', value: 'localhost/podvisor-fuse' });
  });

  it('never resources on ephemeral containers: naming one in podvisor.io/containers only warns', () => {
    const pod = rclone();
    pod['metadata'].annotations['podvisor.io/containers'] = 'debugger';
    (pod['spec'] as Record<string, unknown>)['ephemeralContainers'] = [{ name: 'debugger', image: 'busybox' }];
    const r = run(pod);
    expect(r.outcome.warnings).toContain('podvisor.io/containers: "debugger" is an ephemeral container; never injected');
    expect(r.outcome.patch.filter((op) => op.path.startsWith('/spec'))).toEqual([]);
  });

  it('never privileged, and Pod UPDATE is never patched', () => {
    expect(run(rclone(), { operation: 'UPDATE' }).outcome.patch).toEqual([]);
    const r = runChecked(rclone());
    expect(containerOf(r.result, 'rclone').securityContext?.privileged).toBeUndefined();
  });

  it.skipIf(!HAVE_KUBECTL)('kubectl patch --local gives the same object as fast-json-patch (FUSE on Pod and DaemonSet)', () => {
    for (const original of [rclone(), asDaemonSet(rclone())]) {
      const { outcome, result } = run(original);
      expect(outcome.patch.length).toBeGreaterThan(0);
      expect(kubectlPatch(original, outcome.patch)).toEqual(result);
    }
  });
});

describe('the rules oracle rejects what podvisor must never emit (so the checks above mean something)', () => {
  const podWith = (container: Record<string, unknown>, spec: Record<string, unknown> = {}) => ({ spec: { containers: [{ name: 'c', image: 'c', ...container }], ...spec } });

  it('capabilities, extended resources, privilege escalation, host namespaces, Windows', () => {
    expect(validatePod(podWith({ securityContext: { capabilities: { add: ['CAP_SYS_ADMIN', 'sys_admin'] } } }))).toHaveLength(2);
    expect(validatePod(podWith({ resources: { limits: { 'smarter-devices/fuse': '500m' } } }))[0]).toMatch(/must be an integer/);
    expect(validatePod(podWith({ resources: { requests: { 'squat.ai/fuse': '1' } } }))[0]).toMatch(/Limit must be set for non overcommitable resources/);
    expect(validatePod(podWith({ resources: { requests: { 'squat.ai/fuse': '1' }, limits: { 'squat.ai/fuse': '2' } } }))[0]).toMatch(/must be equal to squat.ai\/fuse limit of 2/);
    expect(validatePod(podWith({}, { ephemeralContainers: [{ name: 'd', image: 'd', resources: { limits: { cpu: '1' } } }] }))).toEqual(['spec.ephemeralContainers[0].resources: Forbidden']);
    expect(validatePod(podWith({ securityContext: { allowPrivilegeEscalation: false, privileged: true } }))).toHaveLength(1);
    expect(validatePod(podWith({ securityContext: { allowPrivilegeEscalation: false, capabilities: { add: ['SYS_ADMIN'] } } }))).toEqual([]);
    expect(validatePod(podWith({}, { hostPID: true, shareProcessNamespace: true }))).toHaveLength(1);
    expect(validatePod(podWith({}, { hostNetwork: true, hostUsers: false }))).toHaveLength(1);
    expect(validatePod(podWith({ securityContext: { capabilities: { add: ['SYS_ADMIN'] } } }, { os: { name: 'windows' } }))).toEqual([
      'spec.containers[0].securityContext.capabilities: Forbidden: cannot be set for a windows pod',
    ]);
  });

  it('AppArmor: annotation for a missing container, annotation/field disagreement, Localhost without a name', () => {
    const annotated = (annotations: Record<string, string>, container: Record<string, unknown> = {}) => ({ metadata: { annotations }, ...podWith(container) });
    expect(validatePod(annotated({ 'container.apparmor.security.beta.kubernetes.io/ghost': 'runtime/default' }))[0]).toMatch(/container not found/);
    expect(validatePod(annotated({ 'container.apparmor.security.beta.kubernetes.io/c': 'localhost/a' }, { securityContext: { appArmorProfile: { type: 'Localhost', localhostProfile: 'b' } } }))[0]).toMatch(/must match/);
    expect(validatePod(annotated({}, { securityContext: { appArmorProfile: { type: 'Localhost' } } }))[0]).toMatch(/localhostProfile: Required/);
  });
});

describe('fuse through the HTTPS server', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(async () => t.close());

  it('14: the base64 JSONPatch applies to the request object, passes the rules, and re-admission gives no patch', async () => {
    const object = rclone();
    const body = reviewFor(object);
    const answer = (await t.post('/mutate', body)).json();
    const uid = (body['request'] as { uid: string }).uid;
    expect(answer.response).toMatchObject({ uid, allowed: true });
    const patch = patchOf(answer.response);
    expect(patch).toEqual(run(object).outcome.patch);
    const result = jsonpatch.applyPatch(structuredClone(object), patch as jsonpatch.Operation[], true, false).newDocument;
    expect(violations(result)).toEqual([]);
    const again = (await t.post('/mutate', reviewFor(result))).json();
    expect(patchOf(again.response)).toEqual([]);
  });

  it('07 Windows and the ephemeral-container review: allowed, no patch', async () => {
    const windows = (await t.post('/mutate', reviewFor(fixture('07-pod-windows.yaml')))).json();
    expect(patchOf(windows.response)).toEqual([]);
    expect(windows.response.warnings).toEqual(['spec.os: Windows pod; podvisor injects nothing']);
    const review = fixtureReview('review-01-pod-ephemeralcontainers.json');
    (review.request['object'] as KubeObject)['metadata'].annotations['podvisor.io/fuse'] = 'true';
    const answer = (await t.post('/mutate', review)).json();
    expect(answer.response).toEqual({ uid: review.request['uid'], allowed: true });
  });
});

describe('fuse with Bidirectional propagation', () => {
  it('an unprivileged container with a Bidirectional mount gets a warning (the apiserver rejects it; podvisor never grants privileged)', () => {
    const pod = rcloneWith((c) => {
      c['volumeMounts'] = [{ name: 'cache', mountPath: '/mnt/share', mountPropagation: 'Bidirectional' }];
    });
    (pod['spec'] as { volumes?: unknown[] }).volumes = [{ name: 'cache', emptyDir: {} }];
    const r = run(pod);
    expect(r.outcome.warnings).toContain('spec.containers[0].volumeMounts[0].mountPropagation: Bidirectional needs privileged: true; the apiserver rejects it');
    expect(containerOf(r.result, 'rclone').securityContext?.privileged).toBeUndefined();
    // The rules checker agrees that the container, as the owner wrote it, is rejected.
    expect(violations(r.result).some((v) => v.includes('Bidirectional'))).toBe(true);
    // Privileged (the owner's choice): no warning.
    const privileged = rcloneWith((c) => {
      c['volumeMounts'] = [{ name: 'cache', mountPath: '/mnt/share', mountPropagation: 'Bidirectional' }];
      c['securityContext'] = { privileged: true };
    });
    (privileged['spec'] as { volumes?: unknown[] }).volumes = [{ name: 'cache', emptyDir: {} }];
    expect(run(privileged).outcome.warnings.filter((w) => w.includes('Bidirectional'))).toEqual([]);
  });
});
