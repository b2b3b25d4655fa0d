// A real Kubernetes control plane on loopback for the end-to-end suite: etcd, kube-apiserver and
// kube-controller-manager from the binary that `scripts/controlplane.sh build` links from the published Go modules
// (test/controlplane). No kubelet and no scheduler: Pods stay Pending, which is enough, since admission is what is tested.
//
// ```ts
// const cp = await startControlPlane({ dir });           // fresh etcd + apiserver (+ controller-manager)
// const kc = cp.kubeConfig();                            // admin (system:masters, static token)
// const sa = await cp.serviceAccountKubeconfig('podvisor-system', 'podvisor'); // a TokenRequest token, no admin rights
// await cp.kubectl(['apply', '-f', '-'], { input: yaml });
// await cp.stop();
// ```
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Where `scripts/controlplane.sh build` links the binary (an ignored folder). */
export const CONTROL_PLANE_BINARY = join(ROOT, '.controlplane', 'controlplane');

/** A port the OS has just handed out and taken back: free unless another process grabs it in between. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  /** The last lines of its stderr (where the Kubernetes components log), for error messages. */
  tail(): string;
  readonly exited: Promise<number | null>;
}

function startChild(name: string, args: string[], logFile: string): Child {
  const child = spawn(CONTROL_PLANE_BINARY, [name, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  const chunks: string[] = [];
  const keep = (chunk: Buffer): void => {
    const text = chunk.toString('utf8');
    chunks.push(text);
    tail = (tail + text).slice(-4000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      void writeFile(logFile, chunks.join('')).catch(() => undefined);
      resolve(code);
    }),
  );
  return { name, process: child, tail: () => tail, exited };
}

async function stopChild(child: Child): Promise<void> {
  if (child.process.exitCode !== null || child.process.signalCode !== null) return;
  child.process.kill('SIGTERM');
  const timer = setTimeout(() => child.process.kill('SIGKILL'), 5_000);
  await child.exited;
  clearTimeout(timer);
}

async function waitUntil(what: string, child: Child, timeoutMs: number, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.process.exitCode !== null) throw new Error(`${child.name} exited with ${child.process.exitCode} before ${what}:\n${child.tail()}`);
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms:\n${child.tail()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

export interface KubectlResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the kubectl linked into the control-plane binary (the same release as the apiserver). */
export function runKubectl(kubeconfig: string, args: readonly string[], options: { input?: string } = {}): Promise<KubectlResult> {
  return new Promise((resolve, reject) => {
    // Relative paths (`-k deploy/...`) are the repository's.
    const child = spawn(CONTROL_PLANE_BINARY, ['kubectl', '--kubeconfig', kubeconfig, ...args], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}

function kubeconfigYaml(server: string, caFile: string, user: string, token: string): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `- name: e2e`,
    `  cluster: {server: "${server}", certificate-authority: "${caFile}"}`,
    'users:',
    `- name: ${user}`,
    `  user: {token: "${token}"}`,
    'contexts:',
    `- name: e2e`,
    `  context: {cluster: e2e, user: ${user}}`,
    'current-context: e2e',
    '',
  ].join('\n');
}

export interface ControlPlaneOptions {
  /** An empty folder for etcd's data, keys, kubeconfigs and the components' logs. */
  readonly dir: string;
  /** Start kube-controller-manager (workload controllers create Pods from templates). Default true. */
  readonly controllerManager?: boolean;
  /** Node objects to create (DaemonSets create one Pod per Node). Default ['node-a', 'node-b']. */
  readonly nodes?: readonly string[];
  readonly startupTimeoutMs?: number;
}

/** What a test needs to reach a running control plane; plain data so it can cross from globalSetup to test workers. */
export interface ControlPlaneInfo {
  readonly server: string;
  readonly dir: string;
  /** PEM file the apiserver's serving certificate chains to. */
  readonly caFile: string;
  /** JSON lines, one per request of a ServiceAccount of podvisor-system (stage ResponseComplete). */
  readonly auditLog: string;
  /** Kubeconfig of an admin (group system:masters): for the tests' own setup, never for podvisor. */
  readonly adminKubeconfig: string;
  readonly nodes: readonly string[];
}

export interface ControlPlane extends ControlPlaneInfo {
  stop(): Promise<void>;
}

export async function startControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  if (!existsSync(CONTROL_PLANE_BINARY)) throw new Error(`${CONTROL_PLANE_BINARY} is missing: run scripts/controlplane.sh build`);
  const { dir } = options;
  const timeoutMs = options.startupTimeoutMs ?? 120_000;
  const nodes = options.nodes ?? ['node-a', 'node-b'];
  await mkdir(join(dir, 'etcd'), { recursive: true });
  await mkdir(join(dir, 'apiserver'), { recursive: true });

  const [etcdClientPort, etcdPeerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
  const adminToken = randomBytes(24).toString('hex');
  const controllerManagerToken = randomBytes(24).toString('hex');
  // Static tokens (token,user,uid,"groups"): an admin for the tests, the controller-manager's own identity (its
  // bootstrap RBAC role lets it mint a token per controller, --use-service-account-credentials).
  await writeFile(
    join(dir, 'tokens.csv'),
    `${adminToken},e2e-admin,e2e-admin,"system:masters"\n${controllerManagerToken},system:kube-controller-manager,system:kube-controller-manager\n`,
    { mode: 0o600 },
  );
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  await writeFile(join(dir, 'sa.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  await writeFile(join(dir, 'sa.pub'), publicKey.export({ type: 'spki', format: 'pem' }));

  // Every request of a ServiceAccount in podvisor-system (podvisor's own identity) is audited: the RBAC test compares
  // what podvisor called with what the shipped RBAC grants.
  await writeFile(
    join(dir, 'audit-policy.yaml'),
    [
      'apiVersion: audit.k8s.io/v1',
      'kind: Policy',
      'omitStages: [RequestReceived]',
      'rules:',
      '- level: Metadata',
      '  userGroups: ["system:serviceaccounts:podvisor-system"]',
      '- level: None',
      '',
    ].join('\n'),
  );
  const children: Child[] = [];
  const stop = async (): Promise<void> => {
    for (const child of [...children].reverse()) await stopChild(child);
  };
  try {
    const etcdUrl = `http://127.0.0.1:${etcdClientPort}`;
    const peerUrl = `http://127.0.0.1:${etcdPeerPort}`;
    const etcd = startChild(
      'etcd',
      [
        '--name=e2e',
        `--data-dir=${join(dir, 'etcd')}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=e2e=${peerUrl}`,
        // A throwaway store on a shared 2-core machine: no fsync per write.
        '--unsafe-no-fsync',
        '--log-level=warn',
      ],
      join(dir, 'etcd.log'),
    );
    children.push(etcd);
    await waitUntil('etcd is healthy', etcd, timeoutMs, async () => (await fetch(`${etcdUrl}/health`)).ok);

    const server = `https://127.0.0.1:${apiPort}`;
    const apiserver = startChild(
      'kube-apiserver',
      [
        `--etcd-servers=${etcdUrl}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        `--secure-port=${apiPort}`,
        `--cert-dir=${join(dir, 'apiserver')}`,
        `--token-auth-file=${join(dir, 'tokens.csv')}`,
        '--authorization-mode=Node,RBAC',
        // As every cluster with privileged node agents runs (the apiserver's own default is false).
        '--allow-privileged=true',
        '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
        `--service-account-key-file=${join(dir, 'sa.pub')}`,
        `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
        '--service-cluster-ip-range=10.96.0.0/24',
        // The `kubernetes` Service's endpoint would be the loopback address, which the reconciler refuses.
        '--endpoint-reconciler-type=none',
        // The default admission chain (which includes MutatingAdmissionWebhook and ValidatingAdmissionWebhook) as a
        // cluster runs it; named here so a change of defaults cannot silently drop the webhooks.
        '--enable-admission-plugins=MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ServiceAccount,NamespaceLifecycle',
        `--audit-policy-file=${join(dir, 'audit-policy.yaml')}`,
        `--audit-log-path=${join(dir, 'audit.log')}`,
        // Written as each request completes, so a test reads its calls at once.
        '--audit-log-mode=blocking',
        '--profiling=false',
        '--v=0',
      ],
      join(dir, 'kube-apiserver.log'),
    );
    children.push(apiserver);
    const caFile = join(dir, 'apiserver', 'apiserver.crt');
    const adminKubeconfig = join(dir, 'admin.kubeconfig');
    await waitUntil('the apiserver wrote its certificate', apiserver, timeoutMs, async () => existsSync(caFile));
    await writeFile(adminKubeconfig, kubeconfigYaml(server, caFile, 'e2e-admin', adminToken), { mode: 0o600 });
    const admin = loadKubeConfig(adminKubeconfig);
    await waitUntil('the apiserver is ready (/readyz)', apiserver, timeoutMs, async () => (await apiGet(admin, '/readyz')).status === 200);

    if (options.controllerManager ?? true) {
      const kcmKubeconfig = join(dir, 'controller-manager.kubeconfig');
      await writeFile(kcmKubeconfig, kubeconfigYaml(server, caFile, 'system:kube-controller-manager', controllerManagerToken), { mode: 0o600 });
      const controllerManager = startChild(
        'kube-controller-manager',
        [
          `--kubeconfig=${kcmKubeconfig}`,
          '--leader-elect=false',
          '--use-service-account-credentials',
          // No HTTPS endpoint: every test session on the machine would otherwise want port 10257.
          '--secure-port=0',
          // The controllers that turn podvisor's templates into Pods, plus those the namespaces and tokens need, and the
          // disruption controller (PodDisruptionBudget status, which the Eviction API checks).
          '--controllers=deployment-controller,replicaset-controller,daemonset-controller,job-controller,cronjob-controller,statefulset-controller,serviceaccount-controller,namespace-controller,garbage-collector-controller,disruption-controller',
          `--root-ca-file=${caFile}`,
          '--v=0',
        ],
        join(dir, 'kube-controller-manager.log'),
      );
      children.push(controllerManager);
      // Ready when the service-account controller has created `default` in the `default` namespace: the
      // ServiceAccount admission plugin rejects Pods until it exists.
      await waitUntil('the controller-manager created the default ServiceAccount', controllerManager, timeoutMs, async () =>
        (await apiGet(admin, '/api/v1/namespaces/default/serviceaccounts/default')).status === 200,
      );
    }
    for (const name of nodes) await createNode(admin, name);
    return { server, dir, caFile, adminKubeconfig, auditLog: join(dir, 'audit.log'), nodes, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

export function loadKubeConfig(file: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(file);
  return kc;
}

/** One request with the kubeconfig's credentials; JSON body when given. */
export async function apiRequest(kc: KubeConfig, method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; body: unknown }> {
  const cluster = kc.getCurrentCluster()!;
  const { default: https } = await import('node:https');
  const ca = cluster.caFile !== undefined ? await readFile(cluster.caFile, 'utf8') : cluster.caData !== undefined ? Buffer.from(cluster.caData, 'base64').toString('utf8') : undefined;
  const token = kc.getCurrentUser()?.token;
  const url = new URL(path, cluster.server);
  const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const request = https.request(
      url,
      {
        method,
        ca,
        headers: { ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...(payload === undefined ? {} : { 'content-type': contentType }), accept: 'application/json' },
      },
      (response) => {
        let text = '';
        response.setEncoding('utf8').on('data', (c: string) => (text += c));
        response.on('end', () => {
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // /readyz answers plain text
          }
          resolve({ status: response.statusCode ?? 0, body: parsed });
        });
      },
    );
    request.once('error', reject);
    request.setTimeout(30_000, () => request.destroy(new Error(`${method} ${path}: timed out`)));
    request.end(payload);
  });
}

export function apiGet(kc: KubeConfig, path: string): Promise<{ status: number; body: unknown }> {
  return apiRequest(kc, 'GET', path);
}

/** A Node object (no kubelet behind it), Ready, so DaemonSets have somewhere to put their Pods. */
async function createNode(admin: KubeConfig, name: string): Promise<void> {
  const created = await apiRequest(admin, 'POST', '/api/v1/nodes', {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64' } },
  });
  if (created.status !== 201) throw new Error(`creating Node ${name}: ${created.status} ${JSON.stringify(created.body)}`);
  const status = await apiRequest(
    admin,
    'PATCH',
    `/api/v1/nodes/${name}/status`,
    { status: { conditions: [{ type: 'Ready', status: 'True', reason: 'E2E', message: 'a Node object without a kubelet', lastHeartbeatTime: new Date().toISOString(), lastTransitionTime: new Date().toISOString() }] } },
    'application/merge-patch+json',
  );
  if (status.status !== 200) throw new Error(`marking Node ${name} Ready: ${status.status} ${JSON.stringify(status.body)}`);
}

/**
 * A kubeconfig for `namespace/name` with a token from the TokenRequest API (the same kind of bound token the kubelet
 * mounts into a pod): whatever it is allowed comes from RBAC bindings, not from the admin that asked for it.
 */
export async function serviceAccountKubeconfig(info: ControlPlaneInfo, namespace: string, name: string, expirationSeconds = 3600): Promise<string> {
  const admin = loadKubeConfig(info.adminKubeconfig);
  const answer = await apiRequest(admin, 'POST', `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`, {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec: { expirationSeconds },
  });
  const token = (answer.body as { status?: { token?: string } }).status?.token;
  if (answer.status !== 201 || token === undefined) throw new Error(`TokenRequest for ${namespace}/${name}: ${answer.status} ${JSON.stringify(answer.body)}`);
  const file = join(info.dir, `sa-${namespace}-${name}-${randomBytes(4).toString('hex')}.kubeconfig`);
  await writeFile(file, kubeconfigYaml(info.server, info.caFile, `system:serviceaccount:${namespace}:${name}`, token), { mode: 0o600 });
  return file;
}
