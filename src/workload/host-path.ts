import { posix } from 'node:path';

/** A path posix.normalize would return unchanged: absolute, no empty, `.` or `..` segment, no trailing slash. */
const NORMAL = /^(?:\/(?!\.\.?(?:\/|$))[^/]+)+$/;

/** `/var/lib/lxcfs//proc/meminfo/` and `/var/lib/lxcfs/proc/meminfo` name the same host path. */
export function normalizeHostPath(path: string): string {
  // Most host paths are written normally: the regular expression is several times cheaper than posix.normalize.
  if (NORMAL.test(path)) return path;
  const normalized = posix.normalize(path);
  return normalized.length > 1 && normalized.endsWith('/') ? normalized.slice(0, -1) : normalized;
}
