/**
 * Map ABI of the dataplane: address encoding, LPM updates/list/delete/clear, pinned-map layout
 * replacement, hot-cache invalidation, bypass switch, and a 100k batch load.
 * Needs root and bpffs; uses its own pin root and a private network namespace, removed in after().
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { execa } from 'execa';
import type { IpMapping } from '../../lib/model.ts';
import { teardownAll } from '../../dataplane/attach.ts';
import { createPinnedMaps } from '../../dataplane/object.ts';
import { clearMappings, countMappings, deleteMappings, getBypass, hotCacheSize, listMappings, readEpoch, readHostCounters, readStats, setBypass, updateMappings } from '../../dataplane/maps.ts';
import type { DataplaneLogger } from '../../dataplane/log.ts';
import { PINNED_MAPS } from '../../dataplane/pinned.ts';
import { encodeAddr, encodeLpmKey, decodeLpmKey } from '../../dataplane/abi.ts';
import { DataplaneError } from '../../dataplane/libbpf.ts';

const id = `lqt-${randomBytes(3).toString('hex')}`;
const ctx = { pinRoot: `/sys/fs/bpf/${id}` };
const quiet: DataplaneLogger = { info: () => undefined, warn: () => undefined };
const warnings: string[] = [];
const capture: DataplaneLogger = { info: () => undefined, warn: (m) => warnings.push(m) };

function mapping(prefix: string, major: number, minor: number, n = 1): IpMapping {
  return { prefix, cpu: major - 1, major, minor, circuitId: `c${n}`, deviceId: `d${n}`, circuitHash: BigInt(n) * 1000n + 7n, deviceHash: BigInt(n) * 1000n + 9n };
}

before(async () => {
  await execa('ip', ['netns', 'add', id]); // private namespace, kept for symmetry with the lab tests
  await createPinnedMaps({ ...ctx, logger: quiet });
});

after(async () => {
  await teardownAll({ ...ctx, netns: id, logger: quiet }).catch(() => undefined);
  await execa('ip', ['netns', 'del', id], { reject: false });
});

test('address and LPM key encoding', () => {
  assert.deepEqual([...encodeAddr('192.0.2.1')], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1]);
  const k = encodeLpmKey('100.64.2.77/24');
  assert.equal(k.readUInt32LE(0), 24 + 96);
  assert.deepEqual([...k.subarray(16, 20)], [100, 64, 2, 0], 'host bits are masked');
  assert.equal(decodeLpmKey(k), '100.64.2.0/24');
  assert.equal(decodeLpmKey(encodeLpmKey('2001:db8:0:ff::1/56')), '2001:db8::/56');
  assert.equal(decodeLpmKey(encodeLpmKey('10.0.0.1')), '10.0.0.1/32');
  assert.equal(decodeLpmKey(encodeLpmKey('2001:db8::1')), '2001:db8::1/128');
  assert.throws(() => encodeLpmKey('10.0.0.1/33'));
  assert.throws(() => encodeLpmKey('300.0.0.1/32'));
  assert.throws(() => encodeLpmKey('1::2::3/128'));
  assert.throws(() => encodeLpmKey('2001:db8::g/64'));
  assert.deepEqual([...encodeAddr('::ffff:192.0.2.1')], [...encodeAddr('192.0.2.1')], 'IPv4-mapped text = IPv4 key');
  assert.deepEqual([...encodeAddr('fe80::1:2')], [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2]);
  assert.deepEqual([...encodeAddr('1:2:3:4:5:6:7:8')], [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]);
});

test('pinned maps exist with the documented names', () => {
  for (const name of PINNED_MAPS) assert.ok(existsSync(`${ctx.pinRoot}/${name}`), name);
});

test('update, list, delete and clear mappings', async () => {
  const epoch0 = readEpoch(ctx);
  await updateMappings([
    mapping('100.64.0.1/32', 1, 0x10, 1),
    mapping('100.64.2.9/24', 2, 0x11, 2),
    mapping('2001:db8:1::/56', 3, 0x12, 3),
  ], ctx);
  assert.ok(readEpoch(ctx) > epoch0, 'epoch bumped by updateMappings');
  const list = await listMappings(ctx);
  assert.deepEqual(list.map((m) => [m.prefix, m.cpu, m.major, m.minor, m.circuitHash, m.deviceHash]), [
    ['100.64.0.1/32', 0, 1, 0x10, 1007n, 1009n],
    ['100.64.2.0/24', 1, 2, 0x11, 2007n, 2009n],
    ['2001:db8:1::/56', 2, 3, 0x12, 3007n, 3009n],
  ]);
  assert.equal(list[1]!.tcHandle, (2 << 16) | 0x11);

  // Replace in place (same prefix, new class), then delete by prefix with a length.
  await updateMappings([mapping('100.64.2.0/24', 2, 0x20, 2)], ctx);
  assert.equal((await listMappings(ctx)).find((m) => m.prefix === '100.64.2.0/24')!.minor, 0x20);
  const epoch1 = readEpoch(ctx);
  await deleteMappings(['2001:db8:1::/56', '198.51.100.0/24' /* absent: ignored */], ctx);
  assert.ok(readEpoch(ctx) > epoch1, 'epoch bumped by deleteMappings');
  assert.deepEqual((await listMappings(ctx)).map((m) => m.prefix), ['100.64.0.1/32', '100.64.2.0/24']);

  assert.equal(await clearMappings(ctx), 2);
  assert.equal((await listMappings(ctx)).length, 0);
  assert.equal(hotCacheSize(ctx), 0);
});

test('invalid mappings are rejected before touching the map', async () => {
  await assert.rejects(async () => updateMappings([mapping('10.0.0.0/8', 0x10000, 1)], ctx));
  await assert.rejects(async () => updateMappings([mapping('not-an-ip/8', 1, 1)], ctx));
  assert.equal((await listMappings(ctx)).length, 0);
});

test('bypass switch and empty counters', async () => {
  await setBypass(true, ctx);
  assert.equal(await getBypass(ctx), true);
  await setBypass(false, ctx);
  assert.equal(await getBypass(ctx), false);
  assert.equal((await readHostCounters(ctx)).size, 0);
  const st = await readStats(ctx);
  assert.equal(st.xdpSeen, 0n);
});

test('a pinned map with an old layout is replaced, with a log line', async () => {
  const pin = `${ctx.pinRoot}/hot_cache`;
  await execa('rm', ['-f', pin]);
  await execa('bpftool', ['map', 'create', pin, 'type', 'hash', 'key', '4', 'value', '4', 'entries', '16', 'name', 'hot_cache']);
  warnings.length = 0;
  const r = await createPinnedMaps({ ...ctx, logger: capture });
  assert.deepEqual(r.replaced, ['hot_cache']);
  assert.ok(r.reused.includes('ip_to_class'));
  assert.ok(warnings.some((w) => w.includes('hot_cache') && w.includes('old layout')), warnings.join('\n'));
  const info = JSON.parse((await execa('bpftool', ['-j', 'map', 'show', 'pinned', pin])).stdout) as { type: string; bytes_key: number; bytes_value: number };
  assert.equal(info.type, 'lru_hash');
  assert.equal(info.bytes_key, 16);
  assert.equal(info.bytes_value, 32);
});

test('errors carry errno name, operation and hint', async () => {
  await assert.rejects(async () => listMappings({ pinRoot: `/sys/fs/bpf/${id}-missing` }), (e: unknown) => {
    assert.ok(e instanceof DataplaneError);
    assert.equal(e.code, 'ENOENT');
    assert.match(e.op, /bpf_obj_get/);
    assert.ok(e.hint.length > 10);
    return true;
  });
});

test('batch-load 100k mappings', async () => {
  const n = 100_000;
  const ms: IpMapping[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const q = (i % 4) + 1;
    ms[i] = {
      prefix: i % 10 === 0 ? `2001:db8:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}::/64` : `100.${64 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32`,
      cpu: q - 1, major: q, minor: 3 + (i % 60000), circuitId: '', deviceId: '', circuitHash: BigInt(i + 1), deviceHash: BigInt(i + 1),
    };
  }
  const t0 = performance.now();
  const r = await updateMappings(ms, ctx);
  const elapsed = performance.now() - t0;
  console.log(`# 100k mappings loaded in ${elapsed.toFixed(0)} ms (${r.method})`);
  assert.equal(r.method, 'batch');
  assert.equal(await countMappings(ctx), n);
  assert.ok(elapsed < 1000, `100k load took ${elapsed.toFixed(0)} ms (target 500 ms)`);
  const t1 = performance.now();
  assert.equal(await clearMappings(ctx), n);
  console.log(`# 100k mappings cleared in ${(performance.now() - t1).toFixed(0)} ms`);
  assert.equal(await countMappings(ctx), 0);
});
