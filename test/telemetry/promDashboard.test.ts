/**
 * The Grafana dashboard shipped in conf/grafana/lqos-ts.json: valid JSON, importable (the data
 * source is the `${DS_PROMETHEUS}` input on every panel and target), and every metric name in every
 * query (panels and template variables) is a series lqosd's /metrics exports — a renamed series
 * fails here, not on an operator's blank panel.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../lab/labEnv.ts';
import { createShapingMetrics } from '../../lib/telemetry/metrics.ts';
import { parseExposition } from '../support/prometheus.ts';

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: { refId: string; expr: string; datasource?: { type: string; uid: string } }[];
  panels?: Panel[];
}

const dashboard = JSON.parse(readFileSync(join(repoRoot, 'conf', 'grafana', 'lqos-ts.json'), 'utf8')) as {
  __inputs: { name: string; type: string; pluginId: string }[];
  panels: Panel[];
  templating: { list: { name: string; query: { query: string } | string; datasource: { uid: string } }[] };
};

/** PromQL functions, aggregations, keywords and Grafana macros the dashboard may use. */
const PROMQL_WORDS = new Set([
  'sum', 'max', 'min', 'avg', 'count', 'topk', 'bottomk', 'rate', 'irate', 'increase', 'by', 'without', 'on', 'ignoring',
  'and', 'or', 'unless', 'offset', 'bool', 'label_values', 'histogram_quantile', 'clamp_min', 'group_left', 'group_right',
]);

/** The metric names of a PromQL expression: identifiers outside label matchers, ranges, strings and grouping clauses. */
export function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\blabel_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*[a-zA-Z_]+\s*\)/g, '$1'); // label_values(metric, label)
  return [...bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)].map((m) => m[0]).filter((w) => !PROMQL_WORDS.has(w) && !/^\d/.test(w));
}

const exported = (async () => new Set(parseExposition(await createShapingMetrics().registry.metrics()).types.keys()))();

const allPanels = (ps: Panel[]): Panel[] => ps.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);

test('the dashboard takes its data source as the DS_PROMETHEUS input, on every panel and target', () => {
  assert.deepEqual(dashboard.__inputs.map((i) => [i.name, i.type, i.pluginId]), [['DS_PROMETHEUS', 'datasource', 'prometheus']]);
  const panels = allPanels(dashboard.panels).filter((p) => p.type !== 'row');
  assert.ok(panels.length >= 8, `${panels.length} panels`);
  for (const p of panels) {
    assert.equal(p.datasource?.uid, '${DS_PROMETHEUS}', `panel "${p.title}"`);
    assert.ok(p.targets?.length, `panel "${p.title}" has queries`);
    for (const t of p.targets!) assert.equal(t.datasource?.uid ?? p.datasource?.uid, '${DS_PROMETHEUS}', `panel "${p.title}" query ${t.refId}`);
  }
  const ids = allPanels(dashboard.panels).map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
});

test('every metric in every panel query and template variable is a series lqosd exports', async () => {
  const names = await exported;
  assert.ok(names.has('lqos_total_throughput_bps') && names.has('lqos_circuit_tcp_rtt_seconds'), `exporter families: ${[...names].join(', ')}`);
  const queries = [
    ...allPanels(dashboard.panels).flatMap((p) => (p.targets ?? []).map((t) => ({ where: `panel "${p.title}" ${t.refId}`, expr: t.expr }))),
    ...dashboard.templating.list.map((v) => ({ where: `variable ${v.name}`, expr: typeof v.query === 'string' ? v.query : v.query.query })),
  ];
  const used = new Set<string>();
  for (const q of queries) {
    const metrics = metricNames(q.expr);
    assert.ok(metrics.length > 0, `${q.where}: no metric in ${q.expr}`);
    for (const m of metrics) {
      assert.ok(names.has(m), `${q.where}: "${m}" is not a series of /metrics (expr: ${q.expr}); exported: ${[...names].join(', ')}`);
      used.add(m);
    }
  }
  for (const m of ['lqos_total_throughput_bps', 'lqos_tcp_rtt_seconds', 'lqos_tcp_retransmit_ratio', 'lqos_queue_drops_total', 'lqos_circuit_throughput_bps']) {
    assert.ok(used.has(m), `the dashboard shows ${m}`);
  }
});

test('metricNames finds metric names, not functions, labels, ranges or strings', () => {
  assert.deepEqual(metricNames('sum by (direction) (rate(lqos_queue_drops_total{instance=~"$instance", x="a{b}"}[$__rate_interval]))'), ['lqos_queue_drops_total']);
  assert.deepEqual(metricNames('topk(10, lqos_a{q="0.5"}) / on (circuit) lqos_b'), ['lqos_a', 'lqos_b']);
  assert.deepEqual(metricNames('label_values(lqos_total_throughput_bps, instance)'), ['lqos_total_throughput_bps']);
  assert.deepEqual(metricNames('rate(lqso_typo[5m]) * 8'), ['lqso_typo']);
});
