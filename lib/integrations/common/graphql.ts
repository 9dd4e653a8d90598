/**
 * Reading GraphQL answers (Sonar, VISP): a 200 can still carry an `errors` array (bad tokens are often
 * reported that way) or lack `data`; both are IntegrationErrors naming the operation.
 */
import { IntegrationError } from './errors.ts';
import { isObj, text, type Obj, type PayloadContext } from './payload.ts';

/** The body's `errors` array, or [] when it has none. */
export function graphqlErrors(body: unknown): unknown[] {
  return isObj(body) && Array.isArray(body.errors) ? body.errors : [];
}

/**
 * The error for a non-empty `errors` array: every message (scrubbed of secrets, 200 characters at most),
 * and `authHint` appended when the errors look like an authentication failure.
 */
export function graphqlError(ctx: PayloadContext, errors: unknown[], scrub: (s: string) => string, authHint?: string): IntegrationError {
  const msgs = errors.map((e) => scrub(text(isObj(e) ? e.message : e)).slice(0, 200)).filter((m) => m !== '');
  return new IntegrationError(`${ctx.crm}: ${ctx.endpoint} → GraphQL error: ${msgs.join('; ') || 'unknown error'}${authHint ? `: ${authHint}` : ''}`, {
    crm: ctx.crm,
    endpoint: ctx.endpoint,
    details: msgs,
  });
}

/** The body's `data` object; throws when there is none. */
export function graphqlData(body: unknown, ctx: PayloadContext): Obj {
  if (!isObj(body) || !isObj(body.data)) {
    throw new IntegrationError(`${ctx.crm}: ${ctx.endpoint}: the response has no "data" object; the response is not what this integration expects`, {
      crm: ctx.crm,
      endpoint: ctx.endpoint,
    });
  }
  return body.data;
}
