//! The control messages: typed encode and decode, pure code, no I/O.
//!
//! Every message on the control socket is one 128-byte `SOCK_SEQPACKET`
//! datagram, packed and little-endian: a `u16` type at offset 0, then the
//! body of that type at offset 2, the rest zero. The layouts (offsets from
//! the start of the message):
//!
//! | type | body |
//! |---|---|
//! | 1 ACK | nothing |
//! | 2 HELLO | name\[32\]@2, min_version u16@34, max_version u16@36, max_region u16@38, max_m2s_ring u16@40, max_s2m_ring u16@42, max_log2_ring_size u8@44 |
//! | 3 INIT | version u16@2, id u32@4, mode u8@8, secret\[24\]@9, name\[32\]@33 |
//! | 4 ADD_REGION | index u16@2, size u64@4 (+ the region's memfd) |
//! | 5 ADD_RING | flags u16@2 (bit 0: S2M), index u16@4, region u16@6, offset u32@8, log2_ring_size u8@12, private_hdr_size u16@13 (+ the ring's eventfd) |
//! | 6 CONNECT, 7 CONNECTED | if_name\[32\]@2 |
//! | 8 DISCONNECT | code u32@2, string\[96\]@6 |
//!
//! Strings are C strings in fixed fields: NUL-terminated, except the
//! secret, which may fill all 24 bytes. The HELLO `max_*` fields are the
//! highest index the sender accepts (a count minus one): both VPP and DPDK
//! clients take `min(max + 1, configured)`.
//!
//! [`Msg::decode`] checks everything that does not depend on local
//! configuration or on where the handshake is: the size, the type, the
//! version, the mode, string termination and content, ring flags, the
//! private header size, ring and region index ranges, the log2 ring size
//! and the region size. What depends on state (the interface id exists,
//! the index is the next one, the secret matches) is the handshake's job.

use crate::{MAX_LOG2_RING_SIZE, MAX_QUEUES, MAX_REGIONS, MAX_REGION_SIZE, MIN_LOG2_RING_SIZE, VERSION};
use std::fmt;

/// Bytes in every control message.
pub const MSG_LEN: usize = 128;
/// Bytes of a name field (HELLO, INIT, CONNECT, CONNECTED), NUL included.
pub const NAME_LEN: usize = 32;
/// Bytes of the INIT secret field.
pub const SECRET_LEN: usize = 24;
/// Bytes of the DISCONNECT reason field, NUL included.
pub const REASON_LEN: usize = 96;

/// ADD_RING flag: the ring carries frames from client to server (S2M).
pub const ADD_RING_FLAG_S2M: u16 = 1;

/// Message type codes (`memif_msg_type_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum MsgType {
    /// 0: never valid on the wire.
    None = 0,
    /// 1: server's acknowledgement of INIT, ADD_REGION, ADD_RING.
    Ack = 1,
    /// 2: server's first message: its name and limits.
    Hello = 2,
    /// 3: client names the interface (id), mode, secret, its name.
    Init = 3,
    /// 4: client hands over a shared-memory region (fd attached).
    AddRegion = 4,
    /// 5: client describes a ring (eventfd attached).
    AddRing = 5,
    /// 6: client has sent everything; server should map and check.
    Connect = 6,
    /// 7: server accepted the rings: the link is up.
    Connected = 7,
    /// 8: either side, any time: the link goes down, with a reason.
    Disconnect = 8,
}

impl MsgType {
    /// The type for a wire code, if known.
    pub fn from_u16(v: u16) -> Option<MsgType> {
        Some(match v {
            0 => MsgType::None,
            1 => MsgType::Ack,
            2 => MsgType::Hello,
            3 => MsgType::Init,
            4 => MsgType::AddRegion,
            5 => MsgType::AddRing,
            6 => MsgType::Connect,
            7 => MsgType::Connected,
            8 => MsgType::Disconnect,
            _ => return None,
        })
    }

    /// The name used in logs and reasons.
    pub fn name(self) -> &'static str {
        match self {
            MsgType::None => "NONE",
            MsgType::Ack => "ACK",
            MsgType::Hello => "HELLO",
            MsgType::Init => "INIT",
            MsgType::AddRegion => "ADD_REGION",
            MsgType::AddRing => "ADD_RING",
            MsgType::Connect => "CONNECT",
            MsgType::Connected => "CONNECTED",
            MsgType::Disconnect => "DISCONNECT",
        }
    }
}

/// Interface mode (`memif_interface_mode_t`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Mode {
    /// 0: Ethernet frames (the only mode DPDK speaks).
    #[default]
    Ethernet,
    /// 1: IP packets, no Ethernet header.
    Ip,
    /// 2: punt/inject.
    PuntInject,
}

impl Mode {
    /// The wire value.
    pub fn to_u8(self) -> u8 {
        match self {
            Mode::Ethernet => 0,
            Mode::Ip => 1,
            Mode::PuntInject => 2,
        }
    }
    /// The mode for a wire value, if valid.
    pub fn from_u8(v: u8) -> Option<Mode> {
        match v {
            0 => Some(Mode::Ethernet),
            1 => Some(Mode::Ip),
            2 => Some(Mode::PuntInject),
            _ => None,
        }
    }
    /// `ethernet`, `ip` or `punt-inject`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Ethernet => "ethernet",
            Mode::Ip => "ip",
            Mode::PuntInject => "punt-inject",
        }
    }
}

/// Which way a ring carries frames. VPP says S2M/M2S (slave/master), DPDK
/// C2S/S2C (client/server): S2M is C2S.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client (slave) to server (master). The client produces `head`, the
    /// server consumes and writes `tail`.
    S2M,
    /// Server (master) to client (slave). The client posts empty buffers
    /// by advancing `head`, the server fills them and advances `tail`.
    M2S,
}

impl Direction {
    /// `s2m` or `m2s`.
    pub fn name(self) -> &'static str {
        match self {
            Direction::S2M => "s2m",
            Direction::M2S => "m2s",
        }
    }
}

/// A name field: at most 31 bytes of UTF-8 without control characters.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Name(String);

impl Name {
    /// Checks `s`: at most 31 bytes, no control characters (NUL included).
    pub fn new(s: &str) -> Result<Name, MsgError> {
        if s.len() >= NAME_LEN {
            return Err(MsgError::NameTooLong(s.len()));
        }
        if s.chars().any(char::is_control) {
            return Err(MsgError::NameInvalid);
        }
        Ok(Name(s.to_string()))
    }
    /// `s` cut to 31 bytes (on a character boundary) with control
    /// characters replaced by `?`: for names made up locally (versions).
    pub fn lossy(s: &str) -> Name {
        let mut out = String::new();
        for c in s.chars() {
            let c = if c.is_control() { '?' } else { c };
            if out.len() + c.len_utf8() >= NAME_LEN {
                break;
            }
            out.push(c);
        }
        Name(out)
    }
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The INIT secret: 1 to 24 bytes, no NUL. Compared in constant time.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    bytes: [u8; SECRET_LEN],
    len: u8,
}

impl Secret {
    /// Checks `s`: 1..=24 bytes, no NUL.
    pub fn new(s: &[u8]) -> Result<Secret, MsgError> {
        if s.is_empty() || s.len() > SECRET_LEN || s.contains(&0) {
            return Err(MsgError::SecretInvalid);
        }
        let mut bytes = [0; SECRET_LEN];
        bytes[..s.len()].copy_from_slice(s);
        Ok(Secret { bytes, len: s.len() as u8 })
    }
    /// The secret's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
    /// Equality without an early exit on the first differing byte.
    pub fn matches(&self, other: &Secret) -> bool {
        let mut diff = self.len ^ other.len;
        for (a, b) in self.bytes.iter().zip(other.bytes.iter()) {
            diff |= a ^ b;
        }
        diff == 0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bytes>)", self.len)
    }
}

/// A DISCONNECT reason: at most 95 bytes of text.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Reason(String);

impl Reason {
    /// `s` cut to 95 bytes (on a character boundary), control characters
    /// replaced by `?`. Reasons are informational, so never an error.
    pub fn new(s: &str) -> Reason {
        let mut out = String::new();
        for c in s.chars() {
            let c = if c.is_control() { '?' } else { c };
            if out.len() + c.len_utf8() >= REASON_LEN {
                break;
            }
            out.push(c);
        }
        Reason(out)
    }
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// HELLO: the server's name and limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    /// The server application's name (VPP and DPDK put their version here).
    pub name: Name,
    /// Lowest protocol version the server speaks.
    pub min_version: u16,
    /// Highest protocol version the server speaks.
    pub max_version: u16,
    /// Highest region index accepted.
    pub max_region: u16,
    /// Highest M2S ring index accepted.
    pub max_m2s_ring: u16,
    /// Highest S2M ring index accepted.
    pub max_s2m_ring: u16,
    /// Largest log2 ring size accepted.
    pub max_log2_ring_size: u8,
}

/// INIT: which interface the client wants and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Init {
    /// Protocol version; decode only accepts [`VERSION`].
    pub version: u16,
    /// Interface id on the server's socket.
    pub id: u32,
    /// Interface mode; must match the server's.
    pub mode: Mode,
    /// Secret, if any (an all-zero field is none).
    pub secret: Option<Secret>,
    /// The client application's name.
    pub name: Name,
}

/// ADD_REGION: a shared-memory region (its memfd travels with it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddRegion {
    /// Region index: 0, 1, ... in order.
    pub index: u16,
    /// Bytes the client says the region has.
    pub size: u64,
}

/// ADD_RING: where a ring lives (its interrupt eventfd travels with it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddRing {
    /// Which way the ring carries frames.
    pub direction: Direction,
    /// Ring index within its direction: 0, 1, ... in order.
    pub index: u16,
    /// Region holding the ring header and descriptors.
    pub region: u16,
    /// Offset of the ring header in that region.
    pub offset: u32,
    /// log2 of the number of descriptors.
    pub log2_ring_size: u8,
}

/// DISCONNECT: the link goes down.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disconnect {
    /// Error code (VPP and DPDK send 0).
    pub code: u32,
    /// Why.
    pub reason: Reason,
}

/// A control message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg {
    /// ACK.
    Ack,
    /// HELLO.
    Hello(Hello),
    /// INIT.
    Init(Init),
    /// ADD_REGION.
    AddRegion(AddRegion),
    /// ADD_RING.
    AddRing(AddRing),
    /// CONNECT with the client's interface name.
    Connect(Name),
    /// CONNECTED with the server's interface name.
    Connected(Name),
    /// DISCONNECT.
    Disconnect(Disconnect),
}

/// Why a message was refused. `Display` gives the text sent back in a
/// DISCONNECT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsgError {
    /// Not exactly 128 bytes.
    Length(usize),
    /// Type 0.
    NoneType,
    /// A type code above 8.
    UnknownType(u16),
    /// HELLO with min_version > max_version.
    VersionRange {
        /// min_version.
        min: u16,
        /// max_version.
        max: u16,
    },
    /// HELLO whose range does not include 2.0.
    IncompatibleVersion {
        /// min_version.
        min: u16,
        /// max_version.
        max: u16,
    },
    /// INIT with a version other than 2.0.
    UnsupportedVersion(u16),
    /// INIT mode not 0, 1 or 2.
    BadMode(u8),
    /// A name field without a NUL.
    NameUnterminated,
    /// A name with invalid UTF-8 or control characters.
    NameInvalid,
    /// A name of this many bytes (at most 31 fit).
    NameTooLong(usize),
    /// A secret that is empty where given, longer than 24 bytes, or has a
    /// NUL inside.
    SecretInvalid,
    /// A DISCONNECT string without a NUL.
    ReasonUnterminated,
    /// ADD_RING flags with bits other than S2M.
    RingFlags(u16),
    /// ADD_RING with private_hdr_size other than 0.
    PrivateHeader(u16),
    /// ADD_RING log2 ring size outside 8..=14.
    Log2RingSize(u8),
    /// ADD_RING index at or above [`MAX_QUEUES`].
    RingIndex(u16),
    /// ADD_REGION index at or above [`MAX_REGIONS`].
    RegionIndex(u16),
    /// ADD_REGION size 0 or above [`MAX_REGION_SIZE`].
    RegionSize(u64),
}

impl fmt::Display for MsgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            MsgError::Length(n) => write!(f, "invalid message size {n} (expected {MSG_LEN})"),
            MsgError::NoneType => write!(f, "message type 0"),
            MsgError::UnknownType(t) => write!(f, "unknown message type {t}"),
            MsgError::VersionRange { min, max } => {
                write!(f, "bad version range 0x{min:04x}..0x{max:04x}")
            }
            MsgError::IncompatibleVersion { min, max } => {
                write!(f, "incompatible protocol version 0x{min:04x}..0x{max:04x} (need 0x{VERSION:04x})")
            }
            MsgError::UnsupportedVersion(v) => write!(f, "unsupported version 0x{v:04x}"),
            MsgError::BadMode(m) => write!(f, "bad interface mode {m}"),
            MsgError::NameUnterminated => write!(f, "name not NUL-terminated"),
            MsgError::NameInvalid => write!(f, "name has invalid characters"),
            MsgError::NameTooLong(n) => write!(f, "name of {n} bytes too long (max 31)"),
            MsgError::SecretInvalid => write!(f, "invalid secret"),
            MsgError::ReasonUnterminated => write!(f, "disconnect string not NUL-terminated"),
            MsgError::RingFlags(x) => write!(f, "unknown ring flags 0x{x:x}"),
            MsgError::PrivateHeader(n) => write!(f, "private headers not supported (size {n})"),
            MsgError::Log2RingSize(n) => {
                write!(f, "log2 ring size {n} outside {MIN_LOG2_RING_SIZE}..={MAX_LOG2_RING_SIZE}")
            }
            MsgError::RingIndex(i) => write!(f, "ring index {i} too large (max {})", MAX_QUEUES - 1),
            MsgError::RegionIndex(i) => write!(f, "region index {i} too large (max {})", MAX_REGIONS - 1),
            MsgError::RegionSize(s) => write!(f, "bad region size {s}"),
        }
    }
}

impl std::error::Error for MsgError {}

// --- little-endian field access over a fixed message --------------------

fn get_u16(b: &[u8; MSG_LEN], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn get_u32(b: &[u8; MSG_LEN], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn get_u64(b: &[u8; MSG_LEN], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}
fn put_u16(b: &mut [u8; MSG_LEN], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn put_u32(b: &mut [u8; MSG_LEN], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put_u64(b: &mut [u8; MSG_LEN], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// The text of a NUL-terminated field; `None` if there is no NUL.
fn c_field(field: &[u8]) -> Option<&[u8]> {
    let n = field.iter().position(|&c| c == 0)?;
    Some(&field[..n])
}

fn get_name(b: &[u8; MSG_LEN], at: usize) -> Result<Name, MsgError> {
    let raw = c_field(&b[at..at + NAME_LEN]).ok_or(MsgError::NameUnterminated)?;
    let s = std::str::from_utf8(raw).map_err(|_| MsgError::NameInvalid)?;
    Name::new(s)
}

fn put_str(b: &mut [u8; MSG_LEN], at: usize, s: &[u8]) {
    b[at..at + s.len()].copy_from_slice(s);
}

// Field offsets (from the start of the 128-byte message).
const TYPE: usize = 0;
const BODY: usize = 2;
const HELLO_MIN_VERSION: usize = 34;
const HELLO_MAX_VERSION: usize = 36;
const HELLO_MAX_REGION: usize = 38;
const HELLO_MAX_M2S: usize = 40;
const HELLO_MAX_S2M: usize = 42;
const HELLO_MAX_LOG2: usize = 44;
const INIT_VERSION: usize = 2;
const INIT_ID: usize = 4;
const INIT_MODE: usize = 8;
const INIT_SECRET: usize = 9;
const INIT_NAME: usize = 33;
const REGION_INDEX: usize = 2;
const REGION_SIZE: usize = 4;
const RING_FLAGS: usize = 2;
const RING_INDEX: usize = 4;
const RING_REGION: usize = 6;
const RING_OFFSET: usize = 8;
const RING_LOG2: usize = 12;
const RING_PRIV: usize = 13;
const DISC_CODE: usize = 2;
const DISC_STRING: usize = 6;

impl Msg {
    /// The message's type.
    pub fn msg_type(&self) -> MsgType {
        match self {
            Msg::Ack => MsgType::Ack,
            Msg::Hello(_) => MsgType::Hello,
            Msg::Init(_) => MsgType::Init,
            Msg::AddRegion(_) => MsgType::AddRegion,
            Msg::AddRing(_) => MsgType::AddRing,
            Msg::Connect(_) => MsgType::Connect,
            Msg::Connected(_) => MsgType::Connected,
            Msg::Disconnect(_) => MsgType::Disconnect,
        }
    }

    /// The 128 bytes on the wire. Everything not part of the body is zero.
    pub fn encode(&self) -> [u8; MSG_LEN] {
        let mut b = [0u8; MSG_LEN];
        put_u16(&mut b, TYPE, self.msg_type() as u16);
        match self {
            Msg::Ack => {}
            Msg::Hello(h) => {
                put_str(&mut b, BODY, h.name.as_str().as_bytes());
                put_u16(&mut b, HELLO_MIN_VERSION, h.min_version);
                put_u16(&mut b, HELLO_MAX_VERSION, h.max_version);
                put_u16(&mut b, HELLO_MAX_REGION, h.max_region);
                put_u16(&mut b, HELLO_MAX_M2S, h.max_m2s_ring);
                put_u16(&mut b, HELLO_MAX_S2M, h.max_s2m_ring);
                b[HELLO_MAX_LOG2] = h.max_log2_ring_size;
            }
            Msg::Init(i) => {
                put_u16(&mut b, INIT_VERSION, i.version);
                put_u32(&mut b, INIT_ID, i.id);
                b[INIT_MODE] = i.mode.to_u8();
                if let Some(s) = &i.secret {
                    put_str(&mut b, INIT_SECRET, s.as_bytes());
                }
                put_str(&mut b, INIT_NAME, i.name.as_str().as_bytes());
            }
            Msg::AddRegion(r) => {
                put_u16(&mut b, REGION_INDEX, r.index);
                put_u64(&mut b, REGION_SIZE, r.size);
            }
            Msg::AddRing(r) => {
                let flags = if r.direction == Direction::S2M { ADD_RING_FLAG_S2M } else { 0 };
                put_u16(&mut b, RING_FLAGS, flags);
                put_u16(&mut b, RING_INDEX, r.index);
                put_u16(&mut b, RING_REGION, r.region);
                put_u32(&mut b, RING_OFFSET, r.offset);
                b[RING_LOG2] = r.log2_ring_size;
                put_u16(&mut b, RING_PRIV, 0);
            }
            Msg::Connect(n) | Msg::Connected(n) => put_str(&mut b, BODY, n.as_str().as_bytes()),
            Msg::Disconnect(d) => {
                put_u32(&mut b, DISC_CODE, d.code);
                put_str(&mut b, DISC_STRING, d.reason.as_str().as_bytes());
            }
        }
        b
    }

    /// Parses and checks one message (see the module docs for what is
    /// checked here).
    pub fn decode(bytes: &[u8]) -> Result<Msg, MsgError> {
        let b: &[u8; MSG_LEN] = bytes.try_into().map_err(|_| MsgError::Length(bytes.len()))?;
        let t = get_u16(b, TYPE);
        let t = MsgType::from_u16(t).ok_or(MsgError::UnknownType(t))?;
        Ok(match t {
            MsgType::None => return Err(MsgError::NoneType),
            MsgType::Ack => Msg::Ack,
            MsgType::Hello => {
                let min_version = get_u16(b, HELLO_MIN_VERSION);
                let max_version = get_u16(b, HELLO_MAX_VERSION);
                if min_version > max_version {
                    return Err(MsgError::VersionRange { min: min_version, max: max_version });
                }
                if !(min_version..=max_version).contains(&VERSION) {
                    return Err(MsgError::IncompatibleVersion { min: min_version, max: max_version });
                }
                Msg::Hello(Hello {
                    name: get_name(b, BODY)?,
                    min_version,
                    max_version,
                    max_region: get_u16(b, HELLO_MAX_REGION),
                    max_m2s_ring: get_u16(b, HELLO_MAX_M2S),
                    max_s2m_ring: get_u16(b, HELLO_MAX_S2M),
                    max_log2_ring_size: b[HELLO_MAX_LOG2],
                })
            }
            MsgType::Init => {
                let version = get_u16(b, INIT_VERSION);
                if version != VERSION {
                    return Err(MsgError::UnsupportedVersion(version));
                }
                let mode = Mode::from_u8(b[INIT_MODE]).ok_or(MsgError::BadMode(b[INIT_MODE]))?;
                let field = &b[INIT_SECRET..INIT_SECRET + SECRET_LEN];
                // A C string of up to 24 bytes: NUL-terminated if shorter.
                let raw = c_field(field).unwrap_or(field);
                let secret = if raw.is_empty() { None } else { Some(Secret::new(raw)?) };
                Msg::Init(Init { version, id: get_u32(b, INIT_ID), mode, secret, name: get_name(b, INIT_NAME)? })
            }
            MsgType::AddRegion => {
                let index = get_u16(b, REGION_INDEX);
                if usize::from(index) >= MAX_REGIONS {
                    return Err(MsgError::RegionIndex(index));
                }
                let size = get_u64(b, REGION_SIZE);
                if size == 0 || size > MAX_REGION_SIZE {
                    return Err(MsgError::RegionSize(size));
                }
                Msg::AddRegion(AddRegion { index, size })
            }
            MsgType::AddRing => {
                let flags = get_u16(b, RING_FLAGS);
                if flags & !ADD_RING_FLAG_S2M != 0 {
                    return Err(MsgError::RingFlags(flags));
                }
                let private = get_u16(b, RING_PRIV);
                if private != 0 {
                    return Err(MsgError::PrivateHeader(private));
                }
                let index = get_u16(b, RING_INDEX);
                if usize::from(index) >= MAX_QUEUES {
                    return Err(MsgError::RingIndex(index));
                }
                let region = get_u16(b, RING_REGION);
                if usize::from(region) >= MAX_REGIONS {
                    return Err(MsgError::RegionIndex(region));
                }
                let log2_ring_size = b[RING_LOG2];
                if !(MIN_LOG2_RING_SIZE..=MAX_LOG2_RING_SIZE).contains(&log2_ring_size) {
                    return Err(MsgError::Log2RingSize(log2_ring_size));
                }
                let direction = if flags & ADD_RING_FLAG_S2M != 0 { Direction::S2M } else { Direction::M2S };
                Msg::AddRing(AddRing { direction, index, region, offset: get_u32(b, RING_OFFSET), log2_ring_size })
            }
            MsgType::Connect => Msg::Connect(get_name(b, BODY)?),
            MsgType::Connected => Msg::Connected(get_name(b, BODY)?),
            MsgType::Disconnect => {
                let raw = c_field(&b[DISC_STRING..DISC_STRING + REASON_LEN]).ok_or(MsgError::ReasonUnterminated)?;
                Msg::Disconnect(Disconnect {
                    code: get_u32(b, DISC_CODE),
                    reason: Reason::new(&String::from_utf8_lossy(raw)),
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message built byte by byte from the C layout: type, then
    /// (offset, bytes) pieces.
    fn raw(t: u16, pieces: &[(usize, &[u8])]) -> [u8; MSG_LEN] {
        let mut b = [0u8; MSG_LEN];
        b[0..2].copy_from_slice(&t.to_le_bytes());
        for (at, bytes) in pieces {
            b[*at..*at + bytes.len()].copy_from_slice(bytes);
        }
        b
    }

    fn roundtrip(m: &Msg, bytes: &[u8; MSG_LEN]) {
        assert_eq!(&m.encode(), bytes, "encode {m:?}");
        assert_eq!(&Msg::decode(bytes).unwrap(), m, "decode");
    }

    #[test]
    fn ack_is_type_1_and_zeros() {
        let mut b = [0u8; MSG_LEN];
        b[0] = 1;
        roundtrip(&Msg::Ack, &b);
    }

    #[test]
    fn hello_layout() {
        let b = raw(
            2,
            &[
                (2, b"VPP 25.06"),
                (34, &[0x00, 0x02]),
                (36, &[0x00, 0x02]),
                (38, &[0x0f, 0x00]),
                (40, &[0x07, 0x00]),
                (42, &[0x06, 0x00]),
                (44, &[14]),
            ],
        );
        let m = Msg::Hello(Hello {
            name: Name::new("VPP 25.06").unwrap(),
            min_version: 0x0200,
            max_version: 0x0200,
            max_region: 15,
            max_m2s_ring: 7,
            max_s2m_ring: 6,
            max_log2_ring_size: 14,
        });
        roundtrip(&m, &b);
    }

    #[test]
    fn hello_version_checks() {
        let mk = |min: u16, max: u16| raw(2, &[(34, &min.to_le_bytes()), (36, &max.to_le_bytes())]);
        assert_eq!(Msg::decode(&mk(0x0100, 0x0100)), Err(MsgError::IncompatibleVersion { min: 0x100, max: 0x100 }));
        assert_eq!(Msg::decode(&mk(0x0300, 0x0200)), Err(MsgError::VersionRange { min: 0x300, max: 0x200 }));
        assert!(matches!(Msg::decode(&mk(0x0100, 0x0300)), Ok(Msg::Hello(_))));
    }

    #[test]
    fn init_layout_with_secret_and_mode() {
        let b = raw(
            3,
            &[(2, &[0x00, 0x02]), (4, &[0x78, 0x56, 0x34, 0x12]), (8, &[1]), (9, b"s3cret"), (33, b"DPDK 22.11.11")],
        );
        let m = Msg::Init(Init {
            version: VERSION,
            id: 0x1234_5678,
            mode: Mode::Ip,
            secret: Some(Secret::new(b"s3cret").unwrap()),
            name: Name::new("DPDK 22.11.11").unwrap(),
        });
        roundtrip(&m, &b);
    }

    #[test]
    fn init_secret_may_fill_all_24_bytes() {
        let s = [b'x'; 24];
        let b = raw(3, &[(2, &[0x00, 0x02]), (9, &s)]);
        match Msg::decode(&b).unwrap() {
            Msg::Init(i) => assert_eq!(i.secret.unwrap().as_bytes(), &s),
            m => panic!("{m:?}"),
        }
        // ...and then it ends exactly where the name starts.
        let m = Msg::Init(Init {
            version: VERSION,
            id: 0,
            mode: Mode::Ethernet,
            secret: Some(Secret::new(&s).unwrap()),
            name: Name::default(),
        });
        assert_eq!(m.encode(), b);
    }

    #[test]
    fn init_checks() {
        let base = |pieces: &[(usize, &[u8])]| {
            let mut b = raw(3, &[(2, &[0x00, 0x02])]);
            for (at, bytes) in pieces {
                b[*at..*at + bytes.len()].copy_from_slice(bytes);
            }
            b
        };
        assert_eq!(Msg::decode(&base(&[(2, &[0x01, 0x02])])), Err(MsgError::UnsupportedVersion(0x0201)));
        assert_eq!(Msg::decode(&base(&[(2, &[0x00, 0x01])])), Err(MsgError::UnsupportedVersion(0x0100)));
        assert_eq!(Msg::decode(&base(&[(8, &[3])])), Err(MsgError::BadMode(3)));
        assert_eq!(Msg::decode(&base(&[(33, &[b'a'; 32])])), Err(MsgError::NameUnterminated));
        assert_eq!(Msg::decode(&base(&[(33, b"a\x07b")])), Err(MsgError::NameInvalid));
        assert_eq!(Msg::decode(&base(&[(33, &[0xff, 0xfe])])), Err(MsgError::NameInvalid));
        // A secret with a hole: "ab\0cd" reads as "ab" (C semantics).
        match Msg::decode(&base(&[(9, b"ab\0cd")])).unwrap() {
            Msg::Init(i) => assert_eq!(i.secret.unwrap().as_bytes(), b"ab"),
            m => panic!("{m:?}"),
        }
        // A 31-byte name is the longest that fits.
        assert!(Msg::decode(&base(&[(33, &[b'n'; 31])])).is_ok());
    }

    #[test]
    fn add_region_layout_and_checks() {
        let b = raw(4, &[(2, &[3, 0]), (4, &0x0001_0203_0405_0607u64.to_le_bytes())]);
        let err = Msg::decode(&b).unwrap_err();
        assert_eq!(err, MsgError::RegionSize(0x0001_0203_0405_0607));
        let b = raw(4, &[(2, &[3, 0]), (4, &[0x00, 0x10, 0x02, 0, 0, 0, 0, 0])]);
        roundtrip(&Msg::AddRegion(AddRegion { index: 3, size: 0x21000 }), &b);
        let b = raw(4, &[(2, &[16, 0]), (4, &[1])]);
        assert_eq!(Msg::decode(&b), Err(MsgError::RegionIndex(16)));
        let b = raw(4, &[(2, &[0, 0])]);
        assert_eq!(Msg::decode(&b), Err(MsgError::RegionSize(0)));
    }

    #[test]
    fn add_ring_layout() {
        // S2M ring 1 in region 0 at 0x1080, 2^10 descriptors.
        let b =
            raw(5, &[(2, &[1, 0]), (4, &[1, 0]), (6, &[0, 0]), (8, &[0x80, 0x10, 0, 0]), (12, &[10]), (13, &[0, 0])]);
        let m = Msg::AddRing(AddRing {
            direction: Direction::S2M,
            index: 1,
            region: 0,
            offset: 0x1080,
            log2_ring_size: 10,
        });
        roundtrip(&m, &b);
        let b = raw(5, &[(4, &[2, 0]), (6, &[1, 0]), (8, &[0, 0, 1, 0]), (12, &[8])]);
        let m = Msg::AddRing(AddRing {
            direction: Direction::M2S,
            index: 2,
            region: 1,
            offset: 0x10000,
            log2_ring_size: 8,
        });
        roundtrip(&m, &b);
    }

    #[test]
    fn add_ring_checks() {
        let ok = [(12usize, &[10u8][..])];
        let mk = |extra: &[(usize, &[u8])]| {
            let mut b = raw(5, &ok);
            for (at, bytes) in extra {
                b[*at..*at + bytes.len()].copy_from_slice(bytes);
            }
            b
        };
        assert!(Msg::decode(&mk(&[])).is_ok());
        assert_eq!(Msg::decode(&mk(&[(2, &[2, 0])])), Err(MsgError::RingFlags(2)));
        assert_eq!(Msg::decode(&mk(&[(13, &[4, 0])])), Err(MsgError::PrivateHeader(4)));
        assert_eq!(Msg::decode(&mk(&[(12, &[7])])), Err(MsgError::Log2RingSize(7)));
        assert_eq!(Msg::decode(&mk(&[(12, &[15])])), Err(MsgError::Log2RingSize(15)));
        assert_eq!(Msg::decode(&mk(&[(12, &[0])])), Err(MsgError::Log2RingSize(0)));
        assert_eq!(Msg::decode(&mk(&[(4, &[8, 0])])), Err(MsgError::RingIndex(8)));
        assert_eq!(Msg::decode(&mk(&[(4, &[0xff, 0xff])])), Err(MsgError::RingIndex(0xffff)));
        assert_eq!(Msg::decode(&mk(&[(6, &[16, 0])])), Err(MsgError::RegionIndex(16)));
    }

    #[test]
    fn connect_and_connected_layout() {
        let b = raw(6, &[(2, b"memif0/0")]);
        roundtrip(&Msg::Connect(Name::new("memif0/0").unwrap()), &b);
        let b = raw(7, &[(2, b"net_memif0")]);
        roundtrip(&Msg::Connected(Name::new("net_memif0").unwrap()), &b);
        assert_eq!(Msg::decode(&raw(6, &[(2, &[b'z'; 32])])), Err(MsgError::NameUnterminated));
    }

    #[test]
    fn disconnect_layout() {
        let b = raw(8, &[(2, &[5, 0, 0, 0]), (6, b"incorrect secret")]);
        let m = Msg::Disconnect(Disconnect { code: 5, reason: Reason::new("incorrect secret") });
        roundtrip(&m, &b);
        assert_eq!(Msg::decode(&raw(8, &[(6, &[b'r'; 96])])), Err(MsgError::ReasonUnterminated));
        // Control characters and bad UTF-8 are replaced, not refused.
        match Msg::decode(&raw(8, &[(6, b"a\nb\xff")])).unwrap() {
            Msg::Disconnect(d) => assert_eq!(d.reason.as_str(), "a?b\u{fffd}"),
            m => panic!("{m:?}"),
        }
        // A reason longer than the field is cut, still NUL-terminated.
        let long = "x".repeat(200);
        let enc = Msg::Disconnect(Disconnect { code: 0, reason: Reason::new(&long) }).encode();
        assert_eq!(enc[6 + 94], b'x');
        assert_eq!(enc[6 + 95], 0);
    }

    #[test]
    fn size_and_type_checks() {
        assert_eq!(Msg::decode(&[1u8; 127]), Err(MsgError::Length(127)));
        assert_eq!(Msg::decode(&[0u8; 129]), Err(MsgError::Length(129)));
        assert_eq!(Msg::decode(&[0u8; 128]), Err(MsgError::NoneType));
        assert_eq!(Msg::decode(&raw(9, &[])), Err(MsgError::UnknownType(9)));
        assert_eq!(Msg::decode(&raw(0x0102, &[])), Err(MsgError::UnknownType(0x102)));
    }

    #[test]
    fn constructors_check() {
        assert!(Name::new(&"a".repeat(31)).is_ok());
        assert_eq!(Name::new(&"a".repeat(32)), Err(MsgError::NameTooLong(32)));
        assert_eq!(Name::new("a\0b"), Err(MsgError::NameInvalid));
        assert_eq!(Name::lossy(&"é".repeat(20)).as_str().len(), 30);
        assert!(Secret::new(b"").is_err());
        assert!(Secret::new(&[b'a'; 25]).is_err());
        assert!(Secret::new(b"a\0").is_err());
        let a = Secret::new(b"abc").unwrap();
        assert!(a.matches(&Secret::new(b"abc").unwrap()));
        assert!(!a.matches(&Secret::new(b"abd").unwrap()));
        assert!(!a.matches(&Secret::new(b"abcd").unwrap()));
        assert_eq!(format!("{a:?}"), "Secret(<3 bytes>)");
    }
}
