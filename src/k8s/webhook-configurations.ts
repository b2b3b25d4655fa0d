import type {
  MatchCondition,
  MutatingWebhook,
  MutatingWebhookConfiguration,
  RuleWithOperations,
  ValidatingWebhook,
  ValidatingWebhookConfiguration,
} from 'kubernetes-types/admissionregistration/v1.js';
import type { LabelSelector } from 'kubernetes-types/meta/v1.js';
import { EXCLUDE_LABEL } from '../annotations.js';
import type { Config } from '../config/schema.js';
import type { Feature } from '../features/feature.js';
import { FEATURES } from '../features/index.js';
import { canDeny } from '../policy/select.js';
import { JUDGED_REQUESTS } from '../policy/judged-requests.js';
import { exemptNamespaces } from '../policy/scope.js';
import { WORKLOAD_KINDS } from '../workload/kinds.js';
import { COMPONENT, PATH, SERVICE_PORT, WEBHOOK_CONFIGURATION_NAME, WEBHOOK_NAME, namespaceWebhookName } from './names.js';

export interface WebhookSettings {
  readonly config: Config;
  /** base64 of the PEM bundle the apiserver trusts; undefined leaves caBundle unset (cert-manager's cainjector fills it). */
  readonly caBundle: string | undefined;
  /** Register the validating webhook too (only when this build serves POST /validate). */
  readonly validating: boolean;
  /**
   * Dev mode (`--webhook-url`): the apiserver calls this base URL (`<url>/mutate`, `<url>/validate`) instead of the
   * Service, so podvisor can run outside the cluster. Everything else in the configurations stays the in-cluster one.
   */
  readonly webhookUrl?: URL | undefined;
}

/** Namespaces never mutated: kube-system and kube-node-lease always, podvisor's own, and `excludedNamespaces`. */
function excludedNamespaces(config: Config): string[] {
  return [...new Set(['kube-system', 'kube-node-lease', config.namespace, ...config.excludedNamespaces])].sort();
}

/** Namespaces are selected by the immutable `kubernetes.io/metadata.name` label, set on every namespace since 1.22. */
const METADATA_NAME = 'kubernetes.io/metadata.name';

/** Mutation scope: not an excluded namespace and not labelled `podvisor.io/exclude=true` (owners may opt out of injection). */
function mutationNamespaceSelector(config: Config, extra: LabelSelector['matchExpressions'] = []): LabelSelector {
  return {
    matchExpressions: [
      { key: METADATA_NAME, operator: 'NotIn', values: excludedNamespaces(config) },
      { key: EXCLUDE_LABEL, operator: 'NotIn', values: ['true'] },
      ...extra,
    ],
  };
}

/** objectSelector sees labels only (kubernetes-rules.md §2): it can exclude, opting in by annotation needs CEL. */
const MUTATION_OBJECT_SELECTOR: LabelSelector = { matchExpressions: [{ key: EXCLUDE_LABEL, operator: 'NotIn', values: ['true'] }] };

/** kubernetes-types 1.30 lacks `resources` and `scope` on RuleWithOperations (they are in admissionregistration/v1). */
type Rule = RuleWithOperations & { resources: string[]; scope: 'Namespaced' | 'Cluster' | '*' };

/** One rule per API group and operation set, resources in WORKLOAD_KINDS order. */
function rulesOf(entries: readonly { group: string; resource: string; operations: readonly string[] }[]): Rule[] {
  const rules: Rule[] = [];
  for (const { group, resource, operations } of entries) {
    const same = rules.find((r) => r.apiGroups?.[0] === group && r.operations?.join() === operations.join());
    if (same !== undefined) same.resources.push(resource);
    else rules.push({ apiGroups: [group], apiVersions: ['v1'], operations: [...operations] as Rule['operations'], resources: [resource], scope: 'Namespaced' });
  }
  return rules;
}

/** What podvisor mutates, on the operations of WORKLOAD_KINDS (Pods on CREATE only: a Pod's spec is immutable, §5.7). */
export const MUTATING_RULES: Rule[] = rulesOf(WORKLOAD_KINDS.map((k) => ({ group: k.group, resource: k.resource, operations: k.operations })));

/** Exactly the requests the policy judges (src/policy/judged-requests.ts). */
export const VALIDATING_RULES: Rule[] = rulesOf(
  JUDGED_REQUESTS.map((r) => ({ group: r.kind.group, resource: r.subResource === undefined ? r.kind.resource : `${r.kind.resource}/${r.subResource}`, operations: r.operations })),
);

/**
 * CEL: `<path>.annotations` has a `podvisor.io/` key. Each step is guarded with has(): on Kubernetes objects a missing
 * field is an error, not null, and a CEL error would apply failurePolicy.
 */
function hasPodvisorAnnotation(path: readonly string[]): string {
  const guards: string[] = [];
  for (let i = 2; i <= path.length; i++) guards.push(`has(${path.slice(0, i).join('.')})`);
  const annotations = `${path.join('.')}.annotations`;
  return `(${[...guards, `has(${annotations})`, `${annotations}.exists(k, k.startsWith('podvisor.io/'))`].join(' && ')})`;
}

const POD_META = ['object', 'metadata'];
const TEMPLATE_META = ['object', 'spec', 'template', 'metadata'];
const CRONJOB_TEMPLATE_META = ['object', 'spec', 'jobTemplate', 'spec', 'template', 'metadata'];

/**
 * The object carries a `podvisor.io/` annotation where the pipeline reads it: a Pod's own metadata; for a workload the
 * pod template's, or the workload's own (the pipeline's fallback); for a CronJob the job template's pod template.
 */
export const OPTED_IN_BY_ANNOTATION =
  `request.resource.resource == 'pods' ? ${hasPodvisorAnnotation(POD_META)} : ` +
  `request.resource.resource == 'cronjobs' ? (${hasPodvisorAnnotation(POD_META)} || ${hasPodvisorAnnotation(CRONJOB_TEMPLATE_META)}) : ` +
  `(${hasPodvisorAnnotation(POD_META)} || ${hasPodvisorAnnotation(TEMPLATE_META)})`;

function settingIsOn(feature: Feature, raw: boolean | string | undefined): boolean {
  return raw !== undefined && feature.parse(String(raw)).kind === 'on';
}

/** True when a config cluster default turns a feature on: then every object may need podvisor, no CEL filter applies. */
export function clusterDefaultOn(config: Config): boolean {
  return FEATURES.some((f) => settingIsOn(f, (config.defaults as Record<string, boolean | string | undefined>)[f.name]));
}

/** Namespaces whose config entry turns a feature on (by setting or by configured label): sent whatever the annotations. */
export function configuredNamespaceDefaults(config: Config): string[] {
  const names: string[] = [];
  for (const [name, entry] of Object.entries(config.namespaces)) {
    const settings = entry as Record<string, unknown> & { labels?: Record<string, string> };
    if (FEATURES.some((f) => settingIsOn(f, settings[f.name] as boolean | string | undefined) || settingIsOn(f, settings.labels?.[f.annotation]))) names.push(name);
  }
  return names.sort();
}

/** The opt-in matchConditions of `mutate.podvisor.io`; none when a cluster default is on. */
export function optInConditions(config: Config): MatchCondition[] {
  if (clusterDefaultOn(config)) return [];
  const namespaces = configuredNamespaceDefaults(config);
  const expression =
    namespaces.length === 0 ? OPTED_IN_BY_ANNOTATION : `request.namespace in ${JSON.stringify(namespaces).replaceAll('"', "'")} || (${OPTED_IN_BY_ANNOTATION})`;
  return [{ name: 'opted-in', expression }];
}

function clientConfig(settings: WebhookSettings, path: string): MutatingWebhook['clientConfig'] {
  const { config, caBundle, webhookUrl } = settings;
  const target = webhookUrl === undefined ? { service: { name: config.service, namespace: config.namespace, path, port: SERVICE_PORT } } : { url: webhookEndpoint(webhookUrl, path) };
  return { ...target, ...(caBundle === undefined ? {} : { caBundle }) };
}

/** `https://host:port[/prefix]` + `/mutate`: the base URL's path (without a trailing slash) prefixes the route. */
export function webhookEndpoint(base: URL, path: string): string {
  return `${base.origin}${base.pathname.replace(/\/+$/, '')}${path}`;
}

/**
 * Parses `--webhook-url`. The apiserver accepts only `https://` URLs without user info, query or fragment
 * (admissionregistration/v1 WebhookClientConfig.url); the error names what is wrong.
 */
export function parseWebhookUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`not a URL: ${JSON.stringify(text)} (expected https://HOST:PORT)`);
  }
  if (url.protocol !== 'https:') throw new Error(`${text}: the apiserver calls webhooks over https only (expected https://HOST:PORT)`);
  if (url.username !== '' || url.password !== '') throw new Error(`${text}: user info is not allowed in a webhook URL`);
  if (url.search !== '' || url.hash !== '') throw new Error(`${text}: query and fragment are not allowed in a webhook URL`);
  return url;
}

const LABELS = { 'app.kubernetes.io/name': 'podvisor', 'app.kubernetes.io/managed-by': COMPONENT };

function mutatingWebhook(settings: WebhookSettings, name: string, selector: LabelSelector, matchConditions: MatchCondition[]): MutatingWebhook {
  const { config } = settings;
  return {
    name,
    admissionReviewVersions: ['v1'],
    clientConfig: clientConfig(settings, PATH.mutate),
    rules: MUTATING_RULES,
    failurePolicy: config.webhook.failurePolicy.mutating,
    matchPolicy: 'Equivalent',
    namespaceSelector: selector,
    objectSelector: MUTATION_OBJECT_SELECTOR,
    ...(matchConditions.length > 0 ? { matchConditions } : {}),
    // podvisor writes Events about its answers, never for a dry run.
    sideEffects: 'NoneOnDryRun',
    timeoutSeconds: config.webhook.timeoutSeconds,
    // A later webhook may add a container; podvisor is then called once more (kubernetes-rules.md §3).
    reinvocationPolicy: 'IfNeeded',
  };
}

/**
 * `mutate.podvisor.io` for objects opted in by annotation, plus one entry per feature for namespaces labelled with that
 * feature's key (`podvisor.io/lxcfs=enabled`): namespaceSelector and matchConditions are ANDed, so "namespace label
 * OR object annotation" needs separate entries (kubernetes-rules.md §2). An object matching several is sent several
 * times; the pipeline is idempotent, so the second pass returns no patch.
 */
export function mutatingWebhookConfiguration(settings: WebhookSettings): MutatingWebhookConfiguration {
  const { config } = settings;
  const webhooks = [mutatingWebhook(settings, WEBHOOK_NAME.mutate, mutationNamespaceSelector(config), optInConditions(config))];
  if (!clusterDefaultOn(config)) {
    for (const feature of FEATURES) {
      webhooks.push(mutatingWebhook(settings, namespaceWebhookName(feature.name), mutationNamespaceSelector(config, [{ key: feature.annotation, operator: 'Exists' }]), []));
    }
  }
  return { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name: WEBHOOK_CONFIGURATION_NAME, labels: LABELS }, webhooks };
}

/**
 * `validate.podvisor.io`: scoped by the policy alone (src/policy/scope.ts). Every namespace but the exempt ones, by
 * their immutable name label; no objectSelector and no namespace label, since workload owners and namespace admins set
 * those; nothing from `excludedNamespaces` (mutation scope). failurePolicy `Fail` unless configured otherwise (the
 * emergency switch): a static render (the cert-manager overlay) must not drift fail-open when a denying policy is
 * added to the ConfigMap later, and an unreachable podvisor must not be a way round the policy.
 */
export function validatingWebhookConfiguration(settings: WebhookSettings): ValidatingWebhookConfiguration {
  const { config } = settings;
  const webhook: ValidatingWebhook = {
    name: WEBHOOK_NAME.validate,
    admissionReviewVersions: ['v1'],
    clientConfig: clientConfig(settings, PATH.validate),
    rules: VALIDATING_RULES,
    failurePolicy: config.webhook.failurePolicy.validating,
    matchPolicy: 'Equivalent',
    namespaceSelector: { matchExpressions: [{ key: METADATA_NAME, operator: 'NotIn', values: exemptNamespaces(config) }] },
    matchConditions: [{ name: 'changes-what-runs', expression: CHANGES_WHAT_RUNS }],
    // Denials become Events on the owning object, never for a dry run.
    sideEffects: 'NoneOnDryRun',
    timeoutSeconds: config.webhook.timeoutSeconds,
  };
  return { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingWebhookConfiguration', metadata: { name: WEBHOOK_CONFIGURATION_NAME, labels: LABELS }, webhooks: [webhook] };
}

/**
 * A Pod UPDATE is sent only when it changes the spec or the annotations: finalizer, label and ownerReference updates
 * (namespace deletion, controllers adopting pods) never wait for podvisor under failurePolicy Fail. Everything else
 * the rules match is always sent. `has()` guards a missing annotations map: on Kubernetes objects it is an error.
 */
export const CHANGES_WHAT_RUNS =
  "request.operation != 'UPDATE' || request.resource.resource != 'pods' || request.subResource != '' || " +
  'object.spec != oldObject.spec || has(object.metadata.annotations) != has(oldObject.metadata.annotations) || ' +
  '(has(object.metadata.annotations) && object.metadata.annotations != oldObject.metadata.annotations)';

/**
 * The operator's emergency switch is `webhook.failurePolicy.validating: Ignore`; while it is set and a policy can
 * deny, an unreachable podvisor admits what the policy forbids. Said once at start and at every config reload.
 */
export function failOpenWarning(config: Config): string | undefined {
  if (config.webhook.failurePolicy.validating !== 'Ignore') return undefined;
  const denying = [config.policy.default, ...config.policy.namespaces].filter(canDeny).map((p) => p.name);
  if (denying.length === 0) return undefined;
  return `webhook.failurePolicy.validating is Ignore while policies ${denying.join(', ')} can deny: whenever podvisor is unreachable, what they forbid is admitted`;
}
