import { expect, test } from "@playwright/test";
import * as path from "path";
import { gotoSignedIn, orderOne, wxmall } from "./helpers";

// The sandbox's official account (/sandbox/mp) pushes to the shop's /wechat/mp exactly as WeChat
// does (signed, encrypted in safe mode) and shows the shop's replies and template messages.
test.describe("the official account", () => {
  test("follow → the welcome's link opens the shop; a product's QR code → the product", async ({ page }) => {
    await page.goto("/sandbox/mp?user=2");
    await page.locator("#mp-follow").click();
    const reply = page.locator("#mp-chat .msg.reply").last();
    await expect(reply).toContainText("欢迎关注");
    await reply.locator("a.mp-link").click();
    await gotoSignedIn(page, page.url(), 2);
    await expect(page).toHaveURL((u) => u.pathname === "/");
    await expect(page.getByRole("heading", { name: "水果生鲜" })).toBeVisible();

    // Scanning a product's parametric QR code (scene product:3), as a follower.
    await page.goto("/sandbox/mp?user=2");
    await page.locator("#mp-scene").fill("product:3");
    await page.locator("#mp-scan").click();
    const link = page.locator("#mp-chat .msg.reply").last().locator("a.mp-link");
    await expect(link).toHaveAttribute("href", /\/product\/3$/);
    await link.click();
    await expect(page).toHaveURL(/\/product\/3$/);
  });

  test("a paid order's template message arrives in the chat", async ({ page }) => {
    // User 3: user 1's checkout must still be address-less for purchase.spec.ts.
    const orderId = await orderOne(page, 2, 3);
    await page.getByTestId("pay").click();
    await page.locator("#wx-pay-confirm").click();
    await expect(page.getByTestId("order-status")).toHaveText("已支付", { timeout: 20_000 });
    const orderNo = (await page.getByTestId("order-no").textContent())!.trim();
    await expect
      .poll(
        async () => {
          await page.goto("/sandbox/mp?user=3");
          return page.locator("#mp-chat .msg.tpl").filter({ hasText: orderNo }).count();
        },
        { timeout: 15_000 },
      )
      .toBe(1);
    const message = page.locator("#mp-chat .msg.tpl").filter({ hasText: orderNo });
    await expect(message).toContainText("您的订单已支付成功");
    await message.locator("a.mp-link").click();
    await expect(page).toHaveURL(new RegExp(`/orders/${orderId}$`));
  });

  test("wxmall menu push → the account shows the menu; its buttons lead to the shop and answer", async ({ page }) => {
    const file = path.resolve(__dirname, "..", "..", "server", "examples", "wechat-menu.json");
    const pushed = wxmall(["menu", "push", file]);
    expect(pushed.status, pushed.stderr).toBe(0);
    expect(pushed.stdout).toContain("menu created (3 buttons)");
    await page.goto("/sandbox/mp?user=3");
    const menu = page.locator("#mp-menu");
    await expect(menu.getByRole("link", { name: "首页" })).toBeVisible();
    await menu.getByText("我的", { exact: true }).click();
    await menu.getByRole("button", { name: "联系客服" }).click();
    await expect(page.locator("#mp-chat .msg.reply").last()).toContainText("客服");
    // The page came back after the push: open the 我的 group again.
    await page.locator("#mp-menu").getByText("我的", { exact: true }).click();
    await page.locator("#mp-menu").getByRole("link", { name: "我的订单" }).click();
    await gotoSignedIn(page, page.url(), 3);
    await expect(page).toHaveURL(/\/orders$/);
    const shown = wxmall(["menu", "show"]);
    expect(shown.stdout).toContain("我的订单");
  });
});
