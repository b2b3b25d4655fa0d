import { posix } from 'node:path';
import type { Volume } from 'kubernetes-types/core/v1.js';
import { ANNOTATION } from '../annotations.js';
import type { LxcfsFile } from '../config/schema.js';
import { parseBooleanSetting, type Feature, type FeatureContext, type FeatureResult } from './feature.js';

/**
 * Fixed, deterministic volume names derived from the mount path, never from a container name, so they stay
 * DNS-1123 labels of at most 63 characters (the longest is 44).
 */
export function lxcfsVolumeName(file: LxcfsFile): string {
  return `podvisor-lxcfs-${file.slice(1).replaceAll('/', '-')}`;
}

/**
 * hostPath `type: File` (or Directory) makes kubelet check the path before the container starts. Without a type,
 * containerd creates a missing source as a directory, which breaks the mount and later lxcfs itself (lxcfs.md §4).
 */
function hostPathType(file: LxcfsFile): 'File' | 'Directory' {
  return file === '/sys/devices/system/cpu' ? 'Directory' : 'File';
}

function samePath(a: string, b: string): boolean {
  const normalize = (p: string) => posix.normalize(p).replace(/(.)\/+$/, '$1');
  return normalize(a) === normalize(b);
}

function apply(ctx: FeatureContext): FeatureResult {
  const { spec } = ctx.pod;
  const { hostRoot, files } = ctx.config.lxcfs;
  let changed = false;

  for (const file of files) {
    const hostPath = posix.join(hostRoot, file);
    const name = lxcfsVolumeName(file);
    const volumes: readonly Volume[] = spec.volumes ?? [];
    // Reuse a volume that already serves this host path (an older webhook's, or this one's on re-invocation).
    const sameSource = volumes.find((v) => v.hostPath !== undefined && samePath(v.hostPath.path, hostPath));
    if (sameSource === undefined && volumes.some((v) => v.name === name)) {
      ctx.warn(`${ctx.specField}.volumes: "${name}" is the owner's volume; ${file} not injected`);
      continue;
    }
    const volumeName = sameSource?.name ?? name;
    let mounted = false;
    for (const { container, field } of ctx.targets) {
      const existing = container.volumeMounts?.find((m) => m.mountPath === file);
      if (existing !== undefined) {
        // mountPath must be unique per container: the owner's mount for this path stays.
        if (existing.name !== volumeName) ctx.warn(`${field}.volumeMounts: ${file} kept from volume "${existing.name}"; not LXCFS`);
        else if (sameSource !== undefined && sameSource.hostPath?.type !== hostPathType(file)) {
          ctx.warn(`${field}.volumeMounts: ${file} from volume "${existing.name}" kept; its hostPath type should be ${hostPathType(file)}`);
        }
        continue;
      }
      (container.volumeMounts ??= []).push({ name: volumeName, mountPath: file, readOnly: true });
      mounted = true;
    }
    if (mounted && sameSource === undefined) {
      (spec.volumes ??= []).push({ name, hostPath: { path: hostPath, type: hostPathType(file) } });
    }
    changed ||= mounted;
  }
  return { changed };
}

export const lxcfs: Feature = {
  name: 'lxcfs',
  annotation: ANNOTATION.lxcfs,
  parse: parseBooleanSetting,
  apply,
};
