import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// Built into dist/, which the gateway serves at / (same origin as the API: no CORS).
// `npm run dev -w console` serves on 127.0.0.1:5174, an origin the gateway can allow
// (GOVFLOW_CORS_ORIGINS); point it at the gateway with VITE_GATEWAY_URL.
export default defineConfig({
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false },
  server: { host: "127.0.0.1", port: 5174, strictPort: true },
});
