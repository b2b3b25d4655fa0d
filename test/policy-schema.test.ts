import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseConfig } from '../src/config/load.js';

const run = promisify(execFile);

function configError(policy: unknown): string {
  try {
    parseConfig({ policy });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('policy config', () => {
  it('defaults deny nothing: privileged level in every mode, privileged allowed, LXCFS allowed', () => {
    const { policy } = parseConfig({});
    expect(policy.default).toMatchObject({
      name: 'cluster-default',
      enforce: { level: 'privileged', version: 'latest' },
      warn: { level: 'privileged', version: 'latest' },
      audit: { level: 'privileged', version: 'latest' },
      privileged: 'allow',
      lxcfs: 'allow',
      allowances: [],
    });
    expect(policy.workloads).toBe('enforce');
    expect(policy.exemptions.namespaces).toEqual(['kube-system']);
    expect(policy.namespaces).toEqual([]);
  });

  it('accepts the shipped examples', async () => {
    const locked = await loadConfig('examples/policies/locked-down.yaml');
    expect(locked.policy.default).toMatchObject({ enforce: { level: 'baseline' }, privileged: 'deny' });
    const monitoring = await loadConfig('examples/policies/monitoring.yaml');
    expect(monitoring.policy.namespaces[0]).toMatchObject({ name: 'monitoring', match: { names: ['observability'] } });
  });

  it.each([
    [{ default: { enforce: { level: 'strict' } } }, 'policy.default.enforce.level: expected one of privileged, baseline, restricted'],
    [{ default: { warn: { version: 'v1.024' } } }, 'policy.default.warn.version: expected "latest" or a version v1.<minor> (v1.0 onward)'],
    [{ default: { warn: { version: 'v2.0' } } }, 'policy.default.warn.version: expected "latest"'],
    [{ default: { audit: { version: '1.30' } } }, 'policy.default.audit.version: expected "latest"'],
    [{ default: { privileged: 'forbid' } }, 'policy.default.privileged:'],
    [{ default: { allowances: [{ capabilities: ['CAP_BPF'] }] } }, 'policy.default.allowances.0.capabilities.0: use the bare name "BPF"'],
    [{ default: { allowances: [{ capabilities: ['sys_ptrace'] }] } }, 'policy.default.allowances.0.capabilities.0: must be an upper-case capability name'],
    [{ default: { allowances: [{ hostPaths: [{ pathPrefix: 'var/log' }] }] } }, 'policy.default.allowances.0.hostPaths.0.pathPrefix: must be an absolute path'],
    [{ default: { allowances: [{ hostPID: 'yes' }] } }, 'policy.default.allowances.0.hostPID:'],
    [{ default: { enforcement: 'baseline' } }, 'policy.default: Unrecognized key: "enforcement"'],
    [{ namespaces: [{ name: 'a', match: {} }] }, 'policy.namespaces.0.match: give names, a selector, or both'],
    [{ namespaces: [{ name: 'a', match: { selector: { matchExpressions: [{ key: 'k', operator: 'In' }] } } }] }, 'policy.namespaces.0.match.selector.matchExpressions.0: In and NotIn need values'],
    [
      { namespaces: [{ name: 'a', match: { names: ['web'] } }, { name: 'b', match: { names: ['web'] } }] },
      'policy.namespaces.1.match.names.0: namespace "web" is already named by policy "a"',
    ],
    [{ namespaces: [{ name: 'a', match: { names: ['x'] } }, { name: 'a', match: { names: ['y'] } }] }, 'policy.namespaces.1.name: duplicate policy name "a"'],
    [{ workloads: 'deny' }, 'policy.workloads:'],
    [{ exemptions: { namespaces: ['Kube_System'] } }, 'policy.exemptions.namespaces.0: must be a DNS-1123 label'],
  ])('refuses %j with a message naming the field', (policy, message) => {
    expect(configError(policy)).toContain(message);
  });

  it('refuses to start: `podvisor serve` with a bad policy exits 2 (the command could not run) and names the field', { timeout: 60_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'podvisor-policy-'));
    const file = join(dir, 'bad.yaml');
    await writeFile(file, 'policy:\n  default:\n    enforce: {level: baseline, version: v1.19.2}\n');
    const result = await run('npx', ['tsx', 'src/cli.ts', 'serve', '--config', file, '--port', '0', '--ops-port', '0', '--cert-dir', join(dir, 'certs')]).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('policy.default.enforce.version: expected "latest" or a version v1.<minor> (v1.0 onward)');
  });
});
