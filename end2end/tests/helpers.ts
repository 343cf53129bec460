import { expect, Page } from "@playwright/test";
import { execFileSync, spawnSync } from "child_process";
import * as path from "path";

/** Waits until the wasm bundle has hydrated the page (the app marks <html class="hydrated">). */
export async function hydrated(page: Page) {
  await expect(page.locator("html.hydrated")).toHaveCount(1, { timeout: 20_000 });
}

/**
 * Opens `path` as a WeChat user. In sandbox mode a first visit goes through WeChat's (emulated)
 * authorization: the sandbox's user picker appears once, then WeChat remembers the user.
 */
export async function gotoSignedIn(page: Page, path: string, user = 1) {
  const res = await page.goto(path);
  if (page.url().includes("/sandbox/open/connect/oauth2/")) {
    await page.locator(`#wx-user-${user}`).click();
    await page.waitForURL((u) => !u.pathname.startsWith("/sandbox/") && !u.pathname.startsWith("/wechat/"));
  }
  return res;
}

/**
 * Sandbox users are shared by every test of a run. purchase.spec.ts needs users 1 (with JavaScript) and 2
 * (without) to reach checkout with no saved address, so tests that order for another reason in a spec file
 * that runs before it (alphabetically) use user 3.
 *
 * Signs in (sandbox user `user`), orders one of SKU `skuId` through the JSON API (with the page's own session) and opens
 * the new order's page.
 */
export async function orderOne(page: Page, skuId: number, user = 1) {
  await gotoSignedIn(page, "/", user);
  const res = await page.request.post("/api/create_order", {
    data: {
      items: [{ sku_id: skuId, quantity: 1 }],
      address: { name: "张三", phone: "13800138000", region: "广东省 深圳市 南山区", detail: "科技园南区 1 栋 101" },
      remark: "",
    },
  });
  expect(res.status()).toBe(200);
  const { order_id } = await res.json();
  await page.goto(`/orders/${order_id}`);
  await expect(page.getByTestId("order-status")).toHaveText("待支付");
  await hydrated(page);
  return order_id as number;
}

/**
 * On 我的: the shopper presses 授权头像昵称 (or 更新头像昵称) and answers WeChat's consent page
 * (snsapi_userinfo), then is back on 我的. 我的 itself never asks: it signs in with snsapi_base
 * like every page.
 */
export async function shareProfile(page: Page, decision: "allow" | "deny") {
  await page.getByTestId("share-profile").click();
  await page.locator(`#wx-${decision}`).click();
  await expect(page).toHaveURL(/\/me(#wechat_redirect)?$/);
  await expect(page.getByTestId("profile")).toBeVisible();
}

export interface PaymentEvent {
  created_at: number;
  kind: string;
  outcome: string;
  detail: string;
}

/**
 * The order's payment log, read from the shop's database with the merchant's own tool
 * (`wxmall payments ORDER --json`, read-only) — what the shop recorded, not what a page shows.
 */
export function paymentTrail(orderId: number): {
  status: string;
  total_fee: number;
  refunded_fen: number;
  events: PaymentEvent[];
  refunds: unknown[];
} {
  const out = execFileSync(wxmallBinary(), ["payments", String(orderId), "--json"], {
    env: wxmallEnv(),
    encoding: "utf8",
  });
  return JSON.parse(out);
}

function wxmallBinary() {
  const root = path.resolve(__dirname, "..", "..");
  return (
    process.env.WXMALL_E2E_BIN ??
    path.join(root, "target", process.env.WXMALL_E2E_PROFILE ?? "debug", "wxmall")
  );
}

/** The environment of the sandbox shop under test, as the merchant's command line needs it. */
function wxmallEnv() {
  return {
    ...process.env,
    WXMALL_DATA_DIR: process.env.WXMALL_E2E_DATA_DIR!,
    WXMALL_PUBLIC_URL: `http://127.0.0.1:${process.env.WXMALL_E2E_PORT}`,
    // The run's database: the default SQLite file under the data directory, or the PostgreSQL
    // database .ci/test made for the run (WXMALL_E2E_DATABASE_URL).
    DATABASE_URL: process.env.WXMALL_E2E_DATABASE_URL ?? "",
    RUST_LOG: "warn",
  };
}

/** Runs the merchant's command line (`wxmall …`) against the shop under test (`input`: its stdin). */
export function wxmall(args: string[], input?: string): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(wxmallBinary(), args, { env: wxmallEnv(), encoding: "utf8", timeout: 60_000, input });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Runs axe-core (WCAG 2.0/2.1 A and AA rules, colour contrast included) on the page as it is now and
 * fails on any serious or critical violation, naming the rule and the elements. `what` says which
 * page and state, for the message.
 */
export async function expectAccessible(page: Page, what: string) {
  const { default: AxeBuilder } = await import("@axe-core/playwright");
  const results = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]).analyze();
  const bad = results.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  const report = bad
    .map((v) => `${v.id} (${v.impact}): ${v.help}\n` + v.nodes.map((n) => `    ${n.target.join(" ")}: ${n.failureSummary?.split("\n").slice(1).join(" ")}`).join("\n"))
    .join("\n");
  expect(bad.length, `${what}:\n${report}`).toBe(0);
}
