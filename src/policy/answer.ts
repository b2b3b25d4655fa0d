import { AUDIT_VIOLATIONS_ANNOTATION } from '../annotations.js';
import type { Violation } from './violation.js';

export const AUDIT_ANNOTATION = AUDIT_VIOLATIONS_ANNOTATION;

/** The agent features that replace `privileged: true` with capabilities (agent-capabilities.md §5). */
const AGENT_EXAMPLES = 'process,host-metrics,ebpf-tracing';

function describe(group: readonly Violation[]): string {
  const checks = [...new Set(group.map((v) => v.check))].join(', ');
  const values = [...new Set(group.map((v) => v.value).filter((v): v is string => v !== undefined && v !== ''))];
  return values.length > 0 ? `${checks}: ${values.join(', ')}` : checks;
}

function byField(violations: readonly Violation[]): Map<string, Violation[]> {
  const groups = new Map<string, Violation[]>();
  for (const v of violations) groups.set(v.field, [...(groups.get(v.field) ?? []), v]);
  return groups;
}

/**
 * The 403 message: one line per offending field, `<field>: forbidden by policy <name> (<checks>)`, then, for each
 * privileged container, how to run it without privileged.
 */
export function denialLines(policyName: string, violations: readonly Violation[]): string[] {
  const lines = [...byField(violations)].map(([field, group]) => `${field}: forbidden by policy ${policyName} (${describe(group)})`);
  const privileged = new Map<string, string>();
  for (const v of violations) if (v.subject?.kind === 'privileged') privileged.set(v.subject.ref.field, v.subject.ref.container.name);
  for (const name of privileged.values()) {
    lines.push(
      `container "${name}" is privileged: drop privileged: true and annotate the pod template with podvisor.io/agent: <features> ` +
        `(e.g. ${AGENT_EXAMPLES}) so podvisor grants only the capabilities the agent needs`,
    );
  }
  return [...lines, ...hints(violations)];
}

function hints(violations: readonly Violation[]): string[] {
  return [...new Set(violations.flatMap((v) => (v.hint === undefined ? [] : [v.hint])))];
}

/** Warn mode: one warning per field; the server trims each to 120 characters. */
export function warningLines(policyName: string, violations: readonly Violation[]): string[] {
  return [...[...byField(violations)].map(([field, group]) => `${field}: violates policy ${policyName} (${describe(group)})`), ...hints(violations)];
}

/** Audit mode: one annotation value listing every offending field. */
export function auditValue(policyName: string, level: string, version: string, violations: readonly Violation[]): string {
  return `policy ${policyName} ${level}:${version}: ${[...byField(violations)].map(([field, group]) => `${field} (${describe(group)})`).join('; ')}`;
}

/** A denial: HTTP-style 403 with one line per violation, as `kubectl` prints `status.message`. */
export function forbiddenStatus(lines: readonly string[]): { code: number; reason: string; message: string } {
  return { code: 403, reason: 'Forbidden', message: lines.join('\n') };
}
