import { expect, test } from "@playwright/test";
import { expectAccessible, gotoSignedIn, hydrated, wxmall } from "./helpers";

// Coupons live in the shopper's WeChat card wallet (the sandbox plays WeChat's side): the owner
// makes one in the console, the shopper takes it on the home page (wx.addCard), uses it at checkout
// (wx.chooseCard), pays the lower total, and the shop redeems it at WeChat.
test.describe("coupons (WeChat cards)", () => {
  test("take on the home page → in the wallet → 使用优惠券 at checkout → the total drops → pay → redeemed and gone", async ({
    page,
    request,
  }) => {
    const password = "a long e2e coupons password";
    const added = wxmall(["admin", "add", "e2e-coupons", "--role", "owner"], `${password}\n`);
    expect(added.status, added.stderr).toBe(0);
    expect((await request.post("/admin/api/login", { data: { username: "e2e-coupons", password } })).status()).toBe(200);
    const made = await request.post("/admin/api/save_coupon", {
      data: { title: "新客立减", kind: "cash", least_cost_fen: 5000, reduce_cost_fen: 1000, quantity: 100, days: 7 },
    });
    expect(made.status(), await made.text()).toBe(200);
    const { coupon_id } = await made.json();
    // WeChat has not reviewed the card yet: only the test whitelist may take it (sandbox user 3).
    const whitelisted = await request.post("/admin/api/card_whitelist", { data: { usernames: ["wxsandbox_3"] } });
    expect(whitelisted.status(), await whitelisted.text()).toBe(200);

    // Users 1 and 2 must stay address-less for purchase.spec.ts: user 3 buys.
    await gotoSignedIn(page, "/", 3);
    await hydrated(page);
    const card = page.getByTestId("coupon-card").filter({ hasText: "新客立减" });
    await expect(card).toContainText("满50减10");
    await expectAccessible(page, "home with a coupon");
    await card.getByTestId("take-coupon").click();
    await page.locator("#wx-card-add").click();
    await expect(card.getByRole("status")).toHaveText("已放入微信卡包");

    // 立即购买 2 × SKU 1 (¥39.90): ¥79.80, ¥10 off.
    await page.goto("/checkout?sku=1&qty=2");
    await hydrated(page);
    const use = page.getByTestId("use-coupon");
    await expect(use).toBeVisible({ timeout: 15_000 });
    await expect(page.locator(".checkout-total")).toContainText("79.80");
    await use.click();
    await page.locator("#wx-card-pick-0").click();
    await expect(page.getByTestId("coupon-applied")).toContainText("新客立减（满50减10）");
    await expect(page.locator(".checkout-total")).toContainText("69.80");
    await expectAccessible(page, "checkout with a coupon");
    await page.getByTestId("submit-order").click();
    await expect(page).toHaveURL(/\/orders\/\d+$/);
    await expect(page.getByTestId("order-discount")).toContainText("10.00");
    await expect(page.getByTestId("order-total")).toContainText("69.80");
    await hydrated(page);
    await page.getByTestId("pay").click();
    await page.locator("#wx-pay-confirm").click();
    await expect(page.getByTestId("order-status")).toHaveText("已支付", { timeout: 20_000 });

    // Redeemed at WeChat: the console counts it…
    await expect
      .poll(async () => {
        const list = await (await request.post("/admin/api/list_coupons", { data: {} })).json();
        return list.find((c: { coupon_id: number }) => c.coupon_id === coupon_id)?.redeemed;
      })
      .toBe(1);
    // …and the wallet offers it no more.
    await page.goto("/checkout?sku=1&qty=2");
    await hydrated(page);
    await expect(page.getByTestId("use-coupon")).toBeVisible({ timeout: 15_000 });
    await page.getByTestId("use-coupon").click();
    await expect(page.locator("#wx-card-none")).toBeVisible();
    await expect(page.locator("#wx-card-pick-0")).toHaveCount(0);
    await page.locator("#wx-card-none").click();
    await expect(page.getByTestId("coupon-applied")).toHaveCount(0);
  });
});
