import { expect, test } from "@playwright/test";
import { gotoSignedIn, hydrated, orderOne } from "./helpers";

// WeChat's in-app browser on an iPhone (the config's default user agent is Android's).
const WECHAT_IOS_UA =
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) " +
  "Mobile/15E148 MicroMessenger/8.0.50(0x1800322c) NetType/WIFI Language/zh_CN";

test("a first visit goes through WeChat authorization and comes back signed in", async ({ page, context }) => {
  await page.goto("/orders");
  await expect(page).toHaveURL(/\/sandbox\/open\/connect\/oauth2\/authorize\?/);
  await page.locator("#wx-user-1").click();
  await expect(page).toHaveURL(/\/orders(#wechat_redirect)?$/);
  await expect(page.getByTestId("sandbox-banner")).toHaveText("沙箱模式：未连接真实微信支付");
  const cookies = await context.cookies();
  expect(cookies.some((c) => c.name === "wxmall_sid")).toBeTruthy();
  // WeChat remembers the user: the next new session is authorized silently.
  await context.clearCookies({ name: "wxmall_sid" });
  await page.goto("/cart");
  await expect(page).toHaveURL(/\/cart(#wechat_redirect)?$/);
});

test("cart → checkout → 去支付 → 支付 → 已支付", async ({ page }) => {
  await orderOne(page, 1);
  await page.getByTestId("pay").click();
  await expect(page.locator("#wx-pay-sheet")).toBeVisible();
  await expect(page.locator("#wx-pay-amount")).toContainText("39.90");
  await page.locator("#wx-pay-confirm").click();
  await expect(page.getByTestId("order-status")).toHaveText("已支付", { timeout: 20_000 });
});

test("取消 leaves the order payable", async ({ page }) => {
  await orderOne(page, 1);
  await page.getByTestId("pay").click();
  await page.locator("#wx-pay-cancel").click();
  await expect(page.getByRole("status")).toContainText("已取消支付");
  await expect(page.getByTestId("order-status")).toHaveText("待支付");
  await expect(page.getByTestId("pay")).toBeEnabled();
  // And it can still be paid.
  await page.getByTestId("pay").click();
  await page.locator("#wx-pay-confirm").click();
  await expect(page.getByTestId("order-status")).toHaveText("已支付", { timeout: 20_000 });
});

for (const platform of ["android", "ios"] as const) {
  test.describe(`wx.config on ${platform}`, () => {
    if (platform === "ios") test.use({ userAgent: WECHAT_IOS_UA });

    test("stays configured after client-side navigation", async ({ page }) => {
      await gotoSignedIn(page, "/");
      await hydrated(page);
      const configured = () => page.evaluate(() => (window as any).__wxSandbox?.configured === true);
      await expect.poll(configured, { timeout: 15_000 }).toBe(true);
      const landing = await page.evaluate(() => (window as any).__wxSandbox.landingUrl);
      await page.getByRole("link", { name: /购物车/ }).last().click();
      await expect(page).toHaveURL(/\/cart$/);
      const signed = () => page.evaluate(() => (window as any).__wxSandbox.lastConfigUrl);
      // Android signs the current URL: a fresh wx.config for /cart. iOS keeps the landing URL.
      if (platform === "android") await expect.poll(signed, { timeout: 15_000 }).toMatch(/\/cart$/);
      await expect.poll(configured, { timeout: 15_000 }).toBe(true);
      if (platform === "ios") expect(await signed()).toBe(landing);
      expect(await page.evaluate(() => (window as any).__wxSandbox.lastError)).toBeNull();
    });
  });
}
