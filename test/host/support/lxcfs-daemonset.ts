import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DaemonSet } from 'kubernetes-types/apps/v1.js';
import type { Container } from 'kubernetes-types/core/v1.js';
import { parse } from 'yaml';
import { run } from './host.js';

const MANIFEST = join(import.meta.dirname, '../../../deploy/components/lxcfs/daemonset.yaml');

/** The lxcfs container of the shipped DaemonSet, as written in deploy/components/lxcfs. */
export function lxcfsContainer(): Container {
  const ds = parse(readFileSync(MANIFEST, 'utf8')) as DaemonSet;
  const container = ds.spec?.template.spec?.containers.find((c) => c.name === 'lxcfs');
  if (container === undefined) throw new Error(`${MANIFEST}: no container "lxcfs"`);
  return container;
}

function env(container: Container, name: string): string {
  const value = container.env?.find((e) => e.name === name)?.value;
  if (value === undefined) throw new Error(`${MANIFEST}: lxcfs container has no env ${name}`);
  return value;
}

export interface RunningLxcfs {
  readonly pid: number;
  /** LXCFS_ROOT: where lxcfs serves, inside its mount namespace. */
  readonly root: string;
  /** Runs a command in lxcfs's mount namespace, where its FUSE mount lives (the node's view). */
  readonly nsenterArgs: readonly string[];
  readonly stderr: () => string;
  readonly stop: () => Promise<void>;
}

/**
 * Starts lxcfs the way the DaemonSet does: the container's own command, args and env (so its flags and mount root)
 * from the manifest, as root. It runs in a private mount namespace with fresh tmpfs on /run (lxcfs's pidfile, so a
 * second lxcfs on the machine does not clash) and on /var/lib (where the DaemonSet's hostPath parent /var/lib/lxc is
 * created, as kubelet's DirectoryOrCreate would), so the node's own directories stay untouched.
 */
export async function startLxcfsLikeTheDaemonSet(): Promise<RunningLxcfs> {
  const container = lxcfsContainer();
  const root = env(container, 'LXCFS_ROOT');
  const [shell, ...shellArgs] = [...(container.command ?? []), ...(container.args ?? [])];
  if (shell === undefined) throw new Error(`${MANIFEST}: lxcfs container has no command`);
  const prepare = 'mount -t tmpfs tmpfs /run && mount -t tmpfs tmpfs /var/lib && exec "$@"';
  const child = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-ec', prepare, 'prepare', shell, ...shellArgs], {
    env: { ...process.env, ...Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value ?? ''])) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const pid = child.pid!;
  const nsenterArgs = ['-t', String(pid), '-m', '--'];
  const stop = async () => {
    child.kill('SIGTERM');
    const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 5000));
    if ((await Promise.race([exited, timeout])) === 'timeout') child.kill('SIGKILL');
    await exited;
  };

  // Ready when the DaemonSet's own readinessProbe passes in lxcfs's mount namespace.
  const probe = container.readinessProbe?.exec?.command;
  if (probe === undefined) throw new Error(`${MANIFEST}: lxcfs container has no exec readinessProbe`);
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) break;
    if (run('nsenter', [...nsenterArgs, ...probe]).code === 0) return { pid, root, nsenterArgs, stderr: () => stderr, stop };
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new Error(`lxcfs did not become ready (exit ${child.exitCode}): ${stderr}`);
}
