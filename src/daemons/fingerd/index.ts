/** fingerd: the RFC 1288 finger daemon (seed 12.4), its parts exported for reuse and tests. */
export { FORWARDING_DENIED, LISTING_DENIED, FingerService, startFingerd, type FingerDaemon, type FingerdOptions, type FingerdStats } from './server.js';
export { forwardedQuery, parseQuery, type FingerQuery, type QueryLimits } from './query.js';
export { escapeControls, formatLong, formatLongList, formatPhone, formatShort, longIdle, shortIdle, type FormatOptions } from './format.js';
export { readSharedHomeFile, type HomeFileLimits, type HomeFileRefusal, type HomeFileResult } from './home-files.js';
export {
  DirectoryUserSource,
  HOME_FILES,
  SystemUserSource,
  matchesUser,
  type FingerSession,
  type FingerUser,
  type MailStatus,
  type SystemSourceOptions,
  type UserSource,
} from './users.js';
export {
  LASTLOG_RECORD_SIZE,
  UTMP_RECORD_SIZE,
  UtmpType,
  decodeLastlogRecord,
  decodeUtmp,
  decodeUtmpRecord,
  encodeLastlogRecord,
  encodeUtmpRecord,
  lastLoginFromWtmp,
  userSessions,
  type LastlogRecord,
  type UtmpRecord,
} from './utmp.js';
