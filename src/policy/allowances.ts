import { posix } from 'node:path';
import type { Container, Volume, VolumeMount } from 'kubernetes-types/core/v1.js';
import { LXCFS_FILES, type Config } from '../config/schema.js';
import { kubernetesMinor } from '../features/apparmor.js';
import { KNOWN_FUSE_RESOURCES } from '../features/fuse.js';
import { containersOf, itemsOf, type PodView } from './pod-view.js';
import type { Allowance, NamedPolicy } from './schema.js';
import { matchesSelector } from './selector.js';
import type { Violation } from './violation.js';
import { normalizeHostPath } from '../workload/host-path.js';

/** What lets a waived violation through, for messages and tests. */
export interface AllowanceContext {
  /** podvisor's LXCFS host root (config `lxcfs.hostRoot`). */
  readonly lxcfsHostRoot: string;
  /** `fuse.resourceName`: with the known plugins' names, what counts as holding a FUSE device. */
  readonly fuseResourceName: string;
  /** Whether `recursiveReadOnly: Enabled` is honoured by the target cluster (beta, on by default, from 1.31). */
  readonly recursiveReadOnly: boolean;
}

export function allowanceContext(config: Config): AllowanceContext {
  return { lxcfsHostRoot: config.lxcfs.hostRoot, fuseResourceName: config.fuse.resourceName, recursiveReadOnly: kubernetesMinor(config) >= 31 };
}

/** The allowances of a policy that cover this workload: by pod labels and/or service account. */
export function allowancesFor(policy: NamedPolicy, pod: PodView): Allowance[] {
  const labels = pod.metadata.labels ?? {};
  // The API defaults an empty serviceAccountName to "default"; `serviceAccount` is its deprecated alias.
  const serviceAccount = pod.spec.serviceAccountName ?? pod.spec.serviceAccount ?? 'default';
  return policy.allowances.filter((a) => {
    const scope = a.workloads;
    if (scope === undefined) return true;
    if (scope.selector !== undefined && !matchesSelector(scope.selector, labels)) return false;
    if (scope.serviceAccounts !== undefined && !scope.serviceAccounts.includes(serviceAccount)) return false;
    return true;
  });
}

/**
 * A container holds /dev/fuse from a device plugin: a limit of at least 1 on the configured resource or a known
 * plugin's. Any other name, a request alone or a limit of "0" gets no device (a "0" limit schedules anywhere), so
 * none of them may waive SYS_ADMIN.
 */
export function requestsFuseDevice(container: Container, ctx: AllowanceContext): boolean {
  const limits = container.resources?.limits ?? {};
  return [ctx.fuseResourceName, ...KNOWN_FUSE_RESOURCES].some((name) => {
    const limit = limits[name];
    return limit !== undefined && /^[1-9]\d*$/.test(String(limit));
  });
}

/** Path-component prefix on normalized paths (`..`, `//` and a trailing `/` resolved): `/var/log` covers `/var/log/pods`, not `/var/logs`. */
function underPrefix(path: string, prefix: string): boolean {
  const p = normalizeHostPath(path);
  const root = normalizeHostPath(prefix);
  return root === '/' || p === root || p.startsWith(`${root}/`);
}

/** Every mount of the volume, in every container (init and ephemeral included), satisfies `test`. */
function everyMount(volume: Volume, pod: PodView, test: (mount: VolumeMount) => boolean): boolean {
  return containersOf(pod).every((ref) => itemsOf<VolumeMount>(ref.container.volumeMounts).every(([m]) => m.name !== volume.name || test(m)));
}

/**
 * No write to the host is possible through the hostPath volume:
 * - `type: File`, mounted `readOnly` everywhere: a file has no submounts;
 * - `type: Directory`, mounted `readOnly` with `recursiveReadOnly: Enabled` everywhere, where the cluster honours it
 *   (beta from 1.31, GA 1.33): `readOnly` alone leaves submounts below the directory writable (KEP-3857), e.g.
 *   /proc/sys under a host `/`; the kubelet refuses to start the container when the runtime cannot make it recursive;
 * - never an unset type (the path could be a socket or a device), `FileOrCreate`/`DirectoryOrCreate` (the kubelet
 *   creates them on the host before mounting), `Socket`, `CharDevice` or `BlockDevice` (connecting to a socket and
 *   opening a device node for writing ignore a read-only mount).
 */
function readOnlyOnHost(volume: Volume, pod: PodView, ctx: AllowanceContext): boolean {
  const type = volume.hostPath?.type ?? '';
  if (type === 'File') return everyMount(volume, pod, (m) => m.readOnly === true);
  if (type === 'Directory') return ctx.recursiveReadOnly && everyMount(volume, pod, (m) => m.readOnly === true && m.recursiveReadOnly === 'Enabled');
  return false;
}

/** podvisor's own LXCFS files: `<hostRoot>/<file>` for a file podvisor may inject, mounted read-only. */
function isLxcfsVolume(volume: Volume, pod: PodView, ctx: AllowanceContext): boolean {
  const path = volume.hostPath?.path;
  if (typeof path !== 'string') return false;
  // podvisor's own files and directory (File, or Directory for /sys/devices/system/cpu) live in lxcfs's FUSE mount,
  // which has no submounts: read-only mounts are enough; a type that creates on the host is not.
  const type = volume.hostPath?.type ?? '';
  const normalized = normalizeHostPath(path);
  return (
    (type === 'File' || type === 'Directory') &&
    LXCFS_FILES.some((file) => posix.join(ctx.lxcfsHostRoot, file) === normalized) &&
    everyMount(volume, pod, (m) => m.readOnly === true)
  );
}

/** Whether one violation is waived by the policy's LXCFS setting or by one of the allowances in scope. */
export function isWaived(violation: Violation, policy: NamedPolicy, allowances: readonly Allowance[], pod: PodView, ctx: AllowanceContext): boolean {
  const subject = violation.subject;
  if (subject === undefined) return false;
  switch (subject.kind) {
    case 'capability':
      return allowances.some(
        (a) => a.capabilities.includes(subject.capability) || (a.fuse && subject.capability === 'SYS_ADMIN' && requestsFuseDevice(subject.ref.container, ctx)),
      );
    case 'hostNamespace':
      return allowances.some((a) => (subject.name === 'hostPID' && a.hostPID) || (subject.name === 'hostNetwork' && a.hostNetwork));
    case 'hostPort':
      // On hostNetwork pods the apiserver defaults hostPort to containerPort: the port comes with the namespace.
      return pod.spec.hostNetwork === true && subject.hostPort === subject.containerPort && allowances.some((a) => a.hostNetwork);
    case 'hostPath': {
      const path = subject.volume.hostPath?.path;
      if (typeof path !== 'string') return false;
      if (policy.lxcfs === 'allow' && isLxcfsVolume(subject.volume, pod, ctx)) return true;
      return allowances.some((a) =>
        a.hostPaths.some((h) => underPrefix(path, h.pathPrefix) && (!h.readOnly || readOnlyOnHost(subject.volume, pod, ctx))),
      );
    }
    case 'privileged':
      return false;
  }
}

/**
 * For a hostPath violation no allowance waived: the hint when a read-only allowance covers its path, since the
 * missing piece is then in the manifest (its type or its mounts), not in the policy.
 */
export function readOnlyHint(violation: Violation, allowances: readonly Allowance[]): string | undefined {
  if (violation.subject?.kind !== 'hostPath') return undefined;
  const path = violation.subject.volume.hostPath?.path;
  if (typeof path !== 'string' || !allowances.some((a) => a.hostPaths.some((h) => h.readOnly && underPrefix(path, h.pathPrefix)))) return undefined;
  // Short enough for a warning (the apiserver keeps 120 characters of each).
  return `hostPath ${path}: read-only needs type File, or Directory with readOnly + recursiveReadOnly: Enabled (>= 1.31)`;
}
