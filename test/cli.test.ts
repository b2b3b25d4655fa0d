import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { FIXTURES, violations } from './support/harness.js';
import { CLI, ensureFreshDist, ROOT } from './support/dist.js';


/** The compiled CLI, as `npx podvisor` runs it after `npm ci` (the prepare script builds dist/). */
function podvisor(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, input, encoding: 'utf8', timeout: 15_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The same, asynchronously: for commands that run while the test holds a resource (a port). */
function podvisorAsync(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

beforeAll(() => ensureFreshDist(), 60_000);

describe('podvisor inject', { timeout: 90_000 }, () => {
  it('mutates a multi-document file; untouched documents and kinds pass through', () => {
    const dir = mkdtempSync(join(tmpdir(), 'podvisor-cli-'));
    const file = join(dir, 'all.yaml');
    const docs = ['00-namespaces.yaml', '01-pod-nginx-lxcfs.yaml', '09-statefulset-postgres.yaml', '16-pod-mirror.yaml'];
    writeFileSync(file, docs.map((d) => readFixture(d)).join('\n---\n'));
    const r = podvisor(['inject', '-f', file]);
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

  it('reads standard input; the per-object summary and the warnings go to stderr', () => {
    const r = podvisor(['inject', '-f', '-'], readFixture('04-pod-volume-name-collision.yaml'));
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^Pod\/capacity-planner \(namespace web\): injected lxcfs\n  warning: spec.volumes: "podvisor-lxcfs-proc-cpuinfo" is the owner's name; \/proc\/cpuinfo not injected/m);
  });

  it('a mixed stream: every object gets a summary line, with the skip reason', () => {
    const stream = [
      'apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}',
      'apiVersion: v1\nkind: Pod\nmetadata: {name: plain, namespace: shop}\nspec: {containers: [{name: a, image: nginx}]}',
      'apiVersion: v1\nkind: Pod\nmetadata: {name: typo, namespace: shop, annotations: {podvisor.io/fuze: "true"}}\nspec: {containers: [{name: a, image: nginx}]}',
      readFixture('01-pod-nginx-lxcfs.yaml'),
    ].join('\n---\n');
    const r = podvisor(['inject', '-f', '-'], stream);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(
      [
        'Namespace/shop: skipped (kind not mutated by podvisor)',
        'Pod/plain (namespace shop): skipped (not opted in by an annotation or a default)',
        'Pod/typo (namespace shop): skipped (not opted in by an annotation or a default)',
        '  warning: metadata.annotations: unknown key "podvisor.io/fuze" ignored (did you mean "podvisor.io/fuse"?)',
        'Pod/web-nginx (namespace web): injected lxcfs',
        '4 object(s): 1 injected, 0 denied',
        '',
      ].join('\n'),
    );
    expect(parseAllDocuments(r.stdout)).toHaveLength(4);
  });

  it('-f is repeatable and takes directories (-R recursive), like kubectl; -o json prints one object or a List', () => {
    const dir = mkdtempSync(join(tmpdir(), 'podvisor-cli-'));
    mkdirSync(join(dir, 'nested'));
    writeFileSync(join(dir, 'a.yaml'), readFixture('01-pod-nginx-lxcfs.yaml'));
    writeFileSync(join(dir, 'notes.txt'), 'not a manifest');
    writeFileSync(join(dir, 'nested', 'b.yml'), readFixture('14-pod-fuse-rclone.yaml'));
    const names = (out: string) => parseAllDocuments(out).map((d) => d.toJS().metadata.name);
    const both = podvisor(['inject', '-f', join(dir, 'a.yaml'), '-f', join(dir, 'nested', 'b.yml')]);
    expect(both.code, both.stderr).toBe(0);
    expect(names(both.stdout)).toEqual(['web-nginx', 's3-archive-reader']);
    expect(names(podvisor(['inject', '-f', dir]).stdout)).toEqual(['web-nginx']);
    expect(names(podvisor(['inject', '-R', '-f', dir]).stdout)).toEqual(['web-nginx', 's3-archive-reader']);
    const single = JSON.parse(podvisor(['inject', '-o', 'json', '-f', join(dir, 'a.yaml')]).stdout);
    expect(single.kind).toBe('Pod');
    const list = JSON.parse(podvisor(['inject', '-o', 'json', '-R', '-f', dir]).stdout);
    expect(list.kind).toBe('List');
    expect(list.items.map((i: { metadata: { name: string } }) => i.metadata.name)).toEqual(['web-nginx', 's3-archive-reader']);
  });

  it('a denied object: exit 1, the denial in the summary, nothing on stdout', () => {
    const r = podvisor(['inject', '-c', 'examples/policies/locked-down.yaml', '-f', join(FIXTURES, '14-pod-fuse-rclone.yaml'), '-f', join(FIXTURES, '11-daemonset-agent-privileged.yaml')]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('DaemonSet/hostwatch-agent (namespace observability): DENIED by policy locked-down');
    expect(r.stderr).toMatch(/2 object\(s\): \d injected, \d denied \(nothing written\)\n$/);
  });

  it('bad input: exit 2 and one line naming the file and document index, never a stack', () => {
    const dir = mkdtempSync(join(tmpdir(), 'podvisor-cli-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, `${readFixture('01-pod-nginx-lxcfs.yaml')}\n---\n- just\n- a list\n`);
    const r = podvisor(['inject', '-f', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`podvisor: ${file}: document 1: expected a Kubernetes object (a mapping), got a list\n`);
    expect(r.stdout).toBe('');

    writeFileSync(file, 'apiVersion: v1\nkind: Pod\nmetadata: {name: x\n');
    const yaml = podvisor(['inject', '-f', file]);
    expect(yaml.code).toBe(2);
    expect(yaml.stderr).toMatch(new RegExp(`^podvisor: ${file}: document 0: invalid YAML[^\n]*\n$`));
    expect(podvisor(['inject', '-f', join(dir, 'missing.yaml')])).toEqual({ code: 2, stdout: '', stderr: `podvisor: ${join(dir, 'missing.yaml')}: cannot read: no such file or directory\n` });
    const empty = mkdtempSync(join(tmpdir(), 'podvisor-cli-'));
    expect(podvisor(['inject', '-f', empty])).toEqual({ code: 2, stdout: '', stderr: `podvisor: ${empty}: directory has no .yaml, .yml or .json files (-R reads subdirectories)\n` });
    expect(podvisor(['inject', '-f', '-'], '')).toEqual({ code: 2, stdout: '', stderr: 'podvisor: <stdin>: no Kubernetes objects in the input\n' });
    expect(podvisor(['inject'])).toEqual({ code: 2, stdout: '', stderr: 'podvisor: no input: give -f FILE, -f DIR or -f - (standard input)\n' });
  });

  it('a broken config refuses to run and names the field (exit 2)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'podvisor-cli-'));
    const config = join(dir, 'config.yaml');
    writeFileSync(config, 'lxcfs:\n  files: [/proc/pressure/io]\n');
    const r = podvisor(['inject', '-c', config, '-f', join(FIXTURES, '01-pod-nginx-lxcfs.yaml')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('lxcfs.files.0: unsupported LXCFS file "/proc/pressure/io"');
    const serve = podvisor(['serve', '-c', config]);
    expect(serve.code).toBe(2);
    expect(serve.stderr).toContain('lxcfs.files.0');
  });
});

describe('podvisor command line conventions', { timeout: 90_000 }, () => {
  const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

  it('bare podvisor prints help and exits 0 (no default command starts a server)', () => {
    const r = podvisor([]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: podvisor \[options\] \[command\]/);
    for (const command of ['serve', 'inject', 'check', 'version']) expect(r.stdout).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
  });

  it('--version, -v and podvisor version print the release from package.json', () => {
    for (const args of [['--version'], ['-v'], ['version']]) expect(podvisor(args)).toEqual({ code: 0, stdout: `podvisor ${version}\n`, stderr: '' });
  });

  it('an unknown command or option: exit 2 with a suggestion', () => {
    const typo = podvisor(['injet', '-f', 'x']);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain("error: unknown command 'injet'\n(Did you mean inject?)");
    const option = podvisor(['inject', '--fillename', 'x']);
    expect(option.code).toBe(2);
    expect(option.stderr).toContain("error: unknown option '--fillename'\n(Did you mean --filename?)");
    expect(podvisor(['inject', '-o', 'xml', '-f', 'x']).code).toBe(2);
  });

  it('serve logs its version in the ready line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'podvisor-cli-'));
    const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--ops-port', '0', '--cert-dir', join(dir, 'certs')], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const line = out.split('\n').find((l) => l.includes('"podvisor ready"'));
          if (line !== undefined) resolve(JSON.parse(line) as Record<string, unknown>);
        });
        child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${out}`)));
      });
      expect(ready['version']).toBe(version);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('serve on a busy port: exit 2 with one line, no stack', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as AddressInfo).port;
    try {
      const dir = mkdtempSync(join(tmpdir(), 'podvisor-cli-'));
      const config = join(dir, 'config.yaml');
      writeFileSync(config, `server: {address: 127.0.0.1, opsAddress: 127.0.0.1, opsPort: 0, port: ${port}}\nlogLevel: error\n`);
      const r = await podvisorAsync(['serve', '-c', config, '--cert-dir', join(dir, 'certs')]);
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(`podvisor: cannot listen on 127.0.0.1:${port}: address already in use (choose another with --port / --ops-port)\n`);
    } finally {
      blocker.close();
    }
  });
});

function readFixture(name: string): string {
  return spawnSync('cat', [join(FIXTURES, name)], { encoding: 'utf8' }).stdout;
}
