//! The one backoff schedule of staleguard's waits: a first delay growing by a factor up to a cap, with
//! jitter, at least what a server asked for (`Retry-After`), bounded by a deadline. It only computes
//! delays; the callers sleep (the CDN wrappers' retries and polls, the edge checks' re-checks and the
//! origin probe). Randomness comes from the caller as a draw in `[0, 1)`, so a schedule is a pure
//! function and tests give the draws they want.

use std::time::Duration;

/// How a delay is spread so that many waiting clients do not wake up together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Jitter {
    /// The delay itself (polling, and tests that want exact times).
    None,
    /// "Full jitter": a uniform pause between zero and the delay.
    Full,
    /// The delay plus a uniform extra of up to this fraction of it (`0.5`: up to 50 % more).
    Extra(f64),
}

/// A backoff schedule: the `n`-th pause (from 1) is `first × factor^(n-1)`, at most `cap`, spread by
/// `jitter`.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    pub first: Duration,
    /// 2 doubles each pause; 1 keeps it; below 1 counts as 1.
    pub factor: f64,
    /// The largest pause before jitter (a `Retry-After` may ask for more).
    pub cap: Duration,
    pub jitter: Jitter,
}

/// What to do after a failed attempt, by [`Backoff::next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Wait this long, then try again.
    Wait(Duration),
    /// The pause (this long) would end after the deadline: do not wait, give up now.
    TooLate(Duration),
}

impl Backoff {
    /// A schedule without jitter.
    pub fn new(first: Duration, factor: f64, cap: Duration) -> Backoff {
        Backoff {
            first,
            factor,
            cap,
            jitter: Jitter::None,
        }
    }

    pub fn with_jitter(mut self, jitter: Jitter) -> Backoff {
        self.jitter = jitter;
        self
    }

    /// The `n`-th pause before jitter (`n` from 1; 0 counts as 1): `first × factor^(n-1)`, at most
    /// `cap`.
    pub fn ceiling(&self, n: u32) -> Duration {
        let factor = if self.factor.is_finite() {
            self.factor.max(1.0)
        } else {
            1.0
        };
        let exp = n.saturating_sub(1).min(1024) as i32;
        let secs = self.first.as_secs_f64() * factor.powi(exp);
        if !secs.is_finite() || secs >= self.cap.as_secs_f64() {
            self.cap
        } else {
            Duration::from_secs_f64(secs)
        }
    }

    /// The `n`-th pause with jitter, `draw` a uniform random number in `[0, 1)` (clamped there).
    pub fn delay(&self, n: u32, draw: f64) -> Duration {
        let ceiling = self.ceiling(n);
        let draw = if draw.is_finite() {
            draw.clamp(0.0, 1.0)
        } else {
            0.0
        };
        match self.jitter {
            Jitter::None => ceiling,
            Jitter::Full => ceiling.mul_f64(draw),
            Jitter::Extra(fraction) if fraction.is_finite() && fraction > 0.0 => {
                ceiling + ceiling.mul_f64(fraction * draw)
            }
            Jitter::Extra(_) => ceiling,
        }
    }

    /// The `n`-th pause, at least `retry_after` (what the server asked for), when it fits in `left`
    /// (the time before the deadline): [`Next::Wait`], or [`Next::TooLate`] when it would end after
    /// the deadline. For retries that must not start what they cannot finish.
    pub fn next(&self, n: u32, draw: f64, retry_after: Option<Duration>, left: Duration) -> Next {
        let pause = self.delay(n, draw).max(retry_after.unwrap_or_default());
        if pause > left {
            Next::TooLate(pause)
        } else {
            Next::Wait(pause)
        }
    }

    /// The `n`-th pause cut short to `left` (the time before the deadline), for waits that make one
    /// last attempt at the deadline (polls, re-checks): `None` when no time is left.
    pub fn until(&self, n: u32, draw: f64, left: Duration) -> Option<Duration> {
        (!left.is_zero()).then(|| self.delay(n, draw).min(left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn ceilings_grow_by_the_factor_up_to_the_cap() {
        let retry = Backoff::new(ms(500), 2.0, ms(20_000));
        let poll = Backoff::new(ms(1000), 1.5, ms(20_000));
        let flat = Backoff::new(ms(300), 0.5, ms(1000));
        let huge = Backoff::new(ms(1), 1e300, ms(5000));
        let cases: [(&Backoff, u32, Duration); 12] = [
            (&retry, 0, ms(500)),
            (&retry, 1, ms(500)),
            (&retry, 2, ms(1000)),
            (&retry, 6, ms(16_000)),
            (&retry, 7, ms(20_000)),
            (&retry, u32::MAX, ms(20_000)),
            (&poll, 2, ms(1500)),
            (&poll, 4, Duration::from_micros(3_375_000)),
            (&poll, 9, ms(20_000)),
            (&flat, 5, ms(300)),
            (&huge, 3, ms(5000)),
            (&Backoff::new(ms(2000), 2.0, ms(1000)), 1, ms(1000)),
        ];
        for (b, n, want) in cases {
            assert_eq!(b.ceiling(n), want, "{b:?} n={n}");
        }
    }

    #[test]
    fn jitter_spreads_the_delay() {
        let base = Backoff::new(ms(1000), 2.0, ms(4000));
        let cases: [(Jitter, u32, f64, Duration); 9] = [
            (Jitter::None, 1, 0.7, ms(1000)),
            (Jitter::Full, 1, 0.0, ms(0)),
            (Jitter::Full, 1, 0.25, ms(250)),
            (Jitter::Full, 3, 0.5, ms(2000)),
            (Jitter::Full, 3, 7.0, ms(4000)),
            (Jitter::Full, 3, f64::NAN, ms(0)),
            (Jitter::Extra(0.5), 1, 0.0, ms(1000)),
            (Jitter::Extra(0.5), 2, 0.5, ms(2500)),
            (Jitter::Extra(-1.0), 2, 0.5, ms(2000)),
        ];
        for (jitter, n, draw, want) in cases {
            let b = base.clone().with_jitter(jitter);
            assert_eq!(b.delay(n, draw), want, "{jitter:?} n={n} draw={draw}");
        }
    }

    #[test]
    fn next_honours_retry_after_and_the_deadline() {
        let b = Backoff::new(ms(500), 2.0, ms(20_000));
        let cases: [(u32, Option<Duration>, Duration, Next); 6] = [
            (1, None, ms(60_000), Next::Wait(ms(500))),
            (1, Some(ms(7000)), ms(60_000), Next::Wait(ms(7000))),
            (3, Some(ms(100)), ms(60_000), Next::Wait(ms(2000))),
            (5, None, ms(8000), Next::Wait(ms(8000))),
            (6, None, ms(8000), Next::TooLate(ms(16_000))),
            (
                1,
                Some(ms(3_600_000)),
                ms(60_000),
                Next::TooLate(ms(3_600_000)),
            ),
        ];
        for (n, after, left, want) in cases {
            assert_eq!(b.next(n, 0.0, after, left), want, "n={n} after={after:?}");
        }
    }

    #[test]
    fn until_cuts_the_pause_to_the_deadline() {
        let b = Backoff::new(ms(100), 2.0, ms(2000));
        let cases: [(u32, Duration, Option<Duration>); 4] = [
            (1, ms(5000), Some(ms(100))),
            (3, ms(5000), Some(ms(400))),
            (3, ms(250), Some(ms(250))),
            (3, Duration::ZERO, None),
        ];
        for (n, left, want) in cases {
            assert_eq!(b.until(n, 0.0, left), want, "n={n} left={left:?}");
        }
    }
}
