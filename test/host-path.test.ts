import { posix } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { normalizeHostPath } from '../src/workload/host-path.js';

/** The definition: posix.normalize, without a trailing slash (except for the root). */
function byDefinition(path: string): string {
  const normalized = posix.normalize(path);
  return normalized.length > 1 && normalized.endsWith('/') ? normalized.slice(0, -1) : normalized;
}

describe('normalizeHostPath', () => {
  it('names one host path one way', () => {
    expect(normalizeHostPath('/var/lib/lxcfs//proc/meminfo/')).toBe('/var/lib/lxcfs/proc/meminfo');
    expect(normalizeHostPath('/var/lib/./lxcfs/../lxcfs/proc')).toBe('/var/lib/lxcfs/proc');
    expect(normalizeHostPath('/')).toBe('/');
    expect(normalizeHostPath('//')).toBe('/');
    expect(normalizeHostPath('/...')).toBe('/...');
    expect(normalizeHostPath('/a/..b/.c')).toBe('/a/..b/.c');
  });

  it('property: the fast path for paths already normal gives what posix.normalize gives', () => {
    const segment = fc.oneof(fc.constantFrom('', '.', '..', '...', '.a', 'a.', '..a', 'proc', 'meminfo'), fc.string({ maxLength: 4 }));
    const path = fc.tuple(fc.boolean(), fc.array(segment, { maxLength: 6 }), fc.boolean()).map(([absolute, segments, trailing]) => `${absolute ? '/' : ''}${segments.join('/')}${trailing ? '/' : ''}`);
    fc.assert(fc.property(path, (p) => normalizeHostPath(p) === byDefinition(p)), { numRuns: 5000 });
  });
});
