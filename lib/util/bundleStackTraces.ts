/**
 * Stack traces that name the .ts sources for code run from a bundle whose source map node did not
 * load: the start-up snapshot (bin/LibreQoS.snapshot.ts) restores compiled code, and `node
 * --enable-source-maps` only maps files it compiled itself. The map is read the first time a stack
 * is formatted (a failure), not at start.
 */
import { readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { dirname, resolve } from 'node:path';

/** Formats every stack with frames in `bundleFile` mapped through `bundleFile.map` (when it reads). */
export function mapStackTraces(bundleFile: string): void {
  let map: SourceMap | null | undefined;
  const sourceMap = (): SourceMap | null => {
    if (map === undefined) {
      try {
        map = new SourceMap(JSON.parse(readFileSync(`${bundleFile}.map`, 'utf8')));
      } catch {
        map = null; // no map: the bundle's own lines
      }
    }
    return map;
  };
  Error.prepareStackTrace = (err: Error, frames: NodeJS.CallSite[]) => {
    const lines = frames.map((f) => {
      const text = `    at ${String(f)}`;
      const line = f.getLineNumber();
      const column = f.getColumnNumber();
      if (f.getFileName() !== bundleFile || line === null || column === null) return text;
      const entry = sourceMap()?.findEntry(line - 1, column - 1) as { originalSource?: string; originalLine?: number; originalColumn?: number } | undefined;
      if (!entry?.originalSource || entry.originalLine === undefined || entry.originalColumn === undefined) return text;
      const original = `${resolve(dirname(bundleFile), entry.originalSource)}:${entry.originalLine + 1}:${entry.originalColumn + 1}`;
      return text.replace(`${bundleFile}:${line}:${column}`, original);
    });
    return [String(err), ...lines].join('\n');
  };
}
