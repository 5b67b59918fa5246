import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// Built into the server's static assets: the server serves dist/console at /console.
export default defineConfig({
  base: '/console/',
  plugins: [react()],
  build: {
    outDir: fileURLToPath(new URL('../server/dist/console', import.meta.url)),
    emptyOutDir: true,
    // No source maps in the shipped console: they would double what every server carries.
    sourcemap: false,
  },
  // `npm run dev -w packages/console` against a server on the default port.
  server: { proxy: { '/v1': 'http://127.0.0.1:8090' } },
});
