import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import jsonpatch from 'fast-json-patch';
import { parseAllDocuments } from 'yaml';
import { parseConfig } from '../src/config/load.js';
import { AGENT_FEATURES, AGENT_PROFILES, featureCapabilities } from '../src/features/agent-profiles.js';
import { agent as agentFeature } from '../src/features/agent.js';
import { mutateObject } from '../src/mutation/pipeline.js';
import { annotationsOf, config, fixture, fixtureReview, fixtureText, podOf, run, violations } from './support/harness.js';
import {
  asDaemonSet,
  containerOf,
  HAVE_KUBECTL,
  kubectlPatch,
  patchOf,
  podvisorInject,
  reviewFor,
  runChecked,
  statusOf,
} from './support/security-features.js';
import { startTestServer, type TestServer } from './support/server.js';

/** Objects are plain JSON here; tests index into them freely. */
type KubeObject = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** fixtures/README.md row 11: the unprivileged form's capability set. */
const ROW_11 = ['BPF', 'DAC_READ_SEARCH', 'NET_ADMIN', 'NET_RAW', 'PERFMON', 'SYS_CHROOT', 'SYS_PTRACE', 'SYS_RESOURCE'];
const agent11 = (): KubeObject => fixture('11-daemonset-agent-privileged.yaml');
const tracer = (): KubeObject => fixture('13-deployment-ebpf-tracer.yaml');

function pod(agent: string, container: Record<string, unknown> = {}, spec: Record<string, unknown> = {}, annotations: Record<string, string> = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'agent', namespace: 'observability', annotations: { 'podvisor.io/agent': agent, ...annotations } },
    spec: { containers: [{ name: 'agent', image: 'agent:1', ...container }], ...spec },
  };
}

function updateReview(withStatus: string | undefined) {
  const review = fixtureReview('review-11-daemonset-update.json');
  if (withStatus !== undefined) {
    for (const key of ['object', 'oldObject']) {
      (review.request[key] as KubeObject)['spec'].template.metadata.annotations['podvisor.io/status'] = withStatus;
    }
  }
  return review;
}

function runUpdate(review: ReturnType<typeof updateReview>) {
  const request = review.request;
  const object = request['object'] as KubeObject;
  const outcome = mutateObject({ group: 'apps', version: 'v1', kind: 'DaemonSet', operation: 'UPDATE', namespace: 'observability', object: structuredClone(object) }, { config: config() });
  const result = jsonpatch.applyPatch(structuredClone(object), outcome.patch, true, false).newDocument as KubeObject;
  return { outcome, object, result, old: request['oldObject'] as KubeObject };
}

/** The status podvisor writes when it mutates review-11-daemonset-create.json. */
function createStatus(): string {
  const request = fixtureReview('review-11-daemonset-create.json').request;
  const r = run(request['object'] as KubeObject);
  return annotationsOf(r.result)['podvisor.io/status']!;
}

describe('agent on the fixtures', () => {
  it('11 (seed 000, privileged): exactly the README row-11 capabilities, privileged false, everything else kept, no warning', () => {
    const original = agent11();
    const r = runChecked(original);
    expect(r.outcome.features).toEqual(['agent']);
    expect(r.outcome.warnings).toEqual([]);
    const c = containerOf(r.result, 'agent');
    expect(c.securityContext).toEqual({ privileged: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'], add: ROW_11 } });
    const before = podOf(original).spec;
    const after = podOf(r.result).spec;
    expect([after.hostPID, after.hostNetwork]).toEqual([true, true]);
    expect(after.volumes).toEqual(before.volumes);
    expect(c.volumeMounts).toEqual(containerOf(original, 'agent').volumeMounts);
    // Independent operations: their order carries no meaning.
    expect(r.outcome.patch.map((op) => op.path).sort()).toEqual([
      '/spec/template/metadata/annotations/podvisor.io~1status',
      '/spec/template/spec/containers/0/securityContext/capabilities',
      '/spec/template/spec/containers/0/securityContext/privileged',
    ]);
  });

  it('11: the status records per container each capability and the features that required it', () => {
    const status = statusOf(runChecked(agent11()).result);
    expect(status['agent']).toEqual({
      model: 'modern',
      features: ['process', 'container-metrics', 'log-discovery', 'network-performance', 'host-chroot'],
      containers: {
        agent: {
          capabilities: {
            BPF: ['network-performance'],
            DAC_READ_SEARCH: ['container-metrics', 'log-discovery', 'process'],
            NET_ADMIN: ['network-performance'],
            NET_RAW: ['network-performance'],
            PERFMON: ['network-performance'],
            SYS_CHROOT: ['host-chroot'],
            SYS_PTRACE: ['container-metrics', 'log-discovery', 'network-performance', 'process'],
            SYS_RESOURCE: ['network-performance'],
          },
          deprivileged: true,
        },
      },
      hostNamespaces: { hostPID: ['process', 'container-metrics', 'log-discovery', 'network-performance'] },
    });
  });

  it('11: a Pod created from the injected template (same status) needs no patch', () => {
    const template = (runChecked(agent11()).result['spec'] as { template: Record<string, unknown> }).template;
    const fromTemplate = { apiVersion: 'v1', kind: 'Pod', ...structuredClone(template) } as KubeObject;
    fromTemplate['metadata'].ownerReferences = [{ apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'hostwatch-agent', uid: 'u', controller: true }];
    const r = run(fromTemplate, { namespace: 'observability' });
    expect(r.outcome.patch).toEqual([]);
    expect(r.outcome.features).toEqual(['agent']);
  });

  it('12 (hand-tuned, no podvisor.io/agent): no patch', () => {
    const r = run(fixture('12-daemonset-agent-unprivileged.yaml'));
    expect(r.outcome.patch).toEqual([]);
    expect(r.outcome.skip).toBe('not_opted_in');
  });

  it('13: capabilities replaced by drop [ALL] + [BPF, PERFMON, SYS_RESOURCE]; removed names warned and recorded; debugfs kept', () => {
    const original = tracer();
    const r = runChecked(original);
    const c = containerOf(r.result, 'tracer');
    expect(c.securityContext).toEqual({ capabilities: { add: ['BPF', 'PERFMON', 'SYS_RESOURCE'], drop: ['ALL'] } });
    expect(r.outcome.warnings).toEqual([
      'spec.template.spec.containers[0].securityContext.capabilities.add: removed IPC_LOCK, NET_ADMIN, NET_RAW, SYSLOG, SYS_ADMIN, SYS_PTRACE (not needed)',
      'spec.template.spec.hostPID: recommended for ebpf-tracing; not set',
    ]);
    expect(c.volumeMounts).toEqual(containerOf(original, 'tracer').volumeMounts);
    expect(podOf(r.result).spec.volumes).toEqual(podOf(original).spec.volumes);
    expect(podOf(r.result).spec.hostPID).toBeUndefined();
    const record = (statusOf(r.result)['agent'] as { containers: Record<string, { removed: string[] }> }).containers['tracer']!;
    expect(record.removed).toEqual(['IPC_LOCK', 'NET_ADMIN', 'NET_RAW', 'SYSLOG', 'SYS_ADMIN', 'SYS_PTRACE']);
    // The re-run keeps the removed names (they are history, not in the object any more): same status, empty patch.
    expect(r.rerun.warnings).toEqual(['spec.template.spec.hostPID: recommended for ebpf-tracing; not set']);
  });

  it('13: a re-applied manifest (UPDATE without the injected fields) rebuilds the identical template', () => {
    const first: KubeObject = runChecked(tracer()).result;
    const again: KubeObject = run(tracer(), { operation: 'UPDATE' }).result;
    expect(again['spec'].template).toEqual(first['spec'].template);
  });
});

describe('review-11-daemonset-update (Argo CD re-applies privileged: true over the mutated template)', () => {
  it('(a) the raw fixture (its template lacks podvisor.io/status): privileged back to false and the status added; capabilities untouched', () => {
    const { outcome, object, result, old } = runUpdate(updateReview(undefined));
    expect(outcome.patch).toHaveLength(2);
    expect(outcome.patch).toEqual(
      expect.arrayContaining([
        { op: 'replace', path: '/spec/template/spec/containers/0/securityContext/privileged', value: false },
        { op: 'add', path: '/spec/template/metadata/annotations/podvisor.io~1status', value: createStatus() },
      ]),
    );
    expect(outcome.warnings).toEqual([]);
    const caps = (t: KubeObject) => containerOf(t, 'agent').securityContext?.capabilities;
    expect(caps(result)).toEqual(caps(object));
    expect(caps(result)!.add).toEqual(ROW_11);
    // The template equals oldObject's except for the image (and the status annotation oldObject never got).
    const template = structuredClone(result['spec'].template);
    delete template.metadata.annotations['podvisor.io/status'];
    template.spec.containers[0].image = old['spec'].template.spec.containers[0].image;
    expect(template).toEqual(old['spec'].template);
    expect(violations(result)).toEqual([]);
  });

  it('(b) object and oldObject carry the status as podvisor\'s CREATE wrote it: exactly one op, on privileged', () => {
    const { outcome, result, old } = runUpdate(updateReview(createStatus()));
    expect(outcome.patch).toEqual([{ op: 'replace', path: '/spec/template/spec/containers/0/securityContext/privileged', value: false }]);
    const template = structuredClone(result['spec'].template);
    template.spec.containers[0].image = old['spec'].template.spec.containers[0].image;
    expect(template).toEqual(old['spec'].template);
    // Re-admitting the output changes nothing.
    const rerun = mutateObject({ group: 'apps', version: 'v1', kind: 'DaemonSet', operation: 'UPDATE', namespace: 'observability', object: result }, { config: config() });
    expect(rerun.patch).toEqual([]);
  });
});

describe('agent rules', () => {
  it('capability models: legacy replaces BPF/PERFMON with SYS_ADMIN; bpfMemlock false (all nodes ≥ 5.11) drops SYS_RESOURCE', () => {
    const legacy = runChecked(agent11(), { env: { config: config({ agent: { capabilityModel: 'legacy' } }) } });
    expect(containerOf(legacy.result, 'agent').securityContext?.capabilities?.add).toEqual(['DAC_READ_SEARCH', 'NET_ADMIN', 'NET_RAW', 'SYS_ADMIN', 'SYS_CHROOT', 'SYS_PTRACE', 'SYS_RESOURCE']);
    expect(legacy.outcome.warnings).toEqual(['spec.template.spec.containers[0].securityContext.capabilities: SYS_ADMIN (network-performance) is near-root']);
    const noMemlock = runChecked(agent11(), { env: { config: config({ agent: { bpfMemlock: false } }) } });
    expect(containerOf(noMemlock.result, 'agent').securityContext?.capabilities?.add).toEqual(ROW_11.filter((c) => c !== 'SYS_RESOURCE'));
  });

  it('the table: every feature, both models: bare, upper-case capability names; legacy has no BPF/PERFMON', () => {
    for (const feature of AGENT_FEATURES) {
      for (const model of ['modern', 'legacy'] as const) {
        const caps = featureCapabilities(feature, model, true);
        for (const cap of caps) expect(cap).toMatch(/^[A-Z][A-Z_]*$/);
        expect(cap(caps)).toBe(true);
        if (model === 'legacy') expect(caps.filter((c) => c === 'BPF' || c === 'PERFMON')).toEqual([]);
      }
      expect(AGENT_PROFILES[feature]).toBeDefined();
    }
    function cap(list: string[]) {
      return !list.some((c) => c.startsWith('CAP_'));
    }
  });

  it('every feature alone and all together: valid, sorted bare add, drop [ALL], idempotent', () => {
    for (const features of [...AGENT_FEATURES.map((f) => f), AGENT_FEATURES.join(',')]) {
      const r = runChecked(pod(features, { securityContext: { privileged: true } }));
      const sc = containerOf(r.result, 'agent').securityContext!;
      expect(sc.privileged).toBe(false);
      expect(sc.capabilities?.drop).toEqual(['ALL']);
      const add = sc.capabilities?.add ?? [];
      expect(add).toEqual([...add].sort());
      expect(new Set(add).size).toBe(add.length);
    }
  });

  it('counted as injected exactly when it changed what it may write (host namespaces, volumes, security contexts, mounts)', () => {
    // The agent tracks its own writes; the oracle compares everything it may write before and after.
    const written = (o: KubeObject) => {
      const { spec } = podOf(o) as KubeObject;
      return JSON.stringify([spec.hostPID, spec.hostNetwork, spec.volumes, spec.containers.map((c: KubeObject) => [c.securityContext, c.volumeMounts])]);
    };
    const objects: KubeObject[] = [
      agent11(),
      tracer(),
      fixture('12-daemonset-agent-unprivileged.yaml'),
      fixture('17-daemonset-agent-readonly-root.yaml'),
      pod('process'),
      pod('host-metrics'),
      pod('ebpf-tracing', { securityContext: { capabilities: { drop: ['ALL'] } } }),
      pod('host-chroot', { securityContext: { capabilities: { drop: ['ALL'], add: ['SYS_CHROOT'] } } }),
      pod('host-chroot', { securityContext: { capabilities: { drop: ['ALL'], add: [] } } }),
      pod('host-metrics', {}, { hostNetwork: true }),
      pod('process', { securityContext: { privileged: true } }),
    ];
    for (const object of [...objects, ...objects.map((o) => run(o).result)]) {
      const { outcome, result } = run(object);
      expect(outcome.injected.includes('agent'), JSON.stringify(object)).toBe(written(object) !== written(result));
    }
  });

  it('owner names are normalised (CAP_ prefix, lower case) and not reported as removed when needed', () => {
    const r = runChecked(pod('process', { securityContext: { capabilities: { add: ['cap_sys_ptrace', 'CAP_DAC_READ_SEARCH', 'CAP_KILL'] } } }, { hostPID: true }));
    expect(containerOf(r.result, 'agent').securityContext?.capabilities).toEqual({ add: ['DAC_READ_SEARCH', 'SYS_PTRACE'], drop: ['ALL'] });
    expect(r.outcome.warnings).toEqual(['spec.containers[0].securityContext.capabilities.add: removed KILL (not needed)']);
    expect((statusOf(r.result)['agent'] as { containers: { agent: { removed: string[] } } }).containers.agent.removed).toEqual(['KILL']);
  });

  it('a container with a Bidirectional mount stays privileged (the API would reject it otherwise), with a warning', () => {
    const r = runChecked(
      pod(
        'ebpf-tracing',
        { securityContext: { privileged: true }, volumeMounts: [{ name: 'bpffs', mountPath: '/sys/fs/bpf', mountPropagation: 'Bidirectional' }] },
        { volumes: [{ name: 'bpffs', hostPath: { path: '/sys/fs/bpf', type: 'DirectoryOrCreate' } }] },
      ),
    );
    expect(containerOf(r.result, 'agent').securityContext?.privileged).toBe(true);
    expect(r.outcome.warnings).toContain('spec.containers[0].securityContext.privileged: kept true, a volumeMount uses Bidirectional propagation');
  });

  it('hostPID is added when a feature requires it and the pod can take it; never with shareProcessNamespace or hostUsers: false', () => {
    const added = runChecked(pod('process'));
    expect(podOf(added.result).spec.hostPID).toBe(true);
    const shared = runChecked(pod('process', {}, { shareProcessNamespace: true }));
    expect(podOf(shared.result).spec.hostPID).toBeUndefined();
    expect(shared.outcome.warnings).toContain('spec.hostPID: needed by process but not set: shareProcessNamespace forbids it');
    const userns = runChecked(pod('process,kernel-events', {}, { hostUsers: false }));
    expect(podOf(userns.result).spec.hostPID).toBeUndefined();
    expect(userns.outcome.warnings).toEqual([
      'spec.hostUsers: false; BPF, PERFMON and SYSLOG have no effect in a user namespace',
      'spec.hostPID: needed by process but not set: hostUsers: false forbids it',
    ]);
    // A mounted host /proc is a host PID view too.
    const proc = runChecked(pod('process', { volumeMounts: [{ name: 'proc', mountPath: '/host/proc', readOnly: true }] }, { volumes: [{ name: 'proc', hostPath: { path: '/proc' } }] }));
    expect(podOf(proc.result).spec.hostPID).toBeUndefined();
  });

  it('hostNetwork only for a feature that requires it (host-metrics), never when a hostPort differs from its containerPort', () => {
    const hostMount = { volumeMounts: [{ name: 'root', mountPath: '/host/root', readOnly: true }] };
    const rootVolume = { volumes: [{ name: 'root', hostPath: { path: '/' } }] };
    const metrics = runChecked(pod('host-metrics', hostMount, { ...rootVolume }));
    expect(podOf(metrics.result).spec.hostNetwork).toBe(true);
    expect(podOf(metrics.result).spec.hostPID).toBeUndefined();
    expect(metrics.outcome.warnings).toEqual([
      'spec.dnsPolicy: hostNetwork added; set ClusterFirstWithHostNet to resolve cluster names',
      'spec.hostPID: recommended for host-metrics; not set',
    ]);
    const dns = runChecked(pod('host-metrics', hostMount, { ...rootVolume, dnsPolicy: 'ClusterFirstWithHostNet' }));
    expect(dns.outcome.warnings).toEqual(['spec.hostPID: recommended for host-metrics; not set']);
    const ports = runChecked(pod('host-metrics', { ...hostMount, ports: [{ containerPort: 9100, hostPort: 19100 }] }, { ...rootVolume }));
    expect(podOf(ports.result).spec.hostNetwork).toBeUndefined();
    expect(ports.outcome.warnings).toContain('spec.hostNetwork: needed by host-metrics but not set: a hostPort differs from its containerPort');
    expect(podOf(runChecked(pod('process')).result).spec.hostNetwork).toBeUndefined();
    // The apiserver defaults hostPort to containerPort on hostNetwork pods: two equal containerPorts would collide.
    const twice = runChecked(pod('host-metrics', { ...hostMount, ports: [{ containerPort: 9100 }, { containerPort: 9100, name: 'again' }] }, { ...rootVolume }));
    expect(podOf(twice.result).spec.hostNetwork).toBeUndefined();
    expect(twice.outcome.warnings).toContain('spec.hostNetwork: needed by host-metrics but not set: containerPort 9100/TCP is used twice and would become a duplicate hostPort');
  });

  it('read-only tracefs only when needed and no mount with that host path exists', () => {
    const bare = runChecked(asDaemonSet(pod('ebpf-tracing')));
    expect(containerOf(bare.result, 'agent').volumeMounts).toEqual([{ name: 'podvisor-agent-sys-kernel-tracing', mountPath: '/sys/kernel/tracing', readOnly: true }]);
    expect(podOf(bare.result).spec.volumes).toEqual([{ name: 'podvisor-agent-sys-kernel-tracing', hostPath: { path: '/sys/kernel/tracing', type: 'Directory' } }]);
    // Host root mounted: the view exists already.
    const root = runChecked(pod('ebpf-tracing', { volumeMounts: [{ name: 'root', mountPath: '/host', readOnly: true }] }, { volumes: [{ name: 'root', hostPath: { path: '/' } }] }));
    expect(podOf(root.result).spec.volumes).toHaveLength(1);
    // The owner's mount at /sys/kernel/tracing from something else: kept, warned, never a duplicate mountPath.
    const clash = runChecked(pod('ebpf-tracing', { volumeMounts: [{ name: 'scratch', mountPath: '/sys/kernel/tracing' }] }, { volumes: [{ name: 'scratch', emptyDir: {} }] }));
    expect(clash.outcome.warnings).toContain('spec.containers[0].volumeMounts: /sys/kernel/tracing is the owner\'s mount; host /sys/kernel/tracing not added');
    // Features that do not need it never get it.
    expect(podOf(runChecked(pod('kernel-events')).result).spec.volumes).toBeUndefined();
  });

  it('unknown feature: the agent is not applied at all (no subset granted); the warning names the closest valid feature', () => {
    const privileged = { securityContext: { privileged: true, capabilities: { add: ['SYS_ADMIN'] } } };
    const typo = run(pod('process,ebpf-tracng', privileged, { hostPID: true }));
    expect(typo.outcome.patch).toEqual([]);
    expect(typo.outcome.skip).toBe('invalid_value');
    expect(typo.outcome.warnings).toEqual(['podvisor.io/agent: unknown feature "ebpf-tracng" (did you mean "ebpf-tracing"?); skipped']);
    const several = run(pod('process,CAP_SYS_ADMIN,telepathy', {}, { hostPID: true }));
    expect(several.outcome.patch).toEqual([]);
    expect(several.outcome.warnings).toEqual(['podvisor.io/agent: unknown features "CAP_SYS_ADMIN", "telepathy"; skipped']);
    for (const w of several.outcome.warnings) expect(w.length).toBeLessThanOrEqual(120);
    // An empty list: a no-op with a warning.
    const empty = run(pod(' , '));
    expect(empty.outcome.patch).toEqual([]);
    expect(empty.outcome.warnings).toEqual(['podvisor.io/agent: invalid value " , ", expected a comma-separated list of agent features; skipped']);
  });

  it('run-as-non-root with allowPrivilegeEscalation: false warns (no_new_privs); APE is left alone', () => {
    const r = runChecked(pod('run-as-non-root', { securityContext: { allowPrivilegeEscalation: false } }));
    expect(containerOf(r.result, 'agent').securityContext?.allowPrivilegeEscalation).toBe(false);
    expect(r.outcome.warnings).toEqual(['spec.containers[0].securityContext.allowPrivilegeEscalation: false breaks run-as-non-root (no_new_privs)']);
  });

  it('only the selected containers: a sidecar not named in podvisor.io/containers keeps its capabilities', () => {
    const object = pod('process', {}, { hostPID: true }, { 'podvisor.io/containers': 'agent' });
    object['spec'].containers.push({ name: 'sidecar', image: 's', securityContext: { capabilities: { add: ['NET_ADMIN'] } } });
    const r = runChecked(object);
    expect(containerOf(r.result, 'sidecar').securityContext).toEqual({ capabilities: { add: ['NET_ADMIN'] } });
  });

  it('Pod UPDATE untouched; Windows pods untouched', () => {
    expect(run(pod('process', { securityContext: { privileged: true } }), { operation: 'UPDATE' }).outcome.patch).toEqual([]);
    const windows = run(pod('process', {}, { os: { name: 'windows' } }));
    expect(windows.outcome.patch).toEqual([]);
    expect(windows.outcome.skip).toBe('windows');
  });

  it('config: an unknown feature in defaults.agent or namespaces.<ns>.agent is rejected naming the field', () => {
    expect(() => parseConfig({ defaults: { agent: 'process,telepathy' } })).toThrow(/defaults\.agent: unknown agent feature\(s\) "telepathy"; valid: host-metrics/);
    expect(() => parseConfig({ namespaces: { observability: { agent: '' } } })).toThrow(/namespaces\.observability\.agent: expected a comma-separated list/);
    expect(() => parseConfig({ agent: { capabilityModel: 'ancient' } })).toThrow(/agent\.capabilityModel/);
    expect(parseConfig({ namespaces: { observability: { agent: 'process' } } }).namespaces['observability']?.agent).toBe('process');
  });
});

describe('all features together', () => {
  const everything = () =>
    pod(
      'process,ebpf-tracing,host-chroot',
      { securityContext: { privileged: true, capabilities: { add: ['CAP_NET_ADMIN'] } }, resources: { limits: { memory: '1Gi' } } },
      {},
      { 'podvisor.io/lxcfs': 'true', 'podvisor.io/fuse': 'true', 'podvisor.io/apparmor': 'localhost/agent-fuse' },
    );

  it('lxcfs + agent + apparmor + fuse: FUSE\'s SYS_ADMIN is part of the agent\'s set, attributed to fuse; valid and idempotent', () => {
    for (const object of [everything(), asDaemonSet(everything())]) {
      const r = runChecked(object);
      expect(r.outcome.features).toEqual(['lxcfs', 'agent', 'apparmor', 'fuse']);
      const sc = containerOf(r.result, 'agent').securityContext!;
      expect(sc).toEqual({
        privileged: false,
        capabilities: { add: ['BPF', 'DAC_READ_SEARCH', 'PERFMON', 'SYS_ADMIN', 'SYS_CHROOT', 'SYS_PTRACE', 'SYS_RESOURCE'], drop: ['ALL'] },
        appArmorProfile: { type: 'Localhost', localhostProfile: 'agent-fuse' },
      });
      expect(containerOf(r.result, 'agent').resources?.limits).toEqual({ memory: '1Gi', 'smarter-devices/fuse': '1' });
      const agentStatus = statusOf(r.result)['agent'] as { containers: { agent: { capabilities: Record<string, string[]>; removed: string[] } } };
      expect(agentStatus.containers.agent.capabilities['SYS_ADMIN']).toEqual(['fuse']);
      expect(agentStatus.containers.agent.removed).toEqual(['NET_ADMIN']);
      expect(r.rerun.warnings.join('\n')).not.toContain('removed');
    }
  });

  it('the agent step itself never adds FUSE\'s SYS_ADMIN (so a policy guard charges it to fuse), but keeps an existing one', () => {
    const draft = (add: string[]) => ({ metadata: {}, spec: { containers: [{ name: 'a', image: 'a', securityContext: { capabilities: { add } } }] } });
    const step = (pod: ReturnType<typeof draft>) => {
      const warnings: string[] = [];
      const targets = [{ container: pod.spec.containers[0]!, field: 'spec.containers[0]' }];
      agentFeature.apply({ config: config(), pod, specField: 'spec', isTemplate: false, targets, value: 'host-chroot', warn: (w) => warnings.push(w), featureTargets: { agent: new Set(['a']), fuse: new Set(['a']) } });
      return { add: pod.spec.containers[0]!.securityContext.capabilities.add, warnings };
    };
    const advice = 'spec.containers[0].volumeMounts: no host / mounted (agent features read it)';
    expect(step(draft(['NET_RAW']))).toEqual({ add: ['SYS_CHROOT'], warnings: ['spec.containers[0].securityContext.capabilities.add: removed NET_RAW (not needed)', advice] });
    expect(step(draft(['SYS_ADMIN', 'SYS_CHROOT']))).toEqual({ add: ['SYS_ADMIN', 'SYS_CHROOT'], warnings: [advice] });
  });

  it.skipIf(!HAVE_KUBECTL)('kubectl patch --local gives the same objects as fast-json-patch (11, 13, all features)', () => {
    for (const original of [agent11(), tracer(), everything(), asDaemonSet(everything())]) {
      const { outcome, result } = run(original);
      expect(outcome.patch.length).toBeGreaterThan(0);
      expect(kubectlPatch(original, outcome.patch)).toEqual(result);
    }
  });
});

describe('agent through the HTTPS server', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(async () => t.close());

  it('review-11-daemonset-create: the patch touches only containers/0/securityContext (and the status); result valid', async () => {
    const review = fixtureReview('review-11-daemonset-create.json');
    const answer = (await t.post('/mutate', review)).json();
    expect(answer.response).toMatchObject({ uid: review.request['uid'], allowed: true });
    const patch = patchOf(answer.response) as jsonpatch.Operation[];
    expect(patch.map((op) => op.path).sort()).toEqual([
      '/spec/template/metadata/annotations/podvisor.io~1status',
      '/spec/template/spec/containers/0/securityContext/capabilities',
      '/spec/template/spec/containers/0/securityContext/privileged',
    ]);
    const result = jsonpatch.applyPatch(structuredClone(review.request['object'] as KubeObject), patch, true, false).newDocument;
    expect(containerOf(result, 'agent').securityContext?.capabilities).toEqual({ drop: ['ALL'], add: ROW_11 });
    expect(violations(result)).toEqual([]);
    expect(patchOf((await t.post('/mutate', { ...review, request: { ...review.request, object: result } })).json().response)).toEqual([]);
  });

  it('review-11-daemonset-update: (a) raw → privileged + status; (b) with CREATE\'s status → exactly one op', async () => {
    const raw = (await t.post('/mutate', updateReview(undefined))).json();
    expect((patchOf(raw.response) as jsonpatch.Operation[]).map((op) => op.path).sort()).toEqual([
      '/spec/template/metadata/annotations/podvisor.io~1status',
      '/spec/template/spec/containers/0/securityContext/privileged',
    ]);
    const withStatus = (await t.post('/mutate', updateReview(createStatus()))).json();
    expect(patchOf(withStatus.response)).toEqual([{ op: 'replace', path: '/spec/template/spec/containers/0/securityContext/privileged', value: false }]);
  });

  it('11 as a CREATE review and 12: the README row-11 set; 12 gets no patch', async () => {
    const object = agent11();
    const answer = (await t.post('/mutate', reviewFor(object))).json();
    const result = jsonpatch.applyPatch(structuredClone(object), patchOf(answer.response) as jsonpatch.Operation[], true, false).newDocument;
    expect(containerOf(result, 'agent').securityContext).toEqual({ privileged: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'], add: ROW_11 } });
    expect(violations(result)).toEqual([]);
    const unprivileged = (await t.post('/mutate', reviewFor(fixture('12-daemonset-agent-unprivileged.yaml')))).json();
    expect(patchOf(unprivileged.response)).toEqual([]);
  });

  it('13 as a CREATE review: the removed-capabilities warning reaches the apiserver', async () => {
    const answer = (await t.post('/mutate', reviewFor(tracer()))).json();
    expect(answer.response.warnings[0]).toMatch(/^spec\.template\.spec\.containers\[0\]\.securityContext\.capabilities\.add: removed IPC_LOCK/);
    expect(answer.response.warnings[0].length).toBeLessThanOrEqual(120);
  });
});

describe('podvisor inject (CLI, same pipeline)', () => {
  it('11, 13 and 14 in one file: the same objects as the pipeline, and injecting the output again changes nothing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'podvisor-inject-'));
    const file = join(dir, 'agents.yaml');
    const names = ['11-daemonset-agent-privileged.yaml', '13-deployment-ebpf-tracer.yaml', '14-pod-fuse-rclone.yaml'];
    writeFileSync(file, names.map((n) => fixtureText(n)).join('\n---\n'));
    const out = podvisorInject(['-f', file]);
    expect(out.code, out.stderr).toBe(0);
    const docs = parseAllDocuments(out.stdout).map((d) => d.toJS() as KubeObject);
    expect(docs.map((d) => d['kind'])).toEqual(['DaemonSet', 'Deployment', 'Pod']);
    names.forEach((name, i) => {
      expect(docs[i]).toEqual(run(fixture(name)).result);
      expect(violations(docs[i]!)).toEqual([]);
    });
    expect(containerOf(docs[0]!, 'agent').securityContext?.capabilities?.add).toEqual(ROW_11);
    expect(out.stderr).toContain('removed IPC_LOCK');
    const again = podvisorInject(['-f', '-'], out.stdout);
    expect(again.code, again.stderr).toBe(0);
    expect(parseAllDocuments(again.stdout).map((d) => d.toJS())).toEqual(docs);
  });
});
