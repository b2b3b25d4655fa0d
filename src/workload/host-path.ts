import { posix } from 'node:path';

/** `/var/lib/lxcfs//proc/meminfo/` and `/var/lib/lxcfs/proc/meminfo` name the same host path. */
export function normalizeHostPath(path: string): string {
  const normalized = posix.normalize(path);
  return normalized.length > 1 && normalized.endsWith('/') ? normalized.slice(0, -1) : normalized;
}
