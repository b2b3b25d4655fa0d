// /validate through the real HTTPS server (startServer), on loopback, verifying the generated CA.
import { mkdtemp, readFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdmissionReviewResponse } from '../src/admission/types.js';
import { parseConfig } from '../src/config/load.js';
import { createLogger } from '../src/observability/logger.js';
import { startServer, type RunningServer } from '../src/server/serve.js';
import { FORBID, fixtureObject, fixtureRequest, requestFor } from './support/policy.js';

let server: RunningServer;
let ca: string;

beforeAll(async () => {
  const certDir = await mkdtemp(join(tmpdir(), 'podvisor-policy-server-'));
  const config = parseConfig({
    logLevel: 'silent',
    server: { address: '127.0.0.1', port: 0, opsAddress: '127.0.0.1', opsPort: 0, drainSeconds: 0 },
    tls: { certDir },
    policy: FORBID,
  });
  server = await startServer(config, createLogger('silent'));
  ca = await readFile(join(certDir, 'ca.crt'), 'utf8');
});

afterAll(async () => {
  await server?.shutdown('test done');
});

function post(path: string, body: unknown): Promise<{ status: number; json: AdmissionReviewResponse }> {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = httpsRequest(
      { host: '127.0.0.1', port: server.admissionPort, path, method: 'POST', ca, servername: 'localhost', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } },
      (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as AdmissionReviewResponse }));
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

function metrics(): Promise<string> {
  return new Promise((resolve, reject) => {
    httpRequest({ host: '127.0.0.1', port: server.opsPort, path: '/metrics' }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () => resolve(text));
    })
      .on('error', reject)
      .end();
  });
}

const review = (request: unknown) => ({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request });

describe('POST /validate over HTTPS', () => {
  it('denies the privileged agent DaemonSet with 403 and the violation lines', async () => {
    const { status, json } = await post('/validate', review(requestFor(fixtureObject('11-daemonset-agent-privileged.yaml'))));
    expect(status).toBe(200);
    expect(json.kind).toBe('AdmissionReview');
    expect(json.response.allowed).toBe(false);
    expect(json.response.status?.code).toBe(403);
    expect(json.response.status?.message).toContain('spec.template.spec.containers[0].securityContext.privileged: forbidden by policy forbid-privileged');
  });

  it('admits the non-privileged kubectl debug container and denies the sysadmin profile', async () => {
    const ok = await post('/validate', review(fixtureRequest('review-01-pod-ephemeralcontainers.json')));
    expect(ok.json.response).toEqual({ uid: 'e3b90c14-5d7a-4a26-bf81-37c0d5e9a2f6', allowed: true });
    const sysadmin = fixtureRequest('review-01-pod-ephemeralcontainers.json');
    (sysadmin.object as { spec: { ephemeralContainers: { securityContext: unknown }[] } }).spec.ephemeralContainers[0]!.securityContext = { privileged: true };
    const denied = await post('/validate', review(sysadmin));
    expect(denied.json.response.allowed).toBe(false);
    expect(denied.json.response.status?.message).toContain('spec.ephemeralContainers[0].securityContext.privileged');
  });

  it('answers 400 for a malformed review and counts decisions by policy, rule and mode', async () => {
    const bad = await post('/validate', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' });
    expect(bad.status).toBe(400);
    const text = await metrics();
    expect(text).toContain('podvisor_policy_decisions_total{policy="forbid-privileged",rule="podvisor:privileged",mode="enforce",decision="denied"} 2');
    expect(text).toContain('podvisor_policy_decisions_total{policy="forbid-privileged",rule="none",mode="enforce",decision="allowed"} 1');
  });
});
