// Test oracle: the apiserver validation rules a mutated object must satisfy (../shared/reference/kubernetes-rules.md),
// so a patch the real kube-apiserver would reject fails a test here. Each check cites the section it enforces.
import type { Container, PodSpec, Volume } from 'kubernetes-types/core/v1.js';
import type { ObjectMeta } from 'kubernetes-types/meta/v1.js';
import { SECURITY_RULES } from './kubernetes-rules-security.js';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const HOSTPATH_TYPES = new Set(['', 'DirectoryOrCreate', 'Directory', 'FileOrCreate', 'File', 'Socket', 'CharDevice', 'BlockDevice']);
const VOLUME_SOURCES = [
  'hostPath', 'emptyDir', 'gcePersistentDisk', 'awsElasticBlockStore', 'gitRepo', 'secret', 'nfs', 'iscsi', 'glusterfs',
  'persistentVolumeClaim', 'rbd', 'flexVolume', 'cinder', 'cephfs', 'flocker', 'downwardAPI', 'fc', 'azureFile', 'configMap',
  'vsphereVolume', 'quobyte', 'azureDisk', 'photonPersistentDisk', 'projected', 'portworxVolume', 'scaleIO', 'storageos',
  'csi', 'ephemeral', 'image',
];
/** runc's /proc overmount allowlist (libcontainer/rootfs_linux.go checkProcMount), kubernetes-rules.md §12. */
const RUNC_PROC_ALLOWLIST = new Set([
  '/proc/cpuinfo', '/proc/diskstats', '/proc/meminfo', '/proc/stat', '/proc/swaps', '/proc/uptime', '/proc/loadavg',
  '/proc/slabinfo', '/proc/sys/kernel/ns_last_pid', '/proc/sys/crypto/fips_enabled',
]);
const ANNOTATION_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export interface PodLike {
  metadata?: ObjectMeta;
  spec: PodSpec;
  /** Volumes supplied from outside the pod spec: a StatefulSet's volumeClaimTemplates. */
  claimTemplateNames?: readonly string[];
}

type Rule = (pod: PodLike, field: string, errors: string[]) => void;

function allContainers(spec: PodSpec): [Container, string][] {
  return [
    ...(spec.initContainers ?? []).map((c, i): [Container, string] => [c, `initContainers[${i}]`]),
    ...(spec.containers ?? []).map((c, i): [Container, string] => [c, `containers[${i}]`]),
    ...(spec.ephemeralContainers ?? []).map((c, i): [Container, string] => [c as Container, `ephemeralContainers[${i}]`]),
  ];
}

/** §5.1, §5.2: volume names unique DNS-1123 labels, exactly one source, valid hostPath type, no "..". */
const volumesRule: Rule = ({ spec }, field, errors) => {
  const names = new Set<string>();
  (spec.volumes ?? []).forEach((volume: Volume, i) => {
    const at = `${field}.volumes[${i}]`;
    if (!DNS1123_LABEL.test(volume.name) || volume.name.length > 63) errors.push(`${at}.name: Invalid value "${volume.name}"`);
    if (names.has(volume.name)) errors.push(`${at}.name: Duplicate value "${volume.name}"`);
    names.add(volume.name);
    const sources = VOLUME_SOURCES.filter((s) => (volume as unknown as Record<string, unknown>)[s] !== undefined);
    if (sources.length !== 1) errors.push(`${at}: must specify exactly one volume source, got ${sources.length}`);
    if (volume.hostPath !== undefined) {
      if (!HOSTPATH_TYPES.has(volume.hostPath.type ?? '')) errors.push(`${at}.hostPath.type: Unsupported value "${volume.hostPath.type}"`);
      if (volume.hostPath.path.split('/').includes('..')) errors.push(`${at}.hostPath.path: must not contain '..'`);
    }
  });
};

/** §5.2, §5.3, §5.5: mounts reference volumes, unique mountPath per container, container names unique, runc /proc allowlist. */
const containersRule: Rule = ({ spec, claimTemplateNames }, field, errors) => {
  const volumes = new Map<string, Volume | undefined>((spec.volumes ?? []).map((v) => [v.name, v]));
  for (const name of claimTemplateNames ?? []) volumes.set(name, { name, persistentVolumeClaim: { claimName: name } });
  const containerNames = new Set<string>();
  for (const [container, where] of allContainers(spec)) {
    const at = `${field}.${where}`;
    if (containerNames.has(container.name)) errors.push(`${at}.name: Duplicate value "${container.name}"`);
    containerNames.add(container.name);
    const paths = new Set<string>();
    (container.volumeMounts ?? []).forEach((mount, i) => {
      const mountAt = `${at}.volumeMounts[${i}]`;
      const volume = volumes.get(mount.name);
      if (!volumes.has(mount.name)) errors.push(`${mountAt}.name: Not found "${mount.name}"`);
      if (paths.has(mount.mountPath)) errors.push(`${mountAt}.mountPath: Invalid value "${mount.mountPath}": must be unique`);
      paths.add(mount.mountPath);
      if (mount.mountPath.startsWith('/proc/') && volume?.hostPath !== undefined && !RUNC_PROC_ALLOWLIST.has(mount.mountPath)) {
        errors.push(`${mountAt}.mountPath: ${mount.mountPath} is outside runc's /proc allowlist (container start fails)`);
      }
      if (mount.mountPropagation === 'Bidirectional' && container.securityContext?.privileged !== true) {
        errors.push(`${mountAt}.mountPropagation: Forbidden: Bidirectional mount propagation is available only to privileged containers`);
      }
    });
  }
};

/** §5.1: annotation keys are `[prefix/]name`, values strings; §4: values are strings. */
const annotationsRule: Rule = ({ metadata }, _field, errors) => {
  for (const [key, value] of Object.entries(metadata?.annotations ?? {})) {
    const slash = key.lastIndexOf('/');
    const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
    const name = slash >= 0 ? key.slice(slash + 1) : key;
    if (prefix !== undefined && (!DNS1123_SUBDOMAIN.test(prefix) || prefix.length > 253)) errors.push(`metadata.annotations: Invalid value: "${key}": prefix`);
    if (!ANNOTATION_NAME.test(name) || name.length > 63) errors.push(`metadata.annotations: Invalid value: "${key}": name part`);
    if (typeof value !== 'string') errors.push(`metadata.annotations[${key}]: must be a string`);
  }
};

export const RULES: Rule[] = [volumesRule, containersRule, annotationsRule, ...SECURITY_RULES];

/** Every violation of the rules above, as `field: message`; an empty list means the apiserver would accept it. */
export function validatePod(pod: PodLike, field = 'spec'): string[] {
  const errors: string[] = [];
  for (const rule of RULES) rule(pod, field, errors);
  return errors;
}
