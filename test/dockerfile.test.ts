/**
 * The Dockerfile cannot be built here (no container engine). What can be checked without one is checked: every COPY
 * source exists and survives .dockerignore, the build stage's RUN commands succeed on a copy of exactly the build
 * context, the pruned tree has no dev dependency, and the runtime stage's command works from that tree as the
 * image's numeric non-root user with a read-only tree (only the cert dir writable, like the Deployment's emptyDir).
 */
import { execFile, spawn } from 'node:child_process';
import { chmod, cp, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = new URL('..', import.meta.url).pathname;
const dockerfile = await readFile(join(root, 'Dockerfile'), 'utf8');
const dockerignore = await readFile(join(root, '.dockerignore'), 'utf8');

interface Instruction {
  readonly stage: string;
  readonly op: string;
  readonly args: string;
}

/** Dockerfile instructions with line continuations joined and comments dropped, tagged with their stage name. */
function instructions(text: string): Instruction[] {
  const lines = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  let stage = '';
  return lines.map((line) => {
    const [op = '', ...rest] = line.split(/\s+/);
    const args = rest.join(' ');
    if (op.toUpperCase() === 'FROM') stage = /\bAS\s+(\S+)/i.exec(args)?.[1] ?? 'runtime';
    return { stage, op: op.toUpperCase(), args };
  });
}

/** The build context .dockerignore lets through: it ignores everything, then re-includes listed paths. */
function contextIncludes(path: string): boolean {
  const rules = dockerignore.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  let included = true;
  for (const rule of rules) {
    const negated = rule.startsWith('!');
    const pattern = (negated ? rule.slice(1) : rule).replace(/\/$/, '');
    if (pattern === '*' || pattern === path || path.startsWith(`${pattern}/`)) included = negated;
  }
  return included;
}

const steps = instructions(dockerfile);
const buildStage = steps.filter((s) => s.stage === 'build');
const runtimeStage = steps.filter((s) => s.stage === 'runtime');
const nodeMajor = Number(/ARG NODE_MAJOR=(\d+)/.exec(dockerfile)?.[1]);

describe('Dockerfile', () => {
  it('is multi-stage: node slim build, distroless runtime on a supported LTS, numeric non-root user', () => {
    expect(steps.filter((s) => s.op === 'FROM').map((s) => s.args)).toEqual([
      'node:${NODE_MAJOR}-bookworm-slim AS build',
      'gcr.io/distroless/nodejs${NODE_MAJOR}-debian12:nonroot',
    ]);
    // Node 20 is end-of-life (2026-04-30); 22 and 24 are LTS lines.
    expect([22, 24]).toContain(nodeMajor);
    const user = runtimeStage.find((s) => s.op === 'USER')?.args;
    expect(user).toMatch(/^[1-9]\d*:[1-9]\d*$/);
    // The Deployment runs as this user (runAsUser), so runAsNonRoot can be verified by the kubelet.
    expect(user).toBe('65532:65532');
  });

  it('copies only what exists in the build context, and keeps package.json ("type": "module") in the runtime', async () => {
    for (const step of buildStage.filter((s) => s.op === 'COPY')) {
      const sources = step.args.split(/\s+/).slice(0, -1);
      for (const source of sources) {
        await expect(stat(join(root, source)), source).resolves.toBeDefined();
        expect(contextIncludes(source.replace(/^\.\//, '').replace(/\/$/, '')), `${source} excluded by .dockerignore`).toBe(true);
      }
    }
    const runtimeCopies = runtimeStage.filter((s) => s.op === 'COPY').map((s) => s.args);
    expect(runtimeCopies).toEqual(['--from=build /app/package.json ./', '--from=build /app/node_modules ./node_modules', '--from=build /app/dist ./dist']);
    expect(JSON.parse(await readFile(join(root, 'package.json'), 'utf8')).type).toBe('module');
    expect(contextIncludes('node_modules')).toBe(false);
    expect(contextIncludes('dist')).toBe(false);
    expect(contextIncludes('test')).toBe(false);
  });

  describe('the build stage, run on a copy of the build context', () => {
    let work: string;
    let certDir: string;
    const entrypoint = JSON.parse(runtimeStage.find((s) => s.op === 'ENTRYPOINT')!.args) as string[];
    const cmd = JSON.parse(runtimeStage.find((s) => s.op === 'CMD')!.args) as string[];

    beforeAll(async () => {
      work = await mkdtemp(join(tmpdir(), 'podvisor-image-'));
      for (const step of buildStage.filter((s) => s.op === 'COPY')) {
        for (const source of step.args.split(/\s+/).slice(0, -1)) await cp(join(root, source), join(work, source), { recursive: true });
      }
      for (const step of buildStage.filter((s) => s.op === 'RUN')) {
        await run('/bin/sh', ['-c', step.args], { cwd: work, timeout: 400_000, maxBuffer: 64 * 1024 * 1024 });
      }
      // Loopback only: the embedded defaults listen on 0.0.0.0.
      await writeFile(join(work, 'loopback.yaml'), 'server:\n  address: 127.0.0.1\n  opsAddress: 127.0.0.1\n');
      certDir = join(work, 'certs-emptydir');
      await mkdir(certDir);
      await chmod(certDir, 0o777);
      // The image's file system is read-only for the process: a-w on everything, and a non-root uid below.
      await run('chmod', ['-R', 'a-w,a+rX', join(work, 'dist'), join(work, 'node_modules'), join(work, 'package.json')]);
      await chmod(work, 0o555);
    }, 600_000);

    afterAll(async () => {
      if (work !== undefined) {
        await chmod(work, 0o755);
        await run('chmod', ['-R', 'u+w', work]);
        await rm(work, { recursive: true, force: true });
      }
    });

    it('builds dist/ and prunes every dev dependency', async () => {
      const pkg = JSON.parse(await readFile(join(work, 'package.json'), 'utf8')) as { dependencies: object; devDependencies: object };
      const installed = new Set([...(await readdir(join(work, 'node_modules'))), ...(await readdir(join(work, 'node_modules', '@kubernetes')).then((d) => d.map((n) => `@kubernetes/${n}`)))]);
      for (const dev of Object.keys(pkg.devDependencies)) expect(installed.has(dev), `${dev} left in the image`).toBe(false);
      for (const dep of Object.keys(pkg.dependencies)) expect(installed.has(dep), `${dep} missing from the image`).toBe(true);
      await expect(stat(join(work, 'dist', 'cli.js'))).resolves.toBeDefined();
    });

    /** The image's ENTRYPOINT + args, with the local node for /nodejs/bin/node, as uid/gid 65532. */
    function imageCommand(args: readonly string[]): [string, string[]] {
      const [, ...nodeArgs] = entrypoint;
      const appArgs = nodeArgs.map((a) => a.replace(/^\/app\//, `${work}/`));
      return ['setpriv', ['--reuid=65532', '--regid=65532', '--clear-groups', process.execPath, ...appArgs, ...args]];
    }

    it('runs the CLI from the pruned tree as 65532 with a read-only tree', async () => {
      const [file, args] = imageCommand(['--help']);
      const { stdout } = await run(file, args, { cwd: work, env: { PATH: process.env['PATH'] ?? '' } });
      expect(stdout).toContain('serve');
      const [file2, args2] = imageCommand([...cmd, '--help']);
      expect((await run(file2, args2, { cwd: work, env: { PATH: process.env['PATH'] ?? '' } })).stdout).toContain('--cert-dir');
    });

    it('serves from the pruned tree: certificates generated into the writable cert dir only, probes answer', async () => {
      const [file, args] = imageCommand([...cmd, '--config', join(work, 'loopback.yaml'), '--port', '0', '--ops-port', '0', '--cert-dir', certDir]);
      const child = spawn(file, args, { cwd: work, env: { PATH: process.env['PATH'] ?? '', HOME: '/nonexistent' } });
      try {
        let output = '';
        const opsPort = await new Promise<number>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no 'podvisor ready' line:\n${output}`)), 30_000);
          const onData = (chunk: Buffer): void => {
            output += chunk.toString();
            const port = /"opsPort":(\d+)/.exec(output)?.[1];
            if (port !== undefined && output.includes('podvisor ready')) {
              clearTimeout(timer);
              resolve(Number(port));
            }
          };
          child.stdout.on('data', onData);
          child.stderr.on('data', onData);
          child.once('exit', (code) => reject(new Error(`exited ${code}:\n${output}`)));
        });
        expect((await fetch(`http://127.0.0.1:${opsPort}/healthz`)).status).toBe(200);
        expect((await fetch(`http://127.0.0.1:${opsPort}/readyz`)).status).toBe(200);
        expect((await readdir(certDir)).sort()).toEqual(['ca.crt', 'tls.crt', 'tls.key']);
      } finally {
        child.kill('SIGKILL');
      }
    });
  });
});
