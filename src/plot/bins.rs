//! A time series of unknown length squeezed into a bounded number of bins:
//! when the bins run out, neighbours merge and each bin spans twice the
//! time. Memory is bounded by the bin count however long the stream runs,
//! and the resolution is never worse than half the capacity allows.

use std::ops::Range;

/// How the values of merged units combine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    /// The mean (spectral power: what a longer FFT frame would show).
    Mean,
    /// The maximum (probabilities, call marks: a short call must not fade
    /// away in a long recording).
    Max,
}

/// Units of `width` values each, binned `span` units to a bin, at most
/// `capacity` bins.
#[derive(Clone, Debug)]
pub struct TimeBins {
    reduce: Reduce,
    width: usize,
    capacity: usize,
    span: u64,
    units: u64,
    /// `width` values per bin; for [`Reduce::Mean`] these are sums, divided
    /// by the bin's unit count when read.
    values: Vec<f32>,
}

impl TimeBins {
    /// Empty bins for units of `width` values, at most `capacity` (made
    /// even, at least 2) bins.
    pub fn new(width: usize, capacity: usize, reduce: Reduce) -> Self {
        let capacity = capacity.max(2).next_multiple_of(2);
        Self {
            reduce,
            width,
            capacity,
            span: 1,
            units: 0,
            values: Vec::with_capacity(capacity * width),
        }
    }

    /// Units pushed so far.
    pub fn units(&self) -> u64 {
        self.units
    }

    /// Values held: what the memory bound is about.
    pub fn retained_values(&self) -> usize {
        self.values.len()
    }

    fn bins(&self) -> usize {
        self.values.len().checked_div(self.width).unwrap_or(0)
    }

    /// Appends one unit (`width` values; extra ignored, missing read as 0).
    pub fn push(&mut self, unit: &[f32]) {
        let mut bin = (self.units / self.span) as usize;
        if bin == self.capacity {
            self.halve();
            bin = (self.units / self.span) as usize;
        }
        let value = |c: usize| unit.get(c).copied().unwrap_or(0.0);
        if bin == self.bins() {
            self.values.extend((0..self.width).map(value));
        } else {
            let reduce = self.reduce;
            let row = &mut self.values[bin * self.width..(bin + 1) * self.width];
            for (c, v) in row.iter_mut().enumerate() {
                *v = combine(reduce, *v, value(c));
            }
        }
        self.units += 1;
    }

    /// Merges neighbouring bins pairwise: half the bins, twice the span.
    fn halve(&mut self) {
        let w = self.width;
        for i in 0..self.bins() / 2 {
            for c in 0..w {
                let merged = combine(
                    self.reduce,
                    self.values[2 * i * w + c],
                    self.values[(2 * i + 1) * w + c],
                );
                self.values[i * w + c] = merged;
            }
        }
        self.values.truncate(self.bins() / 2 * w);
        self.span *= 2;
    }

    /// Raises channel `channel` to at least `value` in every bin that holds
    /// any of `units` (already pushed; later units are ignored). Only
    /// meaningful for [`Reduce::Max`] bins.
    pub fn raise(&mut self, units: Range<u64>, channel: usize, value: f32) {
        let bins = self.bins();
        if channel >= self.width || units.is_empty() || bins == 0 {
            return;
        }
        let first = (units.start / self.span) as usize;
        let last = (((units.end - 1) / self.span) as usize).min(bins - 1);
        for bin in first..=last {
            let v = &mut self.values[bin * self.width + channel];
            *v = v.max(value);
        }
    }

    /// Channel `channel` over `units`, reduced over every bin that holds
    /// any of them; `None` where nothing was pushed yet. A range narrower
    /// than a bin reads the bin it starts in.
    pub fn read(&self, units: Range<u64>, channel: usize) -> Option<f32> {
        let bins = self.bins() as u64;
        let first = units.start / self.span;
        let end = units.end.div_ceil(self.span).max(first + 1).min(bins);
        if units.start >= self.units || first >= end || channel >= self.width {
            return None;
        }
        let at = |bin: u64| self.values[bin as usize * self.width + channel];
        match self.reduce {
            Reduce::Max => (first..end).map(at).reduce(f32::max),
            Reduce::Mean => {
                let count = |bin: u64| self.span.min(self.units - bin * self.span) as f32;
                let sum: f32 = (first..end).map(at).sum();
                let n: f32 = (first..end).map(count).sum();
                Some(sum / n)
            }
        }
    }
}

fn combine(reduce: Reduce, a: f32, b: f32) -> f32 {
    match reduce {
        Reduce::Mean => a + b,
        Reduce::Max => a.max(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn means_survive_merging() {
        let mut bins = TimeBins::new(1, 4, Reduce::Mean);
        for i in 0..10 {
            bins.push(&[i as f32]);
        }
        // 10 units in bins of 4 (after two halvings): [0..4) [4..8) [8..10).
        assert_eq!(bins.span, 4);
        assert_eq!(bins.read(0..4, 0), Some(1.5));
        assert_eq!(bins.read(8..10, 0), Some(8.5));
        assert_eq!(bins.read(0..10, 0), Some(4.5));
        assert_eq!(bins.read(5..6, 0), Some(5.5), "inside one bin");
        assert_eq!(bins.read(10..12, 0), None);
    }

    #[test]
    fn maxima_keep_single_spikes_and_memory_stays_bounded() {
        let mut bins = TimeBins::new(2, 8, Reduce::Max);
        for i in 0..100_000u64 {
            bins.push(&[if i == 77_777 { 1.0 } else { 0.1 }, 0.0]);
        }
        assert!(bins.bins() <= 8);
        assert_eq!(bins.read(0..100_000, 0), Some(1.0));
        assert_eq!(bins.read(0..50_000, 0), Some(0.1));
        bins.raise(10..20, 1, 1.0);
        assert_eq!(bins.read(0..100, 1), Some(1.0));
        assert_eq!(bins.read(70_000..100_000, 1), Some(0.0));
    }
}
