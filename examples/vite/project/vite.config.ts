import react from '@vitejs/plugin-react'
import { defineConfig } from 'vite'

// https://vite.dev/config/
export default defineConfig({
  plugins: [react()],
  build: {
    // writes dist/.vite/manifest.json (what a backend integration reads)
    manifest: true,
    sourcemap: false,
  },
})
