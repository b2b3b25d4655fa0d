import type { Feature } from '../features/feature.js';

export type OptInSource = 'object' | 'namespace' | 'cluster';

export type OptInDecision =
  | { readonly enabled: true; readonly value: string; readonly source: OptInSource }
  | { readonly enabled: false; readonly reason: 'not_opted_in' | 'opted_out' | 'invalid_value'; readonly warning?: string };

/** The raw settings that may apply to one feature of one object, from the most to the least specific. */
export interface OptInSettings {
  /** The object's annotation (for workloads: the pod template's, falling back to the workload's own). */
  readonly object?: string | undefined;
  /** The namespace default (config `namespaces`, or a namespace label once the cache is present). */
  readonly namespace?: string | undefined;
  /** The cluster default (config `defaults`). */
  readonly cluster?: string | undefined;
}

/**
 * The one truth table for opt-in:
 *
 * | object annotation | namespace default | cluster default | result                         |
 * |-------------------|-------------------|-----------------|--------------------------------|
 * | on                | any               | any             | enabled (object)               |
 * | off               | any               | any             | skip `opted_out`               |
 * | invalid           | any               | any             | skip `invalid_value` + warning |
 * | unset             | on / off / invalid| any             | as the namespace default says  |
 * | unset             | unset             | on / off        | as the cluster default says    |
 * | unset             | unset             | unset           | skip `not_opted_in`            |
 *
 * An explicit value is never overridden by a broader default, so an owner can always opt out.
 */
export function decideOptIn(feature: Feature, settings: OptInSettings): OptInDecision {
  const levels: [OptInSource, string | undefined][] = [
    ['object', settings.object],
    ['namespace', settings.namespace],
    ['cluster', settings.cluster],
  ];
  for (const [source, raw] of levels) {
    if (raw === undefined) continue;
    const parsed = feature.parse(raw);
    if (parsed.kind === 'on') return { enabled: true, value: parsed.value, source };
    if (parsed.kind === 'off') return { enabled: false, reason: 'opted_out' };
    const where = source === 'object' ? feature.annotation : `${source} default for ${feature.name}`;
    const problem = parsed.problem ?? `invalid value ${JSON.stringify(raw)}, expected ${parsed.expected}`;
    return { enabled: false, reason: 'invalid_value', warning: `${where}: ${problem}; skipped` };
  }
  return { enabled: false, reason: 'not_opted_in' };
}
