/**
 * Urgent issues that operators must see (the bell in the web UI), kept by lqosd and persisted in
 * `<state_directory>/urgent_issues.json` so they survive restarts.
 *
 * - Deduplicated by key (`dedupeKey`, default `${source}:${code}`): a repeat bumps `count` and
 *   `lastSeen` and takes the newest message/context/severity. An acknowledged issue stays
 *   acknowledged on a repeat unless the severity rises.
 * - Bounded (default 200): when full, the issue seen longest ago is evicted.
 * - Every change is written at once (crash-safe, keeping rotated backups: lib/util/atomicFile.ts). A
 *   file that cannot be read as an issue list is renamed aside (`.corrupt-<time>`) with a warning
 *   and the newest readable backup is restored; with none, the store starts empty.
 */
import { stripAnsi } from '../util/text.ts';
import { z } from 'zod';
import type { Severity, UrgentIssue, UrgentIssueInput, UrgentIssueStore } from '../api/urgent.ts';
import { writeFileAtomic } from '../util/atomicFile.ts';
import type { Logger } from '../util/log.ts';
import { readRecovering } from '../util/recoverFile.ts';

export const DEFAULT_MAX_ISSUES = 200;
/** Longest message kept; longer ones are cut (with a marker) so the file stays small. */
export const MAX_MESSAGE_CHARS = 4000;
/** Largest context kept (as JSON text); a bigger one is replaced by a truncated preview string. */
export const MAX_CONTEXT_CHARS = 16_000;

const RANK: Record<Severity, number> = { info: 0, warning: 1, error: 2 };

const severitySchema = z.enum(['info', 'warning', 'error']);
const issueSchema = z.object({
  id: z.string().min(1),
  key: z.string().min(1),
  source: z.string(),
  severity: severitySchema,
  code: z.string(),
  message: z.string(),
  context: z.unknown().optional(),
  firstSeen: z.string(),
  lastSeen: z.string(),
  count: z.int().positive(),
  acknowledged: z.boolean(),
});
const fileSchema = z.object({
  version: z.literal(1),
  nextId: z.int().positive(),
  issues: z.array(issueSchema),
});

/** Parses the stored list; throws naming the first problem. */
function parseIssueFile(text: string): z.infer<typeof fileSchema> {
  const parsed = fileSchema.safeParse(JSON.parse(text));
  if (parsed.success) return parsed.data;
  const first = parsed.error.issues[0];
  throw new Error(`${first?.path.join('.') || '(top level)'}: ${first?.message}`);
}

export interface FileUrgentIssueStoreOptions {
  /** The JSON file; lqosd's is `statePaths(state_directory).urgentIssues`. */
  path: string;
  max?: number;
  log?: Pick<Logger, 'warn' | 'info'>;
  now?: () => Date;
}

function cleanMessage(s: string): string {
  const t = stripAnsi(s).trim();
  return t.length > MAX_MESSAGE_CHARS ? `${t.slice(0, MAX_MESSAGE_CHARS)}… (truncated)` : t;
}

function cleanContext(c: unknown): unknown {
  if (c === undefined) return undefined;
  let text: string | undefined;
  try {
    text = JSON.stringify(c);
  } catch {
    return String(c);
  }
  if (text === undefined) return undefined;
  if (text.length <= MAX_CONTEXT_CHARS) return JSON.parse(text) as unknown;
  return `${text.slice(0, MAX_CONTEXT_CHARS)}… (truncated)`;
}

export class FileUrgentIssueStore implements UrgentIssueStore {
  readonly path: string;
  readonly max: number;
  private readonly log?: Pick<Logger, 'warn' | 'info'>;
  private readonly now: () => Date;
  /** Keyed by dedupe key. */
  private byKey = new Map<string, UrgentIssue>();
  private nextId = 1;

  constructor(opts: FileUrgentIssueStoreOptions) {
    this.path = opts.path;
    this.max = Math.max(1, opts.max ?? DEFAULT_MAX_ISSUES);
    this.log = opts.log;
    this.now = opts.now ?? (() => new Date());
    this.load();
  }

  private load(): void {
    const r = readRecovering(this.path, {
      parse: parseIssueFile,
      what: 'urgent issue list',
      onLoss: 'starting with no urgent issues',
      log: this.log,
      now: this.now,
    });
    if (!r.value) return;
    for (const issue of r.value.issues) this.byKey.set(issue.key, issue as UrgentIssue);
    const maxId = Math.max(0, ...r.value.issues.map((i) => Number(i.id)).filter(Number.isSafeInteger));
    this.nextId = Math.max(r.value.nextId, maxId + 1);
    this.evict();
  }

  private save(): void {
    const body = JSON.stringify({ version: 1, nextId: this.nextId, issues: [...this.byKey.values()] }, null, 1) + '\n';
    try {
      writeFileAtomic(this.path, body, { mode: 0o600, backup: true });
    } catch (e) {
      // Never let a full disk take the daemon down: the store keeps working in memory.
      this.log?.warn(`could not save urgent issues to ${this.path}: ${(e as Error).message}`);
    }
  }

  /** Drops the issues seen longest ago until at most `max` remain. */
  private evict(): number {
    const over = this.byKey.size - this.max;
    if (over <= 0) return 0;
    const oldest = [...this.byKey.values()].sort((a, b) => a.lastSeen.localeCompare(b.lastSeen) || Number(a.id) - Number(b.id)).slice(0, over);
    for (const i of oldest) this.byKey.delete(i.key);
    return over;
  }

  submit(input: UrgentIssueInput): UrgentIssue {
    const at = this.now().toISOString();
    const key = input.dedupeKey?.trim() || `${input.source}:${input.code}`;
    const message = cleanMessage(input.message);
    const context = cleanContext(input.context);
    const prev = this.byKey.get(key);
    let issue: UrgentIssue;
    if (prev) {
      const rose = RANK[input.severity] > RANK[prev.severity];
      issue = {
        ...prev,
        source: input.source,
        code: input.code,
        severity: input.severity,
        message,
        context,
        lastSeen: at,
        count: prev.count + 1,
        acknowledged: prev.acknowledged && !rose,
      };
      if (context === undefined) delete issue.context;
      // Re-insert so the Map's order follows lastSeen.
      this.byKey.delete(key);
    } else {
      issue = {
        id: String(this.nextId++),
        key,
        source: input.source,
        severity: input.severity,
        code: input.code,
        message,
        ...(context === undefined ? {} : { context }),
        firstSeen: at,
        lastSeen: at,
        count: 1,
        acknowledged: false,
      };
    }
    this.byKey.set(key, issue);
    const evicted = this.evict();
    if (evicted) this.log?.info(`urgent issue list full (${this.max}); dropped ${evicted} oldest issue(s)`);
    this.save();
    return { ...issue };
  }

  /** Newest first (by lastSeen). */
  list(): UrgentIssue[] {
    return [...this.byKey.values()]
      .sort((a, b) => b.lastSeen.localeCompare(a.lastSeen) || Number(b.id) - Number(a.id))
      .map((i) => ({ ...i }));
  }

  get(id: string): UrgentIssue | undefined {
    for (const i of this.byKey.values()) if (i.id === id) return { ...i };
    return undefined;
  }

  activeCount(): number {
    let n = 0;
    for (const i of this.byKey.values()) if (!i.acknowledged) n++;
    return n;
  }

  acknowledge(id: string): boolean {
    for (const i of this.byKey.values()) {
      if (i.id === id) {
        if (!i.acknowledged) {
          i.acknowledged = true;
          this.save();
        }
        return true;
      }
    }
    return false;
  }

  clear(id?: string): number {
    if (id === undefined) {
      const n = this.byKey.size;
      this.byKey.clear();
      if (n) this.save();
      return n;
    }
    for (const i of this.byKey.values()) {
      if (i.id === id) {
        this.byKey.delete(i.key);
        this.save();
        return 1;
      }
    }
    return 0;
  }

  resolveKey(key: string): boolean {
    if (!this.byKey.delete(key)) return false;
    this.save();
    return true;
  }
}
