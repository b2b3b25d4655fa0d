import { z } from 'zod';
import { LEVELS, VERSION_PATTERN } from './version.js';

/**
 * The `policy` section of podvisor's config. Validated with the rest of the config: an unknown key or a bad value
 * refuses to start with `policy.<path>: <message>`.
 *
 * The default keeps podvisor's behaviour from before policies existed: the cluster default enforces `privileged`
 * (no Pod Security check) with `privileged: allow`, so nothing is denied or warned about until configured.
 */

const dns1123Label = z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a DNS-1123 label').max(63);

const levelVersion = z
  .strictObject({
    level: z.enum(LEVELS, { error: () => `expected one of ${LEVELS.join(', ')}` }).default('privileged'),
    version: z.string().regex(VERSION_PATTERN, 'expected "latest" or a version v1.<minor> (v1.0 onward)').default('latest'),
  })
  .prefault({});

const labelSelector = z
  .strictObject({
    matchLabels: z.record(z.string(), z.string()).optional(),
    matchExpressions: z
      .array(
        z
          .strictObject({
            key: z.string().min(1),
            operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
            values: z.array(z.string()).optional(),
          })
          .refine((e) => ((e.operator === 'In' || e.operator === 'NotIn') === ((e.values ?? []).length > 0)), {
            message: 'In and NotIn need values; Exists and DoesNotExist take none',
          }),
      )
      .optional(),
  });
export type LabelSelector = z.infer<typeof labelSelector>;

/** A capability name as Kubernetes wants it: bare and upper-case (kubernetes-rules.md §7). */
const capabilityName = z
  .string()
  .regex(/^[A-Z][A-Z0-9_]*$/, 'must be an upper-case capability name such as SYS_PTRACE')
  .refine((name) => !name.startsWith('CAP_'), { error: (issue) => `use the bare name "${String(issue.input).slice(4)}": a CAP_ prefix is silently ignored by containerd` });

const absolutePath = z
  .string()
  .regex(/^\/[^\0]*$/, 'must be an absolute path')
  .refine((p) => !p.split('/').includes('..'), 'must not contain ".."');

const allowance = z.strictObject({
  /** For messages and metrics. */
  name: z.string().min(1).optional(),
  /** Which workloads of the namespace it covers; every workload when absent. Both given: both must match. */
  workloads: z
    .strictObject({
      selector: labelSelector.optional(),
      serviceAccounts: z.array(z.string().min(1)).min(1).optional(),
    })
    .optional(),
  capabilities: z.array(capabilityName).default([]),
  hostPID: z.boolean().default(false),
  /** Also waives hostPorts equal to their containerPort, which the apiserver sets on hostNetwork pods. */
  hostNetwork: z.boolean().default(false),
  hostPaths: z.array(z.strictObject({ pathPrefix: absolutePath, readOnly: z.boolean().default(true) })).default([]),
  /** SYS_ADMIN on containers that request a FUSE device (podvisor.io/fuse). */
  fuse: z.boolean().default(false),
});
export type Allowance = z.infer<typeof allowance>;

const policyFields = {
  enforce: levelVersion,
  warn: levelVersion,
  audit: levelVersion,
  /** The explicit privileged-agent rule: `deny` rejects `privileged: true` in enforce mode whatever the level. */
  privileged: z.enum(['deny', 'allow']).default('allow'),
  /** The read-only hostPath files podvisor's own LXCFS injection mounts. */
  lxcfs: z.enum(['allow', 'deny']).default('allow'),
  allowances: z.array(allowance).default([]),
};

const policyName = z.string().regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'must be lower-case letters, digits, "-" or "."').max(63);

const namespacePolicy = z
  .strictObject({
    name: policyName,
    match: z
      .strictObject({ names: z.array(dns1123Label).min(1).optional(), selector: labelSelector.optional() })
      .refine((m) => m.names !== undefined || m.selector !== undefined, { message: 'give names, a selector, or both' }),
    ...policyFields,
  });

export const policyConfigSchema = z
  .strictObject({
    /** Workloads (Deployment, DaemonSet, ...) on /validate: `enforce` denies, `warn` only warns (like PSA), `ignore` skips. */
    workloads: z.enum(['enforce', 'warn', 'ignore']).default('enforce'),
    /** `/mutate` denies an object that would still be denied after podvisor's injection. */
    refuseEarly: z.boolean().default(true),
    /** Never evaluated. podvisor's own namespace is always exempt. */
    exemptions: z
      .strictObject({
        namespaces: z.array(dns1123Label).default(['kube-system']),
        usernames: z.array(z.string().min(1)).default([]),
        groups: z.array(z.string().min(1)).default([]),
      })
      .prefault({}),
    default: z.strictObject({ name: policyName.default('cluster-default'), ...policyFields }).prefault({}),
    namespaces: z.array(namespacePolicy).default([]),
  })
  .prefault({})
  .superRefine((policy, ctx) => {
    const names = new Map<string, number>([[policy.default.name, -1]]);
    const claimed = new Map<string, string>();
    policy.namespaces.forEach((p, i) => {
      if (names.has(p.name)) ctx.addIssue({ code: 'custom', path: ['namespaces', i, 'name'], message: `duplicate policy name "${p.name}"` });
      names.set(p.name, i);
      (p.match.names ?? []).forEach((ns, j) => {
        const other = claimed.get(ns);
        if (other !== undefined) {
          ctx.addIssue({ code: 'custom', path: ['namespaces', i, 'match', 'names', j], message: `namespace "${ns}" is already named by policy "${other}"` });
        }
        claimed.set(ns, p.name);
      });
    });
  });

export type PolicyConfig = z.infer<typeof policyConfigSchema>;
export type PolicyFields = Omit<PolicyConfig['default'], 'name'>;
export interface NamedPolicy extends PolicyFields {
  readonly name: string;
}
export type ModeName = 'enforce' | 'warn' | 'audit';
