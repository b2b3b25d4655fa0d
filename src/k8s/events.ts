import { hostname } from 'node:os';
import { CoreV1Api, type CoreV1Event, type KubeConfig } from '@kubernetes/client-node';
import type { ObjectMeta, OwnerReference } from 'kubernetes-types/meta/v1.js';
import type { PatchOperation } from '../admission/patch.js';
import type { AdmissionRequest, AdmissionResponse } from '../admission/types.js';
import { ANNOTATION } from '../annotations.js';
import type { MutationOutcome, SkipReason } from '../mutation/pipeline.js';
import type { Logger } from '../observability/logger.js';
import type { IntegrationMetrics } from './metrics.js';
import { COMPONENT } from './names.js';
import { withTimeout } from './timeout.js';

export type EventReason = 'Injected' | 'Skipped' | 'Denied';

/** What an Event is about: the object itself when it has a name, else its controller (a ReplicaSet for its Pods). */
export interface InvolvedObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly namespace: string;
  readonly uid?: string | undefined;
}

export interface Notice {
  readonly reason: EventReason;
  readonly type: 'Normal' | 'Warning';
  readonly message: string;
  readonly involved: InvolvedObject;
}

/** Skips an owner who asked for podvisor wants to hear about; the others (not opted in, system namespaces...) are noise. */
const REPORTED_SKIPS: ReadonlySet<SkipReason> = new Set<SkipReason>(['windows', 'invalid_value', 'no_pod_spec', 'excluded_label', 'mirror_pod']);

/** Event messages are capped by the API (1 KiB is plenty for a human and keeps etcd small). */
const MAX_MESSAGE = 1024;

function involvedObject(request: AdmissionRequest): InvolvedObject | undefined {
  const object = request.object ?? {};
  const meta = object['metadata'] as ObjectMeta | undefined;
  const namespace = request.namespace ?? meta?.namespace ?? '';
  const name = meta?.name ?? request.name;
  const apiVersion = request.kind.group === '' ? request.kind.version : `${request.kind.group}/${request.kind.version}`;
  if (name !== undefined && name !== '') return { apiVersion, kind: request.kind.kind, name, namespace, uid: meta?.uid };
  // A Pod from generateName has no name yet (nor a uid): report on its controller, which `kubectl describe` shows.
  const owner: OwnerReference | undefined = meta?.ownerReferences?.find((ref) => ref.controller === true);
  return owner === undefined ? undefined : { apiVersion: owner.apiVersion, kind: owner.kind, name: owner.name, namespace, uid: owner.uid };
}

function hasPodvisorAnnotation(request: AdmissionRequest): boolean {
  const text = JSON.stringify((request.object ?? {})['metadata'] ?? {}) + JSON.stringify((request.object ?? {})['spec'] ?? {});
  return text.includes('"podvisor.io/');
}

/** The containers podvisor names in the status annotation it writes (found in the patch, not by re-applying it). */
function injectedContainers(patch: readonly PatchOperation[]): string[] {
  const key = ANNOTATION.status.replaceAll('~', '~0').replaceAll('/', '~1');
  for (const op of patch) {
    if (op.op !== 'add' && op.op !== 'replace') continue;
    let status: unknown;
    if (op.path.endsWith(`/annotations/${key}`)) status = op.value;
    else if (op.path.endsWith('/annotations')) status = (op.value as Record<string, unknown> | undefined)?.[ANNOTATION.status];
    else if (op.path.endsWith('/metadata')) status = (op.value as { annotations?: Record<string, unknown> } | undefined)?.annotations?.[ANNOTATION.status];
    if (typeof status !== 'string') continue;
    try {
      const containers = (JSON.parse(status) as { containers?: unknown }).containers;
      return Array.isArray(containers) ? containers.map(String) : [];
    } catch {
      return [];
    }
  }
  return [];
}

/**
 * The Event an admission answer deserves, if any: `Injected` (features and containers) when the patch changed the
 * object, `Denied` (the policy's message) when refused, `Skipped` (reason) when an object that asked for podvisor was
 * left alone. None for dry runs (no side effects on dryRun), for unchanged re-invocations, or for objects that never
 * asked.
 */
export function noticeFor(request: AdmissionRequest, response: AdmissionResponse, outcome: Pick<MutationOutcome, 'injected' | 'skip' | 'warnings' | 'patch'> | undefined): Notice | undefined {
  if (request.dryRun === true) return undefined;
  const involved = involvedObject(request);
  if (involved === undefined) return undefined;
  const subject = involved.kind === request.kind.kind ? '' : ` (for a ${request.kind.kind} it creates)`;
  if (!response.allowed) {
    const message = response.status?.message ?? 'denied by podvisor';
    return { reason: 'Denied', type: 'Warning', message: `${message}${subject}`.slice(0, MAX_MESSAGE), involved };
  }
  if (outcome === undefined) return undefined;
  if (outcome.injected.length > 0) {
    const containers = injectedContainers(outcome.patch);
    const into = containers.length > 0 ? ` into container${containers.length > 1 ? 's' : ''} ${containers.join(', ')}` : '';
    return { reason: 'Injected', type: 'Normal', message: `injected ${outcome.injected.join(', ')}${into}${subject}`.slice(0, MAX_MESSAGE), involved };
  }
  if (outcome.skip !== undefined && REPORTED_SKIPS.has(outcome.skip) && hasPodvisorAnnotation(request)) {
    const details = outcome.warnings.length > 0 ? `: ${outcome.warnings.join('; ')}` : '';
    return { reason: 'Skipped', type: 'Warning', message: `not injected (${outcome.skip})${details}${subject}`.slice(0, MAX_MESSAGE), involved };
  }
  return undefined;
}

export interface EventRecorder {
  /** Queues an Event; returns at once (never awaits the API). */
  record(notice: Notice): void;
  /** Resolves when the queue is empty (tests, shutdown). */
  flush(): Promise<void>;
  stop(): Promise<void>;
}

export interface EventRecorderOptions {
  readonly metrics?: IntegrationMetrics;
  /** Token bucket over all Events: sustained rate and burst. */
  readonly ratePerSecond?: number;
  readonly burst?: number;
  /** The same reason and message on the same object is written once per this window. */
  readonly dedupeMs?: number;
  readonly maxQueue?: number;
  readonly now?: () => number;
}

/**
 * Asynchronous, rate-limited Events. `record` only checks the limits and queues; one worker writes the queue in the
 * background, one request at a time, so a slow or failing API server never delays or fails an admission answer.
 * Every outcome is counted in `podvisor_events_total{reason,result}`: sent, failed (logged), dropped (rate limit or
 * full queue), deduplicated.
 */
export function createEventRecorder(kubeConfig: KubeConfig, log: Logger, options: EventRecorderOptions = {}): EventRecorder {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const now = options.now ?? Date.now;
  const rate = options.ratePerSecond ?? 5;
  const burst = options.burst ?? 25;
  const dedupeMs = options.dedupeMs ?? 5 * 60_000;
  const maxQueue = options.maxQueue ?? 500;
  const instance = hostname();
  const queue: Notice[] = [];
  const recent = new Map<string, number>();
  let tokens = burst;
  let refilled = now();
  let draining: Promise<void> | undefined;
  let stopped = false;

  const count = (reason: EventReason, result: 'sent' | 'failed' | 'dropped' | 'deduplicated'): void => options.metrics?.events.inc({ reason, result });

  function takeToken(): boolean {
    const t = now();
    tokens = Math.min(burst, tokens + ((t - refilled) / 1000) * rate);
    refilled = t;
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  }

  async function send(notice: Notice): Promise<void> {
    const at = new Date(now());
    const { involved } = notice;
    const body: CoreV1Event = {
      metadata: { name: `${involved.name}.${at.getTime().toString(16)}${Math.floor(Math.random() * 0xffff).toString(16)}`, namespace: involved.namespace },
      involvedObject: { apiVersion: involved.apiVersion, kind: involved.kind, name: involved.name, namespace: involved.namespace, ...(involved.uid === undefined ? {} : { uid: involved.uid }) },
      reason: notice.reason,
      message: notice.message,
      type: notice.type,
      source: { component: COMPONENT, host: instance },
      reportingComponent: COMPONENT,
      reportingInstance: instance,
      action: 'Admission',
      firstTimestamp: at,
      lastTimestamp: at,
      count: 1,
    };
    try {
      // client-node sets no timeout: a black-holed request would stall the single writer and every Event after it.
      await withTimeout(core.createNamespacedEvent({ namespace: involved.namespace, body }), 10_000, 'create Event');
      count(notice.reason, 'sent');
    } catch (err) {
      count(notice.reason, 'failed');
      log.warn({ reason: notice.reason, object: `${involved.kind}/${involved.namespace}/${involved.name}`, err: (err as Error).message }, 'cannot write Event');
    }
  }

  function drain(): Promise<void> {
    draining ??= (async () => {
      // setImmediate: the admission answer that queued the Event is written before any Event work starts.
      await new Promise((resolve) => setImmediate(resolve));
      for (let notice = queue.shift(); notice !== undefined; notice = queue.shift()) await send(notice);
      draining = undefined;
    })();
    return draining;
  }

  return {
    record(notice) {
      if (stopped) return;
      const key = `${notice.involved.namespace}/${notice.involved.kind}/${notice.involved.name}/${notice.reason}/${notice.message}`;
      const t = now();
      const last = recent.get(key);
      if (last !== undefined && t - last < dedupeMs) return count(notice.reason, 'deduplicated');
      if (queue.length >= maxQueue || !takeToken()) return count(notice.reason, 'dropped');
      recent.set(key, t);
      if (recent.size > 10_000) for (const [k, seen] of recent) if (t - seen >= dedupeMs) recent.delete(k);
      queue.push(notice);
      void drain();
    },
    async flush() {
      while (draining !== undefined) await draining;
    },
    async stop() {
      stopped = true;
      await this.flush();
    },
  };
}
