/** A raw bus connection for the lqosd tests: write any text, read reply lines. */
import { createConnection, type Socket } from 'node:net';

export class RawConn {
  private lines: string[] = [];
  private waiters: ((l: string | undefined) => void)[] = [];
  private buf = '';
  closed = false;
  readonly sock: Socket;

  private constructor(sock: Socket) {
    this.sock = sock;
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.buf += d;
      let nl;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        const w = this.waiters.shift();
        if (w) w(line);
        else this.lines.push(line);
      }
    });
    sock.on('error', () => {});
    sock.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w(undefined);
    });
  }

  static open(path: string): Promise<RawConn> {
    return new Promise((res, rej) => {
      const s = createConnection(path);
      s.once('connect', () => res(new RawConn(s)));
      s.once('error', rej);
    });
  }

  write(text: string): void {
    this.sock.write(text);
  }

  /** Next reply, parsed; undefined when the connection closed first. */
  next(timeoutMs = 5000): Promise<any> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(JSON.parse(l));
    if (this.closed) return Promise.resolve(undefined);
    return new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error('no reply in time')), timeoutMs);
      this.waiters.push((line) => {
        clearTimeout(t);
        res(line === undefined ? undefined : JSON.parse(line));
      });
    });
  }

  waitClosed(timeoutMs = 5000): Promise<boolean> {
    if (this.closed) return Promise.resolve(true);
    return new Promise((res) => {
      const t = setTimeout(() => res(false), timeoutMs);
      this.sock.once('close', () => {
        clearTimeout(t);
        res(true);
      });
    });
  }

  close(): void {
    this.sock.destroy();
  }
}
