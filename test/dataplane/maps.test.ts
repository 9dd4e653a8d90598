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
import { repoRoot } from '../support/paths.ts';
import type { IpMapping } from '../../lib/model.ts';
import { teardownAll } from '../../dataplane/attach.ts';
import { createPinnedMaps } from '../../dataplane/object.ts';
import {
  clearMappings, countMappings, deleteMappings, getBypass, hotCacheSize, listMappings, mappingCapacity, readEpoch, readHostCounters, readStats,
  setBypass, updateMappings, writeMappingBatch,
} from '../../dataplane/maps.ts';
import type { DataplaneLogger } from '../../dataplane/log.ts';
import { PINNED_MAPS, shapingFds } from '../../dataplane/pinned.ts';
import {
  ABI_VERSION, CLASS_INFO_SIZE, HOST_COUNTER_SIZE, HOT_ENTRY_SIZE, LPM_KEY_SIZE, MAX_MAPPINGS,
  encodeAddr, encodeCfg, encodeLpmKey, encodeU32, decodeLpmKey, hostKeyText, tcHandle, writeMappingEntry,
} from '../../dataplane/abi.ts';
import { DataplaneError, closeFd, mapLookupElem, mapUpdateBatch, mapUpdateElem, objGet } from '../../dataplane/libbpf.ts';

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
  // Class handles: 0:0 is the counted-but-unshaped mapping; a minor without a major is not a class.
  assert.equal(tcHandle(0, 0), 0);
  assert.equal(tcHandle(3, 0x12), 0x30012);
  assert.throws(() => tcHandle(0, 5), /major 0 out of range/);
  // The value carries the prefix length of its own key (host counters are keyed by the matched prefix).
  const k2 = Buffer.alloc(LPM_KEY_SIZE), v2 = Buffer.alloc(CLASS_INFO_SIZE, 0xee);
  writeMappingEntry('2001:db8::/56', { cpu: 1, tcHandle: 0x20003, circuitHash: 5n, deviceHash: 6n }, k2, 0, v2, 0);
  assert.equal(v2.readUInt32LE(24), 56);
  assert.equal(v2.readUInt32LE(28), 0, 'reserved word zeroed');
  writeMappingEntry('100.64.1.0/24', { cpu: 1, tcHandle: 0x20003, circuitHash: 5n, deviceHash: 6n }, k2, 0, v2, 0);
  assert.equal(v2.readUInt32LE(24), 24 + 96);
  assert.equal(hostKeyText(encodeLpmKey('100.64.1.9/32')), '100.64.1.9');
  assert.equal(hostKeyText(encodeLpmKey('100.64.1.9/24')), '100.64.1.0/24');
  assert.equal(hostKeyText(encodeLpmKey('2001:db8::1')), '2001:db8::1');
  assert.equal(hostKeyText(encodeLpmKey('2001:db8:0:ff::/56')), '2001:db8::/56');
  assert.equal(encodeCfg({ mode: 1, internetIfindex: 2, ispIfindex: 3, stickOffset: 4, internetVlan: 5, ispVlan: 6, maxMajor: 9 }).readUInt32LE(24), 9);
  assert.equal(encodeCfg({ mode: 1, internetIfindex: 2, ispIfindex: 3, stickOffset: 4, internetVlan: 5, ispVlan: 6 }).length, 32);
  assert.equal(encodeCfg({ mode: 2, internetIfindex: 2, ispIfindex: 2, stickOffset: 4, internetVlan: 5, ispVlan: 6 }).readUInt32LE(28), 0, 'flags: none');
  assert.equal(encodeCfg({ mode: 2, internetIfindex: 2, ispIfindex: 2, stickOffset: 4, internetVlan: 5, ispVlan: 6, stickTcSwap: true }).readUInt32LE(28), 1, 'flags: LQOS_CFG_STICK_TC_SWAP');
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
  assert.equal(info.bytes_value, HOT_ENTRY_SIZE);
});

test('maps of another ABI version: refused by map users, recreated by the loader', async () => {
  await updateMappings([mapping('100.64.0.1/32', 1, 0x10, 1)], ctx);
  const abiFd = objGet(`${ctx.pinRoot}/lqos_abi`);
  try {
    const v = Buffer.alloc(4);
    mapLookupElem(abiFd, encodeU32(0), v);
    assert.equal(v.readUInt32LE(0), ABI_VERSION, 'the loader stamped the version');
    mapUpdateElem(abiFd, encodeU32(0), encodeU32(ABI_VERSION - 1));
  } finally {
    closeFd(abiFd);
  }
  shapingFds.forget(ctx.pinRoot); // a fresh process: the check runs on the first open
  await assert.rejects(async () => listMappings(ctx), (e: unknown) => {
    assert.ok(e instanceof DataplaneError);
    assert.equal(e.code, 'EPROTO');
    assert.match(e.message, new RegExp(`ABI v${ABI_VERSION - 1}, this lqos-ts expects v${ABI_VERSION}`));
    assert.match(e.message, /restart lqosd/);
    return true;
  });

  warnings.length = 0;
  const r = await createPinnedMaps({ ...ctx, logger: capture });
  assert.ok(warnings.some((w) => w.includes(`ABI v${ABI_VERSION - 1}`) && w.includes(`replaced by v${ABI_VERSION}`)), warnings.join('\n'));
  assert.deepEqual([...r.replaced].sort(), [...PINNED_MAPS].sort(), 'every pinned map recreated');
  assert.deepEqual(r.reused, []);
  assert.deepEqual(await listMappings(ctx), [], 'old content gone (lqosd rewrites the mappings)');

  // Maps from before the version map existed (no lqos_abi pin) count as v1.
  await execa('rm', ['-f', `${ctx.pinRoot}/lqos_abi`]);
  shapingFds.forget(ctx.pinRoot);
  await assert.rejects(async () => countMappings(ctx), /ABI v1, this lqos-ts expects/);
  await createPinnedMaps({ ...ctx, logger: quiet });
  assert.equal(await countMappings(ctx), 0);
});

test('deleting or clearing mappings drops their host counters', async () => {
  await updateMappings([mapping('100.64.0.1/32', 1, 0x10, 1), mapping('100.64.3.0/24', 1, 0x11, 2), mapping('2001:db8:7::/56', 1, 0x12, 3)], ctx);
  const hc = objGet(`${ctx.pinRoot}/host_counters`);
  try {
    for (const p of ['100.64.0.1/32', '100.64.3.0/24', '2001:db8:7::/56']) {
      const v = Buffer.alloc(HOST_COUNTER_SIZE);
      v.writeBigUInt64LE(1234n, 0);
      mapUpdateElem(hc, encodeLpmKey(p), v);
    }
  } finally {
    closeFd(hc);
  }
  assert.deepEqual([...(await readHostCounters(ctx)).keys()].sort(), ['100.64.0.1', '100.64.3.0/24', '2001:db8:7::/56']);
  assert.equal((await readHostCounters(ctx)).get('100.64.3.0/24')?.downloadBytes, 1234n);
  await deleteMappings(['100.64.3.0/24'], ctx);
  assert.deepEqual([...(await readHostCounters(ctx)).keys()].sort(), ['100.64.0.1', '2001:db8:7::/56']);
  assert.equal(await clearMappings(ctx), 2);
  assert.equal((await readHostCounters(ctx)).size, 0);
});

test('a batch that cannot fit is refused before any write', async () => {
  const capacity = mappingCapacity(ctx);
  assert.equal(capacity, MAX_MAPPINGS);
  // Fill to 10 below capacity.
  const fill = capacity - 10;
  const keys = Buffer.alloc(fill * LPM_KEY_SIZE);
  const vals = Buffer.alloc(fill * CLASS_INFO_SIZE);
  const addr = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  for (let i = 0; i < fill; i++) {
    writeMappingEntry(`${addr(i)}/32`, { cpu: 0, tcHandle: tcHandle(1, 1 + (i % 1000)), circuitHash: BigInt(i), deviceHash: 0n }, keys, i * LPM_KEY_SIZE, vals, i * CLASS_INFO_SIZE);
  }
  writeMappingBatch(keys, vals, fill, ctx);
  assert.equal(await countMappings(ctx), fill);
  const epoch = readEpoch(ctx);

  // 500 existing prefixes (re-classed) + 11 new ones: one too many.
  const batch: IpMapping[] = [];
  for (let i = 0; i < 500; i++) batch.push(mapping(`${addr(i)}/32`, 2, 0x99, i));
  for (let i = 0; i < 11; i++) batch.push(mapping(`172.16.0.${i}/32`, 2, 0x99, i));
  await assert.rejects(async () => updateMappings(batch, ctx), (e: unknown) => {
    assert.ok(e instanceof DataplaneError);
    assert.equal(e.code, 'ENOSPC');
    assert.match(e.message, new RegExp(`${fill} prefixes mapped \\+ 11 new in this batch = ${capacity + 1}, over the dataplane capacity of ${capacity}`));
    assert.match(e.message, /nothing was written/);
    assert.match(e.message, /LQOS_MAX_MAPPINGS/);
    return true;
  });
  const after = await listMappings(ctx);
  assert.equal(after.length, fill, 'no prefix added');
  assert.equal(after.filter((m) => m.major === 2).length, 0, 'no existing prefix re-classed');
  assert.equal(readEpoch(ctx), epoch, 'nothing written, nothing invalidated');

  // Existing keys do not count against the room: 500 existing + 10 new fits exactly.
  batch.pop();
  await updateMappings(batch, ctx);
  assert.equal(await countMappings(ctx), capacity);
  assert.equal((await listMappings(ctx)).filter((m) => m.major === 2 && m.minor === 0x99).length, 510);
  assert.equal(await clearMappings(ctx), capacity);
});

test('entries written by another process count against the room (no stale bound)', async () => {
  const capacity = mappingCapacity(ctx);
  // This process writes a little and so knows a bound of 5 entries.
  const own: IpMapping[] = [];
  for (let i = 0; i < 5; i++) own.push(mapping(`192.0.2.${i}/32`, 1, 2, i));
  await updateMappings(own, ctx);
  // "Another process" (its own fd, raw batch) fills the map to 10 below capacity and bumps the epoch, as
  // every writer does.
  const fill = capacity - 15;
  const keys = Buffer.alloc(fill * LPM_KEY_SIZE);
  const vals = Buffer.alloc(fill * CLASS_INFO_SIZE);
  const addr = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  for (let i = 0; i < fill; i++) {
    writeMappingEntry(`${addr(i)}/32`, { cpu: 0, tcHandle: tcHandle(1, 3), circuitHash: 1n, deviceHash: 0n }, keys, i * LPM_KEY_SIZE, vals, i * CLASS_INFO_SIZE);
  }
  const fd = objGet(`${ctx.pinRoot}/ip_to_class`);
  const epochFd = objGet(`${ctx.pinRoot}/mapping_epoch`);
  try {
    mapUpdateBatch(fd, keys, vals, fill, LPM_KEY_SIZE, CLASS_INFO_SIZE);
    mapUpdateElem(epochFd, Buffer.alloc(4), Buffer.from(Uint32Array.of(readEpoch(ctx) + 1).buffer));
  } finally {
    closeFd(fd);
    closeFd(epochFd);
  }
  // 11 new prefixes: this process's own bound (5 + 11) would let them through; the real count does not.
  const batch: IpMapping[] = [];
  for (let i = 0; i < 11; i++) batch.push(mapping(`172.16.1.${i}/32`, 2, 0x99, i));
  await assert.rejects(async () => updateMappings(batch, ctx), (e: unknown) => e instanceof DataplaneError && e.code === 'ENOSPC');
  assert.equal(await countMappings(ctx), capacity - 10);
  batch.pop();
  await updateMappings(batch, ctx);
  assert.equal(await countMappings(ctx), capacity);
  assert.equal(await clearMappings(ctx), capacity);
});

test('maps recreated by another process: this process follows the new pins instead of writing into the old maps', async () => {
  await updateMappings([mapping('192.0.2.77/32', 1, 5, 77)], ctx);
  // Another process tears the maps down and creates them again (as a loader of another ABI would).
  const script = `import { teardownAll } from './dataplane/attach.ts'; import { createPinnedMaps } from './dataplane/object.ts';
    const q = { info: () => {}, warn: () => {} };
    await teardownAll({ pinRoot: ${JSON.stringify(ctx.pinRoot)}, logger: q }); await createPinnedMaps({ pinRoot: ${JSON.stringify(ctx.pinRoot)}, logger: q });`;
  await execa('node', ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: repoRoot });
  // The next write lands in the new map (read back through a fresh fd, not this process's cache).
  await updateMappings([mapping('192.0.2.78/32', 1, 6, 78)], ctx);
  const fd = objGet(`${ctx.pinRoot}/ip_to_class`);
  try {
    const v = Buffer.alloc(CLASS_INFO_SIZE);
    assert.equal(mapLookupElem(fd, encodeLpmKey('192.0.2.78/32'), v), true, 'written into the recreated map');
    assert.equal(mapLookupElem(fd, encodeLpmKey('192.0.2.77/32'), v), false, 'the old map is gone with its entries');
  } finally {
    closeFd(fd);
  }
  assert.deepEqual((await listMappings(ctx)).map((m) => m.prefix), ['192.0.2.78/32']);
  await clearMappings(ctx);
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
  const t1 = performance.now();
  assert.equal(await clearMappings(ctx), n);
  console.log(`# 100k mappings cleared in ${(performance.now() - t1).toFixed(0)} ms`);
  assert.equal(await countMappings(ctx), 0);
});
