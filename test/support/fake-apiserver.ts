/**
 * A MODEL of the Kubernetes API server, not the real one. The project's claims about Kubernetes are tested against a
 * real kube-apiserver (test/e2e/, test/support/control-plane.ts); this model is kept only for what the real apiserver
 * cannot be made to do on demand, and each test that uses it says why:
 * - a 410 Gone (an ERROR event, or an HTTP 410) or an ERROR 500 event on an open watch, at a chosen moment
 *   (test/list-watch.test.ts, test/namespace-cache.test.ts, the lxcfs watch of test/recovery.test.ts);
 * - a BOOKMARK at a chosen moment, then a clean end of the watch (test/list-watch.test.ts);
 * - an API server that is down, failing (5xx) or slow, or a request held until the test lets it go
 *   (test/events.test.ts, test/namespace-cache.test.ts, test/list-watch.test.ts, test/server-version.test.ts, and
 *   the two replicas racing of test/registrar.test.ts);
 * - a /version of another minor (test/server-version.test.ts, test/k8s-serve.test.ts: the AppArmor form of 1.29);
 * - the TLS Secret read failing at one exact moment, while another replica's CA is in the caBundle (test/cluster.test.ts).
 * What it answers like the real apiserver (Status bodies, lists, watch events, conflicts) is compared with a real one
 * in test/e2e/fake-apiserver.test.ts; its on-demand features are checked in test/fake-apiserver.test.ts. It does not
 * model defaults, validation, admission, selectors, pagination, PATCH or authorization.
 *
 * ```ts
 * const api = await startFakeApiServer({ version: { major: '1', minor: '29' } });
 * const kc = api.kubeConfig();                       // KubeConfig trusting its CA, token auth
 * api.put('namespaces', { metadata: { name: 'team-a', labels: { 'podvisor.io/lxcfs': 'enabled' } } });
 * api.expireWatches('namespaces');                   // the open watches get an ERROR 410 and end
 * await api.close();
 * ```
 *
 * API
 * - `startFakeApiServer(options?)` → `FakeApiServer`: HTTPS on 127.0.0.1 (a fresh selfsigned ECDSA CA and serving
 *   certificate), so the real @kubernetes/client-node talks to it. Options: `version` (merged over a 1.32 /version).
 * - `kubeConfig(namespace = 'podvisor-system')`; `version`: the mutable /version body.
 * - An object store for every REST path of the forms
 *     /api/v1/[namespaces/{ns}/]{resource}[/{name}]
 *     /apis/{group}/{version}/[namespaces/{ns}/]{resource}[/{name}]
 *   ("namespaces" itself is cluster-scoped). Verbs: GET collection (a `<Kind>List` with `metadata.resourceVersion`;
 *   items without kind and apiVersion), GET collection `?watch=true` (see Watches), GET one (404 NotFound), POST
 *   (201; 409 AlreadyExists), PUT (200; 409 Conflict when `metadata.resourceVersion` is given and stale; 404 when
 *   absent), DELETE (200 with the object). Every write bumps one global resourceVersion (like etcd's revision) and sets
 *   `resourceVersion`, `uid`, `creationTimestamp`, and `generation` for webhook configurations; a Secret's `type`
 *   defaults to Opaque.
 * - Direct store access (no request recorded; watch events ARE sent): `put(resource, object, group?)` (create or
 *   replace; with a group: put('mutatingwebhookconfigurations', obj, 'admissionregistration.k8s.io/v1')),
 *   `remove(resource, namespace, name, group?)`, `get(resource, namespace, name, group?)` (a copy, or undefined),
 *   `list(resource, group?)`. `namespace` is '' for cluster-scoped objects.
 * - Watches: without resourceVersion (or "0") they first send ADDED for every object; with one they replay the
 *   changes after it, then stream. `compact()` forgets the history: a later watch from an older resourceVersion gets
 *   one ERROR 410 Expired and ends. `expireWatches(resource?)` sends that ERROR 410 to open watches and ends them (and
 *   compacts). `sendBookmark(resource?)` sends a BOOKMARK with the current resourceVersion to open watches that asked
 *   for `allowWatchBookmarks=true`. `closeWatches(resource?)` ends open watches cleanly. `openWatches(resource?)`
 *   counts them. `timeoutSeconds` is not honoured (the real apiserver's is: test/e2e/list-watch.test.ts).
 * - `route(method, pattern, handler)`: a custom route, tried before the store (latest first); `pattern` is a path
 *   or a RegExp on the path; the handler gets the `RecordedRequest` and returns `{ status, body? }`, or
 *   `undefined` to fall through. Returns a function that removes it. `failNext(method, pattern, status, times = 1)`.
 * - `requests`: every request received, in order (`{ method, path, query, body }`, body parsed from JSON);
 *   `requestsTo(method, pattern)`, `clearRequests()`. `status(code, reason, message, details?)` builds a Status.
 * - `close()`: ends watches, destroys connections, stops listening.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { generate } from 'selfsigned';

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly body: unknown;
}

export interface RouteAnswer {
  readonly status: number;
  readonly body?: unknown;
}
export type RouteHandler = (request: RecordedRequest) => RouteAnswer | undefined | Promise<RouteAnswer | undefined>;

export interface FakeApiServer {
  version: Record<string, string>;
  readonly requests: RecordedRequest[];
  kubeConfig(namespace?: string): KubeConfig;
  put(resource: string, object: KubeObject, group?: string): KubeObject;
  remove(resource: string, namespace: string, name: string, group?: string): boolean;
  get(resource: string, namespace: string, name: string, group?: string): KubeObject | undefined;
  list(resource: string, group?: string): KubeObject[];
  compact(): void;
  expireWatches(resource?: string): void;
  sendBookmark(resource?: string): void;
  closeWatches(resource?: string): void;
  openWatches(resource?: string): number;
  route(method: string, pattern: string | RegExp, handler: RouteHandler): () => void;
  failNext(method: string, pattern: string | RegExp, status: number, times?: number): () => void;
  requestsTo(method: string, pattern: string | RegExp): RecordedRequest[];
  clearRequests(): void;
  status(code: number, reason: string, message: string, details?: Record<string, unknown>): Record<string, unknown>;
  close(): Promise<void>;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type KubeObject = Record<string, any> & { metadata?: Record<string, any> };

/** Kinds of the resources the tests store; anything else gets a capitalised singular. */
const KINDS: Record<string, string> = {
  namespaces: 'Namespace',
  secrets: 'Secret',
  configmaps: 'ConfigMap',
  events: 'Event',
  pods: 'Pod',
  leases: 'Lease',
  mutatingwebhookconfigurations: 'MutatingWebhookConfiguration',
  validatingwebhookconfigurations: 'ValidatingWebhookConfiguration',
};
/** Resources whose `metadata.generation` the apiserver keeps (a spec it counts changes of); the others have none. */
const WITH_GENERATION = new Set(['mutatingwebhookconfigurations', 'validatingwebhookconfigurations']);
const CLUSTER_SCOPED = new Set(['namespaces', 'mutatingwebhookconfigurations', 'validatingwebhookconfigurations']);

function kindOf(resource: string): string {
  const known = KINDS[resource];
  if (known !== undefined) return known;
  const singular = resource.endsWith('s') ? resource.slice(0, -1) : resource;
  return singular.charAt(0).toUpperCase() + singular.slice(1);
}

interface ParsedPath {
  /** '' for the core group, else e.g. 'admissionregistration.k8s.io/v1'. */
  readonly groupVersion: string;
  readonly apiVersion: string;
  readonly resource: string;
  readonly namespace: string;
  readonly name: string | undefined;
}

function parsePath(path: string): ParsedPath | undefined {
  const parts = path.split('/').filter((p) => p !== '');
  let groupVersion: string;
  let rest: string[];
  if (parts[0] === 'api' && parts[1] === 'v1') {
    groupVersion = '';
    rest = parts.slice(2);
  } else if (parts[0] === 'apis' && parts.length >= 3) {
    groupVersion = `${parts[1]}/${parts[2]}`;
    rest = parts.slice(3);
  } else return undefined;
  let namespace = '';
  // /namespaces/{ns}/{resource}... is namespaced; /namespaces and /namespaces/{name} address Namespace objects.
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    namespace = rest[1] ?? '';
    rest = rest.slice(2);
  }
  const resource = rest[0];
  if (resource === undefined || rest.length > 2) return undefined;
  return { groupVersion, apiVersion: groupVersion === '' ? 'v1' : groupVersion, resource, namespace, name: rest[1] };
}

function storeKey(groupVersion: string, resource: string): string {
  return `${groupVersion}|${resource}`;
}

interface Change {
  readonly rv: number;
  readonly key: string;
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly namespace: string;
  readonly object: KubeObject;
}

interface OpenWatch {
  readonly key: string;
  readonly namespace: string;
  readonly bookmarks: boolean;
  readonly kind: string;
  readonly apiVersion: string;
  readonly response: ServerResponse;
}

function clone<T>(value: T): T {
  return structuredClone(value);
}

function withoutMetadata(object: KubeObject): KubeObject {
  const { metadata: _metadata, status: _status, ...rest } = object;
  return rest;
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startFakeApiServer(options: { version?: Record<string, string> } = {}): Promise<FakeApiServer> {
  const now = Date.now();
  const common = { algorithm: 'sha256', keyType: 'ec', curve: 'P-256' } as const;
  const caPems = await generate([{ name: 'commonName', value: 'fake-apiserver-ca' }], {
    ...common,
    notBeforeDate: new Date(now - 60_000),
    notAfterDate: new Date(now + 86_400_000),
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  const leaf = await generate([{ name: 'commonName', value: 'kube-apiserver' }], {
    ...common,
    notBeforeDate: new Date(now - 60_000),
    notAfterDate: new Date(now + 86_400_000),
    ca: { key: caPems.private, cert: caPems.cert },
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 7 as const, ip: '127.0.0.1' }, { type: 2 as const, value: 'localhost' }] },
    ],
  });

  let revision = 1;
  /** storeKey → "namespace/name" → object. */
  const stores = new Map<string, Map<string, KubeObject>>();
  const changes: Change[] = [];
  /** Watches from a resourceVersion below this are too old (410). */
  let compactedBelow = 0;
  const watches = new Set<OpenWatch>();
  const routes: { method: string; pattern: string | RegExp; handler: RouteHandler }[] = [];
  const requests: RecordedRequest[] = [];

  const storeFor = (key: string): Map<string, KubeObject> => {
    let store = stores.get(key);
    if (store === undefined) stores.set(key, (store = new Map()));
    return store;
  };
  const matches = (pattern: string | RegExp, path: string): boolean => (typeof pattern === 'string' ? pattern === path : pattern.test(path));

  function status(code: number, reason: string, message: string, details?: Record<string, unknown>): Record<string, unknown> {
    return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details === undefined ? {} : { details }), code };
  }
  const groupOf = (gv: string): string => (gv === '' ? '' : (gv.split('/')[0] ?? ''));
  const qualified = (p: { groupVersion: string; resource: string }): string => (groupOf(p.groupVersion) === '' ? p.resource : `${p.resource}.${groupOf(p.groupVersion)}`);

  function emit(change: Change): void {
    changes.push(change);
    for (const watch of watches) {
      if (watch.key !== change.key || (watch.namespace !== '' && watch.namespace !== change.namespace)) continue;
      watch.response.write(`${JSON.stringify({ type: change.type, object: change.object })}\n`);
    }
  }

  /** Stores `object` (a new revision), emitting the watch event. */
  function write(p: { groupVersion: string; apiVersion: string; resource: string }, namespace: string, object: KubeObject, previous: KubeObject | undefined): KubeObject {
    const key = storeKey(p.groupVersion, p.resource);
    revision += 1;
    const metadata = { ...(object.metadata ?? {}) };
    if (namespace !== '') metadata['namespace'] = namespace;
    else delete metadata['namespace'];
    metadata['resourceVersion'] = String(revision);
    metadata['uid'] = previous?.metadata?.['uid'] ?? randomUUID();
    metadata['creationTimestamp'] = previous?.metadata?.['creationTimestamp'] ?? new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    if (WITH_GENERATION.has(p.resource)) {
      const changed = previous === undefined || JSON.stringify(withoutMetadata(previous)) !== JSON.stringify(withoutMetadata(object));
      const generation = Number(previous?.metadata?.['generation'] ?? 0);
      metadata['generation'] = previous === undefined ? 1 : changed ? generation + 1 : generation;
    }
    const defaults = p.resource === 'secrets' && object['type'] === undefined ? { type: 'Opaque' } : {};
    const stored: KubeObject = { ...object, ...defaults, apiVersion: p.apiVersion, kind: kindOf(p.resource), metadata };
    storeFor(key).set(`${namespace}/${String(metadata['name'])}`, stored);
    emit({ rv: revision, key, type: previous === undefined ? 'ADDED' : 'MODIFIED', namespace, object: clone(stored) });
    return clone(stored);
  }

  function removeObject(p: { groupVersion: string; resource: string }, namespace: string, name: string): KubeObject | undefined {
    const key = storeKey(p.groupVersion, p.resource);
    const store = storeFor(key);
    const previous = store.get(`${namespace}/${name}`);
    if (previous === undefined) return undefined;
    store.delete(`${namespace}/${name}`);
    revision += 1;
    const object = { ...previous, metadata: { ...previous.metadata, resourceVersion: String(revision) } };
    emit({ rv: revision, key, type: 'DELETED', namespace, object: clone(object) });
    return clone(object);
  }

  const parseGroup = (resource: string, group: string | undefined): ParsedPath => {
    const groupVersion = group ?? '';
    return { groupVersion, apiVersion: groupVersion === '' ? 'v1' : groupVersion, resource, namespace: '', name: undefined };
  };

  function startWatch(p: ParsedPath, request: RecordedRequest, response: ServerResponse): void {
    const key = storeKey(p.groupVersion, p.resource);
    const kind = kindOf(p.resource);
    response.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked', 'Cache-Control': 'no-cache, private' });
    // The real apiserver sends the headers at once; client-node's watch() resolves only when they arrive.
    response.flushHeaders();
    const from = request.query['resourceVersion'];
    if (from !== undefined && from !== '' && from !== '0' && Number(from) < compactedBelow) {
      const message = `too old resource version: ${from} (${compactedBelow})`;
      response.end(`${JSON.stringify({ type: 'ERROR', object: status(410, 'Expired', message) })}\n`);
      return;
    }
    if (from === undefined || from === '' || from === '0') {
      for (const object of storeFor(key).values()) {
        if (p.namespace !== '' && object.metadata?.['namespace'] !== p.namespace) continue;
        response.write(`${JSON.stringify({ type: 'ADDED', object })}\n`);
      }
    } else {
      for (const change of changes) {
        if (change.rv > Number(from) && change.key === key && (p.namespace === '' || change.namespace === p.namespace)) {
          response.write(`${JSON.stringify({ type: change.type, object: change.object })}\n`);
        }
      }
    }
    const watch: OpenWatch = { key, namespace: p.namespace, bookmarks: request.query['allowWatchBookmarks'] === 'true', kind, apiVersion: p.apiVersion, response };
    watches.add(watch);
    response.on('close', () => watches.delete(watch));
  }

  function endWatch(watch: OpenWatch, last?: unknown): void {
    watches.delete(watch);
    if (last !== undefined) watch.response.write(`${JSON.stringify(last)}\n`);
    watch.response.end();
  }

  const watchesOf = (resource: string | undefined): OpenWatch[] => [...watches].filter((w) => resource === undefined || w.key.endsWith(`|${resource}`));

  function handleStore(p: ParsedPath, request: RecordedRequest): RouteAnswer {
    const key = storeKey(p.groupVersion, p.resource);
    const store = storeFor(key);
    const namespace = CLUSTER_SCOPED.has(p.resource) ? '' : p.namespace;
    // Like the apiserver's: no `group` for the core group.
    const details = (name: string | undefined): Record<string, unknown> => ({ ...(name === undefined ? {} : { name }), ...(groupOf(p.groupVersion) === '' ? {} : { group: groupOf(p.groupVersion) }), kind: p.resource });
    const notFound = (name: string): RouteAnswer => ({ status: 404, body: status(404, 'NotFound', `${qualified(p)} "${name}" not found`, details(name)) });
    const conflict = (name: string): RouteAnswer => ({
      status: 409,
      body: status(409, 'Conflict', `Operation cannot be fulfilled on ${qualified(p)} "${name}": the object has been modified; please apply your changes to the latest version and try again`, details(name)),
    });

    if (request.method === 'GET' && p.name === undefined) {
      const items = [...store.values()]
        .filter((o) => namespace === '' || o.metadata?.['namespace'] === namespace)
        .map((o) => {
          // Items of a real list carry no kind/apiVersion.
          const { kind: _kind, apiVersion: _apiVersion, ...rest } = o;
          return rest;
        });
      return { status: 200, body: { kind: `${kindOf(p.resource)}List`, apiVersion: p.apiVersion, metadata: { resourceVersion: String(revision) }, items } };
    }
    if (request.method === 'GET') {
      const object = store.get(`${namespace}/${p.name}`);
      return object === undefined ? notFound(p.name ?? '') : { status: 200, body: object };
    }
    if (request.method === 'POST' && p.name === undefined) {
      const object = request.body as KubeObject;
      const name = object?.metadata?.['name'];
      if (typeof name !== 'string') return { status: 422, body: status(422, 'Invalid', `${kindOf(p.resource)} "" is invalid: metadata.name: Required value: name or generateName is required`) };
      if (store.has(`${namespace}/${name}`)) return { status: 409, body: status(409, 'AlreadyExists', `${qualified(p)} "${name}" already exists`, details(name)) };
      const { resourceVersion: _rv, ...metadata } = object.metadata ?? {};
      return { status: 201, body: write(p, namespace, { ...object, metadata: { ...metadata, name } }, undefined) };
    }
    const name = p.name;
    if (name === undefined) return { status: 405, body: status(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource') };
    const previous = store.get(`${namespace}/${name}`);
    if (request.method === 'PUT') {
      if (previous === undefined) return notFound(name);
      const object = request.body as KubeObject;
      const rv = object?.metadata?.['resourceVersion'];
      if (rv !== undefined && rv !== previous.metadata?.['resourceVersion']) return conflict(name);
      return { status: 200, body: write(p, namespace, object, previous) };
    }
    if (request.method === 'DELETE') {
      const removed = removeObject(p, namespace, name);
      return removed === undefined ? notFound(name) : { status: 200, body: removed };
    }
    return { status: 405, body: status(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource') };
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    const rawBody = await readBody(req);
    let body: unknown = rawBody;
    try {
      body = rawBody === '' ? undefined : JSON.parse(rawBody);
    } catch {
      // keep the text
    }
    const recorded: RecordedRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      body,
    };
    requests.push(recorded);
    const answer = (a: RouteAnswer): void => {
      res.writeHead(a.status, { 'Content-Type': 'application/json' });
      res.end(a.body === undefined ? '' : JSON.stringify(a.body));
    };
    for (const route of [...routes].reverse()) {
      if (route.method !== recorded.method || !matches(route.pattern, recorded.path)) continue;
      const result = await route.handler(recorded);
      if (result !== undefined) return answer(result);
    }
    if (recorded.path === '/version' && recorded.method === 'GET') return answer({ status: 200, body: api.version });
    const parsed = parsePath(recorded.path);
    if (parsed === undefined) return answer({ status: 404, body: status(404, 'NotFound', 'the server could not find the requested resource') });
    const p = CLUSTER_SCOPED.has(parsed.resource) ? { ...parsed, namespace: '' } : parsed;
    if (recorded.method === 'GET' && p.name === undefined && recorded.query['watch'] === 'true') return startWatch(p, recorded, res);
    return answer(handleStore(p, recorded));
  }

  const server: Server = createServer({ cert: leaf.cert, key: leaf.private }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      res.writeHead(500, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(status(500, 'InternalError', (err as Error).message)));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const url = `https://127.0.0.1:${port}`;

  const api: FakeApiServer = {
    version: {
      major: '1',
      minor: '32',
      gitVersion: 'v1.32.5',
      gitCommit: '0000000000000000000000000000000000000000',
      gitTreeState: 'clean',
      buildDate: '2025-05-15T00:00:00Z',
      goVersion: 'go1.23.8',
      compiler: 'gc',
      platform: 'linux/amd64',
      ...options.version,
    },
    requests,
    kubeConfig(namespace = 'podvisor-system') {
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: 'fake', server: url, caData: Buffer.from(caPems.cert).toString('base64'), skipTLSVerify: false }],
        users: [{ name: 'fake', token: 'fake-token' }],
        contexts: [{ name: 'fake', cluster: 'fake', user: 'fake', namespace }],
        currentContext: 'fake',
      });
      return kc;
    },
    put(resource, object, group) {
      const p = parseGroup(resource, group);
      const namespace = CLUSTER_SCOPED.has(resource) ? '' : String(object.metadata?.['namespace'] ?? '');
      const previous = storeFor(storeKey(p.groupVersion, resource)).get(`${namespace}/${String(object.metadata?.['name'])}`);
      return write(p, namespace, clone(object), previous);
    },
    remove(resource, namespace, name, group) {
      return removeObject(parseGroup(resource, group), namespace, name) !== undefined;
    },
    get(resource, namespace, name, group) {
      const object = storeFor(storeKey(group ?? '', resource)).get(`${namespace}/${name}`);
      return object === undefined ? undefined : clone(object);
    },
    list(resource, group) {
      return [...storeFor(storeKey(group ?? '', resource)).values()].map(clone);
    },
    compact() {
      compactedBelow = revision + 1;
      changes.length = 0;
    },
    expireWatches(resource) {
      api.compact();
      for (const watch of watchesOf(resource)) {
        endWatch(watch, { type: 'ERROR', object: status(410, 'Expired', `The resourceVersion for the provided watch is too old.`) });
      }
    },
    sendBookmark(resource) {
      for (const watch of watchesOf(resource)) {
        if (!watch.bookmarks) continue;
        watch.response.write(`${JSON.stringify({ type: 'BOOKMARK', object: { kind: watch.kind, apiVersion: watch.apiVersion, metadata: { resourceVersion: String(revision) } } })}\n`);
      }
    },
    closeWatches(resource) {
      for (const watch of watchesOf(resource)) endWatch(watch);
    },
    openWatches(resource) {
      return watchesOf(resource).length;
    },
    route(method, pattern, handler) {
      const entry = { method, pattern, handler };
      routes.push(entry);
      return () => {
        const index = routes.indexOf(entry);
        if (index !== -1) routes.splice(index, 1);
      };
    },
    failNext(method, pattern, code, times = 1) {
      let left = times;
      const remove = api.route(method, pattern, () => {
        if (left <= 0) return undefined;
        left -= 1;
        if (left === 0) remove();
        return { status: code, body: status(code, code === 409 ? 'Conflict' : code >= 500 ? 'InternalError' : 'BadRequest', `injected failure ${code}`) };
      });
      return remove;
    },
    requestsTo(method, pattern) {
      return requests.filter((r) => r.method === method && matches(pattern, r.path));
    },
    clearRequests() {
      requests.length = 0;
    },
    status,
    async close() {
      for (const watch of [...watches]) endWatch(watch);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
  return api;
}
