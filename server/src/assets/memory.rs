//! The site's static files served from memory.
//!
//! `ServeDir` opens, reads and closes a file for every request, through tokio's blocking pool:
//! at 64 connections a 1 KB icon served about as fast as a rendered page. Here each file is
//! read once, the first time it is asked for, together with its precompressed `.br` / `.gz`
//! siblings, and every later request is answered from those bytes.
//!
//! What is kept: regular files under the site root up to [`MAX_FILE_BYTES`], [`MAX_KEPT_BYTES`]
//! in all (the release site is ≈2 MB with its siblings). A compressible file is kept only once
//! its siblings are fresh (the start's `precompress` may still be writing them); until then, and
//! for whatever is not kept, `ServeDir` answers as before. So do requests this layer leaves
//! alone: other methods than GET and HEAD, ranges, and paths it does not take literally
//! (percent-escapes, `..`, hidden names).
//!
//! The site is read as it is at the first request for each file; a new site means a new start
//! (the deployment's update walk-through restarts the shop, and bundle names change per build).

use super::{compressible, is_fresh};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

/// Larger files are served from disk (a debug build's wasm is tens of MB).
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;
/// At most this much is kept, siblings included; files past it are served from disk.
pub const MAX_KEPT_BYTES: usize = 64 * 1024 * 1024;

/// The files kept so far (cheap to clone: one shared map).
#[derive(Clone)]
pub struct MemorySite {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    files: RwLock<HashMap<String, Arc<KeptFile>>>,
    kept_bytes: AtomicUsize,
}

/// One file and its compressed forms, with the headers that describe it.
struct KeptFile {
    content_type: HeaderValue,
    last_modified: HeaderValue,
    /// Whole seconds, as HTTP dates carry them.
    modified: Option<SystemTime>,
    compressible: bool,
    identity: Bytes,
    br: Option<Bytes>,
    gzip: Option<Bytes>,
}

impl KeptFile {
    fn size(&self) -> usize {
        self.identity.len()
            + self.br.as_ref().map_or(0, Bytes::len)
            + self.gzip.as_ref().map_or(0, Bytes::len)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    Br,
    Gzip,
    Identity,
}

impl MemorySite {
    pub fn new(root: &Path) -> Self {
        Self {
            inner: Arc::new(Inner {
                root: root.to_path_buf(),
                files: RwLock::new(HashMap::new()),
                kept_bytes: AtomicUsize::new(0),
            }),
        }
    }

    /// How many files are kept.
    pub fn kept(&self) -> usize {
        self.read().len()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<KeptFile>>> {
        self.inner.files.read().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, path: &str) -> Option<Arc<KeptFile>> {
        self.read().get(path).cloned()
    }

    /// Reads `path` (a request path) and keeps it, if it is a file this layer serves.
    fn load(&self, path: &str) -> Option<Arc<KeptFile>> {
        let file = self.inner.root.join(path.trim_start_matches('/'));
        let meta = std::fs::metadata(&file).ok()?;
        if !meta.is_file() || meta.len() > MAX_FILE_BYTES {
            return None;
        }
        let compressible = compressible(&file);
        let (br, gzip) = if compressible {
            let br = PathBuf::from(format!("{}.br", file.display()));
            let gz = PathBuf::from(format!("{}.gz", file.display()));
            if !is_fresh(&file, &br) || !is_fresh(&file, &gz) {
                return None;
            }
            (
                Some(Bytes::from(std::fs::read(br).ok()?)),
                Some(Bytes::from(std::fs::read(gz).ok()?)),
            )
        } else {
            (None, None)
        };
        let modified = meta.modified().ok().map(whole_seconds);
        let kept = Arc::new(KeptFile {
            content_type: mime_guess::from_path(&file).first_raw().map_or_else(
                || HeaderValue::from_static("application/octet-stream"),
                HeaderValue::from_static,
            ),
            last_modified: modified
                .and_then(|m| HeaderValue::from_str(&httpdate::fmt_http_date(m)).ok())
                .unwrap_or_else(|| HeaderValue::from_static("")),
            modified,
            compressible,
            identity: Bytes::from(std::fs::read(&file).ok()?),
            br,
            gzip,
        });
        let size = kept.size();
        let mut files = self.inner.files.write().unwrap_or_else(|e| e.into_inner());
        if let Some(already) = files.get(path) {
            return Some(already.clone());
        }
        if self.inner.kept_bytes.load(Ordering::Relaxed) + size > MAX_KEPT_BYTES {
            // Served this once from what was just read; the next request goes to disk.
            return Some(kept);
        }
        self.inner.kept_bytes.fetch_add(size, Ordering::Relaxed);
        files.insert(path.to_string(), kept.clone());
        Some(kept)
    }
}

fn whole_seconds(t: SystemTime) -> SystemTime {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(d.as_secs()),
        Err(_) => t,
    }
}

/// Paths taken literally: `/`-separated names of letters, digits, `-`, `_` and `.`, none
/// starting with a dot. Anything else (escapes, `..`, `//`, a directory's trailing `/`) is
/// `ServeDir`'s to decode and judge.
fn literal_path(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    !rest.is_empty()
        && rest.split('/').all(|name| {
            !name.is_empty()
                && !name.starts_with('.')
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        })
}

/// The best form of a file the client accepts (`Accept-Encoding`, with q-values; `*` counts
/// for encodings not named). Brotli before gzip when both are equally welcome.
fn preferred_encoding(headers: &HeaderMap) -> Encoding {
    let mut br: Option<f32> = None;
    let mut gzip: Option<f32> = None;
    let mut any: Option<f32> = None;
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .find_map(|p| {
                    let p = p.trim();
                    p.strip_prefix("q=").or_else(|| p.strip_prefix("Q="))
                })
                .map_or(1.0, |q| q.trim().parse::<f32>().unwrap_or(0.0));
            match name.as_str() {
                "br" => br = Some(q),
                "gzip" | "x-gzip" => gzip = Some(q),
                "*" => any = Some(q),
                _ => {}
            }
        }
    }
    let br = br.or(any).unwrap_or(0.0);
    let gzip = gzip.or(any).unwrap_or(0.0);
    if br > 0.0 && br >= gzip {
        Encoding::Br
    } else if gzip > 0.0 {
        Encoding::Gzip
    } else {
        Encoding::Identity
    }
}

/// Middleware in front of `ServeDir`: answers from memory what it can, passes on the rest.
pub async fn serve(State(site): State<MemorySite>, req: Request, next: Next) -> Response {
    let method = req.method();
    if (method != Method::GET && method != Method::HEAD)
        || req.headers().contains_key(header::RANGE)
        || !literal_path(req.uri().path())
    {
        return next.run(req).await;
    }
    let path = req.uri().path().to_string();
    let kept = match site.get(&path) {
        Some(kept) => kept,
        None => {
            let loader = site.clone();
            let wanted = path.clone();
            match tokio::task::spawn_blocking(move || loader.load(&wanted)).await {
                Ok(Some(kept)) => kept,
                _ => return next.run(req).await,
            }
        }
    };
    answer(&kept, req.method() == Method::HEAD, req.headers())
}

fn answer(file: &KeptFile, head: bool, headers: &HeaderMap) -> Response {
    let mut res = Response::new(Body::empty());
    let h = res.headers_mut();
    if !file.last_modified.is_empty() {
        h.insert(header::LAST_MODIFIED, file.last_modified.clone());
    }
    if file.compressible {
        h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    let not_modified = file.modified.is_some_and(|modified| {
        headers
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .is_some_and(|since| modified <= since)
    });
    if not_modified {
        *res.status_mut() = StatusCode::NOT_MODIFIED;
        return res;
    }
    let (bytes, encoding) = match (preferred_encoding(headers), &file.br, &file.gzip) {
        (Encoding::Br, Some(br), _) => (br.clone(), Some("br")),
        (Encoding::Br | Encoding::Gzip, _, Some(gz)) => (gz.clone(), Some("gzip")),
        _ => (file.identity.clone(), None),
    };
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, file.content_type.clone());
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(encoding) = encoding {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    if !head {
        *res.body_mut() = Body::from(bytes);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use tower::ServiceExt;
    use tower_http::services::ServeDir;

    /// The site as `routes` serves it: memory first, `ServeDir` behind.
    fn site_router(root: &Path) -> (Router, MemorySite) {
        let memory = MemorySite::new(root);
        let router = Router::new()
            .fallback_service(ServeDir::new(root).precompressed_br().precompressed_gzip())
            .layer(axum::middleware::from_fn_with_state(memory.clone(), serve));
        (router, memory)
    }

    async fn get(router: &Router, path: &str, headers: &[(&str, &str)]) -> Response {
        let mut req = Request::builder().uri(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        router
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    async fn body(res: Response) -> Vec<u8> {
        axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec()
    }

    fn site() -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("pkg")).unwrap();
        let css = ".card { color: #07c160; }\n".repeat(100);
        std::fs::write(dir.path().join("pkg/wxmall.css"), &css).unwrap();
        std::fs::write(dir.path().join("photo.png"), b"\x89PNG not really").unwrap();
        super::super::precompress(dir.path()).unwrap();
        (dir, css)
    }

    #[tokio::test]
    async fn a_file_is_read_once_and_then_answered_from_memory() {
        let (dir, css) = site();
        let (router, memory) = site_router(dir.path());
        let first = get(&router, "/pkg/wxmall.css", &[]).await;
        assert_eq!(first.status(), StatusCode::OK);
        assert_eq!(body(first).await, css.as_bytes());
        assert_eq!(memory.kept(), 1);
        // The disk no longer has it: the answer comes from memory, whole.
        for f in ["pkg/wxmall.css", "pkg/wxmall.css.br", "pkg/wxmall.css.gz"] {
            std::fs::remove_file(dir.path().join(f)).unwrap();
        }
        let again = get(&router, "/pkg/wxmall.css", &[("accept-encoding", "gzip")]).await;
        assert_eq!(again.status(), StatusCode::OK);
        assert_eq!(again.headers()[header::CONTENT_ENCODING], "gzip");
        let mut plain = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(&body(again).await[..]),
            &mut plain,
        )
        .unwrap();
        assert_eq!(plain, css);
        // What is not there is still the fallback's (404 here).
        assert_eq!(
            get(&router, "/pkg/other.css", &[]).await.status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(memory.kept(), 1);
    }

    #[tokio::test]
    async fn answers_carry_what_serve_dir_s_carried() {
        let (dir, css) = site();
        let (router, _memory) = site_router(dir.path());
        let disk = ServeDir::new(dir.path())
            .precompressed_br()
            .precompressed_gzip();
        for accept in [
            "br",
            "gzip, deflate, br",
            "gzip",
            "br;q=0, gzip",
            "identity",
            "",
        ] {
            let mine = get(&router, "/pkg/wxmall.css", &[("accept-encoding", accept)]).await;
            let theirs = disk
                .clone()
                .oneshot(
                    Request::builder()
                        .uri("/pkg/wxmall.css")
                        .header("accept-encoding", accept)
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            assert_eq!(mine.status(), StatusCode::OK, "{accept}");
            // (Last-Modified: ServeDir gives the sibling's date, this the file's, for every form.)
            assert!(mine.headers().contains_key(header::LAST_MODIFIED));
            for name in [
                header::CONTENT_TYPE,
                header::CONTENT_ENCODING,
                header::CONTENT_LENGTH,
            ] {
                assert_eq!(
                    mine.headers().get(&name),
                    theirs.headers().get(&name),
                    "{name} for accept-encoding {accept:?}"
                );
            }
            assert_eq!(mine.headers()[header::VARY], "accept-encoding");
            let encoding = mine
                .headers()
                .get(header::CONTENT_ENCODING)
                .map(|v| v.to_str().unwrap().to_string());
            let bytes = body(mine).await;
            let plain = match encoding.as_deref() {
                Some("br") => {
                    let mut out = Vec::new();
                    brotli::BrotliDecompress(&mut &bytes[..], &mut out).unwrap();
                    out
                }
                Some("gzip") => {
                    let mut out = Vec::new();
                    std::io::Read::read_to_end(
                        &mut flate2::read::GzDecoder::new(&bytes[..]),
                        &mut out,
                    )
                    .unwrap();
                    out
                }
                _ => bytes,
            };
            assert_eq!(plain, css.as_bytes(), "{accept}");
        }
        // Not compressible: as it is, with its own type and no Vary.
        let png = get(&router, "/photo.png", &[("accept-encoding", "br")]).await;
        assert_eq!(png.headers()[header::CONTENT_TYPE], "image/png");
        assert!(png.headers().get(header::CONTENT_ENCODING).is_none());
        assert!(png.headers().get(header::VARY).is_none());
        // HEAD: the headers, the length, no body.
        let head = router
            .clone()
            .oneshot(
                Request::builder()
                    .method(Method::HEAD)
                    .uri("/pkg/wxmall.css")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(
            head.headers()[header::CONTENT_LENGTH],
            css.len().to_string()
        );
        assert!(body(head).await.is_empty());
        // A revalidation: 304 while unchanged.
        let last_modified = get(&router, "/pkg/wxmall.css", &[]).await.headers()
            [header::LAST_MODIFIED]
            .to_str()
            .unwrap()
            .to_string();
        let revalidated = get(
            &router,
            "/pkg/wxmall.css",
            &[("if-modified-since", last_modified.as_str())],
        )
        .await;
        assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
        assert!(body(revalidated).await.is_empty());
        let older = get(
            &router,
            "/pkg/wxmall.css",
            &[("if-modified-since", "Thu, 01 Jan 1970 00:00:00 GMT")],
        )
        .await;
        assert_eq!(older.status(), StatusCode::OK);
        // A range is ServeDir's (206).
        let range = get(&router, "/pkg/wxmall.css", &[("range", "bytes=0-9")]).await;
        assert_eq!(range.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(body(range).await, &css.as_bytes()[..10]);
    }

    #[tokio::test]
    async fn a_file_whose_siblings_are_not_written_yet_is_not_kept_until_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let js = "console.log('wxmall');\n".repeat(50);
        std::fs::write(dir.path().join("app.js"), &js).unwrap();
        let (router, memory) = site_router(dir.path());
        let res = get(&router, "/app.js", &[("accept-encoding", "br")]).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(res.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(body(res).await, js.as_bytes());
        assert_eq!(memory.kept(), 0, "kept without its compressed forms");
        super::super::precompress(dir.path()).unwrap();
        let res = get(&router, "/app.js", &[("accept-encoding", "br")]).await;
        assert_eq!(res.headers()[header::CONTENT_ENCODING], "br");
        assert_eq!(memory.kept(), 1);
    }

    #[test]
    fn only_literal_paths_are_taken() {
        for ok in [
            "/favicon.svg",
            "/pkg/wxmall.8kfzd1rX2DqvHGRk2t1O7A.wasm",
            "/images/a_b-c.png",
        ] {
            assert!(literal_path(ok), "{ok}");
        }
        for no in [
            "/",
            "/pkg/",
            "/pkg//x.js",
            "/../etc/passwd",
            "/pkg/../../secret",
            "/.env",
            "/pkg/%2e%2e/x",
            "/a b.png",
            "relative.js",
        ] {
            assert!(!literal_path(no), "{no}");
        }
    }

    #[test]
    fn encodings_as_the_client_weighs_them() {
        let enc = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
            preferred_encoding(&h)
        };
        assert_eq!(enc("gzip, deflate, br"), Encoding::Br);
        assert_eq!(enc("gzip;q=1.0, br;q=0.5"), Encoding::Gzip);
        assert_eq!(enc("br;q=0, gzip"), Encoding::Gzip);
        assert_eq!(enc("*"), Encoding::Br);
        assert_eq!(enc("*;q=0"), Encoding::Identity);
        assert_eq!(enc("identity"), Encoding::Identity);
        assert_eq!(enc("deflate"), Encoding::Identity);
        assert_eq!(preferred_encoding(&HeaderMap::new()), Encoding::Identity);
    }
}
