import { describe, expect, it } from 'vitest';
import { config, fixture, run } from './support/harness.js';

/** Objects are plain JSON here; tests index into them freely. */
type KubeObject = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const enforce = (level: string, ns: string) => ({ env: { config: config({ namespaces: { [ns]: { labels: { 'pod-security.kubernetes.io/enforce': level } } } }) } });

describe('Pod Security interplay: a warning naming the control the injected pod fails', () => {
  it('LXCFS hostPath volumes under enforce: baseline', () => {
    const r = run(fixture('01-pod-nginx-lxcfs.yaml'), enforce('baseline', 'web'));
    expect(r.outcome.warnings).toContain('spec.volumes: pods fail Pod Security "baseline" control "HostPath Volumes" (8 added by podvisor)');
  });

  it('FUSE SYS_ADMIN under enforce: restricted; nothing under privileged or without a level', () => {
    const r = run(fixture('14-pod-fuse-rclone.yaml'), enforce('restricted', 'web'));
    expect(r.outcome.warnings).toEqual(['spec.containers[0].securityContext: pods fail Pod Security "restricted" control "Capabilities" (SYS_ADMIN)']);
    expect(run(fixture('14-pod-fuse-rclone.yaml'), enforce('privileged', 'web')).outcome.warnings).toEqual([]);
    expect(run(fixture('14-pod-fuse-rclone.yaml')).outcome.warnings).toEqual([]);
  });

  it('agent capabilities and an added host namespace under enforce: baseline; only what podvisor added is named', () => {
    const object: KubeObject = {
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: { name: 'a', namespace: 'team' },
      spec: {
        selector: { matchLabels: { app: 'a' } },
        template: {
          metadata: { labels: { app: 'a' }, annotations: { 'podvisor.io/agent': 'process,run-as-non-root' } },
          spec: { containers: [{ name: 'a', image: 'a', securityContext: { capabilities: { add: ['SYS_PTRACE'] } } }] },
        },
      },
    };
    const r = run(object, enforce('baseline', 'team'));
    expect(r.outcome.warnings).toEqual([
      'spec.template.spec: pods fail Pod Security "baseline" control "Host Namespaces" (hostPID)',
      // SYS_PTRACE was the owner's already; CHOWN, FSETID, SETFCAP, SETGID, SETUID are within baseline.
      'spec.template.spec.containers[0].securityContext: pods fail Pod Security "baseline" control "Capabilities" (DAC_READ_SEARCH)',
    ]);
  });

  it('AppArmor unconfined from podvisor.io/apparmor under enforce: baseline', () => {
    const pod: KubeObject = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'web', annotations: { 'podvisor.io/apparmor': 'unconfined' } }, spec: { containers: [{ name: 'c', image: 'c' }] } };
    expect(run(pod, enforce('baseline', 'web')).outcome.warnings).toEqual(['spec.containers[0].securityContext: pods fail Pod Security "baseline" control "AppArmor" (Unconfined)']);
  });

  it('a live namespace label (the cache) wins over config', () => {
    const r = run(fixture('14-pod-fuse-rclone.yaml'), { env: { config: config(), namespaceLabels: () => ({ 'pod-security.kubernetes.io/enforce': 'baseline' }) } });
    expect(r.outcome.warnings).toHaveLength(1);
  });
});
