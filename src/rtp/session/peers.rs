//! Peers of a send session: where its packets go, by generation-checked handle.
//!
//! A peer is one receiver of the stream, whatever brought it: an `RTPMIC_DEST` entry, an RTSP
//! client over UDP or TCP, a multicast group. The session keeps a fixed table of peer slots,
//! allocated once; joining or leaving writes a slot and allocates nothing, so it can happen in
//! a real-time thread while the stream runs.
//!
//! Handles carry a generation (as slab or slotmap keys do): a slot reused for a new peer gets a
//! higher generation, so a late message about the peer that had the slot before (a removal, an
//! address change) is recognised as stale and ignored. Handles are made by whoever introduces
//! peers ([`PeerIds`]: the resolver for `RTPMIC_DEST`, the RTSP server for its clients), each
//! over its own range of slots, so a producer in another thread knows a peer's handle at once
//! and never has to wait for the stream thread to answer.

use std::net::SocketAddr;

/// A peer's handle: its slot and the generation the slot had when the peer was introduced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId {
    index: u32,
    generation: u32,
}

impl PeerId {
    pub const fn new(index: u32, generation: u32) -> PeerId {
        PeerId { index, generation }
    }

    /// The slot: the index of this peer's counters too.
    pub fn index(self) -> usize {
        self.index as usize
    }

    pub fn generation(self) -> u32 {
        self.generation
    }
}

/// Where one kind of a peer's packets goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// A UDP datagram to this address.
    Udp(SocketAddr),
    /// A `$`-framed packet on channel `channel` of the RTSP connection `conn` (RFC 2326
    /// §10.12, TCP-interleaved).
    Interleaved { conn: u32, channel: u8 },
}

impl Route {
    /// The address of a UDP route.
    pub fn udp(self) -> Option<SocketAddr> {
        match self {
            Route::Udp(a) => Some(a),
            Route::Interleaved { .. } => None,
        }
    }
}

/// What the session needs to know of a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerSpec {
    /// Where RTP goes; `None` while the address is not known (a host name that does not
    /// resolve yet): the peer exists, nothing is sent to it.
    pub rtp: Option<Route>,
    /// Where RTCP goes (RFC 3550 §11: the RTP port + 1 unless muxed, RFC 5761); `None`: no
    /// RTCP to this peer.
    pub rtcp: Option<Route>,
    /// RTCP shares the RTP port and socket (RFC 5761).
    pub rtcp_mux: bool,
    /// A multicast group: any member may report about the stream (RFC 3550 §6), from any
    /// address.
    pub multicast: bool,
}

impl PeerSpec {
    /// A UDP receiver at `rtp`: RTCP to port + 1 (RFC 3550 §11), or to the same port with
    /// `mux` (RFC 5761), or none when `rtcp` is off.
    pub fn udp(rtp: Option<SocketAddr>, rtcp: bool, mux: bool) -> PeerSpec {
        PeerSpec {
            rtp: rtp.map(Route::Udp),
            rtcp: rtp.filter(|_| rtcp).map(|a| Route::Udp(rtcp_address(a, mux))),
            rtcp_mux: mux,
            multicast: rtp.is_some_and(|a| a.ip().is_multicast()),
        }
    }
}

/// Where RTCP for an RTP address goes: the next higher (odd) port (RFC 3550 §11), or the
/// same port when muxed (RFC 5761 §4).
pub fn rtcp_address(rtp: SocketAddr, mux: bool) -> SocketAddr {
    let mut rtcp = rtp;
    if !mux {
        // set_port keeps an IPv6 zone (scope id).
        rtcp.set_port(rtp.port().wrapping_add(1));
    }
    rtcp
}

/// Hands out handles over the slots `first..first + count`, with a generation per slot. Used
/// by the thread that introduces peers (not a real-time one; it allocates only in `new`).
pub struct PeerIds {
    first: u32,
    generations: Box<[u32]>,
    in_use: Box<[bool]>,
}

impl PeerIds {
    pub fn new(first: usize, count: usize) -> PeerIds {
        PeerIds {
            first: first as u32,
            generations: vec![0; count].into_boxed_slice(),
            in_use: vec![false; count].into_boxed_slice(),
        }
    }

    /// A handle on a free slot of the range, with a generation none of the slot's earlier
    /// peers had; `None` when every slot is in use.
    pub fn allocate(&mut self) -> Option<PeerId> {
        let i = self.in_use.iter().position(|used| !used)?;
        self.in_use[i] = true;
        self.generations[i] = self.generations[i].wrapping_add(1);
        Some(PeerId::new(self.first + i as u32, self.generations[i]))
    }

    /// Gives the slot of `id` back (a stale handle changes nothing).
    pub fn release(&mut self, id: PeerId) {
        let Some(i) = (id.index as usize).checked_sub(self.first as usize) else {
            return;
        };
        if self.generations.get(i) == Some(&id.generation) {
            self.in_use[i] = false;
        }
    }
}

/// One slot of the table.
#[derive(Clone, Copy)]
struct Slot {
    generation: u32,
    peer: Option<PeerState>,
    /// Position in the dense list of present peers.
    position: usize,
}

/// A present peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerState {
    pub spec: PeerSpec,
    /// How many RTP packets the session had sent when the peer joined: a peer got RTP (and
    /// is owed a BYE when it leaves, RFC 3550 §6.6) once the session sent more.
    pub joined_at_packet: u64,
}

/// The session's fixed table of peers, with a dense list of the present ones so fan-out walks
/// only those.
pub struct Peers {
    slots: Box<[Slot]>,
    present: Box<[u32]>,
    count: usize,
}

/// What changing a peer did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// A new peer in the slot; a newer generation replaced whatever was there (`replaced`:
    /// its generation and state).
    Joined { replaced: Option<(u32, PeerState)> },
    /// The peer's routes changed.
    Updated { before: PeerState },
    /// Refused: the slot is beyond the table, or the handle is older than the slot's peer.
    Stale,
}

impl Peers {
    /// A table of `capacity` slots, allocated now.
    pub fn new(capacity: usize) -> Peers {
        Peers {
            slots: vec![
                Slot {
                    generation: 0,
                    peer: None,
                    position: 0,
                };
                capacity
            ]
            .into_boxed_slice(),
            present: vec![0; capacity].into_boxed_slice(),
            count: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Present peers.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Introduces the peer `id` (`packets`: RTP packets sent so far) or changes its routes.
    /// A handle of a newer generation than the slot's replaces the peer there; an older one
    /// is stale.
    pub fn set(&mut self, id: PeerId, spec: PeerSpec, packets: u64) -> Change {
        let Some(slot) = self.slots.get_mut(id.index()) else {
            return Change::Stale;
        };
        match slot.peer {
            Some(before) if slot.generation == id.generation => {
                slot.peer = Some(PeerState { spec, ..before });
                Change::Updated { before }
            }
            _ if slot.peer.is_some() && !newer(id.generation, slot.generation) => Change::Stale,
            replaced => {
                let replaced = replaced.map(|p| (slot.generation, p));
                slot.generation = id.generation;
                slot.peer = Some(PeerState {
                    spec,
                    joined_at_packet: packets,
                });
                if replaced.is_none() {
                    slot.position = self.count;
                    self.present[self.count] = id.index;
                    self.count += 1;
                }
                Change::Joined { replaced }
            }
        }
    }

    /// Removes the peer `id`; returns what it was (`None` for a stale or unknown handle).
    pub fn remove(&mut self, id: PeerId) -> Option<PeerState> {
        let slot = self.slots.get_mut(id.index())?;
        if slot.generation != id.generation {
            return None;
        }
        let gone = slot.peer.take()?;
        let position = slot.position;
        self.count -= 1;
        let last = self.present[self.count];
        self.present[position] = last;
        self.slots[last as usize].position = position;
        Some(gone)
    }

    pub fn get(&self, id: PeerId) -> Option<&PeerState> {
        let slot = self.slots.get(id.index())?;
        slot.peer.as_ref().filter(|_| slot.generation == id.generation)
    }

    pub fn get_mut(&mut self, id: PeerId) -> Option<&mut PeerState> {
        let slot = self.slots.get_mut(id.index())?;
        if slot.generation != id.generation {
            return None;
        }
        slot.peer.as_mut()
    }

    /// The present peers, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (PeerId, &PeerState)> + '_ {
        self.present[..self.count].iter().filter_map(|&i| {
            let slot = &self.slots[i as usize];
            slot.peer.as_ref().map(|p| (PeerId::new(i, slot.generation), p))
        })
    }

    /// The peer whose RTCP (or, for symmetric RTP/RTCP, RFC 4961, RTP) route is `from`:
    /// the same address and port (an IPv6 flow label or zone does not count).
    pub fn by_source(&self, from: SocketAddr) -> Option<(PeerId, &PeerState)> {
        let from = endpoint(from);
        self.iter().find(|(_, p)| {
            [p.spec.rtcp, p.spec.rtp]
                .into_iter()
                .flatten()
                .any(|r| r.udp().map(endpoint) == Some(from))
        })
    }
}

/// `a` is a newer generation than `b` (serial number arithmetic, RFC 1982, so the counter may
/// wrap).
fn newer(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000_0000
}

/// The address and port a datagram comes from, as compared: canonical, without an IPv6 flow
/// label or scope.
pub fn endpoint(a: SocketAddr) -> (std::net::IpAddr, u16) {
    let a = canonical(a);
    (a.ip(), a.port())
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is, so a report from `::ffff:10.0.0.2`
/// matches a peer at `10.0.0.2`.
pub fn canonical(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => a,
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(port: u16) -> PeerSpec {
        PeerSpec::udp(Some(SocketAddr::from(([10, 0, 0, 2], port))), true, false)
    }

    #[test]
    fn join_update_leave_and_stale_handles() {
        let mut peers = Peers::new(4);
        let mut ids = PeerIds::new(1, 3);
        let a = ids.allocate().unwrap();
        assert_eq!(a.index(), 1);
        assert_eq!(peers.set(a, spec(5004), 0), Change::Joined { replaced: None });
        assert!(matches!(peers.set(a, spec(6004), 0), Change::Updated { .. }));
        assert_eq!(peers.len(), 1);
        assert_eq!(peers.remove(a).map(|p| p.spec), Some(spec(6004)));
        ids.release(a);
        // The slot is handed out again with a newer generation; the old handle is stale.
        let b = ids.allocate().unwrap();
        assert_eq!((b.index(), b.generation()), (1, a.generation() + 1));
        peers.set(b, spec(7004), 0);
        assert_eq!(peers.remove(a), None, "a stale removal");
        assert_eq!(peers.set(a, spec(1), 0), Change::Stale, "a stale update");
        assert_eq!(peers.get(b).map(|p| p.spec), Some(spec(7004)));
        assert_eq!(
            peers.set(PeerId::new(9, 1), spec(1), 0),
            Change::Stale,
            "beyond the table"
        );
    }

    #[test]
    fn a_newer_generation_replaces_the_peer_in_its_slot() {
        let mut peers = Peers::new(2);
        peers.set(PeerId::new(0, 1), spec(5004), 0);
        let change = peers.set(PeerId::new(0, 2), spec(6004), 0);
        assert!(matches!(change, Change::Joined { replaced: Some(_) }));
        assert_eq!(peers.len(), 1);
        // Generations wrap (RFC 1982 arithmetic).
        peers.set(PeerId::new(1, u32::MAX), spec(1), 0);
        assert!(matches!(
            peers.set(PeerId::new(1, 0), spec(2), 0),
            Change::Joined { .. }
        ));
    }

    #[test]
    fn the_dense_list_follows_removals() {
        let mut peers = Peers::new(8);
        let ids: Vec<PeerId> = (0..8).map(|i| PeerId::new(i, 1)).collect();
        for (k, id) in ids.iter().enumerate() {
            peers.set(*id, spec(5000 + 2 * k as u16), 0);
        }
        for id in [ids[3], ids[0], ids[7]] {
            peers.remove(id);
        }
        let mut left: Vec<usize> = peers.iter().map(|(id, _)| id.index()).collect();
        left.sort();
        assert_eq!(left, vec![1, 2, 4, 5, 6]);
        let from = SocketAddr::from(([10, 0, 0, 2], 5001));
        assert_eq!(peers.by_source(from).map(|(id, _)| id), None, "peer 0 left");
        let from = SocketAddr::from(([10, 0, 0, 2], 5003));
        assert_eq!(
            peers.by_source(from).map(|(id, _)| id.index()),
            Some(1),
            "RTCP port of peer 1"
        );
        let mapped: SocketAddr = "[::ffff:10.0.0.2]:5002".parse().unwrap();
        assert_eq!(
            peers.by_source(mapped).map(|(id, _)| id.index()),
            Some(1),
            "symmetric RTP port, IPv4-mapped"
        );
    }

    #[test]
    fn rtcp_goes_to_the_next_port_unless_muxed() {
        let a: SocketAddr = "[::1]:5004".parse().unwrap();
        assert_eq!(rtcp_address(a, false).port(), 5005);
        assert_eq!(rtcp_address(a, true), a);
        assert_eq!(PeerSpec::udp(Some(a), false, false).rtcp, None);
    }
}
