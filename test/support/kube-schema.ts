/**
 * Offline structural validation of Kubernetes objects against the OpenAPI models that @kubernetes/client-node 1.4.0
 * ships (generated from the Kubernetes v1.34.0 OpenAPI spec): every model class carries `attributeTypeMap` (field
 * names as serialized, and their types), and its `.d.ts` marks required fields (no `?`). Unknown fields, wrong types
 * and missing required fields are reported with their path, as `kubectl apply --validate=strict` would.
 *
 * Kinds outside the built-in API (cert-manager) are checked against the small hand-written field lists below, taken
 * from cert-manager's v1 API reference; only the fields podvisor's manifests may use are listed.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as k8s from '@kubernetes/client-node';

interface Attribute {
  readonly name: string;
  readonly baseName: string;
  readonly type: string;
  readonly format: string;
}
interface Model {
  readonly attributeTypeMap?: readonly Attribute[];
}

const models = k8s as unknown as Record<string, Model | undefined>;
const modelsDir = join(dirname(createRequire(import.meta.url).resolve('@kubernetes/client-node')), 'gen', 'models');

/** The top-level kinds the manifests may contain, by `apiVersion/kind`, and their model class. */
export const KIND_MODELS: Readonly<Record<string, string>> = {
  'v1/Namespace': 'V1Namespace',
  'v1/ServiceAccount': 'V1ServiceAccount',
  'v1/ConfigMap': 'V1ConfigMap',
  'v1/Secret': 'V1Secret',
  'v1/Service': 'V1Service',
  'v1/Pod': 'V1Pod',
  'apps/v1/Deployment': 'V1Deployment',
  'apps/v1/DaemonSet': 'V1DaemonSet',
  'policy/v1/PodDisruptionBudget': 'V1PodDisruptionBudget',
  'scheduling.k8s.io/v1/PriorityClass': 'V1PriorityClass',
  'rbac.authorization.k8s.io/v1/ClusterRole': 'V1ClusterRole',
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': 'V1ClusterRoleBinding',
  'rbac.authorization.k8s.io/v1/Role': 'V1Role',
  'rbac.authorization.k8s.io/v1/RoleBinding': 'V1RoleBinding',
  'admissionregistration.k8s.io/v1/MutatingWebhookConfiguration': 'V1MutatingWebhookConfiguration',
  'admissionregistration.k8s.io/v1/ValidatingWebhookConfiguration': 'V1ValidatingWebhookConfiguration',
  'coordination.k8s.io/v1/Lease': 'V1Lease',
  'networking.k8s.io/v1/NetworkPolicy': 'V1NetworkPolicy',
};

const requiredCache = new Map<string, Set<string>>();
/** Required properties of a model: the ones its generated `.d.ts` declares without `?`. */
function requiredFields(model: string): Set<string> {
  let required = requiredCache.get(model);
  if (required === undefined) {
    required = new Set();
    const text = readFileSync(join(modelsDir, `${model}.d.ts`), 'utf8');
    for (const match of text.matchAll(/^\s+'([A-Za-z0-9_$-]+)': /gm)) required.add(match[1]!);
    requiredCache.set(model, required);
  }
  return required;
}

function describe(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
}

function validateType(value: unknown, type: string, format: string, path: string, errors: string[]): void {
  const array = /^Array<(.+)>$/.exec(type);
  if (array) {
    if (!Array.isArray(value)) return void errors.push(`${path}: expected array, got ${describe(value)}`);
    value.forEach((item, i) => validateType(item, array[1]!, format, `${path}[${i}]`, errors));
    return;
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) {
    if (describe(value) !== 'object') return void errors.push(`${path}: expected map, got ${describe(value)}`);
    for (const [key, item] of Object.entries(value as object)) validateType(item, map[1]!, format, `${path}.${key}`, errors);
    return;
  }
  switch (type) {
    case 'any':
      return;
    case 'string':
    case 'V1MicroTime':
      if (typeof value !== 'string') errors.push(`${path}: expected string, got ${describe(value)}`);
      return;
    case 'Date':
      if (value !== null && typeof value !== 'string') errors.push(`${path}: expected date-time string, got ${describe(value)}`);
      return;
    case 'boolean':
      if (typeof value !== 'boolean') errors.push(`${path}: expected boolean, got ${describe(value)}`);
      return;
    case 'number':
      if (typeof value !== 'number') errors.push(`${path}: expected ${format || 'number'}, got ${describe(value)}`);
      else if ((format === 'int32' || format === 'int64') && !Number.isInteger(value)) errors.push(`${path}: expected integer, got ${value}`);
      return;
    case 'IntOrString':
      if (typeof value !== 'string' && !(typeof value === 'number' && Number.isInteger(value))) {
        errors.push(`${path}: expected integer or string, got ${describe(value)}`);
      }
      return;
    default:
      validateModel(value, type, path, errors);
  }
}

function validateModel(value: unknown, model: string, path: string, errors: string[]): void {
  const attributes = models[model]?.attributeTypeMap;
  if (attributes === undefined) throw new Error(`no OpenAPI model ${model} in @kubernetes/client-node`);
  if (describe(value) !== 'object') return void errors.push(`${path}: expected object (${model}), got ${describe(value)}`);
  const object = value as Record<string, unknown>;
  const byName = new Map(attributes.map((a) => [a.baseName, a]));
  for (const [key, item] of Object.entries(object)) {
    const attribute = byName.get(key);
    if (attribute === undefined) {
      errors.push(`${path}.${key}: unknown field (${model})`);
      continue;
    }
    validateType(item, attribute.type, attribute.format, `${path}.${key}`, errors);
  }
  for (const key of requiredFields(model)) {
    const attribute = attributes.find((a) => a.name === key);
    if (attribute !== undefined && object[attribute.baseName] === undefined) errors.push(`${path}.${attribute.baseName}: required field missing (${model})`);
  }
}

// ---- cert-manager v1 (Issuer, Certificate): the fields podvisor may use, from cert-manager's API reference ----

type Shape = 'string' | 'boolean' | 'integer' | 'object' | readonly string[] | { readonly [field: string]: Shape } | readonly [Shape];

const objectMeta: Shape = {
  name: 'string',
  namespace: 'string',
  labels: 'object',
  annotations: 'object',
};
const CERT_MANAGER: Readonly<Record<string, Shape>> = {
  'cert-manager.io/v1/Issuer': {
    apiVersion: 'string',
    kind: 'string',
    metadata: objectMeta,
    spec: {
      selfSigned: { crlDistributionPoints: ['string'] },
      ca: { secretName: 'string', crlDistributionPoints: ['string'], issuingCertificateURLs: ['string'], ocspServers: ['string'] },
    },
  },
  'cert-manager.io/v1/Certificate': {
    apiVersion: 'string',
    kind: 'string',
    metadata: objectMeta,
    spec: {
      secretName: 'string',
      commonName: 'string',
      dnsNames: ['string'],
      ipAddresses: ['string'],
      uris: ['string'],
      emailAddresses: ['string'],
      duration: 'string',
      renewBefore: 'string',
      isCA: 'boolean',
      revisionHistoryLimit: 'integer',
      secretTemplate: { labels: 'object', annotations: 'object' },
      privateKey: {
        algorithm: ['RSA', 'ECDSA', 'Ed25519'] as readonly string[],
        encoding: ['PKCS1', 'PKCS8'] as readonly string[],
        size: 'integer',
        rotationPolicy: ['Never', 'Always'] as readonly string[],
      },
      usages: [
        [
          'signing', 'digital signature', 'content commitment', 'key encipherment', 'key agreement', 'data encipherment',
          'cert sign', 'crl sign', 'encipher only', 'decipher only', 'any', 'server auth', 'client auth', 'code signing',
          'email protection', 's/mime', 'ipsec end system', 'ipsec tunnel', 'ipsec user', 'timestamping', 'ocsp signing',
          'microsoft sgc', 'netscape sgc',
        ] as readonly string[],
      ],
      issuerRef: { name: 'string', kind: 'string', group: 'string' },
    },
  },
};
const CERT_MANAGER_REQUIRED: Readonly<Record<string, readonly string[]>> = {
  'cert-manager.io/v1/Certificate': ['spec.secretName', 'spec.issuerRef.name'],
  'cert-manager.io/v1/Issuer': [],
};

function validateShape(value: unknown, shape: Shape, path: string, errors: string[]): void {
  if (shape === 'string' || shape === 'boolean') {
    if (typeof value !== shape) errors.push(`${path}: expected ${shape}, got ${describe(value)}`);
  } else if (shape === 'integer') {
    if (!Number.isInteger(value)) errors.push(`${path}: expected integer, got ${describe(value)}`);
  } else if (shape === 'object') {
    if (describe(value) !== 'object') errors.push(`${path}: expected map, got ${describe(value)}`);
  } else if (Array.isArray(shape) && shape.length === 1 && typeof shape[0] !== 'string') {
    if (!Array.isArray(value)) return void errors.push(`${path}: expected array, got ${describe(value)}`);
    value.forEach((item, i) => validateShape(item, shape[0] as Shape, `${path}[${i}]`, errors));
  } else if (Array.isArray(shape) && shape.length === 1 && shape[0] === 'string') {
    if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) errors.push(`${path}: expected array of strings`);
  } else if (Array.isArray(shape)) {
    if (!(shape as readonly string[]).includes(value as string)) errors.push(`${path}: ${JSON.stringify(value)} is not one of ${shape.join(', ')}`);
  } else {
    if (describe(value) !== 'object') return void errors.push(`${path}: expected object, got ${describe(value)}`);
    const fields = shape as { readonly [field: string]: Shape };
    for (const [key, item] of Object.entries(value as object)) {
      const child = fields[key];
      if (child === undefined) errors.push(`${path}.${key}: unknown field`);
      else validateShape(item, child, `${path}.${key}`, errors);
    }
  }
}

/** Schema errors of one object (empty when valid). */
export function validateObject(object: unknown): string[] {
  if (describe(object) !== 'object') return ['(root): expected an object'];
  const { apiVersion, kind, metadata } = object as { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown } };
  const key = `${String(apiVersion)}/${String(kind)}`;
  const where = `${key} ${String(metadata?.name)}`;
  const errors: string[] = [];
  const model = KIND_MODELS[key];
  const certManager = CERT_MANAGER[key];
  if (model !== undefined) validateModel(object, model, where, errors);
  else if (certManager !== undefined) {
    validateShape(object, certManager, where, errors);
    for (const required of CERT_MANAGER_REQUIRED[key] ?? []) {
      const present = required.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], object);
      if (present === undefined) errors.push(`${where}.${required}: required field missing`);
    }
  } else errors.push(`${where}: unknown apiVersion/kind ${key}`);
  if (typeof metadata?.name !== 'string' || metadata.name === '') errors.push(`${where}: metadata.name missing`);
  return errors;
}
