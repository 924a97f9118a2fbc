//! Kernel network devices, as the kernel-facing backends need them: name to
//! index, MAC address, MTU, administrative and operational state, and
//! running setup code inside another network namespace.
//!
//! Everything here is control path (a syscall or two per call) and goes
//! through `ioctl`s on a datagram socket. A [`NetDev`] remembers the
//! device by index and looks its name up again before each call, so it keeps
//! working when the device is renamed; it works in the network namespace
//! its socket was created in, which is the calling thread's namespace at
//! [`NetDev::open`] (see [`in_netns`]).
//!
//! Errors name the device and the step: `netdev veth0: set MTU 9000:
//! Invalid argument (os error 22)`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

/// Longest interface name the kernel takes (IFNAMSIZ less the NUL).
pub const MAX_NAME_LEN: usize = libc::IFNAMSIZ - 1;

/// An error that keeps `e`'s kind and says which device and step failed.
pub(crate) fn context(what: &str, name: &str, step: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {name}: {step}: {e}"))
}

/// Checks an interface name and lays it out as the kernel wants it.
pub(crate) fn ifname_bytes(name: &str) -> io::Result<[libc::c_char; libc::IFNAMSIZ]> {
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("interface name {name:?}: {why}"));
    if name.len() > MAX_NAME_LEN {
        return Err(bad(&format!("longer than {MAX_NAME_LEN} bytes")));
    }
    if name == "." || name == ".." || name.bytes().any(|b| b == b'/' || b == b':' || b == 0 || b.is_ascii_whitespace())
    {
        return Err(bad("contains a character the kernel refuses ('/', ':', NUL or whitespace)"));
    }
    let mut out = [0 as libc::c_char; libc::IFNAMSIZ];
    for (o, b) in out.iter_mut().zip(name.bytes()) {
        *o = b as libc::c_char;
    }
    Ok(out)
}

/// The name stored in an `ifreq`/`ifr_name` field.
pub(crate) fn ifname_string(raw: &[libc::c_char; libc::IFNAMSIZ]) -> String {
    let bytes: Vec<u8> = raw.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The index of interface `name` in the calling thread's network namespace.
/// A missing device is `ErrorKind::NotFound` with the name in the message.
pub fn ifindex(name: &str) -> io::Result<u32> {
    let raw = ifname_bytes(name)?;
    // SAFETY: `raw` is NUL-terminated (IFNAMSIZ bytes, name at most
    // IFNAMSIZ-1 of them, the rest zero) and lives across the call.
    let index = unsafe { libc::if_nametoindex(raw.as_ptr()) };
    if index == 0 {
        let e = io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::ENODEV) | Some(libc::ENXIO) => {
                io::Error::new(io::ErrorKind::NotFound, format!("netdev {name}: no such device"))
            }
            _ => context("netdev", name, "look up index", e),
        });
    }
    Ok(index)
}

/// Administrative and operational state of a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkState {
    /// Set up by an administrator (`IFF_UP`).
    pub admin_up: bool,
    /// Operationally up: up with carrier (`IFF_RUNNING`).
    pub running: bool,
}

/// A kernel network device, by index, with a socket for its `ioctl`s.
#[derive(Debug)]
pub struct NetDev {
    name: String,
    ifindex: u32,
    ctl: OwnedFd,
}

fn ioctl_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// An all-zero `ifreq` (a valid value: plain integers, arrays, a union of
/// such and one pointer, which zero makes null).
fn zeroed_ifreq() -> libc::ifreq {
    // SAFETY: see above: every field of `ifreq` accepts all-zero bytes.
    unsafe { std::mem::zeroed() }
}

/// Runs a device `ioctl` on `fd` with `req`.
fn dev_ioctl(fd: RawFd, request: libc::c_ulong, req: &mut libc::ifreq) -> io::Result<()> {
    // SAFETY: every request used here (SIOC[GS]IF*) reads and writes only
    // the `ifreq` it is given, which `req` points to for the whole call.
    let r = unsafe { libc::ioctl(fd, request as _, req as *mut libc::ifreq) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl NetDev {
    /// The device called `name` in the calling thread's network namespace.
    pub fn open(name: &str) -> io::Result<NetDev> {
        let ifindex = ifindex(name)?;
        let ctl = ioctl_socket().map_err(|e| context("netdev", name, "open control socket", e))?;
        Ok(NetDev { name: name.to_string(), ifindex, ctl })
    }

    /// The name given at open (see [`current_name`](Self::current_name)).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The interface index.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The device's name now, looked up by index (it may have been renamed).
    pub fn current_name(&self) -> io::Result<String> {
        let mut req = zeroed_ifreq();
        req.ifr_ifru.ifru_ifindex = self.ifindex as libc::c_int;
        dev_ioctl(self.ctl.as_raw_fd(), libc::SIOCGIFNAME as _, &mut req).map_err(|e| {
            if e.raw_os_error() == Some(libc::ENODEV) {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("netdev {} (index {}): no longer exists", self.name, self.ifindex),
                )
            } else {
                context("netdev", &self.name, "look up name by index", e)
            }
        })?;
        Ok(ifname_string(&req.ifr_name))
    }

    /// An `ifreq` naming the device as it is called now.
    fn request(&self) -> io::Result<libc::ifreq> {
        let name = self.current_name()?;
        let mut req = zeroed_ifreq();
        req.ifr_name = ifname_bytes(&name)?;
        Ok(req)
    }

    fn call(&self, step: &str, request: libc::c_ulong, req: &mut libc::ifreq) -> io::Result<()> {
        dev_ioctl(self.ctl.as_raw_fd(), request, req).map_err(|e| context("netdev", &self.name, step, e))
    }

    /// The MTU.
    pub fn mtu(&self) -> io::Result<u32> {
        let mut req = self.request()?;
        self.call("get MTU", libc::SIOCGIFMTU as _, &mut req)?;
        // SAFETY: SIOCGIFMTU filled the `ifru_mtu` member.
        Ok(unsafe { req.ifr_ifru.ifru_mtu } as u32)
    }

    /// Sets the MTU.
    pub fn set_mtu(&self, mtu: u32) -> io::Result<()> {
        let mut req = self.request()?;
        req.ifr_ifru.ifru_mtu = i32::try_from(mtu).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("netdev {}: MTU {mtu} out of range", self.name))
        })?;
        self.call(&format!("set MTU {mtu}"), libc::SIOCSIFMTU as _, &mut req)
    }

    /// The Ethernet address.
    pub fn mac(&self) -> io::Result<[u8; 6]> {
        let mut req = self.request()?;
        self.call("get MAC address", libc::SIOCGIFHWADDR as _, &mut req)?;
        // SAFETY: SIOCGIFHWADDR filled the `ifru_hwaddr` member.
        let sa = unsafe { req.ifr_ifru.ifru_hwaddr };
        let mut mac = [0u8; 6];
        for (m, &b) in mac.iter_mut().zip(sa.sa_data.iter()) {
            *m = b as u8;
        }
        Ok(mac)
    }

    /// Sets the Ethernet address.
    pub fn set_mac(&self, mac: [u8; 6]) -> io::Result<()> {
        let mut req = self.request()?;
        let mut sa = libc::sockaddr { sa_family: libc::ARPHRD_ETHER, sa_data: [0; 14] };
        for (d, &b) in sa.sa_data.iter_mut().zip(mac.iter()) {
            *d = b as libc::c_char;
        }
        req.ifr_ifru.ifru_hwaddr = sa;
        self.call(&format!("set MAC address {}", fmt_mac(&mac)), libc::SIOCSIFHWADDR as _, &mut req)
    }

    fn flags(&self) -> io::Result<(libc::ifreq, libc::c_int)> {
        let mut req = self.request()?;
        self.call("get flags", libc::SIOCGIFFLAGS as _, &mut req)?;
        // SAFETY: SIOCGIFFLAGS filled the `ifru_flags` member.
        let flags = unsafe { req.ifr_ifru.ifru_flags } as u16 as libc::c_int;
        Ok((req, flags))
    }

    /// Administrative and operational state.
    pub fn link(&self) -> io::Result<LinkState> {
        let (_, flags) = self.flags()?;
        Ok(LinkState { admin_up: flags & libc::IFF_UP != 0, running: flags & libc::IFF_RUNNING != 0 })
    }

    /// Sets the device administratively up or down.
    pub fn set_up(&self, up: bool) -> io::Result<()> {
        let (mut req, flags) = self.flags()?;
        let flags = if up { flags | libc::IFF_UP } else { flags & !libc::IFF_UP };
        req.ifr_ifru.ifru_flags = flags as libc::c_short;
        self.call(if up { "set up" } else { "set down" }, libc::SIOCSIFFLAGS as _, &mut req)
    }
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn fmt_mac(mac: &[u8; 6]) -> String {
    let [a, b, c, d, e, f] = *mac;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}

/// Where `ip netns` keeps the namespace called `name`.
pub fn netns_path(name: &str) -> PathBuf {
    Path::new("/run/netns").join(name)
}

/// Runs `f` on a new thread inside the network namespace at `netns` (a
/// path such as [`netns_path`] gives, or `/proc/PID/ns/net`) and returns
/// its result. Namespaces are per thread, so the caller's stays as it was;
/// sockets and tap devices created inside `f` stay in that namespace after
/// it returns, and queues opened there can be used from any thread.
pub fn in_netns<T, F>(netns: &Path, f: F) -> io::Result<T>
where
    T: Send,
    F: FnOnce() -> io::Result<T> + Send,
{
    let shown = netns.display().to_string();
    let file = std::fs::File::open(netns).map_err(|e| context("netns", &shown, "open", e))?;
    std::thread::scope(|s| {
        s.spawn(move || {
            // SAFETY: `file` is an open namespace file for the whole call;
            // setns only changes the namespace of this (new) thread.
            let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            if r < 0 {
                return Err(context("netns", &shown, "enter (setns)", io::Error::last_os_error()));
            }
            drop(file);
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_before_any_syscall() {
        assert!(ifname_bytes("veth0").is_ok());
        assert!(ifname_bytes(&"x".repeat(MAX_NAME_LEN)).is_ok());
        let e = ifname_bytes(&"x".repeat(MAX_NAME_LEN + 1)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("longer than 15"), "{e}");
        for bad in ["a/b", "a b", "a:b", ".."] {
            assert!(ifname_bytes(bad).is_err(), "{bad}");
        }
        let raw = ifname_bytes("tap7").unwrap();
        assert_eq!(ifname_string(&raw), "tap7");
    }

    #[test]
    fn loopback_is_found_and_missing_devices_are_named() {
        let lo = NetDev::open("lo").unwrap();
        assert_eq!(lo.ifindex(), ifindex("lo").unwrap());
        assert_eq!(lo.current_name().unwrap(), "lo");
        assert!(lo.mtu().unwrap() >= 1500);
        assert_eq!(lo.mac().unwrap(), [0; 6]);
        assert!(lo.link().unwrap().admin_up);
        let e = NetDev::open("vsw-nothere0").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains("vsw-nothere0"), "{e}");
    }

    #[test]
    fn in_netns_reports_a_missing_namespace_by_path() {
        let e = in_netns(Path::new("/run/netns/vsw-no-such-ns"), || Ok(())).unwrap_err();
        assert!(e.to_string().contains("/run/netns/vsw-no-such-ns"), "{e}");
    }
}
