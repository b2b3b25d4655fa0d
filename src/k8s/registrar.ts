import { AdmissionregistrationV1Api, ApiException, type KubeConfig } from '@kubernetes/client-node';
import type { MutatingWebhookConfiguration, ValidatingWebhookConfiguration } from 'kubernetes-types/admissionregistration/v1.js';
import type { Logger } from '../observability/logger.js';
import type { IntegrationMetrics } from './metrics.js';
import { WEBHOOK_CONFIGURATION_NAME } from './names.js';
import { mutatingWebhookConfiguration, validatingWebhookConfiguration, type WebhookSettings } from './webhook-configurations.js';

export type RegistrationResult = 'created' | 'updated' | 'unchanged';
type Which = 'mutating' | 'validating';
type Configuration = MutatingWebhookConfiguration | ValidatingWebhookConfiguration;

export interface Registrar {
  /** Creates or updates both configurations so they match `settings()`; writes nothing when they already do. */
  reconcile(): Promise<Partial<Record<Which, RegistrationResult>>>;
  /** The caBundle (decoded PEM) of every webhook entry of the configurations this registrar manages, read now. */
  registeredBundles(): Promise<string[]>;
}

export function statusCode(err: unknown): number | undefined {
  return err instanceof ApiException ? (err.code as number) : undefined;
}

/** A plain JSON copy: client-node returns class instances whose absent fields are `undefined` and dates `Date`. */
function plain<T>(value: unknown): T {
  return JSON.parse(JSON.stringify(value ?? null)) as T;
}

/**
 * Every field of `desired` is in `actual` with the same value (arrays: same length, element-wise). Fields the API
 * server adds (defaults, managedFields) are ignored, so a configuration written by podvisor compares equal.
 */
export function containsDesired(actual: unknown, desired: unknown): boolean {
  if (Array.isArray(desired)) return Array.isArray(actual) && actual.length === desired.length && desired.every((d, i) => containsDesired(actual[i], d));
  if (typeof desired === 'object' && desired !== null) {
    if (typeof actual !== 'object' || actual === null || Array.isArray(actual)) return false;
    return Object.entries(desired).every(([key, value]) => containsDesired((actual as Record<string, unknown>)[key], value));
  }
  return actual === desired;
}

/**
 * Self-registration. Each reconcile reads the live object and writes only if it differs; a write carries the
 * resourceVersion it was computed from, so two replicas racing cannot overwrite each other blindly: the loser gets
 * 409 Conflict (or AlreadyExists on create), re-reads, finds the winner's object equal to its own, and stops.
 */
export function createRegistrar(kubeConfig: KubeConfig, log: Logger, options: { settings: () => WebhookSettings; metrics?: IntegrationMetrics; maxAttempts?: number }): Registrar {
  const api = kubeConfig.makeApiClient(AdmissionregistrationV1Api);
  const name = WEBHOOK_CONFIGURATION_NAME;
  const maxAttempts = options.maxAttempts ?? 5;

  const client = {
    mutating: {
      read: async () => plain<Configuration>(await api.readMutatingWebhookConfiguration({ name })),
      create: async (body: Configuration) => api.createMutatingWebhookConfiguration({ body: body as never, fieldManager: 'podvisor' }),
      replace: async (body: Configuration) => api.replaceMutatingWebhookConfiguration({ name, body: body as never, fieldManager: 'podvisor' }),
      build: (s: WebhookSettings): Configuration => mutatingWebhookConfiguration(s),
    },
    validating: {
      read: async () => plain<Configuration>(await api.readValidatingWebhookConfiguration({ name })),
      create: async (body: Configuration) => api.createValidatingWebhookConfiguration({ body: body as never, fieldManager: 'podvisor' }),
      replace: async (body: Configuration) => api.replaceValidatingWebhookConfiguration({ name, body: body as never, fieldManager: 'podvisor' }),
      build: (s: WebhookSettings): Configuration => validatingWebhookConfiguration(s),
    },
  } as const;

  async function readOrUndefined(which: Which): Promise<Configuration | undefined> {
    try {
      return await client[which].read();
    } catch (err) {
      if (statusCode(err) === 404) return undefined;
      throw err;
    }
  }

  /** Without a caBundle of our own (cert-manager mode), keep the one cainjector wrote into each entry. */
  function keepLiveCaBundles(desired: Configuration, live: Configuration | undefined, settings: WebhookSettings): Configuration {
    if (settings.caBundle !== undefined || live === undefined) return desired;
    const bundles = new Map((live.webhooks ?? []).map((w) => [w.name, w.clientConfig.caBundle]));
    return {
      ...desired,
      webhooks: (desired.webhooks ?? []).map((w) => {
        const caBundle = bundles.get(w.name);
        return caBundle === undefined ? w : { ...w, clientConfig: { ...w.clientConfig, caBundle } };
      }),
    } as Configuration;
  }

  async function ensure(which: Which): Promise<RegistrationResult> {
    const count = (result: string): void => options.metrics?.registrations.inc({ configuration: which, result });
    for (let attempt = 1; ; attempt++) {
      try {
        const live = await readOrUndefined(which);
        const settings = options.settings();
        const desired = keepLiveCaBundles(client[which].build(settings), live, settings);
        if (live === undefined) {
          await client[which].create(desired);
          log.info({ configuration: which, name }, 'webhook configuration created');
          count('created');
          return 'created';
        }
        const sameWebhooks = containsDesired(live.webhooks, desired.webhooks);
        const sameLabels = containsDesired(live.metadata?.labels, desired.metadata?.labels);
        if (sameWebhooks && sameLabels) {
          count('unchanged');
          return 'unchanged';
        }
        // Keep other writers' labels and annotations (e.g. cert-manager's inject-ca-from), replace the webhooks.
        const body = {
          ...desired,
          metadata: { ...live.metadata, labels: { ...live.metadata?.labels, ...desired.metadata?.labels }, resourceVersion: live.metadata?.resourceVersion },
        } as Configuration;
        await client[which].replace(body);
        log.info({ configuration: which, name, resourceVersion: live.metadata?.resourceVersion }, 'webhook configuration updated');
        count('updated');
        return 'updated';
      } catch (err) {
        // 409: Conflict (stale resourceVersion) or AlreadyExists (another replica created it first) → re-read.
        if (statusCode(err) === 409 && attempt < maxAttempts) {
          count('conflict');
          log.debug({ configuration: which, attempt }, 'webhook configuration changed concurrently; re-reading');
          continue;
        }
        count('error');
        throw err;
      }
    }
  }

  return {
    async reconcile() {
      const results: Partial<Record<Which, RegistrationResult>> = {};
      results.mutating = await ensure('mutating');
      if (options.settings().validating) results.validating = await ensure('validating');
      return results;
    },
    async registeredBundles() {
      const which: Which[] = options.settings().validating ? ['mutating', 'validating'] : ['mutating'];
      const bundles: string[] = [];
      for (const w of which) {
        const live = await readOrUndefined(w);
        for (const webhook of live?.webhooks ?? []) bundles.push(Buffer.from(webhook.clientConfig.caBundle ?? '', 'base64').toString('utf8'));
        if (live === undefined) bundles.push('');
      }
      return bundles;
    },
  };
}
