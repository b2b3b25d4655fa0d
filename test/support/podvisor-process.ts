// `podvisor serve` as a child process: from the sources through tsx, offline (no KUBECONFIG), on 127.0.0.1 with
// OS-chosen ports (startPodvisorProcess); or the built CLI (dist/cli.js) with any flags, as the end-to-end suite runs
// it against a real cluster (startPodvisorServe). Its JSON log lines are collected so a test can wait for "config
// reloaded" and the like.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface LogLine {
  readonly msg?: string;
  readonly level?: number;
  readonly [key: string]: unknown;
}

export interface PodvisorProcess {
  readonly child: ChildProcess;
  readonly admissionPort: number;
  readonly opsPort: number;
  readonly logs: LogLine[];
  /** Resolves with the first log line (already seen or to come) that `match` accepts; rejects after `timeoutMs`. */
  waitForLog(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Resolves with the exit code once the process has exited. */
  readonly exited: Promise<number | null>;
  /** SIGKILL if still running (test cleanup). */
  kill(): Promise<void>;
}

function offlineEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env['KUBECONFIG'];
  delete env['KUBERNETES_SERVICE_HOST'];
  return env;
}

export interface ServeOptions {
  readonly timeoutMs?: number;
  /** Keep the per-review log lines (`review`, `validate`): a test that asserts what podvisor answered reads them. */
  readonly keepReviews?: boolean;
  /** Extra node arguments before the program, e.g. `--import <fault injection>`. */
  readonly nodeArgs?: readonly string[];
  /** Added to the (offline) environment, e.g. POD_NAME, the recovery Lease identity the Downward API sets in a pod. */
  readonly env?: Readonly<Record<string, string>>;
}

/** Starts `podvisor serve --config <configFile>`; the config must set address 127.0.0.1, port 0, opsPort 0, logLevel info. */
export function startPodvisorProcess(configFile: string, timeoutMs = 20_000, options: Omit<ServeOptions, 'timeoutMs'> = {}): Promise<PodvisorProcess> {
  return spawnPodvisor(['--import', 'tsx', ...(options.nodeArgs ?? []), join(ROOT, 'src/cli.ts'), 'serve', '--config', configFile], { ...options, timeoutMs });
}

/** Starts the built CLI (`node dist/cli.js serve <args>`, as `npx podvisor` runs it), without KUBECONFIG from the environment. */
export function startPodvisorServe(args: readonly string[], options: ServeOptions = {}): Promise<PodvisorProcess> {
  return spawnPodvisor([...(options.nodeArgs ?? []), join(ROOT, 'dist/cli.js'), 'serve', ...args], options);
}

async function spawnPodvisor(nodeArgs: string[], options: ServeOptions): Promise<PodvisorProcess> {
  const timeoutMs = options.timeoutMs ?? 20_000;
  const child = spawn(process.execPath, nodeArgs, { cwd: ROOT, env: { ...offlineEnv(), ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: LogLine[] = [];
  const waiters: { match: (line: LogLine) => boolean; resolve: (line: LogLine) => void }[] = [];
  let stderr = '';
  let pending = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const text of lines) {
      if (text.trim() === '') continue;
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        line = { msg: text };
      }
      // Per-review lines are kept only when asked: under load they would fill memory for nothing.
      if ((line.msg === 'review' || line.msg === 'validate') && options.keepReviews !== true) continue;
      logs.push(line);
      for (const waiter of [...waiters]) {
        if (waiter.match(line)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(line);
        }
      }
    }
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const waitForLog = (match: (line: LogLine) => boolean, wait = 10_000): Promise<LogLine> => {
    const seen = logs.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise<LogLine>((resolve, reject) => {
      const waiter = { match, resolve: (line: LogLine) => (clearTimeout(timer), resolve(line)) };
      const timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(waiter), 1);
        reject(new Error(`no matching log line within ${wait} ms; stderr: ${stderr.slice(-500)}; last lines: ${JSON.stringify(logs.slice(-5))}`));
      }, wait);
      waiters.push(waiter);
    });
  };

  const ready = await Promise.race([
    waitForLog((l) => l.msg === 'podvisor ready', timeoutMs),
    exited.then((code) => Promise.reject(new Error(`podvisor exited with ${code} before it was ready: ${stderr.slice(-1000)}`))),
  ]);
  return {
    child,
    admissionPort: Number(ready['admissionPort']),
    opsPort: Number(ready['opsPort']),
    logs,
    waitForLog,
    exited,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}
