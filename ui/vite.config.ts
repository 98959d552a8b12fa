// Vite builds the UI into static files (control embeds them; docs/ui.md). No CDN:
// every dependency is bundled from node_modules.
import { defineConfig } from "vite";

export default defineConfig({
  base: "/",
  build: {
    target: "es2020",
    assetsDir: "assets",
    sourcemap: false,
    reportCompressedSize: false,
    chunkSizeWarningLimit: 400,
  },
});
