import * as dp from '../dataplane/loader.ts';
import * as flows from '../dataplane/flows.ts';
import { bootTimeNs } from '../dataplane/libbpf.ts';
const ctx = { pinRoot: '/sys/fs/bpf/lqfprof' };
const N = 30000;
await dp.createPinnedMaps({ ...ctx, logger: { info() {}, warn() {} } });
const keys = Buffer.alloc(N * 40), vals = Buffer.alloc(N * 136);
const now = bootTimeNs();
for (let i = 0; i < N; i++) {
  flows.writeFlowKey({ proto: 6, localIp: `100.64.${(i >> 8) & 255}.${i & 255}`, localPort: 30000, remoteIp: `${1 + (i % 200)}.${(i * 7) % 250}.1.1`, remotePort: 443 }, keys, i * 40);
  flows.writeFlowValue({ startNs: now, lastSeenNs: now, circuitHash: BigInt(1 + (i % 5000)) }, vals, i * 136);
}
flows.writeFlows(keys, vals, N, ctx);
const t = new flows.FlowTracker({ ...ctx, idleTimeoutMs: 3600000 });
for (let i = 0; i < 4; i++) { const a = performance.now(); t.poll(); console.log('poll', performance.now() - a); }
let a = performance.now(); t.circuitStats(); console.log('circuitStats', performance.now() - a);
a = performance.now(); t.active(); console.log('active', performance.now() - a);
t.close(); flows.closeFlowMaps(ctx); await dp.teardownAll({ ...ctx, logger: { info() {}, warn() {} } });
