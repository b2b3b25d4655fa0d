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

type Check = (value: unknown, path: Path) => void;

const SKIP: Check = () => undefined;

/**
 * A shape turned into nested closures once, at load: checking a pod then only runs the comparisons the shape needs,
 * instead of working out at every field what kind of shape it is.
 */
function compile(shape: Shape | 'any'): Check {
  if (shape === 'any') return SKIP;
  if (typeof shape === 'string') {
    return (value, path) => {
      if (value !== undefined && value !== null && typeof value !== shape) throw new MalformedObjectError(`${spell(path)}: expected a ${shape}, got ${describeValue(value)}`);
    };
  }
  if ('list' in shape) {
    const itemIsScalar = typeof shape.list === 'string';
    const expected = itemIsScalar ? `a ${shape.list as string}` : 'an object';
    const item = compile(shape.list);
    return (value, path) => {
      if (value === undefined || value === null) return;
      if (!Array.isArray(value)) throw new MalformedObjectError(`${spell(path)}: expected an array, got ${describeValue(value)}`);
      for (let i = 0; i < value.length; i += 1) {
        const entry: unknown = value[i];
        // A list entry is never null: the apiserver decodes `[null]` into a zero-value struct, never sends null.
        if (entry === null || (typeof entry !== 'object' && !itemIsScalar)) {
          path.push(i);
          throw new MalformedObjectError(`${spell(path)}: expected ${expected}, got ${entry === null ? 'null' : describeValue(entry)}`);
        }
        path.push(i);
        item(entry, path);
        path.pop();
      }
    };
  }
  const object = (value: unknown, path: Path): value is Record<string, unknown> => {
    if (value === undefined || value === null) return false;
    if (typeof value !== 'object' || Array.isArray(value)) throw new MalformedObjectError(`${spell(path)}: expected an object, got ${describeValue(value)}`);
    return true;
  };
  if ('map' in shape) {
    const member = compile(shape.map);
    const nullable = shape.map === 'any';
    const expected = shape.map as string;
    return (value, path) => {
      if (!object(value, path)) return;
      for (const key in value) {
        const entry = value[key];
        // Annotation and label values are strings; the apiserver never sends null there.
        if (entry === null && !nullable) {
          path.push(key);
          throw new MalformedObjectError(`${spell(path)}: expected a ${expected}, got null`);
        }
        if (member === SKIP) continue;
        path.push(key);
        member(entry, path);
        path.pop();
      }
    };
  }
  const fields = Object.entries(shape.fields).map(([key, field]) => [key, compile(field)] as const);
  return (value, path) => {
    if (!object(value, path)) return;
    for (const [key, check] of fields) {
      const field = value[key];
      if (field === undefined || field === null) continue;
      path.push(key);
      check(field, path);
      path.pop();
    }
  };
}

const checkMetadata = compile(POD_METADATA);
const checkSpec = compile(POD_SPEC);

/** Throws MalformedObjectError naming the first field of a wrong type in the pod (template) metadata and spec. */
export function checkPodShape(metadata: unknown, spec: unknown, metaField: string, specField: string): void {
  checkMetadata(metadata, [metaField]);
  checkSpec(spec, [specField]);
}
