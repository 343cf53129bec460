//! The `wxmall` command line: `serve` (the default) runs the shop; `sign` and `payments` help
//! people chase payment problems.

mod admin_cmd;
mod doctor_cmd;
mod mp_cmd;
mod payments_cmd;
mod reconcile_cmd;
mod refund_cmd;
mod sign_cmd;

use clap::{Parser, Subcommand};
use server::config::Settings;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "wxmall", version, about = "A WeChat H5 shop")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the shop (the default).
    Serve,
    /// Compute a WeChat signature and show the exact string signed (for chasing
    /// "invalid signature"); the last line printed is the signature alone.
    Sign(sign_cmd::SignArgs),
    /// Show an order's payment history (notifications, queries, closes) from the database
    /// named by DATABASE_URL / WXMALL_DATA_DIR. Read-only.
    Payments(payments_cmd::PaymentsArgs),
    /// Refund all or part of a paid order through WeChat Pay (by amount or by order line).
    /// Exit status 0 when WeChat accepted it, 2 for a refund that cannot be made.
    Refund(refund_cmd::RefundArgs),
    /// Compare a day's WeChat trade bill with the shop's payments and refunds. Exit status 0
    /// when they match, 1 when there is any difference, 2 when it could not run.
    Reconcile(reconcile_cmd::ReconcileArgs),
    /// The official account's menu: `push FILE`, `show`, `delete`.
    Menu(mp_cmd::MenuArgs),
    /// A parametric QR code of the official account: `product ID`, `page PATH` or `channel
    /// NAME` (`--days N` for a temporary one, `--out FILE.svg` for the picture).
    Qrcode(mp_cmd::QrcodeArgs),
    /// WeChat cards (coupons): `whitelist OPENID|USERNAME…` sets the test whitelist (who may
    /// take a coupon WeChat has not reviewed yet).
    Card(mp_cmd::CardArgs),
    /// Check the live WeChat configuration: each check ok / warn / fail with what to do, and the
    /// values to paste into WeChat's consoles. Exit status 1 when a check fails.
    Doctor(doctor_cmd::DoctorArgs),
    /// The console's accounts: `add USERNAME [--role owner|staff]`, `passwd USERNAME`, `list`,
    /// `disable USERNAME` (passwords from standard input).
    Admin(admin_cmd::AdminArgs),
    /// Write the brotli and gzip siblings (`.br`, `.gz`) of the site's files now, e.g. when
    /// installing a new site, so that instances start without compressing and the site may stay
    /// read-only. Without SITE_DIR: LEPTOS_SITE_ROOT, else target/site.
    Precompress(PrecompressArgs),
}

#[derive(clap::Args, Debug)]
struct PrecompressArgs {
    /// The site directory (cargo-leptos's target/site, as installed).
    site_dir: Option<std::path::PathBuf>,
}

fn precompress(args: &PrecompressArgs) -> Result<(), String> {
    let dir = args
        .site_dir
        .clone()
        .unwrap_or_else(server::config::site_root_from_env);
    if !dir.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    let done = server::assets::precompress(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    println!(
        "{}: {} file(s) compressed (brotli q11 and gzip -9), {} already up to date",
        dir.display(),
        done.compressed,
        done.fresh
    );
    Ok(())
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,sqlx=warn,tower_http=info".into());
    tracing_subscriber::fmt().with_env_filter(filter).init();
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

async fn serve() -> Result<(), String> {
    let settings = Settings::from_env().map_err(|e| e.to_string())?;
    if let Some(problem) =
        server::assets::bundle_problem(&settings.site_root, server::hash_file_path().as_deref())
    {
        return Err(problem);
    }
    let site_root = settings.site_root.clone();
    // Off the async workers; a stop signal does not wait for it (see `main`).
    tokio::task::spawn_blocking(move || match server::assets::precompress(&site_root) {
        Ok(done) if done.compressed > 0 => {
            tracing::info!(files = done.compressed, "precompressed static assets")
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not precompress static assets"),
    });
    let built = server::build(&settings).await.map_err(|e| e.to_string())?;
    let _sweep = built.sweeper.clone().spawn(settings.sweep_interval);
    let _reconcile = settings
        .reconcile_at
        .map(|at| built.payments.clone().spawn_daily_reconciliation(at));
    let listener = tokio::net::TcpListener::bind(settings.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", settings.addr))?;
    tracing::info!("wxmall listening on http://{}", settings.addr);
    // SIGTERM / Ctrl-C: stop accepting, let the requests and notifications in flight finish
    // (their transactions commit or roll back whole), but not for longer than DRAIN.
    let (stopping, mut stopped) = tokio::sync::watch::channel(false);
    let server = server::serve::serve(
        listener,
        built.router,
        server::serve::HEADER_READ_TIMEOUT,
        async move {
            shutdown_signal().await;
            let _ = stopping.send(true);
        },
    );
    tokio::select! {
        () = server => Ok(()),
        _ = async {
            let _ = stopped.wait_for(|s| *s).await;
            tokio::time::sleep(DRAIN).await;
        } => {
            tracing::warn!("requests still running {} s after the stop signal: stopping anyway", DRAIN.as_secs());
            Ok(())
        }
    }
}

/// How long a stopping shop waits for requests in flight.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(10);

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Sign(args)) = &cli.command {
        // No logging, no runtime: the output is meant to be read (and parsed) by people.
        return match sign_cmd::run(args, &mut std::io::stdout()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        };
    }
    if matches!(cli.command, None | Some(Command::Serve)) {
        init_tracing();
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let served = runtime.block_on(serve());
            // Dropping the runtime would wait for blocking tasks: the start's precompression of
            // a new site can take a while (brotli at quality 11), and a stopping shop must not
            // wait for it. Its files are written whole or not at all (temporary name + rename).
            runtime.shutdown_timeout(std::time::Duration::from_millis(500));
            served
        }
        Command::Payments(args) => {
            runtime.block_on(payments_cmd::run(&args, &mut std::io::stdout()))
        }
        Command::Refund(args) => {
            return match runtime.block_on(refund_cmd::run(&args, &mut std::io::stdout())) {
                Ok(()) => ExitCode::SUCCESS,
                Err(f) => {
                    eprintln!("error: {}", f.message);
                    ExitCode::from(f.status)
                }
            };
        }
        Command::Reconcile(args) => {
            return match runtime.block_on(reconcile_cmd::run(&args, &mut std::io::stdout())) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(1),
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            };
        }
        Command::Menu(args) => {
            return cli_exit(runtime.block_on(mp_cmd::menu(&args, &mut std::io::stdout())));
        }
        Command::Qrcode(args) => {
            return cli_exit(runtime.block_on(mp_cmd::qrcode(&args, &mut std::io::stdout())));
        }
        Command::Card(args) => {
            return cli_exit(runtime.block_on(mp_cmd::card(&args, &mut std::io::stdout())));
        }
        Command::Doctor(args) => {
            return match runtime.block_on(doctor_cmd::run(&args, &mut std::io::stdout())) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(1),
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            };
        }
        Command::Admin(args) => runtime.block_on(admin_cmd::run(&args, &mut std::io::stdout())),
        Command::Precompress(args) => precompress(&args),
        Command::Sign(_) => unreachable!("handled above"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn cli_exit(r: Result<(), server::mp_cli::CliError>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", e.message);
            ExitCode::from(e.status)
        }
    }
}
