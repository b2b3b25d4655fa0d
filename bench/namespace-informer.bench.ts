// npm run bench:namespaces — heap kept per Namespace by client-node's informer (makeInformer) and by podvisor's
// namespace cache (src/k8s/namespace-cache.ts on src/k8s/list-watch.ts), for N = 10 000 and 50 000 (BENCH_NAMESPACES).
// Both are the real code talking HTTP to a loopback stub apiserver started here; each measurement runs in its own
// `node --expose-gc` process so one's heap cannot blur another's. The objects arrive either in the initial list
// (client-node's typed listNamespace deserializes them) or as watch ADDED events after an empty list (raw JSON).
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, KubeConfig, makeInformer, type V1Namespace } from '@kubernetes/client-node';
import { startNamespaceCache } from '../src/k8s/namespace-cache.js';
import { createLogger } from '../src/observability/logger.js';

const SIZES = (process.env['BENCH_NAMESPACES'] ?? '10000,50000').split(',').map(Number);
const MECHANISMS = ['informer', 'informer+trimming listFn', 'podvisor labels-only'] as const;
const PATHS = ['list', 'watch'] as const;
type Mechanism = (typeof MECHANISMS)[number];
type Path = (typeof PATHS)[number];

/** A Namespace as a GitOps-managed cluster stores it: labels, a last-applied annotation, two managedFields entries. */
function namespace(i: number): object {
  const name = `team-${i}-payments`;
  const labels = {
    'kubernetes.io/metadata.name': name,
    'app.kubernetes.io/managed-by': 'argocd',
    team: `team-${i % 200}`,
    env: i % 3 === 0 ? 'prod' : 'staging',
    'pod-security.kubernetes.io/enforce': 'baseline',
    'podvisor.io/lxcfs': i % 2 === 0 ? 'enabled' : 'disabled',
  };
  const annotations = { owner: `team-${i % 200}@example.com`, 'scheduler.alpha.kubernetes.io/node-selector': 'pool=general' };
  const keys = (o: Record<string, string>): Record<string, object> => Object.fromEntries([['.', {}], ...Object.keys(o).map((k) => [`f:${k}`, {}])]);
  const time = '2026-11-20T10:00:00Z';
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: {
      name,
      uid: randomUUID(),
      resourceVersion: String(100_000 + i),
      creationTimestamp: time,
      labels,
      annotations: {
        ...annotations,
        'kubectl.kubernetes.io/last-applied-configuration': `${JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { annotations, labels, name } })}\n`,
      },
      managedFields: [
        { manager: 'kubectl-client-side-apply', operation: 'Update', apiVersion: 'v1', time, fieldsType: 'FieldsV1', fieldsV1: { 'f:metadata': { 'f:annotations': keys({ ...annotations, 'kubectl.kubernetes.io/last-applied-configuration': '' }), 'f:labels': keys(labels) } } },
        { manager: 'argocd-controller', operation: 'Apply', apiVersion: 'v1', time, fieldsType: 'FieldsV1', fieldsV1: { 'f:metadata': { 'f:labels': keys(labels) } } },
      ],
    },
    spec: { finalizers: ['kubernetes'] },
    status: { phase: 'Active' },
  };
}

/** The stub apiserver: the list and the watch stream as Buffers (outside the JS heap), built before the baseline. */
async function stubApiServer(n: number, path: Path): Promise<{ url: string; jsonBytes: number; close: () => void }> {
  const objects = Array.from({ length: n }, (_, i) => JSON.stringify(namespace(i)));
  const jsonBytes = objects.reduce((sum, o) => sum + o.length, 0);
  const list = Buffer.from(`{"kind":"NamespaceList","apiVersion":"v1","metadata":{"resourceVersion":"${100_000 + n}"},"items":[${path === 'list' ? objects.join(',') : ''}]}`);
  const events = Buffer.from(path === 'watch' ? objects.map((o) => `{"type":"ADDED","object":${o}}\n`).join('') : '');
  const server = createServer((request, response) => {
    if (!new URL(request.url ?? '/', 'http://x').searchParams.has('watch')) {
      response.writeHead(200, { 'Content-Type': 'application/json' }).end(list);
      return;
    }
    response.writeHead(200, { 'Content-Type': 'application/json' }).flushHeaders();
    response.write(events); // then the stream stays open, as a healthy watch does
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, jsonBytes, close: () => server.closeAllConnections() };
}

const heapAfterGc = (): number => {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with node --expose-gc');
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().heapUsed;
};

async function until(condition: () => boolean): Promise<void> {
  const end = Date.now() + 120_000;
  while (!condition()) {
    if (Date.now() > end) throw new Error('not synced within 120 s');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const labelsOnly = (ns: V1Namespace): V1Namespace => ({ metadata: { name: ns.metadata?.name, resourceVersion: ns.metadata?.resourceVersion, labels: ns.metadata?.labels } });

/** One measurement (in a child process): heap held once `n` namespaces are stored. */
async function measure(mechanism: Mechanism, path: Path, n: number): Promise<{ bytesPerNamespace: number; totalMiB: number; jsonBytes: number }> {
  const api = await stubApiServer(n, path);
  const kubeConfig = new KubeConfig(); // plain HTTP on loopback: client-node allows it only with skipTLSVerify
  kubeConfig.loadFromOptions({ clusters: [{ name: 'c', server: api.url, skipTLSVerify: true }], users: [{ name: 'u' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' });
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const before = heapAfterGc();
  let count: () => number;
  let stop: () => Promise<void>;
  if (mechanism === 'podvisor labels-only') {
    const cache = startNamespaceCache(kubeConfig, createLogger('silent'));
    count = () => cache.size();
    stop = () => cache.stop();
  } else {
    const listFn = mechanism === 'informer' ? () => core.listNamespace() : async () => {
      const list = await core.listNamespace();
      return { ...list, items: list.items.map(labelsOnly) };
    };
    const informer = makeInformer(kubeConfig, '/api/v1/namespaces', listFn);
    // client-node's informer reports its own stop() as an 'error' (AbortError); only an error before it counts.
    let stopping = false;
    informer.on('error', (err) => {
      if (!stopping) throw err;
    });
    await informer.start();
    count = () => informer.list().length;
    stop = () => {
      stopping = true;
      return informer.stop();
    };
  }
  await until(() => count() === n);
  await new Promise((r) => setTimeout(r, 200)); // let the response buffers go
  const held = heapAfterGc() - before;
  await stop();
  api.close();
  return { bytesPerNamespace: Math.round(held / n), totalMiB: Math.round((held / 2 ** 20) * 10) / 10, jsonBytes: Math.round(api.jsonBytes / n) };
}

/**
 * How each mechanism talks to the apiserver (one run each, against a stub that records every request): the watch
 * query it sends, whether it watches again by itself after a failed watch (HTTP 500), and whether a stop() issued while
 * the first list is in flight keeps it from watching.
 */
async function behaviour(mechanism: 'informer' | 'podvisor labels-only'): Promise<Record<string, string>> {
  const requests: URL[] = [];
  let failWatch = false;
  let listDelayMs = 0;
  const server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://x');
    requests.push(url);
    if (!url.searchParams.has('watch')) {
      setTimeout(() => response.writeHead(200, { 'Content-Type': 'application/json' }).end('{"kind":"NamespaceList","apiVersion":"v1","metadata":{"resourceVersion":"7"},"items":[]}'), listDelayMs);
    } else if (failWatch) {
      response.writeHead(500, { 'Content-Type': 'application/json' }).end('{"kind":"Status","code":500}');
    } else response.writeHead(200, { 'Content-Type': 'application/json' }).flushHeaders();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({ clusters: [{ name: 'c', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }], users: [{ name: 'u' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' });
  const start = (): (() => Promise<void>) => {
    if (mechanism === 'podvisor labels-only') {
      const cache = startNamespaceCache(kubeConfig, createLogger('silent'), { backoffInitialMs: 100 });
      return () => cache.stop();
    }
    const informer = makeInformer(kubeConfig, '/api/v1/namespaces', () => kubeConfig.makeApiClient(CoreV1Api).listNamespace());
    informer.on('error', () => undefined);
    void informer.start();
    return () => informer.stop();
  };
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
  const watches = (): URL[] => requests.filter((u) => u.searchParams.has('watch'));

  let stop = start();
  await sleep(300);
  const query = [...(watches()[0]?.searchParams.entries() ?? [])].map(([k, v]) => `${k}=${v}`).join('&');
  failWatch = true;
  server.closeAllConnections(); // the open watch drops; every later watch gets a 500
  await sleep(2_000);
  const watchesAfterFailure = watches().length - 1;
  failWatch = false;
  await stop();
  server.closeAllConnections();

  requests.length = 0;
  listDelayMs = 300;
  stop = start();
  await sleep(100);
  await stop();
  await sleep(600);
  const watchAfterStop = watches().length;
  server.closeAllConnections();
  server.close();
  return { 'watch query': query, 'watch requests in the 2 s after the watch connection drops (each answered 500)': String(watchesAfterFailure), 'watches opened after stop() during the list': String(watchAfterStop) };
}

const [, , mode, mechanism, path, n] = process.argv;
if (mode === '--behaviour') {
  process.stdout.write(JSON.stringify(await behaviour(mechanism as 'informer' | 'podvisor labels-only')));
  process.exit(0);
} else if (mode === '--one') {
  process.stdout.write(JSON.stringify(await measure(mechanism as Mechanism, path as Path, Number(n))));
  process.exit(0);
} else {
  const self = fileURLToPath(import.meta.url);
  console.log(`node ${process.version}, @kubernetes/client-node 1.4.0; heap held after GC (process.memoryUsage().heapUsed), one process per row`);
  console.log(['mechanism'.padEnd(26), 'objects via'.padEnd(12), 'N'.padStart(6), 'bytes/ns'.padStart(9), 'total MiB'.padStart(10), 'JSON bytes/ns'.padStart(14)].join(' '));
  for (const size of SIZES) {
    for (const m of MECHANISMS) {
      for (const p of PATHS) {
        const out = execFileSync(process.execPath, ['--expose-gc', '--max-old-space-size=4096', '--import', 'tsx', self, '--one', m, p, String(size)], { encoding: 'utf8' });
        const r = JSON.parse(out) as Awaited<ReturnType<typeof measure>>;
        console.log([m.padEnd(26), p.padEnd(12), String(size).padStart(6), String(r.bytesPerNamespace).padStart(9), String(r.totalMiB).padStart(10), String(r.jsonBytes).padStart(14)].join(' '));
      }
    }
  }
  for (const m of ['informer', 'podvisor labels-only']) {
    const out = execFileSync(process.execPath, ['--import', 'tsx', self, '--behaviour', m], { encoding: 'utf8' });
    for (const [what, value] of Object.entries(JSON.parse(out) as Record<string, string>)) console.log(`${m}: ${what}: ${value}`);
  }
}
