//! The audio clock across gaps: how many samples an overrun or a device outage cost.
//!
//! Pure arithmetic on monotonic timestamps (RFC 3550 §5.1: the timestamp must advance by the
//! sampling instants that passed, even those never sent).

/// Index of the first sample of a read that follows a gap.
///
/// `expected` is the index the read would have had without a gap, `last_read_ns` when the
/// last good read returned, `now_ns` when this read returned with `frames` samples. The time
/// between the two reads, minus the samples this read delivered, was lost. Never earlier than
/// `expected`: the clock only moves forward.
pub fn index_after_gap(expected: u64, last_read_ns: u64, now_ns: u64, frames: u64, rate: u32) -> u64 {
    let elapsed_ns = now_ns.saturating_sub(last_read_ns);
    let elapsed = ((u128::from(elapsed_ns) * u128::from(rate) + 500_000_000) / 1_000_000_000) as u64;
    expected + elapsed.saturating_sub(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gap_is_time_minus_what_arrived() {
        // 100 ms between reads at 48 kHz, this read brought 960 samples: 3840 lost.
        assert_eq!(index_after_gap(48_000, 0, 100_000_000, 960, 48_000), 48_000 + 3840);
    }

    #[test]
    fn never_moves_backwards() {
        assert_eq!(index_after_gap(500, 1_000, 1_000, 960, 48_000), 500);
        assert_eq!(index_after_gap(500, 2_000, 1_000, 0, 48_000), 500);
    }
}
