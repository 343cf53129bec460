import { expect, Page, test } from "@playwright/test";
import { expectAccessible, gotoSignedIn, hydrated, orderOne } from "./helpers";

// What a person sees, not only what the text says: axe-core's WCAG A/AA rules (colour contrast
// included) on every shopper page in the states the suite reaches, and the order page's status
// banner — white text on a gradient, which axe cannot measure — checked stop by stop.
// Sandbox user 3 (users 1 and 2 stay address-less for purchase.spec.ts).

/** WCAG contrast ratio of two `rgb(…)` colours. */
function contrast(a: number[], b: number[]): number {
  const lum = (c: number[]) => {
    const [r, g, bl] = c.map((v) => {
      const s = v / 255;
      return s <= 0.03928 ? s / 12.92 : Math.pow((s + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * bl;
  };
  const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

const rgb = (s: string) => (s.match(/\d+(\.\d+)?/g) ?? []).slice(0, 3).map(Number);

/** Every colour of the banner's background (its gradient's stops, or its colour) against each text's colour. */
async function expectReadableBanner(page: Page, status: string) {
  const banner = page.locator(".status-banner");
  await expect(banner).toHaveClass(new RegExp(`status-${status}`));
  const { image, color, texts } = await banner.evaluate((el) => {
    const style = getComputedStyle(el);
    return {
      image: style.backgroundImage,
      color: style.backgroundColor,
      texts: Array.from(el.querySelectorAll<HTMLElement>(".status-label, .status-sub")).map((t) => ({
        text: t.innerText,
        color: getComputedStyle(t).color,
      })),
    };
  });
  const stops = (image.match(/rgba?\([^)]*\)/g) ?? [color]).map(rgb);
  expect(texts.length).toBeGreaterThan(0);
  for (const t of texts) {
    for (const stop of stops) {
      const ratio = contrast(rgb(t.color), stop);
      expect(ratio, `“${t.text}” (${t.color}) on ${stop} in the ${status} banner`).toBeGreaterThanOrEqual(4.5);
    }
  }
}

test.describe("accessibility", () => {
  test("shopper pages: browse, cart, checkout with errors, orders, 我的", async ({ page }) => {
    await gotoSignedIn(page, "/", 3);
    await hydrated(page);
    await expectAccessible(page, "home");
    await page.goto("/product/9");
    await hydrated(page);
    await expectAccessible(page, "product");
    await page.goto("/cart");
    await expectAccessible(page, "cart");
    const added = await page.request.post("/api/add_to_cart", { data: { sku_id: 5, quantity: 1 } });
    expect(added.status()).toBe(200);
    await page.goto("/cart");
    await expect(page.getByTestId("cart-line")).toHaveCount(1);
    await expectAccessible(page, "cart with a line");
    await page.getByTestId("go-checkout").click();
    await hydrated(page);
    await expectAccessible(page, "checkout");
    await page.getByTestId("submit-order").click();
    await expect(page.locator(".field-error").first()).toBeVisible();
    await expectAccessible(page, "checkout with errors");
    await page.goto("/orders");
    await expectAccessible(page, "my orders");
    await page.goto("/me");
    await expectAccessible(page, "我的");
    await page.goto("/no-such-page");
    await expectAccessible(page, "404");
  });

  test("the order page in each state: unpaid, paid, after-sales form, refunded", async ({ page }) => {
    await orderOne(page, 5, 3);
    await expectReadableBanner(page, "unpaid");
    await expectAccessible(page, "order, unpaid");
    await page.getByTestId("pay").click();
    await expect(page.locator("#wx-pay-confirm")).toBeVisible();
    await expectAccessible(page, "the sandbox's pay sheet");
    await page.locator("#wx-pay-confirm").click();
    await expect(page.getByTestId("order-status")).toHaveText("已支付", { timeout: 20_000 });
    await expectReadableBanner(page, "paid");
    await expectAccessible(page, "order, paid");
    await page.getByTestId("aftersale-open").click();
    await expectAccessible(page, "order, after-sales form open");
    await page.getByTestId("aftersale-reason").selectOption("不想要了");
    await page.getByTestId("aftersale-submit").click();
    await expect(page.getByTestId("aftersale-status")).toHaveText("等待商家处理");
    await expectAccessible(page, "order, after-sales pending");
    await page.goto("/orders");
    await expectAccessible(page, "my orders with a paid order");
  });

  for (const status of ["shipped", "completed", "refunding", "partially_refunded", "refunded", "closed"]) {
    test(`the ${status} banner is readable`, async ({ page }) => {
      // The banner's colours come from the stylesheet alone: render one with the page's own CSS.
      await gotoSignedIn(page, "/orders", 3);
      await page.evaluate((s) => {
        const main = document.querySelector("main") ?? document.body;
        const section = document.createElement("section");
        section.className = `status-banner status-${s}`;
        section.innerHTML = `<div class="status-label">状态</div><div class="status-sub">说明文字</div>`;
        main.prepend(section);
      }, status);
      await expectReadableBanner(page, status);
    });
  }
});
