import { expect, test } from "@playwright/test";
import { expectAccessible, gotoSignedIn, hydrated, orderOne, wxmall } from "./helpers";

// The merchant's console API (a session of its own, in its own request context) and what the
// shopper sees of it.
test.describe("the console", () => {
  test("ships a paid order; the shopper sees the parcel and confirms receipt", async ({ page, request }) => {
    const password = "a long e2e console password";
    const added = wxmall(["admin", "add", "e2e-owner", "--role", "owner"], `${password}\n`);
    expect(added.status, added.stderr).toBe(0);

    // Sandbox user 3 buys and pays (users 1 and 2 must stay address-less for purchase.spec.ts).
    const orderId = await orderOne(page, 5, 3);
    await page.getByTestId("pay").click();
    await page.locator("#wx-pay-confirm").click();
    await expect(page.getByTestId("order-status")).toHaveText("已支付", { timeout: 20_000 });

    const login = await request.post("/admin/api/login", { data: { username: "e2e-owner", password } });
    expect(login.status()).toBe(200);
    const found = await request.post("/admin/api/list_orders", { data: { status: "paid" } });
    expect((await found.json()).orders.some((o: { order_id: number }) => o.order_id === orderId)).toBeTruthy();
    const ship = await request.post("/admin/api/ship_order", {
      data: { order_id: orderId, carrier: "顺丰速运", tracking_no: "SF2026120501" },
    });
    expect(ship.status()).toBe(200);

    await page.reload();
    await expect(page.getByTestId("order-status")).toHaveText("已发货");
    await expect(page.getByTestId("shipment")).toHaveText("顺丰速运 SF2026120501");
    await hydrated(page);
    await expectAccessible(page, "order, shipped");
    await page.getByTestId("confirm-receipt").click();
    await expect(page.getByTestId("order-status")).toHaveText("已完成");
    await expect(page.getByTestId("confirm-receipt")).toHaveCount(0);
    await expectAccessible(page, "order, completed");

    const log = await (await request.post("/admin/api/audit_log", { data: {} })).json();
    expect(log[0].action).toBe("ship_order");
    expect(log[0].who).toBe("e2e-owner");
  });

  test("a shopper asks for 仅退款, the owner approves, the shopper sees the refund and the dashboard counts it", async ({
    page,
    request,
    browser,
  }) => {
    const password = "another long e2e console password";
    const added = wxmall(["admin", "add", "e2e-aftersales", "--role", "owner"], `${password}\n`);
    expect(added.status, added.stderr).toBe(0);
    const login = await request.post("/admin/api/login", { data: { username: "e2e-aftersales", password } });
    expect(login.status()).toBe(200);
    const before = await (await request.post("/admin/api/dashboard", { data: {} })).json();

    // Sandbox user 3 pays for one item, then asks for its money back from the order page.
    const orderId = await orderOne(page, 5, 3);
    await page.getByTestId("pay").click();
    await page.locator("#wx-pay-confirm").click();
    await expect(page.getByTestId("order-status")).toHaveText("已支付", { timeout: 20_000 });
    await page.getByTestId("aftersale-open").click();
    await expect(page.getByText("退货退款")).toHaveCount(0); // nothing shipped, nothing to return
    await page.getByTestId("aftersale-reason").selectOption("不想要了");
    await page.getByRole("textbox", { name: "补充说明" }).fill("拍错了");
    await page.getByTestId("aftersale-submit").click();
    await expect(page.getByTestId("aftersale-status")).toHaveText("等待商家处理");
    await expect(page.getByTestId("aftersale-open")).toHaveCount(0);

    const waiting = await (await request.post("/admin/api/list_aftersales", { data: { status: "pending" } })).json();
    const mine = waiting.aftersales.find((a: { order_id: number }) => a.order_id === orderId);
    expect(mine.note).toBe("拍错了");
    const decided = await request.post("/admin/api/decide_aftersale", {
      data: { aftersale_id: mine.aftersale_id, approve: true },
    });
    expect(decided.status(), await decided.text()).toBe(200);

    await expect(async () => {
      await page.reload();
      await expect(page.getByTestId("refund-state")).toHaveText("退款成功", { timeout: 1_000 });
    }).toPass({ timeout: 15_000 });
    await expect(page.getByTestId("aftersale-status")).toHaveText("商家已同意，已退款");
    await expect(page.getByTestId("order-status")).toHaveText("已退款");
    await expectAccessible(page, "order, refunded after an approved after-sales request");

    const after = await (await request.post("/admin/api/dashboard", { data: {} })).json();
    expect(after.today.paid_orders).toBe(before.today.paid_orders + 1);
    expect(after.today.refunds_fen).toBe(before.today.refunds_fen + mine.total_fee);

    // Without JavaScript the same form posts to /api/request_aftersale.
    const second = await orderOne(page, 5, 3);
    await page.getByTestId("pay").click();
    await page.locator("#wx-pay-confirm").click();
    await expect(page.getByTestId("order-status")).toHaveText("已支付", { timeout: 20_000 });
    const plain = await browser.newContext({
      baseURL: test.info().project.use.baseURL,
      javaScriptEnabled: false,
      storageState: await page.context().storageState(),
      userAgent: await page.evaluate(() => navigator.userAgent),
    });
    const noJs = await plain.newPage();
    await noJs.goto(`/orders/${second}`);
    await noJs.getByTestId("aftersale-open").click();
    await noJs.getByTestId("aftersale-reason").selectOption("其他");
    await noJs.getByTestId("aftersale-submit").click();
    await expect(noJs.getByTestId("aftersale-status")).toHaveText("等待商家处理");
    await plain.close();
  });

  test("the console's pages: sign in, ship from the order page, approve 仅退款, on a phone and a desktop", async ({
    page,
    browser,
  }) => {
    const password = "a third long e2e console password";
    const added = wxmall(["admin", "add", "e2e-pages", "--role", "owner"], `${password}\n`);
    expect(added.status, added.stderr).toBe(0);

    // Sandbox user 3 pays for two orders.
    const shipped = await orderOne(page, 5, 3);
    await page.getByTestId("pay").click();
    await page.locator("#wx-pay-confirm").click();
    await expect(page.getByTestId("order-status")).toHaveText("已支付", { timeout: 20_000 });
    const refunded = await orderOne(page, 5, 3);
    await page.getByTestId("pay").click();
    await page.locator("#wx-pay-confirm").click();
    await expect(page.getByTestId("order-status")).toHaveText("已支付", { timeout: 20_000 });
    await page.getByTestId("aftersale-open").click();
    await page.getByTestId("aftersale-reason").selectOption("不想要了");
    await page.getByTestId("aftersale-submit").click();
    await expect(page.getByTestId("aftersale-status")).toHaveText("等待商家处理");

    // The merchant, on a phone, in a browser of their own.
    const merchant = await browser.newContext({ baseURL: test.info().project.use.baseURL, viewport: { width: 390, height: 844 } });
    const m = await merchant.newPage();
    await m.goto("/admin");
    await expect(m).toHaveURL(/\/admin\/login$/);
    await expectAccessible(m, "console login");
    await m.getByLabel("用户名").fill("e2e-pages");
    await m.getByLabel("密码").fill("not the password");
    await m.getByRole("button", { name: "登录" }).click();
    await expect(m.getByTestId("flash")).toHaveText("用户名或密码错误");
    await m.getByLabel("用户名").fill("e2e-pages");
    await m.getByLabel("密码").fill(password);
    await m.getByRole("button", { name: "登录" }).click();
    await expect(m).toHaveURL(/\/admin$/);
    await expect(m.getByTestId("aftersales-waiting")).toContainText("待处理售后");
    await expect(m.locator(".chart svg")).toBeVisible();
    await expectAccessible(m, "console dashboard");

    await m.goto(`/admin/orders/${shipped}`);
    await expectAccessible(m, "console order");
    await m.getByLabel("快递公司").selectOption("中通");
    await m.getByLabel("运单号").fill("ZT2026120601");
    await m.getByRole("button", { name: "发货" }).click();
    await expect(m.getByTestId("admin-order-status")).toHaveText("已发货");

    await m.getByRole("link", { name: "售后" }).first().click();
    await expect(m).toHaveURL(/\/admin\/aftersales/);
    await expectAccessible(m, "console after-sales");
    const row = m.getByTestId("aftersale-row").filter({ hasText: "不想要了" }).first();
    await row.getByTestId("approve").click();
    await expect(m.getByTestId("aftersale-row").first()).toContainText("商家已同意");

    // The shopper sees both.
    await page.goto(`/orders/${shipped}`);
    await expect(page.getByTestId("shipment")).toHaveText("中通 ZT2026120601");
    await expect(async () => {
      await page.goto(`/orders/${refunded}`);
      await expect(page.getByTestId("refund-state")).toHaveText("退款成功", { timeout: 1_000 });
    }).toPass({ timeout: 15_000 });

    // The same pages on a desktop.
    await m.setViewportSize({ width: 1280, height: 800 });
    await m.goto("/admin/orders");
    await expect(m.getByTestId("orders")).toContainText("已发货");
    await expectAccessible(m, "console orders, desktop");
    await merchant.close();
  });

  test("the merchant adds a product with two SKUs and a picture; a shopper buys it, it ships, receipt confirmed", async ({
    page,
    browser,
  }) => {
    const password = "a fourth long e2e console password";
    const added = wxmall(["admin", "add", "e2e-catalogue", "--role", "owner"], `${password}\n`);
    expect(added.status, added.stderr).toBe(0);
    // A picture to upload, drawn by the browser.
    await gotoSignedIn(page, "/", 3);
    const dataUrl = await page.evaluate(() => {
      const c = document.createElement("canvas");
      c.width = 480;
      c.height = 360;
      const g = c.getContext("2d")!;
      g.fillStyle = "#6b3e26";
      g.fillRect(0, 0, 480, 360);
      g.fillStyle = "#f2d7b6";
      g.beginPath();
      g.arc(240, 180, 120, 0, Math.PI * 2);
      g.fill();
      return c.toDataURL("image/png");
    });
    const png = Buffer.from(dataUrl.split(",")[1], "base64");

    const merchant = await browser.newContext({ baseURL: test.info().project.use.baseURL, viewport: { width: 1280, height: 800 } });
    const m = await merchant.newPage();
    await m.goto("/admin/login");
    await m.getByLabel("用户名").fill("e2e-catalogue");
    await m.getByLabel("密码").fill(password);
    await m.getByRole("button", { name: "登录" }).click();
    await m.getByRole("link", { name: "商品" }).click();
    await expectAccessible(m, "console products");
    await m.getByRole("link", { name: "管理分类" }).click();
    await expect(m.getByLabel("分类「水果生鲜」的名称")).toHaveValue("水果生鲜");
    await expectAccessible(m, "console categories");
    await m.goBack();
    await m.getByTestId("new-product").click();
    await m.getByTestId("upload-file").setInputFiles({ name: "beans.png", mimeType: "image/png", buffer: png });
    await m.getByTestId("upload").click();
    await expect(m.getByTestId("images")).toHaveValue(/^\/uploads\/[0-9a-f]{32}\.jpg$/);
    const image = await m.getByTestId("images").inputValue();
    await expectAccessible(m, "console product form");
    await m.getByLabel("名称", { exact: true }).fill("云南手冲咖啡豆");
    await m.getByLabel("描述", { exact: true }).fill("浅度烘焙，花果香");
    await m.getByLabel("新规格 1 名称").fill("200g");
    await m.getByLabel("新规格 1 价格（元）").fill("49.90");
    await m.getByLabel("新规格 1 库存").fill("10");
    await m.getByLabel("新规格 2 名称").fill("500g");
    await m.getByLabel("新规格 2 价格（元）").fill("99");
    await m.getByLabel("新规格 2 库存").fill("4");
    await m.getByTestId("save-product").click();
    await expect(m).toHaveURL(/\/admin\/products\/\d+$/);
    const productId = Number(m.url().split("/").pop());
    const skuId = Number(await m.locator('input[name="sku_id"]').first().inputValue());
    await expect(m.getByTestId("qrcodes").locator("svg")).toHaveCount(1);
    await m.getByTestId("make-follow-qr").click();
    await expect(m.getByTestId("follow-qr").locator("svg")).toHaveCount(1);
    await expectAccessible(m, "console product with its QR codes");
    await m.getByRole("link", { name: "检查" }).click();
    await expect(m.getByTestId("check").first()).toBeVisible({ timeout: 30_000 });
    await expectAccessible(m, "console setup doctor");

    // The shopper sees it at once, with its picture, and buys the 200g.
    await page.goto(`/product/${productId}`);
    await expect(page.locator(".product-head")).toContainText("云南手冲咖啡豆");
    await expect(page.locator(".product-head .price")).toContainText("49.90");
    await expect(page.locator(`.gallery img[src="${image}"]`)).toHaveCount(1);
    const orderId = await orderOne(page, skuId, 3);
    await page.getByTestId("pay").click();
    await page.locator("#wx-pay-confirm").click();
    await expect(page.getByTestId("order-status")).toHaveText("已支付", { timeout: 20_000 });

    await m.goto(`/admin/orders/${orderId}`);
    await m.getByLabel("快递公司").selectOption("极兔");
    await m.getByLabel("运单号").fill("JT2026120601");
    await m.getByRole("button", { name: "发货" }).click();
    await expect(m.getByTestId("admin-order-status")).toHaveText("已发货");
    await m.goto("/admin/audit");
    await expect(m.getByTestId("audit")).toContainText("ship_order");
    await expectAccessible(m, "console audit log");
    await merchant.close();

    await page.reload();
    await expect(page.getByTestId("shipment")).toHaveText("极兔 JT2026120601");
    await hydrated(page);
    await page.getByTestId("confirm-receipt").click();
    await expect(page.getByTestId("order-status")).toHaveText("已完成");
  });
});
