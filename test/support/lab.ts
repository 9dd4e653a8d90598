/** The namespace lab (lab/labEnv.ts) for kernel tests: started and shaped once by the real LibreQoS command. */
import assert from 'node:assert/strict';
import { runLabLibreQoS, startLab, type Lab } from '../../lab/labEnv.ts';

/** startLab, then LibreQoS shapes it; asserts the run succeeded (its output is the message). */
export async function startShapedLab(opts: Parameters<typeof startLab>[0]): Promise<Lab> {
  const lab = await startLab(opts);
  const r = await runLabLibreQoS(lab);
  assert.equal(r.code, 0, r.output);
  return lab;
}
