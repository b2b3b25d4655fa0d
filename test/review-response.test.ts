import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodePatch } from '../src/admission/patch.js';
import { reviewResponse, serializeReviewResponse } from '../src/admission/review.js';
import type { AdmissionResponse } from '../src/admission/types.js';

const text = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.constantFrom('', '"', '\\', '\u2028', '😀'));
const patch = fc.array(fc.record({ op: fc.constant('add' as const), path: text.map((t) => `/metadata/annotations/${t}`), value: text })).map(encodePatch);
const response: fc.Arbitrary<AdmissionResponse> = fc
  .record(
    {
      uid: text,
      allowed: fc.boolean(),
      status: fc.record({ code: fc.integer(), message: text, reason: fc.constantFrom('Forbidden', undefined) }, { requiredKeys: ['code'] }),
      patchType: fc.constant('JSONPatch' as const),
      patch,
      warnings: fc.array(text),
      auditAnnotations: fc.dictionary(text, text),
    },
    { requiredKeys: ['uid', 'allowed'] },
  );

describe('serializeReviewResponse', () => {
  it('property: the same text as JSON.stringify of the AdmissionReview, whatever the fields and their order', () => {
    fc.assert(
      fc.property(response, fc.boolean(), (r, reversed) => {
        const ordered = reversed ? (Object.fromEntries(Object.entries(r).reverse()) as unknown as AdmissionResponse) : r;
        expect(serializeReviewResponse(ordered)).toBe(JSON.stringify(reviewResponse(ordered)));
      }),
      { numRuns: 2000 },
    );
  });

  it('an undefined member is left out, as JSON.stringify does', () => {
    const r: AdmissionResponse = { uid: 'u', allowed: true, patch: undefined, warnings: undefined };
    expect(serializeReviewResponse(r)).toBe('{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"u","allowed":true}}');
  });
});
