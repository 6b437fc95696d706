import { tanstackStart } from '@tanstack/react-start/plugin/vite';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

export default defineConfig({
  // Vite's default; `spacetime start` has 3000.
  server: { port: 5173 },
  // The plugin regenerates src/routeTree.gen.ts from src/routes/ on dev and build.
  plugins: [tanstackStart(), react()],
});
