// Test plumbing for the policy tests: fixtures as JSON objects, configs, and AdmissionRequests around objects.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import jsonpatch from 'fast-json-patch';
import { parseAllDocuments } from 'yaml';
import type { AdmissionRequest, KubeObject, Operation } from '../../src/admission/types.js';
import { parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { mutateObject } from '../../src/mutation/pipeline.js';
import { splitApiVersion } from '../../src/workload/kinds.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));

export function fixtureObject(name: string): KubeObject {
  return parseAllDocuments(readFileSync(FIXTURES + name, 'utf8'))[0]!.toJS() as KubeObject;
}

export function fixtureRequest(name: string): AdmissionRequest {
  return (JSON.parse(readFileSync(FIXTURES + name, 'utf8')) as { request: AdmissionRequest }).request;
}

export function policyConfig(policy: unknown, extra: Record<string, unknown> = {}): Config {
  return parseConfig({ ...extra, policy });
}

/** A "forbid" policy: the privileged-agent rule alone (fixtures README), no Pod Security level. */
export const FORBID = { default: { name: 'forbid-privileged', privileged: 'deny' } };

export function requestFor(object: KubeObject, options: { operation?: Operation; oldObject?: KubeObject; username?: string; groups?: string[]; subResource?: string } = {}): AdmissionRequest {
  const { group, version } = splitApiVersion(String(object['apiVersion']));
  const kind = String(object['kind']);
  const meta = object['metadata'] as { namespace?: string; name?: string };
  return {
    uid: '7f1c1b0e-0000-4000-8000-000000000001',
    kind: { group, version, kind },
    resource: { group, version, resource: `${kind.toLowerCase()}s` },
    ...(options.subResource !== undefined ? { subResource: options.subResource } : {}),
    namespace: meta.namespace ?? 'default',
    ...(meta.name !== undefined ? { name: meta.name } : {}),
    operation: options.operation ?? 'CREATE',
    userInfo: { username: options.username ?? 'oidc:alice@example.com', groups: options.groups ?? ['system:authenticated'] },
    object,
    ...(options.oldObject !== undefined ? { oldObject: options.oldObject } : {}),
  };
}

/** The object after podvisor's mutation (CREATE), patch applied with fast-json-patch. */
export function mutated(object: KubeObject, config: Config): KubeObject {
  const { group, version } = splitApiVersion(String(object['apiVersion']));
  const namespace = (object['metadata'] as { namespace?: string }).namespace ?? 'default';
  const outcome = mutateObject({ group, version, kind: String(object['kind']), operation: 'CREATE', namespace, object: structuredClone(object) }, { config });
  if (outcome.denial !== undefined) throw new Error(`mutation denied: ${outcome.denial.lines.join('; ')}`);
  return jsonpatch.applyPatch(structuredClone(object), outcome.patch, true, false).newDocument as KubeObject;
}
