// The in-flight body budget on its own (src/server/body-budget.ts), with requests as the state Node leaves them in:
// what the hostile-client tests (admission-app-limits.test.ts) cannot stage on demand, e.g. requests answered without
// their body being read.
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { createBodyBudget } from '../src/server/body-budget.js';

const MiB = 1024 * 1024;

interface FakeRequest {
  headers: Record<string, string>;
  complete: boolean;
  destroyed: boolean;
  socket: { destroyed: boolean; destroy(): void };
}

function request(contentLength: number): FakeRequest {
  const socket = { destroyed: false, destroy: () => void (socket.destroyed = true) };
  return { headers: { 'content-length': String(contentLength) }, complete: false, destroyed: false, socket };
}

const asMessage = (r: FakeRequest) => r as unknown as IncomingMessage;

describe('the in-flight body budget', () => {
  const limits = { maxBytes: 4 * MiB, maxInFlight: 64, maxInFlightBytes: 48 * MiB };

  it('never counts a body declared over the per-body limit (fastify answers 413 without reading it)', () => {
    const budget = createBodyBudget(limits);
    for (let i = 0; i < 20; i += 1) budget.admit(asMessage(request(100_000_000)));
    expect(budget.inFlight()).toEqual({ bodies: 0, bytes: 0 });
  });

  it('requests answered unread on a closed connection are forgotten, not charged to a review still arriving', () => {
    const budget = createBodyBudget(limits);
    const review = request(3 * MiB);
    budget.admit(asMessage(review));
    // Twelve 4 MiB bodies answered without being read (404, 413 while reading): Node finished each response and the
    // connection closed, leaving the request neither complete nor destroyed.
    for (let i = 0; i < 12; i += 1) {
      const refused = request(4 * MiB);
      budget.admit(asMessage(refused));
      refused.socket.destroyed = true;
    }
    // The twelfth went over the byte budget: the eleven closed before it were dropped (the twelfth is dropped at the
    // next count over a limit), and the review still arriving was kept.
    expect(review.socket.destroyed).toBe(false);
    expect(budget.inFlight()).toEqual({ bodies: 2, bytes: 7 * MiB });
    const next = request(2 * MiB);
    budget.admit(asMessage(next));
    expect(review.socket.destroyed).toBe(false);
    expect(budget.inFlight()).toEqual({ bodies: 3, bytes: 9 * MiB });
  });

  it('over the byte budget with every body still arriving, the oldest is shed (its connection closed)', () => {
    const budget = createBodyBudget(limits);
    const held = Array.from({ length: 12 }, () => request(4 * MiB));
    for (const r of held) budget.admit(asMessage(r));
    const fresh = request(64 * 1024);
    budget.admit(asMessage(fresh));
    expect(held[0]!.socket.destroyed).toBe(true);
    expect(held.slice(1).every((r) => !r.socket.destroyed)).toBe(true);
    expect(fresh.socket.destroyed).toBe(false);
    expect(budget.inFlight().bytes).toBeLessThanOrEqual(limits.maxInFlightBytes);
  });
});
