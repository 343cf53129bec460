import { expect, test } from "@playwright/test";
import { hydrated, orderOne, wxmall } from "./helpers";

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
    await page.getByTestId("confirm-receipt").click();
    await expect(page.getByTestId("order-status")).toHaveText("已完成");
    await expect(page.getByTestId("confirm-receipt")).toHaveCount(0);

    const log = await (await request.post("/admin/api/audit_log", { data: {} })).json();
    expect(log[0].action).toBe("ship_order");
    expect(log[0].who).toBe("e2e-owner");
  });
});
