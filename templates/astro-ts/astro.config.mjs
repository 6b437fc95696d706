// @ts-check
// A static site: the page is HTML from the build, and the React island connects from the browser.
import react from '@astrojs/react';
import { defineConfig } from 'astro/config';

export default defineConfig({
  integrations: [react()],
  // `spacetime start` listens on 3000; Astro's default is 4321 — kept explicit so the two never meet.
  server: { port: 4321 },
  telemetry: false,
});
