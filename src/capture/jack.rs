//! libjack's messages, folded into the device error line instead of printed loose.
//!
//! board/sim's PCMs go through alsa-plugins' jack plugin, which loads libjack into rtpmic.
//! When the JACK server is absent, every open attempt makes libjack print four or five lines
//! ("Cannot connect to server socket err = No such file or directory", "jack server is not
//! running or cannot be started", "JackShmReadWritePtr::~JackShmReadWritePtr - Init not done
//! …") straight to stderr, i.e. into the journal, at every retry. No environment variable
//! silences them (`JACK_NO_START_SERVER` only stops the attempt to start a server, which the
//! plugin does not make anyway). libjack's own API does: `jack_set_error_function` and
//! `jack_set_info_function` replace the printing for the whole process.
//!
//! rtpmic does not link libjack, and must not load it on a board that has no use for it.
//! So [`quiet_libjack`] looks only for a libjack that is already loaded (`dlopen` with
//! `RTLD_NOLOAD`): after the first open attempt through the jack plugin it is, and from then
//! on the messages libjack gives while this thread opens the device are collected
//! ([`collect`]) and end up in the `device_error` line, like alsa-lib's. The very first
//! attempt's lines still reach stderr once (libjack is not loaded before it). Messages that
//! come at other times or on other threads (libjack's own, e.g. when the server goes away
//! mid-stream) are written to stderr as libjack would have.

use std::cell::RefCell;
use std::ffi::{c_char, CStr};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// Most bytes of libjack messages kept per open attempt.
const MAX_COLLECTED: usize = 1024;

thread_local! {
    /// libjack's messages on this thread while a [`Collector`] lives.
    static COLLECTED: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Set once our functions are in place in the loaded libjack.
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// What libjack calls instead of printing. Never panics (it is called from C).
extern "C" fn on_message(msg: *const c_char) {
    if msg.is_null() {
        return;
    }
    // SAFETY: libjack passes a NUL-terminated string valid for the duration of the call.
    let text = unsafe { CStr::from_ptr(msg) }.to_string_lossy();
    let kept = COLLECTED
        .try_with(|c| match c.try_borrow_mut().as_deref_mut() {
            Ok(Some(buf)) => {
                // The same line again (libjack repeats itself) adds nothing.
                if buf.len() < MAX_COLLECTED && !buf.lines().any(|l| l == text) {
                    buf.push_str(&text);
                    buf.push('\n');
                }
                true
            }
            _ => false,
        })
        .unwrap_or(false);
    if !kept {
        let _ = writeln!(std::io::stderr(), "{text}");
    }
}

/// Points libjack's error and info output at [`on_message`] if libjack is loaded in this
/// process (it never loads it); does nothing once done. The handle is never closed, so
/// libjack stays loaded with our functions in place.
pub fn quiet_libjack() {
    if INSTALLED.load(Relaxed) {
        return;
    }
    // SAFETY: with RTLD_NOLOAD dlopen only returns a handle to a library already loaded.
    let lib = unsafe { libc::dlopen(c"libjack.so.0".as_ptr(), libc::RTLD_LAZY | libc::RTLD_NOLOAD) };
    if lib.is_null() {
        return;
    }
    type Setter = unsafe extern "C" fn(extern "C" fn(*const c_char));
    for name in [c"jack_set_error_function", c"jack_set_info_function"] {
        // SAFETY: valid handle and symbol name.
        let f = unsafe { libc::dlsym(lib, name.as_ptr()) };
        if !f.is_null() {
            // SAFETY: both are `void jack_set_…_function(void (*)(const char *))` (jack/jack.h).
            unsafe { std::mem::transmute::<*mut libc::c_void, Setter>(f)(on_message) };
        }
    }
    INSTALLED.store(true, Relaxed);
}

/// Collects libjack's messages on this thread until [`Collector::take`] or drop.
pub struct Collector(());

/// Starts collecting libjack's messages on this thread.
pub fn collect() -> Collector {
    let _ = COLLECTED.try_with(|c| {
        if let Ok(mut c) = c.try_borrow_mut() {
            *c = Some(String::new());
        }
    });
    Collector(())
}

impl Collector {
    /// The messages so far, one per line; collecting stops.
    pub fn take(self) -> String {
        let text = COLLECTED
            .try_with(|c| c.try_borrow_mut().ok().and_then(|mut c| c.take()))
            .ok()
            .flatten()
            .unwrap_or_default();
        drop(self);
        text
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = COLLECTED.try_with(|c| {
            if let Ok(mut c) = c.try_borrow_mut() {
                *c = None;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_collected_on_this_thread_once_each() {
        let c = collect();
        on_message(c"Cannot connect to server socket".as_ptr());
        on_message(c"Init not done".as_ptr());
        on_message(c"Init not done".as_ptr());
        on_message(std::ptr::null());
        assert_eq!(c.take(), "Cannot connect to server socket\nInit not done\n");
        // Not collecting any more: nothing is kept.
        on_message(c"later".as_ptr());
        assert_eq!(collect().take(), "");
    }
}
