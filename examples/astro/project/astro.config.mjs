// @ts-check
import { defineConfig } from 'astro/config';

export default defineConfig({
  site: 'https://example.org',
  // output: 'static' is the default.
  // Emit component CSS and the client script as _astro/ files instead of inlining them (both are small).
  build: { inlineStylesheets: 'never' },
  vite: { build: { assetsInlineLimit: 0 } },
});
