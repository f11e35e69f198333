//! The evidence picture of one call: the clip's spectrogram with the
//! detection marked, so a reviewer sees at once what was heard and where.

use std::borrow::Cow;
use std::ops::Range;

use super::canvas::{Canvas, GLYPH_PX, Rgb, magma};
use super::format_hz;
use super::spectrum::{FreqScale, Spectrum, brightness, fft_size, top_db};
use crate::audio::StreamResampler;

/// Width and height of every call image, in pixels.
pub const CALL_IMAGE_SIZE: (u32, u32) = (800, 280);

/// Top of the low-frequency view: rumbles live below it, and at full band
/// their harmonic stack would be a few pixels at the bottom.
pub const RUMBLE_VIEW_HZ: f64 = 500.0;

const LEFT: u32 = 48;
const RIGHT: u32 = 8;
const TOP: u32 = 16;
const PLOT_HEIGHT: u32 = 240;
/// Decibels below the loudest point that still get a colour.
const RANGE_DB: f32 = 70.0;

/// Top of the frequency axis for a call labelled `label` in audio at
/// `rate` Hz: the low view for anything rumble-like (including sub-call
/// labels such as `estrous-rumble`), the full band for everything else.
pub fn view_max_hz(label: &str, rate: u32) -> f64 {
    let nyquist = f64::from(rate) / 2.0;
    if label.to_ascii_lowercase().contains("rumble") {
        RUMBLE_VIEW_HZ.min(nyquist)
    } else {
        nyquist
    }
}

/// What to draw for one call.
#[derive(Clone, Debug)]
pub struct CallView<'a> {
    /// The clip: mono samples at `rate`, pre- and post-roll included.
    pub samples: &'a [f32],
    /// Sample rate of the clip.
    pub rate: u32,
    /// The detected call, as sample indices into `samples`.
    pub call: Range<usize>,
    /// Stream time of the clip's first sample, for the time axis.
    pub clip_offset_s: f64,
    /// Top of the frequency axis (see [`view_max_hz`]).
    pub max_hz: f64,
    /// Title line: label, confidence, id.
    pub title: &'a str,
    /// Colour of the detection mark.
    pub colour: Rgb,
}

/// Draws the [`CALL_IMAGE_SIZE`] picture of `view`: title, linear-frequency
/// spectrogram from 0 to `max_hz`, dashed lines at the call's start and end
/// and a bar under the spectrogram spanning it, and time labels.
pub fn render_call(view: &CallView) -> Canvas {
    let (width, height) = CALL_IMAGE_SIZE;
    let plot_width = width - LEFT - RIGHT;
    let mut canvas = Canvas::new(width, height, Rgb::BLACK);
    canvas.text(i64::from(LEFT), 4, view.title, Rgb::WHITE);

    let len = view.samples.len();
    let rows = PLOT_HEIGHT as usize;
    let columns = plot_width as usize;
    let (samples, rate) = narrow_band(view);
    // Enough bins for half the rows (finer only blurs in time), but never a
    // window longer than half a second.
    let n_fft = fft_size(
        rows as f64 / 2.0 * f64::from(rate) / view.max_hz.max(1.0),
        256,
        fft_size(f64::from(rate) / 2.0, 256, usize::MAX),
    );
    let mut spectrum = Spectrum::new(n_fft, rate, view.max_hz, rows, FreqScale::Linear);
    let mut powers = vec![0.0; columns * rows];
    if !samples.is_empty() {
        for (x, column) in powers.chunks_exact_mut(rows).enumerate() {
            let centre = ((x as f64 + 0.5) * samples.len() as f64 / columns as f64) as i64;
            spectrum.power_rows(&samples, centre - n_fft as i64 / 2, column);
        }
    }
    let top = top_db(&powers);
    let (x0, y0) = (i64::from(LEFT), i64::from(TOP));
    for (x, column) in powers.chunks_exact(rows).enumerate() {
        for (r, &p) in column.iter().enumerate() {
            let y = y0 + rows as i64 - 1 - r as i64;
            canvas.set(x0 + x as i64, y, magma(brightness(p, top, RANGE_DB)));
        }
    }

    // Frequency axis: top, middle and bottom.
    let plot_bottom = y0 + i64::from(PLOT_HEIGHT);
    for (fraction, y) in [
        (1.0, y0),
        (0.5, y0 + rows as i64 / 2),
        (0.0, plot_bottom - 1),
    ] {
        let label = format_hz(view.max_hz * fraction);
        let text_y = (y - i64::from(GLYPH_PX) / 2).clamp(y0, plot_bottom - i64::from(GLYPH_PX));
        canvas.text_left_of(x0, text_y, &label, Rgb::WHITE);
        canvas.fill_rect(x0 - 4, y, 4, 1, Rgb::GREY);
    }

    // The detection.
    let to_x =
        |sample: usize| x0 + (sample as f64 * f64::from(plot_width) / len.max(1) as f64) as i64;
    let (call_x0, call_x1) = (to_x(view.call.start), to_x(view.call.end));
    canvas.dashed_vline(call_x0, y0, plot_bottom, Rgb::WHITE);
    canvas.dashed_vline(call_x1, y0, plot_bottom, Rgb::WHITE);
    canvas.fill_rect(
        call_x0,
        plot_bottom + 3,
        (call_x1 - call_x0).max(1),
        6,
        view.colour,
    );

    // Stream times of the clip's ends, precise enough to seek to in a player.
    let rate = f64::from(view.rate.max(1));
    let text_y = plot_bottom + 12;
    canvas.text(
        x0,
        text_y,
        &format!("{:.2} s", view.clip_offset_s),
        Rgb::WHITE,
    );
    let end = format!("{:.2} s", view.clip_offset_s + len as f64 / rate);
    canvas.text(
        x0 + i64::from(plot_width) - Canvas::text_width(&end),
        text_y,
        &end,
        Rgb::WHITE,
    );
    canvas
}

/// The clip at the lowest round rate that still shows `max_hz` (a 500 Hz
/// view is drawn from 2 kHz audio), so a rumble at 48 kHz needs 512-point
/// FFTs instead of 16k-point ones. Wide views, and a resampler that cannot
/// be built, keep the clip as it is.
fn narrow_band<'a>(view: &CallView<'a>) -> (Cow<'a, [f32]>, u32) {
    // 4x the top frequency leaves the resampler's roll-off above the view.
    let to_hz = ((view.max_hz * 4.0 / 1000.0).ceil() * 1000.0) as u32;
    if to_hz == 0 || to_hz.saturating_mul(2) > view.rate {
        return (Cow::Borrowed(view.samples), view.rate);
    }
    let Ok(mut resampler) = StreamResampler::new(view.rate, to_hz) else {
        return (Cow::Borrowed(view.samples), view.rate);
    };
    let mut out = Vec::with_capacity(view.samples.len() / (view.rate / to_hz).max(1) as usize + 1);
    resampler.process(view.samples, &mut out);
    resampler.flush(&mut out);
    (Cow::Owned(out), to_hz)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rumbles_get_the_low_view_and_others_the_full_band() {
        assert_eq!(view_max_hz("rumble", 16_000), 500.0);
        assert_eq!(view_max_hz("Estrous-Rumble", 48_000), 500.0);
        assert_eq!(view_max_hz("rumble", 800), 400.0);
        assert_eq!(view_max_hz("trumpet", 48_000), 24_000.0);
        assert_eq!(view_max_hz("roar", 16_000), 8_000.0);
    }

    #[test]
    fn the_call_is_marked_under_the_spectrogram() {
        let samples: Vec<f32> = (0..32_000)
            .map(|i| ((i % 64) as f32 / 64.0) - 0.5)
            .collect();
        let view = CallView {
            samples: &samples,
            rate: 16_000,
            call: 8_000..24_000,
            clip_offset_s: 10.0,
            max_hz: 500.0,
            title: "rumble 0.91",
            colour: Rgb(1, 2, 3),
        };
        let canvas = render_call(&view);
        assert_eq!((canvas.width(), canvas.height()), CALL_IMAGE_SIZE);
        let bar_y = TOP + PLOT_HEIGHT + 4;
        let plot_width = CALL_IMAGE_SIZE.0 - LEFT - RIGHT;
        let mid = LEFT + plot_width / 2;
        assert_eq!(canvas.get(mid, bar_y), Some(Rgb(1, 2, 3)));
        assert_eq!(canvas.get(LEFT + plot_width / 8, bar_y), Some(Rgb::BLACK));
        assert_eq!(
            canvas.get(LEFT + plot_width * 7 / 8, bar_y),
            Some(Rgb::BLACK)
        );
    }

    #[test]
    fn a_low_tone_shows_at_its_height_at_any_rate() {
        for rate in [2_000u32, 16_000, 44_100, 48_000] {
            let samples: Vec<f32> = (0..rate * 4)
                .map(|i| {
                    (std::f64::consts::TAU * 125.0 * f64::from(i) / f64::from(rate)).sin() as f32
                })
                .collect();
            let view = CallView {
                samples: &samples,
                rate,
                call: 0..samples.len(),
                clip_offset_s: 0.0,
                max_hz: view_max_hz("rumble", rate),
                title: "",
                colour: Rgb::WHITE,
            };
            let canvas = render_call(&view);
            let x = LEFT + 300;
            let luma = |y: u32| {
                canvas
                    .get(x, y)
                    .map_or(0, |c| u32::from(c.0) + u32::from(c.1) + u32::from(c.2))
            };
            let brightest = (TOP..TOP + PLOT_HEIGHT)
                .max_by_key(|&y| luma(y))
                .expect("rows");
            // 125 Hz of 500 Hz: a quarter of the way up.
            let expected = TOP + PLOT_HEIGHT - 1 - PLOT_HEIGHT / 4;
            assert!(
                brightest.abs_diff(expected) <= 3,
                "{rate} Hz: row {brightest}, expected {expected}"
            );
        }
    }

    #[test]
    fn an_empty_clip_still_makes_a_picture() {
        let view = CallView {
            samples: &[],
            rate: 16_000,
            call: 0..0,
            clip_offset_s: 0.0,
            max_hz: 8000.0,
            title: "",
            colour: Rgb::WHITE,
        };
        assert_eq!(render_call(&view).width(), CALL_IMAGE_SIZE.0);
    }
}
