import { expect, Page, test } from "@playwright/test";
import { gotoSignedIn, hydrated } from "./helpers";

// Issue 13: each island is its own wasm (`#[island(lazy)]`, `cargo leptos build --split`). A page
// preloads the files of the islands it shows and downloads no other island's; it is hydrated
// (`html.hydrated`) once every island on it is.

/** The island loaders whose files a page's <head> preloads (`split_<island>_loader_…`). */
async function preloadedIslands(page: Page): Promise<string[]> {
  const hrefs = await page.locator('head link[rel="preload"]').evaluateAll((links) =>
    links.map((l) => l.getAttribute("href") ?? ""),
  );
  return hrefs
    .map((h) => /\/split_([a-z_]+)_loader_\d+\./.exec(h)?.[1])
    .filter((n): n is string => !!n)
    .sort();
}

/** Every wasm file the page fetched. */
function wasmRequests(page: Page): string[] {
  const urls: string[] = [];
  page.on("request", (r) => {
    if (r.url().endsWith(".wasm")) urls.push(new URL(r.url()).pathname);
  });
  return urls;
}

test("the home page downloads only its own islands, preloaded, and hydrates", async ({ page }) => {
  const fetched = wasmRequests(page);
  await gotoSignedIn(page, "/", 3);
  await hydrated(page);
  // (Coupons on offer, from another spec, add their 领取 island: `coupon_card`.)
  const preloaded = await preloadedIslands(page);
  expect(preloaded).toContain("share_card");
  expect(fetched.some((u) => /\/split_share_card_loader_/.test(u))).toBe(true);
  for (const other of ["product_buy", "cart_editor", "checkout_form", "order_actions"]) {
    expect(preloaded, other).not.toContain(other);
    expect(fetched.filter((u) => u.includes(`/split_${other}_loader_`)), other).toEqual([]);
  }
  // Every preloaded file exists (a stale manifest would preload 404s).
  const hrefs = await page.locator('head link[rel="preload"], head link[rel="modulepreload"]')
    .evaluateAll((links) => links.map((l) => l.getAttribute("href") ?? ""));
  for (const href of hrefs) {
    expect((await page.request.get(href)).status(), href).toBe(200);
  }
});

test("a product page preloads its buy form's island and it works once hydrated", async ({ page }) => {
  await gotoSignedIn(page, "/product/1", 3);
  const preloaded = await preloadedIslands(page);
  expect(preloaded).toEqual(expect.arrayContaining(["product_buy", "share_card"]));
  expect(preloaded).not.toContain("checkout_form");
  await hydrated(page);
  // The island's own control (the stepper exists only with the wasm) answers.
  await page.getByRole("button", { name: "增加" }).click();
  await expect(page.locator('input[name="quantity"]')).toHaveValue("2");
});
