import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { FIXTURES, violations } from './support/harness.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'dist/cli.js');

/** The compiled CLI, as `npx podvisor` runs it after `npm ci` (the prepare script builds dist/). */
function podvisor(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, input, encoding: 'utf8', timeout: 15_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  // Tests run against the current sources: rebuild dist/ so the CLI is never stale.
  const build = spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT, encoding: 'utf8' });
  expect(build.status, build.stdout + build.stderr).toBe(0);
}, 60_000);

describe('podvisor inject', () => {
  it('mutates a multi-document file; untouched documents and kinds pass through', () => {
    const dir = mkdtempSync(join(tmpdir(), 'podvisor-cli-'));
    const file = join(dir, 'all.yaml');
    const docs = ['00-namespaces.yaml', '01-pod-nginx-lxcfs.yaml', '09-statefulset-postgres.yaml', '16-pod-mirror.yaml'];
    writeFileSync(file, docs.map((d) => readFixture(d)).join('\n---\n'));
    const r = podvisor(['inject', '-f', file]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = parseAllDocuments(r.stdout).map((d) => d.toJS());
    expect(out.map((o) => o.kind)).toEqual(['Namespace', 'Namespace', 'Namespace', 'Namespace', 'Namespace', 'Namespace', 'Pod', 'StatefulSet', 'Pod']);
    const pod = out[6];
    expect(pod.metadata.annotations['podvisor.io/status']).toBeDefined();
    expect(pod.spec.volumes.filter((v: { name: string }) => v.name.startsWith('podvisor-lxcfs-'))).toHaveLength(8);
    expect(violations(pod)).toEqual([]);
    expect(violations(out[7])).toEqual([]);
    expect(out[8].metadata.annotations['podvisor.io/status']).toBeUndefined();

    // Round trip: injecting the output again changes nothing.
    const again = podvisor(['inject', '-f', '-'], r.stdout);
    expect(again.code).toBe(0);
    expect(parseAllDocuments(again.stdout).map((d) => d.toJS())).toEqual(out);
  });

  it('reads standard input and prints warnings on stderr', () => {
    const r = podvisor(['inject', '-f', '-'], readFixture('04-pod-volume-name-collision.yaml'));
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^warning: Pod\/capacity-planner: spec.volumes: "podvisor-lxcfs-proc-cpuinfo" is the owner's name; \/proc\/cpuinfo not injected/m);
  });

  it('bad input: non-zero exit naming the file and document index', () => {
    const dir = mkdtempSync(join(tmpdir(), 'podvisor-cli-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, `${readFixture('01-pod-nginx-lxcfs.yaml')}\n---\n- just\n- a list\n`);
    const r = podvisor(['inject', '-f', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`podvisor: ${file}: document 1: expected a Kubernetes object (a mapping), got a list\n`);
    expect(r.stdout).toBe('');

    writeFileSync(file, 'apiVersion: v1\nkind: Pod\nmetadata: {name: x\n');
    const yaml = podvisor(['inject', '-f', file]);
    expect(yaml.code).toBe(1);
    expect(yaml.stderr).toMatch(new RegExp(`^podvisor: ${file}: document 0: invalid YAML`));
    expect(podvisor(['inject', '-f', join(dir, 'missing.yaml')]).code).toBe(1);
  });

  it('a broken config refuses to run and names the field', () => {
    const dir = mkdtempSync(join(tmpdir(), 'podvisor-cli-'));
    const config = join(dir, 'config.yaml');
    writeFileSync(config, 'lxcfs:\n  files: [/proc/pressure/io]\n');
    const r = podvisor(['inject', '-c', config, '-f', join(FIXTURES, '01-pod-nginx-lxcfs.yaml')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('lxcfs.files.0: unsupported LXCFS file "/proc/pressure/io"');
    const serve = podvisor(['serve', '-c', config]);
    expect(serve.code).toBe(1);
    expect(serve.stderr).toContain('lxcfs.files.0');
  });
});

function readFixture(name: string): string {
  return spawnSync('cat', [join(FIXTURES, name)], { encoding: 'utf8' }).stdout;
}
