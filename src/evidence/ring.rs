//! The last few tens of seconds of a stream's samples, addressed by their
//! absolute index in the stream: calls are reported after they end, so
//! their audio has to be kept until then, and no longer.

use std::ops::Range;

/// A fixed-capacity ring of samples; older samples are overwritten.
#[derive(Clone, Debug)]
pub struct SampleRing {
    buf: Vec<f32>,
    capacity: usize,
    /// Samples pushed since the stream began: the index of the next one.
    total: u64,
}

impl SampleRing {
    /// A ring holding the latest `capacity` (at least 1) samples; memory is
    /// taken as samples arrive, never more than `capacity`.
    pub fn new(capacity: usize) -> Self {
        Self {
            buf: Vec::new(),
            capacity: capacity.max(1),
            total: 0,
        }
    }

    /// Index the next sample will get.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Index of the oldest sample still held.
    pub fn oldest(&self) -> u64 {
        self.total.saturating_sub(self.buf.len() as u64)
    }

    /// Appends samples, overwriting the oldest.
    pub fn push(&mut self, samples: &[f32]) {
        let skip = samples.len().saturating_sub(self.capacity);
        self.total += skip as u64;
        if skip > 0 {
            // Every slot is about to be overwritten; filling first keeps
            // sample i at slot i mod capacity.
            self.buf.resize(self.capacity, 0.0);
        }
        for &s in &samples[skip..] {
            // While the ring fills, slot `total` is the next free one.
            let at = (self.total % self.capacity as u64) as usize;
            if at == self.buf.len() {
                self.buf.push(s);
            } else {
                self.buf[at] = s;
            }
            self.total += 1;
        }
    }

    /// Appends the held samples of `range` (clipped to what is held) to
    /// `out`; returns the range actually copied.
    pub fn copy(&self, range: Range<u64>, out: &mut Vec<f32>) -> Range<u64> {
        let start = range.start.max(self.oldest());
        let end = range.end.min(self.total).max(start);
        for i in start..end {
            out.push(self.buf[(i % self.capacity as u64) as usize]);
        }
        start..end
    }

    /// Forgets everything: the next sample pushed is index 0.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.total = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_samples_by_absolute_index() {
        let mut ring = SampleRing::new(10);
        let ramp: Vec<f32> = (0..35).map(|i| i as f32).collect();
        for chunk in ramp.chunks(7) {
            ring.push(chunk);
        }
        assert_eq!((ring.oldest(), ring.total()), (25, 35));
        let mut out = Vec::new();
        assert_eq!(ring.copy(20..30, &mut out), 25..30);
        assert_eq!(out, [25.0, 26.0, 27.0, 28.0, 29.0]);
        out.clear();
        assert_eq!(ring.copy(33..99, &mut out), 33..35);
        assert_eq!(out, [33.0, 34.0]);
    }

    #[test]
    fn a_push_larger_than_the_ring_keeps_its_tail() {
        let mut ring = SampleRing::new(4);
        ring.push(&[1.0, 2.0]);
        ring.push(&(0..10).map(|i| i as f32).collect::<Vec<_>>());
        let mut out = Vec::new();
        assert_eq!(ring.copy(0..100, &mut out), 8..12);
        assert_eq!(out, [6.0, 7.0, 8.0, 9.0]);
        ring.clear();
        assert_eq!((ring.oldest(), ring.total()), (0, 0));
    }
}
