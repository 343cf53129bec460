//! `wxmall menu push FILE | show | delete` and `wxmall qrcode product ID | page PATH | channel NAME`
//! (the work is in `server::mp_cli`).

use server::mp_cli::{self, CliError, QrTarget};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct MenuArgs {
    #[command(subcommand)]
    pub action: MenuAction,
}

#[derive(clap::Subcommand, Debug)]
pub enum MenuAction {
    /// Set the official account's menu from FILE: WeChat's own JSON (`{"button": [...]}`), sent
    /// as it is, where `{shop}` stands for WXMALL_PUBLIC_URL (example:
    /// server/examples/wechat-menu.json).
    Push { file: PathBuf },
    /// Print the menu as WeChat has it.
    Show,
    /// Remove the menu.
    Delete,
}

#[derive(clap::Args, Debug)]
pub struct QrcodeArgs {
    #[command(subcommand)]
    pub target: QrTargetArg,
    /// A temporary code valid this many days (1–30); without it, a permanent one.
    #[arg(long, global = true)]
    pub days: Option<u32>,
    /// Also write the code as a picture (.svg).
    #[arg(long, global = true)]
    pub out: Option<PathBuf>,
}

#[derive(clap::Subcommand, Debug)]
pub enum QrTargetArg {
    /// Follow (if need be), then the product page.
    Product { id: u64 },
    /// Follow (if need be), then a page of the shop, e.g. /orders.
    Page { path: String },
    /// Follow; the follower's first channel is NAME (a poster, a shop window …).
    Channel { name: String },
}

#[derive(clap::Args, Debug)]
pub struct CardArgs {
    #[command(subcommand)]
    pub action: CardAction,
}

#[derive(clap::Subcommand, Debug)]
pub enum CardAction {
    /// WeChat's test whitelist for cards (`card/testwhitelist/set`): until WeChat has reviewed a
    /// coupon, only these users can take it. Each value is an openid (`o` + 27 characters) or a
    /// WeChat username (微信号).
    Whitelist {
        #[arg(required = true)]
        users: Vec<String>,
    },
}

async fn wechat() -> Result<server::wx::Wechat, CliError> {
    let settings = server::config::Settings::from_env().map_err(|e| CliError {
        status: 2,
        message: e.to_string(),
    })?;
    server::wx::Wechat::start(&settings.wechat, &settings.public_url, &settings.data_dir)
        .await
        .map_err(|e| CliError {
            status: 2,
            message: e.to_string(),
        })
}

pub async fn menu(args: &MenuArgs, out: &mut impl std::io::Write) -> Result<(), CliError> {
    let wx = wechat().await?;
    match &args.action {
        MenuAction::Push { file } => {
            let menu = mp_cli::read_menu(file, &wx.public_url)?;
            mp_cli::menu_push(&wx, &menu, out).await
        }
        MenuAction::Show => mp_cli::menu_show(&wx, out).await,
        MenuAction::Delete => mp_cli::menu_delete(&wx, out).await,
    }
}

pub async fn qrcode(args: &QrcodeArgs, out: &mut impl std::io::Write) -> Result<(), CliError> {
    let target = match &args.target {
        QrTargetArg::Product { id } => QrTarget::Product(*id),
        QrTargetArg::Page { path } => QrTarget::Page(path.clone()),
        QrTargetArg::Channel { name } => QrTarget::Channel(name.clone()),
    };
    // The scene is checked before anything is started.
    target.scene()?;
    let wx = wechat().await?;
    mp_cli::qrcode(&wx, &target, args.days, args.out.as_deref(), out).await
}

pub async fn card(args: &CardArgs, out: &mut impl std::io::Write) -> Result<(), CliError> {
    match &args.action {
        CardAction::Whitelist { users } => {
            let (openids, usernames) = mp_cli::split_openids(users);
            let wx = wechat().await?;
            mp_cli::card_whitelist(&wx, &openids, &usernames, out).await
        }
    }
}
