/**
 * Message ID windows, RFC 7296 §2.3 (and §2.2 for the 32-bit limit): the
 * initiator's outstanding requests and the responder's response cache.
 */
import { describe, expect, it } from 'vitest';
import { MAX_MESSAGE_ID, MESSAGE_ID_REKEY_THRESHOLD, RequestWindow, ResponseWindow } from '../../../src/ike/exchange/message-id.js';
import { Retransmitter } from '../../../src/ike/exchange/retransmit.js';
import { FakeTimers } from './fake-timers.js';

describe('our requests (initiator of exchanges)', () => {
  it('IDs count from 0 and, with the default window of 1, the next request waits for the previous response', () => {
    const w = new RequestWindow<string>();
    expect(w.allocate('IKE_SA_INIT')).toBe(0);
    expect(w.canSend()).toBe(false);
    expect(() => w.allocate('IKE_AUTH')).toThrow(/window of 1 full/);
    expect(w.response(0)).toEqual({ kind: 'matched', id: 0, context: 'IKE_SA_INIT' });
    expect(w.canSend()).toBe(true);
    expect(w.allocate('IKE_AUTH')).toBe(1);
    expect(w.outstanding).toEqual([1]);
  });

  it('responses with unexpected IDs are dropped and counted, including a duplicate of one already matched', () => {
    const w = new RequestWindow<null>();
    w.allocate(null);
    expect(w.response(7)).toEqual({ kind: 'unexpected' });
    expect(w.response(0).kind).toBe('matched');
    expect(w.response(0)).toEqual({ kind: 'unexpected' });
    expect(w.counters.unexpectedResponses).toBe(2);
  });

  it('after SET_WINDOW_SIZE 3, request X waits for the responses up to X-3, not just for a free slot', () => {
    const w = new RequestWindow<null>();
    w.setWindowSize(3);
    expect([w.allocate(null), w.allocate(null), w.allocate(null)]).toEqual([0, 1, 2]);
    expect(w.canSend()).toBe(false);
    w.response(1);
    // 0 is still unanswered: 3 would exceed the window [0, 3).
    expect(w.canSend()).toBe(false);
    w.response(0);
    expect([w.allocate(null), w.allocate(null)]).toEqual([3, 4]);
    expect(w.canSend()).toBe(false);
  });

  it('approaching 2^32 IDs the IKE SA must be rekeyed, with IDs left for the rekey and DELETE', () => {
    const w = new RequestWindow<null>({ firstId: MESSAGE_ID_REKEY_THRESHOLD - 1 });
    expect(w.mustRekey).toBe(false);
    w.response(w.allocate(null));
    expect(w.mustRekey).toBe(true);
    expect(w.canSend()).toBe(true);
  });

  it('ID 0xffffffff is the last one: afterwards nothing can be sent on this SA', () => {
    const w = new RequestWindow<null>({ firstId: MAX_MESSAGE_ID });
    expect(w.allocate(null)).toBe(0xffffffff);
    w.response(0xffffffff);
    expect(w.exhausted).toBe(true);
    expect(w.canSend()).toBe(false);
    expect(() => w.allocate(null)).toThrow(RangeError);
  });

  it('clear() hands back every outstanding context so their timers die with the SA', () => {
    const timers = new FakeTimers();
    const w = new RequestWindow<Retransmitter>();
    w.setWindowSize(2);
    for (let i = 0; i < 2; i++) {
      const r = new Retransmitter({ send: () => {}, giveUp: () => expect.unreachable(), timers });
      w.allocate(r);
      r.start();
    }
    expect(timers.pendingCount).toBe(2);
    for (const r of w.clear()) r.cancel();
    expect(timers.pendingCount).toBe(0);
    expect(w.outstanding).toEqual([]);
  });
});

describe('the peer’s requests (responder)', () => {
  const fragments = [Buffer.from('fragment 1 of 2'), Buffer.from('fragment 2 of 2')];

  it('a retransmitted request is answered with the cached response octets, all fragments, without processing it again', () => {
    const w = new ResponseWindow();
    expect(w.receive(0)).toEqual({ action: 'process' });
    w.respond(0, fragments);
    expect(w.expectedId).toBe(1);

    const again = w.receive(0);
    expect(again.action).toBe('retransmit');
    if (again.action === 'retransmit') expect(again.packets.map((p) => Buffer.from(p).toString())).toEqual(['fragment 1 of 2', 'fragment 2 of 2']);
    expect(w.counters).toMatchObject({ processed: 1, retransmitted: 1 });
    expect(w.expectedId).toBe(1);
  });

  it('the cache keeps its own copy of the octets', () => {
    const w = new ResponseWindow();
    const packet = Buffer.from('response');
    w.receive(0);
    w.respond(0, [packet]);
    packet.fill(0);
    expect(Buffer.from(w.cachedResponse(0)![0]!).toString()).toBe('response');
  });

  it('a request older than the last one answered is dropped and counted', () => {
    const w = new ResponseWindow();
    for (const id of [0, 1, 2]) {
      w.receive(id);
      w.respond(id, [Buffer.from(`response ${id}`)]);
    }
    expect(w.receive(0)).toEqual({ action: 'drop', reason: 'old' });
    expect(w.receive(1)).toEqual({ action: 'drop', reason: 'old' });
    expect(w.receive(2).action).toBe('retransmit');
    expect(w.counters.droppedOld).toBe(2);
  });

  it('a request beyond the window is dropped and counted (§2.3)', () => {
    const w = new ResponseWindow();
    expect(w.receive(1)).toEqual({ action: 'drop', reason: 'future' });
    expect(w.receive(0xffffffff)).toEqual({ action: 'drop', reason: 'future' });
    expect(w.counters.droppedFuture).toBe(2);
    expect(w.receive(0)).toEqual({ action: 'process' });
  });

  it('a retransmission arriving while the request is still being processed is dropped, not processed twice', () => {
    const w = new ResponseWindow();
    w.receive(0);
    expect(w.receive(0)).toEqual({ action: 'drop', reason: 'in-progress' });
    expect(w.counters).toMatchObject({ processed: 1, droppedInProgress: 1 });
  });

  it('an abandoned request (e.g. its integrity check failed) does not advance the window and can come again', () => {
    const w = new ResponseWindow();
    w.receive(0);
    w.abandon(0);
    expect(w.expectedId).toBe(0);
    expect(w.receive(0)).toEqual({ action: 'process' });
  });

  it('with a window of 2, requests are answered out of order and both responses stay cached', () => {
    const w = new ResponseWindow({ windowSize: 2 });
    expect(w.receive(0).action).toBe('process');
    expect(w.receive(1).action).toBe('process');
    expect(w.receive(2)).toEqual({ action: 'drop', reason: 'future' });
    w.respond(1, [Buffer.from('r1')]);
    expect(w.expectedId).toBe(0);
    expect(w.receive(1).action).toBe('retransmit');
    w.respond(0, [Buffer.from('r0')]);
    expect(w.expectedId).toBe(2);
    expect(w.receive(0).action).toBe('retransmit');
    for (const id of [2, 3]) {
      w.receive(id);
      w.respond(id, [Buffer.from(`r${id}`)]);
    }
    expect(w.receive(1)).toEqual({ action: 'drop', reason: 'old' });
    expect(w.receive(2).action).toBe('retransmit');
  });

  it('the responder also sees when the peer’s IDs near the end and the IKE SA must be rekeyed', () => {
    const w = new ResponseWindow({ firstId: MESSAGE_ID_REKEY_THRESHOLD - 1 });
    expect(w.mustRekey).toBe(false);
    w.receive(MESSAGE_ID_REKEY_THRESHOLD - 1);
    w.respond(MESSAGE_ID_REKEY_THRESHOLD - 1, [Buffer.from('r')]);
    expect(w.mustRekey).toBe(true);
  });

  it('responding to an ID that was not handed out is a programming error', () => {
    const w = new ResponseWindow();
    expect(() => w.respond(0, [Buffer.from('r')])).toThrow(/not being processed/);
    expect(() => w.receive(-1)).toThrow(RangeError);
  });
});

describe('both sides over a lossy path', () => {
  it('a lost response is recovered by the initiator’s retransmission and the responder’s cache; the request is processed once', () => {
    const timers = new FakeTimers();
    const requests = new RequestWindow<Retransmitter>();
    const responder = new ResponseWindow();
    let processed = 0;
    let responsesLost = 1;
    const delivered: number[] = [];

    const deliverResponse = (id: number): void => {
      if (responsesLost-- > 0) return;
      const match = requests.response(id);
      if (match.kind === 'matched') {
        match.context.cancel();
        delivered.push(timers.now);
      }
    };
    const request = (id: number): void => {
      const verdict = responder.receive(id);
      if (verdict.action === 'process') {
        processed++;
        responder.respond(id, [Buffer.from(`response ${id}`)]);
        deliverResponse(id);
      } else if (verdict.action === 'retransmit') {
        deliverResponse(id);
      }
    };

    let id = -1;
    const r = new Retransmitter({ send: () => request(id), giveUp: () => expect.unreachable(), timers });
    id = requests.allocate(r);
    r.start();
    timers.runAll();

    expect(processed).toBe(1);
    expect(responder.counters.retransmitted).toBe(1);
    expect(delivered).toEqual([4000]);
    expect(r.state).toBe('done');
    expect(requests.canSend()).toBe(true);
  });
});
