/**
 * The two builds of the XDP program (dataplane/bpf/lqos_kern.c): lqos_xdp hands tc the class in XDP
 * metadata (bpf_xdp_adjust_meta); lqos_xdp_nometa has no such call, for kernels whose verifier refuses
 * that helper to XDP programs ("program of this type cannot use helper"), and tc then looks each
 * redirected frame up itself. The loader picks by probing the kernel (libbpf.ts kernelAllowsHelper).
 * Needs root and bpffs; own pin root, removed in after().
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { IpMapping } from '../../lib/model.ts';
import { teardownAll } from '../../dataplane/attach.ts';
import { XDP_PROG, XDP_PROG_NO_META, createPinnedMaps, loadPrograms, setXdpProgramChoice, xdpProgramName } from '../../dataplane/object.ts';
import { configureCpus } from '../../dataplane/cpus.ts';
import { readStats, updateMappings } from '../../dataplane/maps.ts';
import { BPF_FUNC_XDP_ADJUST_META, BPF_PROG_TYPE_XDP, DataplaneError, kernelAllowsHelper } from '../../dataplane/libbpf.ts';
import type { DataplaneLogger } from '../../dataplane/log.ts';
import { MODE_BRIDGE } from '../../dataplane/abi.ts';
import { TC_ACT_OK, XDP_REDIRECT, setTxqAll, tcRun, tcpFrame, xdpRun } from './frames.ts';

const ctx = { pinRoot: `/sys/fs/bpf/lqt-${randomBytes(3).toString('hex')}` };
const quiet: DataplaneLogger = { info: () => undefined, warn: () => undefined };
const LO = 1;
const A = '100.64.0.10';
const CFG = { mode: MODE_BRIDGE, internetIfindex: 0x7fffffff, ispIfindex: LO, stickOffset: 0, internetVlan: 0, ispVlan: 0, maxMajor: 2 };
const BPF_FUNC_XDP_ADJUST_HEAD = 44;
const BPF_FUNC_SKB_VLAN_PUSH = 18; // tc only

const metaAllowed = kernelAllowsHelper(BPF_PROG_TYPE_XDP, BPF_FUNC_XDP_ADJUST_META);

before(async () => {
  await createPinnedMaps({ ...ctx, logger: quiet });
  configureCpus(2, ctx);
  setTxqAll(ctx, 3);
  const m: IpMapping = { prefix: `${A}/32`, cpu: 1, major: 2, minor: 0x10, circuitId: 'c1', deviceId: 'd1', circuitHash: 1n, deviceHash: 1n };
  await updateMappings([m], ctx);
});

after(async () => {
  await teardownAll({ ...ctx, logger: quiet }).catch(() => undefined);
});

test('the helper probe tells a helper XDP may call from one it may not', () => {
  assert.equal(kernelAllowsHelper(BPF_PROG_TYPE_XDP, BPF_FUNC_XDP_ADJUST_HEAD), true, 'bpf_xdp_adjust_head: every XDP kernel');
  assert.equal(kernelAllowsHelper(BPF_PROG_TYPE_XDP, BPF_FUNC_SKB_VLAN_PUSH), false, 'bpf_skb_vlan_push: tc programs only');
  console.log(`# this kernel ${metaAllowed ? 'lets' : 'does not let'} XDP programs call bpf_xdp_adjust_meta: the loader picks ${xdpProgramName()}`);
});

test('a probe that does not match the verifier: the loader falls back to lqos_xdp_nometa once lqos_xdp is refused, and keeps it', async (t) => {
  if (metaAllowed) {
    t.skip('this kernel lets XDP call bpf_xdp_adjust_meta: the verifier refuses nothing to fall back from');
    return;
  }
  const warnings: string[] = [];
  setXdpProgramChoice(XDP_PROG); // as if the probe had said yes
  const p = await loadPrograms(CFG, { ...ctx, logger: { info: () => undefined, warn: (m) => void warnings.push(m) } });
  try {
    assert.equal(p.xdpProg, XDP_PROG_NO_META, 'loaded the variant without the helper');
    assert.equal(xdpProgramName(), XDP_PROG_NO_META, 'and kept that choice');
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.match(warnings[0]!, /refused lqos_xdp for bpf_xdp_adjust_meta .*loading lqos_xdp_nometa/);
  } finally {
    p.close();
  }
});

test('the probe agrees with the verifier on our own object: lqos_xdp loads exactly when the helper is allowed', async () => {
  const attempt = loadPrograms(CFG, { ...ctx, logger: quiet, xdpProgram: XDP_PROG });
  if (metaAllowed) {
    const p = await attempt;
    assert.equal(p.xdpProg, XDP_PROG);
    p.close();
  } else {
    await assert.rejects(attempt, (e: unknown) => e instanceof DataplaneError && /bpf_xdp_adjust_meta/.test(e.message), 'the verifier refuses lqos_xdp for the helper');
  }
});

test('both variants classify and redirect alike; only lqos_xdp hands tc metadata', async (t) => {
  const variants = metaAllowed ? [XDP_PROG, XDP_PROG_NO_META] : [XDP_PROG_NO_META];
  if (!metaAllowed) t.diagnostic('lqos_xdp cannot load on this kernel: only lqos_xdp_nometa is run');
  const frame = tcpFrame(A, '192.0.2.1', 40000, 443, { payload: 100 });
  for (const v of variants) {
    const p = await loadPrograms(CFG, { ...ctx, logger: quiet, xdpProgram: v });
    try {
      assert.equal(p.xdpProg, v);
      const s0 = await readStats(ctx);
      assert.equal(xdpRun(p.xdpFd, frame, LO), XDP_REDIRECT, `${v}: the circuit's frame goes to its CPU`);
      const s1 = await readStats(ctx);
      assert.equal(s1.xdpRedirect - s0.xdpRedirect, 1n, v);
      assert.equal(s1.metaFail - s0.metaFail, v === XDP_PROG ? 0n : 1n, `${v}: metadata ${v === XDP_PROG ? 'written' : 'not written (no helper call)'}`);
      // Without metadata tc finds the class itself: a download frame leaving the customer port (LO).
      assert.deepEqual(tcRun(p.tcFd, tcpFrame('192.0.2.1', A, 443, 40000, { payload: 100 }), LO), [TC_ACT_OK, (2 << 16) | 0x10], `${v}: tc's own lookup`);
    } finally {
      p.close();
    }
  }
});
