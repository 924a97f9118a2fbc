//! What the raw-protocol tests (`hostile.rs`, `hostile_server.rs`) share:
//! syscall helpers and the 128-byte control messages, built and read by
//! hand so the tests can send what our own encoder never would.

#![allow(dead_code)]

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The result of a syscall returning a descriptor (or 0), which must
/// have succeeded.
pub fn cvt(r: libc::c_int) -> RawFd {
    assert!(r >= 0, "{}", std::io::Error::last_os_error());
    r
}

/// A descriptor just returned by a syscall, owned.
pub fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful syscall (`cvt`).
    unsafe { OwnedFd::from_raw_fd(cvt(fd)) }
}

/// Sends `bytes` on `sock` with `fds` attached (up to 16). The peer may
/// have hung up already: fine for a case that expects it to.
pub fn send_with_fds(sock: &OwnedFd, bytes: &[u8], fds: &[RawFd]) {
    assert!(fds.len() <= 16, "at most 16 fds");
    let mut iov = libc::iovec { iov_base: bytes.as_ptr() as *mut _, iov_len: bytes.len() };
    let mut ctl = [0u64; 16];
    // SAFETY: all-zero msghdr is valid.
    let mut mh: libc::msghdr = unsafe { std::mem::zeroed() };
    mh.msg_iov = &mut iov;
    mh.msg_iovlen = 1;
    if !fds.is_empty() {
        let n = std::mem::size_of_val(fds) as u32;
        // SAFETY: CMSG macros over our aligned, zeroed buffer, big enough
        // for up to 16 fds (checked above).
        unsafe {
            mh.msg_control = ctl.as_mut_ptr().cast();
            mh.msg_controllen = libc::CMSG_SPACE(n) as _;
            let c = libc::CMSG_FIRSTHDR(&mh);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(n) as _;
            std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(c).cast::<RawFd>(), fds.len());
        }
    }
    // SAFETY: `mh` points at live buffers.
    let _ = unsafe { libc::sendmsg(sock.as_raw_fd(), &mh, libc::MSG_NOSIGNAL) };
}

/// A message's type.
pub fn ty(m: &[u8]) -> u16 {
    u16::from_le_bytes([m[0], m[1]])
}

/// A DISCONNECT's reason.
pub fn reason(m: &[u8]) -> String {
    let s = &m[6..102];
    String::from_utf8_lossy(&s[..s.iter().position(|&c| c == 0).unwrap()]).into_owned()
}

/// A message, for assertion texts.
pub fn describe(m: &[u8]) -> String {
    match ty(m) {
        8 => format!("DISCONNECT {:?}", reason(m)),
        t => format!("type {t}"),
    }
}

/// A message of type `t` with `pieces` written at their offsets.
pub fn msg(t: u16, pieces: &[(usize, &[u8])]) -> Vec<u8> {
    let mut b = vec![0u8; 128];
    b[0..2].copy_from_slice(&t.to_le_bytes());
    for (at, bytes) in pieces {
        b[*at..*at + bytes.len()].copy_from_slice(bytes);
    }
    b
}

/// A non-blocking eventfd.
pub fn eventfd() -> OwnedFd {
    // SAFETY: plain syscall.
    owned(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })
}
