/**
 * Reading CRM payloads: required fields and lists that fail with CRM, endpoint, field and item, and the
 * lenient converters (`text`, `num`, `idText`) every integration reads its rows with.
 */
import { IntegrationError } from './errors.ts';

/** A JSON object as the CRMs send it. */
export type Obj = Record<string, unknown>;

/** A non-null, non-array object. */
export const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Where a payload item came from, for error messages. */
export interface PayloadContext {
  crm: string;
  endpoint: string;
}

/** Where a payload item came from and which one it is (`service #3`), for error messages. */
export type ItemContext = PayloadContext & { item: string };

/** Reads a required field; throws an IntegrationError naming CRM, endpoint, field and item. */
export function req<T = unknown>(obj: unknown, field: string, ctx: ItemContext, check?: (v: unknown) => boolean): T {
  const v = obj !== null && typeof obj === 'object' ? (obj as Obj)[field] : undefined;
  if (v === undefined || v === null || (check && !check(v))) {
    throw new IntegrationError(
      `${ctx.crm}: ${ctx.endpoint}: required field "${field}" is missing or invalid in ${ctx.item}; the response is not what this integration expects`,
      { crm: ctx.crm, endpoint: ctx.endpoint },
    );
  }
  return v as T;
}

/** Asserts the body is an array (or an object holding one under `key`). */
export function reqArray(body: unknown, ctx: PayloadContext, key?: string): unknown[] {
  const v = key === undefined ? body : body !== null && typeof body === 'object' ? (body as Obj)[key] : undefined;
  if (!Array.isArray(v)) {
    const what = key === undefined ? 'the response body' : `field "${key}"`;
    throw new IntegrationError(`${ctx.crm}: ${ctx.endpoint}: ${what} is missing or not a list; the response is not what this integration expects`, {
      crm: ctx.crm,
      endpoint: ctx.endpoint,
    });
  }
  return v;
}

/**
 * A body that must be a list, from an API that refuses a bad key with status 200 and an object
 * holding an error text (Powercode, WISPGate). The text is quoted with `secret` masked.
 */
export function listOrApiError(
  body: unknown,
  ctx: PayloadContext & { secret: string; hint: string; errorFields: readonly string[] },
): unknown[] {
  if (Array.isArray(body)) return body;
  const raw = isObj(body) ? ctx.errorFields.map((f) => body[f]).find((v) => v !== undefined && v !== null) : undefined;
  const msg = text(raw);
  const { crm, endpoint } = ctx;
  if (msg !== '') {
    const safe = msg.split(ctx.secret).join('***').slice(0, 200);
    throw new IntegrationError(`${crm}: ${endpoint} → the API answered with an error ("${safe}"): ${ctx.hint}`, { crm, endpoint });
  }
  throw new IntegrationError(`${crm}: ${endpoint}: the response body is not a list; the response is not what this integration expects`, { crm, endpoint });
}

/** `""`, `null`, `0`, `"0"` → undefined; otherwise the id as a string (CRM ids are compared as text). */
export function idText(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  const s = String(v).trim();
  return s === '' || s === '0' ? undefined : s;
}

/** A trimmed string or ''. */
export function text(v: unknown): string {
  return v === undefined || v === null ? '' : String(v).trim();
}

/** A finite number or undefined (numeric strings accepted). */
export function num(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'string' && v.trim() !== '') {
    const x = Number(v);
    return Number.isFinite(x) ? x : undefined;
  }
  return undefined;
}
