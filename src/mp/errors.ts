/** Typed errors of the message-passing layer (all SwitchboardErrors with stable codes). */
import { SwitchboardError, type SwitchboardErrorOptions } from '../errors.js';

/**
 * A rank this operation depends on is gone: it died (its connection broke or
 * its worker exited) or it closed its communicator. `rank` is the rank in the
 * world communicator.
 */
export class PeerLostError extends SwitchboardError {
  override name = 'PeerLostError';
  readonly rank: number;
  /** True when the rank closed its communicator in order (finalized), false when it died. */
  readonly finalized: boolean;
  constructor(rank: number, message: string, finalized = false, options?: SwitchboardErrorOptions) {
    super('ECONNRESET', message, options);
    this.rank = rank;
    this.finalized = finalized;
  }
}

/**
 * Ranks called a collective with arguments that do not agree (different
 * counts, a typed array on one rank and nothing on another). Detected where it
 * costs nothing extra: from the sizes of the messages that arrive.
 */
export class CollectiveMismatchError extends SwitchboardError {
  override name = 'CollectiveMismatchError';
  constructor(message: string, options?: SwitchboardErrorOptions) {
    super('EINVAL', message, options);
  }
}

/** A message larger than the communicator's configured maximum. */
export class MessageTooLargeError extends SwitchboardError {
  override name = 'MessageTooLargeError';
  constructor(message: string, options?: SwitchboardErrorOptions) {
    super('EMSGSIZE', message, options);
  }
}

/** A rank of a job failed (threw, exited non-zero or was killed); `rank` names it. */
export class RankFailedError extends SwitchboardError {
  override name = 'RankFailedError';
  readonly rank: number;
  constructor(rank: number, message: string, options?: SwitchboardErrorOptions) {
    super('EIO', message, options);
    this.rank = rank;
  }
}

/** Exit status of a rank process that failed only because another rank was lost (EX_TEMPFAIL). */
export const PEER_LOST_EXIT = 75;

/** Exit status of a rank process that stopped because its launcher was gone (128 + SIGHUP, as a hangup would). */
export const LAUNCHER_GONE_EXIT = 129;
