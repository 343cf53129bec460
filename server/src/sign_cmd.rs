//! `wxmall sign …`: compute WeChat signatures by hand, to debug "invalid signature" /
//! "支付验证签名失败" against another implementation.
//!
//! Each kind prints the exact string it signs (newlines shown as `\n`) and, as its **last line**, the
//! signature alone. Nothing secret is printed beyond what the user typed: the v2 API key is shown
//! as `<API key>` in the signed string, and private keys are never echoed.
use std::io::Write;
use std::path::PathBuf;

use wechat::pay::jsapi;
use wechat::pay::v2::sign::{self as v2_sign, SignType};
use wechat::pay::v3::sign::{self as v3_sign, MerchantKey};
use wechat::PrepayId;

/// `wxmall sign <kind> …`
#[derive(clap::Args, Debug)]
pub struct SignArgs {
    /// What to sign.
    #[command(subcommand)]
    pub kind: SignKind,
}

/// The v2 signature algorithm, as WeChat spells it.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignTypeArg {
    /// MD5 (WeChat's default).
    #[value(name = "MD5")]
    Md5,
    /// HMAC-SHA256.
    #[value(name = "HMAC-SHA256")]
    HmacSha256,
}

impl From<SignTypeArg> for SignType {
    fn from(a: SignTypeArg) -> Self {
        match a {
            SignTypeArg::Md5 => SignType::Md5,
            SignTypeArg::HmacSha256 => SignType::HmacSha256,
        }
    }
}

/// The signature kinds.
#[derive(clap::Subcommand, Debug)]
pub enum SignKind {
    /// JS-SDK `wx.config` signature: SHA-1 (lowercase hex) of
    /// `jsapi_ticket=T&noncestr=N&timestamp=TS&url=U` (the URL's #fragment is removed).
    Jssdk {
        /// The jsapi_ticket.
        #[arg(long)]
        ticket: String,
        /// The nonceStr given to wx.config.
        #[arg(long)]
        noncestr: String,
        /// The timestamp given to wx.config (Unix seconds).
        #[arg(long)]
        timestamp: String,
        /// The page URL (http/https).
        #[arg(long)]
        url: String,
    },
    /// Pay v2 signature over `k=v` parameters (empty values and `sign` skipped, ASCII order,
    /// `&key=API_KEY`): uppercase hex.
    V2 {
        /// A file holding the API key (v2); or set WXMALL_SIGN_KEY. Never on the command line:
        /// it would sit in the process list and the shell history.
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
        /// MD5 or HMAC-SHA256.
        #[arg(long, value_enum, ignore_case = true, default_value = "MD5")]
        sign_type: SignTypeArg,
        /// Parameters as key=value.
        #[arg(required = true, value_name = "KEY=VALUE")]
        params: Vec<String>,
    },
    /// v2 `paySign` for getBrandWCPayRequest / wx.chooseWXPay
    /// (over appId, nonceStr, package, signType, timeStamp).
    PayV2 {
        /// A file holding the API key (v2); or set WXMALL_SIGN_KEY.
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
        /// MD5 or HMAC-SHA256.
        #[arg(long, value_enum, ignore_case = true, default_value = "MD5")]
        sign_type: SignTypeArg,
        /// The official account's appid.
        #[arg(long)]
        appid: String,
        /// timeStamp (Unix seconds).
        #[arg(long)]
        timestamp: String,
        /// nonceStr.
        #[arg(long)]
        noncestr: String,
        /// The prepay_id (without `prepay_id=`).
        #[arg(long)]
        prepay_id: String,
    },
    /// v3 `paySign` (RSA-SHA256, base64) over `APPID\nTIMESTAMP\nNONCE\nprepay_id=…\n`.
    PayV3 {
        /// The merchant private key (PEM, PKCS#8 or PKCS#1).
        #[arg(long)]
        private_key: PathBuf,
        /// The official account's appid.
        #[arg(long)]
        appid: String,
        /// timeStamp (Unix seconds).
        #[arg(long)]
        timestamp: String,
        /// nonceStr.
        #[arg(long)]
        noncestr: String,
        /// The prepay_id (without `prepay_id=`).
        #[arg(long)]
        prepay_id: String,
    },
    /// v3 request signature (RSA-SHA256, base64) over
    /// `METHOD\nPATH_WITH_QUERY\nTIMESTAMP\nNONCE\nBODY\n`.
    V3Request {
        /// The merchant private key (PEM, PKCS#8 or PKCS#1).
        #[arg(long)]
        private_key: PathBuf,
        /// HTTP method (GET, POST, PUT, PATCH, DELETE).
        #[arg(long)]
        method: String,
        /// Path with query as WeChat sees it, e.g. /v3/pay/transactions/jsapi.
        #[arg(long)]
        path: String,
        /// Unix seconds.
        #[arg(long)]
        timestamp: String,
        /// The nonce.
        #[arg(long)]
        noncestr: String,
        /// The request body, exactly as sent (empty for GET).
        #[arg(long, default_value = "")]
        body: String,
    },
}

/// Why `wxmall sign` refused. The message is shown to the user as is.
#[derive(Debug, thiserror::Error)]
pub enum SignCmdError {
    /// `--timestamp` is not Unix seconds.
    #[error("--timestamp must be Unix seconds (digits only), got {0:?}")]
    BadTimestamp(String),
    /// An argument is empty or contains whitespace.
    #[error("--{0} must be non-empty and contain no whitespace")]
    BadValue(&'static str),
    /// `--url` is not absolute.
    #[error("--url must be an absolute http:// or https:// URL, got {0:?}")]
    BadUrl(String),
    /// A v2 parameter is not `key=value`.
    #[error("parameter {0:?} is not KEY=VALUE (KEY made of letters, digits and _)")]
    BadParam(String),
    /// A v2 parameter appears twice.
    #[error("parameter {0:?} given twice")]
    DuplicateParam(String),
    /// All v2 parameters are empty or `sign`.
    #[error("nothing to sign: every parameter is empty or named sign")]
    NothingToSign,
    /// `--method` is not an HTTP method.
    #[error("--method must be GET, POST, PUT, PATCH or DELETE, got {0:?}")]
    BadMethod(String),
    /// `--path` does not start with `/`.
    #[error("--path must start with / (the path WeChat sees, e.g. /v3/pay/transactions/jsapi), got {0:?}")]
    BadPath(String),
    /// The private key could not be loaded.
    #[error("cannot use private key {path}: {reason}")]
    Key {
        /// The file.
        path: String,
        /// Why (never the key itself).
        reason: String,
    },
    /// No API key given.
    #[error("give the API key with --key-file FILE or in WXMALL_SIGN_KEY (never as an argument: it would show in the process list and the shell history)")]
    MissingKey,
    /// The key file could not be read.
    #[error("cannot read the key file {path}: {reason}")]
    KeyFile {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// Writing the output failed.
    #[error("cannot write output: {0}")]
    Io(#[from] std::io::Error),
}

fn check_timestamp(ts: &str) -> Result<(), SignCmdError> {
    if ts.is_empty() || ts.len() > 12 || !ts.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignCmdError::BadTimestamp(ts.chars().take(40).collect()));
    }
    Ok(())
}

fn check_token(v: &str, name: &'static str) -> Result<(), SignCmdError> {
    if v.is_empty() || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(SignCmdError::BadValue(name));
    }
    Ok(())
}

fn load_key(path: &PathBuf) -> Result<MerchantKey, SignCmdError> {
    MerchantKey::from_pem_file(path).map_err(|e| SignCmdError::Key {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// The v2 API key: from `--key-file`, else from `WXMALL_SIGN_KEY`.
fn api_key(
    key_file: Option<&PathBuf>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, SignCmdError> {
    let key = match key_file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| SignCmdError::KeyFile {
                path: path.display().to_string(),
                reason: e.kind().to_string(),
            })?
            .trim()
            .to_string(),
        None => env("WXMALL_SIGN_KEY")
            .map(|k| k.trim().to_string())
            .filter(|k| !k.is_empty())
            .ok_or(SignCmdError::MissingKey)?,
    };
    check_token(&key, "key-file")?;
    Ok(key)
}

/// Shows a signed string on one line with `\n` (and other controls) escaped.
fn shown(s: &str) -> String {
    format!("\"{}\"", s.escape_debug())
}

/// Runs `wxmall sign …`, writing to `out`. The last line written is the signature alone.
pub fn run(args: &SignArgs, out: &mut dyn Write) -> Result<(), SignCmdError> {
    run_with(args, out, &|name| std::env::var(name).ok())
}

/// [`run`] with the environment given (`WXMALL_SIGN_KEY`).
pub fn run_with(
    args: &SignArgs,
    out: &mut dyn Write,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), SignCmdError> {
    match &args.kind {
        SignKind::Jssdk {
            ticket,
            noncestr,
            timestamp,
            url,
        } => {
            check_token(ticket, "ticket")?;
            check_token(noncestr, "noncestr")?;
            check_timestamp(timestamp)?;
            if !(url.starts_with("http://") || url.starts_with("https://"))
                || url.chars().any(char::is_whitespace)
            {
                return Err(SignCmdError::BadUrl(url.chars().take(200).collect()));
            }
            let signed_url = wechat::mp::jssdk::strip_fragment(url);
            if signed_url.len() != url.len() {
                writeln!(out, "note: the #fragment is not part of the signed url")?;
            }
            let string1 = wechat::mp::jssdk::string_to_sign(ticket, noncestr, timestamp, url);
            writeln!(out, "algorithm: SHA-1, lowercase hex")?;
            writeln!(out, "string1: {string1}")?;
            writeln!(
                out,
                "{}",
                wechat::mp::jssdk::signature(ticket, noncestr, timestamp, url)
            )?;
        }
        SignKind::V2 {
            key_file,
            sign_type,
            params,
        } => {
            let key = &api_key(key_file.as_ref(), env)?;
            let mut pairs: Vec<(String, String)> = Vec::with_capacity(params.len());
            for p in params {
                let (k, v) = p
                    .split_once('=')
                    .ok_or_else(|| SignCmdError::BadParam(p.chars().take(80).collect()))?;
                if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    return Err(SignCmdError::BadParam(p.chars().take(80).collect()));
                }
                if pairs.iter().any(|(seen, _)| seen == k) {
                    return Err(SignCmdError::DuplicateParam(k.to_owned()));
                }
                pairs.push((k.to_owned(), v.to_owned()));
            }
            let string_a =
                v2_sign::v2_string_a(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            if string_a.is_empty() {
                return Err(SignCmdError::NothingToSign);
            }
            let st = SignType::from(*sign_type);
            write_v2(out, st, &string_a, key)?;
        }
        SignKind::PayV2 {
            key_file,
            sign_type,
            appid,
            timestamp,
            noncestr,
            prepay_id,
        } => {
            let key = &api_key(key_file.as_ref(), env)?;
            check_token(appid, "appid")?;
            check_token(noncestr, "noncestr")?;
            check_token(prepay_id, "prepay-id")?;
            check_timestamp(timestamp)?;
            let st = SignType::from(*sign_type);
            let id = PrepayId(prepay_id.clone());
            let string_a = jsapi::v2_string_a(appid, &id.package(), st, timestamp, noncestr);
            let p = jsapi::v2_with(appid, &id, key, st, timestamp, noncestr);
            writeln!(
                out,
                "paySign fields: appId, nonceStr, package, signType, timeStamp"
            )?;
            write_v2_label(out, st, &string_a, key)?;
            writeln!(out, "{}", p.pay_sign)?;
        }
        SignKind::PayV3 {
            private_key,
            appid,
            timestamp,
            noncestr,
            prepay_id,
        } => {
            check_token(appid, "appid")?;
            check_token(noncestr, "noncestr")?;
            check_token(prepay_id, "prepay-id")?;
            check_timestamp(timestamp)?;
            let key = load_key(private_key)?;
            let id = PrepayId(prepay_id.clone());
            let msg = v3_sign::v3_pay_message(appid, timestamp, noncestr, &id.package());
            writeln!(
                out,
                "algorithm: RSA-SHA256 (PKCS#1 v1.5), base64; signType \"RSA\""
            )?;
            writeln!(out, "message: {}", shown(&msg))?;
            writeln!(out, "{}", key.sign_base64(msg.as_bytes()))?;
        }
        SignKind::V3Request {
            private_key,
            method,
            path,
            timestamp,
            noncestr,
            body,
        } => {
            let m = method.to_ascii_uppercase();
            if !matches!(m.as_str(), "GET" | "POST" | "PUT" | "PATCH" | "DELETE") {
                return Err(SignCmdError::BadMethod(method.chars().take(20).collect()));
            }
            if !path.starts_with('/') || path.chars().any(char::is_whitespace) {
                return Err(SignCmdError::BadPath(path.chars().take(200).collect()));
            }
            check_token(noncestr, "noncestr")?;
            check_timestamp(timestamp)?;
            let key = load_key(private_key)?;
            let msg = v3_sign::v3_request_message(&m, path, timestamp, noncestr, body);
            writeln!(out, "algorithm: RSA-SHA256 (PKCS#1 v1.5), base64 (the signature=\"…\" of the Authorization header)")?;
            writeln!(out, "message: {}", shown(&msg))?;
            writeln!(out, "{}", key.sign_base64(msg.as_bytes()))?;
        }
    }
    Ok(())
}

fn write_v2_label(
    out: &mut dyn Write,
    st: SignType,
    string_a: &str,
    key: &str,
) -> Result<(), SignCmdError> {
    writeln!(out, "algorithm: {st}, uppercase hex")?;
    writeln!(out, "stringA: {string_a}")?;
    writeln!(
        out,
        "stringSignTemp: {string_a}&key=<API key, {} chars>",
        key.chars().count()
    )?;
    Ok(())
}

fn write_v2(
    out: &mut dyn Write,
    st: SignType,
    string_a: &str,
    key: &str,
) -> Result<(), SignCmdError> {
    write_v2_label(out, st, string_a, key)?;
    writeln!(out, "{}", v2_sign::v2_sign_string_a(string_a, key, st))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser, Debug)]
    #[command(name = "wxmall")]
    struct T {
        #[command(flatten)]
        a: SignArgs,
    }

    /// Runs the command; `--key K` in `args` is turned into a key file holding K (the command
    /// itself takes keys only from a file or the environment).
    fn run_args(args: &[&str]) -> Result<String, String> {
        run_env(args, &|_| None)
    }

    fn run_env(args: &[&str], env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
        let dir = tempfile::tempdir().unwrap();
        let key_path = dir.path().join("apikey.txt");
        let key_path = key_path.to_str().unwrap().to_string();
        let mut argv: Vec<String> = vec!["wxmall".into()];
        let mut it = args.iter();
        while let Some(a) = it.next() {
            if *a == "--key" {
                let key = it.next().expect("--key takes a value");
                std::fs::write(&key_path, format!("{key}\n")).unwrap();
                argv.push("--key-file".into());
                argv.push(key_path.clone());
            } else {
                argv.push(a.to_string());
            }
        }
        let t = T::try_parse_from(argv).map_err(|e| format!("clap: {e}"))?;
        let mut out = Vec::new();
        run_with(&t.a, &mut out, env).map_err(|e| e.to_string())?;
        Ok(String::from_utf8(out).expect("utf8"))
    }

    #[test]
    fn the_api_key_never_comes_from_the_command_line() {
        let argv = [
            "wxmall",
            "v2",
            "--key",
            "192006250b4c09247ec02edce69f6a2d",
            "a=b",
        ];
        assert!(T::try_parse_from(argv).is_err(), "--key is no argument");
        let params = [
            "v2",
            "appid=wxd930ea5d5a258f4f",
            "mch_id=10000100",
            "device_info=1000",
            "body=test",
            "nonce_str=ibuaiVcKdpRxkhJA",
        ];
        let err = run_env(&params, &|_| None).unwrap_err();
        assert!(
            err.contains("WXMALL_SIGN_KEY") && err.contains("--key-file"),
            "{err}"
        );
        let out = run_env(&params, &|k| {
            (k == "WXMALL_SIGN_KEY").then(|| "192006250b4c09247ec02edce69f6a2d".to_string())
        })
        .unwrap();
        assert_eq!(last_line(&out), "9A0A8659F005D6984697E2CA0A9CF3B7");
        let err = run_env(&["v2", "--key-file", "/nonexistent/key", "a=b"], &|_| None).unwrap_err();
        assert!(err.contains("cannot read the key file"), "{err}");
    }

    fn last_line(s: &str) -> &str {
        s.trim_end_matches('\n').rsplit('\n').next().unwrap_or("")
    }

    const TICKET: &str =
        "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg";

    #[test]
    fn jssdk_official_vector() {
        let out = run_args(&[
            "jssdk",
            "--ticket",
            TICKET,
            "--noncestr",
            "Wm3WZYTPz0wzccnW",
            "--timestamp",
            "1414587457",
            "--url",
            "http://mp.weixin.qq.com?params=value",
        ])
        .unwrap();
        assert_eq!(last_line(&out), "0f9de62fce790f9a083d5c99e95740ceb90c27ed");
        assert!(out.contains("jsapi_ticket=sM4AOVdW"));
        let out = run_args(&[
            "jssdk",
            "--ticket",
            TICKET,
            "--noncestr",
            "Wm3WZYTPz0wzccnW",
            "--timestamp",
            "1414587457",
            "--url",
            "http://mp.weixin.qq.com?params=value#/x",
        ])
        .unwrap();
        assert_eq!(last_line(&out), "0f9de62fce790f9a083d5c99e95740ceb90c27ed");
        assert!(out.contains("fragment"));
    }

    #[test]
    fn v2_official_vectors() {
        let params = [
            "appid=wxd930ea5d5a258f4f",
            "mch_id=10000100",
            "device_info=1000",
            "body=test",
            "nonce_str=ibuaiVcKdpRxkhJA",
        ];
        let mut a = vec!["v2", "--key", "192006250b4c09247ec02edce69f6a2d"];
        a.extend(params);
        let out = run_args(&a).unwrap();
        assert_eq!(last_line(&out), "9A0A8659F005D6984697E2CA0A9CF3B7");
        assert!(
            !out.contains("192006250b4c09247ec02edce69f6a2d"),
            "the key is not echoed"
        );
        let mut a = vec![
            "v2",
            "--key",
            "192006250b4c09247ec02edce69f6a2d",
            "--sign-type",
            "HMAC-SHA256",
        ];
        a.extend(params);
        a.push("attach="); // empty: skipped
        a.push("sign=IGNORED");
        let out = run_args(&a).unwrap();
        assert_eq!(
            last_line(&out),
            "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6"
        );
        let mut a = vec!["v2", "--key", "k", "--sign-type", "hmac-sha256"];
        a.extend(params);
        assert!(run_args(&a).is_ok(), "sign type is case-insensitive");
    }

    #[test]
    fn pay_v2_matches_library() {
        let out = run_args(&[
            "pay-v2",
            "--key",
            "192006250b4c09247ec02edce69f6a2d",
            "--appid",
            "wx2421b1c4370ec43b",
            "--timestamp",
            "1395712654",
            "--noncestr",
            "e61463f8efa94090b1f366cccfbbb444",
            "--prepay-id",
            "wx20141027200939e6f4b8d5d40cba4e0c8",
        ])
        .unwrap();
        let p = jsapi::v2_with(
            "wx2421b1c4370ec43b",
            &PrepayId("wx20141027200939e6f4b8d5d40cba4e0c8".into()),
            "192006250b4c09247ec02edce69f6a2d",
            SignType::Md5,
            "1395712654",
            "e61463f8efa94090b1f366cccfbbb444",
        );
        assert_eq!(last_line(&out), p.pay_sign);
        assert!(out.contains("stringA: appId=wx2421b1c4370ec43b&nonceStr=e61463f8efa94090b1f366cccfbbb444&package=prepay_id=wx20141027200939e6f4b8d5d40cba4e0c8&signType=MD5&timeStamp=1395712654"));
    }

    fn keyfile() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.pem");
        let st = std::process::Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
            ])
            .arg(&p)
            .output()
            .expect("openssl");
        assert!(st.status.success());
        (dir, p)
    }

    #[test]
    fn v3_kinds_sign_with_the_key_file() {
        let (_d, p) = keyfile();
        let ps = p.to_str().unwrap();
        let key = MerchantKey::from_pem_file(&p).unwrap();
        let out = run_args(&[
            "pay-v3",
            "--private-key",
            ps,
            "--appid",
            "wx8888888888888888",
            "--timestamp",
            "1414561699",
            "--noncestr",
            "5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
            "--prepay-id",
            "wx201410272009395522657a690389285100",
        ])
        .unwrap();
        let msg = "wx8888888888888888\n1414561699\n5K8264ILTKCH16CQ2502SI8ZNMTM67VS\nprepay_id=wx201410272009395522657a690389285100\n";
        assert!(v3_sign::rsa_verify_base64(
            key.public_key(),
            msg.as_bytes(),
            last_line(&out)
        ));
        assert!(
            out.contains("\\nprepay_id=wx201410272009395522657a690389285100\\n\""),
            "{out}"
        );
        let body = r#"{"mchid":"1900000109"}"#;
        let out = run_args(&[
            "v3-request",
            "--private-key",
            ps,
            "--method",
            "post",
            "--path",
            "/v3/pay/transactions/out-trade-no/1217752501201407033233368018/close",
            "--timestamp",
            "1554208460",
            "--noncestr",
            "593BEC0C930BF1AFEB40B4A08C8FB242",
            "--body",
            body,
        ])
        .unwrap();
        let msg = format!("POST\n/v3/pay/transactions/out-trade-no/1217752501201407033233368018/close\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n{body}\n");
        assert!(v3_sign::rsa_verify_base64(
            key.public_key(),
            msg.as_bytes(),
            last_line(&out)
        ));
        assert!(!out.contains("PRIVATE KEY"));
        assert_eq!(out.lines().count(), 3, "{out}");
    }

    #[test]
    fn wrong_or_missing_arguments_are_clear_errors() {
        // clap refuses missing/unknown arguments with its own message.
        assert!(run_args(&["jssdk", "--ticket", "t"])
            .unwrap_err()
            .starts_with("clap:"));
        assert!(run_args(&["v2", "--key", "k"])
            .unwrap_err()
            .starts_with("clap:"));
        assert!(
            run_args(&["v2", "--key", "k", "--sign-type", "SHA1", "a=b"])
                .unwrap_err()
                .starts_with("clap:")
        );
        assert!(run_args(&["nope"]).unwrap_err().starts_with("clap:"));
        // Our own checks.
        let e = run_args(&[
            "jssdk",
            "--ticket",
            "t",
            "--noncestr",
            "n",
            "--timestamp",
            "14145x",
            "--url",
            "http://a",
        ])
        .unwrap_err();
        assert!(e.contains("--timestamp"), "{e}");
        let e = run_args(&[
            "jssdk",
            "--ticket",
            "t",
            "--noncestr",
            "n",
            "--timestamp",
            "1",
            "--url",
            "mp.weixin.qq.com",
        ])
        .unwrap_err();
        assert!(e.contains("--url"), "{e}");
        assert!(run_args(&["v2", "--key", "k", "novalue"])
            .unwrap_err()
            .contains("KEY=VALUE"));
        assert!(run_args(&["v2", "--key", "k", "a=1", "a=2"])
            .unwrap_err()
            .contains("twice"));
        assert!(run_args(&["v2", "--key", "k", "a=", "sign=X"])
            .unwrap_err()
            .contains("nothing to sign"));
        assert!(run_args(&["v2", "--key", "", "a=1"])
            .unwrap_err()
            .contains("--key"));
        let e = run_args(&[
            "pay-v3",
            "--private-key",
            "/nonexistent/key.pem",
            "--appid",
            "wx",
            "--timestamp",
            "1",
            "--noncestr",
            "n",
            "--prepay-id",
            "p",
        ])
        .unwrap_err();
        assert!(e.contains("/nonexistent/key.pem"), "{e}");
        let e = run_args(&[
            "v3-request",
            "--private-key",
            "/nonexistent",
            "--method",
            "FETCH",
            "--path",
            "/v3/x",
            "--timestamp",
            "1",
            "--noncestr",
            "n",
        ])
        .unwrap_err();
        assert!(e.contains("--method"), "{e}");
        let e = run_args(&[
            "v3-request",
            "--private-key",
            "/nonexistent",
            "--method",
            "GET",
            "--path",
            "v3/x",
            "--timestamp",
            "1",
            "--noncestr",
            "n",
        ])
        .unwrap_err();
        assert!(e.contains("--path"), "{e}");
        // A file that is not a key.
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("cert.pem");
        std::fs::write(&f, "hello").unwrap();
        let e = run_args(&[
            "pay-v3",
            "--private-key",
            f.to_str().unwrap(),
            "--appid",
            "wx",
            "--timestamp",
            "1",
            "--noncestr",
            "n",
            "--prepay-id",
            "p",
        ])
        .unwrap_err();
        assert!(e.contains("cannot use private key"), "{e}");
    }
}
