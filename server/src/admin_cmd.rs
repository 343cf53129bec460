//! `wxmall admin add USERNAME [--role owner|staff]`, `passwd USERNAME`, `list`, `disable USERNAME`:
//! the console's accounts, in the shop's database. Passwords are read from standard input (one
//! line), never from the command line: `printf '%s\n' "$PASSWORD" | wxmall admin add boss`.

use server::admin::accounts::{self, Role};

#[derive(clap::Args, Debug)]
pub struct AdminArgs {
    #[command(subcommand)]
    pub action: AdminAction,
}

#[derive(clap::Subcommand, Debug)]
pub enum AdminAction {
    /// Create an account; its password is read from standard input.
    Add {
        username: String,
        /// `owner` may do everything; `staff` may not refund, change prices or manage accounts.
        #[arg(long, default_value = "staff")]
        role: String,
    },
    /// Set an account's password (read from standard input); its sessions end.
    Passwd { username: String },
    /// List the accounts.
    List,
    /// Stop an account from logging in; its sessions end.
    Disable { username: String },
}

pub async fn run(args: &AdminArgs, out: &mut impl std::io::Write) -> Result<(), String> {
    let settings = server::config::Settings::from_env().map_err(|e| e.to_string())?;
    let pool = server::db::connect(&settings.database_url)
        .await
        .map_err(|e| e.to_string())?;
    let password = || {
        let stdin = std::io::stdin();
        accounts::read_password(&mut stdin.lock())
            .map_err(|e| format!("cannot read the password from standard input: {e}"))
    };
    match &args.action {
        AdminAction::Add { username, role } => {
            let role = Role::parse(role).ok_or("--role is owner or staff")?;
            let pw = password()?;
            accounts::add(&pool, username, role, &pw)
                .await
                .map_err(|e| e.to_string())?;
            writeln!(out, "added {username} ({})", role.as_str()).map_err(|e| e.to_string())
        }
        AdminAction::Passwd { username } => {
            let pw = password()?;
            accounts::set_password(&pool, username, &pw)
                .await
                .map_err(|e| e.to_string())?;
            writeln!(out, "password of {username} changed").map_err(|e| e.to_string())
        }
        AdminAction::List => {
            for a in accounts::list(&pool).await.map_err(|e| e.to_string())? {
                writeln!(
                    out,
                    "{:<20} {:<6} {}",
                    a.username,
                    a.role,
                    if a.disabled_at.is_some() {
                        "disabled"
                    } else {
                        "active"
                    }
                )
                .map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        AdminAction::Disable { username } => {
            accounts::disable(&pool, username)
                .await
                .map_err(|e| e.to_string())?;
            writeln!(out, "{username} disabled").map_err(|e| e.to_string())
        }
    }
}
