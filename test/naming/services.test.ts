/** Well-known names (seed 12.1, 12.4): the services(5) database and service names in addresses. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SwitchboardError } from '../../src/errors.js';
import {
  ServiceDatabase,
  getServiceByName,
  getServiceByPort,
  parseServices,
  resolvePort,
  ServiceParseError,
} from '../../src/naming/services.js';
import { formatAddress, parseAddress } from '../../src/transport/index.js';
import { tempDir } from '../transport/pairs.js';

const SAMPLE = `# Network services, Internet style
tcpmux		1/tcp				# TCP port service multiplexer
echo		7/tcp
echo		7/udp
finger		79/tcp
http		80/tcp		www		# WorldWideWeb HTTP
sunrpc		111/tcp		portmapper	# RPC 4.0 portmapper
sunrpc		111/udp		portmapper

  broken line without port
kerberos	88/tcp		kerberos5 krb5 kerberos-sec	# Kerberos v5
`;

test('parses names, ports, protocols, aliases and comments; skips malformed lines like glibc', () => {
  const entries = parseServices(SAMPLE);
  assert.equal(entries.length, 8);
  assert.deepEqual(entries[4], { name: 'http', port: 80, protocol: 'tcp', aliases: ['www'] });
  assert.deepEqual(entries[7]?.aliases, ['kerberos5', 'krb5', 'kerberos-sec']);
  assert.throws(() => parseServices(SAMPLE, { strict: true, file: 'x' }), (e: ServiceParseError) => e.line === 10 && /x:10/.test(e.message));
});

test('getServiceByName / getServiceByPort, by protocol and alias, first entry wins', () => {
  const db = new ServiceDatabase(parseServices(SAMPLE));
  assert.equal(db.byName('finger', 'tcp')?.port, 79);
  assert.equal(db.byName('finger', 'udp'), undefined);
  assert.equal(db.byName('www')?.name, 'http');
  assert.equal(db.byName('portmapper', 'udp')?.port, 111);
  assert.equal(db.byPort(7)?.protocol, 'tcp');
  assert.equal(db.byPort(7, 'udp')?.name, 'echo');
  assert.equal(db.byPort(9999), undefined);
});

test('the system database knows finger and Switchboard\'s own name-service port', () => {
  assert.equal(getServiceByName('finger', 'tcp')?.port, 79);
  assert.equal(getServiceByPort(79, 'tcp')?.name, 'finger');
  assert.equal(getServiceByName('switchboard-ns', 'tcp')?.port, 7117);
});

test('resolvePort takes numbers, numeric strings and service names, and rejects the rest', () => {
  assert.equal(resolvePort(80), 80);
  assert.equal(resolvePort('8080'), 8080);
  assert.equal(resolvePort('finger'), 79);
  assert.throws(() => resolvePort(70000), (e: SwitchboardError) => e.code === 'EINVAL' && /65535/.test(e.message));
  assert.throws(() => resolvePort(-1), (e: SwitchboardError) => e.code === 'EINVAL');
  assert.throws(() => resolvePort(1.5), (e: SwitchboardError) => e.code === 'EINVAL');
  assert.throws(() => resolvePort('no-such-service'), (e: SwitchboardError) => e.code === 'ENOENT');
});

test('a given services file is read; a missing one is a typed error', () => {
  const t = tempDir();
  try {
    const f = join(t.dir, 'services');
    writeFileSync(f, 'bank 4000/tcp atm\n');
    const db = ServiceDatabase.fromFile(f, { withSwitchboard: false });
    assert.equal(db.byName('atm')?.port, 4000);
    assert.throws(() => ServiceDatabase.fromFile(join(t.dir, 'nope')), (e: SwitchboardError) => e.code === 'ENOENT');
  } finally {
    t.remove();
  }
});

test('addresses parse and print, with service names for ports', () => {
  assert.deepEqual(parseAddress('tcp://localhost:finger'), { transport: 'tcp', host: 'localhost', port: 79 });
  assert.deepEqual(parseAddress('tcp://[::1]:7117'), { transport: 'tcp', host: '::1', port: 7117 });
  assert.deepEqual(parseAddress('unix:///run/x.sock'), { transport: 'unix', path: '/run/x.sock' });
  assert.deepEqual(parseAddress('shm:ring-1'), { transport: 'shm', name: 'ring-1' });
  for (const s of ['tcp://127.0.0.1:7117', 'tcp://[::1]:1', 'udp://h:53', 'unix:///a', 'fifo:///b', 'shm:r']) {
    assert.equal(formatAddress(parseAddress(s)), s);
  }
  for (const bad of ['', 'tcp://hostonly', 'tcp://:80', 'ftp://x:1', 'tcp://[::1]80', 'unix://', `unix://${'/x'.repeat(60)}`, 'shm:bad/name']) {
    assert.throws(() => parseAddress(bad), (e: SwitchboardError) => e.code === 'EINVAL' || e.code === 'ENOENT', bad);
  }
});
