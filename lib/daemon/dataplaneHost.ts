/**
 * lqosd's hold on the dataplane: checks the host (preflight), attaches the eBPF programs with the
 * queue count the plans will use, and provides the IP-map sink. When the preflight or the attach
 * fails, lqosd stays up degraded (bus and web UI up, no shaping) and says why, in the shaping
 * status and as an urgent issue. In a dry run nothing is attached and mappings live in memory.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ShapingInterfaces } from '../config/load.ts';
import type { ResolvedConfig } from '../config/resolve.ts';
import { dataplaneMappingSink, MemoryMappingSink, type MappingSink } from '../apply/mappingSink.ts';
import type { UrgentIssueStore } from '../api/urgent.ts';
import type { LqosConfig } from '../config/schema.ts';
import { tuningFingerprint } from '../kernel/hostTuning.ts';
import type { AttachArgs } from '../shaping/kernel.ts';
import { hostQueueCount } from '../shaping/queueCount.ts';
import type { Log } from '../util/log.ts';
import type { ShapingStatus, XdpAttachment } from '../api/status.ts';
import { isAttachRefusal } from '../shaping/kernel.ts';
import { runPreflight, type PreflightResult } from './preflight.ts';

const PREFLIGHT_KEY = 'lqosd:preflight';
const PREFLIGHT_WARNING_KEY = 'lqosd:preflight-warning';
const ATTACH_KEY = 'lqosd:dataplane-attach';

/**
 * How the dataplane gets attached (lib/shaping/kernel.ts attachForConfig; replaceable in tests). It
 * may return an AttachSummary (the XDP mode per interface, shown in the status).
 */
export type DataplaneAttacher = (args: AttachArgs) => Promise<unknown>;

/** The XDP modes of an attacher's result, when it gave them. */
function xdpOf(result: unknown): XdpAttachment[] | undefined {
  const xdp = (result as { xdp?: unknown } | undefined)?.xdp;
  return Array.isArray(xdp) ? (xdp as XdpAttachment[]) : undefined;
}

/** Applies the config's host tuning (lib/kernel/hostTuningApply.ts applyHostTuning; replaceable in tests). */
export type HostTuner = (config: LqosConfig, log: Log) => Promise<unknown>;

export interface DataplaneState {
  state: 'attached' | 'dry_run' | 'not_attached';
  interfaces?: ShapingInterfaces;
  detail?: string;
}

export interface DataplaneHostDeps {
  pinRoot: string;
  log: Log;
  urgent: UrgentIssueStore;
  /** The daemon's shaping status (`degraded` is set and cleared here). */
  status: ShapingStatus;
  attach: DataplaneAttacher;
  /** Host tuning, applied once before the attach and again only when its keys change (absent: none). */
  tune?: HostTuner;
}

export class DataplaneHost {
  private dataplane: DataplaneState = { state: 'not_attached' };
  private mappingSink?: MappingSink;
  private attachedQueues?: number;
  /** The mappings map was pinned right after the attach (a test's fake attacher pins nothing). */
  private pinnedAtAttach = false;
  private preflight?: PreflightResult;
  private tunedWith?: string;
  private readonly memory = new MemoryMappingSink();

  constructor(private readonly deps: DataplaneHostDeps) {}

  get state(): DataplaneState {
    return this.dataplane;
  }

  /** Where IP mappings go; undefined while degraded. */
  get sink(): MappingSink | undefined {
    return this.mappingSink;
  }

  /** Queues per direction the dataplane was attached with (plans must use the same). */
  get queues(): number | undefined {
    return this.dataplane.state === 'attached' ? this.attachedQueues : undefined;
  }

  get lastPreflight(): PreflightResult | undefined {
    return this.preflight;
  }

  get attached(): boolean {
    return this.dataplane.state === 'attached';
  }

  /**
   * Attached by this lqosd, but its pinned maps are gone: `LibreQoS --clearrules` (or `teardown`)
   * removed the dataplane since. The next run attaches it again instead of failing.
   */
  get removedSinceAttach(): boolean {
    return this.attached && this.pinnedAtAttach && !existsSync(this.mappingsPin);
  }

  private get mappingsPin(): string {
    return join(this.deps.pinRoot, 'ip_to_class');
  }

  /** After --clearrules: attach again (preflight included) so the run can shape. Never throws. */
  async reattachIfRemoved(rc: ResolvedConfig): Promise<void> {
    if (!this.removedSinceAttach) return;
    this.deps.log.warn('the dataplane was removed since lqosd attached it (LibreQoS --clearrules or teardown): attaching it again before this run');
    this.dataplane = { state: 'not_attached', detail: 'removed by LibreQoS --clearrules' };
    this.mappingSink = undefined;
    delete this.deps.status.xdp;
    await this.ensure(rc);
  }

  /** Preflight, then attach (unless attached already or a dry run). Never throws. */
  async ensure(rc: ResolvedConfig): Promise<void> {
    const pf = await runPreflight(rc.config, rc.path);
    this.preflight = pf;
    this.notePreflightWarnings(pf);
    if (!pf.ok) return this.degrade(pf);
    this.deps.urgent.resolveKey(PREFLIGHT_KEY);
    if (rc.config.queues.dry_run) {
      this.deps.log.info('dry run (queues.dry_run): not attaching the dataplane; IP mappings are kept in memory only');
      delete this.deps.status.degraded;
      if (!this.attached) {
        this.dataplane = { state: 'dry_run', interfaces: pf.interfaces };
        this.mappingSink = this.memory;
      }
      return;
    }
    if (this.attached) {
      delete this.deps.status.degraded;
      return;
    }
    await this.attach(rc, pf.interfaces!);
  }

  /**
   * Applies the host tuning unless it was already applied with the same keys (a config reload
   * that changes them re-applies; a refresh never does). Never throws.
   */
  async retune(config: LqosConfig): Promise<void> {
    if (!this.deps.tune || config.queues.dry_run) return;
    const fp = tuningFingerprint(config);
    if (fp === this.tunedWith) return;
    this.tunedWith = fp;
    try {
      await this.deps.tune(config, this.deps.log);
    } catch (e) {
      this.deps.log.warn(`host tuning failed: ${(e as Error).message}; shaping continues without it`);
    }
  }

  private notePreflightWarnings(pf: PreflightResult): void {
    const { log, urgent } = this.deps;
    for (const w of pf.warnings) log.warn(`preflight: ${w}`);
    if (pf.warnings.length) {
      urgent.submit({ source: 'lqosd', severity: 'warning', code: 'PREFLIGHT_WARNING', message: pf.warnings.join('\n'), dedupeKey: PREFLIGHT_WARNING_KEY });
    } else urgent.resolveKey(PREFLIGHT_WARNING_KEY);
  }

  private degrade(pf: PreflightResult): void {
    const { log, urgent, status } = this.deps;
    const msg = `preflight failed, not shaping: ${pf.errors.join('; ')}`;
    for (const e of pf.errors) log.error(`preflight: ${e}`);
    log.error('lqosd stays up without shaping (degraded); fix the problem and reload (systemctl reload lqosd)');
    status.degraded = msg;
    urgent.submit({ source: 'lqosd', severity: 'error', code: 'PREFLIGHT_FAILED', message: msg, context: { errors: pf.errors }, dedupeKey: PREFLIGHT_KEY });
    this.mappingSink = undefined;
    if (!this.attached) this.dataplane = { state: 'not_attached', detail: 'preflight failed' };
  }

  private async attach(rc: ResolvedConfig, interfaces: ShapingInterfaces): Promise<void> {
    const { log, urgent, status, pinRoot } = this.deps;
    try {
      const q = hostQueueCount(rc.config, interfaces, false);
      if ('error' in q) throw new Error(q.error);
      await this.retune(rc.config);
      log.info(`attaching the dataplane with ${q.queues} queue(s) per direction (${q.reason}), XDP ${rc.config.tuning.xdp_mode} mode`);
      const xdp = xdpOf(await this.deps.attach({ config: rc.config, interfaces, queues: q.queues, cpus: q.cpus, pinRoot, log }));
      this.dataplane = { state: 'attached', interfaces };
      this.pinnedAtAttach = existsSync(this.mappingsPin);
      this.attachedQueues = q.queues;
      this.mappingSink = dataplaneMappingSink(pinRoot);
      delete status.degraded;
      if (xdp) status.xdp = xdp;
      else delete status.xdp;
      if (this.preflight?.forwarding) status.forwarding = this.preflight.forwarding;
      urgent.resolveKey(ATTACH_KEY);
    } catch (e) {
      this.attachFailed(e);
    }
  }

  /** A failed or refused attach: degraded, with an urgent issue that carries the fix. */
  private attachFailed(e: unknown): void {
    const { log, urgent, status } = this.deps;
    const refused = isAttachRefusal(e);
    const msg = refused
      ? `the dataplane refused to attach, not shaping: ${(e as Error).message}; then reload lqosd (systemctl reload lqosd)`
      : `attaching the dataplane failed, not shaping: ${(e as Error).message}`;
    log.error(msg);
    status.degraded = msg;
    delete status.xdp;
    delete status.forwarding;
    this.dataplane = { state: 'not_attached', detail: (e as Error).message };
    this.mappingSink = undefined;
    urgent.submit({
      source: 'lqosd', severity: 'error', code: refused ? 'DATAPLANE_ATTACH_REFUSED' : 'DATAPLANE_ATTACH_FAILED', message: msg, dedupeKey: ATTACH_KEY,
      ...(refused ? { context: { refusal: e.refusal } } : {}),
    });
  }
}
