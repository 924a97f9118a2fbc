//! Thin wrappers over the system calls memif needs: memfd and eventfd,
//! shared mappings, `SOCK_SEQPACKET` unix sockets with `SCM_RIGHTS`,
//! `poll` and `epoll`. Each returns `io::Result` and owns what it opens
//! (`OwnedFd`, [`Mapping`]), so every error path closes and unmaps.

use std::ffi::CString;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr::{self, NonNull};

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn cvt_isize(r: isize) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// Wraps a descriptor a system call just returned.
fn owned(fd: libc::c_int) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful system call that
    // creates a new descriptor; nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

// --- memfd, eventfd ------------------------------------------------------

/// A new memfd of `size` bytes, sealed against shrinking (as VPP and DPDK
/// seal theirs), close-on-exec.
pub fn memfd_create(name: &str, size: u64) -> io::Result<OwnedFd> {
    let cname = CString::new(name.replace('\0', "?")).expect("NULs replaced");
    // SAFETY: `cname` is a valid NUL-terminated string; the flags are valid.
    let fd = cvt(unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) })?;
    let fd = owned(fd);
    let len = libc::off_t::try_from(size).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: plain syscall on a descriptor we own.
    cvt(unsafe { libc::ftruncate(fd.as_raw_fd(), len) })?;
    // SAFETY: plain fcntl on a descriptor we own.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, libc::F_SEAL_SHRINK) })?;
    Ok(fd)
}

/// Why a region descriptor from the peer is refused.
pub fn check_region_fd(fd: BorrowedFd<'_>, size: u64) -> Result<(), String> {
    // SAFETY: an all-zero `stat` is a valid value to be overwritten.
    let mut st: libc::stat = unsafe { mem::zeroed() };
    // SAFETY: `st` is a valid out-pointer; the descriptor is open.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } < 0 {
        return Err(format!("region fd: fstat: {}", io::Error::last_os_error()));
    }
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err("region fd is not a memfd".into());
    }
    // F_GET_SEALS only works on memfds (shmem/hugetlbfs): a regular file
    // on disk would let the peer truncate it under our mapping.
    // SAFETY: plain fcntl on an open descriptor.
    let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
    if seals < 0 {
        return Err("region fd is not a memfd".into());
    }
    if seals & libc::F_SEAL_SHRINK == 0 {
        // Seal it ourselves (the peer created it with MFD_ALLOW_SEALING but
        // did not seal): then the file can never shrink under the mapping,
        // so touching the mapping can never raise SIGBUS.
        // SAFETY: plain fcntl on an open descriptor.
        if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, libc::F_SEAL_SHRINK) } < 0 {
            return Err("region memfd cannot be sealed against shrinking".into());
        }
    }
    // Size checked after sealing: it can no longer go down.
    // SAFETY: as above.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } < 0 {
        return Err(format!("region fd: fstat: {}", io::Error::last_os_error()));
    }
    if (st.st_size as u64) < size {
        return Err(format!("region fd has {} bytes, less than the {size} announced", st.st_size));
    }
    Ok(())
}

/// A new non-blocking eventfd.
pub fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with valid flags.
    Ok(owned(cvt(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?))
}

/// Whether `fd` is an eventfd (an anonymous inode named `[eventfd]`).
pub fn is_eventfd(fd: BorrowedFd<'_>) -> bool {
    match std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())) {
        Ok(p) => p.as_os_str().as_bytes() == b"anon_inode:[eventfd]",
        Err(_) => false,
    }
}

/// Sets `O_NONBLOCK` on `fd`.
pub fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: plain fcntl calls on an open descriptor.
    unsafe {
        let fl = cvt(libc::fcntl(fd.as_raw_fd(), libc::F_GETFL))?;
        if fl & libc::O_NONBLOCK == 0 {
            cvt(libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK))?;
        }
    }
    Ok(())
}

/// Adds 1 to an eventfd's counter; errors (a full counter) are ignored:
/// the reader is awake anyway.
pub fn eventfd_signal(fd: RawFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a valid local; `fd` is open for as long
    // as the caller holds the object owning it.
    let _ = unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
}

/// Reads (and so resets) an eventfd's counter; 0 if it was not signalled.
pub fn eventfd_drain(fd: RawFd) -> u64 {
    let mut v: u64 = 0;
    // SAFETY: reads at most 8 bytes into a valid local.
    let n = unsafe { libc::read(fd, (&mut v as *mut u64).cast(), 8) };
    if n == 8 {
        v
    } else {
        0
    }
}

// --- shared mappings -----------------------------------------------------

/// A `MAP_SHARED` read-write mapping of a file, unmapped on drop.
#[derive(Debug)]
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory; who may access it when is decided
// by the types built on top (rings are accessed through atomics and raw
// copies only).
unsafe impl Send for Mapping {}
// SAFETY: as above: `Mapping` hands out only a raw pointer.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps the first `len` bytes of `fd`.
    pub fn map(fd: BorrowedFd<'_>, len: usize) -> io::Result<Mapping> {
        if len == 0 {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        // SAFETY: a fresh mapping at an address the kernel picks; it
        // aliases no Rust object.
        let p = unsafe {
            libc::mmap(ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd.as_raw_fd(), 0)
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping { ptr: NonNull::new(p.cast()).expect("mmap never returns NULL on success"), len })
    }
    /// Anonymous private memory of at least `len` bytes followed by an
    /// inaccessible guard page; returns the mapping and a pointer to the
    /// `len` bytes that end right at the guard page (so reading or writing
    /// one byte past them faults). `len` must be a multiple of 8.
    pub fn guarded(len: usize) -> io::Result<(Mapping, NonNull<u8>)> {
        const PAGE: usize = 4096;
        let pages = len.div_ceil(PAGE).max(1);
        let total = (pages + 1) * PAGE;
        // SAFETY: a fresh anonymous mapping; it aliases no Rust object.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                total,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let map = Mapping { ptr: NonNull::new(p.cast()).expect("mmap never returns NULL on success"), len: total };
        // SAFETY: the last page is inside the mapping we just made.
        cvt(unsafe { libc::mprotect(p.cast::<u8>().add(pages * PAGE).cast(), PAGE, libc::PROT_NONE) })?;
        // SAFETY: `pages * PAGE - len` is within the mapping.
        let start = unsafe { map.ptr.as_ptr().add(pages * PAGE - len) };
        Ok((map, NonNull::new(start).expect("inside a mapping")))
    }

    /// Start of the mapping.
    pub fn ptr(&self) -> NonNull<u8> {
        self.ptr
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `map` mapped; nothing refers to it
        // once the owner drops it (regions keep their mapping alive).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

// --- unix SOCK_SEQPACKET sockets -----------------------------------------

/// Where a memif control socket lives.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SocketAddr {
    /// A socket file (VPP's default is `/run/vpp/memif.sock`).
    Path(std::path::PathBuf),
    /// A name in the abstract namespace (no file; DPDK's default, e.g.
    /// `/run/memif.sock` used as a name). Scoped to the network namespace.
    Abstract(Vec<u8>),
}

impl SocketAddr {
    /// `@name` is an abstract name, anything else a path.
    pub fn parse(s: &str) -> SocketAddr {
        match s.strip_prefix('@') {
            Some(name) => SocketAddr::Abstract(name.as_bytes().to_vec()),
            None => SocketAddr::Path(s.into()),
        }
    }

    fn to_raw(&self) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
        // SAFETY: an all-zero sockaddr_un is valid.
        let mut sun: libc::sockaddr_un = unsafe { mem::zeroed() };
        sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let base = mem::size_of::<libc::sa_family_t>();
        let len = match self {
            SocketAddr::Path(p) => {
                let b = p.as_os_str().as_bytes();
                if b.is_empty() || b.len() >= sun.sun_path.len() || b.contains(&0) {
                    return Err(io::Error::new(io::ErrorKind::InvalidInput, "bad socket path"));
                }
                for (d, s) in sun.sun_path.iter_mut().zip(b) {
                    *d = *s as libc::c_char;
                }
                base + b.len() + 1
            }
            SocketAddr::Abstract(name) => {
                // As DPDK does: a leading NUL, then the name, and the
                // address length covers exactly that (no padding).
                if name.is_empty() || name.len() + 1 > sun.sun_path.len() {
                    return Err(io::Error::new(io::ErrorKind::InvalidInput, "bad abstract socket name"));
                }
                for (d, s) in sun.sun_path[1..].iter_mut().zip(name) {
                    *d = *s as libc::c_char;
                }
                base + 1 + name.len()
            }
        };
        Ok((sun, len as libc::socklen_t))
    }
}

impl std::fmt::Display for SocketAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SocketAddr::Path(p) => write!(f, "{}", p.display()),
            SocketAddr::Abstract(n) => write!(f, "@{}", String::from_utf8_lossy(n)),
        }
    }
}

fn seqpacket() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with valid arguments.
    Ok(owned(cvt(unsafe {
        libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, 0)
    })?))
}

/// Binds and listens on `addr`; for a path, sets `mode` on the socket
/// file before listening (so no client can connect while it has another
/// mode). An existing socket file nobody listens on is replaced; a live
/// one is `AddrInUse`; a file of another kind is refused.
pub fn listen(addr: &SocketAddr, mode: u32) -> io::Result<OwnedFd> {
    let fd = seqpacket()?;
    let (sun, len) = addr.to_raw()?;
    let bind = || {
        // SAFETY: `sun` is a valid address of `len` bytes.
        cvt(unsafe { libc::bind(fd.as_raw_fd(), (&sun as *const libc::sockaddr_un).cast(), len) })
    };
    if let Err(e) = bind() {
        let SocketAddr::Path(p) = addr else { return Err(e) };
        if e.kind() != io::ErrorKind::AddrInUse {
            return Err(e);
        }
        use std::os::unix::fs::FileTypeExt;
        let meta = std::fs::symlink_metadata(p)?;
        if !meta.file_type().is_socket() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", p.display()),
            ));
        }
        match connect(addr) {
            Ok(_) => return Err(io::Error::new(io::ErrorKind::AddrInUse, format!("{} is in use", p.display()))),
            Err(ce) if ce.kind() == io::ErrorKind::ConnectionRefused => {
                std::fs::remove_file(p)?;
                bind()?;
            }
            Err(ce) => return Err(ce),
        }
    }
    if let SocketAddr::Path(p) = addr {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))?;
    }
    // SAFETY: plain syscall on a socket we own.
    cvt(unsafe { libc::listen(fd.as_raw_fd(), 64) })?;
    Ok(fd)
}

/// Connects to `addr` (non-blocking socket; a unix connect completes or
/// fails at once).
pub fn connect(addr: &SocketAddr) -> io::Result<OwnedFd> {
    let fd = seqpacket()?;
    let (sun, len) = addr.to_raw()?;
    // SAFETY: `sun` is a valid address of `len` bytes.
    let r = unsafe { libc::connect(fd.as_raw_fd(), (&sun as *const libc::sockaddr_un).cast(), len) };
    if r < 0 {
        let e = io::Error::last_os_error();
        // A full backlog on a non-blocking unix socket: try again later.
        return Err(e);
    }
    Ok(fd)
}

/// Accepts one connection; `Ok(None)` when there is none waiting.
pub fn accept(listener: BorrowedFd<'_>) -> io::Result<Option<OwnedFd>> {
    // SAFETY: NULL address pointers are allowed; flags are valid.
    let r = unsafe {
        libc::accept4(listener.as_raw_fd(), ptr::null_mut(), ptr::null_mut(), libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK)
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::WouldBlock {
            return Ok(None);
        }
        return Err(e);
    }
    Ok(Some(owned(r)))
}

/// The peer's process id (`SO_PEERCRED`), if the kernel knows it.
pub fn peer_pid(fd: BorrowedFd<'_>) -> Option<i32> {
    // SAFETY: an all-zero ucred is valid.
    let mut cred: libc::ucred = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid out-pointers of the right size.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (r == 0 && cred.pid > 0).then_some(cred.pid)
}

/// Sends one datagram with at most one descriptor attached.
pub fn send(fd: BorrowedFd<'_>, data: &[u8], attach: Option<BorrowedFd<'_>>) -> io::Result<()> {
    let mut iov = libc::iovec { iov_base: data.as_ptr() as *mut libc::c_void, iov_len: data.len() };
    // Room for one descriptor, aligned for cmsghdr.
    let mut ctl = [0u64; 4];
    // SAFETY: an all-zero msghdr is valid.
    let mut mh: libc::msghdr = unsafe { mem::zeroed() };
    mh.msg_iov = &mut iov;
    mh.msg_iovlen = 1;
    if let Some(afd) = attach {
        // SAFETY: CMSG_SPACE is a pure computation.
        let space = unsafe { libc::CMSG_SPACE(mem::size_of::<RawFd>() as u32) } as usize;
        debug_assert!(space <= mem::size_of_val(&ctl));
        mh.msg_control = ctl.as_mut_ptr().cast();
        mh.msg_controllen = space as _;
        // SAFETY: msg_control points at `space` zeroed, aligned bytes, so
        // CMSG_FIRSTHDR is non-null and its data has room for one int.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&mh);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(mem::size_of::<RawFd>() as u32) as _;
            ptr::write_unaligned(libc::CMSG_DATA(c).cast::<RawFd>(), afd.as_raw_fd());
        }
    }
    // SAFETY: `mh` points at live buffers for the duration of the call.
    let n = cvt_isize(unsafe { libc::sendmsg(fd.as_raw_fd(), &mh, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) })?;
    if n != data.len() {
        return Err(io::Error::new(io::ErrorKind::WriteZero, "short send"));
    }
    Ok(())
}

/// Most descriptors accepted in one control message's ancillary data;
/// more are received (so they can be closed) but the message is refused.
pub const MAX_RECV_FDS: usize = 8;

/// One received datagram.
#[derive(Debug)]
pub struct Received {
    /// Bytes of the datagram (the first 256 if longer: see `truncated`).
    pub data: [u8; 256],
    /// Its length as received.
    pub len: usize,
    /// The datagram was longer than the buffer (`MSG_TRUNC`).
    pub truncated: bool,
    /// Ancillary data did not fit: descriptors were lost (`MSG_CTRUNC`).
    pub ctrunc: bool,
    /// Descriptors received with it (`SCM_RIGHTS`), owned: closed on drop.
    pub fds: Vec<OwnedFd>,
    /// Ancillary messages other than `SCM_RIGHTS` seen.
    pub other_cmsgs: usize,
}

/// Result of [`recv`].
#[derive(Debug)]
pub enum RecvOutcome {
    /// A datagram.
    Msg(Box<Received>),
    /// The peer closed the connection.
    Eof,
    /// Nothing to read now.
    WouldBlock,
}

/// Receives one datagram and any descriptors with it (close-on-exec).
pub fn recv(fd: BorrowedFd<'_>) -> io::Result<RecvOutcome> {
    let mut out =
        Box::new(Received { data: [0; 256], len: 0, truncated: false, ctrunc: false, fds: Vec::new(), other_cmsgs: 0 });
    let mut iov = libc::iovec { iov_base: out.data.as_mut_ptr().cast(), iov_len: out.data.len() };
    // Room for MAX_RECV_FDS descriptors (a 16-byte cmsghdr and 8 ints),
    // 8-byte aligned.
    let mut ctl = [0u64; 2 + MAX_RECV_FDS / 2];
    // SAFETY: an all-zero msghdr is valid.
    let mut mh: libc::msghdr = unsafe { mem::zeroed() };
    mh.msg_iov = &mut iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl.as_mut_ptr().cast();
    mh.msg_controllen = mem::size_of_val(&ctl) as _;
    // SAFETY: `mh` points at live buffers for the duration of the call.
    let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut mh, libc::MSG_CMSG_CLOEXEC | libc::MSG_DONTWAIT) };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::WouldBlock {
            return Ok(RecvOutcome::WouldBlock);
        }
        return Err(e);
    }
    // Take ownership of every descriptor first, so that any refusal below
    // closes them.
    // SAFETY: the kernel filled `msg_controllen` bytes of `ctl` with
    // well-formed cmsghdrs; CMSG_FIRSTHDR/NXTHDR stay within that length,
    // and SCM_RIGHTS payloads are arrays of ints it just installed in our
    // descriptor table.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&mh);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c);
                let payload = (*c).cmsg_len as usize - (data as usize - c as usize);
                for i in 0..payload / mem::size_of::<RawFd>() {
                    let raw = ptr::read_unaligned(data.cast::<RawFd>().add(i));
                    if raw >= 0 {
                        out.fds.push(OwnedFd::from_raw_fd(raw));
                    }
                }
            } else {
                out.other_cmsgs += 1;
            }
            c = libc::CMSG_NXTHDR(&mh, c);
        }
    }
    if n == 0 && out.fds.is_empty() {
        return Ok(RecvOutcome::Eof);
    }
    out.len = n as usize;
    out.truncated = mh.msg_flags & libc::MSG_TRUNC != 0;
    out.ctrunc = mh.msg_flags & libc::MSG_CTRUNC != 0;
    Ok(RecvOutcome::Msg(out))
}

// --- poll and epoll ------------------------------------------------------

/// `poll(2)` over `fds` for up to `timeout_ms` (-1: forever). EINTR is
/// reported as zero ready descriptors.
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> io::Result<usize> {
    // SAFETY: `fds` is a valid array of `fds.len()` pollfds.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(e);
    }
    Ok(r as usize)
}

/// A new epoll instance.
pub fn epoll_create() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall.
    Ok(owned(cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?))
}

/// Watches `fd` for readability in `ep`.
pub fn epoll_add(ep: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> io::Result<()> {
    let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: fd.as_raw_fd() as u64 };
    // SAFETY: `ev` is a valid event; both descriptors are open.
    cvt(unsafe { libc::epoll_ctl(ep.as_raw_fd(), libc::EPOLL_CTL_ADD, fd.as_raw_fd(), &mut ev) })?;
    Ok(())
}

/// Stops watching `fd` in `ep` (errors ignored: it may be gone already).
pub fn epoll_del(ep: BorrowedFd<'_>, fd: BorrowedFd<'_>) {
    // SAFETY: a NULL event is allowed for EPOLL_CTL_DEL.
    unsafe { libc::epoll_ctl(ep.as_raw_fd(), libc::EPOLL_CTL_DEL, fd.as_raw_fd(), ptr::null_mut()) };
}

/// Waits until `fd` is readable or `timeout_ms` passes; true if readable.
pub fn wait_readable(fd: BorrowedFd<'_>, timeout_ms: i32) -> io::Result<bool> {
    let mut p = [libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
    Ok(poll(&mut p, timeout_ms)? > 0 && p[0].revents & libc::POLLIN != 0)
}

/// Identity of a file (device, inode), to remove only our own socket file.
pub fn file_id(p: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(p).ok().map(|m| (m.dev(), m.ino()))
}
