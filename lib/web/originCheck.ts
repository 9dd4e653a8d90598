/**
 * Cross-site request refusal for state-changing requests (POST/PUT/PATCH/DELETE) and the websocket
 * handshake. Browsers send `Origin` on such requests and `Sec-Fetch-Site` on every request, so a
 * page on another site cannot drive the API with the operator's cookie. Requests without either
 * header (curl, scripts, Prometheus) pass: they carry no ambient browser credentials, and the
 * session cookie is SameSite=Strict besides.
 */

export interface OriginRequest {
  /** The `Origin` header, if any. */
  origin: string | undefined;
  /** The `Sec-Fetch-Site` header, if any. */
  fetchSite: string | undefined;
  /** How the request reached this server: `http` / `https` and the Host (with port). */
  protocol: string;
  host: string;
}

/** `scheme://host[:port]` in the URL standard's serialisation (default ports dropped), or undefined. */
function serialise(url: string): string | undefined {
  try {
    const o = new URL(url).origin;
    return o === 'null' ? undefined : o;
  } catch {
    return undefined;
  }
}

/** Why the request is cross-site, or undefined when it may proceed. */
export function crossOriginProblem(r: OriginRequest): string | undefined {
  const site = r.fetchSite?.trim().toLowerCase();
  if (site === 'cross-site' || site === 'same-site') {
    return `refused: the browser says this request comes from another site (Sec-Fetch-Site: ${site}); use the web UI served by this lqosd`;
  }
  if (r.origin === undefined) return undefined;
  const own = serialise(`${r.protocol}://${r.host}`);
  const theirs = serialise(r.origin);
  if (own === undefined || theirs !== own) {
    return `refused: request from origin ${JSON.stringify(r.origin.slice(0, 200))}, not from this server (${own ?? r.host}); use the web UI served by this lqosd`;
  }
  return undefined;
}
