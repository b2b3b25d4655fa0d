// Helpers for the FUSE, AppArmor and agent tests: container lookup, the patch invariants (rules hold after applying
// the patch, re-running gives an empty patch and the same status), AdmissionReviews, kubectl's patch, and the CLI.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Container } from 'kubernetes-types/core/v1.js';
import { expect } from 'vitest';
import type { KubeObject } from '../../src/admission/types.js';
import { findWorkloadKind, splitApiVersion } from '../../src/workload/kinds.js';
import { annotationsOf, podOf, run, violations, type MutationRun } from './harness.js';

export const KUBECTL = '/usr/bin/kubectl';
export const HAVE_KUBECTL = existsSync(KUBECTL);
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export function containerOf(object: KubeObject, name: string): Container {
  const spec = podOf(object).spec;
  const found = [...(spec.initContainers ?? []), ...spec.containers].find((c) => c.name === name);
  if (found === undefined) throw new Error(`no container ${name}`);
  return found;
}

export function statusOf(object: KubeObject): Record<string, unknown> {
  const raw = annotationsOf(object)['podvisor.io/status'];
  if (raw === undefined) throw new Error('no podvisor.io/status');
  return JSON.parse(raw) as Record<string, unknown>;
}

/** The invariants of every mutation: the result passes the Kubernetes rules, a re-run patches nothing. */
export function expectValidAndIdempotent(r: MutationRun): void {
  expect(violations(r.result)).toEqual([]);
  expect(r.rerun.patch).toEqual([]);
}

/** `run` plus the invariants. */
export function runChecked(object: KubeObject, options: Parameters<typeof run>[1] = {}): MutationRun {
  const r = run(object, options);
  expectValidAndIdempotent(r);
  return r;
}

/** A pod spec wrapped as a DaemonSet, to run the same case on a template. */
export function asDaemonSet(pod: KubeObject): KubeObject {
  const meta = (pod['metadata'] ?? {}) as { name?: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  const labels = { app: meta.name ?? 'x' };
  return {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name: meta.name, namespace: meta.namespace },
    spec: {
      selector: { matchLabels: labels },
      template: { metadata: { labels, ...(meta.annotations !== undefined ? { annotations: meta.annotations } : {}) }, spec: structuredClone(pod['spec']) },
    },
  };
}

let uid = 0;
/** An AdmissionReview v1 request for an object, as the apiserver sends it. */
export function reviewFor(object: KubeObject, operation: 'CREATE' | 'UPDATE' = 'CREATE', extra: Record<string, unknown> = {}): Record<string, unknown> {
  const { group, version } = splitApiVersion(String(object['apiVersion']));
  const kind = String(object['kind']);
  if (findWorkloadKind(group, version, kind) === undefined) throw new Error(`not a workload: ${kind}`);
  const meta = object['metadata'] as { name?: string; namespace?: string } | undefined;
  uid += 1;
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: `00000000-0000-4000-8000-${String(uid).padStart(12, '0')}`,
      kind: { group, version, kind },
      resource: { group, version, resource: `${kind.toLowerCase()}s` },
      operation,
      name: meta?.name,
      namespace: meta?.namespace ?? 'default',
      userInfo: { username: 'test' },
      object,
      ...extra,
    },
  };
}

/** The decoded JSON patch of an AdmissionReview response (empty when none). */
export function patchOf(response: { patch?: string; patchType?: string }): unknown[] {
  if (response.patch === undefined) {
    expect(response.patchType).toBeUndefined();
    return [];
  }
  expect(response.patchType).toBe('JSONPatch');
  return JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as unknown[];
}

/** kubectl applies an RFC 6902 patch with the same library (evanphx/json-patch) as the kube-apiserver. */
export function kubectlPatch(object: KubeObject, patch: readonly unknown[]): KubeObject {
  const dir = mkdtempSync(join(tmpdir(), 'podvisor-kubectl-'));
  const file = join(dir, 'object.json');
  writeFileSync(file, JSON.stringify(object));
  const out = execFileSync(KUBECTL, ['patch', '--local', '-f', file, '--type=json', '-p', JSON.stringify(patch), '-o', 'json'], {
    encoding: 'utf8',
    env: { ...process.env, KUBECONFIG: '/dev/null' },
  });
  return JSON.parse(out) as KubeObject;
}

/** `podvisor inject` from the sources (tsx), the same entry point as the built CLI. */
export function podvisorInject(args: string[], input?: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli.ts'), 'inject', ...args], {
    cwd: ROOT,
    input,
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
