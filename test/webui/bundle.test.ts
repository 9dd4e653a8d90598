// test-gate: shared (a browser against an in-process web server: no kernel state, no measured rates; see test/support/gate.ts)
/**
 * The build: per-route code splitting keeps the dashboard's JavaScript (entry + dashboard page + the
 * chart it loads) within 500 kB gzip, and ECharts is not in the entry chunk.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { DIST, ensureBuilt } from '../support/browser.ts';

interface Chunk {
  file: string;
  src?: string;
  isEntry?: boolean;
  imports?: string[];
  dynamicImports?: string[];
  css?: string[];
}

const LIMIT = 500 * 1024;

test('the dashboard route stays within 500 kB of gzipped JavaScript', () => {
  ensureBuilt();
  const manifest = JSON.parse(readFileSync(join(DIST, '.vite', 'manifest.json'), 'utf8')) as Record<string, Chunk>;
  const entryKey = Object.keys(manifest).find((k) => manifest[k].isEntry);
  assert.ok(entryKey, 'no entry chunk');
  const files = new Set<string>();
  const add = (key: string) => {
    const c = manifest[key];
    if (!c || files.has(c.file)) return;
    files.add(c.file);
    for (const i of c.imports ?? []) add(i);
  };
  add(entryKey);
  const entryFiles = new Set(files);
  const dash = Object.keys(manifest).find((k) => k.endsWith('pages/DashboardPage.vue'));
  assert.ok(dash, 'the dashboard is not a separate chunk');
  add(dash);
  // The dashboard renders the throughput chart as soon as telemetry is present.
  for (const d of manifest[dash].dynamicImports ?? []) add(d);

  let total = 0;
  const sizes: string[] = [];
  for (const f of files) {
    const gz = gzipSync(readFileSync(join(DIST, f)), { level: 9 }).length;
    total += gz;
    sizes.push(`${f}: ${(gz / 1024).toFixed(1)} kB`);
  }
  console.log(`dashboard route JS, gzip: ${(total / 1024).toFixed(1)} kB\n  ${sizes.join('\n  ')}`);
  assert.ok(total <= LIMIT, `dashboard JS is ${(total / 1024).toFixed(1)} kB gzip (limit 500 kB)`);

  // Other pages are their own chunks, and the entry does not carry ECharts.
  const pages = [
    'TreePage',
    'CircuitPage',
    'ShapedDevicesPage',
    'ConfigPage',
    'UsersPage',
    'LoginPage',
    'SiteMapPage',
    'FlowGlobePage',
    'AsnAnalysisPage',
    'CpuTreePage',
    'CpuWeightsPage',
    'IntegrationConfigPage',
  ];
  for (const page of pages) {
    assert.ok(Object.keys(manifest).some((k) => k.endsWith(`pages/${page}.vue`)), `${page} is not code-split`);
  }
  for (const f of entryFiles) assert.ok(!readFileSync(join(DIST, f), 'utf8').includes('echarts'), `${f} contains ECharts`);

  // The world atlas (and d3-geo) load only with the map pages: not in the dashboard route, and the
  // chunk that holds it is reached only from the Site Map and the Flow Globe.
  const atlas = Object.keys(manifest).find((k) => k.includes('world-atlas/countries-110m.json'));
  assert.ok(atlas, 'the world atlas is not a chunk of its own');
  for (const f of files) assert.ok(!readFileSync(join(DIST, f), 'utf8').includes('"Antarctica"'), `${f} carries the world atlas`);
  const reaches = (key: string, target: string, seen = new Set<string>()): boolean => {
    if (key === target) return true;
    if (seen.has(key)) return false;
    seen.add(key);
    const c = manifest[key];
    if (c?.isEntry) return false; // the router reaches every page; what matters is what a page pulls in
    return [...(c?.imports ?? []), ...(c?.dynamicImports ?? [])].some((k) => reaches(k, target, seen));
  };
  const loaders = Object.keys(manifest).filter((k) => k.includes('/pages/') && reaches(k, atlas));
  assert.deepEqual(loaders.map((k) => k.replace(/^.*pages\//, '')).sort(), ['FlowGlobePage.vue', 'SiteMapPage.vue']);
});
