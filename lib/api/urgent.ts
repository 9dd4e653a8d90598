/**
 * Urgent issues: problems an operator must see (GET /api/urgent, the `urgent` channel), and the
 * store interface lqosd's parts submit them to.
 */

export type Severity = 'info' | 'warning' | 'error';

export interface UrgentIssue {
  id: string;
  /** Deduplication key: submitting the same key again bumps count/lastSeen instead of adding. */
  key: string;
  source: string;
  severity: Severity;
  code: string;
  message: string;
  context?: unknown;
  firstSeen: string;
  lastSeen: string;
  count: number;
  acknowledged: boolean;
}

export interface UrgentIssueInput {
  source: string;
  severity: Severity;
  code: string;
  message: string;
  context?: unknown;
  /** Defaults to `${source}:${code}`. */
  dedupeKey?: string;
}

/** GET /api/urgent and the `urgent` channel. */
export interface UrgentPayload {
  /** Unacknowledged issues. */
  activeCount: number;
  items: UrgentIssue[];
}

/** What the web API, the bus and the services call on the urgent issue list. */
export interface UrgentIssueStore {
  submit(issue: UrgentIssueInput): UrgentIssue;
  list(): UrgentIssue[];
  /** Unacknowledged count (what the UI badge shows). */
  activeCount(): number;
  acknowledge(id: string): boolean;
  /** Removes one issue (by id) or all. Admin only at the API level. */
  clear(id?: string): number;
  /** Removes the issue with this dedupe key (e.g. when an integration recovers). */
  resolveKey(key: string): boolean;
}
