// The page connects from the browser only (app.vue wraps it in <ClientOnly>); the server render is the
// "Connecting..." state. Vite inlines VITE_SPACETIMEDB_* from .env.local (written by `spacetime init` / `spacetime dev`).
export default defineNuxtConfig({
  compatibilityDate: '2025-07-15',
  telemetry: false,
  // `spacetime start` listens on 3000, Nuxt's default.
  devServer: { port: 5173 },
  app: { head: { title: 'SpacetimeDB + Nuxt' } },
});
