//! `wxmall doctor [--json]` (the checks are in `server::doctor`).

#[derive(clap::Args, Debug)]
pub struct DoctorArgs {
    /// Print `{"checks":[{"name","status","detail","fix"}],"paste":[{"field","value"}]}`.
    #[arg(long)]
    pub json: bool,
}

/// `Ok(true)` when no check failed.
pub async fn run(args: &DoctorArgs, out: &mut impl std::io::Write) -> Result<bool, String> {
    let settings = server::config::Settings::from_env().map_err(|e| e.to_string())?;
    let wechat =
        server::wx::Wechat::start(&settings.wechat, &settings.public_url, &settings.data_dir)
            .await
            .map_err(|e| e.to_string())?;
    let pool = server::db::open_existing(&settings.database_url)
        .await
        .map_err(|e| format!("{e} (start the shop once to create the database)"))?;
    let http = server::doctor::probe_client()?;
    let report = server::doctor::examine(&server::doctor::Inputs {
        public_url: &settings.public_url,
        site_root: &settings.site_root,
        wechat: &wechat,
        pool: &pool,
        redis_url: settings.wechat.redis_url.as_deref(),
        http,
    })
    .await;
    let text = if args.json {
        serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
    } else {
        report.text()
    };
    writeln!(out, "{text}").map_err(|e| e.to_string())?;
    Ok(!report.failed())
}
