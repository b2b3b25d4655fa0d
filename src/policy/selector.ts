import type { LabelSelector } from './schema.js';

/** Kubernetes label selector semantics: every matchLabels pair and every expression must hold; `{}` matches all. */
export function matchesSelector(selector: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) if (labels[key] !== value) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const value = labels[e.key];
    const values = e.values ?? [];
    if (e.operator === 'In' && !(has && values.includes(value!))) return false;
    if (e.operator === 'NotIn' && has && values.includes(value!)) return false;
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
  }
  return true;
}

/** How specific a selector is: the number of its requirements. */
export function selectorSpecificity(selector: LabelSelector): number {
  return Object.keys(selector.matchLabels ?? {}).length + (selector.matchExpressions ?? []).length;
}
