/**
 * Web keys of lqos.conf (issue 13 item 1): upstream's top-level webserver_listen = "IP:port" is
 * honoured when [web] is absent ([web] wins, with one warning, when both are set);
 * disable_webserver = true starts lqosd without the web server; node_name and node_id (derived
 * from /etc/machine-id when empty) are in the status API and in the web UI header and title.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { busRequest } from '../../lib/bus/client.ts';
import { parseConfigText } from '../../lib/config/load.ts';
import { nodeIdOf, parseListen, webListenAddress } from '../../lib/web/listen.ts';
import { listenFallingBackToIpv4 } from '../../lib/web/server.ts';
import { bodyText, launchBrowser, shot } from '../support/browser.ts';
import { loConfig, webConfig } from '../support/configs.ts';
import { capturingLogger } from '../support/log.ts';
import { startTestDaemon } from '../support/daemon.ts';
import { ADMIN, login, setupUsers } from '../support/users.ts';
import { freePort } from '../support/http.ts';
import { startWebHarness } from '../support/web.ts';
import { testDir, workspaceFactory } from '../support/workspace.ts';
import { startUiHarness } from '../webui/helpers.ts';

const conf = (text: string) => parseConfigText(`${text}\n[bridge]\nto_internet = "eth0"\nto_network = "eth1"\n`, '/etc/lqos.conf').config;
const ws = workspaceFactory();


const get = (url: string) => fetch(url).then((r) => r.status, (e: Error) => `refused: ${(e.cause as Error)?.message ?? e.message}`);

test('webserver_listen: parsed, honoured without [web], [web] wins (one warning) when both are set', () => {
  assert.deepEqual(parseListen('127.0.0.1:9200'), { host: '127.0.0.1', port: 9200 });
  assert.deepEqual(parseListen('[::1]:9300'), { host: '::1', port: 9300 });
  assert.deepEqual(parseListen(':9400'), { host: '0.0.0.0', port: 9400 });
  // Upstream's own default (IPv6 any, dual-stack) and unbracketed IPv6 addresses: the last colon starts the port.
  assert.deepEqual(parseListen(':::9123'), { host: '::', port: 9123 });
  assert.deepEqual(parseListen('fd00::1:9500'), { host: 'fd00::1', port: 9500 });
  assert.equal(parseListen('fd00:::1:9500'), undefined); // 'fd00:::1' is no address
  assert.deepEqual(webListenAddress(conf('webserver_listen = ":::9123"')), { host: '::', port: 9123, from: 'webserver_listen' });
  assert.equal(parseListen('9123'), undefined);
  assert.equal(parseListen('1.2.3.4:99999'), undefined);
  assert.deepEqual(webListenAddress(conf('')), { host: '0.0.0.0', port: 9123, from: '[web]' });
  assert.deepEqual(webListenAddress(conf('webserver_listen = "127.0.0.1:9200"')), { host: '127.0.0.1', port: 9200, from: 'webserver_listen' });
  const both = webListenAddress(conf('webserver_listen = "127.0.0.1:9200"\n[web]\nport = 9500'));
  assert.equal(both.from, '[web]');
  assert.equal(both.port, 9500);
  assert.match(both.warning!, /both \[web\] \(0\.0\.0\.0:9500\) and webserver_listen = "127\.0\.0\.1:9200" are set; \[web\] wins/);
  const bad = webListenAddress(conf('webserver_listen = "localhost"'));
  assert.equal(bad.port, 9123);
  assert.match(bad.warning!, /not of the form "IP:port"/);
});

test('listening on [::] on a host without IPv6 falls back to 0.0.0.0 with a warning; other failures and hosts are not retried', async () => {
  const errno = (code: string) => Object.assign(new Error(`listen ${code}`), { code });
  const tried: string[] = [];
  const warned: string[] = [];
  const log = { warn: (_o: object, m: string) => warned.push(m) } as unknown as Parameters<typeof listenFallingBackToIpv4>[2];
  const noIpv6 = async (host: string) => {
    tried.push(host);
    if (host === '::') throw errno('EAFNOSUPPORT');
    return `http://${host}:9123`;
  };
  assert.equal(await listenFallingBackToIpv4(noIpv6, '::', log), 'http://0.0.0.0:9123');
  assert.deepEqual(tried, ['::', '0.0.0.0']);
  assert.deepEqual(warned, ['cannot listen on [::] (EAFNOSUPPORT: this host has no IPv6); listening on 0.0.0.0 (IPv4 only) instead']);
  await assert.rejects(listenFallingBackToIpv4(async () => { throw errno('EADDRINUSE'); }, '::', log), /EADDRINUSE/);
  await assert.rejects(listenFallingBackToIpv4(async () => { throw errno('EADDRNOTAVAIL'); }, '192.0.2.1', log), /EADDRNOTAVAIL/);
  assert.equal(warned.length, 1);
});

test('lqosd listens on webserver_listen when [web] is absent', async () => {
  const port = await freePort();
  const w = ws({ runDir: true, conf: (dir) => loConfig(dir).replace('disable_webserver = true\n', `webserver_listen = "127.0.0.1:${port}"\n`) });
  const defaultFree = /refused/.test(String(await get('http://127.0.0.1:9123/api/status')));
  const d = await startTestDaemon(w, { web: undefined });
  try {
    assert.equal(await get(`http://127.0.0.1:${port}/api/status`), 409, 'the API answers (first run: no admin yet) on the upstream key\'s address');
    if (defaultFree) assert.match(String(await get('http://127.0.0.1:9123/api/status')), /refused/, 'not on the [web] default');
  } finally {
    await d.stop();
  }
});

test('lqosd with both [web] and webserver_listen: [web] wins, one warning', async () => {
  const [legacy, port] = [await freePort(), await freePort()];
  const { log, records } = capturingLogger();
  const w = ws({ runDir: true, conf: (dir) => `${loConfig(dir).replace('disable_webserver = true\n', `webserver_listen = "127.0.0.1:${legacy}"\n`)}[web]\nbind_address = "127.0.0.1"\nport = ${port}\n` });
  const d = await startTestDaemon(w, { web: undefined, log });
  try {
    assert.equal(await get(`http://127.0.0.1:${port}/api/status`), 409);
    assert.match(String(await get(`http://127.0.0.1:${legacy}/api/status`)), /refused/);
    const warnings = records.filter((r) => r.level === 40 && /webserver_listen/.test(r.msg));
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.match(warnings[0]!.msg, /\[web\] wins/);
  } finally {
    await d.stop();
  }
});

test('disable_webserver = true: lqosd runs (bus up) without the web server', async () => {
  const port = await freePort();
  const w = ws({ runDir: true, conf: (dir) => `${loConfig(dir)}[web]\nbind_address = "127.0.0.1"\nport = ${port}\n` });
  assert.match(readFileSync(w.config, 'utf8'), /disable_webserver = true/);
  const d = await startTestDaemon(w, { web: undefined });
  try {
    assert.equal((await busRequest<'status', { version: string }>('status', {}, { path: w.busPath })).version.length > 0, true);
    assert.match(String(await get(`http://127.0.0.1:${port}/api/status`)), /refused/);
  } finally {
    await d.stop();
  }
  // The same config with disable_webserver = false serves on that port.
  writeFileSync(w.config, readFileSync(w.config, 'utf8').replace('disable_webserver = true', 'disable_webserver = false'));
  const d2 = await startTestDaemon(w, { web: undefined });
  try {
    assert.equal(await get(`http://127.0.0.1:${port}/api/status`), 409);
  } finally {
    await d2.stop();
  }
});

test('node_id: the configured one, else stable from /etc/machine-id', (t) => {
  assert.equal(nodeIdOf(conf('node_id = "edge-7"')), 'edge-7');
  const dir = testDir(t);
  const mid = join(dir, 'machine-id');
  writeFileSync(mid, '0123456789abcdef0123456789abcdef\n');
  const want = createHash('sha256').update('0123456789abcdef0123456789abcdef').digest('hex').slice(0, 16);
  assert.equal(nodeIdOf(conf(''), mid), want);
  assert.equal(nodeIdOf(conf(''), mid), want, 'stable');
  assert.match(nodeIdOf(conf('')), /^[0-9a-f]{16}$/);
});

test('node_name and node_id in GET /api/status', async () => {
  const h = await startWebHarness({
    prefix: 'lqos-listen-',
    config: (dir) => webConfig(dir).replace('node_name = "test-node"', 'node_name = "Edge North"\nnode_id = "edge-north-01"'),
    devices: 'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment\n',
    network: '{}',
  });
  try {
    const { viewer } = await setupUsers(h);
    const s = await viewer.get('/api/status');
    assert.equal(s.status, 200);
    assert.equal(s.json.nodeName, 'Edge North');
    assert.equal(s.json.nodeId, 'edge-north-01');
  } finally {
    await h.close();
  }
  // Empty node_id: the derived one.
  const h2 = await startWebHarness({
    prefix: 'lqos-listen-',
    devices: 'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment\n',
    network: '{}',
  });
  try {
    const { viewer } = await setupUsers(h2);
    const s = await viewer.get('/api/status');
    assert.equal(s.json.nodeId, nodeIdOf(h2.ctx.config()));
    assert.match(s.json.nodeId, /^[0-9a-f]{16}$/);
  } finally {
    await h2.close();
  }
});

test('node_name and node_id in the web UI header and window title', async () => {
  const h = await startUiHarness();
  const b = await launchBrowser();
  try {
    await setupUsers(h);
    await login(b.page, h.base, ADMIN);
    const { page } = b;
    await page.goto(`${h.base}/tree`);
    const badge = page.getByTestId('node-name');
    await badge.waitFor();
    assert.equal(await badge.innerText(), 'test-node');
    assert.equal(await badge.getAttribute('data-node-id'), nodeIdOf(h.ctx.config()));
    await page.waitForFunction(() => document.title === 'Network Tree · test-node · LibreQoS');
    assert.ok((await bodyText(page)).includes('test-node'));
    await shot(page, 'listen-node-name');
  } finally {
    await b.close();
    await h.close();
  }
});
