/**
 * Architecture checks run by the test suite (test/unit/architecture.test.ts) and by hand:
 *
 *   node --import tsx scripts/architecture.ts
 *
 * 1. Layers: every relative import in lib/, dataplane/ and webui/src/ points to the same or a lower
 *    layer (the table LAYERS below is the diagram in docs/ARCHITECTURE.md).
 * 2. No circles: neither between files nor between modules (folders such as lib/apply).
 * 3. No function in lib/ longer than MAX_FUNCTION_LINES.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

export const REPO = resolve(import.meta.dirname, '..');
export const MAX_FUNCTION_LINES = 150;

/**
 * Layer of each module, lowest first. A file belongs to the longest matching prefix. A module may
 * import its own layer or lower ones, never a higher one.
 */
export const LAYERS: { layer: number; name: string; modules: string[] }[] = [
  { layer: 0, name: 'foundation', modules: ['lib/util', 'lib/model.ts', 'lib/api'] },
  {
    layer: 1,
    name: 'domain (pure compiler, config, kernel access)',
    modules: ['lib/config', 'lib/inputs', 'lib/plan', 'lib/compile', 'lib/pipeline.ts', 'lib/overrides', 'lib/kernel', 'dataplane'],
  },
  { layer: 2, name: 'mechanisms', modules: ['lib/apply', 'lib/bus', 'lib/integrations', 'lib/urgent'] },
  { layer: 3, name: 'services', modules: ['lib/shaping', 'lib/telemetry', 'lib/flows'] },
  { layer: 4, name: 'front ends', modules: ['lib/web', 'lib/scheduler', 'lib/cli'] },
  { layer: 5, name: 'daemon (wires the services together)', modules: ['lib/daemon'] },
];

/** The web UI may import only its own files and the API types. */
export const WEBUI_ALLOWED = ['webui/', 'lib/api/'];

const SOURCE_DIRS = ['lib', 'dataplane', 'webui/src'];
const EXTENSIONS = ['.ts', '.vue'];

export function listSources(dirs = SOURCE_DIRS): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(join(REPO, d))) {
      if (e === 'node_modules' || e === 'dist' || e === 'build') continue;
      const rel = `${d}/${e}`;
      if (statSync(join(REPO, rel)).isDirectory()) walk(rel);
      else if (EXTENSIONS.some((x) => e.endsWith(x)) && !e.endsWith('.d.ts')) out.push(rel);
    }
  };
  for (const d of dirs) walk(d);
  return out.sort();
}

const IMPORT_RE = /(?:^|[\s;])(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

/** Relative imports of a file, resolved to repository paths. */
export function importsOf(file: string): string[] {
  let text = readFileSync(join(REPO, file), 'utf8');
  if (file.endsWith('.vue')) text = [...text.matchAll(/<script[^>]*>([\s\S]*?)<\/script>/g)].map((m) => m[1]).join('\n');
  // Comments may quote import lines; drop them.
  text = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const out: string[] = [];
  for (const m of text.matchAll(IMPORT_RE)) {
    const spec = m[1] ?? m[2];
    if (!spec || !spec.startsWith('.')) continue;
    out.push(relative(REPO, resolve(REPO, dirname(file), spec)));
  }
  return out;
}

export function moduleOf(file: string): string | undefined {
  let best: string | undefined;
  for (const l of LAYERS) for (const m of l.modules) if ((file === m || file.startsWith(`${m}/`)) && (!best || m.length > best.length)) best = m;
  return best;
}

export function layerOf(file: string): number | undefined {
  const m = moduleOf(file);
  return m === undefined ? undefined : LAYERS.find((l) => l.modules.includes(m))!.layer;
}

export interface Violation {
  from: string;
  to: string;
  why: string;
}

export type ImportReader = (file: string) => string[];

export function layerViolations(files = listSources(), imports: ImportReader = importsOf): Violation[] {
  const out: Violation[] = [];
  for (const from of files) {
    for (const to of imports(from)) {
      if (from.startsWith('webui/')) {
        if (!WEBUI_ALLOWED.some((p) => to.startsWith(p))) out.push({ from, to, why: 'the web UI imports only webui/ and lib/api/' });
        continue;
      }
      const lf = layerOf(from);
      const lt = layerOf(to);
      if (lf === undefined) {
        out.push({ from, to, why: `${from} is in no layer (add its module to LAYERS in scripts/architecture.ts)` });
        continue;
      }
      if (lt === undefined) out.push({ from, to, why: `imports ${to}, which is in no layer (test, bench, lab or bin code)` });
      else if (lt > lf) out.push({ from, to, why: `layer ${lf} (${moduleOf(from)}) imports layer ${lt} (${moduleOf(to)})` });
    }
  }
  return out;
}

/** Strongly connected components with more than one member (Tarjan). */
function cycles(graph: Map<string, Set<string>>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const strong = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1) out.push(comp.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) strong(v);
  return out;
}

/** Circles between files and between modules (a module is a folder of lib/ or dataplane/). */
export function importCycles(files = listSources(), imports: ImportReader = importsOf): { files: string[][]; modules: string[][] } {
  const fileGraph = new Map<string, Set<string>>();
  const modGraph = new Map<string, Set<string>>();
  for (const f of files) {
    const targets = imports(f);
    fileGraph.set(f, new Set(targets));
    const mf = moduleOf(f) ?? dirname(f);
    const set = modGraph.get(mf) ?? new Set<string>();
    for (const t of targets) {
      const mt = moduleOf(t) ?? dirname(t);
      if (mt !== mf) set.add(mt);
    }
    modGraph.set(mf, set);
  }
  return { files: cycles(fileGraph), modules: cycles(modGraph) };
}

export interface LongFunction {
  file: string;
  line: number;
  name: string;
  lines: number;
}

/** Functions (declarations, methods, arrows, expressions) longer than `max` lines. */
export function longFunctions(max = MAX_FUNCTION_LINES, files = listSources(['lib'])): LongFunction[] {
  const out: LongFunction[] = [];
  for (const file of files) {
    if (!file.endsWith('.ts')) continue;
    const text = readFileSync(join(REPO, file), 'utf8');
    const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
    const visit = (n: ts.Node) => {
      if (ts.isFunctionLike(n) && 'body' in n && n.body) {
        const first = sf.getLineAndCharacterOfPosition(n.getStart(sf)).line;
        const last = sf.getLineAndCharacterOfPosition(n.getEnd()).line;
        const lines = last - first + 1;
        if (lines > max) {
          const named = (n as { name?: ts.Node }).name;
          let name = named ? named.getText(sf) : '';
          if (!name && ts.isVariableDeclaration(n.parent)) name = n.parent.name.getText(sf);
          if (!name && ts.isPropertyAssignment(n.parent)) name = n.parent.name.getText(sf);
          out.push({ file, line: first + 1, name: name || '(anonymous)', lines });
        }
      }
      ts.forEachChild(n, visit);
    };
    visit(sf);
  }
  return out.sort((a, b) => b.lines - a.lines);
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const v = layerViolations();
  const c = importCycles();
  const f = longFunctions();
  for (const x of v) console.log(`layer: ${x.from} → ${x.to}: ${x.why}`);
  for (const x of c.files) console.log(`file circle: ${x.join(' ↔ ')}`);
  for (const x of c.modules) console.log(`module circle: ${x.join(' ↔ ')}`);
  for (const x of f) console.log(`long function: ${x.file}:${x.line} ${x.name} (${x.lines} lines)`);
  console.log(`${v.length} layer violation(s), ${c.files.length + c.modules.length} circle(s), ${f.length} function(s) over ${MAX_FUNCTION_LINES} lines`);
  process.exitCode = v.length + c.files.length + c.modules.length + f.length > 0 ? 1 : 0;
}
