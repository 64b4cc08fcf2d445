/**
 * Running the Debian (netkit) finger client against a server on any port: it
 * only speaks to the `finger` port of /etc/services, so it runs in a private
 * mount namespace where /etc/services says finger is our test port.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const FINGER = '/usr/bin/finger';

/** Why the Debian client cannot be run here, or undefined when it can. */
export function debianClientUnavailable(): string | undefined {
  if (!existsSync(FINGER)) return 'the Debian finger client is not installed (apt-get install finger)';
  if (process.getuid?.() !== 0) return 'not root: cannot create the mount namespace that points the Debian client at a test port';
  const r = spawnSync('unshare', ['-m', 'true'], { stdio: 'ignore' });
  if (r.status !== 0) return 'mount namespaces are not allowed here (unshare -m failed)';
  return undefined;
}

/** Why a network namespace with port 79 cannot be made, or undefined. */
export function netnsUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root: cannot create a network namespace to bind port 79 in';
  const r = spawnSync('unshare', ['-n', 'sh', '-c', 'ip link set lo up'], { stdio: 'ignore' });
  if (r.status !== 0) return 'network namespaces are not allowed here (unshare -n failed)';
  if (spawnSync('nsenter', ['--version'], { stdio: 'ignore' }).status !== 0) return 'nsenter (util-linux) is missing';
  return undefined;
}

/** Write a copy of /etc/services where finger is `port`. */
export function servicesWithFingerPort(dir: string, port: number): string {
  const text = readFileSync('/etc/services', 'utf8').replace(/^finger\s+\d+\/tcp.*$/m, `finger\t\t${port}/tcp`);
  const path = join(dir, 'services');
  writeFileSync(path, /^finger\s/m.test(text) ? text : `${text}\nfinger\t\t${port}/tcp\n`);
  return path;
}

/**
 * Run a command with stdout and stderr in files. When its stdout is a socket
 * (as under fingerd) netkit's finger keeps CRLF line ends, and Node's 'pipe'
 * stdio is a socketpair, so tests must not capture it through a pipe.
 */
export async function runToFiles(command: string, args: string[], timeoutMs = 20_000): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'sb-finger-out-'));
  const outPath = join(dir, 'out');
  const errPath = join(dir, 'err');
  const out = openSync(outPath, 'w');
  const err = openSync(errPath, 'w');
  try {
    const child = spawn(command, args, { stdio: ['ignore', out, err] });
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const status = await new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    clearTimeout(t);
    return { status, stdout: readFileSync(outPath, 'latin1'), stderr: readFileSync(errPath, 'latin1') };
  } finally {
    closeSync(out);
    closeSync(err);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Run the Debian client with `args` in a mount namespace whose /etc/services maps finger to the test port. */
export function debianFinger(services: string, args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return runToFiles('unshare', ['-m', 'sh', '-c', 'mount --bind "$0" /etc/services && exec /usr/bin/finger "$@"', services, ...args]);
}

/** The Debian client's local answer (it reads passwd/utmp itself). */
export async function localFinger(args: string[]): Promise<string> {
  return (await runToFiles(FINGER, args)).stdout;
}
