// Builds the UI into crates/server/ui-dist, which the oriel binary embeds: content-hashed
// names (cached for a year), no source maps, no inline scripts (the Content-Security-Policy
// allows none).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root,
  base: '/',
  build: {
    outDir: fileURLToPath(new URL('../crates/server/ui-dist', import.meta.url)),
    emptyOutDir: true,
    assetsDir: 'assets',
    sourcemap: false,
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    target: 'es2022',
  },
});
