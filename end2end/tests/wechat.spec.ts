import { expect, test } from "@playwright/test";
import { gotoSignedIn, hydrated, orderOne, paymentTrail } from "./helpers";
import { REAL_WECHAT_APPID, REAL_WECHAT_BASE_URL, REAL_WECHAT_OPEN_BASE } from "../playwright.config";

// WeChat's in-app browser on an iPhone (the config's default user agent is Android's).
const WECHAT_IOS_UA =
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) " +
  "Mobile/15E148 MicroMessenger/8.0.50(0x1800322c) NetType/WIFI Language/zh_CN";

// A desktop browser: not WeChat.
const DESKTOP_UA =
  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36";

for (const platform of ["android", "ios"] as const) {
  test.describe(`in WeChat on ${platform}`, () => {
    if (platform === "ios") test.use({ userAgent: WECHAT_IOS_UA });

    test("a first visit goes through WeChat authorization and comes back signed in", async ({ page, context }) => {
      await page.goto("/orders");
      await expect(page).toHaveURL(/\/sandbox\/open\/connect\/oauth2\/authorize\?/);
      expect(new URL(page.url()).searchParams.get("scope")).toBe("snsapi_base");
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

    test("cart → checkout → 去支付 → 支付 → 已支付, paid exactly once", async ({ page }) => {
      const orderId = await orderOne(page, 1);
      await page.getByTestId("pay").click();
      await expect(page.locator("#wx-pay-sheet")).toBeVisible();
      await expect(page.locator("#wx-pay-amount")).toContainText("39.90");
      await page.locator("#wx-pay-confirm").click();
      await expect(page.getByTestId("order-status")).toHaveText("已支付", { timeout: 20_000 });

      // The shop's own log: WeChat's notification, its duplicate a second later, and the page's
      // order query may all report the payment; exactly one of them moved the order.
      const reports = () =>
        paymentTrail(orderId).events.filter((e) => e.outcome === "accepted" || e.outcome === "duplicate");
      await expect.poll(() => reports().filter((e) => e.kind.startsWith("notify")).length, { timeout: 15_000 })
        .toBeGreaterThanOrEqual(2);
      const trail = paymentTrail(orderId);
      expect(trail.status).toBe("paid");
      expect(trail.events.filter((e) => e.outcome === "accepted")).toHaveLength(1);
      expect(trail.events.filter((e) => e.outcome === "refused")).toHaveLength(0);
    });

    test("取消 leaves the order payable", async ({ page }) => {
      const orderId = await orderOne(page, 1);
      await page.getByTestId("pay").click();
      await page.locator("#wx-pay-cancel").click();
      await expect(page.getByRole("status")).toContainText("已取消支付");
      await expect(page.getByTestId("order-status")).toHaveText("待支付");
      await expect(page.getByTestId("pay")).toBeEnabled();
      expect(paymentTrail(orderId).events.filter((e) => e.outcome === "accepted")).toHaveLength(0);
      // And it can still be paid.
      await page.getByTestId("pay").click();
      await page.locator("#wx-pay-confirm").click();
      await expect(page.getByTestId("order-status")).toHaveText("已支付", { timeout: 20_000 });
    });

    test("wx.config is signed afresh for the next page", async ({ page }) => {
      await gotoSignedIn(page, "/");
      await hydrated(page);
      const configured = () => page.evaluate(() => (window as any).__wxSandbox?.configured === true);
      await expect.poll(configured, { timeout: 15_000 }).toBe(true);
      await page.getByRole("link", { name: /购物车/ }).last().click();
      await expect(page).toHaveURL(/\/cart$/);
      await hydrated(page);
      // Every navigation is a page load (islands, no client-side router): the page lands on /cart,
      // which is the URL both Android (current URL) and iOS (landing URL) sign.
      const signed = () => page.evaluate(() => (window as any).__wxSandbox.lastConfigUrl);
      await expect.poll(signed, { timeout: 15_000 }).toMatch(/\/cart$/);
      await expect.poll(configured, { timeout: 15_000 }).toBe(true);
      expect(await signed()).toBe(await page.evaluate(() => (window as any).__wxSandbox.landingUrl));
      expect(await page.evaluate(() => (window as any).__wxSandbox.lastError)).toBeNull();
    });

    test("home and product pages set their share cards", async ({ page }) => {
      await gotoSignedIn(page, "/");
      await hydrated(page);
      const card = (name: string) =>
        page.evaluate((n) => (window as any).__wxSandbox?.share?.[n] ?? null, name);
      await expect.poll(async () => (await card("updateAppMessageShareData"))?.title, { timeout: 15_000 })
        .toBe("wxmall 精选好物");
      // On to a product (a page load): its own card.
      await page.locator('a[href="/product/3"]').first().click();
      await expect(page).toHaveURL(/\/product\/3$/);
      const title = (await page.locator("h1").first().textContent())?.trim();
      await expect.poll(async () => (await card("updateAppMessageShareData"))?.title, { timeout: 15_000 })
        .toBe(title);
      const friends = await card("updateAppMessageShareData");
      const origin = new URL(page.url()).origin;
      expect(friends.link).toBe(`${origin}/product/3?from=share`);
      expect(friends.imgUrl.startsWith(`${origin}/`)).toBeTruthy();
      expect(friends.desc).toMatch(/^¥\d+\.\d\d 起/);
      const moments = await card("updateTimelineShareData");
      expect(moments.title).toBe(title);
      expect(moments.link).toBe(friends.link);
      expect(await page.evaluate(() => (window as any).__wxSandbox.lastError)).toBeNull();
    });
  });
}

// Back on 我的 (a redirect chain through WeChat keeps its `#wechat_redirect`).
const ME = /\/me(#wechat_redirect)?$/;

// Sandbox user 3 and 2 are used by nobody else, so their first visit is a first visit.
test.describe("我的 (snsapi_base, then snsapi_userinfo with its button)", () => {
  test("a first visit signs in silently; the button asks for the profile", async ({ page }) => {
    await page.goto("/me");
    await expect(page).toHaveURL(/\/sandbox\/open\/connect\/oauth2\/authorize\?/);
    expect(new URL(page.url()).searchParams.get("scope")).toBe("snsapi_base");
    await page.locator("#wx-user-3").click();
    await expect(page).toHaveURL(ME);
    await expect(page.getByTestId("nickname")).toHaveText("微信用户");
    await expect(page.getByTestId("share-profile")).toHaveText("授权头像昵称");
    await hydrated(page);
    await page.getByTestId("share-profile").click();
    // WeChat's consent page for the profile.
    await expect(page.locator("#wx-current-user")).toHaveText("王大锤");
    await page.locator("#wx-allow").click();
    await expect(page).toHaveURL(ME);
    await expect(page.getByTestId("nickname")).toHaveText("王大锤");
    await expect(page.getByTestId("avatar")).toBeVisible();
    await expect(page.getByTestId("share-profile")).toHaveText("更新头像昵称");
    // Known now: no trip to WeChat.
    await page.reload();
    await expect(page).toHaveURL(ME);
    await expect(page.getByTestId("nickname")).toHaveText("王大锤");
  });

  test("拒绝 keeps the shopper signed in, and the button asks again", async ({ page }) => {
    await page.goto("/me");
    await page.locator("#wx-user-2").click();
    await expect(page).toHaveURL(ME);
    await hydrated(page);
    await page.getByTestId("share-profile").click();
    await page.locator("#wx-deny").click();
    await expect(page).toHaveURL(ME);
    await expect(page.getByTestId("nickname")).toHaveText("微信用户");
    await page.reload();
    await expect(page).toHaveURL(ME);
    await hydrated(page);
    await page.getByTestId("share-profile").click();
    await page.locator("#wx-allow").click();
    await expect(page).toHaveURL(ME);
    await expect(page.getByTestId("nickname")).toHaveText("李小红");
  });

  test("order counts link into 我的订单", async ({ page }) => {
    await orderOne(page, 2);
    const unpaid = await page.request.post("/api/list_orders", { data: { status: "unpaid" } });
    const count = (await unpaid.json()).length;
    expect(count).toBeGreaterThanOrEqual(1);
    await page.getByRole("link", { name: "我的", exact: true }).click();
    await expect(page.getByTestId("count-unpaid")).toContainText(String(count));
    await page.getByTestId("count-unpaid").click();
    await expect(page).toHaveURL(/\/orders\?status=unpaid$/);
    await expect(page.getByTestId("order-card")).toHaveCount(count);
  });
});

test.describe("a shop on the real WeChat", () => {
  test.use({ baseURL: REAL_WECHAT_BASE_URL });

  test.describe("outside WeChat", () => {
    test.use({ userAgent: DESKTOP_UA });

    test("a browser outside WeChat gets the open-in-WeChat page with a QR code", async ({ page }) => {
      await page.goto("/product/3?from=poster");
      await expect(page.locator("#open-in-wechat")).toHaveText("请在微信中打开");
      await expect(page.getByTestId("qr").locator("svg")).toBeVisible();
      await expect(page.locator(".url")).toHaveText(`${REAL_WECHAT_BASE_URL}/product/3?from=poster`);
    });
  });

  test("WeChat's browser is sent to WeChat's authorize URL", async ({ request }) => {
    for (const [pagePath, scope] of [
      ["/cart", "snsapi_base"],
      ["/me", "snsapi_base"],
    ]) {
      const res = await request.get(pagePath, { maxRedirects: 0 });
      expect(res.status()).toBe(302);
      const location = res.headers()["location"];
      expect(location.startsWith(`${REAL_WECHAT_OPEN_BASE}/connect/oauth2/authorize?appid=${REAL_WECHAT_APPID}&redirect_uri=`)).toBeTruthy();
      expect(location).toContain(`&response_type=code&scope=${scope}&state=`);
      expect(location.endsWith("#wechat_redirect")).toBeTruthy();
    }
  });

  test("no page or API answer carries the appsecret or the pay key", async ({ playwright }) => {
    // Not a browser: pages render as they are (no OAuth redirect), as a crawler would see them.
    const api = await playwright.request.newContext({ baseURL: REAL_WECHAT_BASE_URL, userAgent: "e2e-scan/1" });
    const bodies: string[] = [];
    for (const p of ["/", "/product/1", "/cart", "/me"]) bodies.push(await (await api.get(p)).text());
    bodies.push(await (await api.post("/api/list_products", { data: {} })).text());
    bodies.push(await (await api.post("/api/jssdk_config", { data: { url: `${REAL_WECHAT_BASE_URL}/` } })).text());
    expect(bodies[0]).toContain("wxmall-jssdk");
    for (const b of bodies) {
      expect(b).not.toContain("e2e-appsecret-never-shown-0123456");
      expect(b).not.toContain("e2e0123456789abcdef0123456789abc");
    }
    await api.dispose();
  });
});

test.describe("使用微信收货地址 (wx.openAddress)", () => {
  test("fills the address form from WeChat; cancel leaves it as it was", async ({ page }) => {
    // 立即购买 of SKU 4 goes straight to checkout.
    await gotoSignedIn(page, "/checkout?sku=4&qty=1", 3);
    await expect(page).toHaveURL(/\/checkout\?sku=4&qty=1$/);
    await hydrated(page);
    const button = page.getByTestId("wx-address");
    await expect(button).toBeVisible({ timeout: 15_000 });
    // A saved address may be chosen already (the test user ordered before): cancel changes nothing.
    const before = await page.locator('input[name="name"]').inputValue();
    await button.click();
    await page.locator("#wx-address-cancel").click();
    await expect(page.locator("#wx-address-sheet")).toHaveCount(0);
    expect(await page.locator('input[name="name"]').inputValue()).toBe(before);

    await button.click();
    await page.locator("#wx-address-0").click();
    await expect(page.locator('input[name="name"]')).toHaveValue("王小二");
    await expect(page.locator('input[name="phone"]')).toHaveValue("13912345678");
    await expect(page.locator('select[name="province"]')).toHaveValue("浙江省");
    await expect(page.locator('input[name="city"]')).toHaveValue("杭州市 西湖区");
    await expect(page.locator('textarea[name="detail"]')).toHaveValue("文三路 259 号 昌地火炬大厦 1 号楼");
    await page.getByTestId("submit-order").click();
    await expect(page).toHaveURL(/\/orders\/\d+$/);
    await expect(page.getByText("浙江省 杭州市 西湖区 文三路 259 号 昌地火炬大厦 1 号楼")).toBeVisible();
  });
});
