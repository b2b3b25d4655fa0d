// Source: kubernetes/kubernetes staging/src/k8s.io/pod-security-admission/policy/check_hostPathVolumes.go (1.0) and
// check_restrictedVolumes.go (1.0, OverrideCheckIDs hostPathVolumes). `image` volumes were added to the 1.0 function
// of restrictedVolumes in v1.33 (PR #130394) rather than behind a new version, so PSA in a current apiserver allows
// them at every pinned version; podvisor does the same.
import type { Volume } from 'kubernetes-types/core/v1.js';
import { itemsOf, type PodView } from '../pod-view.js';
import type { Violation } from '../violation.js';
import type { PssCheck } from './check.js';

/** spec.volumes[*].hostPath must be unset. */
export const hostPathVolumes: PssCheck = {
  id: 'hostPathVolumes',
  level: 'baseline',
  since: 0,
  run(pod: PodView): Violation[] {
    const out: Violation[] = [];
    for (const [volume, i] of itemsOf<Volume>(pod.spec.volumes)) {
      if (isSet(volume, 'hostPath')) {
        out.push({ check: 'hostPathVolumes', field: `${pod.specField}.volumes[${i}].hostPath`, value: volume.hostPath?.path, subject: { kind: 'hostPath', volume } });
      }
    }
    return out;
  },
};

const RESTRICTED_ALLOWED = ['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'image', 'persistentVolumeClaim', 'projected', 'secret'];

/** The order of the type switch in restrictedVolumesV1Dot0, used to name the offending type. */
const RESTRICTED_TYPES = [
  'hostPath',
  'gcePersistentDisk',
  'awsElasticBlockStore',
  'gitRepo',
  'nfs',
  'iscsi',
  'glusterfs',
  'rbd',
  'flexVolume',
  'cinder',
  'cephfs',
  'flocker',
  'fc',
  'azureFile',
  'vsphereVolume',
  'quobyte',
  'azureDisk',
  'photonPersistentDisk',
  'portworxVolume',
  'scaleIO',
  'storageos',
];

function isSet(volume: Volume, key: string): boolean {
  const value = (volume as unknown as Record<string, unknown>)[key];
  return value !== undefined && value !== null;
}

/** Only the nine inline volume types above; everything else (hostPath included) is forbidden. */
export const restrictedVolumes: PssCheck = {
  id: 'restrictedVolumes',
  level: 'restricted',
  since: 0,
  overrides: ['hostPathVolumes'],
  run(pod: PodView): Violation[] {
    const out: Violation[] = [];
    for (const [volume, i] of itemsOf<Volume>(pod.spec.volumes)) {
      if (RESTRICTED_ALLOWED.some((key) => isSet(volume, key))) continue;
      const type = RESTRICTED_TYPES.find((key) => isSet(volume, key)) ?? 'unknown';
      out.push({
        check: 'restrictedVolumes',
        field: `${pod.specField}.volumes[${i}]${type === 'unknown' ? '' : `.${type}`}`,
        value: type,
        ...(type === 'hostPath' ? { subject: { kind: 'hostPath' as const, volume } } : {}),
      });
    }
    return out;
  },
};
