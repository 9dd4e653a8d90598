import { fileURLToPath } from 'node:url';
import vue from '@vitejs/plugin-vue';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

// The lqosd web UI. Built into webui/dist, which lqosd serves on :9123 (see lib/web/server.ts).
// Deterministic output (content hashes only, no timestamps), no source maps, no compressed-size report:
// the build stays fast enough for scripts/setup.
export default defineConfig({
  root,
  base: '/',
  plugins: [vue()],
  logLevel: 'warn',
  clearScreen: false,
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    manifest: true,
    reportCompressedSize: false,
    chunkSizeWarningLimit: 1500,
    target: 'es2022',
  },
  server: {
    proxy: {
      '/api': { target: 'http://127.0.0.1:9123', ws: true },
    },
  },
});
