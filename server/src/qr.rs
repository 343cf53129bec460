//! QR pictures of a URL: SVG (printable at any size) and PNG (for places that take only
//! pictures), both with the four-module quiet zone scanners need.

/// The code as SVG, at least `min` px wide.
pub fn svg(text: &str, min: u32) -> Result<String, String> {
    let code = qrcode::QrCode::new(text.as_bytes())
        .map_err(|e| format!("cannot draw the QR code: {e}"))?;
    Ok(code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(min, min)
        .quiet_zone(true)
        .build())
}

/// The code as a black-on-white PNG, `scale` px per module.
pub fn png(text: &str, scale: u32) -> Result<Vec<u8>, String> {
    let code = qrcode::QrCode::new(text.as_bytes())
        .map_err(|e| format!("cannot draw the QR code: {e}"))?;
    let width = code.width() as u32;
    let modules = code.to_colors();
    let quiet = 4;
    let side = (width + 2 * quiet) * scale;
    let img = image::GrayImage::from_fn(side, side, |x, y| {
        let (mx, my) = (x / scale, y / scale);
        let dark = mx >= quiet
            && my >= quiet
            && mx < width + quiet
            && my < width + quiet
            && modules[((my - quiet) * width + (mx - quiet)) as usize] == qrcode::Color::Dark;
        image::Luma([if dark { 0 } else { 255 }])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| format!("cannot write the PNG: {e}"))?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_is_square_with_a_quiet_zone_and_dark_finder_corners() {
        let bytes = png("https://shop.example.com/product/7", 8).unwrap();
        let img = image::load_from_memory(&bytes).unwrap().to_luma8();
        assert_eq!(img.width(), img.height());
        assert_eq!(img.width() % 8, 0);
        // The quiet zone is white; the top-left finder pattern starts right after it.
        assert_eq!(img.get_pixel(0, 0)[0], 255);
        assert_eq!(img.get_pixel(4 * 8 + 1, 4 * 8 + 1)[0], 0);
        assert_eq!(img.get_pixel(4 * 8 - 1, 4 * 8 - 1)[0], 255);
    }

    #[test]
    fn svg_is_an_svg() {
        let s = svg("https://shop.example.com/", 200).unwrap();
        assert!(s.contains("<svg") && s.contains("</svg>"));
    }
}
