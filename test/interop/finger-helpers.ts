/**
 * Running the Debian (netkit) finger client against a server on any port: it
 * only speaks to the `finger` port of /etc/services, so it runs in a private
 * mount namespace where /etc/services says finger is our test port.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
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

/** Run the Debian client with `args` in a mount namespace whose /etc/services maps finger to the test port. */
export function debianFinger(services: string, args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('unshare', ['-m', 'sh', '-c', 'mount --bind "$0" /etc/services && exec /usr/bin/finger "$@"', services, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString('latin1')));
    child.stderr.on('data', (d: Buffer) => (err += d.toString('latin1')));
    const t = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('close', (status) => {
      clearTimeout(t);
      resolve({ status, stdout: out, stderr: err });
    });
  });
}

/** The Debian client's local answer (it reads passwd/utmp itself). */
export function localFinger(args: string[]): string {
  return execFileSync(FINGER, args, { encoding: 'latin1' });
}
