import { expect, test } from "@playwright/test";
import { hydrated, orderOne, paymentTrail, wxmall } from "./helpers";

// Money that goes back, seen by the shopper: a merchant refund made with `wxmall refund`, and a
// cancel that meets a payment WeChat has already taken.
test.describe("refunds and cancellation", () => {
  test("the merchant refunds part with wxmall refund and the order page shows it", async ({ page }) => {
    const orderId = await orderOne(page, 9); // 500g 咖啡豆, ¥68.00
    await page.getByTestId("pay").click();
    await page.locator("#wx-pay-confirm").click();
    await expect(page.getByTestId("order-status")).toHaveText("已支付", { timeout: 20_000 });

    const first = wxmall(["refund", String(orderId), "--amount-fen", "1000", "--reason", "少发赠品"]);
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/refund R[0-9a-f]{30} of 1000 fen/);

    // WeChat settles the refund and notifies the shop; the shopper sees it on the order page.
    await expect
      .poll(
        async () => {
          await page.reload();
          return page.getByTestId("refund-state").first().textContent();
        },
        { timeout: 20_000 },
      )
      .toBe("退款成功");
    await expect(page.getByTestId("order-status")).toHaveText("部分退款");
    await expect(page.getByTestId("refunded-total")).toContainText("10.00");
    await expect(page.getByTestId("refund")).toHaveCount(1);

    // The same command again refunds nothing more; more than is left is refused with exit 2.
    const again = wxmall(["refund", String(orderId), "--amount-fen", "1000", "--reason", "少发赠品"]);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout).toContain("nothing new was refunded");
    const left = paymentTrail(orderId).total_fee - 1000;
    const tooMuch = wxmall(["refund", String(orderId), "--amount-fen", String(left + 1), "--reason", "多退"]);
    expect(tooMuch.status).toBe(2);
    expect(tooMuch.stderr).toContain("可退");

    const trail = paymentTrail(orderId);
    expect(trail.status).toBe("partially_refunded");
    expect(trail.refunds).toHaveLength(1);
    expect(trail.refunded_fen).toBe(1000);

    // 我的订单's 退款 tab lists the order.
    await page.goto("/orders?status=refund");
    await expect(page.locator(`a.order-card[href="/orders/${orderId}"]`)).toBeVisible();
  });

  test("cancelling an order WeChat was paid for, before the shop heard, shows it paid", async ({ page }) => {
    const orderId = await orderOne(page, 10);
    // The order goes to WeChat (a prepay), then is paid from another phone while WeChat's
    // notification is lost.
    const prepay = await page.request.post("/api/pay_order", { data: { order_id: orderId } });
    expect(prepay.status()).toBe(200);
    const orderNo = (await page.getByTestId("order-no").textContent())!.trim();
    expect((await page.request.post("/sandbox/dashboard/notifications", { form: { drop: "1" } })).status()).toBe(200);
    try {
      const paid = await page.request.post("/sandbox/dashboard/pay", { form: { out_trade_no: orderNo } });
      expect(paid.status()).toBe(200);
      expect(paymentTrail(orderId).status).toBe("unpaid");

      await hydrated(page);
      await page.getByTestId("cancel").click();
      await expect(page.getByTestId("order-status")).toHaveText("已支付", { timeout: 15_000 });
      await expect(page.getByRole("alert")).toContainText("订单已支付");
      await expect(page.getByTestId("cancel")).toHaveCount(0);
      expect(paymentTrail(orderId).status).toBe("paid");
    } finally {
      await page.request.post("/sandbox/dashboard/notifications", { form: { drop: "0" } });
    }
  });
});
