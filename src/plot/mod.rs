//! Pictures for people: the spectrogram of one call's evidence clip
//! ([`call`]) and the whole-recording overview of `rumbled replay --plot`
//! ([`recording`]), drawn on a plain RGB [`Canvas`] and saved as PNG.
//!
//! Text uses a built-in 8x8 bitmap font, so no font files are needed on a
//! station.

pub mod bins;
pub mod call;
pub mod canvas;
pub mod recording;
pub mod spectrum;

use std::path::{Path, PathBuf};

pub use call::{CALL_IMAGE_SIZE, CallView, render_call, view_max_hz};
pub use canvas::{Canvas, Rgb, class_colour};
pub use recording::{PLOT_WIDTH, PlotFiles, RecordingPlot};

/// Why a picture could not be saved.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// PNG encoding failed.
    #[error("cannot encode {}: {source}", path.display())]
    Encode {
        /// The picture's destination.
        path: PathBuf,
        /// The encoder's reason.
        source: png::EncodingError,
    },
    /// The file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The picture's destination.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// Encodes `canvas` and writes it to `path` as PNG.
pub fn save_png(canvas: &Canvas, path: &Path) -> Result<(), PlotError> {
    let bytes = canvas.encode_png().map_err(|source| PlotError::Encode {
        path: path.to_owned(),
        source,
    })?;
    std::fs::write(path, bytes).map_err(|source| PlotError::Write {
        path: path.to_owned(),
        source,
    })
}

/// `750`, `2k`, `1.5k`: frequency labels that fit a narrow margin.
pub fn format_hz(hz: f64) -> String {
    if hz >= 1000.0 {
        let k = hz / 1000.0;
        if (k - k.round()).abs() < 0.05 {
            format!("{}k", k.round())
        } else {
            format!("{k:.1}k")
        }
    } else {
        format!("{}", hz.round())
    }
}

/// `12.5s`, `4:05`, `1:02:03`: times on an axis, as short as the scale
/// allows.
pub fn format_time(seconds: f64) -> String {
    if seconds < 60.0 {
        let text = format!("{seconds:.1}");
        format!("{}s", text.strip_suffix(".0").unwrap_or(&text))
    } else {
        let whole = seconds.round() as u64;
        let (h, m, s) = (whole / 3600, whole / 60 % 60, whole % 60);
        if h > 0 {
            format!("{h}:{m:02}:{s:02}")
        } else {
            format!("{m}:{s:02}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_short() {
        assert_eq!(format_hz(0.0), "0");
        assert_eq!(format_hz(500.0), "500");
        assert_eq!(format_hz(8000.0), "8k");
        assert_eq!(format_hz(22_050.0), "22.1k");
        assert_eq!(format_time(0.0), "0s");
        assert_eq!(format_time(12.5), "12.5s");
        assert_eq!(format_time(245.0), "4:05");
        assert_eq!(format_time(3723.0), "1:02:03");
    }
}
