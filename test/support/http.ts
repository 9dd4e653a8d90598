/** A small HTTP client with a cookie jar (the lqos_session cookie), for the web server tests. */

export class Client {
  cookie = '';
  constructor(readonly base: string) {}

  async req(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
    const h: Record<string, string> = { ...headers };
    if (this.cookie) h.cookie = this.cookie;
    if (body !== undefined) h['content-type'] = 'application/json';
    const res = await fetch(this.base + path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const [name, value] = pair.split('=');
      if (name === 'lqos_session') this.cookie = value === '' ? '' : `lqos_session=${value}`;
    }
    const text = await res.text();
    let json: any;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json, setCookie: res.headers.getSetCookie() };
  }
  get(path: string) {
    return this.req('GET', path);
  }
  post(path: string, body?: unknown) {
    return this.req('POST', path, body);
  }
  put(path: string, body?: unknown) {
    return this.req('PUT', path, body);
  }
  del(path: string) {
    return this.req('DELETE', path);
  }
}
