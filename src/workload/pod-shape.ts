import { describeValue } from '../json-value.js';

/**
 * The kube-apiserver decodes every object into its Go types before admission, so it never sends a field of the wrong
 * type; a direct POST can. Before any feature reads the pod, this checks the type of every field podvisor reads, so
 * such input gets a 400 naming the field instead of a crash. Absent (or null) fields are fine: mutating admission runs
 * before validation, so required fields may still be missing.
 */

type Shape = 'string' | 'number' | 'boolean' | { readonly list: Shape } | { readonly map: Shape | 'any' } | { readonly fields: Readonly<Record<string, Shape>> };

export class MalformedObjectError extends Error {
  override readonly name = 'MalformedObjectError';
}

const strings = { list: 'string' } as const;
const stringMap = { map: 'string' } as const;
const profile = { fields: { type: 'string', localhostProfile: 'string' } } as const;
const securityContext = {
  fields: {
    privileged: 'boolean',
    allowPrivilegeEscalation: 'boolean',
    runAsNonRoot: 'boolean',
    runAsUser: 'number',
    procMount: 'string',
    capabilities: { fields: { add: strings, drop: strings } },
    appArmorProfile: profile,
    seccompProfile: profile,
    seLinuxOptions: { fields: { type: 'string', level: 'string', role: 'string', user: 'string' } },
    windowsOptions: { fields: { hostProcess: 'boolean' } },
  },
} as const;
const container = {
  list: {
    fields: {
      name: 'string',
      volumeMounts: { list: { fields: { name: 'string', mountPath: 'string', mountPropagation: 'string', readOnly: 'boolean' } } },
      securityContext,
      resources: { fields: { limits: { map: 'any' }, requests: { map: 'any' } } },
      ports: { list: { fields: { containerPort: 'number', hostPort: 'number' } } },
    },
  },
} as const;
const nodeSelectorTerms = { list: { fields: { matchExpressions: { list: { fields: { key: 'string', operator: 'string', values: strings } } } } } } as const;

const POD_METADATA: Shape = { fields: { annotations: stringMap, labels: stringMap, ownerReferences: { list: { fields: { controller: 'boolean' } } } } };
const POD_SPEC: Shape = {
  fields: {
    containers: container,
    initContainers: container,
    ephemeralContainers: container,
    volumes: { list: { fields: { name: 'string', hostPath: { fields: { path: 'string', type: 'string' } } } } },
    securityContext: { fields: { ...securityContext.fields, sysctls: { list: { fields: { name: 'string', value: 'string' } } } } },
    os: { fields: { name: 'string' } },
    nodeSelector: stringMap,
    affinity: { fields: { nodeAffinity: { fields: { requiredDuringSchedulingIgnoredDuringExecution: { fields: { nodeSelectorTerms } } } } } },
    hostPID: 'boolean',
    hostNetwork: 'boolean',
    hostIPC: 'boolean',
    hostUsers: 'boolean',
    shareProcessNamespace: 'boolean',
    dnsPolicy: 'string',
  },
};

/**
 * The field's path is kept as a stack and spelled out only for an error: building `spec.containers[0].name` for every
 * field checked was most of this check's cost on the request path.
 */
type Path = (string | number)[];

function spell(path: Path): string {
  let text = String(path[0]);
  for (let i = 1; i < path.length; i += 1) text += typeof path[i] === 'number' ? `[${path[i]}]` : `.${path[i]}`;
  return text;
}

function check(value: unknown, shape: Shape | 'any', path: Path): void {
  if (value === undefined || value === null || shape === 'any') return;
  if (typeof shape === 'string') {
    if (typeof value !== shape) throw new MalformedObjectError(`${spell(path)}: expected a ${shape}, got ${describeValue(value)}`);
    return;
  }
  if ('list' in shape) {
    if (!Array.isArray(value)) throw new MalformedObjectError(`${spell(path)}: expected an array, got ${describeValue(value)}`);
    for (let i = 0; i < value.length; i += 1) {
      const item: unknown = value[i];
      path.push(i);
      // A list entry is never null: the apiserver decodes `[null]` into a zero-value struct, never sends null.
      if (item === null || (typeof item !== 'object' && typeof shape.list !== 'string')) {
        throw new MalformedObjectError(`${spell(path)}: expected ${typeof shape.list === 'string' ? `a ${shape.list}` : 'an object'}, got ${item === null ? 'null' : describeValue(item)}`);
      }
      check(item, shape.list, path);
      path.pop();
    }
    return;
  }
  if (typeof value !== 'object' || Array.isArray(value)) throw new MalformedObjectError(`${spell(path)}: expected an object, got ${describeValue(value)}`);
  const record = value as Record<string, unknown>;
  if ('map' in shape) {
    for (const key in record) {
      path.push(key);
      // Annotation and label values are strings; the apiserver never sends null there.
      if (record[key] === null && shape.map !== 'any') throw new MalformedObjectError(`${spell(path)}: expected a ${shape.map}, got null`);
      check(record[key], shape.map, path);
      path.pop();
    }
    return;
  }
  for (const key in shape.fields) {
    path.push(key);
    check(record[key], shape.fields[key]!, path);
    path.pop();
  }
}

/** Throws MalformedObjectError naming the first field of a wrong type in the pod (template) metadata and spec. */
export function checkPodShape(metadata: unknown, spec: unknown, metaField: string, specField: string): void {
  check(metadata, POD_METADATA, [metaField]);
  check(spec, POD_SPEC, [specField]);
}
