import { X509Certificate } from 'node:crypto';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { Secret } from 'kubernetes-types/core/v1.js';
import type { Logger } from '../observability/logger.js';
import { applyRotationStep, bundleTrusts, caBundlePem, generateBundle, nextRotationStep, type CertificatePolicy, type RotationStep, type TlsBundle } from './certificates.js';
import { BACKDATE_MS } from '../server/certificate-authority.js';
import { COMPONENT, TLS_SECRET_KEYS, TLS_SECRET_NAME } from './names.js';
import { statusCode } from './registrar.js';

/**
 * How long the new CA must have been in every caBundle before a serving certificate from it is used: the apiserver reads
 * webhook configurations through an informer, so it calls with a new caBundle a moment after the write
 * (test/e2e/tls.test.ts measures that moment on a real kube-apiserver).
 */
export const DEFAULT_PROPAGATION_MS = 30_000;

export interface SharedTlsOptions {
  readonly namespace: string;
  readonly policy: () => CertificatePolicy;
  /**
   * Whether the apiserver trusts `caPem`: every webhook entry's caBundle holds it. Undefined when podvisor does not
   * register itself; then the serving certificate switches `retireAfterMs` after the new CA was created.
   */
  readonly apiserverTrusts?: (caPem: string) => Promise<boolean>;
  /** The new CA must have been seen in the caBundle this long before the serving certificate switches (webhook config caches). */
  readonly propagationMs?: number;
  readonly now?: () => number;
  readonly maxAttempts?: number;
}

export interface SharedTls {
  /** The material this replica serves now. */
  current(): TlsBundle;
  /**
   * Re-reads the Secret, performs at most one due rotation step (written with the resourceVersion read: a replica that
   * loses the race re-reads and re-decides), and returns the bundle now in the Secret with the step taken.
   */
  reconcile(): Promise<{ bundle: TlsBundle; step: RotationStep; changed: boolean }>;
}

function decode(secret: Secret | undefined): TlsBundle | undefined {
  const data = secret?.data;
  if (data === undefined) return undefined;
  const text = (key: string): string | undefined => (data[key] === undefined ? undefined : Buffer.from(data[key], 'base64').toString('utf8'));
  const ca = text(TLS_SECRET_KEYS.ca);
  const caKey = text(TLS_SECRET_KEYS.caKey);
  const cert = text(TLS_SECRET_KEYS.cert);
  const key = text(TLS_SECRET_KEYS.key);
  const previousCa = text(TLS_SECRET_KEYS.previousCa);
  return { ca: ca ?? '', caKey: caKey ?? '', cert: cert ?? '', key: key ?? '', previousCa: previousCa === '' ? undefined : previousCa };
}

function encode(bundle: TlsBundle): Record<string, string> {
  const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');
  return {
    [TLS_SECRET_KEYS.ca]: b64(bundle.ca),
    [TLS_SECRET_KEYS.caKey]: b64(bundle.caKey),
    [TLS_SECRET_KEYS.cert]: b64(bundle.cert),
    [TLS_SECRET_KEYS.key]: b64(bundle.key),
    ...(bundle.previousCa === undefined ? {} : { [TLS_SECRET_KEYS.previousCa]: b64(bundle.previousCa) }),
  };
}

const same = (a: TlsBundle, b: TlsBundle): boolean => a.ca === b.ca && a.caKey === b.caKey && a.cert === b.cert && a.key === b.key && a.previousCa === b.previousCa;

/**
 * The CA and serving certificate shared by every replica through the Secret `podvisor-tls` (type kubernetes.io/tls,
 * plus `ca.key` and, during a CA rotation, `ca-previous.crt`). At start: read it; if absent, generate and create it;
 * if the create answers 409 AlreadyExists, another replica won: read and use theirs.
 */
export async function startSharedTls(kubeConfig: KubeConfig, log: Logger, options: SharedTlsOptions): Promise<SharedTls> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const now = options.now ?? Date.now;
  const maxAttempts = options.maxAttempts ?? 5;
  const propagationMs = options.propagationMs ?? DEFAULT_PROPAGATION_MS;
  const namespace = options.namespace;
  const name = TLS_SECRET_NAME;

  const read = async (): Promise<Secret | undefined> => {
    try {
      return JSON.parse(JSON.stringify(await core.readNamespacedSecret({ name, namespace }))) as Secret;
    } catch (err) {
      if (statusCode(err) === 404) return undefined;
      throw err;
    }
  };

  async function loadOrCreate(): Promise<TlsBundle> {
    for (let attempt = 1; ; attempt++) {
      const existing = decode(await read());
      if (existing !== undefined) return existing;
      const bundle = await generateBundle(options.policy(), now());
      try {
        await core.createNamespacedSecret({
          namespace,
          body: {
            apiVersion: 'v1',
            kind: 'Secret',
            type: 'kubernetes.io/tls',
            metadata: { name, namespace, labels: { 'app.kubernetes.io/name': 'podvisor', 'app.kubernetes.io/managed-by': COMPONENT } },
            data: encode(bundle),
          },
          fieldManager: 'podvisor',
        });
        log.info({ secret: `${namespace}/${name}` }, 'generated the CA and serving certificate into the shared Secret');
        return bundle;
      } catch (err) {
        // Another replica created it between our read and our create: use theirs, never ours.
        if (statusCode(err) === 409 && attempt < maxAttempts) {
          log.info({ secret: `${namespace}/${name}` }, 'the shared Secret was created by another replica; using it');
          continue;
        }
        throw err;
      }
    }
  }

  let current = await loadOrCreate();
  /** When the current CA was first seen in every caBundle (per CA, by PEM). */
  let trustedSince: { ca: string; at: number } | undefined;

  async function newCaTrusted(bundle: TlsBundle, policy: CertificatePolicy): Promise<boolean> {
    if (options.apiserverTrusts === undefined) {
      // Nobody to ask: wait as long as the retirement grace after the CA was created.
      return now() - (Date.parse(new X509Certificate(bundle.ca).validFrom) + BACKDATE_MS) >= policy.retireAfterMs;
    }
    if (!(await options.apiserverTrusts(bundle.ca))) {
      trustedSince = undefined;
      return false;
    }
    if (trustedSince?.ca !== bundle.ca) trustedSince = { ca: bundle.ca, at: now() };
    return now() - trustedSince.at >= propagationMs;
  }

  return {
    current: () => current,
    async reconcile() {
      for (let attempt = 1; ; attempt++) {
        const secret = await read();
        if (secret === undefined) {
          current = await loadOrCreate();
          return { bundle: current, step: { kind: 'regenerate', reason: 'the Secret was deleted' }, changed: true };
        }
        const live = decode(secret) as TlsBundle;
        const policy = options.policy();
        const probe = nextRotationStep(live, policy, now(), false);
        const step = probe.kind === 'wait-for-bundle' ? nextRotationStep(live, policy, now(), await newCaTrusted(live, policy)) : probe;
        const next = await applyRotationStep(live, step, policy, now());
        if (same(next, live)) {
          const changed = !same(current, live);
          current = live;
          return { bundle: live, step, changed };
        }
        try {
          await core.replaceNamespacedSecret({
            name,
            namespace,
            body: { ...secret, data: encode(next) } as never,
            fieldManager: 'podvisor',
          });
        } catch (err) {
          if (statusCode(err) === 409 && attempt < maxAttempts) {
            log.info({ step: step.kind }, 'the shared Secret changed concurrently; re-reading');
            continue;
          }
          throw err;
        }
        log.info({ step: step.kind, reason: 'reason' in step ? step.reason : undefined, caBundle: caBundlePem(next) === caBundlePem(live) ? 'unchanged' : 'changed' }, 'certificate rotation step written to the shared Secret');
        current = next;
        return { bundle: next, step, changed: true };
      }
    },
  };
}

/** For `apiserverTrusts`: every bundle in `bundles` trusts the CA. */
export function everyBundleTrusts(bundles: readonly string[], caPem: string): boolean {
  return bundles.length > 0 && bundles.every((b) => bundleTrusts(b, caPem));
}
