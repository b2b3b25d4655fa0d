import { join } from 'node:path';
import { run } from './host.js';

/**
 * A process the way runc starts a container process for uid 0: the bounding set is exactly the granted capabilities
 * (everything else dropped with `capsh --drop`), the inheritable set empty, so every program it executes as root gets
 * permitted = effective = the granted set. Setup runs before that as full root, in the same private mount (and,
 * when asked, network) namespace, so its mounts vanish with the process.
 */

let known: string[] | undefined;

/** Every capability this kernel and libcap know, as capsh names them (`cap_chown`, …): capsh's bounding set as root. */
export function allCapabilities(): string[] {
  return (known ??= readBoundingSet());
}

function readBoundingSet(): string[] {
  const printed = run('capsh', ['--print']).stdout;
  const line = printed.split('\n').find((l) => l.startsWith('Bounding set ='));
  if (line === undefined) throw new Error(`capsh --print has no bounding set:\n${printed}`);
  return line.slice('Bounding set ='.length).split(',').map((c) => c.trim()).filter((c) => c.length > 0);
}

/** `SYS_ADMIN` → `cap_sys_admin`. */
export const capshName = (capability: string): string => `cap_${capability.toLowerCase()}`;

export interface Step {
  /** What the step does, as the proof table names it. */
  readonly name: string;
  readonly sh: string;
}

export interface Confinement {
  /** Bare capability names, as in `securityContext.capabilities.add`. */
  readonly capabilities: readonly string[];
  readonly steps: readonly Step[];
  /** Shell run as full root first (mounts, interfaces). */
  readonly setup?: string;
  readonly newNetworkNamespace?: boolean;
  readonly env?: Record<string, string>;
}

export interface Outcome {
  readonly ok: boolean;
  /** The effective set the steps ran with, as capsh prints it (`cap_bpf,cap_perfmon`, or empty). */
  readonly effective: string;
  /** The first step that failed, and what it printed. */
  readonly failed?: { readonly step: string; readonly output: string };
  readonly output: string;
}

const MARK = 'PODVISOR-STEP';

function script(steps: readonly Step[]): string {
  const lines = ['printf "%s\\n" "$(capsh --print | sed -n "s/^Current: =*//p")" > "$PODVISOR_EFFECTIVE"'];
  steps.forEach((step, i) => {
    lines.push(`echo "${MARK} ${i}" >&2`, `( ${step.sh} ) >&2 || { echo "${MARK} failed ${i}" >&2; exit 1; }`);
  });
  return lines.join('\n');
}

let runs = 0;

/** Runs the steps confined; `dir` holds the per-run files (`$RUN` names them, unique per run). */
export function runConfined(c: Confinement, dir: string): Outcome {
  const id = String(++runs);
  const effectiveFile = join(dir, `effective-${id}`);
  const granted = new Set(c.capabilities.map(capshName));
  const dropped = allCapabilities().filter((cap) => !granted.has(cap));
  const unknown = [...granted].filter((cap) => !allCapabilities().includes(cap));
  if (unknown.length > 0) throw new Error(`this kernel/libcap does not know ${unknown.join(', ')}`);
  const capsh = `exec capsh ${dropped.length > 0 ? `--drop=${dropped.join(',')} ` : ''}--inh= -- -c 'eval "$PODVISOR_SCRIPT"'`;
  const outer = `set -e\n${c.setup ?? ''}\n${capsh}`;
  const r = run('unshare', ['-m', ...(c.newNetworkNamespace === true ? ['-n'] : []), '--propagation', 'private', 'sh', '-c', outer], {
    env: { ...process.env, ...c.env, RUN: id, PODVISOR_SCRIPT: script(c.steps), PODVISOR_EFFECTIVE: effectiveFile },
    timeoutMs: 60_000,
  });
  const output = `${r.stdout}${r.stderr}`;
  const effective = run('cat', [effectiveFile]).stdout.trim().replace(/=ep$/, '');
  const failedAt = /PODVISOR-STEP failed (\d+)/.exec(r.stderr);
  if (r.code === 0) return { ok: true, effective, output };
  if (failedAt === null) return { ok: false, effective, failed: { step: 'setup', output: output.trim() }, output };
  const index = Number(failedAt[1]);
  const section = r.stderr.split(`${MARK} ${index}\n`)[1]?.split(`${MARK} failed`)[0] ?? '';
  return { ok: false, effective, failed: { step: c.steps[index]!.name, output: section.trim() }, output };
}
