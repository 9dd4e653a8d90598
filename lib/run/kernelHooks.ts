/**
 * Kernel-facing hooks of the LibreQoS command (direct apply, used until lqosd owns the
 * dataplane and in tests): qdisc capability probe, dataplane attach + IP mapping sink, teardown.
 * Loaded lazily so that --validate and dry runs never load libbpf.
 *
 * `LQOS_BPF_PIN_ROOT` selects the bpffs directory of the pinned maps (default /sys/fs/bpf/lqos).
 */
import type { LeafQdisc } from '../model.ts';
import type { Logger } from '../util/log.ts';
import type { MappingSink } from '../apply/direct.ts';
import type { LibreQoSHooks } from './libreqos.ts';

function pinRoot(): string | undefined {
  return process.env.LQOS_BPF_PIN_ROOT || undefined;
}

function dpLogger(log: Logger) {
  return { info: (m: string) => log.info(m), warn: (m: string) => log.warn(m) };
}

/** The dataplane's pinned IP map as a mapping sink (libbpf is loaded on first use). */
export function dataplaneMappingSink(pinRoot: string | undefined, log?: Logger): MappingSink {
  const ctx = { pinRoot };
  const dp = () => import('../../dataplane/loader.ts');
  return {
    list: async () => (await (await dp()).listMappings(ctx)).map((e) => e.prefix),
    update: async (m) => {
      const r = await (await dp()).updateMappings(m, ctx);
      log?.debug({ count: r.count, method: r.method, ms: Math.round(r.elapsedMs) }, 'IP mappings written');
    },
    remove: async (prefixes) => {
      await (await dp()).deleteMappings(prefixes, ctx);
    },
  };
}

export function kernelHooks(vlan?: { internet: number; network: number }): LibreQoSHooks {
  return {
    qdiscSubstitutes: async (log) => {
      const { probeQdiscKinds, chooseLeafFallback } = await import('../kernel/qdiscs.ts');
      const available = await probeQdiscKinds();
      const substitute: Record<string, LeafQdisc> = {};
      for (const kind of ['cake', 'fq_codel'] as const) {
        const choice = chooseLeafFallback(available, kind);
        if (!choice.fallback) continue;
        substitute[kind] = { kind: choice.kind, args: choice.args };
        log.warn({ code: 'qdisc-fallback', planned: kind, using: choice.kind }, choice.reason);
      }
      return substitute;
    },
    mappingSink: async (plan, log) => {
      const dp = await import('../../dataplane/loader.ts');
      const ctx = { pinRoot: pinRoot() };
      const report = await dp.attachDataplane({
        downloadIf: plan.interfaces.download,
        uploadIf: plan.interfaces.upload,
        onAStick: plan.interfaces.onAStick,
        queues: plan.queues,
        stickOffset: plan.stickOffset,
        vlan,
        pinRoot: ctx.pinRoot,
        logger: dpLogger(log),
      });
      for (const w of report.warnings) log.warn(w);
      log.info(
        { interfaces: report.interfaces.map((i) => `${i.name}:${i.xdpMode}`), ms: Math.round(report.elapsedMs) },
        `dataplane attached (${report.mode} mode)`,
      );
      return dataplaneMappingSink(ctx.pinRoot, log);
    },
    teardown: async (_devs, log) => {
      const dp = await import('../../dataplane/loader.ts');
      const r = await dp.teardownAll({ pinRoot: pinRoot(), logger: dpLogger(log) });
      log.info({ interfaces: r.interfaces, unpinned: r.unpinned.length }, 'dataplane removed');
    },
  };
}
