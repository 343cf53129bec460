import { defineConfig } from "@playwright/test";
import base from "./playwright.config";

// `npm run bench`: the first-load measurements of bench/first-load.spec.ts against one sandbox shop
// (the suite's first web server). Use the release build for figures worth reporting:
// WXMALL_E2E_PROFILE=release npm run bench (bench/run does).
const servers = Array.isArray(base.webServer) ? base.webServer : [base.webServer!];

export default defineConfig({
  ...base,
  testDir: "./bench",
  timeout: 600_000,
  webServer: [servers[0]],
});
