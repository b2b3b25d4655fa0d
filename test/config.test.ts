import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseConfigText } from '../src/config/load.js';
import { DEFAULT_LXCFS_FILES } from '../src/config/schema.js';

function error(text: string): string {
  try {
    parseConfigText(text, 'test.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('config', () => {
  it('the embedded default: ports, exclusions (with podvisor\'s own namespace), LXCFS table', async () => {
    const config = await loadConfig(undefined);
    expect(config.server).toMatchObject({ address: '0.0.0.0', port: 8443, opsAddress: '0.0.0.0', opsPort: 8080 });
    expect(config.server.bodyLimitBytes).toBeGreaterThan(3 * 1024 * 1024);
    expect(config.server.keepAliveTimeoutMs).toBeGreaterThan(90_000);
    expect(config.excludedNamespaces).toEqual(['kube-system', 'kube-public', 'kube-node-lease', 'podvisor-system']);
    expect(config.lxcfs).toEqual({ hostRoot: '/var/lib/lxc/lxcfs', files: [...DEFAULT_LXCFS_FILES] });
    expect(config.lxcfs.files.some((f) => f.startsWith('/proc/pressure'))).toBe(false);
  });

  it('reads a YAML file and adds a custom own namespace to the exclusions', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'podvisor-config-'));
    const file = join(dir, 'config.yaml');
    writeFileSync(file, 'namespace: webhooks\nserver:\n  port: 9443\ndefaults:\n  lxcfs: true\n');
    const config = await loadConfig(file);
    expect(config.server.port).toBe(9443);
    expect(config.defaults.lxcfs).toBe(true);
    expect(config.excludedNamespaces).toContain('webhooks');
  });

  it.each([
    ['server:\n  port: 70000\n', 'server.port: Too big'],
    ['server:\n  port: "8443"\n', 'server.port: Invalid input: expected number, received string'],
    ['serverr:\n  port: 1\n', 'Unrecognized key: "serverr"'],
    ['lxcfs:\n  files: [/proc/pressure/cpu]\n', 'lxcfs.files.0: unsupported LXCFS file "/proc/pressure/cpu": runc refuses'],
    ['lxcfs:\n  files: [/proc/net/dev]\n', 'lxcfs.files.0: unsupported LXCFS file "/proc/net/dev"'],
    ['lxcfs:\n  files: [/sys/devices/system/cpu, /sys/devices/system/cpu/online]\n', 'lxcfs.files: mount either'],
    ['lxcfs:\n  hostRoot: var/lib/lxcfs\n', 'lxcfs.hostRoot: must be an absolute path'],
    ['lxcfs:\n  hostRoot: /var/../etc\n', 'lxcfs.hostRoot: must not contain ".."'],
    ['defaults:\n  lxcfs: "yes"\n', 'defaults.lxcfs: Invalid input: expected boolean'],
    ['namespaces:\n  Bad_NS: {lxcfs: true}\n', 'namespaces.Bad_NS'],
    ['excludedNamespaces: kube-system\n', 'excludedNamespaces: Invalid input: expected array'],
    ['tls:\n  certFile: /x.crt\n', 'tls: certFile and keyFile must be given together'],
    ['server:\n  keepAliveTimeoutMs: 5000\n', 'server.keepAliveTimeoutMs: Too small'],
    ['- a\n- b\n', 'the top level must be a mapping'],
    ['server: [\n', 'not valid YAML'],
  ])('rejects %j naming the field', (text, expected) => {
    expect(error(text)).toContain(expected);
  });

  it('an unreadable file is a ConfigError naming the file', async () => {
    await expect(loadConfig('/nonexistent/podvisor.yaml')).rejects.toThrow(/cannot read config \/nonexistent\/podvisor.yaml: ENOENT/);
  });
});
