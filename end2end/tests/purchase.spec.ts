import { expect, Page, test } from "@playwright/test";
import { gotoSignedIn, hydrated, shareProfile } from "./helpers";

async function openProduct(page: Page, name: string, user = 1) {
  // In sandbox mode a first visit passes WeChat's authorization (the sandbox's user picker).
  // Each scenario signs in as its own WeChat user so saved addresses don't carry over.
  await gotoSignedIn(page, "/", user);
  await expect(page.getByTestId("product-card").first()).toBeVisible();
  await page.getByTestId("product-card").filter({ hasText: name }).click();
  await expect(page.getByRole("heading", { name })).toBeVisible();
}

test.describe("with JavaScript (hydrated)", () => {
  test("browse → product → cart → checkout with errors, then valid → 待支付 in 我的订单", async ({ page }) => {
    await openProduct(page, "日式陶瓷马克杯");
    await hydrated(page);

    // Pick a SKU: its price shows, the stepper is bounded by its stock (5 for 墨黑).
    await page.locator("label.sku-option", { hasText: "墨黑" }).click();
    await expect(page.locator(".product-head .price")).toHaveText("¥52.00");
    const plus = page.getByRole("button", { name: "增加" });
    for (let i = 0; i < 6; i++) {
      if (await plus.isEnabled()) await plus.click();
    }
    await expect(page.locator('input[name="quantity"]')).toHaveValue("5");
    await expect(plus).toBeDisabled();
    await page.getByRole("button", { name: "减少" }).click();
    await page.getByRole("button", { name: "减少" }).click();
    await expect(page.locator('input[name="quantity"]')).toHaveValue("3");

    await page.getByRole("button", { name: "加入购物车" }).click();
    await expect(page.getByRole("status")).toContainText("已加入购物车");
    // Still on the product page: adding did not navigate.
    await expect(page).toHaveURL(/\/product\/9$/);

    await page.getByRole("link", { name: /购物车/ }).last().click();
    await expect(page).toHaveURL(/\/cart$/);
    const line = page.getByTestId("cart-line");
    await expect(line).toHaveCount(1);
    await expect(line.getByTestId("line-qty")).toHaveText("3");
    await expect(page.locator(".checkout-total")).toContainText("156.00");
    await line.getByRole("button", { name: "减少" }).click();
    await expect(line.getByTestId("line-qty")).toHaveText("2");
    await expect(page.locator(".checkout-total")).toContainText("104.00");

    await page.getByTestId("go-checkout").click();
    await expect(page).toHaveURL(/\/checkout$/);
    await hydrated(page);
    await expect(page.locator(".checkout-total")).toContainText("104.00");

    // Wrong input: every problem is shown at once, nothing is submitted.
    await page.locator('input[name="name"]').fill("张三");
    await page.locator('input[name="phone"]').fill("12345");
    await page.locator('textarea[name="detail"]').fill("短");
    await page.getByTestId("submit-order").click();
    await expect(page.locator('.field-error[data-field="phone"]')).toHaveText("请输入正确的 11 位手机号");
    await expect(page.locator('.field-error[data-field="region"]')).toHaveText("请选择省市区");
    await expect(page.locator('.field-error[data-field="detail"]')).toHaveText("详细地址至少 5 个字");
    await expect(page).toHaveURL(/\/checkout$/);
    // What was typed is still there.
    await expect(page.locator('input[name="name"]')).toHaveValue("张三");

    await page.locator('input[name="phone"]').fill("13800138000");
    await page.locator('select[name="province"]').selectOption("广东省");
    await page.locator('input[name="city"]').fill("深圳市 南山区");
    await page.locator('textarea[name="detail"]').fill("科技园南区 1 栋 101");
    await page.locator('input[name="remark"]').fill("工作日送货");
    await page.getByTestId("submit-order").click();

    await expect(page).toHaveURL(/\/orders\/\d+$/);
    await expect(page.getByTestId("order-status")).toHaveText("待支付");
    await expect(page.getByTestId("order-total")).toContainText("104.00");
    await expect(page.getByText("广东省 深圳市 南山区 科技园南区 1 栋 101")).toBeVisible();

    // 我的 → 我的订单. 我的 shows the profile once the shopper shares it with its button (允许).
    await page.getByRole("link", { name: "我的", exact: true }).click();
    await hydrated(page);
    await shareProfile(page, "allow");
    await expect(page.getByTestId("nickname")).toHaveText("张小明");
    await page.getByTestId("all-orders").click();
    await expect(page).toHaveURL(/\/orders$/);
    const card = page.getByTestId("order-card").first();
    await expect(card).toContainText("日式陶瓷马克杯");
    await expect(card).toContainText("待支付");
    await page.getByRole("link", { name: "待支付", exact: true }).click();
    await expect(page.getByTestId("order-card")).toHaveCount(1);
    await page.getByRole("link", { name: "已关闭", exact: true }).click();
    await expect(page.getByText("暂无订单")).toBeVisible();

    // The cart no longer holds what was ordered.
    await page.goto("/cart");
    await expect(page.getByText("购物车还是空的")).toBeVisible();

    // 立即购买 (buy_now, the function its plain form posts to) goes to checkout with that one
    // item; the cart stays empty.
    await page.goto("/product/9");
    await hydrated(page);
    await page.getByRole("button", { name: "立即购买" }).click();
    await expect(page).toHaveURL(/\/checkout\?sku=\d+&qty=1$/);
    await expect(page.locator(".order-line")).toHaveCount(1);
    await page.goto("/cart");
    await expect(page.getByText("购物车还是空的")).toBeVisible();
  });

  test("unknown pages answer 404 with a way back", async ({ page }) => {
    await gotoSignedIn(page, "/");
    const res = await page.goto("/product/424242");
    expect(res?.status()).toBe(404);
    await expect(page.getByRole("link", { name: "返回首页" })).toBeVisible();
  });
});

test.describe("without JavaScript (old in-app browsers)", () => {
  test.use({ javaScriptEnabled: false });

  test("the same purchase works as plain form posts", async ({ page }) => {
    await openProduct(page, "帆布托特包", 2);
    await page.locator("label.sku-option", { hasText: "黑色" }).click();
    await page.locator('input[name="quantity"]').fill("2");
    await page.getByRole("button", { name: "加入购物车" }).click();

    await expect(page).toHaveURL(/\/cart$/);
    await expect(page.getByTestId("cart-line")).toHaveCount(1);
    await expect(page.getByTestId("line-qty")).toHaveText("2");
    await expect(page.locator(".checkout-total")).toContainText("118.00");
    await page.getByRole("button", { name: "增加" }).click();
    await expect(page).toHaveURL(/\/cart$/);
    await expect(page.getByTestId("line-qty")).toHaveText("3");

    await page.getByTestId("go-checkout").click();
    await expect(page).toHaveURL(/\/checkout$/);
    await page.locator('input[name="name"]').fill("李四");
    await page.locator('input[name="phone"]').fill("13912345678");
    await page.locator('select[name="province"]').selectOption("浙江省");
    await page.locator('input[name="city"]').fill("杭州市 西湖区");
    // Passes the browser's own checks but not the server's: the server's message comes back.
    await page.locator('textarea[name="detail"]').fill("     ");
    await page.getByTestId("submit-order").click();
    // Back on the form with the server's message, which travels in a cookie, not in the URL.
    await expect(page).toHaveURL(/\/checkout$/);
    await expect(page.getByText("详细地址至少 5 个字").first()).toBeVisible();

    await page.locator('input[name="name"]').fill("李四");
    await page.locator('input[name="phone"]').fill("13912345678");
    await page.locator('select[name="province"]').selectOption("浙江省");
    await page.locator('input[name="city"]').fill("杭州市 西湖区");
    await page.locator('textarea[name="detail"]').fill("文三路 100 号");
    await page.getByTestId("submit-order").click();

    await expect(page).toHaveURL(/\/orders\/\d+$/);
    await expect(page.getByTestId("order-status")).toHaveText("待支付");
    await expect(page.getByTestId("order-total")).toContainText("177.00");

    // 我的 (拒绝 sharing the profile: still 我的) → 我的订单.
    await page.getByRole("link", { name: "我的", exact: true }).click();
    await shareProfile(page, "deny");
    await page.getByTestId("all-orders").click();
    await expect(page.getByTestId("order-card").filter({ hasText: "帆布托特包" })).toContainText("待支付");

    // 立即购买: the same form, posted to buy_now: checkout with that one item.
    await page.goto("/");
    await page.getByTestId("product-card").filter({ hasText: "帆布托特包" }).click();
    await page.getByRole("button", { name: "立即购买" }).click();
    await expect(page).toHaveURL(/\/checkout\?sku=\d+&qty=1$/);
    await expect(page.locator(".order-line")).toHaveCount(1);
  });
});
