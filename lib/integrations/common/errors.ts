/**
 * The one error type of the integrations. Its message is meant to be printed as is: it names the CRM,
 * the endpoint (path only — never credentials or query strings) and what to do.
 */
export interface IntegrationErrorInfo {
  /** Display name of the CRM/NMS, e.g. `Splynx`. */
  crm: string;
  /** `GET /api/2.0/admin/customers/customer` (method + path, no query, no credentials). */
  endpoint?: string;
  /** HTTP status when the server answered. */
  status?: number;
  /** Extra lines (e.g. every validation error). */
  details?: string[];
  cause?: unknown;
}

export class IntegrationError extends Error {
  readonly crm: string;
  readonly endpoint?: string;
  readonly status?: number;
  readonly details: string[];

  constructor(message: string, info: IntegrationErrorInfo) {
    super(message, info.cause === undefined ? undefined : { cause: info.cause });
    this.name = 'IntegrationError';
    this.crm = info.crm;
    this.endpoint = info.endpoint;
    this.status = info.status;
    this.details = info.details ?? [];
  }
}

