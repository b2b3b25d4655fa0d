import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Requirement } from './host.js';

/**
 * A cgroup with a Pod container's CPU and memory limits, the files kubelet's cgroup driver writes: cgroup v1
 * `memory.limit_in_bytes` and `cpu.cfs_quota_us`/`cpu.cfs_period_us` (period 100 ms, quota = CPU × period) in the
 * memory, cpu, cpuacct and cpuset hierarchies, or v2
 * `memory.max` and `cpu.max`. It is created below this process's own cgroup, so the limits of whoever runs the tests
 * still apply.
 */
export interface Limits {
  readonly memoryBytes: number;
  readonly cpus: number;
}

const ROOT = '/sys/fs/cgroup';
const PERIOD_US = 100_000;
const unified = (): boolean => existsSync(join(ROOT, 'cgroup.controllers'));

/** This process's cgroup path per v1 controller (`memory` → `/process_api/…`), or per `''` on v2. */
function ownCgroups(): Map<string, string> {
  const byController = new Map<string, string>();
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n')) {
    const [, controllers = '', path = '/'] = line.split(':');
    for (const c of controllers.split(',')) byController.set(c, path);
  }
  return byController;
}

export const cgroupLimits: Requirement = {
  name: 'cgroup memory and cpu controllers',
  problem: () => {
    if (unified()) {
      const parent = join(ROOT, ownCgroups().get('') ?? '/');
      const enabled = readFileSync(join(parent, 'cgroup.subtree_control'), 'utf8');
      return enabled.includes('memory') && enabled.includes('cpu') ? undefined : `cgroup v2: memory and cpu are not enabled in ${parent}/cgroup.subtree_control`;
    }
    return existsSync(join(ROOT, 'memory/memory.limit_in_bytes')) && existsSync(join(ROOT, 'cpu/cpu.cfs_quota_us'))
      ? undefined
      : 'cgroup v1 without memory and cpu hierarchies';
  },
};

function inherited(parent: string, files: readonly string[]): Record<string, string> {
  return Object.fromEntries(files.map((f) => [f, readFileSync(join(parent, f), 'utf8').trim()]));
}

export interface LimitedCgroup {
  /** Directories a process joins by writing its PID to `cgroup.procs` in each. */
  readonly directories: readonly string[];
  readonly remove: () => void;
}

export function createLimitedCgroup(name: string, limits: Limits): LimitedCgroup {
  const own = ownCgroups();
  const quota = String(Math.round(limits.cpus * PERIOD_US));
  const files: [string, Record<string, string>][] = unified()
    ? [[join(ROOT, own.get('') ?? '/', name), { 'memory.max': String(limits.memoryBytes), 'cpu.max': `${quota} ${PERIOD_US}` }]]
    : [
        [join(ROOT, 'memory', own.get('memory') ?? '/', name), { 'memory.limit_in_bytes': String(limits.memoryBytes) }],
        [join(ROOT, 'cpu', own.get('cpu') ?? '/', name), { 'cpu.cfs_period_us': String(PERIOD_US), 'cpu.cfs_quota_us': quota }],
        // kubelet creates the container's cgroup in every hierarchy; lxcfs looks up the CFS quota at the container's
        // cpuset path, and a cpuset cgroup takes no process before it has CPUs and memory nodes.
        [join(ROOT, 'cpuacct', own.get('cpuacct') ?? '/', name), {}],
        [join(ROOT, 'cpuset', own.get('cpuset') ?? '/', name), inherited(join(ROOT, 'cpuset', own.get('cpuset') ?? '/'), ['cpuset.cpus', 'cpuset.mems'])],
      ];
  const created: string[] = [];
  const remove = () => {
    for (const dir of created.reverse()) if (existsSync(dir)) rmdirSync(dir);
  };
  try {
    for (const [dir, values] of files) {
      mkdirSync(dir);
      created.push(dir);
      for (const [file, value] of Object.entries(values)) writeFileSync(join(dir, file), value);
    }
  } catch (error) {
    remove();
    throw error;
  }
  return { directories: files.map(([dir]) => dir), remove };
}
