//! Event-level matching: which detection is which annotated call.

/// A call in time, with its (mapped) class when it has one.
#[derive(Clone, Debug, PartialEq)]
pub struct Interval {
    /// Start, seconds from the recording start.
    pub begin_s: f64,
    /// End, seconds from the recording start.
    pub end_s: f64,
    /// Class name after label mapping; `None` for an unlabelled selection.
    pub label: Option<String>,
}

impl Interval {
    /// Temporal intersection over union with `other`; 0 for disjoint calls.
    /// Two zero-length calls at the same instant count as identical.
    pub fn iou(&self, other: &Interval) -> f64 {
        let inter = (self.end_s.min(other.end_s) - self.begin_s.max(other.begin_s)).max(0.0);
        let union = self.end_s.max(other.end_s) - self.begin_s.min(other.begin_s);
        if union > 0.0 {
            inter / union
        } else if self.begin_s == other.begin_s {
            1.0
        } else {
            0.0
        }
    }
}

/// One truth-detection pair, by index.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Match {
    /// Index into the truth calls.
    pub truth: usize,
    /// Index into the detections.
    pub detection: usize,
    /// Their temporal IoU.
    pub iou: f64,
}

/// Pairs truth calls with detections one to one: candidate pairs with IoU
/// of at least `min_iou` (and above 0) are taken best first (ties by truth
/// then detection order). With `min_iou >= 0.5` and non-overlapping truth
/// this is the only possible matching; below it, greedy is the usual
/// choice in sound event evaluation.
pub fn match_events(truth: &[Interval], detections: &[Interval], min_iou: f64) -> Vec<Match> {
    let mut candidates: Vec<Match> = Vec::new();
    for (t, tc) in truth.iter().enumerate() {
        for (d, dc) in detections.iter().enumerate() {
            let iou = tc.iou(dc);
            if iou > 0.0 && iou >= min_iou {
                candidates.push(Match {
                    truth: t,
                    detection: d,
                    iou,
                });
            }
        }
    }
    candidates.sort_by(|a, b| {
        b.iou
            .total_cmp(&a.iou)
            .then(a.truth.cmp(&b.truth))
            .then(a.detection.cmp(&b.detection))
    });
    let mut truth_used = vec![false; truth.len()];
    let mut detection_used = vec![false; detections.len()];
    let mut matches = Vec::new();
    for m in candidates {
        if !truth_used[m.truth] && !detection_used[m.detection] {
            truth_used[m.truth] = true;
            detection_used[m.detection] = true;
            matches.push(m);
        }
    }
    matches.sort_by_key(|m| m.truth);
    matches
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(begin_s: f64, end_s: f64) -> Interval {
        Interval {
            begin_s,
            end_s,
            label: None,
        }
    }

    #[test]
    fn iou_of_intervals() {
        assert_eq!(iv(0.0, 2.0).iou(&iv(1.0, 3.0)), 1.0 / 3.0);
        assert_eq!(iv(0.0, 2.0).iou(&iv(0.0, 2.0)), 1.0);
        assert_eq!(iv(0.0, 1.0).iou(&iv(2.0, 3.0)), 0.0);
        assert_eq!(iv(1.0, 1.0).iou(&iv(1.0, 1.0)), 1.0);
    }

    #[test]
    fn best_pairs_first_one_to_one() {
        // Detection 0 overlaps both truths; truth 1 is its better match, so
        // truth 0 goes to detection 1.
        let truth = [iv(0.0, 4.0), iv(5.0, 7.0)];
        let det = [iv(4.5, 7.0), iv(0.5, 4.0)];
        let m = match_events(&truth, &det, 0.1);
        assert_eq!(
            m.iter().map(|m| (m.truth, m.detection)).collect::<Vec<_>>(),
            [(0, 1), (1, 0)]
        );
        // A stricter threshold leaves poor overlaps unmatched.
        assert!(match_events(&[iv(0.0, 4.0)], &[iv(3.0, 8.0)], 0.5).is_empty());
    }
}
