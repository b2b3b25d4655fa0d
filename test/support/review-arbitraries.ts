// fast-check generators of AdmissionReview bodies: random pod specs wrapped in every handled kind and operation,
// envelopes with wrong types, random and truncated JSON, huge and deeply nested objects. Used by the property tests
// of the pure pipeline (test/mutation-properties.test.ts) and of the HTTPS server (test/admission-app-fuzz.test.ts).
import fc from 'fast-check';
import { AGENT_FEATURES } from '../../src/features/agent-profiles.js';
import { KNOWN_FUSE_RESOURCES } from '../../src/features/fuse.js';
import { LXCFS_FILES } from '../../src/config/schema.js';
import { WORKLOAD_KINDS } from '../../src/workload/kinds.js';

type Json = Record<string, unknown>;

/** Strings that stress every place a key or value is escaped: JSON Pointer (`/` `~`), unicode, empty. */
export const trickyString = fc.oneof(
  fc.constantFrom('', ' ', '~', '/', '~1', '~0', '/~', 'a/b~c', '..', '\u0000', 'é', '日本語', '🙂', '\u202e', 'x'.repeat(300)),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 10 }),
);

/** `arb` in about one case out of `n`, else absent (fast-check's `option` gives undefined one time in `freq`). */
function rarely<T>(arb: fc.Arbitrary<T>, n: number): fc.Arbitrary<T | undefined> {
  return fc.integer({ min: 1, max: n }).chain((roll) => (roll === 1 ? arb : fc.constant(undefined)));
}

/** A record whose keys are each present as their arbitrary says (undefined = absent). */
function sparse(fields: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<Json> {
  return fc.record(fields).map((r) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)));
}

const dnsLabel = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?$/);

/** Volume names: ordinary ones, podvisor's own (a collision), and a few the apiserver would reject. */
const volumeName = fc.oneof(
  { weight: 4, arbitrary: dnsLabel },
  { weight: 3, arbitrary: fc.constantFrom(...LXCFS_FILES.map((f) => `podvisor-lxcfs-${f.slice(1).replaceAll('/', '-')}`), 'podvisor-agent-sys-kernel-tracing', 'kube-api-access-9tq4v', 'data', 'proc') },
  { weight: 1, arbitrary: trickyString },
);

const hostPathPath = fc.oneof(
  fc.constantFrom(...LXCFS_FILES.map((f) => `/var/lib/lxcfs${f}`), '/var/lib/lxcfs/proc/meminfo/', '/proc', '/proc/', '/sys', '/sys/kernel/debug', '/sys/kernel/tracing', '/', '/var/log', '/opt', '/run/containerd/containerd.sock', '/var/lib/../lib/lxcfs/proc/stat'),
  fc.stringMatching(/^\/[a-z/]{0,20}$/),
);

const volumeSource = fc.oneof(
  { weight: 4, arbitrary: fc.record({ hostPath: fc.record({ path: hostPathPath, type: fc.constantFrom('', 'File', 'Directory', 'DirectoryOrCreate', 'Socket') }, { requiredKeys: ['path'] }) }) },
  { weight: 1, arbitrary: fc.constant({ emptyDir: {} }) },
  { weight: 1, arbitrary: fc.record({ configMap: fc.record({ name: dnsLabel }) }) },
  { weight: 1, arbitrary: fc.record({ secret: fc.record({ secretName: dnsLabel }) }) },
  { weight: 1, arbitrary: fc.constant({ projected: { sources: [{ serviceAccountToken: { path: 'token' } }] } }) },
);

const volume = fc.tuple(volumeName, volumeSource).map(([name, source]) => ({ name, ...source }));

const mountPath = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...LXCFS_FILES, '/proc/self', '/proc/sys', '/proc/pressure/cpu', '/sys/kernel/tracing', '/sys/kernel/debug', '/host', '/host/proc', '/mnt/root', '/var/log', '/data', '/', '/proc/meminfo/') },
  { weight: 1, arbitrary: fc.stringMatching(/^\/[a-z/]{1,15}$/) },
);

const capability = fc.constantFrom('SYS_ADMIN', 'NET_ADMIN', 'NET_RAW', 'SYS_PTRACE', 'BPF', 'PERFMON', 'CHOWN', 'ALL', 'CAP_SYS_ADMIN', 'sys_admin', 'cap_net_raw', 'IPC_LOCK', 'SYS_RESOURCE', 'NET_BIND_SERVICE');

const appArmorField = fc.oneof(
  fc.constant({ type: 'RuntimeDefault' }),
  fc.constant({ type: 'Unconfined' }),
  fc.record({ type: fc.constant('Localhost'), localhostProfile: fc.constantFrom('k8s-nginx', 'podvisor-fuse', 'other') }),
);

const securityContext = fc.record(
  {
    privileged: fc.boolean(),
    allowPrivilegeEscalation: fc.boolean(),
    readOnlyRootFilesystem: fc.boolean(),
    runAsNonRoot: fc.boolean(),
    capabilities: fc.record({ add: fc.uniqueArray(capability, { maxLength: 5 }), drop: fc.uniqueArray(capability, { maxLength: 2 }) }, { requiredKeys: [] }),
    appArmorProfile: appArmorField,
  },
  { requiredKeys: [] },
);

const resourceName = fc.constantFrom('cpu', 'memory', ...KNOWN_FUSE_RESOURCES, 'nvidia.com/gpu');
const quantity = fc.constantFrom('1', '2', '100m', '64Mi');
const resources = fc.record(
  { limits: fc.dictionary(resourceName, quantity, { maxKeys: 3 }), requests: fc.dictionary(resourceName, quantity, { maxKeys: 3 }) },
  { requiredKeys: [] },
);

const port = fc.record({ containerPort: fc.integer({ min: 1, max: 65535 }), hostPort: fc.option(fc.constantFrom(0, 80, 443, 9100), { nil: undefined }) }).map((p) => (p.hostPort === undefined ? { containerPort: p.containerPort } : p));

/**
 * A mount's volume: mostly one of the pod's volumes (an index, resolved once the volumes are known), sometimes a
 * volume that does not exist. Dangling references to podvisor's own volume names have their own regression test.
 */
const volumeRef = fc.oneof({ weight: 5, arbitrary: fc.nat(20) }, { weight: 1, arbitrary: fc.constantFrom('missing', 'kube-api-access-xyz', 'data') });

function resolveMounts(container: Json, volumes: readonly { name: string }[]): Json {
  const mounts = container['volumeMounts'] as { name: string | number }[] | undefined;
  if (mounts === undefined) return container;
  const volumeMounts = mounts.map((m) => ({ ...m, name: typeof m.name === 'number' ? (volumes[m.name % Math.max(1, volumes.length)]?.name ?? 'missing') : m.name }));
  return { ...container, volumeMounts };
}

/** A container without its name; names are given afterwards so that they are unique across the pod. */
const containerBody = fc.record(
  {
    image: fc.constantFrom('nginx:1.27', 'busybox', 'rclone/rclone:1.68'),
    volumeMounts: fc.uniqueArray(
      fc.record({ name: volumeRef, mountPath, readOnly: fc.boolean(), mountPropagation: fc.constantFrom('None', 'HostToContainer', 'Bidirectional') }, { requiredKeys: ['name', 'mountPath'] }),
      { selector: (m) => m.mountPath, maxLength: 5 },
    ),
    securityContext,
    resources,
    ports: fc.array(port, { maxLength: 2 }),
    restartPolicy: fc.constant('Always'),
  },
  { requiredKeys: ['image'] },
);

/**
 * Container names are DNS-1123 labels: the apiserver rejects any other name whatever podvisor does, and the rules
 * oracle does not check names, so an invalid one would only make its AppArmor annotation key look like podvisor's fault.
 */
const containerName = dnsLabel;

export interface GeneratedPod {
  readonly metadata: Json;
  readonly spec: Json;
}

function withNames(bodies: Json[], names: string[]): Json[] {
  return bodies.map((body, i) => ({ name: names[i]!, ...body }));
}

const boolSetting = fc.oneof({ weight: 3, arbitrary: fc.constantFrom('true', 'enabled', ' TRUE ') }, { weight: 1, arbitrary: fc.constantFrom('false', 'Disabled', 'yes', '', '1', 'on') });
const appArmorSetting = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('runtime/default', 'Runtime/Default', 'unconfined', 'localhost/k8s-nginx', `localhost/${'p'.repeat(4095)}`) },
  { weight: 1, arbitrary: fc.constantFrom('localhost/', 'localhost/ x', `localhost/${'p'.repeat(4096)}`, 'false', 'bogus', '') },
);
const agentSetting = fc.oneof(
  fc.subarray([...AGENT_FEATURES]).map((fs) => fs.join(',')),
  fc.tuple(fc.subarray([...AGENT_FEATURES], { maxLength: 3 }), fc.constantFrom('CAP_SYS_ADMIN', 'foo', ' Process ', ',,', 'none')).map(([fs, extra]) => [...fs, extra].join(', ')),
  fc.constantFrom('none', 'false', 'disabled', '', ',', 'x'.repeat(200)),
);
const statusSetting = fc.oneof(
  fc.constantFrom('{}', 'not json', '[]', 'null', '{"agent":{"containers":{"a":{"removed":["SYS_ADMIN"],"deprivileged":true}}}}', '{"agent":{"containers":[]}}', '{"agent":5}'),
  fc.json({ maxDepth: 3 }),
);

/** The pod annotations: every podvisor.io/* feature with valid and invalid values, AppArmor annotations, noise keys. */
function annotations(names: readonly string[]): fc.Arbitrary<Record<string, string>> {
  const listed = fc
    .tuple(fc.subarray([...names]), fc.constantFrom('', 'nope', ' ', ','), fc.constantFrom(',', ', ', ' ,'))
    .map(([chosen, extra, separator]) => [...chosen, extra].join(separator));
  const podvisor = sparse({
    'podvisor.io/lxcfs': fc.option(boolSetting, { nil: undefined, freq: 3 }),
    'podvisor.io/fuse': fc.option(boolSetting, { nil: undefined, freq: 2 }),
    'podvisor.io/apparmor': fc.option(appArmorSetting, { nil: undefined, freq: 2 }),
    'podvisor.io/agent': fc.option(agentSetting, { nil: undefined, freq: 2 }),
    'podvisor.io/containers': fc.option(listed, { nil: undefined, freq: 2 }),
    'podvisor.io/status': rarely(statusSetting, 5),
    'podvisor.io/LXCFS': rarely(fc.constant('true'), 5),
    'kubernetes.io/config.mirror': rarely(fc.constant('abc'), 20),
  }) as fc.Arbitrary<Record<string, string>>;
  const apparmorAnnotations = fc.dictionary(
    fc.oneof(fc.constantFrom(...(names.length > 0 ? names : ['x'])), fc.constant('missing')).map((n) => `container.apparmor.security.beta.kubernetes.io/${n}`),
    fc.constantFrom('runtime/default', 'localhost/k8s-nginx', 'unconfined', '', 'bogus'),
    { maxKeys: 2 },
  );
  const noise = fc.dictionary(fc.oneof(trickyString, fc.constantFrom('a/b/c', 'example.com/x~y', 'podvisor.io/', '/', '~')), trickyString, { maxKeys: 3 });
  return fc.tuple(noise, apparmorAnnotations, podvisor).map(([a, b, c]) => ({ ...a, ...b, ...c }));
}

/** A random pod (metadata and spec), names unique across containers, init containers and ephemeral containers. */
export const pod: fc.Arbitrary<GeneratedPod> = fc
  .record({
    containers: fc.array(containerBody, { minLength: 1, maxLength: 3 }),
    initContainers: fc.array(containerBody, { maxLength: 2 }),
    ephemeralContainers: fc.array(containerBody.map(({ image }) => ({ image })), { maxLength: 1 }),
    volumes: fc.uniqueArray(volume, { selector: (v) => v.name, maxLength: 6 }),
  })
  .chain((parts) => {
    const count = parts.containers.length + parts.initContainers.length + parts.ephemeralContainers.length;
    return fc.uniqueArray(containerName, { minLength: count, maxLength: count }).chain((names) => {
      const resolve = (c: Json) => resolveMounts(c, parts.volumes);
      const containers = withNames(parts.containers.map(({ restartPolicy: _r, ...c }) => resolve(c)), names);
      const initContainers = withNames(parts.initContainers.map(resolve), names.slice(parts.containers.length));
      const ephemeralContainers = withNames(parts.ephemeralContainers, names.slice(parts.containers.length + parts.initContainers.length));
      const targetable = [...containers, ...initContainers, ...ephemeralContainers].map((c) => String(c['name']));
      return fc.record({
        metadata: sparse({
          name: fc.option(dnsLabel, { nil: undefined }),
          labels: fc.option(fc.dictionary(fc.constantFrom('app', 'tier'), fc.constantFrom('x', 'true', 'false'), { maxKeys: 2 }), { nil: undefined }),
          exclude: rarely(fc.constant(true), 20),
          annotations: fc.option(annotations(targetable), { nil: undefined, freq: 10 }),
          ownerReferences: rarely(fc.constant([{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'rs', uid: 'u', controller: true }]), 15),
        }).map(({ exclude, ...meta }) => (exclude === true ? { ...meta, labels: { ...(meta['labels'] as Json), 'podvisor.io/exclude': 'true' } } : meta)),
        spec: fc.record(
          {
            containers: fc.constant(containers),
            initContainers: fc.constant(initContainers),
            ephemeralContainers: fc.constant(ephemeralContainers),
            volumes: fc.constant(parts.volumes),
            hostPID: fc.boolean(),
            hostNetwork: fc.boolean(),
            hostUsers: fc.boolean(),
            shareProcessNamespace: fc.boolean(),
            securityContext: fc.record({ appArmorProfile: appArmorField, runAsNonRoot: fc.boolean() }, { requiredKeys: [] }),
            os: fc.oneof({ weight: 5, arbitrary: fc.constant({ name: 'linux' }) }, { weight: 1, arbitrary: fc.constant({ name: 'windows' }) }),
            nodeSelector: fc.oneof({ weight: 5, arbitrary: fc.constantFrom({ 'kubernetes.io/os': 'linux' }, { disk: 'ssd' }) }, { weight: 1, arbitrary: fc.constant({ 'kubernetes.io/os': 'windows' }) }),
          },
          { requiredKeys: ['containers', 'volumes'] },
        ),
      });
    });
  });

export interface GeneratedReview {
  readonly body: Json;
  readonly namespace: string;
}

const namespace = fc.constantFrom('default', 'web', 'shop', 'observability', 'kube-system', 'podvisor-system', 'restricted', 'agents');
const operation = fc.oneof({ weight: 6, arbitrary: fc.constant('CREATE') }, { weight: 3, arbitrary: fc.constant('UPDATE') }, { weight: 1, arbitrary: fc.constantFrom('DELETE', 'CONNECT') });
const userInfo = fc.constantFrom({ username: 'alice', groups: ['system:authenticated'] }, { username: 'system:serviceaccount:kube-system:daemon-set-controller' }, { username: 'admin', groups: ['system:masters'] });

/** A pod wrapped in one of the handled kinds (with the workload's own annotations sometimes), as an object. */
export const workloadObject: fc.Arbitrary<Json> = fc
  .record({ kind: fc.constantFrom(...WORKLOAD_KINDS), pod, outer: fc.option(fc.dictionary(fc.constantFrom('podvisor.io/lxcfs', 'podvisor.io/agent', 'podvisor.io/fuse'), fc.constantFrom('true', 'false', 'process'), { maxKeys: 2 }), { nil: undefined }), claims: fc.boolean(), noTemplateMeta: fc.boolean() })
  .map(({ kind, pod: p, outer, claims, noTemplateMeta }) => {
    const apiVersion = kind.group === '' ? 'v1' : `${kind.group}/v1`;
    if (kind.templatePath.length === 0) return { apiVersion, kind: kind.kind, metadata: p.metadata, spec: p.spec };
    const template = noTemplateMeta ? { spec: p.spec } : { metadata: p.metadata, spec: p.spec };
    let spec: Json = { selector: { matchLabels: { app: 'x' } }, template };
    if (kind.kind === 'CronJob') spec = { schedule: '* * * * *', jobTemplate: { spec: { template } } };
    if (kind.kind === 'StatefulSet' && claims) spec['volumeClaimTemplates'] = [{ metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'] } }];
    const meta: Json = { name: 'w' };
    if (outer !== undefined) meta['annotations'] = outer;
    if (claims && p.metadata['ownerReferences'] !== undefined) meta['ownerReferences'] = p.metadata['ownerReferences'];
    return { apiVersion, kind: kind.kind, metadata: meta, spec };
  });

let uidCounter = 0;
/** An AdmissionReview v1 as the apiserver sends it, for a random workload object, namespace and operation. */
export const review: fc.Arbitrary<GeneratedReview> = fc
  .record({ object: workloadObject, namespace, operation, userInfo, subResource: fc.oneof({ weight: 8, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom('', 'status', 'ephemeralcontainers') }), dryRun: fc.boolean() })
  .map(({ object, namespace: ns, operation: op, userInfo: user, subResource, dryRun }) => {
    const [group, version] = String(object['apiVersion']).includes('/') ? String(object['apiVersion']).split('/') : ['', 'v1'];
    const kind = String(object['kind']);
    uidCounter += 1;
    const request: Json = {
      uid: `fuzz-${uidCounter}`,
      kind: { group, version, kind },
      resource: { group, version, resource: `${kind.toLowerCase()}s` },
      operation: op,
      namespace: ns,
      userInfo: user,
      dryRun,
      object: op === 'DELETE' || op === 'CONNECT' ? null : object,
      oldObject: op === 'UPDATE' || op === 'DELETE' ? object : null,
    };
    if (subResource !== undefined) request['subResource'] = subResource;
    return { body: { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request }, namespace: ns };
  });

/** Every envelope field podvisor reads, and some it only carries. */
export const ENVELOPE_PATHS: readonly (readonly string[])[] = [
  ['apiVersion'], ['kind'], ['request'], ['request', 'uid'], ['request', 'kind'], ['request', 'kind', 'group'], ['request', 'kind', 'version'],
  ['request', 'kind', 'kind'], ['request', 'resource'], ['request', 'resource', 'group'], ['request', 'resource', 'version'],
  ['request', 'resource', 'resource'], ['request', 'operation'], ['request', 'namespace'], ['request', 'name'], ['request', 'subResource'],
  ['request', 'object'], ['request', 'oldObject'], ['request', 'userInfo'], ['request', 'userInfo', 'username'], ['request', 'userInfo', 'groups'],
  ['request', 'dryRun'], ['request', 'options'], ['request', 'requestKind'],
];

/** A value of any JSON type (and `undefined`, meaning "delete the field"). */
export const anyJsonValue = fc.oneof(
  fc.constantFrom(undefined, null, 0, -1, 1.5, true, false, '', 'x', [], {}, [1, 2], { a: 1 }),
  fc.jsonValue({ maxDepth: 2 }),
);

function setAt(root: Json, path: readonly string[], value: unknown): void {
  let node: unknown = root;
  for (const key of path.slice(0, -1)) {
    if (typeof node !== 'object' || node === null) return;
    node = (node as Json)[key];
  }
  if (typeof node !== 'object' || node === null || Array.isArray(node)) return;
  if (value === undefined) delete (node as Json)[path.at(-1)!];
  else (node as Json)[path.at(-1)!] = value;
}

/** A valid review with one envelope field deleted or replaced by a value of another type. */
export const wrongEnvelope: fc.Arbitrary<Json> = fc
  .tuple(review, fc.constantFrom(...ENVELOPE_PATHS), anyJsonValue)
  .map(([r, path, value]) => {
    const body = structuredClone(r.body);
    setAt(body, path, value);
    return body;
  });

/** Pod fields the apiserver would never send with another type; `inject` and a direct POST can. */
export const OBJECT_PATHS: readonly (readonly string[])[] = [
  ['metadata'], ['metadata', 'annotations'], ['metadata', 'labels'], ['metadata', 'ownerReferences'], ['spec'], ['spec', 'containers'],
  ['spec', 'initContainers'], ['spec', 'ephemeralContainers'], ['spec', 'volumes'], ['spec', 'securityContext'], ['spec', 'os'],
  ['spec', 'nodeSelector'], ['spec', 'hostPID'], ['spec', 'containers', '0'], ['spec', 'containers', '0', 'name'],
  ['spec', 'containers', '0', 'volumeMounts'], ['spec', 'containers', '0', 'securityContext'], ['spec', 'containers', '0', 'securityContext', 'capabilities'],
  ['spec', 'containers', '0', 'securityContext', 'capabilities', 'add'], ['spec', 'containers', '0', 'resources'], ['spec', 'containers', '0', 'resources', 'limits'],
  ['spec', 'containers', '0', 'ports'], ['metadata', 'annotations', 'podvisor.io/lxcfs'], ['metadata', 'annotations', 'podvisor.io/agent'],
  ['metadata', 'annotations', 'podvisor.io/containers'], ['metadata', 'annotations', 'podvisor.io/status'],
];

/**
 * An opted-in Pod review with one field of its object changed: `missing` deletes it (the apiserver sends that: its
 * mutating admission runs before validation), `wrongType` replaces it by a value of any type (only a direct POST can).
 */
export const changedObjectField = (change: 'missing' | 'wrongType'): fc.Arbitrary<Json> => fc
  .tuple(pod, namespace, fc.constantFrom(...OBJECT_PATHS), change === 'missing' ? fc.constant(undefined) : anyJsonValue.filter((v) => v !== undefined))
  .map(([p, ns, path, value]) => {
    const object: Json = { apiVersion: 'v1', kind: 'Pod', metadata: { ...p.metadata, annotations: { ...(p.metadata['annotations'] as Json), 'podvisor.io/lxcfs': 'true', 'podvisor.io/fuse': 'true', 'podvisor.io/agent': 'process,ebpf-tracing' } }, spec: p.spec };
    setAt(object, path, value);
    uidCounter += 1;
    return {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: { uid: `fuzz-${uidCounter}`, kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' }, operation: 'CREATE', namespace: ns, userInfo: { username: 'alice' }, object },
    };
  });

/** Raw bodies: random text, random JSON, and valid reviews cut off anywhere. */
export const rawBody: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.string({ unit: 'grapheme', maxLength: 50 }),
  fc.json({ maxDepth: 4 }),
  fc.tuple(review, fc.double({ min: 0, max: 1, noNaN: true })).map(([r, cut]) => {
    const text = JSON.stringify(r.body);
    return text.slice(0, Math.floor(text.length * cut));
  }),
);

/** Deep nesting in an unknown field of the pod spec: `{"x":{"x":...}}` `depth` levels down. */
export function deeplyNested(depth: number): string {
  return `${'{"x":'.repeat(depth)}1${'}'.repeat(depth)}`;
}
