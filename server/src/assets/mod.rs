//! Static assets: the built site (`/pkg`, images, favicon) served by tower-http's `ServeDir`
//! ahead of the Leptos fallback, with precompressed brotli/gzip siblings and cache headers.
//!
//! `precompress` writes `file.br` / `file.gz` next to each compressible file once (at install
//! with `wxmall precompress`, or at start, off the async workers). [`memory`] then answers from
//! memory with the best form the browser accepts; `ServeDir` serves what it does not keep.

use axum::http::{header, HeaderValue, Request};
use axum::middleware::Next;
use axum::response::Response;
use std::io::Write;
use std::path::{Path, PathBuf};

pub mod memory;

const COMPRESSIBLE: &[&str] = &["js", "wasm", "css", "svg", "html", "json", "txt"];

fn compressible(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| COMPRESSIBLE.contains(&e))
}

/// Every file under `dir` (recursively).
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// A temporary file [`write_atomic`] left behind (its process was stopped mid-write) once it is
/// this old: no compression takes that long.
const STALE_TEMPORARY: std::time::Duration = std::time::Duration::from_secs(600);

fn is_fresh(original: &Path, compressed: &Path) -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    matches!((modified(original), modified(compressed)), (Some(o), Some(c)) if c >= o)
}

/// Writes `bytes` to `path` atomically (temp file + rename). The temporary name is this
/// process's own: several instances starting on one site directory compress at the same time,
/// and with one shared name one instance's rename took the other's file away (its start failed).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!(
        "tmp-compress-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// What [`precompress`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Precompressed {
    /// Files whose `.br` and `.gz` were (re)written.
    pub compressed: usize,
    /// Files whose siblings were already newer than them.
    pub fresh: usize,
}

/// Creates missing or stale `.br` and `.gz` files for every compressible file under `root`, and
/// removes temporary files an interrupted run left (older than ten minutes).
pub fn precompress(root: &Path) -> std::io::Result<Precompressed> {
    let mut files = Vec::new();
    files_under(root, &mut files);
    let mut done = Precompressed::default();
    for file in files {
        if file.to_string_lossy().contains(".tmp-compress-") {
            let age = std::fs::metadata(&file)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|m| m.elapsed().ok());
            if age.is_some_and(|a| a > STALE_TEMPORARY) {
                let _ = std::fs::remove_file(&file);
            }
            continue;
        }
        if !compressible(&file) {
            continue;
        }
        let br = PathBuf::from(format!("{}.br", file.display()));
        let gz = PathBuf::from(format!("{}.gz", file.display()));
        if is_fresh(&file, &br) && is_fresh(&file, &gz) {
            done.fresh += 1;
            continue;
        }
        let data = std::fs::read(&file)?;
        let mut brotli_out = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut brotli_out, 64 * 1024, 11, 22);
            w.write_all(&data)?;
        }
        write_atomic(&br, &brotli_out)?;
        let mut gz_enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz_enc.write_all(&data)?;
        write_atomic(&gz, &gz_enc.finish()?)?;
        done.compressed += 1;
    }
    Ok(done)
}

/// Why the site cannot be served as it is, if it cannot: its bundle has content-hashed file
/// names (`pkg/wxmall.<hash>.js`, a release build) but `hash_file` (cargo-leptos's `hash.txt`)
/// is missing, so every page would link `/pkg/wxmall.js`, which does not exist, and no page
/// would hydrate, style or pay.
pub fn bundle_problem(site_root: &Path, hash_file: Option<&Path>) -> Option<String> {
    if hash_file.is_some_and(|f| f.exists()) {
        return None;
    }
    let pkg = site_root.join("pkg");
    let plain = pkg.join("wxmall.js").exists();
    let hashed = std::fs::read_dir(&pkg).ok()?.flatten().any(|e| {
        let name = e.file_name();
        let name = name.to_string_lossy();
        name.starts_with("wxmall.")
            && name.ends_with(".js")
            && is_hashed_bundle(&format!("/pkg/{name}"))
    });
    (hashed && !plain).then(|| {
        format!(
            "the site at {} has content-hashed bundle files (pkg/wxmall.<hash>.js) but cargo-leptos's \
             hash.txt is not at {}: copy target/release/hash.txt of the same build there, or set \
             LEPTOS_HASH_FILE_NAME to its path",
            site_root.display(),
            hash_file.map_or_else(|| "beside the binary".to_string(), |f| f.display().to_string())
        )
    })
}

/// Cache lifetimes: hashed bundle files never change (a year, immutable); everything else
/// is revalidated daily.
pub async fn cache_headers(req: Request<axum::body::Body>, next: Next) -> Response {
    let immutable = is_hashed_bundle(req.uri().path());
    let mut res = next.run(req).await;
    if res.status().is_success() || res.status() == axum::http::StatusCode::NOT_MODIFIED {
        let value = if immutable {
            "public, max-age=31536000, immutable"
        } else {
            "public, max-age=86400"
        };
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(value));
    }
    res
}

/// `/pkg/wxmall.0a1b2c3d….js`: cargo-leptos's content-hashed names (`hash-files = true`).
fn is_hashed_bundle(path: &str) -> bool {
    let Some(name) = path.strip_prefix("/pkg/") else {
        return false;
    };
    // The hash is 22 characters of URL-safe base64 between two dots.
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() >= 3
        && parts[1..parts.len() - 1].iter().any(|part| {
            part.len() >= 16
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hashed_bundle_without_its_hash_file_is_refused_with_the_fix() {
        let site = tempfile::tempdir().unwrap();
        let pkg = site.path().join("pkg");
        std::fs::create_dir_all(&pkg).unwrap();
        let hash_file = site.path().join("hash.txt");
        // No bundle at all (a fresh checkout): nothing to say.
        assert_eq!(bundle_problem(site.path(), Some(&hash_file)), None);
        // A dev build's plain names: fine without hash.txt.
        std::fs::write(pkg.join("wxmall.js"), "js").unwrap();
        assert_eq!(bundle_problem(site.path(), Some(&hash_file)), None);
        // A release build's hashed names without hash.txt: refused, naming the file and the fix.
        std::fs::remove_file(pkg.join("wxmall.js")).unwrap();
        std::fs::write(pkg.join("wxmall.8kfzd1rX2DqvHGRk2t1O7A.js"), "js").unwrap();
        let problem = bundle_problem(site.path(), Some(&hash_file)).expect("refused");
        assert!(
            problem.contains(&hash_file.display().to_string()),
            "{problem}"
        );
        assert!(problem.contains("LEPTOS_HASH_FILE_NAME"), "{problem}");
        assert!(bundle_problem(site.path(), None).is_some());
        // With hash.txt where it is looked for: fine.
        std::fs::write(&hash_file, "js: 8kfzd1rX2DqvHGRk2t1O7A").unwrap();
        assert_eq!(bundle_problem(site.path(), Some(&hash_file)), None);
    }

    #[test]
    fn hashed_bundle_names() {
        assert!(is_hashed_bundle("/pkg/wxmall.8kfzd1rX2DqvHGRk2t1O7A.js"));
        assert!(is_hashed_bundle("/pkg/wxmall.0gR2lMmQET-IJW7jysJV1Q.js"));
        assert!(is_hashed_bundle("/pkg/wxmall.CMh4elFyd_6F5j9vN33N7Q.wasm"));
        assert!(!is_hashed_bundle("/pkg/wxmall.js"));
        assert!(!is_hashed_bundle("/images/products/orange.svg"));
    }

    #[test]
    fn precompress_writes_decodable_siblings_once() {
        let dir = tempfile::tempdir().unwrap();
        let js = dir.path().join("app.js");
        let body = "console.log('hello');\n".repeat(200);
        std::fs::write(&js, &body).unwrap();
        std::fs::write(dir.path().join("photo.png"), b"not compressible").unwrap();
        // A temporary file of a run stopped mid-write an hour ago, and one being written now.
        let stale = dir.path().join("app.js.tmp-compress-4242-ThreadId(3)");
        let current = dir.path().join("app.css.tmp-compress-4243-ThreadId(2)");
        std::fs::write(&stale, b"half").unwrap();
        std::fs::write(&current, b"half").unwrap();
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(&stale)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
        assert_eq!(
            precompress(dir.path()).unwrap(),
            Precompressed {
                compressed: 1,
                fresh: 0
            }
        );
        assert!(!stale.exists(), "an interrupted run's leftover is removed");
        assert!(
            current.exists(),
            "another process's file in progress is left alone"
        );
        assert_eq!(
            precompress(dir.path()).unwrap(),
            Precompressed {
                compressed: 0,
                fresh: 1
            },
            "fresh siblings are kept"
        );
        let gz = std::fs::read(dir.path().join("app.js.gz")).unwrap();
        let mut out = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut out)
            .unwrap();
        assert_eq!(out, body);
        let br = std::fs::read(dir.path().join("app.js.br")).unwrap();
        let mut out = Vec::new();
        brotli::BrotliDecompress(&mut &br[..], &mut out).unwrap();
        assert_eq!(out, body.as_bytes());
        assert!(!dir.path().join("photo.png.gz").exists());
    }

    #[test]
    fn instances_compressing_one_site_at_once_all_start() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..8 {
            let body = format!("export const part{i} = {:?};\n", "x".repeat(20_000 + i));
            std::fs::write(dir.path().join(format!("part{i}.js")), body).unwrap();
        }
        for _round in 0..3 {
            for e in std::fs::read_dir(dir.path()).unwrap().flatten() {
                let p = e.path();
                if matches!(p.extension().and_then(|x| x.to_str()), Some("br" | "gz")) {
                    std::fs::remove_file(p).unwrap();
                }
            }
            let results: Vec<std::io::Result<Precompressed>> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..4)
                    .map(|_| s.spawn(|| precompress(dir.path())))
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            for r in results {
                assert!(r.is_ok(), "{r:?}");
            }
        }
        let leftovers = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains("tmp-compress"))
            .count();
        assert_eq!(leftovers, 0);
    }
}
