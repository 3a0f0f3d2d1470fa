//! Timing on a shared, noisy machine: every subject runs in the same rounds as its baselines,
//! the order rotating each round, and a figure is the median over rounds.

use std::time::Instant;

/// One contender of a comparison: a name and a closure that runs one round and returns the
/// seconds it wants counted (setup inside the closure is left out by timing only the part that
/// matters, see [`timed`]).
pub struct Contender<'a> {
    pub name: &'static str,
    pub run: Box<dyn FnMut() -> f64 + 'a>,
}

impl<'a> Contender<'a> {
    pub fn new(name: &'static str, run: impl FnMut() -> f64 + 'a) -> Contender<'a> {
        Contender {
            name,
            run: Box::new(run),
        }
    }
}

/// Seconds per round of each contender, in the order given.
pub struct Rounds {
    pub names: Vec<&'static str>,
    pub seconds: Vec<Vec<f64>>,
}

impl Rounds {
    pub fn of(&self, name: &str) -> &[f64] {
        let i = self
            .names
            .iter()
            .position(|n| *n == name)
            .unwrap_or_else(|| panic!("no contender named {name}"));
        &self.seconds[i]
    }

    pub fn median(&self, name: &str) -> f64 {
        median(self.of(name))
    }
}

/// Run every contender once per round; round `r` starts with contender `r % n`, so none is
/// always first (caches, the other engineers' builds, CPU frequency).
pub fn interleave(rounds: usize, mut contenders: Vec<Contender<'_>>) -> Rounds {
    let n = contenders.len();
    let mut seconds = vec![Vec::with_capacity(rounds); n];
    for r in 0..rounds {
        for k in 0..n {
            let i = (r + k) % n;
            let s = (contenders[i].run)();
            seconds[i].push(s);
        }
    }
    Rounds {
        names: contenders.iter().map(|c| c.name).collect(),
        seconds,
    }
}

/// Seconds taken by `f`.
pub fn timed(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

pub fn median(xs: &[f64]) -> f64 {
    percentile(xs, 0.5)
}

/// Nearest-rank percentile (`p` in 0..=1) of `xs`; NaN when empty.
pub fn percentile(xs: &[f64], p: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    if p == 0.5 && v.len().is_multiple_of(2) {
        let m = v.len() / 2;
        return f64::midpoint(v[m - 1], v[m]);
    }
    let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_percentiles() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        let xs: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&xs, 0.99), 99.0);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn every_contender_leads_a_round() {
        let order = std::cell::RefCell::new(Vec::new());
        let rounds = interleave(
            3,
            vec![
                Contender::new("a", || {
                    order.borrow_mut().push('a');
                    1.0
                }),
                Contender::new("b", || {
                    order.borrow_mut().push('b');
                    2.0
                }),
            ],
        );
        assert_eq!(order.into_inner(), vec!['a', 'b', 'b', 'a', 'a', 'b']);
        assert_eq!(rounds.of("b"), &[2.0, 2.0, 2.0]);
    }
}
