import { defineConfig, devices } from "@playwright/test";
import * as os from "os";
import * as path from "path";

// The shop under test: the binary `cargo leptos build` made, on its own port and a fresh
// database for every run, on the embedded defaults (SQLite, demo catalogue).
// A port of its own per run (workers inherit it from the main process through the environment),
// so a shop already running on this machine never gets in the way.
if (!process.env.WXMALL_E2E_PORT) {
  process.env.WXMALL_E2E_PORT = String(31000 + (process.pid % 2000));
}
const port = Number(process.env.WXMALL_E2E_PORT);
const baseURL = `http://127.0.0.1:${port}`;
const root = path.resolve(__dirname, "..");
const profile = process.env.WXMALL_E2E_PROFILE ?? "debug";
const dataDir = path.join(os.tmpdir(), `wxmall-e2e-${process.pid}-${Date.now()}`);

// A phone inside WeChat: the user agent WeChat's in-app browser sends on Android.
export const WECHAT_ANDROID_UA =
  "Mozilla/5.0 (Linux; Android 14; Pixel 7 Build/AP2A.240805.005; wv) AppleWebKit/537.36 " +
  "(KHTML, like Gecko) Version/4.0 Chrome/130.0.6723.103 Mobile Safari/537.36 " +
  "XWEB/1300259 MMWEBSDK/20241103 MMWEBID/1234 MicroMessenger/8.0.55.2780(0x28003737) " +
  "WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64";

export default defineConfig({
  testDir: "./tests",
  timeout: 60_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [["list"]],
  use: {
    baseURL,
    ...devices["Pixel 7"],
    userAgent: WECHAT_ANDROID_UA,
    locale: "zh-CN",
    trace: "retain-on-failure",
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
      ],
    },
  },
  webServer: {
    command: path.join(root, "target", profile, "wxmall"),
    cwd: root,
    url: `${baseURL}/healthz`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: "pipe",
    stderr: "pipe",
    env: {
      WXMALL_ADDR: `127.0.0.1:${port}`,
      WXMALL_PUBLIC_URL: baseURL,
      WXMALL_DATA_DIR: dataDir,
      LEPTOS_SITE_ROOT: path.join(root, "target", "site"),
      RUST_LOG: "warn",
    },
  },
});
