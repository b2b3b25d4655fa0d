import { VersionApi, type KubeConfig } from '@kubernetes/client-node';
import { parse } from 'yaml';
import type { Logger } from '../observability/logger.js';

/**
 * "1.32" from a /version answer. Managed clusters report minors like "32+" (GKE, EKS), so digits are taken from
 * `minor` and, failing that, from `gitVersion` ("v1.32.5-gke.1").
 */
export function parseServerVersion(info: { major?: string; minor?: string; gitVersion?: string }): string | undefined {
  const major = /^\d+/.exec(info.major ?? '')?.[0];
  const minor = /^\d+/.exec(info.minor ?? '')?.[0];
  if (major !== undefined && minor !== undefined) return `${Number(major)}.${Number(minor)}`;
  const git = /^v?(\d+)\.(\d+)/.exec(info.gitVersion ?? '');
  return git === null ? undefined : `${Number(git[1])}.${Number(git[2])}`;
}

/** Whether the config text names `kubernetesVersion` itself (the schema's default does not count as an override). */
export function configSetsKubernetesVersion(text: string | undefined): boolean {
  if (text === undefined) return false;
  try {
    const raw = parse(text) as unknown;
    return typeof raw === 'object' && raw !== null && 'kubernetesVersion' in raw;
  } catch {
    return false;
  }
}

/**
 * The config the pipeline sees: `kubernetesVersion` (it selects the AppArmor field from 1.30, the annotation before)
 * is the version read from the API server, unless the config file sets it explicitly (offline use, or to pin it).
 */
export function withDetectedVersion<C extends { kubernetesVersion: string }>(config: C, explicit: boolean, detected: string | undefined): C {
  return explicit || detected === undefined || detected === config.kubernetesVersion ? config : { ...config, kubernetesVersion: detected };
}

export interface ServerVersionWatcher {
  /** The last version read, or undefined before the first successful read. */
  current(): string | undefined;
  /** Reads /version now; never throws (a failure is logged and the last value stays). */
  refresh(): Promise<string | undefined>;
  stop(): void;
}

/**
 * Reads /version at start and every `intervalMs` (the API server is upgraded in place, so the answer changes over a
 * pod's lifetime). Off the request path: the handler reads `current()`.
 */
export function watchServerVersion(kubeConfig: KubeConfig, log: Logger, options: { intervalMs?: number; onChange?: (version: string) => void } = {}): ServerVersionWatcher {
  const api = kubeConfig.makeApiClient(VersionApi);
  let version: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  const refresh = async (): Promise<string | undefined> => {
    try {
      const info = await api.getCode();
      const parsed = parseServerVersion(info);
      if (parsed !== undefined && parsed !== version) {
        log.info({ kubernetesVersion: parsed, gitVersion: info.gitVersion }, 'kubernetes version detected');
        version = parsed;
        options.onChange?.(parsed);
      }
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'cannot read the API server version; keeping the last known one');
    }
    return version;
  };
  timer = setInterval(() => void refresh(), options.intervalMs ?? 10 * 60_000);
  timer.unref();
  return {
    current: () => version,
    refresh,
    stop: () => {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
    },
  };
}
