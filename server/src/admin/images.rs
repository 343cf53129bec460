//! `upload_image` (multipart, one file in the field `file`): a product picture.
//!
//! - At most [`MAX_UPLOAD_BYTES`] (413 beyond, before more is read).
//! - JPEG, PNG or WebP, known by the bytes themselves (`image::guess_format`), never by the
//!   request's file name or content type; anything else is 400 `validation`. Decoding runs off
//!   the async workers with limits (dimensions, memory), so a decompression bomb is refused.
//! - Cropped to the centre square and resized to the sizes the pages show (800 px on the product
//!   page, 240 px for the 64–160 px thumbnails at 1.5–2× pixel density), saved as JPEG (quality
//!   85, white behind transparency) under `{WXMALL_DATA_DIR}/uploads/`, named by the SHA-256 of
//!   the uploaded bytes — the same picture twice is one file — and served at `/uploads/…` with a
//!   year's cache lifetime (a name never changes its content).
//!
//! With several instances the data directory's `uploads/` must be shared storage (see
//! `deploy/README.md`), as the database is.

use std::path::{Path, PathBuf};

use axum::extract::{Multipart, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use image::{DynamicImage, ImageFormat, ImageReader, Limits};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{audit, error, field, internal, invalid, signed_in, AdminState};
use app::error::ErrorCode;

/// The largest file accepted.
pub const MAX_UPLOAD_BYTES: usize = 10 * 1024 * 1024;
/// Widths written (square pictures): the product page, and the thumbnails.
pub const SIZES: [u32; 2] = [800, 240];
/// Pictures larger than this on a side are refused before decoding.
const MAX_SIDE: u32 = 12_000;
/// Memory the decoder may use.
const MAX_DECODE_BYTES: u64 = 512 * 1024 * 1024;
/// Smallest side worth showing.
const MIN_SIDE: u32 = 100;

/// Where uploads live: `{data_dir}/uploads`.
pub fn uploads_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("uploads")
}

/// Why a file was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    NotAnImage,
    TooLarge { width: u32, height: u32 },
    TooSmall { width: u32, height: u32 },
    Broken(String),
}

impl Refused {
    fn message(&self) -> String {
        match self {
            Self::NotAnImage => "只能上传 JPEG、PNG 或 WebP 图片".into(),
            Self::TooLarge { width, height } => {
                format!("图片过大（{width}×{height}），每边最多 {MAX_SIDE} 像素")
            }
            Self::TooSmall { width, height } => {
                format!("图片过小（{width}×{height}），每边至少 {MIN_SIDE} 像素")
            }
            Self::Broken(e) => format!("图片无法读取：{e}"),
        }
    }
}

/// Decodes `bytes` (JPEG, PNG or WebP by their content) and renders each of [`SIZES`] as JPEG.
pub fn render(bytes: &[u8]) -> Result<Vec<(u32, Vec<u8>)>, Refused> {
    let format = image::guess_format(bytes).map_err(|_| Refused::NotAnImage)?;
    if !matches!(
        format,
        ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP
    ) {
        return Err(Refused::NotAnImage);
    }
    // The header first (no limits: reading it allocates nothing), so a size is refused with
    // its own message before any pixel is decoded.
    let (width, height) = ImageReader::with_format(std::io::Cursor::new(bytes), format)
        .into_dimensions()
        .map_err(|e| Refused::Broken(e.to_string()))?;
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(Refused::TooLarge { width, height });
    }
    if width < MIN_SIDE || height < MIN_SIDE {
        return Err(Refused::TooSmall { width, height });
    }
    let mut reader = ImageReader::with_format(std::io::Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let img = reader
        .decode()
        .map_err(|e| Refused::Broken(e.to_string()))?;
    // The centre square, flattened on white (JPEG has no transparency).
    let side = width.min(height);
    let square = img.crop_imm((width - side) / 2, (height - side) / 2, side, side);
    let rgba = square.to_rgba8();
    let mut flat = image::RgbImage::new(side, side);
    for (x, y, p) in rgba.enumerate_pixels() {
        let a = p[3] as u32;
        let blend = |c: u8| ((c as u32 * a + 255 * (255 - a)) / 255) as u8;
        flat.put_pixel(x, y, image::Rgb([blend(p[0]), blend(p[1]), blend(p[2])]));
    }
    let flat = DynamicImage::ImageRgb8(flat);
    let mut out = Vec::new();
    for size in SIZES {
        let resized = if side > size {
            flat.resize_exact(size, size, image::imageops::FilterType::CatmullRom)
        } else {
            flat.clone()
        };
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 85)
            .encode_image(&resized)
            .map_err(|e| Refused::Broken(e.to_string()))?;
        out.push((size, jpeg));
    }
    Ok(out)
}

/// `{hash}.jpg` for the product page's size, `{hash}-{size}.jpg` for the others.
fn file_name(hash: &str, size: u32) -> String {
    if size == SIZES[0] {
        format!("{hash}.jpg")
    } else {
        format!("{hash}-{size}.jpg")
    }
}

pub(super) async fn upload_image(
    State(st): State<AdminState>,
    headers: HeaderMap,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let admin = match signed_in(&st, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let mut multipart = match multipart {
        Ok(m) => m,
        Err(e) => {
            return error(
                ErrorCode::BadRequest,
                &format!("需要 multipart/form-data：{e}"),
            )
        }
    };
    let mut file = None;
    loop {
        match multipart.next_field().await {
            Ok(Some(f)) if f.name() == Some("file") => match f.bytes().await {
                Ok(b) => {
                    file = Some(b);
                    break;
                }
                Err(e) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                    return error(
                        ErrorCode::PayloadTooLarge,
                        &format!("图片最大 {} MB", MAX_UPLOAD_BYTES / 1024 / 1024),
                    )
                }
                Err(e) => return error(ErrorCode::BadRequest, &format!("上传中断：{e}")),
            },
            Ok(Some(_)) => continue,
            Ok(None) => break,
            Err(e) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                return error(
                    ErrorCode::PayloadTooLarge,
                    &format!("图片最大 {} MB", MAX_UPLOAD_BYTES / 1024 / 1024),
                )
            }
            Err(e) => return error(ErrorCode::BadRequest, &format!("上传中断：{e}")),
        }
    }
    let Some(bytes) = file else {
        return invalid(vec![field("file", "请选择图片（表单字段 file）")]);
    };
    if bytes.len() > MAX_UPLOAD_BYTES {
        return error(
            ErrorCode::PayloadTooLarge,
            &format!("图片最大 {} MB", MAX_UPLOAD_BYTES / 1024 / 1024),
        );
    }
    let hash = hex::encode(Sha256::digest(&bytes));
    let hash = &hash[..32];
    let dir = st.uploads.clone();
    let name = hash.to_string();
    let rendered = tokio::task::spawn_blocking(
        move || -> Result<Result<Vec<u32>, Refused>, std::io::Error> {
            let rendered = match render(&bytes) {
                Ok(r) => r,
                Err(refused) => return Ok(Err(refused)),
            };
            std::fs::create_dir_all(&dir)?;
            let mut sizes = Vec::new();
            for (size, jpeg) in rendered {
                crate::assets::write_atomic(&dir.join(file_name(&name, size)), &jpeg)?;
                sizes.push(size);
            }
            Ok(Ok(sizes))
        },
    )
    .await;
    let sizes = match rendered {
        Ok(Ok(Ok(sizes))) => sizes,
        Ok(Ok(Err(refused))) => {
            tracing::info!(?refused, "upload refused");
            return invalid(vec![field("file", &refused.message())]);
        }
        Ok(Err(e)) => return internal(e),
        Err(e) => return internal(e),
    };
    let path = format!("/uploads/{}", file_name(hash, SIZES[0]));
    let detail = json!({"path": path});
    if let Err(e) = audit(&st.pool, &admin, "upload_image", detail).await {
        return internal(e);
    }
    Json(json!({
        "path": path,
        "sizes": sizes.iter().map(|s| json!({"size": s, "path": format!("/uploads/{}", file_name(hash, *s))})).collect::<Vec<_>>(),
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(img: DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    #[test]
    fn png_jpeg_and_webp_become_square_jpegs_of_each_size() {
        let img = DynamicImage::ImageRgba8(image::RgbaImage::from_fn(1200, 900, |x, _| {
            image::Rgba([(x % 256) as u8, 80, 160, if x < 600 { 255 } else { 0 }])
        }));
        for format in [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::WebP] {
            let img = if format == ImageFormat::Jpeg {
                DynamicImage::ImageRgb8(img.to_rgb8())
            } else {
                img.clone()
            };
            let out = render(&encode(img, format)).unwrap();
            assert_eq!(out.iter().map(|o| o.0).collect::<Vec<_>>(), SIZES);
            for (size, jpeg) in out {
                assert_eq!(image::guess_format(&jpeg).unwrap(), ImageFormat::Jpeg);
                let back = image::load_from_memory(&jpeg).unwrap();
                assert_eq!((back.width(), back.height()), (size, size), "{format:?}");
            }
        }
    }

    #[test]
    fn the_bytes_decide_not_the_name() {
        assert_eq!(render(b"GIF89a\x01\x00\x01\x00"), Err(Refused::NotAnImage));
        assert_eq!(
            render(b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
            Err(Refused::NotAnImage)
        );
        assert_eq!(render(b"%PDF-1.7 not a picture"), Err(Refused::NotAnImage));
        // A PNG header with nothing after it.
        assert!(matches!(
            render(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            Err(Refused::Broken(_))
        ));
    }

    #[test]
    fn too_small_or_too_large_is_refused_before_decoding() {
        let tiny = encode(DynamicImage::new_rgb8(40, 300), ImageFormat::Png);
        assert_eq!(
            render(&tiny),
            Err(Refused::TooSmall {
                width: 40,
                height: 300
            })
        );
        // Wider than allowed: refused from the header, before 12,001 × 100 pixels are decoded.
        let wide = encode(DynamicImage::new_luma8(MAX_SIDE + 1, 100), ImageFormat::Png);
        assert_eq!(
            render(&wide),
            Err(Refused::TooLarge {
                width: MAX_SIDE + 1,
                height: 100
            })
        );
    }
}
