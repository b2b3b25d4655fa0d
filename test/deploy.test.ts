/**
 * deploy/: every overlay and component is rendered with `kubectl kustomize` (offline), every object is checked
 * against the Kubernetes OpenAPI models (test/support/kube-schema.ts), and the manifests are checked against what
 * the code actually does: ports, probe paths, config, webhook configurations, flags, and least privilege in the RBAC
 * (whether it allows every call podvisor makes is checked against the real kube-apiserver: test/e2e/rbac.test.ts).
 * A broken manifest fails here.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import type { DaemonSet, Deployment } from 'kubernetes-types/apps/v1.js';
import type { ConfigMap, Container, Namespace, PodSpec, Service } from 'kubernetes-types/core/v1.js';
import type { PodDisruptionBudget } from 'kubernetes-types/policy/v1.js';
import type { NetworkPolicy, NetworkPolicyIngressRule } from 'kubernetes-types/networking/v1.js';
import type { ClusterRole, PolicyRule, Role, RoleBinding } from 'kubernetes-types/rbac/v1.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { renderWebhooksFile, staticWebhookConfigurations, WEBHOOKS_FILE } from '../scripts/render-webhooks.js';
import { parseConfigText } from '../src/config/load.js';
import { configSchema, DEFAULT_LXCFS_HOST_ROOT, type Config } from '../src/config/schema.js';
import { CONFIG_FILE, CONFIG_MAP_NAME, CONTAINER_PORT, NAMESPACE, PATH, RECOVERY_LEASE_NAME, SERVICE_NAME, SERVICE_PORT, TLS_SECRET_NAME, WEBHOOK_CONFIGURATION_NAME } from '../src/k8s/names.js';
import { createLogger } from '../src/observability/logger.js';
import { createMetrics } from '../src/observability/metrics.js';
import { recoveryOptions } from '../src/recovery/options.js';
import { buildAdmissionApp } from '../src/server/admission-app.js';
import { buildOpsApp } from '../src/server/ops-app.js';
import { generateServingCertificate } from '../src/server/certificate-authority.js';
import { validateObject } from './support/kube-schema.js';

const ROOT = new URL('..', import.meta.url).pathname;
const DEPLOY = join(ROOT, 'deploy');
const OVERLAYS = ['overlays/self-managed', 'overlays/cert-manager'] as const;
const COMPONENTS = ['components/lxcfs', 'components/fuse-device-plugin', 'components/apparmor'] as const;
const KUBECTL = process.env['KUBECTL'] ?? '/usr/bin/kubectl';
const runAsync = promisify(execFile);

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Obj = Record<string, any> & { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> } };

async function kustomize(dir: string): Promise<Obj[]> {
  const { stdout } = await runAsync(KUBECTL, ['kustomize', dir], { maxBuffer: 32 * 1024 * 1024 });
  return parseAllDocuments(stdout).map((d) => d.toJS() as Obj);
}

/** An overlay plus every component, as an operator composes them (a temporary kustomization outside the repo). */
async function composed(overlay: string): Promise<Obj[]> {
  const dir = mkdtempSync(join(tmpdir(), 'podvisor-kustomize-'));
  try {
    const rel = (p: string): string => relative(dir, join(DEPLOY, p));
    writeFileSync(
      join(dir, 'kustomization.yaml'),
      `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ${rel(overlay)}\ncomponents:\n${COMPONENTS.map((c) => `  - ${rel(c)}`).join('\n')}\n`,
    );
    return await kustomize(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const rendered = new Map<string, Obj[]>();
beforeAll(async () => {
  try {
    execFileSync(KUBECTL, ['version', '--client'], { stdio: 'ignore' });
  } catch {
    throw new Error(`kubectl (with kustomize) is needed to render deploy/: not found at ${KUBECTL} (set KUBECTL)`);
  }
  const all = await Promise.all([
    ...[...OVERLAYS, ...COMPONENTS].map(async (d) => [d, await kustomize(join(DEPLOY, d))] as const),
    ...OVERLAYS.map(async (o) => [`${o}+components`, await composed(o)] as const),
  ]);
  for (const [name, objects] of all) rendered.set(name, objects);
}, 60_000);

function objects(name: string): Obj[] {
  const list = rendered.get(name);
  if (list === undefined) throw new Error(`not rendered: ${name}`);
  return list;
}
function find<T>(list: Obj[], kind: string, name: string): T {
  const found = list.find((o) => o.kind === kind && o.metadata.name === name);
  if (found === undefined) throw new Error(`${kind} ${name} not rendered (have: ${list.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')})`);
  return found as unknown as T;
}
const kindsIn = (list: Obj[], kind: string): Obj[] => list.filter((o) => o.kind === kind);

// ---------------------------------------------------------------------------------------------------------------
describe('rendering and the Kubernetes schema', () => {
  it.each([...OVERLAYS, ...COMPONENTS, ...OVERLAYS.map((o) => `${o}+components`)])('%s renders, and every object is schema-valid', (name) => {
    const list = objects(name);
    expect(list.length).toBeGreaterThan(0);
    const errors = list.flatMap((o) => validateObject(o));
    expect(errors).toEqual([]);
    // No object twice (an overlay and a component defining the same thing would make `apply` order-dependent).
    const keys = list.map((o) => `${o.apiVersion}/${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`);
    expect(new Set(keys).size).toBe(keys.length);
    // Namespaced objects all live in podvisor's namespace.
    for (const o of list) {
      if (['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'PriorityClass', 'MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration'].includes(o.kind)) {
        expect(o.metadata.namespace, `${o.kind} ${o.metadata.name}`).toBeUndefined();
      } else expect(o.metadata.namespace, `${o.kind} ${o.metadata.name}`).toBe(NAMESPACE);
    }
  });

  it('the schema check rejects unknown fields, wrong types and missing required fields', () => {
    const deployment = structuredClone(find<Obj>(objects('overlays/self-managed'), 'Deployment', 'podvisor'));
    expect(validateObject(deployment)).toEqual([]);
    const unknown = structuredClone(deployment);
    unknown['spec'].template.spec.containers[0].livenessprobe = { httpGet: { path: '/healthz', port: 8080 } };
    expect(validateObject(unknown).join('\n')).toMatch(/containers\[0\]\.livenessprobe: unknown field/);
    const wrongType = structuredClone(deployment);
    wrongType['spec'].replicas = '2';
    wrongType['spec'].template.spec.containers[0].ports[0].containerPort = '8443';
    expect(validateObject(wrongType)).toEqual(expect.arrayContaining([expect.stringMatching(/spec\.replicas: expected int32/), expect.stringMatching(/containerPort: expected int32/)]));
    const missing = structuredClone(deployment);
    delete missing['spec'].template.spec.containers[0].name;
    delete missing['spec'].selector;
    expect(validateObject(missing)).toEqual(expect.arrayContaining([expect.stringMatching(/containers\[0\]\.name: required field missing/), expect.stringMatching(/spec\.selector: required field missing/)]));
    expect(validateObject({ ...deployment, apiVersion: 'extensions/v1beta1' })[0]).toMatch(/unknown apiVersion\/kind/);
    const certificate = structuredClone(find<Obj>(objects('overlays/cert-manager'), 'Certificate', TLS_SECRET_NAME));
    expect(validateObject(certificate)).toEqual([]);
    certificate['spec'].usages = ['server-auth'];
    certificate['spec'].dnsName = ['x'];
    expect(validateObject(certificate)).toHaveLength(2);
  });
});

// ---------------------------------------------------------------------------------------------------------------
describe('base: the webhook Deployment, Service, config and namespace line up with the code', () => {
  const list = (): Obj[] => objects('overlays/self-managed');
  const deployment = (): Deployment => find<Deployment>(list(), 'Deployment', SERVICE_NAME);
  const container = (): Container => deployment().spec!.template.spec!.containers.find((c) => c.name === 'podvisor')!;
  const config = (): Config => parseConfigText(find<ConfigMap>(list(), 'ConfigMap', CONFIG_MAP_NAME).data!['config.yaml']!, 'ConfigMap podvisor-config');
  const containerPort = (port: number | string | undefined): number | undefined =>
    typeof port === 'number' ? port : container().ports?.find((p) => p.name === port)?.containerPort;
  const argValue = (args: readonly string[], flag: string): string | undefined => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : args.find((a) => a.startsWith(`${flag}=`))?.slice(flag.length + 1);
  };

  it('namespace podvisor-system is labelled podvisor.io/exclude', () => {
    const ns = find<Namespace>(list(), 'Namespace', NAMESPACE);
    expect(ns.metadata?.labels?.['podvisor.io/exclude']).toBe('true');
  });

  it('the ConfigMap passes the real config parser and names the same namespace, Service and lxcfs root as deploy/', () => {
    const c = config();
    expect(c.namespace).toBe(NAMESPACE);
    expect(c.service).toBe(SERVICE_NAME);
    expect(c.server.port).toBe(CONTAINER_PORT);
    const lxcfs = find<DaemonSet>(objects('components/lxcfs'), 'DaemonSet', 'lxcfs').spec!.template.spec!.containers[0]!;
    expect(lxcfs.env?.find((e) => e.name === 'LXCFS_ROOT')?.value).toBe(c.lxcfs.hostRoot);
  });

  it('the embedded default lxcfs root is the DaemonSet\'s mount root, so offline-rendered pods find their LXCFS files', () => {
    const lxcfs = find<DaemonSet>(objects('components/lxcfs'), 'DaemonSet', 'lxcfs').spec!.template.spec!.containers[0]!;
    expect(lxcfs.env?.find((e) => e.name === 'LXCFS_ROOT')?.value).toBe(DEFAULT_LXCFS_HOST_ROOT);
    expect(configSchema.parse({}).lxcfs.hostRoot).toBe(DEFAULT_LXCFS_HOST_ROOT);
  });

  it('the Deployment runs `serve` with flags the CLI has, the config mounted where --config points, certs on a writable volume', async () => {
    const args = container().args!;
    expect(args[0]).toBe('serve');
    const { stdout: help } = await runAsync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli.ts'), 'serve', '--help'], { cwd: ROOT });
    for (const overlay of OVERLAYS) {
      const overlayArgs = find<Deployment>(objects(overlay), 'Deployment', SERVICE_NAME).spec!.template.spec!.containers[0]!.args!;
      for (const flag of overlayArgs.filter((a) => a.startsWith('--')).map((a) => a.split('=')[0]!)) expect(help, `${overlay}: serve has no ${flag}`).toContain(flag);
    }
    const configPath = argValue(args, '--config');
    expect(configPath).toBe(CONFIG_FILE);
    const mount = container().volumeMounts!.find((m) => configPath!.startsWith(`${m.mountPath}/`))!;
    const volume = deployment().spec!.template.spec!.volumes!.find((v) => v.name === mount.name)!;
    expect(volume.configMap?.name).toBe(CONFIG_MAP_NAME);
    // The file name inside the mount is the ConfigMap key (or its items[].path).
    const fileName = configPath!.slice(mount.mountPath.length + 1);
    expect(volume.configMap?.items?.find((i) => i.path === fileName)?.key ?? fileName).toBe('config.yaml');
    // The root filesystem is read-only: --cert-dir (and config tls.certDir) must be an emptyDir mount.
    expect(container().securityContext?.readOnlyRootFilesystem).toBe(true);
    for (const dir of [argValue(args, '--cert-dir'), config().tls.certDir]) {
      const certMount = container().volumeMounts!.find((m) => dir === m.mountPath || dir!.startsWith(`${m.mountPath}/`));
      expect(certMount, `${dir} is not on a volume`).toBeDefined();
      expect(certMount!.readOnly ?? false).toBe(false);
      expect(deployment().spec!.template.spec!.volumes!.find((v) => v.name === certMount!.name)?.emptyDir).toBeDefined();
    }
  });

  it('Service 443 → the container port the config serves HTTPS on; ops port matches; selector matches the pods', () => {
    const service = find<Service>(list(), 'Service', SERVICE_NAME);
    const https = service.spec!.ports!.find((p) => p.port === SERVICE_PORT)!;
    expect(containerPort(https.targetPort)).toBe(config().server.port);
    const ops = service.spec!.ports!.find((p) => p.name === 'ops')!;
    expect(containerPort(ops.targetPort)).toBe(config().server.opsPort);
    const labels = deployment().spec!.template.metadata!.labels!;
    for (const [k, v] of Object.entries(service.spec!.selector!)) expect(labels[k]).toBe(v);
  });

  it('the NetworkPolicy selects the webhook pods; the HTTPS port admits only address ranges and konnectivity-agent, the ops port the cluster', () => {
    const policy = find<NetworkPolicy>(list(), 'NetworkPolicy', SERVICE_NAME);
    expect(policy.metadata?.namespace).toBe(NAMESPACE);
    const spec = policy.spec!;
    const labels = deployment().spec!.template.metadata!.labels!;
    // The same pods as the Service's, and only those.
    expect(spec.podSelector.matchLabels).toEqual(find<Service>(list(), 'Service', SERVICE_NAME).spec!.selector);
    for (const [k, v] of Object.entries(spec.podSelector.matchLabels!)) expect(labels[k]).toBe(v);
    expect(spec.policyTypes).toEqual(['Ingress']);
    const rules = spec.ingress!;
    // Every rule names its ports (a rule without ports would open every port), and only the two served ports appear.
    const ports = rules.map((r) => r.ports!.map((p) => containerPort(p.port)));
    expect(ports).toEqual([[config().server.port], [config().server.opsPort]]);
    const [https, ops] = rules as [NetworkPolicyIngressRule, NetworkPolicyIngressRule];
    // HTTPS: address ranges (the API server's, to narrow per cluster) and the konnectivity agents; no pod selector
    // that would admit arbitrary pods.
    for (const peer of https.from!) {
      if (peer.ipBlock !== undefined) continue;
      expect(peer.namespaceSelector?.matchLabels).toEqual({ 'kubernetes.io/metadata.name': 'kube-system' });
      expect(peer.podSelector?.matchLabels).toEqual({ 'k8s-app': 'konnectivity-agent' });
    }
    expect(https.from!.filter((p) => p.ipBlock !== undefined).map((p) => p.ipBlock!.cidr)).toEqual(['0.0.0.0/0', '::/0']);
    expect(ops.from).toEqual([{ namespaceSelector: {} }]);
  });

  it('probes hit the ops app routes on the ops port: liveness ignores readiness, readiness fails while not ready', async () => {
    const c = container();
    expect(containerPort(c.livenessProbe!.httpGet!.port)).toBe(config().server.opsPort);
    expect(containerPort(c.readinessProbe!.httpGet!.port)).toBe(config().server.opsPort);
    let ready = false;
    const app = buildOpsApp({ metrics: createMetrics(), ready: () => ready });
    try {
      expect((await app.inject({ method: 'GET', url: c.livenessProbe!.httpGet!.path! })).statusCode).toBe(200);
      expect((await app.inject({ method: 'GET', url: c.readinessProbe!.httpGet!.path! })).statusCode).toBe(503);
      ready = true;
      expect((await app.inject({ method: 'GET', url: c.readinessProbe!.httpGet!.path! })).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });

  it('2 replicas, PDB, spread, selectors, requests without a CPU limit, hardened security context, a priority class', () => {
    const d = deployment();
    const spec = d.spec!.template.spec!;
    const labels = d.spec!.template.metadata!.labels!;
    const matches = (selector: { matchLabels?: Record<string, string> } | undefined): boolean =>
      selector?.matchLabels !== undefined && Object.entries(selector.matchLabels).every(([k, v]) => labels[k] === v);
    expect(d.spec!.replicas).toBe(2);
    expect(matches(d.spec!.selector)).toBe(true);
    const pdb = find<PodDisruptionBudget>(list(), 'PodDisruptionBudget', SERVICE_NAME);
    expect(matches(pdb.spec!.selector)).toBe(true);
    expect(pdb.spec!.minAvailable).toBe(1);
    expect(spec.topologySpreadConstraints!.every((t) => matches(t.labelSelector))).toBe(true);
    expect(spec.affinity!.podAntiAffinity!.preferredDuringSchedulingIgnoredDuringExecution!.every((t) => matches(t.podAffinityTerm.labelSelector))).toBe(true);
    const c = container();
    expect(c.resources?.requests?.['cpu']).toBeDefined();
    expect(c.resources?.requests?.['memory']).toBeDefined();
    expect(c.resources?.limits?.['cpu']).toBeUndefined();
    expect(spec.securityContext?.runAsNonRoot).toBe(true);
    expect(Number.isInteger(spec.securityContext?.runAsUser) && spec.securityContext!.runAsUser! > 0).toBe(true);
    expect(spec.securityContext?.seccompProfile?.type).toBe('RuntimeDefault');
    expect(c.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    // The image's user (Dockerfile USER) is the one the Deployment runs as.
    const user = /^USER (\d+):(\d+)$/m.exec(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
    expect([spec.securityContext?.runAsUser, spec.securityContext?.runAsGroup]).toEqual([Number(user?.[1]), Number(user?.[2])]);
    find<Obj>(list(), 'PriorityClass', spec.priorityClassName!);
    expect(d.metadata?.labels?.['podvisor.io/exclude']).toBe('true');
    expect(labels['podvisor.io/exclude']).toBe('true');
    expect(spec.serviceAccountName).toBe(SERVICE_NAME);
    find<Obj>(list(), 'ServiceAccount', SERVICE_NAME);
  });
});

// ---------------------------------------------------------------------------------------------------------------
describe('cert-manager overlay', () => {
  const list = (): Obj[] => objects('overlays/cert-manager');

  it('the static webhook configurations are exactly what self-registration writes (regenerate: npx tsx scripts/render-webhooks.ts)', () => {
    const configText = find<ConfigMap>(list(), 'ConfigMap', CONFIG_MAP_NAME).data!['config.yaml']!;
    expect(readFileSync(WEBHOOKS_FILE, 'utf8'), 'deploy/overlays/cert-manager/webhooks.yaml is out of date').toBe(renderWebhooksFile(configText));
    const expected = staticWebhookConfigurations(parseConfigText(configText)) as Obj[];
    for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
      const actual = find<Obj>(list(), kind, WEBHOOK_CONFIGURATION_NAME);
      const want = expected.find((o) => o.kind === kind)!;
      expect(actual['webhooks']).toEqual(want['webhooks']);
      for (const webhook of actual['webhooks'] as { clientConfig: { caBundle?: string } }[]) expect(webhook.clientConfig.caBundle).toBeUndefined();
    }
  });

  it('webhooks reach the Service on 443 at paths the admission app serves; the CA comes from the Certificate podvisor mounts', async () => {
    const service = find<Service>(list(), 'Service', SERVICE_NAME);
    const pem = await generateServingCertificate('podvisor', NAMESPACE);
    const app = buildAdmissionApp({
      tls: pem,
      bodyLimitBytes: 4 << 20,
      keepAliveTimeoutMs: 100_000,
      environment: () => ({ config: parseConfigText('') }) as never,
      log: createLogger('silent'),
      metrics: createMetrics(),
    });
    await app.ready();
    const certificate = find<Obj>(list(), 'Certificate', TLS_SECRET_NAME);
    const deployment = find<Deployment>(list(), 'Deployment', SERVICE_NAME);
    try {
      for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
        const configuration = find<Obj>(list(), kind, WEBHOOK_CONFIGURATION_NAME);
        expect(configuration.metadata.annotations?.['cert-manager.io/inject-ca-from']).toBe(`${NAMESPACE}/${certificate.metadata.name}`);
        for (const webhook of configuration['webhooks'] as { clientConfig: { service: { name: string; namespace: string; port: number; path: string } } }[]) {
          const ref = webhook.clientConfig.service;
          expect([ref.name, ref.namespace]).toEqual([service.metadata!.name, service.metadata!.namespace]);
          expect(service.spec!.ports!.map((p) => p.port)).toContain(ref.port);
          expect(Object.values(PATH)).toContain(ref.path);
          expect(app.hasRoute({ method: 'POST', url: ref.path }), `POST ${ref.path} not served`).toBe(true);
        }
      }
    } finally {
      await app.close();
    }
    // The Certificate names the Service DNS name the apiserver verifies, and is the Secret the Deployment mounts.
    expect(certificate['spec'].dnsNames).toContain(`${SERVICE_NAME}.${NAMESPACE}.svc`);
    expect(certificate['spec'].secretName).toBe(TLS_SECRET_NAME);
    const spec = deployment.spec!.template.spec!;
    const args = spec.containers[0]!.args!;
    const tlsVolume = spec.volumes!.find((v) => v.secret?.secretName === TLS_SECRET_NAME)!;
    const tlsMount = spec.containers[0]!.volumeMounts!.find((m) => m.name === tlsVolume.name)!;
    expect(args[args.indexOf('--tls-cert') + 1]).toBe(`${tlsMount.mountPath}/tls.crt`);
    expect(args[args.indexOf('--tls-key') + 1]).toBe(`${tlsMount.mountPath}/tls.key`);
    expect(args.some((a) => /^--(no-register|register=false)$/.test(a))).toBe(true);
    // The serving certificate is signed by a CA Issuer (whose CA comes from a CA Certificate), so ca.crt, which
    // cainjector puts into caBundle, stays the same across renewals of the serving certificate.
    const issuer = find<Obj>(list(), 'Issuer', certificate['spec'].issuerRef.name);
    const caCertificate = find<Obj>(list(), 'Certificate', issuer['spec'].ca.secretName);
    expect(caCertificate['spec'].isCA).toBe(true);
    expect(find<Obj>(list(), 'Issuer', caCertificate['spec'].issuerRef.name)['spec'].selfSigned).toBeDefined();
  });
});

// ---------------------------------------------------------------------------------------------------------------
// RBAC: a small authorizer with the Kubernetes RBAC rule semantics, over the rendered rules.

interface Attributes {
  readonly verb: string;
  readonly group: string;
  readonly resource: string;
  readonly namespace: string;
  readonly name: string | undefined;
}

function ruleAllows(rule: PolicyRule, a: Attributes): boolean {
  const has = (list: readonly string[] | undefined, value: string): boolean => (list ?? []).includes('*') || (list ?? []).includes(value);
  if (!has(rule.verbs, a.verb) || !has(rule.apiGroups, a.group) || !has(rule.resources, a.resource)) return false;
  if (rule.resourceNames === undefined || rule.resourceNames.length === 0) return true;
  return a.name !== undefined && rule.resourceNames.includes(a.name);
}

/** Whether ServiceAccount podvisor/podvisor-system may do `a`, given the rendered Roles, ClusterRoles and bindings. */
function allowed(list: Obj[], a: Attributes): boolean {
  const isSubject = (b: RoleBinding): boolean => (b.subjects ?? []).some((s) => s.kind === 'ServiceAccount' && s.name === SERVICE_NAME && s.namespace === NAMESPACE);
  const rulesOf = (kind: string, name: string, namespace?: string): PolicyRule[] =>
    (list.find((o) => o.kind === kind && o.metadata.name === name && (kind === 'ClusterRole' || o.metadata.namespace === namespace)) as unknown as Role | ClusterRole | undefined)?.rules ?? [];
  for (const b of kindsIn(list, 'ClusterRoleBinding') as unknown as RoleBinding[]) {
    if (isSubject(b) && rulesOf('ClusterRole', b.roleRef.name).some((r) => ruleAllows(r, a))) return true;
  }
  for (const b of kindsIn(list, 'RoleBinding') as unknown as RoleBinding[]) {
    if (!isSubject(b) || b.metadata?.namespace !== a.namespace) continue;
    if (rulesOf(b.roleRef.kind, b.roleRef.name, b.metadata?.namespace).some((r) => ruleAllows(r, a))) return true;
  }
  return false;
}

function podvisorRules(list: Obj[]): PolicyRule[] {
  return [...kindsIn(list, 'ClusterRole'), ...kindsIn(list, 'Role')].flatMap((r) => ((r as unknown as Role).rules ?? []));
}

describe('RBAC: least privilege in the rendered rules', () => {
  // What podvisor calls is checked against the real kube-apiserver and these same rules, from its audit log:
  // test/e2e/rbac.test.ts (self-managed, and cert-manager mode) and test/e2e/recovery.test.ts (the evictions).
  it('self-managed grants the registration and TLS Secret calls; the cert-manager overlay none of them', () => {
    const registration: Attributes[] = [
      ...['mutatingwebhookconfigurations', 'validatingwebhookconfigurations'].flatMap((resource): Attributes[] => [
        { verb: 'create', group: 'admissionregistration.k8s.io', resource, namespace: '', name: undefined },
        { verb: 'get', group: 'admissionregistration.k8s.io', resource, namespace: '', name: WEBHOOK_CONFIGURATION_NAME },
        { verb: 'update', group: 'admissionregistration.k8s.io', resource, namespace: '', name: WEBHOOK_CONFIGURATION_NAME },
      ]),
      { verb: 'create', group: '', resource: 'secrets', namespace: NAMESPACE, name: undefined },
      { verb: 'get', group: '', resource: 'secrets', namespace: NAMESPACE, name: TLS_SECRET_NAME },
      { verb: 'update', group: '', resource: 'secrets', namespace: NAMESPACE, name: TLS_SECRET_NAME },
    ];
    for (const a of registration) {
      expect(allowed(objects('overlays/self-managed'), a), JSON.stringify(a)).toBe(true);
      expect(allowed(objects('overlays/cert-manager'), a), JSON.stringify(a)).toBe(false);
    }
  });

  it.each(OVERLAYS)('%s: least privilege — no pod deletes, no other webhook configurations or Secrets, no wildcards', (overlay) => {
    const list = objects(overlay);
    const deny: Attributes[] = [
      { verb: 'delete', group: '', resource: 'pods', namespace: 'web', name: 'web-1' },
      { verb: 'update', group: '', resource: 'pods', namespace: 'web', name: 'web-1' },
      { verb: 'get', group: 'admissionregistration.k8s.io', resource: 'mutatingwebhookconfigurations', namespace: '', name: 'someone-else' },
      { verb: 'update', group: 'admissionregistration.k8s.io', resource: 'validatingwebhookconfigurations', namespace: '', name: 'someone-else' },
      { verb: 'get', group: '', resource: 'secrets', namespace: NAMESPACE, name: 'other-secret' },
      { verb: 'list', group: '', resource: 'secrets', namespace: NAMESPACE, name: undefined },
      { verb: 'get', group: '', resource: 'secrets', namespace: 'web', name: TLS_SECRET_NAME },
      { verb: 'update', group: 'coordination.k8s.io', resource: 'leases', namespace: NAMESPACE, name: 'kube-controller-manager' },
      { verb: 'update', group: 'coordination.k8s.io', resource: 'leases', namespace: 'kube-system', name: RECOVERY_LEASE_NAME },
      { verb: 'watch', group: '', resource: 'pods', namespace: 'web', name: undefined },
    ];
    for (const a of deny) expect(allowed(list, a), JSON.stringify(a)).toBe(false);
    for (const rule of podvisorRules(list)) {
      expect([...(rule.verbs ?? []), ...(rule.resources ?? []), ...(rule.apiGroups ?? [])]).not.toContain('*');
      // resourceNames cannot restrict create, list, watch or deletecollection: such a rule would silently grant nothing.
      if ((rule.resourceNames ?? []).length > 0) expect(rule.verbs!.filter((v) => ['create', 'list', 'watch', 'deletecollection'].includes(v))).toEqual([]);
    }
    if (overlay === 'overlays/self-managed') {
      expect(allowed(list, { verb: 'get', group: '', resource: 'secrets', namespace: NAMESPACE, name: TLS_SECRET_NAME })).toBe(true);
      expect(allowed(list, { verb: 'create', group: '', resource: 'secrets', namespace: NAMESPACE, name: undefined })).toBe(true);
    } else {
      expect(allowed(list, { verb: 'get', group: '', resource: 'secrets', namespace: NAMESPACE, name: TLS_SECRET_NAME })).toBe(false);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
describe('components', () => {
  it('lxcfs: the DaemonSet follows the checklist of lxcfs.md §7', () => {
    const list = objects('components/lxcfs');
    const ds = find<DaemonSet>(list, 'DaemonSet', 'lxcfs');
    const spec = ds.spec!.template.spec! as PodSpec;
    const lxcfs = spec.containers.find((c) => c.name === 'lxcfs')!;
    const env = (c: Container, name: string): string => c.env?.find((e) => e.name === name)?.value ?? '';
    const root = env(lxcfs, 'LXCFS_ROOT');
    expect(ds.spec!.updateStrategy?.type).toBe('OnDelete');
    expect(spec.priorityClassName).toBe('system-node-critical');
    expect(spec.hostPID).toBe(true);
    expect(spec.tolerations).toEqual([{ operator: 'Exists' }]);
    expect(spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms[0]?.matchExpressions).toEqual([{ key: 'kubernetes.io/os', operator: 'In', values: ['linux'] }]);
    expect(lxcfs.securityContext?.privileged).toBe(true);
    expect(lxcfs.livenessProbe).toBeUndefined();
    expect(lxcfs.readinessProbe?.exec?.command?.join(' ')).toContain(`${root}/proc/meminfo`);
    expect(lxcfs.resources?.limits?.['cpu']).toBeUndefined();
    // Flags: -l --enable-cfs by default, configurable in one env var; never the removed --enable-cgroup.
    const flags = env(lxcfs, 'LXCFS_FLAGS').split(/\s+/);
    expect(flags).toEqual(expect.arrayContaining(['-l', '--enable-cfs']));
    expect(flags).not.toContain('--enable-cgroup');
    expect(lxcfs.args!.join('\n')).toContain('exec lxcfs -f $LXCFS_FLAGS "$R"');
    // The Bidirectional mount is a parent of the root (strategy G), a plain hostPath directory.
    const bidirectional = lxcfs.volumeMounts!.filter((m) => m.mountPropagation === 'Bidirectional');
    expect(bidirectional).toHaveLength(1);
    expect(root.startsWith(`${bidirectional[0]!.mountPath}/`)).toBe(true);
    const hostPath = spec.volumes!.find((v) => v.name === bidirectional[0]!.name)!.hostPath!;
    expect(hostPath.path).toBe(bidirectional[0]!.mountPath);
    expect(lxcfs.volumeMounts!.some((m) => m.mountPath === '/sys/fs/cgroup')).toBe(true);
    // Stale-mount cleanup before start (init container and again in the container), fusermount -u on stop.
    const init = spec.initContainers!.find((c) => c.name === 'clean-stale-mount')!;
    expect(init.securityContext?.privileged).toBe(true);
    expect(env(init, 'LXCFS_ROOT')).toBe(root);
    for (const script of [init.args!.join('\n'), lxcfs.args!.join('\n')]) {
      expect(script).toMatch(/fusermount3? -u "\$R"/);
      expect(script).not.toMatch(/rm -rf/);
    }
    expect(lxcfs.lifecycle?.preStop?.exec?.command?.join(' ')).toContain(`fusermount3 -u ${root}`);
    // Never mutated by podvisor.
    expect(ds.metadata?.labels?.['podvisor.io/exclude']).toBe('true');
    expect(ds.spec!.template.metadata?.labels?.['podvisor.io/exclude']).toBe('true');
    expect(ds.spec!.template.metadata?.annotations?.['podvisor.io/lxcfs']).toBe('false');
    // The recovery controller finds these pods by its default selector and container name.
    const options = recoveryOptions(NAMESPACE, 'x');
    const [key, value] = options.lxcfsSelector.split('=');
    expect(ds.spec!.template.metadata?.labels?.[key!]).toBe(value);
    expect(ds.spec!.selector.matchLabels?.[key!]).toBe(value);
    expect(lxcfs.name).toBe(options.lxcfsContainer);
    expect(parseConfigText('').lxcfsRecovery.lxcfsSelector).toBe(options.lxcfsSelector);
  });

  it('lxcfs: the start scripts are valid sh', () => {
    const spec = find<DaemonSet>(objects('components/lxcfs'), 'DaemonSet', 'lxcfs').spec!.template.spec!;
    for (const c of [...spec.initContainers!, ...spec.containers]) execFileSync('sh', ['-n', '-c', c.args!.join('\n')]);
  });

  it('fuse-device-plugin: smarter-device-manager matches exactly /dev/fuse as smarter-devices/fuse, podvisor\'s default', () => {
    const list = objects('components/fuse-device-plugin');
    const cm = find<ConfigMap>(list, 'ConfigMap', 'smarter-device-manager');
    const devices = parse(cm.data!['conf.yaml']!) as { devicematch: string; nummaxdevices: number }[];
    expect(devices).toHaveLength(1);
    const match = new RegExp(devices[0]!.devicematch);
    expect(['fuse', 'fuse0', 'fusectl', 'xfuse'].filter((d) => match.test(d))).toEqual(['fuse']);
    expect(devices[0]!.nummaxdevices).toBeGreaterThan(0);
    // smarter-device-manager names resources smarter-devices/<device name>.
    expect(`smarter-devices/fuse`).toBe(parseConfigText('').fuse.resourceName);
    const ds = find<DaemonSet>(list, 'DaemonSet', 'smarter-device-manager');
    const spec = ds.spec!.template.spec!;
    const configVolume = spec.volumes!.find((v) => v.configMap?.name === cm.metadata!.name)!;
    expect(spec.containers[0]!.volumeMounts!.find((m) => m.name === configVolume.name)?.mountPath).toBe('/root/config');
    expect(spec.volumes!.map((v) => v.hostPath?.path)).toEqual(expect.arrayContaining(['/var/lib/kubelet/device-plugins', '/dev']));
    expect(spec.containers[0]!.securityContext?.capabilities?.drop).toEqual(['ALL']);
    expect(ds.spec!.template.metadata?.labels?.['podvisor.io/exclude']).toBe('true');
  });

  describe('apparmor loader', () => {
    const list = (): Obj[] => objects('components/apparmor');
    const profiles = (): ConfigMap => kindsIn(list(), 'ConfigMap')[0] as unknown as ConfigMap;

    it('ships the podvisor-fuse profile (fuse mounts allowed) that podvisor\'s AppArmor feature selects, mounted where the script reads', () => {
      const profile = profiles().data!['podvisor-fuse']!;
      expect(profile).toMatch(/^profile podvisor-fuse flags=/m);
      expect(profile).toContain('mount fstype=fuse,');
      expect(profile).toContain('mount fstype=fuse.*,');
      expect(profile).toContain('umount,');
      expect(profile).not.toMatch(/^\s*deny mount/m);
      expect(parseConfigText('').fuse.appArmorProfile).toBe('localhost/podvisor-fuse');
      const ds = find<DaemonSet>(list(), 'DaemonSet', 'podvisor-apparmor-loader');
      const spec = ds.spec!.template.spec!;
      const volume = spec.volumes!.find((v) => v.configMap?.name === profiles().metadata!.name)!;
      expect(spec.containers[0]!.volumeMounts!.find((m) => m.name === volume.name)?.mountPath).toBe('/profiles');
      expect(spec.containers[0]!.command).toEqual(['/bin/sh', '/profiles/load-profiles.sh']);
      expect(spec.hostPID).toBe(true);
      expect(ds.spec!.template.metadata?.labels?.['podvisor.io/exclude']).toBe('true');
    });

    /** Runs load-profiles.sh with a fake /sys and fake host tools (nsenter runs the rest of its command line). */
    function runLoader(apparmor: 'Y' | 'N' | 'absent', hasParser: boolean): string {
      const dir = mkdtempSync(join(tmpdir(), 'podvisor-apparmor-'));
      try {
        const script = profiles().data!['load-profiles.sh']!.replaceAll('/sys/', `${dir}/sys/`).replaceAll('/profiles', `${dir}/profiles`).replace('while true; do', 'while false; do').replaceAll('exec sleep infinity', 'exit 0');
        execFileSync('mkdir', ['-p', `${dir}/sys/module/apparmor/parameters`, `${dir}/sys/kernel/security/apparmor`, `${dir}/profiles`, `${dir}/bin`]);
        if (apparmor !== 'absent') writeFileSync(`${dir}/sys/module/apparmor/parameters/enabled`, `${apparmor}\n`);
        writeFileSync(`${dir}/profiles/podvisor-fuse`, profiles().data!['podvisor-fuse']!);
        writeFileSync(`${dir}/profiles/load-profiles.sh`, script);
        writeFileSync(`${dir}/bin/nsenter`, '#!/bin/sh\nshift 4\n[ "$1" = cat ] && exec cat "$2" 2>/dev/null\nexec "$@"\n', { mode: 0o755 });
        if (hasParser) writeFileSync(`${dir}/bin/apparmor_parser`, `#!/bin/sh\necho "apparmor_parser $*" >> ${dir}/calls\ncat > ${dir}/loaded\n`, { mode: 0o755 });
        const out = execFileSync('sh', [`${dir}/profiles/load-profiles.sh`], { env: { PATH: `${dir}/bin:/usr/bin:/bin`, RECHECK_SECONDS: '1' }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
        let calls = '';
        try {
          calls = readFileSync(`${dir}/calls`, 'utf8') + readFileSync(`${dir}/loaded`, 'utf8');
        } catch {
          // nothing loaded
        }
        return out + calls;
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }

    it('loads the profile with the node\'s apparmor_parser where AppArmor is enabled, does nothing elsewhere', () => {
      const loaded = runLoader('Y', true);
      expect(loaded).toContain('loaded AppArmor profile podvisor-fuse');
      expect(loaded).toContain('apparmor_parser -r -W');
      expect(loaded).toContain('profile podvisor-fuse');
      for (const state of ['N', 'absent'] as const) {
        const idle = runLoader(state, true);
        expect(idle).toContain('AppArmor is not enabled on this node');
        expect(idle).not.toContain('apparmor_parser');
      }
      expect(runLoader('Y', false)).not.toContain('loaded AppArmor profile');
    });
  });
});
