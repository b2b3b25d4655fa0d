import type { Logger } from '../observability/logger.js';
import { backoffDelay, sleepUnlessAborted } from '../k8s/backoff.js';
import { planNode, type PodRef } from './affected-pods.js';
import type { RecoveryApi } from './kube-api.js';
import { leaseDecision } from './lease.js';
import { lxcfsRestarted, lxcfsStateOf, type LxcfsNodeState } from './lxcfs-pods.js';
import type { RecoveryMetrics } from './metrics.js';
import type { RecoveryOptions } from './options.js';
import { TokenBucket } from './rate-limiter.js';
import { withTimeout } from '../k8s/timeout.js';

/** Stop acting this long before the Lease could expire for the other replicas. */
const LEASE_MARGIN_MS = 3_000;
/** The longest any Lease or eviction request may take. */
const API_TIMEOUT_MS = 10_000;

interface QueuedEviction {
  readonly pod: PodRef;
  readonly node: string;
  notBefore: number;
}

export interface LxcfsRecovery {
  /** Nodes whose lxcfs restarted and whose pods have not been planned yet (for tests and the log). */
  readonly pendingNodes: () => readonly string[];
  readonly isLeader: () => boolean;
  stop(): Promise<void>;
}

/**
 * The lxcfs restart recovery loop. Every replica watches the lxcfs pods (so its view is warm); only the Lease holder
 * acts. When lxcfs on a node restarts and is ready again, the pods on that node whose LXCFS binds predate it are
 * evicted (Eviction API: PodDisruptionBudgets apply, 429 is retried later), paced by a token bucket; pods without a
 * controller are reported in an Event and a metric, never deleted. The decisions are the pure functions of
 * lxcfs-pods.ts and affected-pods.ts.
 */
export async function startLxcfsRecovery(
  api: RecoveryApi,
  options: RecoveryOptions,
  log: Logger,
  metrics: RecoveryMetrics,
  now: () => number = Date.now,
): Promise<LxcfsRecovery> {
  const abort = new AbortController();
  const nodes = new Map<string, LxcfsNodeState>();
  /** Nodes to plan: restarted (edge), or every node after taking the lease and at each resync (level). */
  const pending = new Set<string>();
  const evictions = new Map<string, QueuedEviction>();
  const reported = new Set<string>();
  const bucket = new TokenBucket(options.evictionsPerMinute, options.evictionBurst, now());
  let leader = false;
  let wake: () => void = () => {};
  const nudge = (): void => wake();

  function onLxcfsPod(pod: Parameters<typeof lxcfsStateOf>[0]): void {
    const labels = pod.metadata?.labels ?? {};
    const [key, value] = options.lxcfsSelector.split('=');
    if (key !== undefined && labels[key] !== value) return;
    const state = lxcfsStateOf(pod, options.lxcfsContainer);
    if (state === undefined) return;
    const previous = nodes.get(state.node);
    // A replaced pod's old copy may still send updates while terminating: keep following the newest pod only.
    if (previous !== undefined && previous.podUid !== state.podUid && pod.metadata?.deletionTimestamp != null) return;
    if (lxcfsRestarted(previous, state)) {
      metrics.lxcfsRestarts.inc();
      log.warn({ node: state.node, pod: pod.metadata?.name, restarts: state.restarts }, 'lxcfs restarted: running consumers have dead LXCFS mounts');
      pending.add(state.node);
    } else if (previous === undefined) {
      // A node seen for the first time (start-up, or a restart this replica missed): check it once. The plan only
      // picks containers older than the running lxcfs, which always have dead binds, so this is safe.
      pending.add(state.node);
    }
    nodes.set(state.node, state);
    nudge();
  }

  const stopWatch = await api.watchLxcfsPods(onLxcfsPod, (err) => log.warn({ err }, 'lxcfs pod watch failed; restarting'));

  async function planPending(): Promise<void> {
    for (const node of [...pending]) {
      const state = nodes.get(node);
      if (state === undefined || !state.ready) continue;
      pending.delete(node);
      let pods;
      try {
        pods = await api.listPodsOnNode(node);
      } catch (err) {
        log.warn({ err, node }, 'cannot list pods on node; will retry');
        pending.add(node);
        continue;
      }
      const plan = planNode(state, pods);
      for (const pod of plan.evict) if (!evictions.has(pod.uid)) evictions.set(pod.uid, { pod, node, notBefore: 0 });
      for (const pod of plan.bare) {
        const key = `${pod.uid}@${state.startedAt}`;
        if (reported.has(key)) continue;
        reported.add(key);
        const message = `lxcfs restarted on node ${node}: the LXCFS mounts of containers ${pod.containers.join(', ')} are dead (reads fail with ENOTCONN). The pod has no controller, so podvisor does not evict it; delete and recreate it.`;
        try {
          await api.reportBarePod(pod, node, message);
          metrics.bareReports.inc();
        } catch (err) {
          reported.delete(key);
          log.warn({ err, pod: `${pod.namespace}/${pod.name}` }, 'cannot write the Event for a bare pod');
        }
        log.warn({ pod: `${pod.namespace}/${pod.name}`, node }, 'pod with dead LXCFS mounts has no controller: reported, not evicted');
      }
      metrics.barePods.set(plan.bare.length);
      if (plan.evict.length > 0) log.info({ node, pods: plan.evict.map((p) => `${p.namespace}/${p.name}`) }, 'evicting pods with dead LXCFS mounts');
    }
  }

  /** Evicts what is due, as the bucket allows; returns how long to sleep before the next attempt. */
  async function evictDue(): Promise<number> {
    let sleep = Number.POSITIVE_INFINITY;
    for (const item of [...evictions.values()].sort((a, b) => a.notBefore - b.notBefore)) {
      if (!leading() || abort.signal.aborted) break;
      const t = now();
      if (item.notBefore > t) {
        sleep = Math.min(sleep, item.notBefore - t);
        continue;
      }
      const wait = bucket.waitMs(t);
      if (wait > 0) return Math.min(sleep, wait);
      bucket.take(t);
      const { result, message } = await withTimeout(api.evict(item.pod), API_TIMEOUT_MS, 'eviction').catch((err: Error) => ({ result: 'error' as const, message: err.message }));
      metrics.evictions.inc({ result });
      const name = `${item.pod.namespace}/${item.pod.name}`;
      if (result === 'evicted' || result === 'gone') {
        evictions.delete(item.pod.uid);
        log.info({ pod: name, node: item.node, result }, 'lxcfs recovery: pod evicted');
      } else {
        item.notBefore = t + options.evictionRetryMs;
        sleep = Math.min(sleep, options.evictionRetryMs);
        log.warn({ pod: name, node: item.node, result, message }, 'lxcfs recovery: eviction refused; retrying later');
      }
    }
    return sleep;
  }

  async function workLoop(): Promise<void> {
    while (!abort.signal.aborted) {
      let sleep = options.leaseRenewMs;
      if (leader) {
        try {
          await planPending();
          sleep = Math.min(sleep, await evictDue());
        } catch (err) {
          log.error({ err }, 'lxcfs recovery pass failed');
        }
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, sleep);
        function done(): void {
          clearTimeout(timer);
          wake = () => {};
          abort.signal.removeEventListener('abort', done);
          resolve();
        }
        wake = done;
        abort.signal.addEventListener('abort', done, { once: true });
      });
    }
  }

  // A replica acts only while its last renewal is recent enough that no standby can have taken the Lease yet, whatever
  // a hung Lease request is doing; API calls time out (client-node sets no timeout of its own).
  let renewedAt = Number.NEGATIVE_INFINITY;
  const leaseMs = options.leaseDurationSeconds * 1000;
  const leading = () => leader && now() - renewedAt < leaseMs - Math.min(LEASE_MARGIN_MS, leaseMs / 4);

  /** A replica that stops leading forgets its queue: the next leader plans from the current state, never from ours. */
  function standDown(): void {
    evictions.clear();
    pending.clear();
  }

  async function leaseLoop(): Promise<void> {
    let failures = 0;
    let lastResync = 0;
    while (!abort.signal.aborted) {
      try {
        const stored = await withTimeout(api.readLease(), API_TIMEOUT_MS, 'read Lease');
        const decision = leaseDecision(stored?.spec, options.identity, now(), options.leaseDurationSeconds);
        const won = decision.action !== 'wait' && (await withTimeout(api.writeLease(decision.spec, stored), API_TIMEOUT_MS, 'write Lease'));
        if (won) renewedAt = now();
        if (won && !leader) {
          log.info({ identity: options.identity }, 'lxcfs recovery: leading');
          lastResync = 0;
        }
        if (!won && leader) {
          log.warn({ identity: options.identity }, 'lxcfs recovery: lost the lease; standing by');
          standDown();
        }
        leader = won;
        failures = 0;
      } catch (err) {
        failures += 1;
        // A holder that cannot renew must stop acting before another replica may take over.
        if (leader) standDown();
        leader = false;
        log.warn({ err }, 'lxcfs recovery: lease update failed');
      }
      metrics.leader.set(leader ? 1 : 0);
      if (leader && now() - lastResync >= options.resyncMs) {
        lastResync = now();
        for (const node of nodes.keys()) pending.add(node);
      }
      if (leader) nudge();
      await sleepUnlessAborted(failures === 0 ? options.leaseRenewMs : backoffDelay(failures, options.leaseRenewMs, 60_000), abort.signal);
    }
  }

  const loops = Promise.all([workLoop(), leaseLoop()]);
  return {
    pendingNodes: () => [...pending],
    isLeader: () => leader,
    async stop() {
      const wasLeader = leader;
      abort.abort();
      await loops;
      await stopWatch();
      leader = false;
      metrics.leader.set(0);
      // Release the Lease (empty holder) so that a standby takes over now instead of after leaseDurationSeconds.
      if (wasLeader) {
        try {
          const stored = await api.readLease();
          if (stored?.spec?.holderIdentity === options.identity) await api.writeLease({ ...stored.spec, holderIdentity: '' }, stored);
        } catch (err) {
          log.warn({ err }, 'lxcfs recovery: could not release the lease');
        }
      }
    },
  };
}
