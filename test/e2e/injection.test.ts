// Injection through the real admission chain: podvisor (its own ServiceAccount token, registered with --webhook-url)
// mutates a Pod and each workload kind as the kube-apiserver sends them, and the kube-controller-manager's
// controllers create the Pods from the stored (mutated) templates. Every stored object is compared with what podvisor's
// own pipeline produces offline for the same input, and every Pod must have each mount once.
import type { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { KubeObject } from '../../src/admission/types.js';
import { containsDesired } from '../../src/k8s/registrar.js';
import { withDetectedVersion } from '../../src/k8s/server-version.js';
import { mutateObject } from '../../src/mutation/pipeline.js';
import { splitApiVersion } from '../../src/workload/kinds.js';
import { loadConfig } from '../../src/config/load.js';
import jsonpatch from 'fast-json-patch';
import { loadKubeConfig, runKubectl } from '../support/control-plane.js';
import { createNamespace, createObject, createServiceAccount, deleteNamespace, duplicateMounts, eventually, readObject, waitForPods, withoutServiceAccountVolume } from '../support/cluster-objects.js';
import { fixture } from '../support/harness.js';
import { startPodvisorOnCluster, type PodvisorOnCluster } from '../support/podvisor-on-cluster.js';
import type { LogLine } from '../support/podvisor-process.js';

const info = inject('controlPlane');
const NAMESPACE = 'e2e-injection';
let admin: KubeConfig;
let podvisor: PodvisorOnCluster;

beforeAll(async () => {
  admin = loadKubeConfig(info.adminKubeconfig);
  await createNamespace(admin, NAMESPACE);
  podvisor = await startPodvisorOnCluster(info, { keepReviews: true });
});

afterAll(async () => {
  await podvisor?.stop();
  await deleteNamespace(admin, NAMESPACE);
});

/** What podvisor's pipeline makes of `object` offline, with the shipped config and the cluster's version (1.37). */
async function expectedMutation(object: KubeObject): Promise<KubeObject> {
  const config = withDetectedVersion(await loadConfig('deploy/base/config.yaml'), false, '1.37');
  const outcome = mutateObject({ ...splitApiVersion(String(object['apiVersion'])), kind: String(object['kind']), operation: 'CREATE', namespace: NAMESPACE, object }, { config });
  expect(outcome.denial).toBeUndefined();
  expect(outcome.injected.length, `${String(object['kind'])}: the offline pipeline injects something`).toBeGreaterThan(0);
  return jsonpatch.applyPatch(structuredClone(object), outcome.patch, true, false).newDocument;
}

function inNamespace(object: KubeObject, name?: string): KubeObject {
  const meta = object['metadata'] as Record<string, unknown>;
  return { ...object, metadata: { ...meta, namespace: NAMESPACE, ...(name === undefined ? {} : { name }) } };
}

type Template = { metadata?: { annotations?: Record<string, string>; labels?: Record<string, string> }; spec: Record<string, unknown> };
function podTemplate(object: KubeObject): Template {
  const spec = object['spec'] as Record<string, unknown>;
  if (object['kind'] === 'Pod') return { metadata: object['metadata'] as Template['metadata'], spec };
  if (object['kind'] === 'CronJob') return (spec['jobTemplate'] as { spec: { template: Template } }).spec.template;
  return spec['template'] as Template;
}

/** A Pod as a template (the items of a list carry no `kind`). */
function asTemplate(pod: KubeObject): Template {
  return { metadata: pod['metadata'] as Template['metadata'], spec: pod['spec'] as Record<string, unknown> };
}

/** The part of a pod spec podvisor writes: containers, init containers, volumes, pod security context. */
function injectedPart(spec: Record<string, unknown>): Record<string, unknown> {
  const s = withoutServiceAccountVolume(spec as never) as Record<string, unknown>;
  return { containers: s['containers'], volumes: s['volumes'], ...(s['initContainers'] === undefined ? {} : { initContainers: s['initContainers'] }), securityContext: s['securityContext'] ?? {} };
}

/**
 * The stored pod spec holds everything the pipeline wrote (the apiserver's defaults may add fields), and no duplicate.
 * Volumes are matched by name: a controller adds its own (the StatefulSet controller one per volumeClaimTemplate).
 */
function expectInjected(what: string, stored: Template, expected: Template): void {
  expect(duplicateMounts(stored.spec as never), `${what}: duplicate volumes or mounts`).toEqual([]);
  const { volumes: wantVolumes, ...want } = injectedPart(expected.spec) as { volumes: { name: string }[] };
  const { volumes: gotVolumes, ...got } = injectedPart(stored.spec) as { volumes: { name: string }[] };
  expect(containsDesired(got, want), `${what}: stored ${JSON.stringify(got)}\nexpected ${JSON.stringify(want)}`).toBe(true);
  for (const volume of wantVolumes) {
    expect(containsDesired(gotVolumes.find((v) => v.name === volume.name), volume), `${what}: volume ${JSON.stringify(volume)} in ${JSON.stringify(gotVolumes)}`).toBe(true);
  }
  expect(stored.metadata?.annotations?.['podvisor.io/status'], `${what}: status annotation`).toBe(expected.metadata?.annotations?.['podvisor.io/status']);
}

function reviewsOf(kind: string, name: string): LogLine[] {
  return podvisor.process.logs.filter((l) => l.msg === 'review' && l['kind'] === kind && l['namespace'] === NAMESPACE && String(l['name']).startsWith(name));
}

interface Case {
  readonly title: string;
  readonly object: KubeObject;
  /** The Pods the controllers create carry these labels. */
  readonly podLabels?: Record<string, string>;
  readonly pods?: number;
}

function job(): KubeObject {
  const pod = fixture('01-pod-nginx-lxcfs.yaml');
  const meta = pod['metadata'] as { annotations: Record<string, string> };
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: 'e2e-job', namespace: NAMESPACE },
    spec: { backoffLimit: 0, template: { metadata: { labels: { app: 'e2e-job' }, annotations: meta.annotations }, spec: { ...(pod['spec'] as object), restartPolicy: 'Never' } } },
  };
}

function replicaSet(): KubeObject {
  const pod = fixture('14-pod-fuse-rclone.yaml');
  const meta = pod['metadata'] as { annotations: Record<string, string> };
  return {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: { name: 'e2e-replicaset', namespace: NAMESPACE },
    spec: { replicas: 2, selector: { matchLabels: { app: 'e2e-replicaset' } }, template: { metadata: { labels: { app: 'e2e-replicaset' }, annotations: meta.annotations }, spec: pod['spec'] } },
  };
}

const CASES: Case[] = [
  { title: 'Pod (lxcfs)', object: inNamespace(fixture('01-pod-nginx-lxcfs.yaml')) },
  { title: 'Pod (fuse)', object: inNamespace(fixture('14-pod-fuse-rclone.yaml')) },
  { title: 'Deployment (lxcfs, sidecar)', object: inNamespace(fixture('02-deployment-java-sidecar.yaml')), podLabels: { 'app.kubernetes.io/name': 'orders-api' } },
  { title: 'Deployment (agent: ebpf-tracing)', object: inNamespace(fixture('13-deployment-ebpf-tracer.yaml')) },
  { title: 'ReplicaSet (fuse)', object: replicaSet(), podLabels: { app: 'e2e-replicaset' }, pods: 2 },
  { title: 'StatefulSet (lxcfs, selected containers)', object: inNamespace(fixture('09-statefulset-postgres.yaml')) },
  { title: 'DaemonSet (agent: privileged replaced by capabilities)', object: inNamespace(fixture('11-daemonset-agent-privileged.yaml')) },
  { title: 'Job (lxcfs)', object: job(), podLabels: { app: 'e2e-job' } },
];

function selectorLabels(object: KubeObject): Record<string, string> | undefined {
  return (object['spec'] as { selector?: { matchLabels?: Record<string, string> } } | undefined)?.selector?.matchLabels;
}

describe('injection through the kube-apiserver, Pods created by the real controllers', () => {
  for (const c of CASES) {
    it(c.title, async () => {
      const kind = String(c.object['kind']);
      const name = String((c.object['metadata'] as { name: string }).name);
      const serviceAccount = (podTemplate(c.object).spec['serviceAccountName'] as string | undefined) ?? undefined;
      if (serviceAccount !== undefined) await createServiceAccount(admin, NAMESPACE, serviceAccount);
      const expected = await expectedMutation(c.object);

      await createObject(admin, c.object);
      const stored = await readObject(admin, String(c.object['apiVersion']), kind, NAMESPACE, name);
      expectInjected(`${kind} ${name}`, podTemplate(stored), podTemplate(expected));
      if (kind === 'Pod') return;

      const labels = c.podLabels ?? selectorLabels(c.object) ?? podTemplate(c.object).metadata?.labels ?? {};
      const count = kind === 'DaemonSet' ? info.nodes.length : (c.pods ?? 1);
      const pods = await waitForPods(admin, NAMESPACE, labels, count);
      for (const pod of pods) {
        const podName = String((pod['metadata'] as { name: string }).name);
        expectInjected(`Pod ${podName} of ${kind} ${name}`, asTemplate(pod), podTemplate(expected));
      }
      // podvisor saw each Pod (its template opted in) and, the template being injected already, changed nothing.
      // A controller names its Pods by generateName (the review carries that) or, for a StatefulSet, by ordinal.
      const isPodReview = (l: LogLine) =>
        l.msg === 'review' &&
        l['kind'] === 'Pod' &&
        l['namespace'] === NAMESPACE &&
        pods.some((p) => {
          const meta = p['metadata'] as { name: string; generateName?: string };
          return l['name'] === meta.name || (meta.generateName !== undefined && l['name'] === meta.generateName);
        });
      const podReviews = await eventually(`podvisor reviewed the Pods of ${kind} ${name}`, async () => {
        const found = podvisor.process.logs.filter(isPodReview);
        return found.length >= 1 ? found : undefined;
      }, 5_000);
      for (const review of podReviews) expect(review['injected'], JSON.stringify(review)).toEqual([]);
      expect(reviewsOf(kind, name).some((r) => (r['injected'] as unknown[]).length > 0)).toBe(true);
    });
  }

  it('CronJob (lxcfs in the job template): a Job created from it runs a Pod with the mounts once', async () => {
    const cronJob = inNamespace(fixture('10-cronjob-backup.yaml'));
    const name = String((cronJob['metadata'] as { name: string }).name);
    const sa = podTemplate(cronJob).spec['serviceAccountName'] as string | undefined;
    if (sa !== undefined) await createServiceAccount(admin, NAMESPACE, sa);
    const expected = await expectedMutation(cronJob);
    await createObject(admin, cronJob);
    const stored = await readObject(admin, 'batch/v1', 'CronJob', NAMESPACE, name);
    expectInjected(`CronJob ${name}`, podTemplate(stored), podTemplate(expected));
    // `kubectl create job --from=cronjob/...` copies the stored jobTemplate, as the CronJob controller does on schedule
    // (without waiting for the next minute); the Job controller then creates the Pod.
    const created = await runKubectl(info.adminKubeconfig, ['-n', NAMESPACE, 'create', 'job', `${name}-now`, `--from=cronjob/${name}`]);
    expect(created.code, created.stderr).toBe(0);
    const pods = await waitForPods(admin, NAMESPACE, { 'job-name': `${name}-now` });
    expectInjected(`Pod of Job ${name}-now`, asTemplate(pods[0]!), podTemplate(expected));
  });
});
