// podvisor as a developer runs it against a cluster (`podvisor serve --kubeconfig K --register --webhook-url URL`),
// for the end-to-end suite: the built CLI, with a token of its own ServiceAccount (podvisor-system/podvisor, bound by
// the shipped RBAC of deploy/overlays/self-managed), never the admin's.
import { writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { parse, stringify } from 'yaml';
import { apiRequest, freePort, loadKubeConfig, serviceAccountKubeconfig, type ControlPlaneInfo } from './control-plane.js';
import { startPodvisorServe, type PodvisorProcess } from './podvisor-process.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface PodvisorOnCluster {
  readonly process: PodvisorProcess;
  readonly url: string;
  /** The config file podvisor runs with (the shipped config with the test's overrides). */
  readonly configFile: string;
  /** The ServiceAccount kubeconfig podvisor runs with. */
  readonly kubeconfig: string;
  /** SIGTERM (podvisor drains for `server.drainSeconds`, 0 here) and wait for the exit. */
  stop(): Promise<number | null>;
}

export interface PodvisorOnClusterOptions {
  /** Merged over deploy/base/config.yaml (the shipped config). */
  readonly config?: Record<string, unknown>;
  readonly keepReviews?: boolean;
  readonly extraArgs?: readonly string[];
  /** Added to podvisor's environment (POD_NAME: the identity a replica holds the recovery Lease under). */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * false: no `--register --webhook-url` (a second replica that must not move the webhook configurations to its own
   * URL); nothing waits for registration or admission. Default true.
   */
  readonly register?: boolean;
  /** The `--webhook-url` to register instead of this replica's own address: a balancer in front of several replicas. */
  readonly webhookUrl?: string;
  /** The admission port (default: a free one); known before the start when a balancer must route to it. */
  readonly port?: number;
}

function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const current = out[key];
    out[key] =
      value !== null && typeof value === 'object' && !Array.isArray(value) && current !== null && typeof current === 'object' && !Array.isArray(current)
        ? merge(current as Record<string, unknown>, value as Record<string, unknown>)
        : value;
  }
  return out;
}

export async function startPodvisorOnCluster(info: ControlPlaneInfo, options: PodvisorOnClusterOptions = {}): Promise<PodvisorOnCluster> {
  const port = options.port ?? (await freePort());
  const url = options.webhookUrl ?? `https://127.0.0.1:${port}`;
  const shipped = parse(readFileSync(join(ROOT, 'deploy/base/config.yaml'), 'utf8')) as Record<string, unknown>;
  const config = merge(merge(shipped, { logLevel: 'info', server: { address: '127.0.0.1', opsAddress: '127.0.0.1', port, opsPort: 0, drainSeconds: 0 }, tls: { certDir: join(info.dir, 'unused-certs') } }), options.config ?? {});
  const configFile = join(info.dir, `podvisor-${randomBytes(4).toString('hex')}.yaml`);
  await writeFile(configFile, stringify(config));
  const kubeconfig = await serviceAccountKubeconfig(info, 'podvisor-system', 'podvisor');
  const register = options.register ?? true;
  const process = await startPodvisorServe(['--config', configFile, '--kubeconfig', kubeconfig, ...(register ? ['--register', '--webhook-url', url] : []), ...(options.extraArgs ?? [])], {
    keepReviews: options.keepReviews,
    timeoutMs: 60_000,
    env: options.env,
  });
  if (register) {
    // Registered (created, or updated to this URL) before a test relies on it.
    await waitForRegistration(info, url).catch(async (err: unknown) => {
      process.child.kill('SIGKILL');
      throw new Error(`${(err as Error).message}; podvisor's last log lines: ${JSON.stringify(process.logs.slice(-8))}`);
    });
    await waitForAdmission(info).catch(async (err: unknown) => {
      process.child.kill('SIGKILL');
      throw new Error(`${(err as Error).message}; podvisor's last log lines: ${JSON.stringify(process.logs.slice(-8))}`);
    });
  }
  return {
    process,
    url,
    configFile,
    kubeconfig,
    async stop() {
      if (process.child.exitCode === null && process.child.signalCode === null) process.child.kill('SIGTERM');
      const timer = setTimeout(() => process.child.kill('SIGKILL'), 15_000);
      const code = await process.exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** Both configurations name `url` (the registrar wrote them; the apiserver's own webhook cache follows within a second). */
export async function waitForRegistration(info: ControlPlaneInfo, url: string, timeoutMs = 20_000): Promise<void> {
  const admin = loadKubeConfig(info.adminKubeconfig);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [m, v] = await Promise.all([
      apiRequest(admin, 'GET', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/podvisor'),
      apiRequest(admin, 'GET', '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/podvisor'),
    ]);
    const urls = [m, v].flatMap((r) => (r.status === 200 ? ((r.body as { webhooks?: { clientConfig: { url?: string } }[] }).webhooks ?? []).map((w) => w.clientConfig.url ?? '') : ['']));
    if (urls.every((u) => u.startsWith(url))) return;
    if (Date.now() > deadline) throw new Error(`webhook configurations do not name ${url}: ${JSON.stringify(urls)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * The apiserver calls podvisor: a server-side dry-run create of an opted-in Pod comes back injected. (The apiserver
 * reads webhook configurations through an informer, so a just-written URL is used a moment later, not at once.)
 */
export async function waitForAdmission(info: ControlPlaneInfo, timeoutMs = 20_000): Promise<void> {
  const admin = loadKubeConfig(info.adminKubeconfig);
  const deadline = Date.now() + timeoutMs;
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { generateName: 'admission-probe-', annotations: { 'podvisor.io/lxcfs': 'true' } },
    spec: { containers: [{ name: 'c', image: 'registry.example/probe:1' }] },
  };
  let last: unknown;
  for (;;) {
    const answer = await apiRequest(admin, 'POST', '/api/v1/namespaces/default/pods?dryRun=All', pod);
    last = answer.body;
    if (answer.status === 201 && (answer.body as { metadata?: { annotations?: Record<string, string> } }).metadata?.annotations?.['podvisor.io/status'] !== undefined) return;
    if (Date.now() > deadline) throw new Error(`a dry-run Pod was not injected within ${timeoutMs} ms: ${JSON.stringify(last).slice(0, 800)}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}
