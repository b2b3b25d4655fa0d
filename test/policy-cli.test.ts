import { spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

function check(args: string[], stdin?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'check', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin ?? '');
  });
}

const LOCKED = ['--config', 'examples/policies/locked-down.yaml'];

describe('podvisor check', { timeout: 90_000 }, () => {
  it('a field of the wrong type: exit 2 naming the document and the field, no stack trace', async () => {
    const { code, stdout, stderr } = await check(['-f', '-'], 'apiVersion: v1\nkind: Pod\nmetadata: {name: x, namespace: web}\nspec:\n  containers: oops\n');
    expect(code).toBe(2);
    expect(stderr).toContain('podvisor: <stdin>: document 0: Pod/x: spec.containers: expected an array, got a string\n');
    expect(stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(stdout).toBe('');
  });

  it('--no-mutate: exits 1 for the privileged agent as written under examples/policies/locked-down.yaml and prints every violation', async () => {
    const { code, stdout } = await check([...LOCKED, '--no-mutate', '-f', 'test/fixtures/11-daemonset-agent-privileged.yaml']);
    expect(code).toBe(1);
    expect(stdout).toContain('DaemonSet/hostwatch-agent (namespace observability): DENIED by policy locked-down');
    expect(stdout).toContain('  spec.template.spec.containers[0].securityContext.privileged: forbidden by policy locked-down (privileged, podvisor:privileged)');
    expect(stdout).toContain('  spec.template.spec.hostPID: forbidden by policy locked-down (hostNamespaces)');
    expect(stdout).toContain('1 object(s) checked, 1 denied');
  });

  it('exits 0 for compliant manifests from stdin, reporting warnings and audit findings; other kinds are skipped', async () => {
    const manifest = [
      'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}',
      'apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers:\n    - {name: web, image: nginx}',
    ].join('\n---\n');
    const { code, stdout } = await check([...LOCKED, '-f', '-', '--namespace', 'shop'], manifest);
    expect(code).toBe(0);
    expect(stdout).toContain('ConfigMap/c: not checked (unsupported_kind)');
    expect(stdout).toContain('Pod/web (namespace shop): allowed by policy locked-down');
    expect(stdout).toContain('  warning: spec.containers[0].securityContext.allowPrivilegeEscalation: violates policy locked-down');
    expect(stdout).toContain('  audit: policy locked-down restricted:latest:');
    expect(stdout).toContain('2 object(s) checked, 0 denied');
  });

  it('--user and --group apply the exemptions to Pods; a workload is judged as the controller that creates its Pods', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'podvisor-check-'));
    const file = join(dir, 'config.yaml');
    await writeFile(file, 'policy:\n  exemptions: {usernames: [ci-bot], groups: [sre]}\n  default: {privileged: deny}\n');
    const pod = 'apiVersion: v1\nkind: Pod\nmetadata: {name: debug, namespace: web}\nspec:\n  containers:\n    - {name: c, image: c, securityContext: {privileged: true}}\n';
    const byUser = await check(['--config', file, '-f', '-', '--user', 'ci-bot'], pod);
    expect(byUser.code).toBe(0);
    expect(byUser.stdout).toContain('Pod/debug (namespace web): exempt (username ci-bot)');
    const byGroup = await check(['--config', file, '-f', '-', '--user', 'bob', '--group', 'sre'], pod);
    expect(byGroup.stdout).toContain('exempt (group sre)');
    // The DaemonSet's Pods are created by the daemon-set controller, which is not exempt: the template is judged.
    const fixture = 'test/fixtures/11-daemonset-agent-privileged.yaml';
    const workload = await check(['--config', file, '-f', fixture, '--user', 'ci-bot', '--no-mutate']);
    expect(workload.code).toBe(1);
    expect(workload.stdout).toContain('DaemonSet/hostwatch-agent (namespace observability): DENIED by policy cluster-default');
  });

  it('by default objects are judged after podvisor.io/agent; --no-mutate judges them as written', async () => {
    // Fixture 17: fixture 11 with its host root really read-only (type Directory, recursiveReadOnly: Enabled).
    const file = 'test/fixtures/17-daemonset-agent-readonly-root.yaml';
    const mutated = await check(['--config', 'examples/policies/monitoring.yaml', '-f', file]);
    expect(mutated.stdout).toContain('allowed by policy monitoring');
    expect(mutated.code).toBe(0);
    const asWritten = await check(['--config', 'examples/policies/monitoring.yaml', '-f', file, '--no-mutate']);
    expect(asWritten.code).toBe(1);
    const broken = await check(['--config', 'examples/policies/missing.yaml', '-f', 'test/fixtures/11-daemonset-agent-privileged.yaml']);
    expect(broken.code).toBe(2);
    expect(broken.stderr).toContain('cannot read config examples/policies/missing.yaml');
  });

  it('an annotated agent is judged as the cluster will see it: no advice to add the annotation that is already there', async () => {
    const { code, stdout } = await check([...LOCKED, '-f', 'test/fixtures/11-daemonset-agent-privileged.yaml']);
    expect(code).toBe(1);
    expect(stdout).not.toContain('annotate the pod template with podvisor.io/agent');
    expect(stdout).not.toContain('securityContext.privileged: forbidden');
    expect(stdout).toContain('podvisor.io/agent: not applied, policy locked-down does not allow what it adds');
  });

  it('-o json: one entry per object with kind, name, namespace, verdict and the violations\' field paths', async () => {
    const manifest = ['apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}', 'apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\nspec: {containers: [{name: web, image: nginx}]}'].join('\n---\n');
    const dir = await mkdtemp(join(tmpdir(), 'podvisor-check-'));
    await writeFile(join(dir, 'all.yaml'), manifest);
    const { code, stdout } = await check([...LOCKED, '-o', 'json', '--no-mutate', '-f', join(dir, 'all.yaml'), '-f', 'test/fixtures/11-daemonset-agent-privileged.yaml']);
    expect(code).toBe(1);
    const report = JSON.parse(stdout) as { objects: Record<string, any>[]; checked: number; denied: number }; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(report.checked).toBe(3);
    expect(report.denied).toBe(1);
    expect(report.objects.map((o) => [o['kind'], o['name'], o['namespace'], o['verdict']])).toEqual([
      ['ConfigMap', 'c', undefined, 'skipped'],
      ['Pod', 'web', 'shop', 'allowed'],
      ['DaemonSet', 'hostwatch-agent', 'observability', 'denied'],
    ]);
    const denied = report.objects[2]!;
    expect(denied['policy']).toBe('locked-down');
    expect(denied['violations']).toContainEqual({ field: 'spec.template.spec.containers[0].securityContext.privileged', check: 'privileged', message: 'forbidden by policy locked-down (privileged)' });
    expect(denied['violations']).toContainEqual({ field: 'spec.template.spec.hostPID', check: 'hostNamespaces', message: 'forbidden by policy locked-down (hostNamespaces)' });
    expect(report.objects[1]!['warnings'].length).toBeGreaterThan(0);
    // Denied by podvisor's own injection (the escalation guard): the field paths come from its message lines.
    const mutated = JSON.parse((await check([...LOCKED, '-o', 'json', '-f', 'test/fixtures/11-daemonset-agent-privileged.yaml'])).stdout) as { objects: Record<string, any>[] }; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(mutated.objects[0]!['verdict']).toBe('denied');
    expect(mutated.objects[0]!['violations']).toContainEqual({
      field: 'spec.template.spec.containers[0].securityContext.capabilities.add[0]',
      check: 'capabilities_baseline',
      value: 'BPF',
      message: 'forbidden by policy locked-down (capabilities_baseline: BPF)',
    });
  });
});
