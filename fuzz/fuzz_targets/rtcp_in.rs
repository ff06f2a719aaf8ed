//! The RTCP receive path, `rtpmic::net::rtcp_in::Reader::handle`, on a hostile datagram.
//!
//! Input: the datagram. Our SSRC is 0x00000abc (as in src/net/rtcp_in.rs's tests and the
//! seeds), our first sequence number 990, the RTP clock 48 kHz.
//!
//! `handle` is deterministic for a given table, so the datagram is given four times:
//! 1. believed (no address filter), empty table: never panics; `foreign` stays 0; `malformed`
//!    and `unrelated` are each at most 1 and not both; the datagram is accounted for
//!    (malformed + unrelated ≥ 1, or at least one report taken); `unrelated` means no report
//!    was taken; the table holds at most one entry per report taken, with the sender's address
//!    and values in their ranges (fraction lost 0..1, expected 1..=65536, jitter finite and
//!    ≥ 0, RTT 0..60000 ms).
//! 2. from the IPv4-mapped IPv6 form of a learned destination's RTCP address: believed,
//!    counted exactly as in 1.
//! 3. from a destination's address but another port: `foreign` 1, nothing else counted,
//!    table empty.
//! 4. believed, with a table that already holds receivers (0x77 and the SSRC of the first
//!    packet in the datagram, both from the sender's address, and enough others to leave one
//!    free slot): as in 1, except that a BYE removing a known receiver accounts for the
//!    datagram too; the table never grows past `MAX_RECEIVERS` entries and `unrelated` leaves
//!    it as it was.
#![no_main]

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;

use libfuzzer_sys::fuzz_target;
use rtpmic::net::rtcp_in::{Learned, Policy, Reader, ReceiverState, RtcpInStats, MAX_RECEIVERS};

const OUR_SSRC: u32 = 0xabc;

fn reader(allowed: Option<Vec<SocketAddr>>, learned: Vec<SocketAddr>) -> Reader {
    Reader::new(
        Policy {
            our_ssrc: OUR_SSRC,
            first_seq: 990,
            clock_rate: 48_000,
            allowed,
            learned: Learned::new(std::sync::Mutex::new(learned)),
            mux: false,
            session_bw: 6000.0,
            destinations: 1,
        },
        None,
    )
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
struct Counts {
    reports: u64,
    malformed: u64,
    foreign: u64,
    unrelated: u64,
}

fn counts(s: &RtcpInStats) -> Counts {
    Counts {
        reports: s.reports.load(Relaxed),
        malformed: s.malformed.load(Relaxed),
        foreign: s.foreign.load(Relaxed),
        unrelated: s.unrelated.load(Relaxed),
    }
}

fn check_entry(r: &ReceiverState, from: SocketAddr) {
    assert_eq!(r.from, from);
    assert!(r.reports >= 1);
    assert!((0.0..1.0).contains(&r.fraction_lost), "{r:?}");
    assert!((1..=65_536).contains(&r.expected), "{r:?}");
    assert!((-0x80_0000..=0x7f_ffff).contains(&r.cumulative_lost), "{r:?}");
    assert!(r.jitter_ms.is_finite() && r.jitter_ms >= 0.0, "{r:?}");
    if let Some(rtt) = r.rtt_ms {
        assert!((0.0..60_000.0).contains(&rtt), "{r:?}");
    }
}

fn other() -> SocketAddr {
    "10.0.0.3:5005".parse().unwrap()
}

/// Receivers that fill the table but for a slot (built once: cloned into each run).
fn filler() -> &'static [ReceiverState] {
    static FILL: std::sync::OnceLock<Vec<ReceiverState>> = std::sync::OnceLock::new();
    FILL.get_or_init(|| {
        (0..MAX_RECEIVERS as u32)
            .map(|i| state(0x5000_0000 + i, other()))
            .collect()
    })
}

/// `reports` of the receivers a run starts with.
const OLD: u64 = 1 << 40;

fn state(ssrc: u32, from: SocketAddr) -> ReceiverState {
    ReceiverState {
        ssrc,
        from,
        fraction_lost: 0.0,
        cumulative_lost: 0,
        expected: 1,
        jitter_ms: 0.0,
        rtt_ms: None,
        reports: OLD,
        heard_ns: 0,
    }
}

fuzz_target!(|data: &[u8]| {
    // The destination's RTP address is 10.0.0.2:5004; its RTCP address is port 5005.
    let rtp: SocketAddr = "10.0.0.2:5004".parse().unwrap();
    let dest: SocketAddr = "10.0.0.2:5005".parse().unwrap();
    // Arrival: some NTP time (its middle 32 bits feed the RTT).
    let arrival: u64 = 0xe9a1_0000_8000_0000 | u64::from(data.len() as u32);

    // 1. Believed, empty table.
    let s = RtcpInStats::default();
    reader(None, Vec::new()).handle(data, dest, arrival, 1, &s);
    let c = counts(&s);
    assert_eq!(c.foreign, 0, "{c:?}");
    assert!(c.malformed <= 1 && c.unrelated <= 1, "{c:?}");
    assert!(c.malformed + c.unrelated <= 1, "malformed and unrelated both: {c:?}");
    assert!(
        c.malformed + c.unrelated >= 1 || c.reports >= 1,
        "datagram not accounted for: {c:?}"
    );
    assert!(
        c.unrelated == 0 || c.reports == 0,
        "unrelated, yet reports taken: {c:?}"
    );
    {
        let t = s.receivers.lock().unwrap();
        assert!(t.len() as u64 <= c.reports, "{} entries from {c:?}", t.len());
        assert!(t.iter().map(|r| r.reports).sum::<u64>() <= c.reports);
        for (i, r) in t.iter().enumerate() {
            check_entry(r, dest);
            assert!(t[..i].iter().all(|o| o.ssrc != r.ssrc), "one entry per reporter");
        }
    }
    let first = c;

    // 2. From the IPv4-mapped form of the RTCP address of a destination the resolver learned.
    let mapped: SocketAddr = "[::ffff:10.0.0.2]:5005".parse().unwrap();
    let s = RtcpInStats::default();
    reader(Some(Vec::new()), vec![rtp]).handle(data, mapped, arrival, 1, &s);
    assert_eq!(counts(&s), first, "a learned, IPv4-mapped address is believed alike");

    // 3. From the destination's address, but neither its RTCP nor its RTP port.
    let s = RtcpInStats::default();
    reader(Some(vec![rtp]), Vec::new()).handle(data, "10.0.0.2:5006".parse().unwrap(), arrival, 1, &s);
    let c = counts(&s);
    assert_eq!(
        c,
        Counts {
            reports: 0,
            malformed: 0,
            foreign: 1,
            unrelated: 0
        }
    );
    assert!(s.receivers.lock().unwrap().is_empty());

    // 4. Believed, with receivers already known (one slot short of a full table, so one new
    // reporter fits and the next takes its place). Known entries carry `reports` ≥ OLD,
    // which an update keeps (it adds one) and a new entry does not have.
    let s = RtcpInStats::default();
    let before = {
        let mut t = s.receivers.lock().unwrap();
        t.reserve_exact(MAX_RECEIVERS);
        t.push(state(0x77, dest));
        if let Some(b) = data.get(4..8) {
            let ssrc = u32::from_be_bytes(b.try_into().unwrap());
            if ssrc != 0x77 {
                t.push(state(ssrc, dest));
            }
        }
        let known = [t[0].ssrc, t[t.len() - 1].ssrc];
        let room = MAX_RECEIVERS - 1 - t.len();
        t.extend(filler().iter().filter(|r| !known.contains(&r.ssrc)).take(room).cloned());
        assert_eq!(t.len(), MAX_RECEIVERS - 1);
        t.len()
    };
    reader(None, Vec::new()).handle(data, dest, arrival, 1, &s);
    let c = counts(&s);
    let t = s.receivers.lock().unwrap();
    assert_eq!(c.foreign, 0, "{c:?}");
    assert!(c.malformed + c.unrelated <= 1, "{c:?}");
    assert!(t.len() <= MAX_RECEIVERS, "table grew to {}", t.len());
    let kept = t.iter().filter(|r| r.reports >= OLD).count();
    let updated = t.iter().filter(|r| r.reports > OLD).count() as u64;
    let added = t.iter().filter(|r| r.reports < OLD).count() as u64;
    let shrank = kept < before;
    assert!(
        c.malformed + c.unrelated >= 1 || c.reports >= 1 || shrank,
        "datagram not accounted for: {c:?}"
    );
    assert!(
        updated + added <= c.reports,
        "{updated} updated + {added} added from {c:?}"
    );
    if c.unrelated == 1 {
        assert_eq!(c.reports, 0, "{c:?}");
        assert!(!shrank && t.len() == before, "an unrelated datagram changed the table");
    }
    for r in t.iter().filter(|r| r.from == dest) {
        check_entry(r, dest);
    }
});
