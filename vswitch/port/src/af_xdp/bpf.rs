//! The XDP half of AF_XDP, with no compiler and no libbpf: the redirect
//! program is assembled here as eBPF instructions, and the map, the
//! program and the attachment are made with the `bpf(2)` syscall.
//!
//! The program is the classic AF_XDP redirect:
//!
//! ```text
//! r2 = *(u32 *)(r1 + 16)        ; ctx->rx_queue_index
//! r1 = map_fd ll                ; the XSKMAP (ld_imm64, src_reg = BPF_PSEUDO_MAP_FD)
//! r3 = XDP_PASS                 ; flags: the action when the slot is empty (Linux 5.3+)
//! call bpf_redirect_map         ; helper 51
//! exit                          ; its result is the verdict
//! ```
//!
//! so a frame arriving on queue `q` goes to the socket in slot `q` of the
//! map, and to the kernel's stack when that slot is empty.
//!
//! It is attached with `BPF_LINK_CREATE` (a bpf_link): the kernel detaches
//! it when the last descriptor of the link closes, so a vswitch that dies
//! leaves nothing attached, and a device that already has an XDP program
//! (or link) is refused instead of taken over.
//!
//! Struct layouts and numbers are those of the kernel UAPI headers
//! (`linux/bpf.h`, `linux/if_link.h`), checked against them.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

// `enum bpf_cmd`.
const BPF_MAP_CREATE: libc::c_int = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_int = 2;
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_LINK_CREATE: libc::c_int = 28;

/// `BPF_MAP_TYPE_XSKMAP`.
pub const BPF_MAP_TYPE_XSKMAP: u32 = 17;
/// `BPF_PROG_TYPE_XDP`.
pub const BPF_PROG_TYPE_XDP: u32 = 6;
/// `BPF_XDP` (`enum bpf_attach_type`).
pub const BPF_XDP: u32 = 37;
/// `BPF_PSEUDO_MAP_FD`: the `src_reg` of an `ld_imm64` whose immediate is a map descriptor.
pub const BPF_PSEUDO_MAP_FD: u8 = 1;
/// `BPF_FUNC_redirect_map`.
pub const BPF_FUNC_REDIRECT_MAP: i32 = 51;
/// `XDP_PASS` (`enum xdp_action`).
pub const XDP_PASS: i32 = 2;
/// Offset of `rx_queue_index` in `struct xdp_md`.
pub const XDP_MD_RX_QUEUE_INDEX: i16 = 16;
/// `XDP_FLAGS_SKB_MODE` (`linux/if_link.h`).
pub const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
/// `XDP_FLAGS_DRV_MODE`.
pub const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

// Opcode parts (`linux/bpf_common.h`, `linux/bpf.h`).
const BPF_LD: u8 = 0x00;
const BPF_LDX: u8 = 0x01;
const BPF_JMP: u8 = 0x05;
const BPF_ALU64: u8 = 0x07;
const BPF_W: u8 = 0x00;
const BPF_DW: u8 = 0x18;
const BPF_IMM: u8 = 0x00;
const BPF_MEM: u8 = 0x60;
const BPF_K: u8 = 0x00;
const BPF_MOV: u8 = 0xb0;
const BPF_CALL: u8 = 0x80;
const BPF_EXIT: u8 = 0x90;

/// One eBPF instruction, `struct bpf_insn`: opcode, destination and
/// source register (4 bits each), offset, immediate.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

const _: () = assert!(std::mem::size_of::<Insn>() == 8);

impl Insn {
    const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        // `__u8 dst_reg:4; __u8 src_reg:4;`: the first bit-field takes the
        // low bits on little-endian targets, the high bits on big-endian.
        let regs = if cfg!(target_endian = "little") { dst | (src << 4) } else { (dst << 4) | src };
        Insn { code, regs, off, imm }
    }

    /// `dst = *(u32 *)(src + off)`.
    const fn ldx_w(dst: u8, src: u8, off: i16) -> Insn {
        Insn::new(BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0)
    }

    /// `dst = map` (two instructions: `ld_imm64` with `BPF_PSEUDO_MAP_FD`).
    const fn ld_map_fd(dst: u8, fd: i32) -> [Insn; 2] {
        [Insn::new(BPF_LD | BPF_IMM | BPF_DW, dst, BPF_PSEUDO_MAP_FD, 0, fd), Insn::new(0, 0, 0, 0, 0)]
    }

    /// `dst = imm` (64-bit).
    const fn mov64_imm(dst: u8, imm: i32) -> Insn {
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
    }

    /// `call helper`.
    const fn call(helper: i32) -> Insn {
        Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, helper)
    }

    /// `exit`.
    const fn exit() -> Insn {
        Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
    }

    /// The 8 bytes the kernel reads.
    pub fn to_bytes(self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = self.regs;
        b[2..4].copy_from_slice(&self.off.to_ne_bytes());
        b[4..8].copy_from_slice(&self.imm.to_ne_bytes());
        b
    }
}

/// The redirect program for the XSKMAP `map_fd` (see the module docs).
pub fn redirect_program(map_fd: i32) -> [Insn; 6] {
    let [ld_lo, ld_hi] = Insn::ld_map_fd(1, map_fd);
    [
        Insn::ldx_w(2, 1, XDP_MD_RX_QUEUE_INDEX),
        ld_lo,
        ld_hi,
        Insn::mov64_imm(3, XDP_PASS),
        Insn::call(BPF_FUNC_REDIRECT_MAP),
        Insn::exit(),
    ]
}

// --- the bpf(2) syscall ----------------------------------------------------------

/// `union bpf_attr`, as bytes: the members used here are written at their
/// UAPI offsets; the rest stays zero, as the kernel requires.
#[repr(C, align(8))]
struct Attr([u8; 144]);

impl Attr {
    fn new() -> Attr {
        Attr([0; 144])
    }

    fn u32(&mut self, off: usize, v: u32) -> &mut Attr {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }

    fn u64(&mut self, off: usize, v: u64) -> &mut Attr {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }

    fn name(&mut self, off: usize, name: &str) -> &mut Attr {
        debug_assert!(name.len() < 16);
        self.0[off..off + name.len()].copy_from_slice(name.as_bytes());
        self
    }
}

/// Runs `bpf(cmd, attr)`; returns the (non-negative) result.
///
/// # Safety
/// Every pointer stored in `attr` must point to memory valid for what
/// `cmd` does with it (read or write, of the sizes given) for the call.
unsafe fn bpf(cmd: libc::c_int, attr: &mut Attr) -> io::Result<libc::c_int> {
    loop {
        // SAFETY: `attr` is a live, writable `union bpf_attr` of the size
        // passed; the pointers inside are the caller's responsibility.
        let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.0.as_mut_ptr(), std::mem::size_of::<Attr>()) };
        if r >= 0 {
            return Ok(r as libc::c_int);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// Takes ownership of a descriptor `bpf(2)` returned.
fn owned(fd: libc::c_int) -> OwnedFd {
    // SAFETY: `fd` is a fresh descriptor from bpf(2), owned by nothing else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Creates an XSKMAP of `entries` slots (key: queue index, value: socket).
pub fn create_xskmap(entries: u32) -> io::Result<OwnedFd> {
    let mut a = Attr::new();
    a.u32(0, BPF_MAP_TYPE_XSKMAP) // map_type
        .u32(4, 4) // key_size
        .u32(8, 4) // value_size
        .u32(12, entries) // max_entries
        .name(28, "vswitch_xsks"); // map_name
                                   // SAFETY: no pointers in a MAP_CREATE request.
    unsafe { bpf(BPF_MAP_CREATE, &mut a) }.map(owned)
}

/// Puts socket `sock_fd` in slot `key` of XSKMAP `map`.
pub fn xskmap_set(map: BorrowedFd<'_>, key: u32, sock_fd: BorrowedFd<'_>) -> io::Result<()> {
    let value: u32 = sock_fd.as_raw_fd() as u32;
    let mut a = Attr::new();
    a.u32(0, map.as_raw_fd() as u32) // map_fd
        .u64(8, &key as *const u32 as u64) // key
        .u64(16, &value as *const u32 as u64) // value
        .u64(24, 0); // flags: BPF_ANY
                     // SAFETY: `key` and `value` are live u32s (the map's key and value
                     // size) that the kernel only reads.
    unsafe { bpf(BPF_MAP_UPDATE_ELEM, &mut a) }.map(|_| ())
}

/// A program that failed to load: the error and the verifier's log.
#[derive(Debug)]
pub struct LoadError {
    /// What `bpf(BPF_PROG_LOAD)` returned.
    pub error: io::Error,
    /// The verifier log of a second attempt (empty if it gave none).
    pub log: String,
}

/// Loads `insns` as an XDP program (license GPL, expected attach type
/// `BPF_XDP`). On failure loads again with a verifier log and returns it.
pub fn load_xdp_program(insns: &[Insn]) -> Result<OwnedFd, LoadError> {
    const LICENSE: &[u8] = b"GPL\0";
    let attempt = |log: Option<&mut Vec<u8>>| {
        let mut a = Attr::new();
        a.u32(0, BPF_PROG_TYPE_XDP) // prog_type
            .u32(4, insns.len() as u32) // insn_cnt
            .u64(8, insns.as_ptr() as u64) // insns
            .u64(16, LICENSE.as_ptr() as u64) // license
            .name(48, "vswitch_xsk") // prog_name
            .u32(68, BPF_XDP); // expected_attach_type
        if let Some(buf) = log {
            a.u32(24, 1) // log_level
                .u32(28, buf.len() as u32) // log_size
                .u64(32, buf.as_mut_ptr() as u64); // log_buf
        }
        // EAGAIN happens when the verifier is interrupted: try again a few times.
        let mut tries = 0;
        loop {
            // SAFETY: `insns` (insn_cnt instructions) and the NUL-terminated
            // license are live and only read; the log buffer, when given,
            // is live and writable for log_size bytes.
            match unsafe { bpf(BPF_PROG_LOAD, &mut a) } {
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) && tries < 5 => tries += 1,
                r => return r,
            }
        }
    };
    match attempt(None) {
        Ok(fd) => Ok(owned(fd)),
        Err(error) => {
            let mut buf = vec![0u8; 64 << 10];
            let log = match attempt(Some(&mut buf)) {
                Ok(fd) => {
                    drop(owned(fd)); // loaded the second time: keep the first error
                    String::new()
                }
                Err(_) => {
                    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
                    String::from_utf8_lossy(&buf[..end]).trim().to_string()
                }
            };
            Err(LoadError { error, log })
        }
    }
}

/// Attaches XDP program `prog` to device `ifindex` (in the calling
/// thread's network namespace) through a bpf_link with `flags`
/// (`XDP_FLAGS_SKB_MODE` or `XDP_FLAGS_DRV_MODE`). Dropping the returned
/// descriptor detaches it.
pub fn link_xdp(prog: BorrowedFd<'_>, ifindex: u32, flags: u32) -> io::Result<OwnedFd> {
    let mut a = Attr::new();
    a.u32(0, prog.as_raw_fd() as u32) // prog_fd
        .u32(4, ifindex) // target_ifindex
        .u32(8, BPF_XDP) // attach_type
        .u32(12, flags); // flags
                         // SAFETY: no pointers in a LINK_CREATE request for XDP.
    unsafe { bpf(BPF_LINK_CREATE, &mut a) }.map(owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_endian = "little")]
    fn redirect_program_encodes_byte_for_byte() {
        let bytes: Vec<[u8; 8]> = redirect_program(7).iter().map(|i| i.to_bytes()).collect();
        assert_eq!(
            bytes,
            [
                [0x61, 0x12, 16, 0, 0, 0, 0, 0], // ldxw r2, [r1 + 16]
                [0x18, 0x11, 0, 0, 7, 0, 0, 0],  // lddw r1, map fd 7 (src_reg 1 = BPF_PSEUDO_MAP_FD)
                [0x00, 0x00, 0, 0, 0, 0, 0, 0],  // upper half of the 64-bit immediate
                [0xb7, 0x03, 0, 0, 2, 0, 0, 0],  // mov64 r3, XDP_PASS
                [0x85, 0x00, 0, 0, 51, 0, 0, 0], // call bpf_redirect_map
                [0x95, 0x00, 0, 0, 0, 0, 0, 0],  // exit
            ]
        );
        // A large descriptor number keeps its bytes.
        assert_eq!(redirect_program(0x0102_0304)[1].to_bytes()[4..], [4, 3, 2, 1]);
    }

    #[test]
    fn attr_members_land_at_their_uapi_offsets() {
        let mut a = Attr::new();
        a.u32(12, 0xaabb_ccdd).u64(32, 0x1122_3344_5566_7788).name(48, "vswitch_xsk");
        assert_eq!(a.0[12..16], 0xaabb_ccdd_u32.to_ne_bytes());
        assert_eq!(a.0[32..40], 0x1122_3344_5566_7788_u64.to_ne_bytes());
        assert_eq!(&a.0[48..60], b"vswitch_xsk\0");
        assert_eq!(std::mem::align_of::<Attr>(), 8);
    }
}
