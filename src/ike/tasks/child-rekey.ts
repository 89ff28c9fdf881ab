/**
 * CHILD_SA rekeying for one IKE SA, in both roles (RFC 7296 §1.3.3, §2.8):
 * the rekey_time timer, our CREATE_CHILD_SA with REKEY_SA and its outcomes
 * (TEMPORARY_FAILURE retry, CHILD_SA_NOT_FOUND, INVALID_KE_PAYLOAD), the
 * responder's switch of outbound traffic, the deletion of the old pair, and
 * §2.8.1 collisions — both sides rekeyed the same CHILD_SA; the exchange
 * holding the lowest of the four nonces made the redundant pair and its
 * initiator deletes it. strongSwan keeps this in child_rekey.c (and the
 * peer's CHILD_SA Deletes in child_delete.c, here peerDeleted()).
 *
 * Each pair's state and timer live in one ChildStates table (../sa/child-state.ts);
 * the IKE SA (../sa/ike-sa.ts) sends the messages and owns the request queue.
 */
import { ExchangeType } from '../codec/index.js';
import { deletePayload } from '../codec/build.js';
import { ProtocolId } from '../transforms.js';
import type { ExchangeHost, TaskMessage } from './task.js';
import { ChildRekeyRequest, lowestNonceIn } from './create-child-sa.js';
import type { ChildSaRecord, IkeSaContext } from '../sa/context.js';
import { ChildStates, type ChildRekeyCollision } from '../sa/child-state.js';
import type { ExpireEvent } from '../../esp/api.js';
import { spiHex } from '../../util/format.js';

/** Responder of a CHILD rekey: switch outbound to the new SA at the latest this long after answering, even without the initiator's Delete. */
export const RESPONDER_OUTBOUND_SWITCH_MS = 5_000;
/**
 * A rekeyed-away inbound SA still accepts packets this long after its Delete
 * exchange (ESP sent just before the peer switched can arrive after the IKE
 * message that says so: different sockets, batched reads).
 */
export const OLD_INBOUND_GRACE_MS = 2_000;
/** A rekey collision's losing pair made by the peer's exchange: deleted by us if the peer has not after this long (§2.8.1). */
const REDUNDANT_GRACE_MS = 10_000;
/** Random delay range before retrying an exchange the peer answered TEMPORARY_FAILURE (§2.25). */
const TEMPORARY_RETRY_MS = [500, 2_500] as const;

export function retryDelay(): number {
  return TEMPORARY_RETRY_MS[0] + Math.floor(Math.random() * (TEMPORARY_RETRY_MS[1] - TEMPORARY_RETRY_MS[0]));
}

function spiBuffer(spi: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(spi >>> 0);
  return b;
}

/** What CHILD_SA rekeying needs from its IKE SA besides the request queue: its rekey state and events. */
export interface ChildRekeyHost extends ExchangeHost {
  /** The IKE SA is being rekeyed (§2.25: no CHILD rekey meanwhile). */
  readonly ikeRekeying: boolean;
  /** A rekeyed successor carries the CHILD_SAs now. */
  readonly replaced: boolean;
  /** CHILD_SA requests of ours sent and not answered (their reserved SPIs are released if the IKE SA ends first). */
  readonly unanswered: Set<{ abandon(): void }>;
  /** Put an exchange first in the queue, to be sent once the current one is done. */
  retryFirst(job: () => void): void;
  /** The IKE SA's rekeyChild (it forwards to a successor, if there is one by then). */
  rekeyChild(child: ChildSaRecord, why: string): void;
  childRekeyed(old: ChildSaRecord, fresh: ChildSaRecord): void;
  childFailed(name: string, reason: string): void;
  childClosed(child: ChildSaRecord): void;
  /** We deleted a CHILD_SA on request (deleteChild) and the peer answered. */
  childDeleted(child: ChildSaRecord): void;
}

export class ChildRekeys {
  readonly states = new ChildStates();

  constructor(private readonly host: ChildRekeyHost) {}

  private get ctx(): IkeSaContext {
    return this.host.ctx;
  }

  /** An IKE rekey of ours is refused while a CHILD rekey of ours is under way (§2.25). */
  get busy(): boolean {
    return this.states.has('rekeying');
  }

  /** We answered the peer's rekey of `old` (§1.3.3); if we are rekeying it too, that is a collision settled when ours completes. */
  peerRekeyed(old: ChildSaRecord, record: ChildSaRecord, nonces: Buffer[]): void {
    const collision = this.states.is(old, 'rekeying') ? { peerPair: record, nonces } : undefined;
    if (collision)
      this.ctx.log.log(
        'info',
        `${this.ctx.name}: CHILD_SA ${old.name}{${old.reqid}} rekey collision: the peer rekeys it too; settled by the nonces when our exchange completes (§2.8.1)`,
      );
    this.replaceChild(old, record, false, collision);
  }

  /** Our IKE rekey did not happen: the CHILD rekeys that waited for it go now. */
  resumeAfterIkeRekey(): void {
    for (const [c, s] of this.states.all('retrying')) if (!s.retryTimer) this.host.rekeyChild(c, s.why);
    for (const [c, s] of this.states.all('rekeying')) if (s.want !== undefined) this.host.rekeyChild(c, s.want);
  }

  /**
   * The IKE SA was rekeyed: superseded pairs awaiting their Delete, redundant
   * pairs and lingering inbound SAs move to `next`; rekey timers restart there
   * (its startLifetimes). Returns the CHILD_SAs whose rekey was due, with why.
   */
  handOver(next: ChildRekeys): Array<[ChildSaRecord, string]> {
    const wanted: Array<[ChildSaRecord, string]> = [];
    for (const [child, state] of this.states.drain()) {
      switch (state.kind) {
        case 'installed':
          clearTimeout(state.rekeyTimer);
          break;
        case 'rekeying':
          clearTimeout(state.rekeyTimer);
          if (state.want !== undefined) wanted.push([child, state.want]);
          break;
        case 'retrying':
          clearTimeout(state.rekeyTimer);
          clearTimeout(state.retryTimer);
          wanted.push([child, state.why]);
          break;
        case 'superseded': {
          clearTimeout(state.switchTimer);
          const { collision: _settled, switchTimer: _stopped, ...entry } = state;
          if (!entry.switched) {
            const switchTimer = setTimeout(() => next.switchOutbound(child), RESPONDER_OUTBOUND_SWITCH_MS);
            switchTimer.unref?.();
            next.states.set(child, { ...entry, switchTimer });
          } else next.states.set(child, entry);
          break;
        }
        case 'redundant':
          clearTimeout(state.graceTimer);
          next.awaitRedundantDelete(child);
          break;
        case 'rekeyed':
          if (this.ctx.backend.querySa(child.inboundSpi, 'in')) next.states.set(child, state);
          break;
      }
    }
    return wanted;
  }

  /** The IKE SA ends: remove the pairs that left ctx.children (superseded, redundant, lingering) from the SAD. */
  teardown(): void {
    for (const [old, entry] of this.states.all('superseded')) {
      this.ctx.backend.deleteSa(old.inboundSpi, 'in');
      this.ctx.backend.deleteSa(old.outboundSpi, 'out');
      if (entry.redundantOutbound !== undefined) this.ctx.backend.deleteSa(entry.redundantOutbound, 'out');
    }
    for (const [old] of this.states.all('rekeyed')) this.ctx.backend.deleteSa(old.inboundSpi, 'in');
    for (const [pair] of this.states.all('redundant')) {
      this.ctx.backend.deleteSa(pair.inboundSpi, 'in');
      this.ctx.backend.deleteSa(pair.outboundSpi, 'out');
    }
    this.states.clear();
  }

  /** The SAD raised an expiry for one of our SAs: a soft one starts the CHILD_SA's rekey. */
  softExpired(e: ExpireEvent): void {
    if (e.hard || this.ctx.state !== 'established') return;
    const spi = e.spi >>> 0;
    const child = this.ctx.children.find((c) => c.reqid === e.reqid && (e.direction === 'in' ? c.inboundSpi === spi : c.outboundSpi === spi));
    if (child) this.host.rekeyChild(child, `soft ${e.reason} limit of SA ${spiHex(spi)}_${e.direction === 'in' ? 'i' : 'o'}`);
  }

  /** Initiate the rekey of a CHILD_SA (§1.3.3) on this IKE SA; a no-op when one is already under way. */
  rekeyChild(child: ChildSaRecord, why: string): void {
    if (this.ctx.state !== 'established') return;
    const state = this.states.get(child);
    if (this.host.ikeRekeying) {
      // §2.25: not while the IKE SA is being rekeyed; done on the new IKE SA (or here if that fails).
      if (!this.ctx.children.includes(child)) return;
      if (state?.kind === 'rekeying') state.want = why;
      else {
        if (state?.kind === 'retrying') clearTimeout(state.retryTimer);
        const rekeyTimer = this.states.rekeyTimer(child);
        this.states.set(child, { kind: 'retrying', why, ...(rekeyTimer ? { rekeyTimer } : {}) });
      }
      return;
    }
    if (state?.kind === 'rekeying') {
      delete state.want;
      return;
    }
    if (!this.ctx.children.includes(child) || !child.config || !child.localRanges || !child.remoteRanges) {
      if (state?.kind === 'retrying') {
        if (this.ctx.children.includes(child)) this.endRetry(child, state);
        else this.states.delete(child);
      }
      return;
    }
    if (state?.kind === 'retrying') clearTimeout(state.retryTimer);
    const rekeyTimer = this.states.rekeyTimer(child);
    this.states.set(child, { kind: 'rekeying', ...(rekeyTimer ? { rekeyTimer } : {}) });
    this.ctx.log.log(
      'info',
      `${this.ctx.name}: rekeying CHILD_SA ${child.name}{${child.reqid}} ${spiHex(child.inboundSpi)}_i ${spiHex(child.outboundSpi)}_o (${why})`,
    );
    const req = new ChildRekeyRequest(this.ctx, child);
    this.host.enqueue(() => this.sendChildRekey(req));
  }

  private sendChildRekey(req: ChildRekeyRequest): void {
    const child = req.old;
    if (!this.ctx.children.includes(child) || this.host.replaced) {
      // rekeyed by the peer meanwhile, or moved to a new IKE SA
      this.endChildRekey(child);
      req.abandon();
      return this.host.sendNextRequest();
    }
    const msg: TaskMessage = { exchangeType: ExchangeType.CREATE_CHILD_SA, messageId: this.host.nextMessageId, payloads: [] };
    try {
      req.build(msg);
    } catch (err) {
      this.endChildRekey(child);
      req.abandon();
      this.ctx.log.log('warn', `${this.ctx.name}: cannot rekey CHILD_SA ${child.name}{${child.reqid}}: ${(err as Error).message}`);
      return this.host.sendNextRequest();
    }
    this.host.unanswered.add(req);
    this.host.request(msg, (response) => {
      this.host.unanswered.delete(req);
      this.childRekeyAnswered(req, response);
    });
  }

  private childRekeyAnswered(req: ChildRekeyRequest, response: TaskMessage): void {
    const child = req.old;
    const name = `CHILD_SA ${child.name}{${child.reqid}}`;
    let r: ReturnType<ChildRekeyRequest['process']>;
    try {
      r = req.process(response);
    } catch (err) {
      r = { status: 'failed', reason: (err as Error).message };
    }
    switch (r.status) {
      case 'retry':
        this.ctx.log.log('info', `${this.ctx.name}: ${name} rekey: peer asks for another key exchange group, retrying`);
        this.host.retryFirst(() => this.sendChildRekey(req));
        return;
      case 'temporary': {
        const ms = retryDelay();
        this.ctx.log.log('info', `${this.ctx.name}: ${name} rekey: peer answered TEMPORARY_FAILURE, retrying in ${ms} ms`);
        this.dropCollision(child);
        req.abandon();
        const s = this.states.is(child, 'rekeying');
        if (!s) return;
        const retryTimer = setTimeout(() => {
          if (this.ctx.state === 'established' && this.states.is(child, 'retrying')?.retryTimer === retryTimer)
            this.host.rekeyChild(child, 'retry after TEMPORARY_FAILURE');
        }, ms);
        retryTimer.unref?.();
        this.states.set(child, { kind: 'retrying', why: 'retry after TEMPORARY_FAILURE', retryTimer, ...(s.rekeyTimer ? { rekeyTimer: s.rekeyTimer } : {}) });
        return;
      }
      case 'not-found':
        // §2.25: the peer deleted it (or rekeyed it itself) meanwhile; nothing to rekey.
        this.ctx.log.log('info', `${this.ctx.name}: ${name} rekey: peer answered CHILD_SA_NOT_FOUND`);
        this.dropCollision(child);
        this.endChildRekey(child);
        req.abandon();
        return;
      case 'failed':
        this.ctx.log.log('warn', `${this.ctx.name}: ${name} rekey failed: ${r.reason}; the old SAs stay until their hard lifetime`);
        this.dropCollision(child);
        this.endChildRekey(child);
        req.abandon();
        this.host.childFailed(child.name, `rekey failed: ${r.reason}`);
        return;
      case 'ok': {
        const collision = this.dropCollision(child);
        if (collision && this.ctx.children.includes(collision.peerPair) && !lowestNonceIn(r.nonces, collision.nonces)) {
          // §2.8.1: both exchanges rekeyed it; the lowest of the four nonces is in the peer's — its pair goes, ours stays.
          return this.winCollision(child, collision.peerPair, r.value);
        }
        if (!this.ctx.children.includes(child)) {
          // The peer rekeyed it too: its exchange finished first, or (collision, §2.8.1) ours holds the lowest nonce.
          this.ctx.log.log(
            'info',
            `${this.ctx.name}: ${name} was rekeyed by the peer ${collision ? 'in a collision and our exchange has the lowest nonce (§2.8.1)' : 'meanwhile'}; deleting our redundant SAs ${spiHex(r.value.inboundSpi)}_i ${spiHex(r.value.outboundSpi)}_o`,
          );
          const entry = this.states.is(child, 'superseded');
          if (collision && entry && !entry.switched) {
            // The winner installs its pair's inbound SA only when its own response arrives, maybe after
            // ours: we keep sending on our (redundant) pair — the winner has its inbound since it answered
            // us — until the winner's Delete of the old SA shows it is ready (or the responder's switch timer).
            entry.redundantOutbound = r.value.outboundSpi;
          } else {
            this.ctx.backend.deleteSa(r.value.outboundSpi, 'out');
            const current = this.ctx.children.find((c) => c.reqid === child.reqid);
            if (current) this.ctx.backend.setOutboundSa(current.reqid, current.outboundSpi);
          }
          this.host.enqueue(() => this.sendChildDelete(r.value), true);
          return;
        }
        this.replaceChild(child, r.value, true);
        return;
      }
    }
  }

  /** Our rekey of a pair the peer rekeyed too is answered (or failed): the collision, if there was one, is settled now. */
  private dropCollision(child: ChildSaRecord): ChildRekeyCollision | undefined {
    const s = this.states.is(child, 'superseded');
    const collision = s?.collision;
    if (s) delete s.collision;
    return collision;
  }

  /** A TEMPORARY_FAILURE retry (or a wait for the IKE rekey) of a pair no longer ours to rekey. */
  private endRetry(child: ChildSaRecord, state: { retryTimer?: NodeJS.Timeout; rekeyTimer?: NodeJS.Timeout }): void {
    clearTimeout(state.retryTimer);
    this.states.set(child, { kind: 'installed', ...(state.rekeyTimer ? { rekeyTimer: state.rekeyTimer } : {}) });
  }

  /**
   * §2.8.1, our exchange won: our new pair (outbound already switched to it)
   * becomes the CHILD_SA; the peer's pair from the colliding exchange is left
   * for the peer to delete (its exchange had the lowest nonce); the old
   * CHILD_SA is deleted by us, as for any rekey we initiated.
   */
  private winCollision(old: ChildSaRecord, peerPair: ChildSaRecord, ours: ChildSaRecord): void {
    this.ctx.log.log(
      'info',
      `${this.ctx.name}: CHILD_SA ${old.name}{${old.reqid}} rekey collision (§2.8.1): the lowest nonce is in the peer's exchange; keeping ours ${spiHex(ours.inboundSpi)}_i ${spiHex(ours.outboundSpi)}_o, the peer deletes ${spiHex(peerPair.inboundSpi)}_i ${spiHex(peerPair.outboundSpi)}_o`,
    );
    const i = this.ctx.children.indexOf(peerPair);
    this.ctx.children[i] = ours;
    this.forgetChild(peerPair);
    this.scheduleChildRekey(ours);
    if (this.states.is(old, 'superseded')) this.states.delete(old);
    // our outbound SA went live when our exchange completed: the peer's pair never carries our traffic
    this.ctx.backend.deleteSa(peerPair.outboundSpi, 'out');
    this.awaitRedundantDelete(peerPair);
    this.ctx.backend.deleteSa(old.outboundSpi, 'out');
    this.host.enqueue(() => this.sendChildDelete(old), true);
    this.host.childRekeyed(peerPair, ours);
  }

  /** The peer deletes a collision's losing pair it made; if it has not after REDUNDANT_GRACE_MS, we do (§2.8.1). */
  awaitRedundantDelete(pair: ChildSaRecord): void {
    this.states.delete(pair);
    const graceTimer = setTimeout(() => {
      if (this.states.is(pair, 'redundant')?.graceTimer !== graceTimer) return;
      this.dropRedundant(pair);
      if (this.ctx.state === 'established') this.host.enqueue(() => this.sendChildDelete(pair));
    }, REDUNDANT_GRACE_MS);
    graceTimer.unref?.();
    this.states.set(pair, { kind: 'redundant', graceTimer });
  }

  private dropRedundant(pair: ChildSaRecord): void {
    this.states.delete(pair);
    this.ctx.backend.deleteSa(pair.outboundSpi, 'out');
    this.retireInbound(pair);
  }

  replaceChild(old: ChildSaRecord, fresh: ChildSaRecord, weInitiated: boolean, collision?: ChildRekeyCollision): void {
    const i = this.ctx.children.indexOf(old);
    if (i >= 0) this.ctx.children[i] = fresh;
    else this.ctx.children.push(fresh);
    this.forgetChild(old);
    this.scheduleChildRekey(fresh);
    if (weInitiated) {
      // Outbound already switched; the old outbound SA goes now, the old inbound once the peer answered our Delete.
      this.ctx.backend.deleteSa(old.outboundSpi, 'out');
      this.host.enqueue(() => this.sendChildDelete(old), true);
    } else {
      const switchTimer = setTimeout(() => this.switchOutbound(old), RESPONDER_OUTBOUND_SWITCH_MS);
      switchTimer.unref?.();
      this.states.set(old, { kind: 'superseded', successor: fresh, switched: false, switchTimer, ...(collision ? { collision } : {}) });
    }
    this.host.childRekeyed(old, fresh);
  }

  /** Delete our half of a superseded pair (INFORMATIONAL, §1.4.1); the old inbound SA lives until answered. */
  private sendChildDelete(old: ChildSaRecord): void {
    if (this.ctx.state !== 'established') return;
    const msg: TaskMessage = {
      exchangeType: ExchangeType.INFORMATIONAL,
      messageId: this.host.nextMessageId,
      payloads: [deletePayload(ProtocolId.ESP, [spiBuffer(old.inboundSpi)])],
    };
    this.host.request(msg, () => {
      if (this.ctx.backend.activeOutboundSpi(old.reqid) === old.outboundSpi >>> 0) {
        // still our outbound SA (a collision's redundant pair while the winner's switch is pending): move on first
        const current = this.ctx.children.find((c) => c.reqid === old.reqid && c !== old);
        if (current) this.ctx.backend.setOutboundSa(current.reqid, current.outboundSpi);
      }
      this.ctx.backend.deleteSa(old.outboundSpi, 'out');
      this.retireInbound(old);
      this.ctx.log.log('info', `${this.ctx.name}: CHILD_SA ${old.name}{${old.reqid}} old SAs ${spiHex(old.inboundSpi)}_i ${spiHex(old.outboundSpi)}_o deleted`);
    });
  }

  /**
   * Delete one CHILD_SA on request while the IKE SA stays (§1.4.1; swanctl
   * --terminate --child): an INFORMATIONAL with its Delete, its SAs and policies
   * removed once the peer answers. Resolves with whether it was deleted; not
   * while it is being rekeyed (the rekey's own Delete settles that pair). Never
   * resolves if the IKE SA ends first (callers bound the wait).
   */
  deleteChild(child: ChildSaRecord, why: string): Promise<{ ok: true } | { ok: false; reason: string }> {
    if (this.ctx.state !== 'established') return Promise.resolve({ ok: false, reason: `the IKE_SA is ${this.ctx.state}` });
    this.ctx.log.log('info', `${this.ctx.name}: deleting CHILD_SA ${child.name}{${child.reqid}} (${why})`);
    return new Promise((resolve) => this.sendDeleteOnRequest(child, why, resolve));
  }

  private sendDeleteOnRequest(child: ChildSaRecord, why: string, done: (outcome: { ok: true } | { ok: false; reason: string }) => void): void {
    const state = this.states.get(child);
    if (!this.ctx.children.includes(child)) return done({ ok: false, reason: 'the CHILD_SA is gone' });
    if (state && state.kind !== 'installed') return done({ ok: false, reason: 'the CHILD_SA is being rekeyed; try again' });
    this.host.enqueue(() => {
      const s = this.states.get(child);
      if (this.ctx.state !== 'established' || !this.ctx.children.includes(child) || (s && s.kind !== 'installed')) {
        done({ ok: false, reason: 'the CHILD_SA changed meanwhile (rekeyed or gone); try again' });
        return this.host.sendNextRequest();
      }
      const msg: TaskMessage = {
        exchangeType: ExchangeType.INFORMATIONAL,
        messageId: this.host.nextMessageId,
        payloads: [deletePayload(ProtocolId.ESP, [spiBuffer(child.inboundSpi)])],
      };
      this.host.request(msg, () => {
        const i = this.ctx.children.indexOf(child);
        // the peer rekeyed it meanwhile (our Delete crossed its rekey, §2.25): the pair it replaced is gone on its side now
        if (i < 0 && this.states.is(child, 'superseded')) this.finishSupersede(child);
        if (i < 0) return done({ ok: false, reason: 'the CHILD_SA was deleted by the peer meanwhile' });
        this.ctx.children.splice(i, 1);
        const st = this.states.get(child);
        if (st && 'rekeyTimer' in st) clearTimeout(st.rekeyTimer);
        this.forgetChild(child);
        this.removeChild(child);
        this.ctx.log.log(
          'info',
          `${this.ctx.name}: CHILD_SA ${child.name}{${child.reqid}} deleted (${spiHex(child.inboundSpi)}_i ${spiHex(child.outboundSpi)}_o): ${why}`,
        );
        this.host.childDeleted(child);
        done({ ok: true });
      });
    });
  }

  /** Delete an old inbound SA with a grace of OLD_INBOUND_GRACE_MS (packets still in flight to it are accepted meanwhile). */
  private retireInbound(pair: ChildSaRecord): void {
    for (const [c] of this.states.all('rekeyed')) if (!this.ctx.backend.querySa(c.inboundSpi, 'in')) this.states.delete(c);
    this.ctx.backend.deleteSa(pair.inboundSpi, 'in', OLD_INBOUND_GRACE_MS);
    this.states.set(pair, { kind: 'rekeyed' });
  }

  /** Responder: send over the new SA (the initiator has it installed once it deletes the old one, or after a grace). */
  switchOutbound(old: ChildSaRecord): void {
    const entry = this.states.is(old, 'superseded');
    if (!entry || entry.switched) return;
    entry.switched = true;
    clearTimeout(entry.switchTimer);
    if (this.ctx.children.includes(entry.successor)) this.ctx.backend.setOutboundSa(entry.successor.reqid, entry.successor.outboundSpi);
    this.ctx.backend.deleteSa(old.outboundSpi, 'out');
    if (entry.redundantOutbound !== undefined) this.ctx.backend.deleteSa(entry.redundantOutbound, 'out');
  }

  private finishSupersede(old: ChildSaRecord): void {
    this.switchOutbound(old);
    this.states.delete(old);
    this.retireInbound(old);
    this.ctx.log.log(
      'info',
      `${this.ctx.name}: CHILD_SA ${old.name}{${old.reqid}} old SAs ${spiHex(old.inboundSpi)}_i ${spiHex(old.outboundSpi)}_o deleted by the peer after its rekey`,
    );
  }

  /**
   * Remove the CHILD SAs whose outbound SPIs (the peer's inbound SPIs, as it
   * names them in its Delete) are listed; returns our inbound SPIs of those pairs.
   * Unknown SPIs are ignored (§1.4.1: the SA may already be gone).
   */
  peerDeleted(peerSpis: readonly Buffer[]): Buffer[] {
    const gone: Buffer[] = [];
    for (const spi of peerSpis) {
      if (spi.length !== 4) continue;
      const outbound = spi.readUInt32BE(0);
      const loser = this.states.find('redundant', (c) => c.outboundSpi === outbound)?.[0];
      if (loser) {
        // §2.8.1: the initiator of the exchange with the lowest nonce deletes what it made
        this.dropRedundant(loser);
        gone.push(spiBuffer(loser.inboundSpi));
        this.ctx.log.log(
          'info',
          `${this.ctx.name}: CHILD_SA ${loser.name}{${loser.reqid}} redundant SAs ${spiHex(loser.inboundSpi)}_i ${spiHex(loser.outboundSpi)}_o of the rekey collision deleted by the peer`,
        );
        continue;
      }
      const old = this.states.find('superseded', (c) => c.outboundSpi === outbound)?.[0];
      if (old) {
        // §1.3.3: the rekey's initiator deletes the old SA pair: traffic goes over the new one now.
        this.finishSupersede(old);
        gone.push(spiBuffer(old.inboundSpi));
        continue;
      }
      const i = this.ctx.children.findIndex((c) => c.outboundSpi === outbound);
      if (i < 0) continue;
      const [child] = this.ctx.children.splice(i, 1);
      this.forgetChild(child!);
      this.removeChild(child!);
      const inbound = Buffer.alloc(4);
      inbound.writeUInt32BE(child!.inboundSpi);
      gone.push(inbound);
      this.ctx.log.log(
        'info',
        `${this.ctx.name}: CHILD_SA ${child!.name}{${child!.reqid}} deleted by the peer (SPIs ${spiHex(child!.inboundSpi)}_i ${spiHex(outbound)}_o)`,
      );
      this.host.childClosed(child!);
    }
    return gone;
  }

  removeChild(child: ChildSaRecord): void {
    // The reqid's policies belong to whichever CHILD_SA sends on it now: a CHILD_SA of
    // another IKE SA (one that replaced this IKE SA after INITIAL_CONTACT) keeps them.
    const active = this.ctx.backend.activeOutboundSpi(child.reqid);
    const ours = active === undefined || active === child.outboundSpi >>> 0;
    this.ctx.backend.deleteSa(child.inboundSpi, 'in');
    this.ctx.backend.deleteSa(child.outboundSpi, 'out');
    if (!ours) return;
    // A CHILD_SA of the same reqid on another IKE SA (made by reauthentication, make-before-break)
    // takes the traffic over and keeps the policies: this pair may have taken the outbound from it
    // when a rekey on this IKE SA completed after the new IKE SA was up.
    const heir = this.ctx.otherIkeSas().find((o) => o.state === 'established' && o.children.some((c) => c.reqid === child.reqid));
    const pair = heir?.children.find((c) => c.reqid === child.reqid);
    if (pair && this.ctx.backend.querySa(pair.outboundSpi, 'out')) return this.ctx.backend.setOutboundSa(pair.reqid, pair.outboundSpi);
    this.ctx.backend.deletePolicy(child.reqid, 'in');
    this.ctx.backend.deletePolicy(child.reqid, 'out');
  }

  /** (Re)start the rekey_time timer of an installed CHILD_SA. */
  scheduleChildRekey(child: ChildSaRecord): void {
    const state = this.states.get(child);
    const carries = state && (state.kind === 'installed' || state.kind === 'rekeying' || state.kind === 'retrying') ? state : undefined;
    clearTimeout(carries?.rekeyTimer);
    if (carries) delete carries.rekeyTimer;
    else this.states.set(child, { kind: 'installed' });
    const seconds = child.rekeySeconds ?? 0;
    if (seconds <= 0 || !child.config) return;
    const delay = Math.max(0, child.installedAt + seconds * 1000 - Date.now());
    const t = setTimeout(() => {
      const s = this.states.get(child);
      if (s && 'rekeyTimer' in s && s.rekeyTimer === t) delete s.rekeyTimer;
      this.host.rekeyChild(child, 'rekey_time');
    }, delay);
    t.unref?.();
    (carries ?? (this.states.get(child) as { rekeyTimer?: NodeJS.Timeout })).rekeyTimer = t;
  }

  /** Our rekey of it ended without a new pair: back to installed (or waiting, if it came due meanwhile during an IKE rekey). */
  private endChildRekey(child: ChildSaRecord): void {
    const s = this.states.is(child, 'rekeying');
    if (!s) return;
    const rekeyTimer = s.rekeyTimer ? { rekeyTimer: s.rekeyTimer } : {};
    this.states.set(child, s.want !== undefined ? { kind: 'retrying', why: s.want, ...rekeyTimer } : { kind: 'installed', ...rekeyTimer });
  }

  private forgetChild(child: ChildSaRecord): void {
    this.states.delete(child);
  }
}
