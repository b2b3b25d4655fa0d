// Test oracle, security part: the apiserver rules for capabilities, extended resources, AppArmor, privilege
// escalation, host namespaces and Windows pods (../shared/reference/kubernetes-rules.md §5.4–§5.6, §6, §7, §10).
// Registered in RULES of kubernetes-rules.ts. `field` is `spec` for a Pod and `...template.spec` for a template.
import type { AppArmorProfile, Container, PodSpec } from 'kubernetes-types/core/v1.js';
import type { PodLike } from './kubernetes-rules.js';

type Rule = (pod: PodLike, field: string, errors: string[]) => void;

const APPARMOR_PREFIX = 'container.apparmor.security.beta.kubernetes.io/';

function containers(spec: PodSpec, withEphemeral = true): [Container, string][] {
  return [
    ...(spec.initContainers ?? []).map((c, i): [Container, string] => [c, `initContainers[${i}]`]),
    ...(spec.containers ?? []).map((c, i): [Container, string] => [c, `containers[${i}]`]),
    ...(withEphemeral ? (spec.ephemeralContainers ?? []).map((c, i): [Container, string] => [c as Container, `ephemeralContainers[${i}]`]) : []),
  ];
}

/** §7, §12: capability names bare and upper-case (containerd turns CAP_X into CAP_CAP_X, silently missing). */
const capabilitiesRule: Rule = ({ spec }, field, errors) => {
  for (const [container, where] of containers(spec)) {
    const caps = container.securityContext?.capabilities;
    for (const list of ['add', 'drop'] as const) {
      (caps?.[list] ?? []).forEach((name, i) => {
        if (!/^[A-Z][A-Z0-9_]*$/.test(name) || name.startsWith('CAP_')) {
          errors.push(`${field}.${where}.securityContext.capabilities.${list}[${i}]: "${name}" is not a bare capability name`);
        }
      });
    }
  }
};

/** Extended resources: a domain-prefixed name outside kubernetes.io (ValidateResourceRequirements). */
function isExtendedResource(name: string): boolean {
  const slash = name.indexOf('/');
  return slash > 0 && !name.slice(0, slash).endsWith('kubernetes.io') && !name.startsWith('requests.');
}

/** §5.4, §5.5: extended resources integer, request = limit, no request alone; no resources on ephemeral containers. */
const extendedResourcesRule: Rule = ({ spec }, field, errors) => {
  for (const [container, where] of containers(spec, false)) {
    const limits = container.resources?.limits ?? {};
    const requests = container.resources?.requests ?? {};
    for (const name of new Set([...Object.keys(limits), ...Object.keys(requests)].filter(isExtendedResource))) {
      const at = `${field}.${where}.resources`;
      const limit = limits[name];
      const request = requests[name];
      for (const [kind, value] of [['limits', limit], ['requests', request]] as const) {
        if (value !== undefined && !/^\d+$/.test(String(value))) errors.push(`${at}.${kind}[${name}]: Invalid value "${value}": must be an integer`);
      }
      if (request !== undefined && limit === undefined) errors.push(`${at}.limits: Required value: Limit must be set for non overcommitable resources`);
      if (request !== undefined && limit !== undefined && String(request) !== String(limit)) {
        errors.push(`${at}.requests[${name}]: Invalid value "${request}": must be equal to ${name} limit of ${limit}`);
      }
    }
  }
  (spec.ephemeralContainers ?? []).forEach((c, i) => {
    if (c.resources !== undefined && Object.keys(c.resources).length > 0) errors.push(`${field}.ephemeralContainers[${i}].resources: Forbidden`);
  });
};

function annotationProfile(value: string): AppArmorProfile | undefined {
  if (value === '' || value === 'runtime/default') return { type: 'RuntimeDefault' };
  if (value === 'unconfined') return { type: 'Unconfined' };
  if (value.startsWith('localhost/') && value.length > 'localhost/'.length) return { type: 'Localhost', localhostProfile: value.slice('localhost/'.length) };
  return undefined;
}

function profileProblem(profile: AppArmorProfile): string | undefined {
  if (!['RuntimeDefault', 'Localhost', 'Unconfined'].includes(profile.type)) return `Unsupported value "${profile.type}"`;
  if (profile.type === 'Localhost' && (profile.localhostProfile ?? '') === '') return 'localhostProfile: Required value';
  if (profile.type !== 'Localhost' && profile.localhostProfile !== undefined) return 'localhostProfile: can only be set for Localhost';
  const name = profile.localhostProfile;
  if (name !== undefined && (name !== name.trim() || name.length > 4095)) return 'localhostProfile: Invalid value';
  return undefined;
}

/**
 * §6: annotation for an existing container only, valid values, field well-formed, annotation and effective field
 * agree. Pods: the skew step copies an annotation into a nil container field first, so only the container field is
 * compared. Templates: no skew step, so the pod-level field counts too.
 */
const appArmorRule: Rule = ({ metadata, spec }, field, errors) => {
  const isTemplate = field !== 'spec';
  const byName = new Map(containers(spec).map(([c, where]) => [c.name, [c, where] as const]));
  const podField = spec.securityContext?.appArmorProfile;
  if (podField !== undefined) {
    const problem = profileProblem(podField);
    if (problem !== undefined) errors.push(`${field}.securityContext.appArmorProfile: ${problem}`);
  }
  for (const [container, where] of containers(spec)) {
    const own = container.securityContext?.appArmorProfile;
    const problem = own === undefined ? undefined : profileProblem(own);
    if (problem !== undefined) errors.push(`${field}.${where}.securityContext.appArmorProfile: ${problem}`);
  }
  for (const [key, value] of Object.entries(metadata?.annotations ?? {})) {
    if (!key.startsWith(APPARMOR_PREFIX)) continue;
    const name = key.slice(APPARMOR_PREFIX.length);
    const found = byName.get(name);
    if (found === undefined) {
      errors.push(`metadata.annotations[${key}]: Invalid value: container not found`);
      continue;
    }
    const fromAnnotation = annotationProfile(value);
    if (fromAnnotation === undefined) {
      errors.push(`metadata.annotations[${key}]: Invalid value "${value}"`);
      continue;
    }
    const effective = found[0].securityContext?.appArmorProfile ?? (isTemplate ? podField : undefined);
    if (effective === undefined) continue;
    if (effective.type !== fromAnnotation.type) errors.push(`${field}.${found[1]}.securityContext.appArmorProfile.type: Forbidden: apparmor type in annotation and field must match`);
    else if (effective.type === 'Localhost' && effective.localhostProfile !== fromAnnotation.localhostProfile) {
      errors.push(`${field}.${found[1]}.securityContext.appArmorProfile.localhostProfile: Forbidden: apparmor profile in annotation and field must match`);
    }
  }
};

/** §5.6: allowPrivilegeEscalation: false conflicts with privileged and with the literal CAP_SYS_ADMIN. */
const privilegeEscalationRule: Rule = ({ spec }, field, errors) => {
  for (const [container, where] of containers(spec)) {
    const sc = container.securityContext;
    if (sc?.allowPrivilegeEscalation !== false) continue;
    if (sc.privileged === true) errors.push(`${field}.${where}.securityContext: Invalid value: cannot set allowPrivilegeEscalation to false and privileged to true`);
    if ((sc.capabilities?.add ?? []).includes('CAP_SYS_ADMIN')) {
      errors.push(`${field}.${where}.securityContext: Invalid value: cannot set allowPrivilegeEscalation to false and capabilities.Add CAP_SYS_ADMIN`);
    }
  }
};

/** §5.6: host namespaces versus shareProcessNamespace, hostUsers: false, and hostPort with hostNetwork. */
const hostNamespacesRule: Rule = ({ spec }, field, errors) => {
  if (spec.shareProcessNamespace === true && spec.hostPID === true) errors.push(`${field}.shareProcessNamespace: Invalid value: ShareProcessNamespace and HostPID cannot both be enabled`);
  if (spec.hostUsers === false) {
    for (const key of ['hostNetwork', 'hostPID', 'hostIPC'] as const) {
      if (spec[key] === true) errors.push(`${field}.${key}: Forbidden: when \`hostUsers\` is false`);
    }
  }
  if (spec.hostNetwork === true) {
    for (const [container, where] of containers(spec, false)) {
      (container.ports ?? []).forEach((port, i) => {
        if (port.hostPort !== undefined && port.hostPort !== 0 && port.hostPort !== port.containerPort) {
          errors.push(`${field}.${where}.ports[${i}].hostPort: Invalid value: must match containerPort when hostNetwork is true`);
        }
      });
    }
  }
};

/** §10: fields a `spec.os.name: windows` pod must not set. */
const windowsRule: Rule = ({ spec }, field, errors) => {
  if (spec.os?.name !== 'windows') return;
  for (const key of ['hostPID', 'hostIPC', 'hostUsers', 'shareProcessNamespace'] as const) {
    if (spec[key] !== undefined) errors.push(`${field}.${key}: Forbidden: cannot be set for a windows pod`);
  }
  for (const key of ['appArmorProfile', 'seccompProfile', 'seLinuxOptions'] as const) {
    if (spec.securityContext?.[key] !== undefined) errors.push(`${field}.securityContext.${key}: Forbidden: cannot be set for a windows pod`);
  }
  for (const [container, where] of containers(spec)) {
    const sc = container.securityContext ?? {};
    for (const key of ['capabilities', 'privileged', 'allowPrivilegeEscalation', 'procMount', 'readOnlyRootFilesystem', 'appArmorProfile', 'seccompProfile', 'seLinuxOptions'] as const) {
      if (sc[key] !== undefined) errors.push(`${field}.${where}.securityContext.${key}: Forbidden: cannot be set for a windows pod`);
    }
  }
};

export const SECURITY_RULES: Rule[] = [capabilitiesRule, extendedResourcesRule, appArmorRule, privilegeEscalationRule, hostNamespacesRule, windowsRule];
