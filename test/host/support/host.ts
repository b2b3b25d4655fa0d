import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, it } from 'vitest';

/**
 * Host suites drive real Linux (lxcfs, cgroups, mount and network namespaces, capsh, bpf) as root. Where the machine
 * lacks what a suite needs they skip with the reason printed; in CI (`CI=true`) or with PODVISOR_REQUIRE_HOST=1 a
 * missing requirement is a failing test instead, so CI can never pass by skipping.
 */
export const HOST_REQUIRED = process.env['CI'] === 'true' || process.env['PODVISOR_REQUIRE_HOST'] === '1';

export interface Requirement {
  readonly name: string;
  /** The reason this machine cannot meet it, or undefined when it can. */
  readonly problem: () => string | undefined;
}

export const root: Requirement = {
  name: 'root',
  problem: () => (process.getuid?.() === 0 ? undefined : `runs as uid ${process.getuid?.()}, needs root`),
};

export function tool(name: string, debianPackage: string): Requirement {
  return {
    name,
    problem: () => (spawnSync('sh', ['-c', `command -v ${name}`]).status === 0 ? undefined : `${name} missing (Debian package ${debianPackage})`),
  };
}

export function path(file: string, what: string): Requirement {
  return {
    name: file,
    problem: () => {
      try {
        accessSync(file, constants.R_OK);
        return undefined;
      } catch {
        return `${file} missing (${what})`;
      }
    },
  };
}

/** `describe` when every requirement holds; otherwise a skip with the reasons, or in CI one failing test. */
export function hostDescribe(name: string, requirements: readonly Requirement[], body: () => void): void {
  const problems = requirements.map((r) => r.problem()).filter((p): p is string => p !== undefined);
  if (problems.length === 0) {
    describe(name, body);
    return;
  }
  const reason = problems.join('; ');
  if (HOST_REQUIRED) {
    describe(name, () => {
      it('has what the host suite needs', () => {
        throw new Error(`host suite cannot run here: ${reason}`);
      });
    });
    return;
  }
  console.warn(`[host] skipping "${name}": ${reason}`);
  describe.skip(name, body);
}

export interface Result {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to completion; never throws on a non-zero exit. */
export function run(command: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Result {
  const r = spawnSync(command, args, {
    encoding: 'utf8',
    env: options.env ?? process.env,
    input: options.input,
    timeout: options.timeoutMs ?? 30_000,
  });
  if (r.error !== undefined) return { code: -1, stdout: r.stdout ?? '', stderr: `${r.stderr ?? ''}${r.error.message}` };
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Runs a command that must succeed (setup as full root); throws with its output otherwise. */
export function must(command: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; input?: string } = {}): string {
  const r = run(command, args, options);
  if (r.code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

/** A random suffix for names on a machine that other test runs share (cgroups, netns, temp dirs). */
export function uniqueSuffix(): string {
  return `${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * Undo steps, run in reverse order after the suite even when it fails; each one's error is kept and the rest still
 * run, so one failure never leaves a mount, cgroup, loop device or process behind.
 */
export function teardown(): { add: (what: string, undo: () => unknown) => void } {
  const steps: { what: string; undo: () => unknown }[] = [];
  afterAll(async () => {
    const errors: string[] = [];
    for (const { what, undo } of steps.reverse()) {
      try {
        await undo();
      } catch (error) {
        errors.push(`${what}: ${(error as Error).message}`);
      }
    }
    if (errors.length > 0) throw new Error(`cleanup failed: ${errors.join('; ')}`);
  });
  return { add: (what, undo) => steps.push({ what, undo }) };
}

/** A fresh directory under the system temp dir, with the suite's name in it. */
export function tempDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `podvisor-host-${label}-`));
}

export const fuseDevice = path('/dev/fuse', 'the FUSE device');

export function cgroupsAvailable(): Requirement {
  return {
    name: 'cgroups',
    problem: () =>
      existsSync('/sys/fs/cgroup/cgroup.controllers') || existsSync('/sys/fs/cgroup/memory/memory.limit_in_bytes')
        ? undefined
        : 'no writable cgroup v2 or v1 memory hierarchy under /sys/fs/cgroup',
  };
}
