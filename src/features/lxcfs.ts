import { posix } from 'node:path';
import type { Volume, VolumeMount } from 'kubernetes-types/core/v1.js';
import { constantValue } from '../admission/patch.js';
import { ANNOTATION } from '../annotations.js';
import type { Config, LxcfsFile } from '../config/schema.js';
import { parseBooleanSetting, type Feature, type FeatureContext, type FeatureResult } from './feature.js';
import { normalizeHostPath } from '../workload/host-path.js';

type LxcfsConfig = Config['lxcfs'];

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

interface LxcfsMount {
  readonly file: LxcfsFile;
  readonly hostPath: string;
  readonly volumeName: string;
  readonly type: 'File' | 'Directory';
  /** The volume and the mount podvisor adds, the same in every pod: shared, frozen, serialized once (patch.ts). */
  readonly volume: Volume;
  readonly mount: VolumeMount;
}

/** What each configured file becomes, computed once per loaded config (a reload parses a new config object). */
const mountsOfConfig = new WeakMap<LxcfsConfig, readonly LxcfsMount[]>();

function lxcfsMounts(config: LxcfsConfig): readonly LxcfsMount[] {
  let mounts = mountsOfConfig.get(config);
  if (mounts === undefined) {
    mounts = config.files.map((file) => {
      const hostPath = posix.join(config.hostRoot, file);
      const volumeName = lxcfsVolumeName(file);
      const type = hostPathType(file);
      const volume = constantValue<Volume>({ name: volumeName, hostPath: { path: hostPath, type } });
      return { file, hostPath, volumeName, type, volume, mount: constantValue<VolumeMount>({ name: volumeName, mountPath: file, readOnly: true }) };
    });
    mountsOfConfig.set(config, mounts);
  }
  return mounts;
}

/** The first volume serving each host path, so an existing volume for a path is reused instead of duplicated. */
function volumesByHostPath(volumes: readonly Volume[]): Map<string, Volume> {
  const byPath = new Map<string, Volume>();
  for (const volume of volumes) {
    if (volume.hostPath === undefined) continue;
    const path = normalizeHostPath(volume.hostPath.path);
    if (!byPath.has(path)) byPath.set(path, volume);
  }
  return byPath;
}

function apply(ctx: FeatureContext): FeatureResult {
  const { spec } = ctx.pod;
  let changed = false;
  const existing = spec.volumes ?? [];
  const byHostPath = volumesByHostPath(existing);
  // Names taken by the owner: every volume, and every name a mount refers to. A mount naming a volume that does not
  // exist yet must not start resolving to a host LXCFS file because podvisor created a volume of that name.
  const names = new Set(existing.map((v) => v.name));
  for (const c of [...(spec.initContainers ?? []), ...spec.containers, ...(spec.ephemeralContainers ?? [])]) {
    for (const m of c.volumeMounts ?? []) names.add(m.name);
  }

  const lxcfsHostPaths = new Set<string>();
  for (const { file, hostPath, volumeName: name, type, volume, mount: ownMount } of lxcfsMounts(ctx.config.lxcfs)) {
    lxcfsHostPaths.add(hostPath);
    // Reuse a volume that already serves this host path (an older webhook's, or this one's on re-invocation).
    const sameSource = byHostPath.get(hostPath);
    if (sameSource === undefined && names.has(name)) {
      ctx.warn(`${ctx.specField}.volumes: "${name}" is the owner's name; ${file} not injected`);
      continue;
    }
    const volumeName = sameSource?.name ?? name;
    let mounted = false;
    for (const { container, field } of ctx.targets) {
      const mount = container.volumeMounts?.find((m) => m.mountPath === file);
      if (mount !== undefined) {
        // mountPath must be unique per container: the owner's mount for this path stays.
        if (mount.name !== volumeName) ctx.warn(`${field}.volumeMounts: ${file} kept from volume "${mount.name}"; not LXCFS`);
        else if (sameSource !== undefined && sameSource.hostPath?.type !== type) {
          ctx.warn(`${field}.volumeMounts: ${file} from volume "${mount.name}" kept; its hostPath type should be ${type}`);
        }
        continue;
      }
      (container.volumeMounts ??= []).push(volumeName === name ? ownMount : { name: volumeName, mountPath: file, readOnly: true });
      mounted = true;
    }
    if (mounted && sameSource === undefined) {
      (spec.volumes ??= []).push(volume);
    }
    changed ||= mounted;
  }
  // Every target kept the owner's mount for every file (or no file could be injected): LXCFS is in force nowhere.
  const lxcfsVolumes = new Set((spec.volumes ?? []).filter((v) => v.hostPath !== undefined && lxcfsHostPaths.has(normalizeHostPath(v.hostPath.path))).map((v) => v.name));
  const inForce = ctx.targets.some(({ container }) => (container.volumeMounts ?? []).some((m) => lxcfsVolumes.has(m.name)));
  return inForce ? { changed } : { changed, inForce: false };
}

export const lxcfs: Feature = {
  name: 'lxcfs',
  annotation: ANNOTATION.lxcfs,
  containersAnnotation: ANNOTATION.lxcfsContainers,
  parse: parseBooleanSetting,
  apply,
};
