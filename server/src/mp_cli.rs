//! `wxmall menu …` and `wxmall qrcode …`: the official account's menu and parametric QR codes,
//! through the shop's WeChat configuration (in sandbox mode, the running shop's sandbox).

use std::io::Write;
use std::path::Path;

use serde_json::Value;

use crate::wx::Wechat;

/// Why a command failed: 2 for what the merchant must fix here, 1 for WeChat.
#[derive(Debug)]
pub struct CliError {
    pub status: u8,
    pub message: String,
}

fn usage(message: impl Into<String>) -> CliError {
    CliError {
        status: 2,
        message: message.into(),
    }
}

fn wechat(e: wechat::mp::token::TokenError) -> CliError {
    CliError {
        status: 1,
        message: format!("WeChat refused: {e}"),
    }
}

fn io(e: std::io::Error) -> CliError {
    usage(e.to_string())
}

/// Reads a menu file: WeChat's own JSON (`{"button": […]}`), where the text `{shop}` stands for
/// the shop's public URL.
pub fn read_menu(path: &Path, public_url: &str) -> Result<Value, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
    let text = text.replace("{shop}", public_url.trim_end_matches('/'));
    let menu: Value = serde_json::from_str(&text)
        .map_err(|e| usage(format!("{} is not JSON: {e}", path.display())))?;
    if !menu.get("button").is_some_and(Value::is_array) {
        return Err(usage(format!(
            "{}: a menu is {{\"button\": [...]}} (WeChat's format)",
            path.display()
        )));
    }
    Ok(menu)
}

/// `wxmall menu push FILE`.
pub async fn menu_push(wx: &Wechat, menu: &Value, out: &mut impl Write) -> Result<(), CliError> {
    wx.mp_api.create_menu(menu).await.map_err(wechat)?;
    writeln!(
        out,
        "menu created ({} buttons)",
        menu["button"].as_array().map_or(0, Vec::len)
    )
    .map_err(io)
}

/// `wxmall menu show`: the menu as WeChat has it, as JSON.
pub async fn menu_show(wx: &Wechat, out: &mut impl Write) -> Result<(), CliError> {
    let menu = wx.mp_api.current_menu().await.map_err(wechat)?;
    writeln!(
        out,
        "{}",
        serde_json::to_string_pretty(&menu).unwrap_or_default()
    )
    .map_err(io)
}

/// `wxmall menu delete`.
pub async fn menu_delete(wx: &Wechat, out: &mut impl Write) -> Result<(), CliError> {
    wx.mp_api.delete_menu().await.map_err(wechat)?;
    writeln!(out, "menu deleted").map_err(io)
}

/// What a parametric QR code leads to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QrTarget {
    Product(u64),
    Page(String),
    Channel(String),
}

impl QrTarget {
    /// The scene string (what the official account's server reads back).
    pub fn scene(&self) -> Result<String, CliError> {
        match self {
            QrTarget::Product(id) => Ok(format!("product:{id}")),
            QrTarget::Page(path) => {
                let ok = path.starts_with('/')
                    && !path.starts_with("//")
                    && path.len() <= 59
                    && path
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"/-_.?=&%".contains(&b));
                if ok {
                    Ok(format!("page:{path}"))
                } else {
                    Err(usage(format!(
                        "{path:?}: a page is a path of the shop like /orders (at most 59 characters)"
                    )))
                }
            }
            QrTarget::Channel(name) => {
                let ok = !name.is_empty()
                    && name.len() <= 56
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if ok {
                    Ok(format!("channel:{name}"))
                } else {
                    Err(usage(format!(
                        "{name:?}: a channel name is 1 to 56 letters, digits, - or _"
                    )))
                }
            }
        }
    }
}

/// `wxmall qrcode …`: creates the code at WeChat (temporary for `days`, else permanent), prints
/// its scene, URL and picture, and writes it as SVG or PNG (by the extension) to `out_file`.
pub async fn qrcode(
    wx: &Wechat,
    target: &QrTarget,
    days: Option<u32>,
    out_file: Option<&Path>,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let scene = target.scene()?;
    if let Some(d) = days {
        if !(1..=30).contains(&d) {
            return Err(usage(
                "--days is 1 to 30 (WeChat keeps temporary codes 30 days at most)",
            ));
        }
    }
    if let Some(f) = out_file {
        if !matches!(f.extension().and_then(|e| e.to_str()), Some("svg" | "png")) {
            return Err(usage(format!(
                "{}: the picture is written as .svg or .png",
                f.display()
            )));
        }
    }
    let ticket = wx
        .mp_api
        .create_qrcode(&scene, days.map(|d| u64::from(d) * 86_400))
        .await
        .map_err(wechat)?;
    writeln!(out, "scene   {scene}").map_err(io)?;
    writeln!(out, "url     {}", ticket.url).map_err(io)?;
    writeln!(
        out,
        "picture {}",
        wechat::mp::api::qr_picture_url(&ticket.ticket)
    )
    .map_err(io)?;
    match ticket.expire_seconds {
        Some(s) => writeln!(out, "expires in {} days", s / 86_400).map_err(io)?,
        None => writeln!(out, "permanent").map_err(io)?,
    }
    if let Some(f) = out_file {
        let picture = if f.extension().and_then(|e| e.to_str()) == Some("png") {
            crate::qr::png(&ticket.url, 10).map_err(usage)?
        } else {
            crate::qr::svg(&ticket.url, 400)
                .map_err(usage)?
                .into_bytes()
        };
        std::fs::write(f, picture)
            .map_err(|e| usage(format!("cannot write {}: {e}", f.display())))?;
        writeln!(out, "written {}", f.display()).map_err(io)?;
    }
    Ok(())
}

/// Openids (`o` + 27 characters of WeChat's alphabet) apart from WeChat usernames (微信号).
pub fn split_openids(users: &[String]) -> (Vec<String>, Vec<String>) {
    users
        .iter()
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
        .partition(|u| {
            u.len() == 28
                && u.starts_with('o')
                && u.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
}

/// `wxmall card whitelist OPENID|USERNAME…`.
pub async fn card_whitelist(
    wx: &Wechat,
    openids: &[String],
    usernames: &[String],
    out: &mut impl Write,
) -> Result<(), CliError> {
    wx.cards
        .set_test_whitelist(openids, usernames)
        .await
        .map_err(wechat)?;
    writeln!(
        out,
        "card test whitelist set: {} openid(s), {} username(s)",
        openids.len(),
        usernames.len()
    )
    .map_err(io)
}
