//! Static assets: the built site (`/pkg`, images, favicon) served by tower-http's `ServeDir`
//! ahead of the Leptos fallback, with precompressed brotli/gzip siblings and cache headers.
//!
//! `precompress` writes `file.br` / `file.gz` next to each compressible file once (at start,
//! off the async workers); `ServeDir` then picks the best one the browser accepts.

use axum::http::{header, HeaderValue, Request};
use axum::middleware::Next;
use axum::response::Response;
use std::io::Write;
use std::path::{Path, PathBuf};

const COMPRESSIBLE: &[&str] = &["js", "wasm", "css", "svg", "html", "json", "txt"];

fn compressible(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| COMPRESSIBLE.contains(&e))
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else if compressible(&path) {
            out.push(path);
        }
    }
}

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

/// Creates missing or stale `.br` and `.gz` files for every compressible file under `root`.
/// Returns how many files it compressed.
pub fn precompress(root: &Path) -> std::io::Result<usize> {
    let mut files = Vec::new();
    files_under(root, &mut files);
    let mut done = 0;
    for file in files {
        let br = PathBuf::from(format!("{}.br", file.display()));
        let gz = PathBuf::from(format!("{}.gz", file.display()));
        if is_fresh(&file, &br) && is_fresh(&file, &gz) {
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
        done += 1;
    }
    Ok(done)
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
        assert_eq!(precompress(dir.path()).unwrap(), 1);
        assert_eq!(
            precompress(dir.path()).unwrap(),
            0,
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
            let results: Vec<std::io::Result<usize>> = std::thread::scope(|s| {
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
