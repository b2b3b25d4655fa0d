import type { LeaseSpec } from 'kubernetes-types/coordination/v1.js';
import { timestampMillis } from './timestamps.js';

export type LeaseAction =
  | { readonly action: 'create'; readonly spec: LeaseSpec }
  | { readonly action: 'renew'; readonly spec: LeaseSpec }
  | { readonly action: 'acquire'; readonly spec: LeaseSpec }
  | { readonly action: 'wait'; readonly holder: string };

/** MicroTime as the apiserver writes it: RFC 3339 with microseconds. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/**
 * Leader election over a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it: the holder renews
 * `renewTime`; anyone may take the lease once `renewTime + leaseDurationSeconds` has passed (or it has no holder).
 * Pure: the caller reads the Lease, applies the answer with an optimistic-concurrency update (resourceVersion), and
 * a 409 Conflict means another replica won this round.
 */
export function leaseDecision(current: LeaseSpec | undefined, identity: string, now: number, leaseDurationSeconds: number): LeaseAction {
  if (current === undefined) {
    return {
      action: 'create',
      spec: { holderIdentity: identity, leaseDurationSeconds, acquireTime: microTime(now), renewTime: microTime(now), leaseTransitions: 0 },
    };
  }
  if (current.holderIdentity === identity) return { action: 'renew', spec: { ...current, leaseDurationSeconds, renewTime: microTime(now) } };
  const renewed = timestampMillis(current.renewTime ?? current.acquireTime);
  const duration = (current.leaseDurationSeconds ?? leaseDurationSeconds) * 1000;
  const holder = current.holderIdentity ?? '';
  if (holder === '' || renewed === undefined || renewed + duration < now) {
    return {
      action: 'acquire',
      spec: {
        holderIdentity: identity,
        leaseDurationSeconds,
        acquireTime: microTime(now),
        renewTime: microTime(now),
        leaseTransitions: (current.leaseTransitions ?? 0) + 1,
      },
    };
  }
  return { action: 'wait', holder };
}
