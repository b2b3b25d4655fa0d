import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import jsonpatch from 'fast-json-patch';
import { constantValue, diff, encodePatch, pointer } from '../src/admission/patch.js';
import { config, fixture, run } from './support/harness.js';

const KUBECTL = '/usr/bin/kubectl';

describe('patch', () => {
  it('escapes "/" as ~1 and "~" as ~0 (RFC 6901)', () => {
    expect(pointer(['metadata', 'annotations', 'podvisor.io/status'])).toBe('/metadata/annotations/podvisor.io~1status');
    expect(pointer(['a~b/c'])).toBe('/a~0b~1c');
    const ops = diff({ metadata: { annotations: { 'a/b': 'x' } } }, { metadata: { annotations: { 'a/b': 'x', 'c/d~e': 'y' } } }, ['spec', 'template']);
    expect(ops).toEqual([{ op: 'add', path: '/spec/template/metadata/annotations/c~1d~0e', value: 'y' }]);
  });

  it('adds single annotation keys when the map exists, never replaces it', () => {
    const r = run(fixture('06-pod-annotation-keys-slashes.yaml'));
    // 06 has many "/" keys; whatever podvisor adds, no op may replace or add the whole map.
    expect(r.outcome.patch.filter((op) => op.path === '/metadata/annotations')).toEqual([]);
    const pod = run(fixture('01-pod-nginx-lxcfs.yaml'));
    expect(pod.outcome.patch.filter((op) => op.path.startsWith('/metadata'))).toEqual([
      { op: 'add', path: '/metadata/annotations/podvisor.io~1status', value: expect.any(String) },
    ]);
  });

  it('never replaces the whole volumes or containers list', () => {
    for (const name of ['01-pod-nginx-lxcfs.yaml', '02-deployment-java-sidecar.yaml', '09-statefulset-postgres.yaml', '10-cronjob-backup.yaml']) {
      for (const op of run(fixture(name)).outcome.patch) {
        expect(op.path).not.toMatch(/\/(volumes|containers|initContainers)$/);
        expect(op.op).not.toBe('replace');
      }
    }
  });

  it('applying the patch to the original gives exactly the mutated object (fast-json-patch validates each op)', () => {
    for (const name of ['01-pod-nginx-lxcfs.yaml', '03-pod-existing-proc-meminfo.yaml', '04-pod-volume-name-collision.yaml', '09-statefulset-postgres.yaml']) {
      const original = fixture(name);
      const { outcome, result } = run(original);
      expect(jsonpatch.validate(outcome.patch, structuredClone(original))).toBeUndefined();
      expect(jsonpatch.applyPatch(structuredClone(original), outcome.patch, true, false).newDocument).toEqual(result);
    }
  });

  it('keys named like Object.prototype members (valid label and annotation keys) are diffed as the own keys they are', () => {
    // (`__proto__` too, but fast-json-patch refuses to apply any patch that names it.)
    for (const key of ['toString', 'constructor', 'hasOwnProperty', 'valueOf']) {
      const withKey = JSON.parse(`{"labels": {"${key}": "x"}}`) as Record<string, unknown>;
      const without = { labels: {} };
      for (const [a, b] of [[withKey, without], [without, withKey]] as const) {
        const ops = diff(a, b, []);
        expect(jsonpatch.applyPatch(structuredClone(a), structuredClone(ops), true, false).newDocument, key).toEqual(b);
      }
    }
  });

  it('property: applying diff(a, b) to a with fast-json-patch (validating every op) gives exactly b', () => {
    const doc = fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 4 }), { maxKeys: 6 });
    fc.assert(
      fc.property(doc, doc, (a, b) => {
        const ops = diff(a, b, []);
        const applied = jsonpatch.applyPatch(structuredClone(a), structuredClone(ops), true, false).newDocument;
        expect(applied).toEqual(b);
        expect(diff(b, b, [])).toEqual([]);
      }),
      { numRuns: 2000 },
    );
  });

  it('arrays: appends in ascending order, removals from the end backwards; undefined members count as absent', () => {
    expect(diff({ l: [1, 2, 3, 4] }, { l: [1, 9] }, [])).toEqual([
      { op: 'replace', path: '/l/1', value: 9 },
      { op: 'remove', path: '/l/3' },
      { op: 'remove', path: '/l/2' },
    ]);
    expect(diff({ l: [1] }, { l: [1, 2, 3] }, ['spec'])).toEqual([
      { op: 'add', path: '/spec/l/1', value: 2 },
      { op: 'add', path: '/spec/l/2', value: 3 },
    ]);
    expect(diff({ a: 1, u: undefined }, { a: 1, b: undefined }, [])).toEqual([]);
    expect(diff({ m: null }, { m: { k: 'v' } }, [])).toEqual([{ op: 'replace', path: '/m', value: { k: 'v' } }]);
  });

  it('encodes the patch as base64 of the JSON array', () => {
    const ops = [{ op: 'add' as const, path: '/a', value: 1 }];
    expect(JSON.parse(Buffer.from(encodePatch(ops), 'base64').toString())).toEqual(ops);
  });

  it('property: the patch of any diff, constant values among its added ones, is the base64 of JSON.stringify of it', () => {
    const json = fc.jsonValue({ maxDepth: 3 });
    const constant = constantValue({ name: 'podvisor-lxcfs-proc-cpuinfo', hostPath: { path: '/var/lib/lxc/lxcfs/proc/cpuinfo', type: 'File' } });
    const withConstants = fc.oneof(json, fc.constant(constant), fc.array(fc.oneof(json, fc.constant(constant)), { maxLength: 4 }));
    const doc = fc.dictionary(fc.string({ maxLength: 4 }), withConstants, { maxKeys: 5 });
    fc.assert(
      fc.property(doc, doc, (a, b) => {
        const ops = diff(a, b, ['spec']);
        return Buffer.from(encodePatch(ops), 'base64').toString('utf8') === JSON.stringify(ops);
      }),
      { numRuns: 2000 },
    );
    expect(Object.isFrozen(constant.hostPath)).toBe(true);
  });

  it('property: the patch is the base64 of its UTF-8 JSON, whatever the text (Latin-1, astral, lone surrogates)', () => {
    const text = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' }), fc.constantFrom('é', 'ÿ', '\u0080', '…', '😀', '\ud800'));
    fc.assert(
      fc.property(fc.array(fc.tuple(text, text)), (pairs) => {
        const ops = pairs.map(([key, value]) => ({ op: 'add' as const, path: `/metadata/annotations/${key}`, value }));
        return encodePatch(ops) === Buffer.from(JSON.stringify(ops), 'utf8').toString('base64');
      }),
      { numRuns: 2000 },
    );
  });

  // kubectl applies a JSON patch with the same RFC 6902 code (evanphx/json-patch) as the kube-apiserver.
  it.skipIf(!existsSync(KUBECTL))('kubectl patch --local gives the same object as fast-json-patch', () => {
    const dir = mkdtempSync(join(tmpdir(), 'podvisor-kubectl-'));
    const env = { config: config({ namespaces: { shop: { labels: { 'podvisor.io/lxcfs': 'true' } } } }) };
    for (const name of ['01-pod-nginx-lxcfs.yaml', '05-pod-no-annotations.yaml', '09-statefulset-postgres.yaml', '10-cronjob-backup.yaml']) {
      const original = fixture(name);
      const { outcome, result } = run(original, { env });
      expect(outcome.patch.length).toBeGreaterThan(0);
      const file = join(dir, `${name}.json`);
      writeFileSync(file, JSON.stringify(original));
      const out = execFileSync(KUBECTL, ['patch', '--local', '-f', file, '--type=json', '-p', JSON.stringify(outcome.patch), '-o', 'json'], {
        encoding: 'utf8',
        env: { ...process.env, KUBECONFIG: '/dev/null' },
      });
      expect(JSON.parse(out)).toEqual(result);
    }
  });
});
