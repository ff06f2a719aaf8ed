//! The TCP-interleaved sink: RTP and RTCP for RTSP clients that pull over their RTSP
//! connection (RFC 2326 §10.12), from the sending thread to the RTSP thread, which owns the
//! socket.
//!
//! One bounded byte ring per connection slot, mapped at start (resident only once a
//! connection writes into it: see [`RingMemory`]). The sending thread (one
//! producer) frames each packet (`$`, channel, 16-bit length, the packet) straight into its
//! connection's ring, or drops the whole packet when it does not fit: that client alone
//! loses it (counted), nobody waits. The RTSP thread (the consumer, the only writer of the
//! socket) writes the ring out, finishing a frame before an RTSP response goes between two
//! frames, so only whole packets are ever on the wire. A client whose ring stays full longer
//! than `RTPMIC_RTSP_TCP_STALL_MS` (it stopped reading) is disconnected by the RTSP thread.
//!
//! Why not write the socket from the sending thread: RTSP responses go on the same byte
//! stream and must fall between frames, so one thread must own the writing; the RTSP thread
//! already waits on the socket for room, and the real-time thread must never wait.
//!
//! A slot is reused by later connections: each attach starts a new epoch, and a frame is
//! published with a compare-and-swap of (epoch, head), so a frame written for a connection
//! that left meanwhile is never published for the next one.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::*};

use crate::ring::Notifier;
use crate::rtsp::interleaved;

/// The smallest ring: 16 KiB, about 3 s of 32 kb/s Opus in 20 ms packets.
pub const MIN_RING_BYTES: usize = 16 * 1024;
/// The largest ring: 256 KiB, about 2.5 s of 48 kHz L16.
pub const MAX_RING_BYTES: usize = 256 * 1024;

/// Bytes one connection may have queued beyond what its socket took (the kernel's socket
/// buffer holds more before it): room for one second of a stream of `bytes_per_second`
/// (packets, framing and SRTP tags included), rounded up to a power of two — positions are
/// wrapping `u32`s, so a ring's size must divide 2^32 — and kept between
/// [`MIN_RING_BYTES`] and [`MAX_RING_BYTES`].
pub fn ring_bytes(bytes_per_second: u64) -> usize {
    usize::try_from(bytes_per_second)
        .ok()
        .and_then(usize::checked_next_power_of_two)
        .unwrap_or(MAX_RING_BYTES)
        .clamp(MIN_RING_BYTES, MAX_RING_BYTES)
}

/// One connection's ring.
struct Sink {
    /// The connection it belongs to (`ConnId::raw`), 0 when none.
    conn: AtomicU32,
    /// Epoch (high 32 bits) and write position (low 32 bits, wrapping).
    head: AtomicU64,
    /// Read position (wrapping, as the head's).
    tail: AtomicU32,
    /// Packets dropped because the ring was full.
    dropped: AtomicU64,
    /// When the first packet was dropped since the last one that fit (0: not full).
    full_since_ns: AtomicU64,
    /// This slot's bytes in the [`RingMemory`].
    buf: NonNull<u8>,
    /// How many: a power of two.
    size: usize,
}

impl Sink {
    /// Producer: copies `bytes` into the ring from position `at` on, wrapping at its end.
    ///
    /// # Safety
    /// Only bytes the consumer does not read: from the head on, up to tail + capacity (see
    /// the Sync impl of [`TcpSinks`]).
    unsafe fn write(&self, at: usize, bytes: &[u8]) {
        let start = at % self.size;
        let first = bytes.len().min(self.size - start);
        // SAFETY: both runs lie within this ring's `size` bytes (`bytes` is shorter than the
        // ring, checked by `push`), which the mapping holds while `self` lives; the caller
        // owns those bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.buf.as_ptr().add(start), first);
            std::ptr::copy_nonoverlapping(bytes.as_ptr().add(first), self.buf.as_ptr(), bytes.len() - first);
        }
    }

    /// Consumer: `len` bytes from ring offset `start` (not wrapping).
    ///
    /// # Safety
    /// Only published bytes (between tail and head), which the producer does not write until
    /// tail moves past them.
    unsafe fn read(&self, start: usize, len: usize) -> &[u8] {
        assert!(start + len <= self.size);
        // SAFETY: within the ring (asserted), held by the mapping while `self` lives; the
        // caller guarantees nobody writes these bytes meanwhile.
        unsafe { std::slice::from_raw_parts(self.buf.as_ptr().add(start), len) }
    }
}

/// The rings' bytes: one anonymous private mapping. The kernel hands its pages out zeroed
/// and makes them resident only as a connection first writes into them (under
/// `MCL_ONFAULT` they are locked then), so unused slots — every slot while all clients pull
/// over UDP — cost no memory. Hand-written because a heap allocation of this size would be
/// cleared, and so made resident, up front when the allocator reuses heap memory for it.
struct RingMemory {
    base: NonNull<u8>,
    len: usize,
}

impl RingMemory {
    fn new(len: usize) -> std::io::Result<RingMemory> {
        let len = len.max(1);
        // SAFETY: a fresh anonymous mapping; no existing memory is touched.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        NonNull::new(p.cast::<u8>())
            .map(|base| RingMemory { base, len })
            .ok_or_else(|| std::io::Error::from_raw_os_error(libc::ENOMEM))
    }

    /// Where the `index`th ring of `size` bytes starts.
    fn ring(&self, index: usize, size: usize) -> NonNull<u8> {
        assert!((index + 1) * size <= self.len, "ring {index} outside the mapping");
        // SAFETY: within the mapping (asserted).
        unsafe { self.base.add(index * size) }
    }
}

impl Drop for RingMemory {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once; the rings pointing into it are
        // dropped with it (both belong to the same TcpSinks).
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

/// The rings of every connection slot, shared by the sending thread and the RTSP thread.
pub struct TcpSinks {
    sinks: Box<[Sink]>,
    /// The bytes the sinks' `buf` point into.
    _memory: RingMemory,
    /// Wakes the RTSP thread when frames were queued.
    pub wake: Notifier,
    /// Frames queued since the RTSP thread last looked (so it knows to write).
    pending: AtomicUsize,
}

// SAFETY: each ring has one producer (the sending thread) and one consumer (the RTSP
// thread); the producer writes only bytes between head and tail + capacity, which the
// consumer does not read until head is published (Release/Acquire); the consumer reads only
// bytes before head and publishes its progress through tail.
unsafe impl Sync for TcpSinks {}
// SAFETY: the rings' pointers point into the mapping the same value owns; nothing is tied
// to the thread that made it.
unsafe impl Send for TcpSinks {}

fn pack(epoch: u32, pos: u32) -> u64 {
    (u64::from(epoch) << 32) | u64::from(pos)
}

fn unpack(h: u64) -> (u32, u32) {
    ((h >> 32) as u32, h as u32)
}

impl TcpSinks {
    /// `slots` rings (the RTSP server's connection slots) of `ring_bytes` each (a power of
    /// two, see [`ring_bytes`]). The memory is reserved now and touched only as clients use
    /// it.
    pub fn new(slots: usize, ring_bytes: usize) -> std::io::Result<TcpSinks> {
        assert!(ring_bytes.is_power_of_two() && ring_bytes <= MAX_RING_BYTES);
        let memory = RingMemory::new(slots * ring_bytes)?;
        Ok(TcpSinks {
            sinks: (0..slots)
                .map(|index| Sink {
                    conn: AtomicU32::new(0),
                    head: AtomicU64::new(0),
                    tail: AtomicU32::new(0),
                    dropped: AtomicU64::new(0),
                    full_since_ns: AtomicU64::new(0),
                    buf: memory.ring(index, ring_bytes),
                    size: ring_bytes,
                })
                .collect(),
            _memory: memory,
            wake: Notifier::new()?,
            pending: AtomicUsize::new(0),
        })
    }

    /// The slot of a connection id (`ConnId::raw`).
    fn slot(&self, conn: u32) -> Option<&Sink> {
        self.sinks.get(crate::rtsp::ConnId::from_raw(conn).index())
    }

    /// Sending thread: frames `packet` on `channel` into `conn`'s ring. `Err(ENOBUFS)` when
    /// it does not fit (dropped whole, counted), `Err(ENOTCONN)` when the connection is gone.
    /// No allocation, no lock, no system call (the RTSP thread is woken by
    /// [`TcpSinks::wake_consumer`] once per batch).
    pub fn push(&self, conn: u32, channel: u8, packet: &[u8], now_ns: u64) -> Result<usize, i32> {
        let Some(s) = self.slot(conn) else {
            return Err(libc::ENOTCONN);
        };
        // The head (with its epoch) before the owner: should `attach` give the slot to
        // another connection after this load, the epoch moves and the publish below fails;
        // if it did before, the owner read here is no longer `conn`.
        let h = s.head.load(Acquire);
        if conn == 0 || s.conn.load(Acquire) != conn {
            return Err(libc::ENOTCONN);
        }
        let Ok(header) = interleaved::header(channel, packet.len()) else {
            return Err(libc::EMSGSIZE);
        };
        let (epoch, pos) = unpack(h);
        let used = pos.wrapping_sub(s.tail.load(Acquire)) as usize;
        let need = header.len() + packet.len();
        if used + need > s.size {
            s.dropped.fetch_add(1, Relaxed);
            if s.full_since_ns.load(Relaxed) == 0 {
                s.full_since_ns.store(now_ns.max(1), Relaxed);
            }
            return Err(libc::ENOBUFS);
        }
        // SAFETY: the bytes from `pos` on, up to tail + capacity, belong to the producer
        // until head moves past them (see the Sync impl).
        unsafe {
            s.write(pos as usize, &header);
            s.write(pos as usize + header.len(), packet);
        }
        // Published only if no new connection took the slot meanwhile (same epoch).
        if s.head
            .compare_exchange(h, pack(epoch, pos.wrapping_add(need as u32)), Release, Relaxed)
            .is_err()
        {
            return Err(libc::ENOTCONN);
        }
        s.full_since_ns.store(0, Relaxed);
        self.pending.fetch_add(1, Relaxed);
        Ok(packet.len())
    }

    /// Sending thread, after a batch: wakes the RTSP thread if frames were queued and it
    /// waits.
    pub fn wake_consumer(&self) {
        if self.pending.load(Relaxed) > 0 {
            self.wake.notify();
        }
    }

    /// RTSP thread: the slot is `conn`'s from now on, empty.
    pub fn attach(&self, conn: u32) {
        let Some(s) = self.slot(conn) else { return };
        s.conn.store(0, Release);
        let (epoch, pos) = unpack(s.head.load(Acquire));
        // A new epoch first: a frame the producer is writing for the slot's previous
        // connection now fails to publish.
        s.head.store(pack(epoch.wrapping_add(1), pos), Release);
        s.tail.store(pos, Release);
        s.dropped.store(0, Relaxed);
        s.full_since_ns.store(0, Relaxed);
        s.conn.store(conn, Release);
    }

    /// RTSP thread: the connection is gone; what it had queued is dropped.
    pub fn detach(&self, conn: u32) {
        if let Some(s) = self.slot(conn).filter(|s| s.conn.load(Acquire) == conn) {
            s.conn.store(0, Release);
        }
    }

    /// RTSP thread: takes the "frames were queued" flag.
    pub fn take_pending(&self) -> bool {
        self.pending.swap(0, Relaxed) > 0
    }

    /// RTSP thread: the queued bytes of `conn` that are contiguous in the ring (the rest
    /// follows after [`TcpSinks::consume`]); empty when nothing is queued.
    pub fn queued(&self, conn: u32) -> &[u8] {
        let Some(s) = self.slot(conn).filter(|s| s.conn.load(Acquire) == conn) else {
            return &[];
        };
        let (_, head) = unpack(s.head.load(Acquire));
        let tail = s.tail.load(Acquire);
        let len = head.wrapping_sub(tail) as usize;
        let start = tail as usize % s.size;
        let contiguous = len.min(s.size - start);
        // SAFETY: bytes between tail and head were published by the producer and are not
        // written again until tail moves past them.
        unsafe { s.read(start, contiguous) }
    }

    /// RTSP thread: the length (header included) of the next frame queued for `conn`, if a
    /// whole one is queued (frames are published whole, so one is whenever anything is).
    pub fn next_frame_len(&self, conn: u32) -> Option<usize> {
        let s = self.slot(conn).filter(|s| s.conn.load(Acquire) == conn)?;
        let (_, head) = unpack(s.head.load(Acquire));
        let tail = s.tail.load(Acquire);
        if head.wrapping_sub(tail) < interleaved::HEADER_LEN as u32 {
            return None;
        }
        // SAFETY: as in `queued`: published bytes, read only.
        let at = |k: u32| unsafe { s.read(tail.wrapping_add(k) as usize % s.size, 1)[0] };
        let header = [at(0), at(1), at(2), at(3)];
        interleaved::parse_header(&header).map(|(_, len)| interleaved::HEADER_LEN + len)
    }

    /// RTSP thread: `n` bytes of [`TcpSinks::queued`] were written.
    pub fn consume(&self, conn: u32, n: usize) {
        if let Some(s) = self.slot(conn).filter(|s| s.conn.load(Acquire) == conn) {
            s.tail.fetch_add(n as u32, Release);
        }
    }

    /// RTSP thread: since when `conn`'s ring has been full (0: it is not), and the packets
    /// it dropped.
    pub fn congestion(&self, conn: u32) -> (u64, u64) {
        self.slot(conn)
            .filter(|s| s.conn.load(Acquire) == conn)
            .map_or((0, 0), |s| (s.full_since_ns.load(Relaxed), s.dropped.load(Relaxed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtsp::ConnId;

    /// Reads everything `conn` has queued, as the RTSP thread would.
    fn drain(s: &TcpSinks, conn: u32) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let q = s.queued(conn).to_vec();
            if q.is_empty() {
                return out;
            }
            s.consume(conn, q.len());
            out.extend(q);
        }
    }

    #[test]
    fn a_ring_holds_a_second_of_the_stream_within_its_bounds() {
        assert_eq!(ring_bytes(5_600), MIN_RING_BYTES, "32 kb/s Opus: the floor");
        assert_eq!(ring_bytes(99_200), 128 * 1024, "48 kHz L16 in 10 ms packets");
        assert_eq!(ring_bytes(20_000_000), MAX_RING_BYTES, "the ceiling");
        assert_eq!(ring_bytes(u64::MAX), MAX_RING_BYTES);
    }

    #[test]
    fn whole_frames_in_order_across_the_wrap_and_drops_when_full() {
        let s = TcpSinks::new(2, MIN_RING_BYTES).unwrap();
        let conn = ConnId::new(1, 1).raw();
        assert_eq!(s.push(conn, 0, b"x", 1), Err(libc::ENOTCONN), "not attached");
        s.attach(conn);
        let packet = [7u8; 1000];
        let mut written = Vec::new();
        // Fill, drain, fill again: the ring wraps.
        for round in 0..3 {
            let mut fit = 0;
            while s.push(conn, round, &packet, 10).is_ok() {
                fit += 1;
            }
            assert_eq!(fit, MIN_RING_BYTES / 1004, "whole frames only");
            assert_eq!(s.congestion(conn).0, 10, "full since the first drop");
            written.extend(drain(&s, conn));
            assert!(s.push(conn, round, &packet, 20).is_ok());
            assert_eq!(s.congestion(conn).0, 0, "room again");
            written.extend(drain(&s, conn));
        }
        // Parse what was written: every frame whole.
        let mut frames = 0;
        let mut rest = &written[..];
        while let Some((_, len)) = interleaved::parse_header(rest) {
            assert!(rest[4..4 + len].iter().all(|&b| b == 7));
            rest = &rest[4 + len..];
            frames += 1;
        }
        assert!(rest.is_empty());
        assert_eq!(frames, 3 * (MIN_RING_BYTES / 1004 + 1));
        assert!(s.congestion(conn).1 >= 3, "drops counted");
    }

    /// Pages of the rings' mapping that are resident (`mincore`).
    fn resident_pages(s: &TcpSinks) -> usize {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let mut vec = vec![0u8; s._memory.len.div_ceil(page)];
        // SAFETY: the mapping is live and page-aligned; `vec` has one byte per page.
        let r = unsafe { libc::mincore(s._memory.base.as_ptr().cast(), s._memory.len, vec.as_mut_ptr()) };
        assert_eq!(r, 0, "mincore: {}", std::io::Error::last_os_error());
        vec.iter().filter(|&&b| b & 1 == 1).count()
    }

    #[test]
    fn a_ring_costs_memory_only_once_its_connection_writes_into_it() {
        let s = TcpSinks::new(64, MIN_RING_BYTES).unwrap();
        assert_eq!(resident_pages(&s), 0, "nothing resident at start");
        let conn = ConnId::new(5, 1).raw();
        s.attach(conn);
        s.push(conn, 0, &[1u8; 100], 1).unwrap();
        assert_eq!(resident_pages(&s), 1, "one page of one ring");
        assert_eq!(drain(&s, conn).len(), 104);
    }

    #[test]
    fn a_slot_reused_by_another_connection_gets_nothing_of_the_old_one() {
        let s = TcpSinks::new(1, MIN_RING_BYTES).unwrap();
        let (old, new) = (ConnId::new(0, 1).raw(), ConnId::new(0, 2).raw());
        s.attach(old);
        s.push(old, 0, b"old", 1).unwrap();
        s.detach(old);
        assert_eq!(s.push(old, 0, b"late", 2), Err(libc::ENOTCONN));
        s.attach(new);
        assert!(s.queued(new).is_empty(), "the old connection's bytes are gone");
        assert_eq!(s.push(old, 0, b"late", 3), Err(libc::ENOTCONN));
        s.push(new, 1, b"new", 4).unwrap();
        assert_eq!(drain(&s, new), b"$\x01\x00\x03new");
    }
}
