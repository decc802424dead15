import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// `pnpm --filter console dev`: Vite with hot reload, the APIs proxied to a running gateway.
const gateway = process.env.QLAB_GATEWAY_URL ?? 'http://127.0.0.1:8080';

export default defineConfig({
  plugins: [react()],
  build: {
    target: 'es2022',
    // Hashed names under assets/: the gateway caches them for a year.
    assetsDir: 'assets',
    sourcemap: false,
  },
  server: {
    proxy: {
      '/api': { target: gateway, ws: true, changeOrigin: true },
      '/health': { target: gateway },
    },
  },
});
