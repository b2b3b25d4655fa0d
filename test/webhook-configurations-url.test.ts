// Dev mode (`podvisor serve --webhook-url`): the configurations name a URL instead of the Service and are otherwise the
// in-cluster ones; the serving certificate names the URL's host. The apiserver's own acceptance of such a
// configuration, and a Pod admitted through it, are in test/e2e/ (a real kube-apiserver).
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { generateBundle, nextRotationStep, type CertificatePolicy } from '../src/k8s/certificates.js';
import { certificatePolicy } from '../src/k8s/cluster.js';
import { mutatingWebhookConfiguration, parseWebhookUrl, validatingWebhookConfiguration, webhookEndpoint, type WebhookSettings } from '../src/k8s/webhook-configurations.js';
import { config } from './support/harness.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function withoutClientConfig(value: { webhooks?: { clientConfig: unknown }[] }): unknown {
  return { ...value, webhooks: value.webhooks?.map((w) => ({ ...w, clientConfig: undefined })) };
}

describe('parseWebhookUrl', () => {
  it('accepts https URLs with a host and an optional path', () => {
    expect(parseWebhookUrl('https://127.0.0.1:8443').href).toBe('https://127.0.0.1:8443/');
    expect(parseWebhookUrl('https://dev.example:9443/podvisor/').pathname).toBe('/podvisor/');
  });

  it('rejects what the apiserver rejects, naming the reason', () => {
    expect(() => parseWebhookUrl('127.0.0.1:8443')).toThrow(/not a URL/);
    expect(() => parseWebhookUrl('not a url')).toThrow(/not a URL/);
    expect(() => parseWebhookUrl('http://127.0.0.1:8443')).toThrow(/https only/);
    expect(() => parseWebhookUrl('https://me:secret@127.0.0.1:8443')).toThrow(/user info/);
    expect(() => parseWebhookUrl('https://127.0.0.1:8443/?a=b')).toThrow(/query and fragment/);
    expect(() => parseWebhookUrl('https://127.0.0.1:8443/#x')).toThrow(/query and fragment/);
  });

  it('joins a base path and the route without a double slash', () => {
    expect(webhookEndpoint(new URL('https://h:1'), '/mutate')).toBe('https://h:1/mutate');
    expect(webhookEndpoint(new URL('https://h:1/p/'), '/validate')).toBe('https://h:1/p/validate');
  });
});

describe('configurations in dev mode', () => {
  const base: WebhookSettings = { config: config(), caBundle: Buffer.from('PEM').toString('base64'), validating: true };
  const dev: WebhookSettings = { ...base, webhookUrl: parseWebhookUrl('https://127.0.0.1:8443') };

  it('every entry calls the URL (with the caBundle) and names no Service', () => {
    for (const configuration of [mutatingWebhookConfiguration(dev), validatingWebhookConfiguration(dev)]) {
      expect(configuration.webhooks!.length).toBeGreaterThan(0);
      for (const webhook of configuration.webhooks!) {
        expect(webhook.clientConfig.service).toBeUndefined();
        expect(webhook.clientConfig.caBundle).toBe(base.caBundle);
      }
    }
    expect(new Set(mutatingWebhookConfiguration(dev).webhooks!.map((w) => w.clientConfig.url))).toEqual(new Set(['https://127.0.0.1:8443/mutate']));
    expect(validatingWebhookConfiguration(dev).webhooks!.map((w) => w.clientConfig.url)).toEqual(['https://127.0.0.1:8443/validate']);
  });

  it('names, rules, selectors, matchConditions and failure policies are exactly the in-cluster ones', () => {
    expect(withoutClientConfig(mutatingWebhookConfiguration(dev))).toEqual(withoutClientConfig(mutatingWebhookConfiguration(base)));
    expect(withoutClientConfig(validatingWebhookConfiguration(dev))).toEqual(withoutClientConfig(validatingWebhookConfiguration(base)));
    expect(mutatingWebhookConfiguration(base).webhooks![0]!.clientConfig.service).toMatchObject({ name: 'podvisor', namespace: 'podvisor-system', path: '/mutate', port: 443 });
  });
});

describe('serving certificate in dev mode', () => {
  it("names the URL's host, a DNS name or an IP address (IPv6 without brackets)", async () => {
    for (const [url, check] of [
      ['https://dev-laptop.example:8443', (c: X509Certificate) => c.checkHost('dev-laptop.example')],
      ['https://192.0.2.10:8443', (c: X509Certificate) => c.checkIP('192.0.2.10')],
      ['https://[::1]:8443', (c: X509Certificate) => c.checkIP('::1')],
    ] as const) {
      const policy = certificatePolicy(config(), undefined, parseWebhookUrl(url));
      const bundle = await generateBundle(policy, Date.now());
      const leaf = new X509Certificate(bundle.cert);
      expect(check(leaf), url).toBeDefined();
      expect(leaf.checkHost('podvisor.podvisor-system.svc')).toBeDefined();
      expect(nextRotationStep(bundle, policy, Date.now(), true).kind).toBe('none');
    }
  });

  it('a Secret whose certificate lacks the host is renewed from the same CA', async () => {
    const inCluster: CertificatePolicy = certificatePolicy(config());
    const bundle = await generateBundle(inCluster, Date.now());
    const step = nextRotationStep(bundle, certificatePolicy(config(), undefined, parseWebhookUrl('https://dev-laptop.example:8443')), Date.now(), true);
    expect(step).toEqual({ kind: 'renew-serving', reason: 'the serving certificate does not name dev-laptop.example' });
  });
});

describe('podvisor serve --webhook-url', () => {
  const serve = (args: string[]) => {
    const env = { ...process.env };
    delete env['KUBECONFIG'];
    delete env['KUBERNETES_SERVICE_HOST'];
    const r = spawnSync(process.execPath, [join(ROOT, 'dist/cli.js'), 'serve', ...args], { cwd: ROOT, env, encoding: 'utf8', timeout: 15_000 });
    return { code: r.status, stderr: r.stderr };
  };

  it('refuses a URL the apiserver would refuse', () => {
    const r = serve(['--webhook-url', 'http://127.0.0.1:8443']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('https only');
  });

  it('refuses to run without a cluster to register in, and with --no-register', () => {
    const offline = serve(['--webhook-url', 'https://127.0.0.1:8443']);
    // Exit 2: the command could not run (src/cli.ts).
    expect(offline.code).toBe(2);
    expect(offline.stderr).toContain('--webhook-url needs a cluster');
    // Never contacted: the flags are refused before any API call.
    const kubeconfig = join(mkdtempSync(join(tmpdir(), 'podvisor-url-')), 'kubeconfig');
    writeFileSync(kubeconfig, 'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n');
    const noRegister = serve(['--kubeconfig', kubeconfig, '--no-register', '--webhook-url', 'https://127.0.0.1:8443']);
    expect(noRegister.code).toBe(2);
    expect(noRegister.stderr).toContain('cannot be combined with --no-register');
  });
});
