// The reviews the benches send. Every request is a distinct review: its uid, name and object name change with each
// request (same length, so the same bytes on the wire otherwise), as in a real stream of pod creations, so that nothing
// keyed by the body or by the object could make the repeated review cheaper than a stream of distinct ones.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const FIXTURES = fileURLToPath(new URL('../test/fixtures', import.meta.url));

export interface Scenario {
  readonly name: string;
  /** The first review of the stream (the floor answers podvisor's answer to it). */
  readonly body: string;
  /** The next distinct review. */
  next(): string;
  /** The throughput ratio to the floor the issue asks for. */
  readonly target: number;
}

const UID = '\u0000uid\u0000';
const NAME = '\u0000name\u0000';

interface Review {
  request: { uid: string; name?: string; object: { metadata: { name?: string; annotations?: Record<string, string> } } };
}

/** `review` as the fixtures are written (2-space JSON), with the uid and names replaced by a counter for each request. */
export function distinctReviews(review: Review): () => string {
  const { uid, name } = review.request;
  const objectName = review.request.object.metadata.name;
  const template: Review = structuredClone(review);
  template.request.uid = UID;
  if (name !== undefined) template.request.name = NAME;
  if (objectName !== undefined) template.request.object.metadata.name = NAME;
  const parts = `${JSON.stringify(template, null, 2)}\n`.split(/(\u0000uid\u0000|\u0000name\u0000)/);
  const uidPrefix = uid.slice(0, -12);
  const namePrefix = `${(name ?? objectName ?? 'review').slice(0, 40)}-`;
  let count = 0;
  return () => {
    const n = count++;
    const id = uidPrefix + n.toString(16).padStart(12, '0');
    const suffix = namePrefix + n.toString(36).padStart(6, '0');
    let body = '';
    for (const part of parts) body += part === UID ? id : part === NAME ? suffix : part;
    return body;
  };
}

function fixture(file: string): Review {
  return JSON.parse(readFileSync(join(FIXTURES, file), 'utf8')) as Review;
}

function scenario(name: string, review: Review, target: number): Scenario {
  const next = distinctReviews(review);
  return { name, body: next(), next, target };
}

export function scenarios(): Scenario[] {
  const notOptedIn = fixture('review-01-pod-create.json');
  delete notOptedIn.request.object.metadata.annotations;
  return [
    scenario('Pod CREATE, opted in (review-01)', fixture('review-01-pod-create.json'), 0.7),
    scenario('DaemonSet CREATE (review-11)', fixture('review-11-daemonset-create.json'), 0.7),
    scenario('Pod CREATE, not opted in', notOptedIn, 0.9),
  ];
}
