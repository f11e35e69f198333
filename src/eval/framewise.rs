//! Framewise detection metrics, the paper's: average precision and ROC AUC
//! of per-frame scores against per-frame truth, computed exactly (ties
//! included) rather than on a threshold grid.

use std::cmp::Ordering;

/// Scores of one class over frames, with whether each frame is a positive.
#[derive(Clone, Debug, Default)]
pub struct ScoredFrames {
    items: Vec<(f32, bool)>,
}

impl ScoredFrames {
    /// Adds one frame.
    pub fn push(&mut self, score: f32, positive: bool) {
        self.items.push((score, positive));
    }

    /// Frames that are positives.
    pub fn positives(&self) -> usize {
        self.items.iter().filter(|(_, p)| *p).count()
    }

    /// Frames in all.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether no frame was added.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Frames sorted by descending score; NaN scores count as lowest.
    fn ranked(&self) -> Vec<(f32, bool)> {
        let mut items = self.items.clone();
        items.sort_by(|a, b| desc(a.0, b.0));
        items
    }

    /// Average precision: precision at each distinct score threshold,
    /// weighted by the recall it adds (scikit-learn's
    /// `average_precision_score`). `None` without positives.
    pub fn average_precision(&self) -> Option<f64> {
        let positives = self.positives();
        if positives == 0 {
            return None;
        }
        let ranked = self.ranked();
        let (mut tp, mut seen, mut ap, mut i) = (0usize, 0usize, 0.0, 0);
        while i < ranked.len() {
            // Frames with equal scores pass a threshold together.
            let mut j = i;
            let mut gained = 0;
            while j < ranked.len() && desc(ranked[j].0, ranked[i].0) == Ordering::Equal {
                gained += usize::from(ranked[j].1);
                j += 1;
            }
            tp += gained;
            seen += j - i;
            // Summed per positive and divided once, so a perfect ranking
            // gives exactly 1 (the division per step drifted past it).
            ap += gained as f64 * (tp as f64 / seen as f64);
            i = j;
        }
        Some((ap / positives as f64).min(1.0))
    }

    /// Area under the ROC curve: the probability that a random positive
    /// outscores a random negative, ties counting half. `None` unless there
    /// are both positives and negatives.
    pub fn roc_auc(&self) -> Option<f64> {
        let positives = self.positives();
        let negatives = self.len() - positives;
        if positives == 0 || negatives == 0 {
            return None;
        }
        let ranked = self.ranked();
        // Walking from the top: each positive beats every negative below it.
        let (mut wins, mut negatives_above, mut i) = (0.0, 0usize, 0);
        while i < ranked.len() {
            let mut j = i;
            let (mut pos, mut neg) = (0usize, 0usize);
            while j < ranked.len() && desc(ranked[j].0, ranked[i].0) == Ordering::Equal {
                if ranked[j].1 {
                    pos += 1;
                } else {
                    neg += 1;
                }
                j += 1;
            }
            let negatives_below = negatives - negatives_above - neg;
            wins += pos as f64 * (negatives_below as f64 + 0.5 * neg as f64);
            negatives_above += neg;
            i = j;
        }
        Some(wins / (positives as f64 * negatives as f64))
    }
}

/// Descending order with NaN last.
fn desc(a: f32, b: f32) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => b.total_cmp(&a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(items: &[(f32, bool)]) -> ScoredFrames {
        let mut f = ScoredFrames::default();
        for &(s, p) in items {
            f.push(s, p);
        }
        f
    }

    #[test]
    fn perfect_and_inverted_rankings() {
        let good = frames(&[(0.9, true), (0.8, true), (0.2, false), (0.1, false)]);
        assert_eq!(good.average_precision(), Some(1.0));
        assert_eq!(good.roc_auc(), Some(1.0));
        let bad = frames(&[(0.1, true), (0.9, false)]);
        assert_eq!(bad.roc_auc(), Some(0.0));
        assert_eq!(bad.average_precision(), Some(0.5));
    }

    #[test]
    fn a_perfect_ranking_of_many_distinct_scores_is_exactly_1() {
        // 21 positives above 300 negatives, every score distinct: one recall
        // step per positive, which once summed to 1.0000000000000004.
        let mut items: Vec<(f32, bool)> = (0..21).map(|i| (0.9 + i as f32 * 1e-3, true)).collect();
        items.extend((0..300).map(|i| (i as f32 * 1e-3, false)));
        assert_eq!(frames(&items).average_precision(), Some(1.0));
    }

    #[test]
    fn matches_scikit_learn_on_a_small_case() {
        // sklearn: average_precision_score([0,0,1,1], [0.1,0.4,0.35,0.8])
        // = 0.8333..., roc_auc_score = 0.75.
        let f = frames(&[(0.1, false), (0.4, false), (0.35, true), (0.8, true)]);
        assert!((f.average_precision().expect("ap") - 5.0 / 6.0).abs() < 1e-12);
        assert_eq!(f.roc_auc(), Some(0.75));
    }

    #[test]
    fn ties_count_half_and_pass_thresholds_together() {
        let f = frames(&[(0.5, true), (0.5, false)]);
        assert_eq!(f.roc_auc(), Some(0.5));
        assert_eq!(f.average_precision(), Some(0.5));
        // All tied: AP is the positive rate.
        let f = frames(&[(0.3, true), (0.3, false), (0.3, false), (0.3, false)]);
        assert_eq!(f.average_precision(), Some(0.25));
    }

    #[test]
    fn undefined_without_both_kinds() {
        let f = frames(&[(0.3, false)]);
        assert_eq!(f.average_precision(), None);
        assert_eq!(f.roc_auc(), None);
        let f = frames(&[(0.3, true)]);
        assert_eq!(f.average_precision(), Some(1.0));
        assert_eq!(f.roc_auc(), None);
    }
}
