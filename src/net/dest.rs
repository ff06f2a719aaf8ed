//! The destination table the sender thread sends from: one preallocated `sockaddr` slot per
//! configured destination, switched on, off or re-pointed by [`DestUpdate`]s from the
//! resolver, never reallocated.

use std::mem::{size_of, zeroed};
use std::net::SocketAddr;

/// A new address (or none) for destination `index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DestUpdate {
    pub index: usize,
    pub addr: Option<SocketAddr>,
}

impl DestUpdate {
    /// An empty update (ring slot initialiser).
    pub fn none() -> DestUpdate {
        DestUpdate {
            index: usize::MAX,
            addr: None,
        }
    }
}

/// Address family of a slot, or inactive (not resolved).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Inactive,
    V4,
    V6,
}

/// Every destination's current socket address.
pub struct DestTable {
    addrs: Box<[libc::sockaddr_storage]>,
    lens: Box<[libc::socklen_t]>,
    families: Box<[Family]>,
}

// SAFETY: sockaddr_storage is plain data.
unsafe impl Send for DestTable {}

impl DestTable {
    /// `initial[i]` is destination i's address, `None` while unresolved.
    pub fn new(initial: &[Option<SocketAddr>]) -> DestTable {
        let n = initial.len();
        // SAFETY: an all-zero sockaddr_storage is valid.
        let mut t = DestTable {
            addrs: (0..n).map(|_| unsafe { zeroed() }).collect(),
            lens: vec![0; n].into_boxed_slice(),
            families: vec![Family::Inactive; n].into_boxed_slice(),
        };
        for (i, a) in initial.iter().enumerate() {
            t.apply(DestUpdate { index: i, addr: *a });
        }
        t
    }

    pub fn len(&self) -> usize {
        self.families.len()
    }

    pub fn is_empty(&self) -> bool {
        self.families.is_empty()
    }

    /// Re-points (or switches off) one slot; updates for unknown indices are ignored.
    pub fn apply(&mut self, u: DestUpdate) {
        let Some(slot) = self.families.get_mut(u.index) else {
            return;
        };
        match u.addr {
            None => *slot = Family::Inactive,
            Some(a) => {
                let (ss, len) = sockaddr(&a);
                self.addrs[u.index] = ss;
                self.lens[u.index] = len;
                *slot = if a.is_ipv4() { Family::V4 } else { Family::V6 };
            }
        }
    }

    pub fn family(&self, i: usize) -> Family {
        self.families[i]
    }

    /// Pointer and length of slot `i` for `msg_name`. The pointer stays valid for the
    /// table's lifetime (the storage never moves).
    pub fn name(&mut self, i: usize) -> (*mut libc::sockaddr_storage, libc::socklen_t) {
        (&mut self.addrs[i] as *mut libc::sockaddr_storage, self.lens[i])
    }
}

/// `SocketAddr` → `sockaddr_storage` + length.
pub fn sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    let raw: socket2::SockAddr = (*addr).into();
    // SAFETY: zeroed storage is valid; socket2 gives a sockaddr of `raw.len()` bytes that
    // fits in sockaddr_storage.
    let mut ss: libc::sockaddr_storage = unsafe { zeroed() };
    unsafe {
        std::ptr::copy_nonoverlapping(
            raw.as_ptr().cast::<u8>(),
            (&mut ss as *mut libc::sockaddr_storage).cast::<u8>(),
            (raw.len() as usize).min(size_of::<libc::sockaddr_storage>()),
        )
    };
    (ss, raw.len() as libc::socklen_t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_switch_family_and_off() {
        let mut t = DestTable::new(&[Some("127.0.0.1:5".parse().unwrap()), None]);
        assert_eq!((t.family(0), t.family(1)), (Family::V4, Family::Inactive));
        t.apply(DestUpdate {
            index: 1,
            addr: Some("[::1]:7".parse().unwrap()),
        });
        t.apply(DestUpdate { index: 0, addr: None });
        t.apply(DestUpdate { index: 9, addr: None });
        assert_eq!((t.family(0), t.family(1)), (Family::Inactive, Family::V6));
        let (_, len) = t.name(1);
        assert_eq!(len as usize, size_of::<libc::sockaddr_in6>());
    }
}
