/**
 * Install without guesswork: the images podvisor's manifests name are ones users build themselves (a placeholder
 * registry that never resolves until an overlay overrides it), third-party images are pinned, the lxcfs image pins
 * the package it installs, and docs/install.md says what every component needs from the node.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('..', import.meta.url).pathname;
const KUBECTL = process.env['KUBECTL'] ?? '/usr/bin/kubectl';
const run = promisify(execFile);

async function images(dir: string): Promise<string[]> {
  const { stdout } = await run(KUBECTL, ['kustomize', join(ROOT, 'deploy', dir)], { maxBuffer: 32 * 1024 * 1024 });
  const found = new Set<string>();
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(visit);
    else if (node !== null && typeof node === 'object') {
      for (const [key, value] of Object.entries(node)) {
        if (key === 'image' && typeof value === 'string') found.add(value);
        else visit(value);
      }
    }
  };
  parseAllDocuments(stdout).forEach((d) => visit(d.toJS()));
  return [...found].sort();
}

describe('install', () => {
  it('podvisor\'s own images point at the placeholder registry; third-party images carry a pinned tag', async () => {
    const all = new Set<string>();
    for (const dir of ['overlays/self-managed', 'overlays/cert-manager', 'components/lxcfs', 'components/fuse-device-plugin', 'components/apparmor']) {
      for (const image of await images(dir)) all.add(image);
    }
    const ours = [...all].filter((i) => /podvisor/.test(i));
    expect(ours.sort()).toEqual(['registry.example.com/podvisor-lxcfs:6.0.4', 'registry.example.com/podvisor:0.1.0']);
    for (const image of all) expect(image, image).toMatch(/:[^:/]+$/);
    for (const image of all) expect(image, image).not.toMatch(/:latest$/);
  });

  it('the lxcfs image installs a pinned Debian package of the release its tag names', () => {
    const dockerfile = readFileSync(join(ROOT, 'deploy/components/lxcfs/Dockerfile'), 'utf8');
    const pinned = /^ARG LXCFS_VERSION=(\S+)$/m.exec(dockerfile)?.[1];
    expect(pinned).toMatch(/^\d+\.\d+\.\d+-\S+$/);
    expect(dockerfile).toContain('"lxcfs=${LXCFS_VERSION}"');
    const kustomization = readFileSync(join(ROOT, 'deploy/components/lxcfs/kustomization.yaml'), 'utf8');
    const tag = /newTag: (\S+)/.exec(kustomization)?.[1];
    expect(pinned!.startsWith(`${tag}-`)).toBe(true);
  });

  it('docs/install.md has one table saying what each component needs from the node', () => {
    const doc = readFileSync(join(ROOT, 'docs/install.md'), 'utf8');
    const section = doc.slice(doc.indexOf('## What each component needs from the node'));
    const table = section.split('\n').filter((l) => l.startsWith('|'));
    expect(table[0]).toBe('| component | needed when | kernel | node setup |');
    for (const component of ['deploy/components/lxcfs', 'deploy/components/fuse-device-plugin', 'deploy/components/apparmor', 'podvisor (Deployment)']) {
      expect(table.some((row) => row.includes(component)), component).toBe(true);
    }
  });
});
