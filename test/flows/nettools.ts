/**
 * Small network helpers for the flow lab test, run inside namespaces with
 * `ip netns exec NS node --import tsx test/flows/nettools.ts <command> ...`:
 *
 *   relay IF_A IF_B DELAY_MS   L2 relay between two interfaces (AF_PACKET raw sockets) that holds
 *                              every frame DELAY_MS before forwarding it: a constant-delay link for
 *                              kernels without netem (and without fq/EDT). Runs until killed.
 *   echo-server IP PORT        UDP echo server.
 *   echo-client IP PORT N [FROM]  N UDP probes 20 ms apart (from address FROM); prints {"rttMs":[...]} (a user-space ping).
 *   api BASE TOKEN_FILE        A logged-in client of lqosd's web API inside the namespace it listens in:
 *                              creates a test admin with the first-run token (or logs in), prints
 *                              "api ready", then answers each path read from stdin with one line
 *                              {"status":N,"body":...} (GET). Runs until stdin closes.
 *
 * The relay forwards frames in both directions, skips its own transmissions (PACKET_OUTGOING is
 * ignored on both sockets) and needs offloads off on both interfaces (frames must be wire size).
 */
import koffi from 'koffi';
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';

const AF_PACKET = 17, SOCK_RAW = 3, ETH_P_ALL_BE = 0x0300; // htons(0x0003)
const SOL_PACKET = 263, PACKET_IGNORE_OUTGOING = 23;
const MSG_DONTWAIT = 0x40, POLLIN = 1;

function relay(ifA: string, ifB: string, delayMs: number): void {
  const libc = koffi.load('libc.so.6');
  const socket = libc.func('int socket(int domain, int type, int protocol)');
  const bind = libc.func('int bind(int fd, const void *addr, uint32_t len)');
  const setsockopt = libc.func('int setsockopt(int fd, int level, int name, const void *val, uint32_t len)');
  const recv = libc.func('intptr_t recv(int fd, void *buf, size_t len, int flags)');
  const send = libc.func('intptr_t send(int fd, const void *buf, size_t len, int flags)');
  const poll = libc.func('int poll(void *fds, unsigned long n, int timeout)');
  const ifindex = libc.func('unsigned int if_nametoindex(const char *name)');

  const open = (name: string): number => {
    const idx = ifindex(name) as number;
    if (!idx) throw new Error(`no interface ${name}`);
    const fd = socket(AF_PACKET, SOCK_RAW, ETH_P_ALL_BE) as number;
    if (fd < 0) throw new Error(`socket(AF_PACKET) failed: errno ${koffi.errno()}`);
    const one = Buffer.alloc(4);
    one.writeInt32LE(1);
    setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, one, 4);
    const sll = Buffer.alloc(20);
    sll.writeUInt16LE(AF_PACKET, 0);
    sll.writeUInt16LE(ETH_P_ALL_BE, 2);
    sll.writeInt32LE(idx, 4);
    if ((bind(fd, sll, 20) as number) < 0) throw new Error(`bind(${name}) failed: errno ${koffi.errno()}`);
    return fd;
  };
  const fdA = open(ifA), fdB = open(ifB);
  const pfds = Buffer.alloc(16);
  pfds.writeInt32LE(fdA, 0);
  pfds.writeInt16LE(POLLIN, 4);
  pfds.writeInt32LE(fdB, 8);
  pfds.writeInt16LE(POLLIN, 12);
  const queue: Array<{ due: number; out: number; frame: Buffer }> = [];
  let head = 0;
  const buf = Buffer.alloc(65536);
  const now = () => performance.now();
  process.stdout.write('relay ready\n');
  for (;;) {
    // Send everything that is due.
    const t = now();
    while (head < queue.length && queue[head]!.due <= t) {
      const q = queue[head++]!;
      send(q.out, q.frame, q.frame.length, 0);
    }
    if (head > 4096) { queue.splice(0, head); head = 0; }
    const wait = head < queue.length ? Math.max(0, Math.ceil(queue[head]!.due - now())) : 1000;
    poll(pfds, 2, wait);
    for (const [from, to] of [[fdA, fdB], [fdB, fdA]] as const) {
      for (let i = 0; i < 256; i++) {
        const n = Number(recv(from, buf, buf.length, MSG_DONTWAIT));
        if (n <= 0) break;
        queue.push({ due: now() + delayMs, out: to, frame: Buffer.from(buf.subarray(0, n)) });
      }
    }
  }
}

function echoServer(ip: string, port: number): void {
  const s = dgram.createSocket(ip.includes(':') ? 'udp6' : 'udp4');
  s.on('message', (m, r) => s.send(m, r.port, r.address));
  s.bind(port, ip, () => process.stdout.write('echo ready\n'));
}

async function echoClient(ip: string, port: number, n: number, from?: string): Promise<void> {
  const s = dgram.createSocket(ip.includes(':') ? 'udp6' : 'udp4');
  if (from) await new Promise<void>((res) => s.bind(0, from, () => res()));
  const sent = new Map<number, number>();
  const rtts: number[] = [];
  s.on('message', (m) => {
    const id = m.readUInt32BE(0);
    const t = sent.get(id);
    if (t !== undefined) rtts.push(performance.now() - t);
  });
  for (let i = 0; i < n; i++) {
    const b = Buffer.alloc(64);
    b.writeUInt32BE(i);
    sent.set(i, performance.now());
    s.send(b, port, ip);
    await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, 1000));
  s.close();
  process.stdout.write(JSON.stringify({ rttMs: rtts }) + '\n');
}

async function api(base: string, tokenFile: string): Promise<void> {
  const creds = { username: 'flowlab', password: 'flow-lab-pass-1' };
  let cookie = '';
  const call = async (method: string, path: string, body?: unknown) => {
    const headers: Record<string, string> = {};
    if (cookie) headers.cookie = cookie;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    for (const c of res.headers.getSetCookie()) {
      const [name, value] = c.split(';')[0]!.split('=');
      if (name === 'lqos_session') cookie = value ? `lqos_session=${value}` : '';
    }
    const text = await res.text();
    let json: unknown = text;
    try { json = JSON.parse(text); } catch { /* kept as text */ }
    return { status: res.status, body: json };
  };
  // lqosd may still be starting its web server: wait (up to 30 s) for it to accept connections.
  let r: Awaited<ReturnType<typeof call>> | undefined;
  for (const end = Date.now() + 30_000; !r; ) {
    try {
      r = await call('POST', '/api/auth/login', creds);
    } catch (e) {
      if (Date.now() > end) throw new Error(`lqosd's web server at ${base} never answered: ${(e as Error).message}`);
      await new Promise((res) => setTimeout(res, 250));
    }
  }
  if (r.status !== 200) {
    r = await call('POST', '/api/auth/first-run', { ...creds, token: readFileSync(tokenFile, 'utf8').trim() });
    if (r.status !== 201) throw new Error(`first-run failed: ${r.status} ${JSON.stringify(r.body)}`);
  }
  process.stdout.write('api ready\n');
  let buf = '';
  for await (const chunk of process.stdin) {
    buf += String(chunk);
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const path = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (path) process.stdout.write(JSON.stringify(await call('GET', path)) + '\n');
    }
  }
}

const [cmd, ...args] = process.argv.slice(2);
if (cmd === 'relay') relay(args[0]!, args[1]!, Number(args[2] ?? 0));
else if (cmd === 'echo-server') echoServer(args[0]!, Number(args[1]));
else if (cmd === 'echo-client') await echoClient(args[0]!, Number(args[1]), Number(args[2] ?? 50), args[3]);
else if (cmd === 'api') await api(args[0]!, args[1]!);
else if (cmd !== undefined) {
  process.stderr.write(`unknown command ${cmd}\n`);
  process.exit(2);
}
