import { defineConfig, devices } from "@playwright/test";
import * as os from "os";
import * as path from "path";

// The shop under test: the binary `cargo leptos build` made, on its own port and a fresh
// database for every run, on the embedded defaults (SQLite, demo catalogue), or on the
// PostgreSQL database named by WXMALL_E2E_DATABASE_URL (.ci/test runs the suite both ways).
// A port of its own per run (workers inherit it from the main process through the environment),
// so a shop already running on this machine never gets in the way. Below Linux's ephemeral range
// (32768–60999): a port in it can be taken at any moment by some outgoing connection's local end
// (seen once: "cannot listen on 127.0.0.1:33844: Address already in use").
// The same goes for the data directory: tests read the payment log with `wxmall payments`.
if (!process.env.WXMALL_E2E_PORT) {
  process.env.WXMALL_E2E_PORT = String(20000 + (process.pid % 6000) * 2);
}
if (!process.env.WXMALL_E2E_DATA_DIR) {
  process.env.WXMALL_E2E_DATA_DIR = path.join(os.tmpdir(), `wxmall-e2e-${process.pid}-${Date.now()}`);
}
const port = Number(process.env.WXMALL_E2E_PORT);
const baseURL = `http://127.0.0.1:${port}`;
const root = path.resolve(__dirname, "..");
const profile = process.env.WXMALL_E2E_PROFILE ?? "debug";
const dataDir = process.env.WXMALL_E2E_DATA_DIR;
// WXMALL_E2E_BIN: another copy of the binary (with its hash.txt beside it); .ci/test keeps the one
// cargo-leptos built aside, since `cargo test` rewrites target/debug/wxmall without its settings.
const binary = process.env.WXMALL_E2E_BIN ?? path.join(root, "target", profile, "wxmall");

// A second shop configured for the real WeChat (made-up credentials; WeChat's hosts point at
// a closed local port, and nothing here calls them): browsers outside WeChat get the
// open-in-WeChat page, WeChat's own browser is sent to WeChat's authorize URL.
export const REAL_WECHAT_BASE_URL = `http://127.0.0.1:${port + 1}`;
export const REAL_WECHAT_APPID = "wx0e2e0e2e0e2e0e2e";
export const REAL_WECHAT_OPEN_BASE = "http://127.0.0.1:9";

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
  webServer: [
    {
      // The shop on its embedded defaults: SQLite, demo catalogue, the WeChat sandbox.
      command: binary,
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
        DATABASE_URL: process.env.WXMALL_E2E_DATABASE_URL ?? "",
        // Required on PostgreSQL (every instance signs the same cookies).
        WXMALL_SESSION_SECRET: process.env.WXMALL_E2E_DATABASE_URL ? "e2e-session-secret-0123456789abcdef-0123456789" : "",
        LEPTOS_SITE_ROOT: path.join(root, "target", "site"),
        RUST_LOG: "warn",
        // Every test of a run signs in as the same three sandbox users and leaves orders
        // unpaid: the per-shopper cap (5 by default) would refuse the later tests' orders.
        WXMALL_MAX_UNPAID_ORDERS: "1000",
      },
    },
    {
      command: binary,
      cwd: root,
      url: `${REAL_WECHAT_BASE_URL}/healthz`,
      reuseExistingServer: false,
      timeout: 60_000,
      stdout: "pipe",
      stderr: "pipe",
      env: {
        WXMALL_ADDR: `127.0.0.1:${port + 1}`,
        WXMALL_PUBLIC_URL: REAL_WECHAT_BASE_URL,
        WXMALL_DATA_DIR: `${dataDir}-real`,
        LEPTOS_SITE_ROOT: path.join(root, "target", "site"),
        RUST_LOG: "warn",
        // A real shop starts empty; this one shows the demo catalogue on purpose.
        WXMALL_DEMO_CATALOGUE: "1",
        WECHAT_APPID: REAL_WECHAT_APPID,
        WECHAT_APPSECRET: "e2e-appsecret-never-shown-0123456",
        WECHAT_MCHID: "1900000109",
        WECHAT_PAY_VERSION: "v2",
        WECHAT_PAY_KEY: "e2e0123456789abcdef0123456789abc",
        WECHAT_OPEN_BASE: REAL_WECHAT_OPEN_BASE,
        WECHAT_API_BASE: REAL_WECHAT_OPEN_BASE,
        WECHAT_PAY_BASE: REAL_WECHAT_OPEN_BASE,
      },
    },
  ],
});
