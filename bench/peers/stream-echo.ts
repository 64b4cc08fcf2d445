/**
 * The far end of the transport benchmark, run as a separate process so every
 * figure crosses a real process boundary. Each mode serves the same tiny
 * byte protocol twice, once with raw Node APIs (the baseline) and once with
 * Switchboard Channels:
 *   'E' then bytes: echo every byte back (round trips);
 *   'C' + u32 n:    count n bytes, then answer 'K'; repeat (one-way throughput).
 * Usage: stream-echo <raw|sb> <tcp|unix|stdio|pipes|fifo|udp> [address|paths]
 */
import dgram from 'node:dgram';
import { open, openSync } from 'node:fs';
import net from 'node:net';
import { bindUdp, inheritedChannels, listen, openFifo, type Channel } from '../../src/transport/index.js';

interface Duplex {
  onData(cb: (b: Uint8Array) => void): void;
  write(b: Uint8Array): void;
}

/** The byte protocol, over any duplex. */
function serve(d: Duplex): void {
  let mode: 'header' | 'echo' | 'count' = 'header';
  let need = 0;
  let header: number[] = [];
  const K = Uint8Array.of(0x4b);
  d.onData((buf) => {
    let i = 0;
    while (i < buf.length) {
      if (mode === 'echo') {
        d.write(i === 0 ? buf : buf.subarray(i));
        return;
      }
      if (mode === 'header') {
        header.push(buf[i++]!);
        if (header[0] === 0x45) {
          mode = 'echo';
          header = [];
        } else if (header.length === 5) {
          need = ((header[1]! << 24) | (header[2]! << 16) | (header[3]! << 8) | header[4]!) >>> 0;
          header = [];
          mode = 'count';
          if (need === 0) {
            d.write(K);
            mode = 'header';
          }
        }
        continue;
      }
      const take = Math.min(need, buf.length - i);
      need -= take;
      i += take;
      if (need === 0) {
        d.write(K);
        mode = 'header';
      }
    }
  });
}

function rawSocket(s: net.Socket): Duplex {
  s.setNoDelay?.(true);
  return { onData: (cb) => s.on('data', cb), write: (b) => void s.write(b) };
}

function sbChannel(read: Channel, write: Channel = read): Duplex {
  return {
    onData: (cb) =>
      void (async () => {
        for await (const c of read) cb(c);
      })().catch(() => process.exit(0)),
    write: (b) => void write.write(b), // a failed write also fails the read loop, which exits
  };
}

const [impl, kind, a1, a2] = process.argv.slice(2);
const ready = (extra = ''): void => void process.stderr.write(`READY ${extra}\n`);

if (kind === 'tcp' || kind === 'unix') {
  if (impl === 'raw') {
    const srv = net.createServer((s) => serve(rawSocket(s)));
    if (kind === 'tcp') srv.listen(0, '127.0.0.1', () => ready(`tcp://127.0.0.1:${(srv.address() as net.AddressInfo).port}`));
    else srv.listen(a1, () => ready(`unix://${a1}`));
  } else {
    const l = await listen(kind === 'tcp' ? 'tcp://127.0.0.1:0' : `unix://${a1}`, { onConnection: (ch) => serve(sbChannel(ch)) });
    ready(kind === 'tcp' ? `tcp://127.0.0.1:${(l.address as { port: number }).port}` : `unix://${a1}`);
  }
} else if (kind === 'stdio') {
  serve({ onData: (cb) => process.stdin.on('data', cb), write: (b) => void process.stdout.write(b) });
  ready();
} else if (kind === 'pipes') {
  const ch = inheritedChannels();
  serve(sbChannel(ch['down']!, ch['up'] ?? ch['down']!));
  ready();
} else if (kind === 'fifo') {
  // a1: client -> server FIFO, a2: server -> client FIFO
  if (impl === 'raw') {
    ready();
    const rfd = await new Promise<number>((res, rej) => open(a1!, 'r', (e, fd) => (e ? rej(e) : res(fd))));
    const wfd = openSync(a2!, 'w');
    const r = new net.Socket({ fd: rfd, readable: true, writable: false });
    const w = new net.Socket({ fd: wfd, readable: false, writable: true });
    serve({ onData: (cb) => r.on('data', cb), write: (b) => void w.write(b) });
  } else {
    ready();
    const r = await openFifo(a1!, 'r');
    const w = await openFifo(a2!, 'w');
    serve(sbChannel(r, w));
  }
} else if (kind === 'udp') {
  // datagram echo only
  if (impl === 'raw') {
    const s = dgram.createSocket('udp4');
    s.on('message', (m, r) => s.send(m, r.port, r.address));
    s.bind(0, '127.0.0.1', () => ready(`udp://127.0.0.1:${s.address().port}`));
  } else {
    const ep = await bindUdp({ host: '127.0.0.1', port: 0 });
    ready(`udp://127.0.0.1:${ep.address.port}`);
    for (;;) {
      const m = await ep.receive();
      if (m === null) break;
      void ep.send(m.data, m.from);
    }
  }
} else {
  process.stderr.write('usage: stream-echo <raw|sb> <tcp|unix|stdio|pipes|fifo|udp> [address|paths]\n');
  process.exit(2);
}
