/**
 * The daemon's log: one line per event, with an ISO timestamp and the daemon
 * name, appended to a file that SIGHUP reopens (so logrotate can move it
 * away), or written to stderr in the foreground. Writes are synchronous and
 * small: a line is never interleaved with another, and nothing is lost when
 * the process exits right after logging.
 */
import { closeSync, openSync, writeSync, constants as fsc } from 'node:fs';
import { fromSystemError } from '../errors.js';

export interface DaemonLog {
  /** Log one line (newlines inside are escaped so one event stays one line). */
  info(message: string): void;
  error(message: string): void;
  /** Reopen the file (after rotation). No-op on stderr. */
  reopen(): void;
  close(): void;
  /** The file path, or undefined for stderr. */
  readonly file: string | undefined;
}

export interface LogOptions {
  name: string;
  /** Append to this file; stderr when undefined. */
  file?: string | undefined;
  /** Drop lines (tests, --quiet). */
  silent?: boolean | undefined;
  /** Clock for timestamps (tests). */
  now?: () => Date;
}

function openLog(file: string): number {
  try {
    return openSync(file, fsc.O_WRONLY | fsc.O_APPEND | fsc.O_CREAT | fsc.O_NOFOLLOW, 0o640);
  } catch (err) {
    throw fromSystemError(err, `log file ${file}`);
  }
}

export function createLog(options: LogOptions): DaemonLog {
  const { name, file } = options;
  const now = options.now ?? (() => new Date());
  let fd = file === undefined ? 2 : openLog(file);
  const write = (level: string, message: string): void => {
    if (options.silent) return;
    const line = `${now().toISOString()} ${name}[${process.pid}] ${level}: ${message.replace(/\r?\n/g, '\\n')}\n`;
    try {
      writeSync(fd, line);
    } catch {
      // a full disk or a closed stderr must never take the daemon down
    }
  };
  return {
    file,
    info: (m) => write('info', m),
    error: (m) => write('error', m),
    reopen() {
      if (file === undefined) return;
      const next = openLog(file);
      const old = fd;
      fd = next;
      try {
        closeSync(old);
      } catch {
        // ignore
      }
    },
    close() {
      if (file === undefined || fd < 0) return;
      try {
        closeSync(fd);
      } catch {
        // ignore
      }
      fd = -1;
    },
  };
}
