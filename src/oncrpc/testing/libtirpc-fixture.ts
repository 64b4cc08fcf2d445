/**
 * The `.x` file, C programs and expected values shared by the libtirpc
 * interop tests and the ONC RPC benchmark. The C side is built with the
 * Debian rpcgen and gcc against libtirpc in a temporary folder.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const INTEROP_PROG = 0x20005b1d;
export const INTEROP_V1 = 1;

export const INTEROP_X = `/* interop.x: written by the switchboard interop tests. */
const MAXNAME = 64;
const MAXITEMS = 16;

enum kind { KIND_NONE = 0, KIND_TEXT = 1, KIND_NUMBER = 2, KIND_LIST = 3 };

typedef string name_t<MAXNAME>;
typedef opaque blob_t<>;

struct item {
  name_t label;
  hyper value;
  unsigned hyper uvalue;
  double ratio;
  bool flag;
  int codes[3];
  opaque tag[5];
  item *next;
};

union payload switch (kind k) {
case KIND_TEXT:
  string text<>;
case KIND_NUMBER:
  hyper number;
case KIND_LIST:
  item items<MAXITEMS>;
default:
  void;
};

struct record {
  name_t owner;
  payload body;
  item *first;
  int counts<>;
  float weight;
  blob_t data;
};

program INTEROP_PROG {
  version INTEROP_V1 {
    record ECHO_RECORD(record) = 1;
    payload ECHO_PAYLOAD(payload) = 2;
    hyper SUM(item) = 3;
    blob_t ECHO_BLOB(blob_t) = 4;
    name_t GREET(name_t) = 5;
  } = 1;
} = 0x20005B1D;
`;

const C_IMPL = String.raw`
#include "interop.h"
#include <stdio.h>
#include <string.h>

record *echo_record_1_svc(record *argp, struct svc_req *rq) { (void)rq; return argp; }
payload *echo_payload_1_svc(payload *argp, struct svc_req *rq) { (void)rq; return argp; }
blob_t *echo_blob_1_svc(blob_t *argp, struct svc_req *rq) { (void)rq; return argp; }
quad_t *sum_1_svc(item *argp, struct svc_req *rq) {
  static quad_t s;
  (void)rq;
  s = 0;
  for (item *i = argp; i != NULL; i = i->next) s += i->value;
  return &s;
}
name_t *greet_1_svc(name_t *argp, struct svc_req *rq) {
  static char buf[MAXNAME + 1];
  static name_t r;
  (void)rq;
  snprintf(buf, sizeof buf, "hello, %s", *argp);
  r = buf;
  return &r;
}
`;

const C_SERVER_MAIN = String.raw`
#include "interop.h"
#include <rpc/rpc.h>
#include <netconfig.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

extern void interop_prog_1(struct svc_req *, SVCXPRT *);
static int registered;

static void bye(int sig) {
  (void)sig;
  if (registered) rpcb_unset(INTEROP_PROG, INTEROP_V1, NULL);
  _exit(0);
}

static int bound_inet(int type) {
  int fd = socket(AF_INET, type, 0), one = 1;
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) { perror("bind"); exit(1); }
  if (type == SOCK_STREAM) listen(fd, 64);
  return fd;
}

static int port_of(int fd) {
  struct sockaddr_in a;
  socklen_t l = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &l);
  return ntohs(a.sin_port);
}

/* usage: server UNIX_PATH [register] */
int main(int argc, char **argv) {
  int reg = argc > 2 && strcmp(argv[2], "register") == 0;
  signal(SIGTERM, bye);
  signal(SIGINT, bye);
  int tfd = bound_inet(SOCK_STREAM), ufd = bound_inet(SOCK_DGRAM);
  int lfd = socket(AF_LOCAL, SOCK_STREAM, 0);
  struct sockaddr_un sun;
  memset(&sun, 0, sizeof sun);
  sun.sun_family = AF_LOCAL;
  strncpy(sun.sun_path, argv[1], sizeof sun.sun_path - 1);
  unlink(argv[1]);
  if (bind(lfd, (struct sockaddr *)&sun, sizeof sun) != 0) { perror("bind unix"); exit(1); }
  listen(lfd, 64);
  SVCXPRT *t = svc_vc_create(tfd, 0, 0), *u = svc_dg_create(ufd, 0, 0), *l = svc_vc_create(lfd, 0, 0);
  if (!t || !u || !l) { fprintf(stderr, "cannot create transports\n"); exit(1); }
  if (reg) { rpcb_unset(INTEROP_PROG, INTEROP_V1, NULL); registered = 1; }
  if (!svc_reg(t, INTEROP_PROG, INTEROP_V1, interop_prog_1, reg ? getnetconfigent("tcp") : NULL) ||
      !svc_reg(u, INTEROP_PROG, INTEROP_V1, interop_prog_1, reg ? getnetconfigent("udp") : NULL) ||
      !svc_reg(l, INTEROP_PROG, INTEROP_V1, interop_prog_1, reg ? getnetconfigent("local") : NULL)) {
    fprintf(stderr, "svc_reg failed\n");
    bye(0);
  }
  printf("READY %d %d\n", port_of(tfd), port_of(ufd));
  fflush(stdout);
  svc_run();
  return 1;
}
`;

const C_CLIENT = String.raw`
#include "interop.h"
#include <rpc/rpc.h>
#include <netconfig.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static void hex(const char *name, const char *p, unsigned n) {
  printf("%s=", name);
  for (unsigned i = 0; i < n; i++) printf("%02x", (unsigned char)p[i]);
  printf("\n");
}

static void print_item(const char *pre, item *it) {
  unsigned long long bits;
  memcpy(&bits, &it->ratio, 8);
  printf("%s.label=%s\n%s.value=%lld\n%s.uvalue=%llu\n%s.ratio=%016llx\n%s.flag=%d\n%s.codes=%d,%d,%d\n",
         pre, it->label, pre, (long long)it->value, pre, (unsigned long long)it->uvalue, pre, bits, pre, it->flag ? 1 : 0,
         pre, it->codes[0], it->codes[1], it->codes[2]);
  char name[256];
  snprintf(name, sizeof name, "%s.tag", pre);
  hex(name, it->tag, 5);
  snprintf(name, sizeof name, "%s.next", pre);
  if (it->next) print_item(name, it->next);
  else printf("%s=null\n", name);
}

static void print_payload(const char *pre, payload *p) {
  printf("%s.k=%d\n", pre, (int)p->k);
  char name[256];
  switch (p->k) {
  case KIND_TEXT: printf("%s.text=%s\n", pre, p->payload_u.text); break;
  case KIND_NUMBER: printf("%s.number=%lld\n", pre, (long long)p->payload_u.number); break;
  case KIND_LIST:
    printf("%s.items.len=%u\n", pre, p->payload_u.items.items_len);
    for (unsigned i = 0; i < p->payload_u.items.items_len; i++) {
      snprintf(name, sizeof name, "%s.items[%u]", pre, i);
      print_item(name, &p->payload_u.items.items_val[i]);
    }
    break;
  default: break;
  }
}

static void print_record(const char *pre, record *r) {
  char name[256];
  printf("%s.owner=%s\n", pre, r->owner);
  snprintf(name, sizeof name, "%s.body", pre);
  print_payload(name, &r->body);
  snprintf(name, sizeof name, "%s.first", pre);
  if (r->first) print_item(name, r->first);
  else printf("%s=null\n", name);
  printf("%s.counts=", pre);
  for (unsigned i = 0; i < r->counts.counts_len; i++) printf(i ? ",%d" : "%d", r->counts.counts_val[i]);
  printf("\n");
  unsigned int wbits;
  memcpy(&wbits, &r->weight, 4);
  printf("%s.weight=%08x\n", pre, wbits);
  snprintf(name, sizeof name, "%s.data", pre);
  hex(name, r->data.blob_t_val, r->data.blob_t_len);
}

static item B = { "", -9007199254740993LL, 0ULL, -2.5e300, FALSE, { 0, 2147483647, -2147483647 - 1 }, { 0, 0, 0, 0, (char)255 }, NULL };
static item A = { "a", 1LL, 18446744073709551615ULL, 0.1, TRUE, { 1, -2, 3 }, { 1, 2, 3, 4, 5 }, &B };

static CLIENT *make_client(const char *mode, const char *netid, const char *target) {
  CLIENT *c = NULL;
  if (strcmp(mode, "rpcbind") == 0) {
    /* "local" is a netid, not a clnt_create nettype: look it up in /etc/netconfig. */
    struct netconfig *nc = getnetconfigent(netid);
    if (nc == NULL) { fprintf(stderr, "no netconfig entry %s\n", netid); exit(2); }
    c = clnt_tp_create(target, INTEROP_PROG, INTEROP_V1, nc);
  } else if (strcmp(netid, "local") == 0) {
    int fd = socket(AF_LOCAL, SOCK_STREAM, 0);
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_LOCAL;
    strncpy(sun.sun_path, target, sizeof sun.sun_path - 1);
    if (connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) { perror("connect"); exit(2); }
    struct netbuf nb = { sizeof sun, sizeof sun, &sun };
    c = clnt_vc_create(fd, &nb, INTEROP_PROG, INTEROP_V1, 0, 0);
  } else {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(atoi(target));
    int sock = RPC_ANYSOCK;
    if (strcmp(netid, "tcp") == 0) c = clnttcp_create(&a, INTEROP_PROG, INTEROP_V1, &sock, 0, 0);
    else {
      struct timeval wait = { 1, 0 };
      c = clntudp_create(&a, INTEROP_PROG, INTEROP_V1, wait, &sock);
    }
  }
  if (c == NULL) { clnt_pcreateerror("client"); exit(2); }
  return c;
}

#define CHECK(x) do { if ((x) == NULL) { clnt_perror(c, #x); exit(3); } } while (0)

static double cpu_us(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/*
 * usage: client MODE NETID TARGET            (MODE rpcbind: TARGET is a host; direct: a port or a socket path)
 *        client MODE NETID TARGET bench SIZE N   (ECHO_BLOB of SIZE bytes N times;
 *                                                  prints wall us/call, then CPU us/call of this process)
 */
int main(int argc, char **argv) {
  if (argc < 4) { fprintf(stderr, "usage: client rpcbind|direct tcp|udp|local TARGET [bench SIZE N]\n"); return 1; }
  CLIENT *c = make_client(argv[1], argv[2], argv[3]);
  if (argc >= 7 && strcmp(argv[4], "bench") == 0) {
    int size = atoi(argv[5]), n = atoi(argv[6]);
    blob_t in;
    in.blob_t_len = size;
    in.blob_t_val = calloc(size + 1, 1);
    struct timeval tv = { 25, 0 };
    for (int round = 0; round < 2; round++) {
      int iters = round == 0 ? n / 10 + 1 : n;
      double t0 = now_us(), c0 = cpu_us();
      for (int i = 0; i < iters; i++) {
        if (size == 0) {
          if (clnt_call(c, NULLPROC, (xdrproc_t)xdr_void, NULL, (xdrproc_t)xdr_void, NULL, tv) != RPC_SUCCESS) { clnt_perror(c, "null"); return 3; }
        } else {
          blob_t out;
          memset(&out, 0, sizeof out);
          if (clnt_call(c, ECHO_BLOB, (xdrproc_t)xdr_blob_t, (caddr_t)&in, (xdrproc_t)xdr_blob_t, (caddr_t)&out, tv) != RPC_SUCCESS) { clnt_perror(c, "echo"); return 3; }
          clnt_freeres(c, (xdrproc_t)xdr_blob_t, (caddr_t)&out);
        }
      }
      if (round == 1) printf("%.3f %.3f\n", (now_us() - t0) / iters, (cpu_us() - c0) / iters);
    }
    return 0;
  }
  name_t who = "alice";
  name_t *g;
  CHECK(g = greet_1(&who, c));
  printf("greet=%s\n", *g);
  quad_t *s;
  CHECK(s = sum_1(&A, c));
  printf("sum=%lld\n", (long long)*s);
  char bytes[37];
  for (int i = 0; i < 37; i++) bytes[i] = (char)(i * 7);
  blob_t bl = { 37, bytes }, *blr;
  CHECK(blr = echo_blob_1(&bl, c));
  hex("blob", blr->blob_t_val, blr->blob_t_len);
  payload p, *pr;
  p.k = KIND_TEXT;
  p.payload_u.text = "hi there";
  CHECK(pr = echo_payload_1(&p, c));
  print_payload("text", pr);
  p.k = KIND_NUMBER;
  p.payload_u.number = -9223372036854775807LL - 1;
  CHECK(pr = echo_payload_1(&p, c));
  print_payload("number", pr);
  p.k = KIND_NONE;
  CHECK(pr = echo_payload_1(&p, c));
  print_payload("none", pr);
  item two[2] = { A, B };
  p.k = KIND_LIST;
  p.payload_u.items.items_len = 2;
  p.payload_u.items.items_val = two;
  CHECK(pr = echo_payload_1(&p, c));
  print_payload("list", pr);
  int counts[3] = { 1, -2, 2147483647 };
  char data[5] = { (char)0xde, (char)0xad, (char)0xbe, (char)0xef, 1 };
  record r, *rr;
  r.owner = "bob";
  r.body.k = KIND_TEXT;
  r.body.payload_u.text = "nested";
  r.first = &A;
  r.counts.counts_len = 3;
  r.counts.counts_val = counts;
  r.weight = 1.5f;
  r.data.blob_t_len = 5;
  r.data.blob_t_val = data;
  CHECK(rr = echo_record_1(&r, c));
  print_record("record", rr);
  r.first = NULL;
  r.counts.counts_len = 0;
  r.body.k = KIND_NONE;
  r.data.blob_t_len = 0;
  CHECK(rr = echo_record_1(&r, c));
  print_record("empty", rr);
  clnt_destroy(c);
  return 0;
}
`;

// --- the same values on the TypeScript side --------------------------------

export interface Item {
  label: string;
  value: bigint;
  uvalue: bigint;
  ratio: number;
  flag: boolean;
  codes: number[];
  tag: Uint8Array;
  next: Item | null;
}
export type Payload = { k: 0 } | { k: 1; text: string } | { k: 2; number: bigint } | { k: 3; items: Item[] };
export interface Rec {
  owner: string;
  body: Payload;
  first: Item | null;
  counts: number[];
  weight: number;
  data: Uint8Array;
}

export const itemB: Item = { label: '', value: -9007199254740993n, uvalue: 0n, ratio: -2.5e300, flag: false, codes: [0, 2147483647, -2147483648], tag: new Uint8Array([0, 0, 0, 0, 255]), next: null };
export const itemA: Item = { label: 'a', value: 1n, uvalue: 18446744073709551615n, ratio: 0.1, flag: true, codes: [1, -2, 3], tag: new Uint8Array([1, 2, 3, 4, 5]), next: itemB };
export const blob37 = Uint8Array.from({ length: 37 }, (_, i) => (i * 7) & 0xff);
export const recordFull: Rec = { owner: 'bob', body: { k: 1, text: 'nested' }, first: itemA, counts: [1, -2, 2147483647], weight: 1.5, data: new Uint8Array([0xde, 0xad, 0xbe, 0xef, 1]) };
export const recordEmpty: Rec = { owner: 'bob', body: { k: 0 }, first: null, counts: [], weight: 1.5, data: new Uint8Array(0) };
export const payloads: Array<[string, Payload]> = [
  ['text', { k: 1, text: 'hi there' }],
  ['number', { k: 2, number: -9223372036854775808n }],
  ['none', { k: 0 }],
  ['list', { k: 3, items: [itemA, itemB] }],
];

const hexOf = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
function doubleBits(x: number): string {
  const v = new DataView(new ArrayBuffer(8));
  v.setFloat64(0, x, true);
  return v.getBigUint64(0, true).toString(16).padStart(16, '0');
}
function floatBits(x: number): string {
  const v = new DataView(new ArrayBuffer(4));
  v.setFloat32(0, x, true);
  return v.getUint32(0, true).toString(16).padStart(8, '0');
}

/** The lines the C client prints, from TypeScript values: the two sides are compared value by value. */
export function itemLines(pre: string, it: Item): string[] {
  return [
    `${pre}.label=${it.label}`,
    `${pre}.value=${it.value}`,
    `${pre}.uvalue=${it.uvalue}`,
    `${pre}.ratio=${doubleBits(it.ratio)}`,
    `${pre}.flag=${it.flag ? 1 : 0}`,
    `${pre}.codes=${it.codes.join(',')}`,
    `${pre}.tag=${hexOf(it.tag)}`,
    ...(it.next ? itemLines(`${pre}.next`, it.next) : [`${pre}.next=null`]),
  ];
}

export function payloadLines(pre: string, p: Payload): string[] {
  const out = [`${pre}.k=${p.k}`];
  if (p.k === 1) out.push(`${pre}.text=${p.text}`);
  if (p.k === 2) out.push(`${pre}.number=${p.number}`);
  if (p.k === 3) {
    out.push(`${pre}.items.len=${p.items.length}`);
    p.items.forEach((it, i) => out.push(...itemLines(`${pre}.items[${i}]`, it)));
  }
  return out;
}

export function recordLines(pre: string, r: Rec): string[] {
  return [
    `${pre}.owner=${r.owner}`,
    ...payloadLines(`${pre}.body`, r.body),
    ...(r.first ? itemLines(`${pre}.first`, r.first) : [`${pre}.first=null`]),
    `${pre}.counts=${r.counts.join(',')}`,
    `${pre}.weight=${floatBits(r.weight)}`,
    `${pre}.data=${hexOf(r.data)}`,
  ];
}

/** Everything the C client prints when every call is answered correctly. */
export function expectedClientLines(): string[] {
  return [
    'greet=hello, alice',
    `sum=${itemA.value + itemB.value}`,
    `blob=${hexOf(blob37)}`,
    ...payloads.flatMap(([name, p]) => payloadLines(name, p)),
    ...recordLines('record', recordFull),
    ...recordLines('empty', recordEmpty),
  ];
}

export interface CBuild {
  dir: string;
  server: string;
  client: string;
}

/** Why the C peers cannot be built here, or undefined when they can. */
export function cToolchainMissing(): string | undefined {
  for (const [cmd, args] of [['rpcgen', ['--version']], ['gcc', ['--version']], ['pkg-config', ['--exists', 'libtirpc']]] as const) {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    if (r.error) return `${cmd} is not installed`;
    if (cmd === 'pkg-config' && r.status !== 0) return 'libtirpc-dev is not installed (pkg-config libtirpc)';
  }
  return undefined;
}

/** rpcgen + gcc: a C server and client for interop.x in `dir`. Throws with the compiler output on failure. */
export function buildC(dir: string): CBuild {
  writeFileSync(join(dir, 'interop.x'), INTEROP_X);
  writeFileSync(join(dir, 'impl.c'), C_IMPL);
  writeFileSync(join(dir, 'server_main.c'), C_SERVER_MAIN);
  writeFileSync(join(dir, 'client.c'), C_CLIENT);
  const run = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { cwd: dir, encoding: 'utf8' });
    if (r.error || r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.error?.message ?? ''}${r.stderr}`);
  };
  run('rpcgen', ['-h', 'interop.x', '-o', 'interop.h']);
  run('rpcgen', ['-c', 'interop.x', '-o', 'interop_xdr.c']);
  run('rpcgen', ['-l', 'interop.x', '-o', 'interop_clnt.c']);
  run('rpcgen', ['-m', 'interop.x', '-o', 'interop_svc.c']);
  const flags = spawnSync('pkg-config', ['--cflags', '--libs', 'libtirpc'], { encoding: 'utf8' }).stdout.trim().split(/\s+/);
  run('gcc', ['-O2', '-o', 'server', 'server_main.c', 'impl.c', 'interop_svc.c', 'interop_xdr.c', ...flags]);
  run('gcc', ['-O2', '-o', 'client', 'client.c', 'interop_clnt.c', 'interop_xdr.c', ...flags]);
  return { dir, server: join(dir, 'server'), client: join(dir, 'client') };
}

// --- peers: rpcbind and the C server ---------------------------------------


export interface RpcbindHandle {
  /** Why rpcbind is not usable, or undefined when it is. */
  missing?: string | undefined;
  /** True when this process started it (and stop() will stop it). */
  started: boolean;
  stop(): Promise<void>;
}

async function rpcbindAnswers(): Promise<boolean> {
  const { RpcbindClient } = await import('../index.js');
  try {
    const rb = await RpcbindClient.connect('tcp://127.0.0.1:111', { timeoutMs: 1500, connectTimeoutMs: 1500 });
    try {
      await rb.pmapDump();
      return true;
    } finally {
      await rb.close();
    }
  } catch {
    return false;
  }
}

/**
 * Reuse a running rpcbind, or start one (`rpcbind -f -h 127.0.0.111`, see
 * PITFALLS: -h 127.0.0.1 crashes rpcbind 1.2.6). Never stops one it did not start.
 */
export async function ensureRpcbind(): Promise<RpcbindHandle> {
  const none = { started: false, stop: async () => undefined };
  if (await rpcbindAnswers()) return none;
  const bin = ['/usr/sbin/rpcbind', '/sbin/rpcbind'].find((p) => existsSync(p));
  if (bin === undefined) return { ...none, missing: 'rpcbind is not installed (Debian package rpcbind)' };
  if (process.getuid?.() !== 0) return { ...none, missing: 'rpcbind is not running and starting it needs root' };
  const child = spawn(bin, ['-f', '-h', '127.0.0.111'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  for (let i = 0; i < 40; i++) {
    if (child.exitCode !== null) {
      // Someone else started one at the same moment: use theirs.
      if (await rpcbindAnswers()) return none;
      return { ...none, missing: `rpcbind exited at start: ${stderr.trim()}` };
    }
    if (await rpcbindAnswers()) return { started: true, stop };
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  return { ...none, missing: `rpcbind did not answer within 4 s: ${stderr.trim()}` };
}

export interface CServer {
  pid: number;
  tcpPort: number;
  udpPort: number;
  unixPath: string;
  stop(): Promise<void>;
}

/** Start the C server (optionally registered with rpcbind); resolves once it prints its ports. */
export async function startCServer(build: CBuild, unixPath: string, register: boolean): Promise<CServer> {
  const child: ChildProcess = spawn(build.server, [unixPath, ...(register ? ['register'] : [])], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  let out = '';
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  try {
    const [tcpPort, udpPort] = await new Promise<[number, number]>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`C server did not start: ${err}`)), 10_000);
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /READY (\d+) (\d+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve([Number(m[1]), Number(m[2])]);
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`C server exited with ${code}: ${err}`));
      });
    });
    return { pid: child.pid as number, tcpPort, udpPort, unixPath, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Run the C client (asynchronously: our server may be in this very process). */
export function runCClient(build: CBuild, args: string[], timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(build.client, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** CPU time (user + system) a process has used so far, in microseconds, from /proc (Linux; clock-tick resolution). */
export function processCpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1e6) / CLOCK_TICKS;
}

const CLOCK_TICKS = 100;
