// The model of test/support/fake-apiserver.ts, checked against the real kube-apiserver: the same requests to both,
// the same answers (status codes, Status bodies, list and watch shapes), for what the unit tests that still use the
// model rely on. Values only a live store has (uids, resourceVersions, timestamps, managedFields) are compared by kind,
// not by value; the apiserver's defaults are not modelled, so a stored object answered by the model is contained in
// the apiserver's (same fields, same values), while a Status is the same. What the model does on demand and the apiserver cannot be made to (a 410 or a clean end of an open
// watch, a bookmark at a chosen moment) is checked on the model alone, in test/fake-apiserver.test.ts.
import { Watch, type KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { mutatingWebhookConfiguration } from '../../src/k8s/webhook-configurations.js';
import { apiRequest, loadKubeConfig } from '../support/control-plane.js';
import { config } from '../support/harness.js';
import { startFakeApiServer, type FakeApiServer } from '../support/fake-apiserver.js';

const info = inject('controlPlane');
const NAMESPACE = 'podvisor-system';
const MWC = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations';
const LEASES = `/apis/coordination.k8s.io/v1/namespaces/${NAMESPACE}/leases`;
const SECRETS = `/api/v1/namespaces/${NAMESPACE}/secrets`;
let model: FakeApiServer;
let real: KubeConfig;

beforeAll(async () => {
  model = await startFakeApiServer();
  real = loadKubeConfig(info.adminKubeconfig);
});
afterAll(async () => {
  await model?.close();
  for (const path of [`${MWC}/e2e-model`, `${LEASES}/e2e-model`, `${SECRETS}/e2e-model`]) await apiRequest(real, 'DELETE', path);
});

/** What the store fills in, replaced by its type; managedFields dropped (the model keeps none). */
function shape(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(shape);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    if (key === 'managedFields') continue;
    if (['resourceVersion', 'uid', 'creationTimestamp'].includes(key) && typeof v === 'string') out[key] = `<${key}>`;
    else out[key] = shape(v);
  }
  return out;
}

/** The same request to the apiserver and to the model: both answers, shaped. */
async function both(method: string, path: string, body?: (side: 'real' | 'model') => unknown): Promise<{ real: unknown; model: unknown }> {
  const answer = async (kc: KubeConfig, side: 'real' | 'model') => {
    const a = await apiRequest(kc, method, path, body?.(side));
    return shape({ status: a.status, body: a.body });
  };
  return { real: await answer(real, 'real'), model: await answer(model.kubeConfig(), 'model') };
}

/** The model's answer is the apiserver's, but for the defaults the apiserver adds to a stored object. */
function expectSame(answers: { real: unknown; model: unknown }, what = ''): void {
  const status = (answers.real as { status: number }).status;
  if (status >= 300) expect(answers.model, what).toEqual(answers.real);
  else expect(answers.real, what).toMatchObject(answers.model as object);
}

/** A webhook configuration as podvisor writes one (the apiserver stores an empty `webhooks` as absent). */
function webhookConfiguration(): Record<string, unknown> {
  const built = mutatingWebhookConfiguration({ config: config(), caBundle: Buffer.from('ca').toString('base64'), validating: true });
  return { ...built, apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name: 'e2e-model', labels: { a: 'b' } } };
}

async function resourceVersionOf(kc: KubeConfig, path: string): Promise<string> {
  return ((await apiRequest(kc, 'GET', path)).body as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
}

describe('the fake apiserver answers as the kube-apiserver does', () => {
  it('a missing object: 404 with the NotFound Status (core and named groups)', async () => {
    for (const path of [`${MWC}/e2e-model-missing`, `${SECRETS}/e2e-model-missing`, `${LEASES}/e2e-model-missing`]) {
      expectSame(await both('GET', path), path);
    }
  });

  it('create: 201 with the stored object; again: 409 AlreadyExists', async () => {
    expectSame(await both('POST', MWC, webhookConfiguration));
    expectSame(await both('POST', MWC, webhookConfiguration));
    const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'e2e-model' }, type: 'kubernetes.io/tls', data: { 'tls.crt': '', 'tls.key': '' } };
    expectSame(await both('POST', SECRETS, () => secret));
    expectSame(await both('POST', SECRETS, () => secret));
  });

  it('replace: 200 with the current resourceVersion, 409 Conflict with a stale one (webhook configurations, Leases)', async () => {
    const lease = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'e2e-model' }, spec: { holderIdentity: 'a', leaseDurationSeconds: 15, renewTime: '2026-11-20T10:00:00.000000Z' } };
    expectSame(await both('POST', LEASES, () => lease));
    const retimed = webhookConfiguration() as { metadata: object; webhooks: object[] };
    const replacements: [string, Record<string, unknown> & { metadata: object }][] = [
      [`${MWC}/e2e-model`, { ...retimed, webhooks: retimed.webhooks.map((w) => ({ ...w, timeoutSeconds: 3 })) }],
      [`${LEASES}/e2e-model`, { ...lease, spec: { ...lease.spec, holderIdentity: 'b' } }],
    ];
    for (const [path, object] of replacements) {
      const stale = { real: await resourceVersionOf(real, path), model: await resourceVersionOf(model.kubeConfig(), path) };
      const withVersion = (side: 'real' | 'model') => ({ ...object, metadata: { ...object.metadata, resourceVersion: stale[side] } });
      expectSame(await both('PUT', path, withVersion), path);
      expectSame(await both('PUT', path, withVersion), path);
    }
  });

  it('list: a <Kind>List with a resourceVersion, items without kind and apiVersion', async () => {
    const listed = await both('GET', LEASES);
    const items = (side: unknown) => ((side as { body: { items: { metadata: { name: string } }[] } }).body.items).filter((i) => i.metadata.name === 'e2e-model');
    const strip = (side: unknown) => ({ ...(side as { body: object }).body, items: items(side) });
    expect(strip(listed.real)).toMatchObject(strip(listed.model));
    expect(items(listed.real)).toHaveLength(1);
  });

  it('watch from a list\'s resourceVersion: ADDED, MODIFIED, DELETED with whole objects, through client-node', async () => {
    const follow = async (kc: KubeConfig): Promise<unknown[]> => {
      const from = await resourceVersionOf(kc, SECRETS);
      const events: unknown[] = [];
      let done: () => void = () => {};
      const all = new Promise<void>((resolve) => (done = resolve));
      const controller = await new Watch(kc).watch(SECRETS, { resourceVersion: from }, (type, object: { metadata: { name: string } }) => {
        if (object.metadata.name !== 'e2e-model-watched') return;
        events.push(shape({ type, object }));
        if (type === 'DELETED') done();
      }, () => done());
      const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'e2e-model-watched' }, data: { a: 'YQ==' } };
      expect((await apiRequest(kc, 'POST', SECRETS, secret)).status).toBe(201);
      expect((await apiRequest(kc, 'PUT', `${SECRETS}/e2e-model-watched`, { ...secret, data: { a: 'Yg==' } })).status).toBe(200);
      expect((await apiRequest(kc, 'DELETE', `${SECRETS}/e2e-model-watched`)).status).toBe(200);
      await Promise.race([all, new Promise((r) => setTimeout(r, 10_000))]);
      controller.abort();
      return events;
    };
    const fromReal = await follow(real);
    expect(fromReal.map((e) => (e as { type: string }).type)).toEqual(['ADDED', 'MODIFIED', 'DELETED']);
    expect(fromReal).toMatchObject(await follow(model.kubeConfig()));
  });

  it('/version: fields the apiserver has, all strings (1.37 adds emulation and compatibility versions)', async () => {
    const answer = await both('GET', '/version');
    const fields = (side: unknown) => (side as { body: Record<string, unknown> }).body;
    expect(Object.keys(fields(answer.real))).toEqual(expect.arrayContaining(Object.keys(fields(answer.model))));
    for (const value of [...Object.values(fields(answer.real)), ...Object.values(fields(answer.model))]) expect(typeof value).toBe('string');
  });
});
