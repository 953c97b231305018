//! QR codes for the terminal: invite codes (WIRE.md §5) and a relay's
//! address, drawn with half-block characters (two modules per character
//! row), error correction level M.

use qrcode::render::unicode::Dense1x2;
use qrcode::{EcLevel, QrCode};

/// The text cannot be put in a QR code (too long).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("text of {len} bytes does not fit in a QR code")]
pub struct QrError {
    /// The text length.
    pub len: usize,
}

/// Renders `text` as a QR code of half-block characters, dark modules on a
/// light background with the quiet zone, ready to print to a terminal.
///
/// # Errors
/// [`QrError`] when the text is too long.
pub fn render(text: &str) -> Result<String, QrError> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
        .map_err(|_| QrError { len: text.len() })?;
    Ok(code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Dark)
        .light_color(Dense1x2::Light)
        .quiet_zone(true)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_an_invite_sized_code() {
        let code = "AEAS-GRLH-RGV4-336L-ABYQ-OHTB-EYAC-ICAB-CIQJ-URQQ-A4VQ-VYOH-X7AK-G7OP-AC77-ZTZF-DIVQ-7MTL-TDTI-2AWC-PI43-2VYA-AASA-QAIS-EDHM-YFIH-3QO5-24UV-SUOC-SCEI-6CK2-3OIE-JUNX-HVUN-P2RM-N2VB-3WTU-S";
        let art = render(code).unwrap();
        let lines: Vec<&str> = art.lines().collect();
        assert!(lines.len() > 20);
        // Square: half as many rows as columns, give or take the odd row.
        let width = lines[0].chars().count();
        assert!(
            (lines.len() * 2).abs_diff(width) <= 2,
            "{} x {}",
            width,
            lines.len()
        );
        assert!(
            art.chars()
                .all(|c| matches!(c, ' ' | '█' | '▀' | '▄' | '\n'))
        );
    }

    #[test]
    fn too_long_is_an_error() {
        assert!(render(&"A".repeat(8000)).is_err());
    }
}
