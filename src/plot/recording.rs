//! The whole-recording picture behind `rumbled replay --plot`: spectrogram
//! on top, per-frame class probabilities under it, then one lane per call
//! class with the detected calls, on one time axis.
//!
//! Everything is accumulated into [`TimeBins`] as the stream goes, so a
//! day-long recording takes no more memory than a minute-long one.

use std::ops::Range;
use std::path::{Path, PathBuf};

use super::bins::{Reduce, TimeBins};
use super::canvas::{Canvas, GLYPH_PX, Rgb, class_colour, magma};
use super::spectrum::{FreqScale, Spectrum, brightness, fft_size, top_db};
use super::{format_hz, format_time, save_png};
use crate::detect::{CallPhase, CallRecord, EndReason, StreamContext};
use crate::model::Manifest;
use crate::replay::{ReplayObserver, per_file_path};

/// Width of every recording plot, in pixels.
pub const PLOT_WIDTH: u32 = 1600;

const LEFT: u32 = 88;
const RIGHT: u32 = 12;
const TITLE: u32 = 16;
const SPECTROGRAM: u32 = 256;
const GAP: u32 = 8;
const PROBABILITIES: u32 = 120;
const LANE: u32 = 12;
const AXIS: u32 = 24;
/// Decibels below the loudest bin that still get a colour.
const RANGE_DB: f32 = 80.0;
/// Bins kept per image column: merging halves them, so at least one bin
/// per column always remains.
const BINS_PER_COLUMN: usize = 2;

fn plot_columns() -> u32 {
    PLOT_WIDTH - LEFT - RIGHT
}

/// Accumulates one recording's audio, probabilities and calls for a plot.
pub struct RecordingPlot {
    rate: u32,
    spectrum: Spectrum,
    /// Samples of the FFT block being filled.
    block: Vec<f32>,
    rows: Vec<f32>,
    spec: TimeBins,
    /// Per frame: each call class's probability, then its call mark.
    frames: TimeBins,
    labels: Vec<String>,
    /// Model class index of each call class (background left out).
    classes: Vec<usize>,
    frame_s: f64,
    samples_in: u64,
}

impl RecordingPlot {
    /// A plot for audio at `rate` Hz and model frames of `frame_s` seconds
    /// over `labels`, of which `background` (if any) gets no lane.
    pub fn new(rate: u32, labels: &[String], background: Option<usize>, frame_s: f64) -> Self {
        // 1/8 s blocks: 8 Hz bins at any rate, enough to separate a
        // rumble's harmonics, and few FFTs per hour.
        let n_fft = fft_size(f64::from(rate) / 8.0, 256, 16_384);
        let spectrum = Spectrum::new(
            n_fft,
            rate,
            f64::from(rate) / 2.0,
            SPECTROGRAM as usize,
            FreqScale::Mel,
        );
        let classes: Vec<usize> = (0..labels.len())
            .filter(|&c| Some(c) != background)
            .collect();
        let capacity = plot_columns() as usize * BINS_PER_COLUMN;
        Self {
            rate,
            block: Vec::with_capacity(n_fft),
            rows: vec![0.0; spectrum.rows()],
            spec: TimeBins::new(spectrum.rows(), capacity, Reduce::Mean),
            frames: TimeBins::new(classes.len() * 2, capacity, Reduce::Max),
            spectrum,
            labels: labels.to_vec(),
            classes,
            frame_s,
            samples_in: 0,
        }
    }

    /// Width and height of the rendered image.
    pub fn image_size(&self) -> (u32, u32) {
        let lanes = self.classes.len() as u32;
        (
            PLOT_WIDTH,
            TITLE + SPECTROGRAM + GAP + PROBABILITIES + GAP + LANE * lanes + AXIS,
        )
    }

    /// Values held in memory (spectra, probabilities, the FFT block): it
    /// levels off, however long the recording.
    pub fn retained_values(&self) -> usize {
        self.spec.retained_values() + self.frames.retained_values() + self.block.capacity()
    }

    /// Takes the recording's next samples (mono, at the plot's rate).
    pub fn push_samples(&mut self, mut samples: &[f32]) {
        self.samples_in += samples.len() as u64;
        let n_fft = self.spectrum.n_fft();
        while !samples.is_empty() {
            let take = (n_fft - self.block.len()).min(samples.len());
            self.block.extend_from_slice(&samples[..take]);
            samples = &samples[take..];
            if self.block.len() == n_fft {
                self.spectrum.power_rows(&self.block, 0, &mut self.rows);
                self.spec.push(&self.rows);
                self.block.clear();
            }
        }
    }

    /// Takes final per-frame probabilities (all labels per frame) starting
    /// at frame `first_frame`; frames already seen are skipped and a gap
    /// reads as zero probability.
    pub fn push_frames(&mut self, first_frame: u64, probs: &[f32]) {
        let classes = self.labels.len().max(1);
        let mut unit = vec![0.0; self.classes.len() * 2];
        while self.frames.units() < first_frame {
            self.frames.push(&unit);
        }
        let seen = (self.frames.units() - first_frame) as usize;
        for frame in probs.chunks_exact(classes).skip(seen) {
            for (slot, &class) in unit.iter_mut().zip(&self.classes) {
                *slot = frame.get(class).copied().unwrap_or(0.0);
            }
            self.frames.push(&unit);
        }
    }

    /// Marks a finished call in its class's lane and says whether it did:
    /// other records (and retracted provisional starts, which were never
    /// calls) are ignored, as are labels the plot has no lane for.
    pub fn add_call(&mut self, rec: &CallRecord) -> bool {
        if rec.phase != CallPhase::End || rec.end_reason == Some(EndReason::Retracted) {
            return false;
        }
        let Some(lane) = self
            .classes
            .iter()
            .position(|&c| self.labels.get(c) == Some(&rec.label))
        else {
            return false;
        };
        let frame_s = self.frame_s.max(f64::EPSILON);
        let start = (rec.offset_s / frame_s).round().max(0.0) as u64;
        let frames = (rec.duration_s.unwrap_or(0.0) / frame_s).round().max(1.0) as u64;
        self.frames
            .raise(start..start + frames, self.classes.len() + lane, 1.0);
        true
    }

    /// Draws the plot, with `title` on top.
    pub fn render(&self, title: &str) -> Canvas {
        let (width, height) = self.image_size();
        let mut canvas = Canvas::new(width, height, Rgb::BLACK);
        canvas.text(i64::from(LEFT), 4, title, Rgb::WHITE);
        let rate = f64::from(self.rate.max(1));
        let total_s =
            (self.samples_in as f64 / rate).max(self.frames.units() as f64 * self.frame_s);
        let columns = plot_columns() as usize;
        // Time span of each column, as [start, end) seconds.
        let span = |x: usize| {
            (
                x as f64 * total_s / columns as f64,
                (x + 1) as f64 * total_s / columns as f64,
            )
        };
        let units = |(t0, t1): (f64, f64), unit_s: f64| -> Range<u64> {
            (t0 / unit_s).floor() as u64
                ..((t1 / unit_s).ceil() as u64).max((t0 / unit_s).floor() as u64 + 1)
        };
        let x0 = i64::from(LEFT);
        let mut y = i64::from(TITLE);
        self.draw_spectrogram(&mut canvas, y, |x| {
            units(span(x), self.spectrum.n_fft() as f64 / rate)
        });
        y += i64::from(SPECTROGRAM + GAP);
        let frame_units = |x: usize| units(span(x), self.frame_s.max(f64::EPSILON));
        self.draw_probabilities(&mut canvas, y, frame_units);
        y += i64::from(PROBABILITIES + GAP);
        self.draw_lanes(&mut canvas, y, frame_units);
        y += i64::from(LANE) * self.classes.len() as i64;
        draw_time_axis(&mut canvas, x0, y, total_s);
        canvas
    }

    fn draw_spectrogram(&self, canvas: &mut Canvas, top: i64, units: impl Fn(usize) -> Range<u64>) {
        let rows = self.spectrum.rows();
        let columns = plot_columns() as usize;
        let x0 = i64::from(LEFT);
        let powers: Vec<Option<f32>> = (0..columns)
            .flat_map(|x| {
                let range = units(x);
                (0..rows).map(move |r| (range.clone(), r))
            })
            .map(|(range, r)| self.spec.read(range, r))
            .collect();
        let present: Vec<f32> = powers.iter().flatten().copied().collect();
        let top_level = top_db(&present);
        canvas.fill_rect(
            x0,
            top,
            i64::from(plot_columns()),
            i64::from(SPECTROGRAM),
            Rgb::PANEL,
        );
        for (i, p) in powers.iter().enumerate() {
            if let Some(p) = p {
                let (x, r) = (i / rows, i % rows);
                canvas.set(
                    x0 + x as i64,
                    top + rows as i64 - 1 - r as i64,
                    magma(brightness(*p, top_level, RANGE_DB)),
                );
            }
        }
        // Frequency labels at round values, top down, each skipped where it
        // would overwrite the one above.
        let nyquist = f64::from(self.rate) / 2.0;
        let mut last_y = i64::MIN / 2;
        for hz in [
            32_000.0, 16_000.0, 8000.0, 4000.0, 2000.0, 1000.0, 500.0, 100.0, 0.0,
        ] {
            let fraction = FreqScale::Mel.fraction_of(hz, nyquist);
            let y = top + ((1.0 - fraction) * f64::from(SPECTROGRAM - 1)) as i64;
            if hz > nyquist || y - last_y < i64::from(GLYPH_PX) + 2 {
                continue;
            }
            last_y = y;
            let label = format_hz(hz);
            let text_y = (y - 4).clamp(top, top + i64::from(SPECTROGRAM - GLYPH_PX));
            canvas.text_left_of(x0, text_y, &label, Rgb::WHITE);
            canvas.fill_rect(x0 - 4, y, 4, 1, Rgb::GREY);
        }
    }

    fn draw_probabilities(
        &self,
        canvas: &mut Canvas,
        top: i64,
        units: impl Fn(usize) -> Range<u64>,
    ) {
        let x0 = i64::from(LEFT);
        let columns = plot_columns() as i64;
        let h = i64::from(PROBABILITIES);
        canvas.fill_rect(x0, top, columns, h, Rgb::PANEL);
        let to_y =
            |p: f32| top + ((1.0 - f64::from(p.clamp(0.0, 1.0))) * (h - 1) as f64).round() as i64;
        canvas.dotted_hline(x0, x0 + columns, to_y(0.5), Rgb::GREY);
        for (p, label) in [(1.0, "1"), (0.5, "0.5"), (0.0, "0")] {
            let text_y = (to_y(p) - 4).clamp(top, top + h - i64::from(GLYPH_PX));
            canvas.text_left_of(x0, text_y, label, Rgb::WHITE);
        }
        for lane in 0..self.classes.len() {
            let colour = class_colour(lane);
            let mut previous: Option<i64> = None;
            for x in 0..columns {
                let Some(p) = self.frames.read(units(x as usize), lane) else {
                    previous = None;
                    continue;
                };
                let y = to_y(p);
                // Join to the previous column so steep edges stay connected.
                let (a, b) = previous.map_or((y, y), |py| (py.min(y), py.max(y)));
                canvas.fill_rect(x0 + x, a, 1, b - a + 1, colour);
                previous = Some(y);
            }
        }
    }

    fn draw_lanes(&self, canvas: &mut Canvas, top: i64, units: impl Fn(usize) -> Range<u64>) {
        let x0 = i64::from(LEFT);
        let columns = plot_columns() as i64;
        let marks = self.classes.len();
        for (lane, &class) in self.classes.iter().enumerate() {
            let y = top + lane as i64 * i64::from(LANE);
            let colour = class_colour(lane);
            let name = self.labels.get(class).map_or("", String::as_str);
            canvas.text_left_of(x0, y + 2, name, colour);
            canvas.fill_rect(x0, y + 1, columns, i64::from(LANE) - 2, Rgb::PANEL);
            for x in 0..columns {
                if self
                    .frames
                    .read(units(x as usize), marks + lane)
                    .is_some_and(|m| m > 0.0)
                {
                    canvas.fill_rect(x0 + x, y + 2, 1, i64::from(LANE) - 4, colour);
                }
            }
        }
    }
}

/// `rumbled replay --plot`: one [`RecordingPlot`] per replayed file, saved
/// as PNG when the file ends (`out.png`, or `out.<recording>.png` when
/// several files are replayed).
pub struct PlotFiles {
    target: PathBuf,
    several: bool,
    current: Option<CurrentPlot>,
}

struct CurrentPlot {
    plot: RecordingPlot,
    path: PathBuf,
    source: String,
    model: String,
    calls: usize,
}

impl PlotFiles {
    /// Plots to `target`; `several` when more than one file is replayed.
    pub fn new(target: &Path, several: bool) -> Self {
        Self {
            target: target.to_owned(),
            several,
            current: None,
        }
    }
}

impl ReplayObserver for PlotFiles {
    fn begin_file(
        &mut self,
        path: &Path,
        ctx: &StreamContext,
        manifest: &Manifest,
        rate: u32,
    ) -> anyhow::Result<()> {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.current = Some(CurrentPlot {
            plot: RecordingPlot::new(rate, &ctx.labels, ctx.background, ctx.frame_s),
            path: per_file_path(&self.target, &stem, self.several),
            source: ctx.source_name.clone(),
            model: format!("{} {}", manifest.name, manifest.version),
            calls: 0,
        });
        Ok(())
    }

    fn samples(&mut self, samples: &[f32]) {
        if let Some(c) = self.current.as_mut() {
            c.plot.push_samples(samples);
        }
    }

    fn frames(&mut self, first_frame: u64, probs: &[f32]) {
        if let Some(c) = self.current.as_mut() {
            c.plot.push_frames(first_frame, probs);
        }
    }

    fn record(&mut self, record: &CallRecord) {
        if let Some(c) = self.current.as_mut()
            && c.plot.add_call(record)
        {
            c.calls += 1;
        }
    }

    fn end_file(&mut self, audio_s: f64) -> anyhow::Result<()> {
        let Some(c) = self.current.take() else {
            return Ok(());
        };
        let title = format!(
            "{}  {}  {} call{}  model {}",
            c.source,
            format_time(audio_s),
            c.calls,
            if c.calls == 1 { "" } else { "s" },
            c.model
        );
        save_png(&c.plot.render(&title), &c.path)?;
        Ok(())
    }
}

/// Ticks at a round interval giving at most a dozen labels.
fn draw_time_axis(canvas: &mut Canvas, x0: i64, top: i64, total_s: f64) {
    const STEPS: [f64; 16] = [
        0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0,
        7200.0, 21_600.0,
    ];
    let columns = f64::from(plot_columns());
    let step = STEPS
        .iter()
        .copied()
        .find(|s| total_s / s <= 12.0)
        .unwrap_or_else(|| (total_s / 12.0 / 86_400.0).ceil() * 86_400.0);
    if total_s <= 0.0 {
        return;
    }
    let mut t = 0.0;
    while t <= total_s {
        let x = x0 + (t / total_s * (columns - 1.0)) as i64;
        canvas.fill_rect(x, top + 1, 1, 4, Rgb::GREY);
        let label = format_time(t);
        let w = Canvas::text_width(&label);
        let text_x = (x - w / 2).clamp(x0, x0 + columns as i64 - w);
        canvas.text(text_x, top + 8, &label, Rgb::WHITE);
        t += step;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::event::test_context;
    use crate::detect::{CallEvent, EndReason};

    const LABELS: [&str; 3] = ["not-call", "rumble", "trumpet"];

    fn labels() -> Vec<String> {
        LABELS.map(String::from).to_vec()
    }

    fn end_record(label: usize, start_frame: u64, end_frame: u64) -> CallRecord {
        let ctx = test_context(&LABELS);
        let ev = CallEvent {
            phase: CallPhase::End,
            call: 0,
            track: None,
            label,
            confidence: 0.9,
            scores: vec![0.1, 0.9, 0.0],
            start_frame,
            end_frame: Some(end_frame),
            end_reason: Some(EndReason::Quiet),
        };
        CallRecord::from_event(&ev, &ctx, 1)
    }

    #[test]
    fn lanes_show_calls_and_lines_show_probabilities() {
        let mut plot = RecordingPlot::new(8000, &labels(), Some(0), 0.16);
        // 100 frames = 16 s; the rumble class is high in frames 50..60.
        let probs: Vec<f32> = (0..100)
            .flat_map(|f| {
                if (50..60).contains(&f) {
                    [0.1, 0.95, 0.0]
                } else {
                    [0.9, 0.05, 0.0]
                }
            })
            .collect();
        plot.push_samples(&vec![0.0; 16 * 8000]);
        plot.push_frames(0, &probs[..150]);
        plot.push_frames(50, &probs[150..]);
        assert!(plot.add_call(&end_record(1, 50, 60)));
        let canvas = plot.render("test");
        assert_eq!((canvas.width(), canvas.height()), plot.image_size());
        assert_eq!(
            plot.image_size().1,
            TITLE + SPECTROGRAM + GAP + PROBABILITIES + GAP + 2 * LANE + AXIS
        );

        let lane_y = TITLE + SPECTROGRAM + GAP + PROBABILITIES + GAP + LANE / 2;
        let column = |frame: f64| LEFT + (frame / 100.0 * f64::from(plot_columns())) as u32;
        assert_eq!(canvas.get(column(55.0), lane_y), Some(class_colour(0)));
        assert_eq!(canvas.get(column(20.0), lane_y), Some(Rgb::PANEL));
        assert_eq!(
            canvas.get(column(55.0), lane_y + LANE),
            Some(Rgb::PANEL),
            "no trumpet"
        );
        // The rumble line sits near the top of the panel inside the call.
        let panel_top = TITLE + SPECTROGRAM + GAP;
        let near_top = (panel_top..panel_top + 12)
            .any(|y| canvas.get(column(55.0), y) == Some(class_colour(0)));
        assert!(near_top);
    }
}
