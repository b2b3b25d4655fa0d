import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { findExemption } from '../src/policy/scope.js';
import { selectPolicy } from '../src/policy/select.js';
import { findWorkloadKind } from '../src/workload/kinds.js';
import { matchesSelector } from '../src/policy/selector.js';

const config = parseConfig({
  policy: {
    exemptions: { namespaces: ['kube-system', 'ci'], usernames: ['system:serviceaccount:ops:breakglass'], groups: ['platform-admins'] },
    default: { name: 'cluster', enforce: { level: 'baseline' } },
    namespaces: [
      { name: 'team-a', match: { selector: { matchLabels: { team: 'a' } } } },
      { name: 'team-a-prod', match: { selector: { matchLabels: { team: 'a', env: 'prod' } } } },
      { name: 'prod-first', match: { selector: { matchLabels: { env: 'prod' }, matchExpressions: [{ key: 'tier', operator: 'Exists' }] } } },
      { name: 'prod-second', match: { selector: { matchLabels: { env: 'prod', tier: 'web' } } } },
      { name: 'monitoring', match: { names: ['observability'], selector: { matchLabels: { never: 'matches' } } } },
      { name: 'not-sandbox', match: { selector: { matchExpressions: [{ key: 'sandbox', operator: 'DoesNotExist' }, { key: 'team', operator: 'NotIn', values: ['a', 'b'] }] } } },
    ],
  },
});
const { policy } = config;

describe('policy selection: most specific wins', () => {
  it.each<[string, Record<string, string>, string, string]>([
    ['observability', { team: 'a', env: 'prod' }, 'monitoring', 'a name beats every selector'],
    ['shop', { team: 'a' }, 'team-a', 'one selector matches'],
    ['shop', { team: 'a', env: 'prod' }, 'team-a-prod', 'two requirements beat one'],
    ['web', { env: 'prod', tier: 'web', team: 'b' }, 'prod-first', 'equal specificity (2 vs 2): the one listed first'],
    ['scratch', { team: 'c' }, 'not-sandbox', 'NotIn and DoesNotExist'],
    ['scratch', { team: 'b' }, 'cluster', 'nothing matches: the cluster default'],
    ['scratch', { sandbox: 'x' }, 'cluster', 'DoesNotExist fails'],
  ])('%s %j → %s (%s)', (namespace, labels, expected) => {
    expect(selectPolicy(policy, namespace, labels).name).toBe(expected);
  });
});

describe('exemptions from userInfo and namespace', () => {
  it.each([
    ['kube-system', { username: 'alice' }, { by: 'namespace', value: 'kube-system' }],
    ['ci', { username: 'alice' }, { by: 'namespace', value: 'ci' }],
    ['podvisor-system', { username: 'alice' }, { by: 'namespace', value: 'podvisor-system' }],
    ['web', { username: 'system:serviceaccount:ops:breakglass' }, { by: 'username', value: 'system:serviceaccount:ops:breakglass' }],
    ['web', { username: 'bob', groups: ['dev', 'platform-admins'] }, { by: 'group', value: 'platform-admins' }],
    ['web', { username: 'bob', groups: ['dev'] }, undefined],
    ['web', undefined, undefined],
  ])('%s %j', (namespace, userInfo, expected) => {
    expect(findExemption(config, namespace, findWorkloadKind('', 'v1', 'Pod')!, userInfo)).toEqual(expected);
  });
});

describe('label selectors', () => {
  it('empty selector matches everything; In needs the key', () => {
    expect(matchesSelector({}, {})).toBe(true);
    expect(matchesSelector({ matchExpressions: [{ key: 'env', operator: 'In', values: ['prod'] }] }, {})).toBe(false);
    expect(matchesSelector({ matchExpressions: [{ key: 'env', operator: 'In', values: ['prod'] }] }, { env: 'prod' })).toBe(true);
    expect(matchesSelector({ matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }] }, {})).toBe(true);
  });
});
