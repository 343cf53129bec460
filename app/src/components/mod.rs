//! View pieces used by several pages.

mod coupons;
pub mod lazy_island;
mod price;
mod product_card;
mod sandbox_banner;
mod share;
mod status;
mod tab_bar;
mod wx_sdk;

pub use coupons::CouponStrip;
pub use lazy_island::island_started;
pub use price::Price;
pub use product_card::ProductCard;
pub use sandbox_banner::{wx_env, SandboxBanner};
pub use share::ShareCard;
pub use status::{ErrorView, FieldMessage, PageSkeleton, ServerFormError};
pub use tab_bar::TabBar;
#[cfg(feature = "hydrate")]
pub use wx_sdk::configure_wx;
pub use wx_sdk::{wx_ready, WxReady};

/// `2026-11-22 14:05` in China time (UTC+8) from unix seconds. Written by hand so the wasm
/// bundle carries no date library.
pub fn format_time(unix: i64) -> String {
    let secs = unix + 8 * 3600;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// Opens `path` (a page of this shop) as a full page load: islands have no client-side router.
pub fn go_to(path: &str) {
    #[cfg(feature = "hydrate")]
    if let Some(w) = web_sys::window() {
        let _ = w.location().set_href(path);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    #[test]
    fn china_time() {
        assert_eq!(super::format_time(0), "1970-01-01 08:00");
        // 2026-11-22T06:39:41Z
        assert_eq!(super::format_time(1_795_329_581), "2026-11-22 14:39");
        // 2024-02-29T15:59:59Z → leap day, still the 29th in China until 16:00 UTC
        assert_eq!(super::format_time(1_709_222_399), "2024-02-29 23:59");
    }
}
