//! How much of a recording sits at full scale. A recorder whose gain is set
//! too high flattens loud calls, and its own noise, into square waves; the
//! default model, trained mostly on unclipped sound, misses many calls in
//! such a recording (models/README.md, "Recorder gain and clipping"), and
//! nothing else would tell the user why a season's recordings hold so few.

/// A sample at least this close to full scale counts as clipped. Not 1.0:
/// the top codes of 8-bit and G.711 recordings decode to 0.98-0.99, and
/// some converters stop a code or two short of full scale.
const CLIP_LEVEL: f32 = 0.98;

/// The share of clipped samples from which a recording is reported: the
/// development scenes found 93 % of their calls below 1 %, 88 % at 1-3 %
/// and 73 % at 3-10 %.
const CLIP_WARN_FRACTION: f64 = 0.01;

/// Counts clipped samples over a stream, for a warning at its end.
#[derive(Debug, Default, Clone, Copy)]
pub struct ClipMeter {
    samples: u64,
    clipped: u64,
}

impl ClipMeter {
    /// Takes the next samples, as read (before any configured gain, which
    /// the recorder never saw).
    pub fn push(&mut self, samples: &[f32]) {
        self.samples += samples.len() as u64;
        self.clipped += samples.iter().filter(|x| x.abs() >= CLIP_LEVEL).count() as u64;
    }

    /// Share of the samples so far at full scale (0 before any sample).
    pub fn fraction(&self) -> f64 {
        if self.samples == 0 {
            0.0
        } else {
            self.clipped as f64 / self.samples as f64
        }
    }

    /// Adds another meter's counts (an interval's into a total).
    pub fn add(&mut self, other: ClipMeter) {
        self.samples += other.samples;
        self.clipped += other.clipped;
    }

    /// What to tell the user when the samples clip enough to cost calls.
    pub fn warning(&self) -> Option<String> {
        let fraction = self.fraction();
        (fraction >= CLIP_WARN_FRACTION).then(|| {
            format!(
                "{:.1} % of the samples are at full scale: the recorder clips, and calls in \
                 clipped sound are often missed; lower the recorder's input gain",
                fraction * 100.0
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_samples_at_either_rail() {
        let mut meter = ClipMeter::default();
        meter.push(&[0.0, 0.5, -0.97, 0.98, -1.0, 1.0, 0.3, -0.2]);
        meter.push(&[0.1, 0.1]);
        assert_eq!(meter.fraction(), 3.0 / 10.0);
        let mut total = ClipMeter::default();
        total.add(meter);
        total.add(meter);
        assert_eq!(total.fraction(), 6.0 / 20.0);
    }

    #[test]
    fn warns_from_one_per_cent_and_not_below() {
        let mut meter = ClipMeter::default();
        assert_eq!(meter.fraction(), 0.0);
        assert_eq!(meter.warning(), None);
        meter.push(&[0.5; 991]);
        meter.push(&[-1.0; 9]);
        assert_eq!(meter.warning(), None, "0.9 % clipped");
        meter.push(&[1.0; 2]);
        let warning = meter.warning().expect("11 of 1002 clipped");
        assert!(warning.starts_with("1.1 % of the samples"), "{warning}");
    }

    #[test]
    fn loud_but_unclipped_sound_is_not_reported() {
        let mut meter = ClipMeter::default();
        let sine: Vec<f32> = (0..48_000)
            .map(|i| 0.97 * (i as f32 * 0.05).sin())
            .collect();
        meter.push(&sine);
        assert_eq!(meter.fraction(), 0.0);
    }
}
