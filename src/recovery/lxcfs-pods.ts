import type { Pod } from 'kubernetes-types/core/v1.js';
import { timestampMillis } from './timestamps.js';

/** What the recovery controller tracks of the lxcfs DaemonSet's pod on one node. */
export interface LxcfsNodeState {
  readonly node: string;
  readonly podUid: string;
  /** restartCount of the lxcfs container. */
  readonly restarts: number;
  /** The lxcfs container is ready (its readinessProbe reads a FUSE file): new binds of its files are live. */
  readonly ready: boolean;
  /** When the running lxcfs container started (ms since the epoch, node clock); undefined while not running. */
  readonly startedAt: number | undefined;
}

/** The lxcfs container's state in one of the DaemonSet's pods; undefined for a pod not yet bound to a node. */
export function lxcfsStateOf(pod: Pod, containerName: string): LxcfsNodeState | undefined {
  const node = pod.spec?.nodeName;
  const uid = pod.metadata?.uid;
  if (node === undefined || node === '' || uid === undefined) return undefined;
  const status = pod.status?.containerStatuses?.find((c) => c.name === containerName);
  return {
    node,
    podUid: uid,
    restarts: status?.restartCount ?? 0,
    ready: status?.ready === true && pod.metadata?.deletionTimestamp === undefined,
    startedAt: timestampMillis(status?.state?.running?.startedAt),
  };
}

/**
 * Whether lxcfs on a node restarted between two observations: the container restarted (restartCount went up) or the
 * pod was replaced (new uid; OnDelete upgrades, evictions, node reboots). Every restart leaves the FUSE binds of
 * running consumers dead (ENOTCONN; lxcfs.md §5). The first observation of a node is a baseline, not a restart.
 */
export function lxcfsRestarted(previous: LxcfsNodeState | undefined, current: LxcfsNodeState): boolean {
  if (previous === undefined) return false;
  return previous.podUid !== current.podUid || current.restarts > previous.restarts;
}
