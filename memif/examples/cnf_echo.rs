//! A small CNF: a memif client with an IPv4 address (smoltcp as its IP
//! stack) that answers ARP, ICMP echo (ping) and UDP echo on port 7. It
//! survives server restarts (the memif client reconnects by itself) and
//! sleeps when idle: its receive queue is in interrupt mode, so the server
//! signals it.
//!
//! ```sh
//! cargo run --release -p vswitch-memif --example cnf_echo -- \
//!     /run/vswitch/memif.sock --id 0 --ip 10.10.0.9/24 [--gateway 10.10.0.1] [--mac 02:fe:..] [--secret S] \
//!     [--mode ip]
//! ```
//!
//! `--mode ip` makes it a memif IP-mode interface: the rings carry bare
//! IP packets (smoltcp `Medium::Ip`: no Ethernet header, no ARP), and the
//! server must be in IP mode too.
//!
//! Prints `ready` once the link is up, then one line per UDP datagram it
//! echoes; exits on SIGTERM/SIGINT (the default action) or when the
//! socket argument is wrong.

use smoltcp::iface::{Config, Interface as IpInterface, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium};
use smoltcp::socket::udp;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, Ipv4Address};
use std::time::Duration;
use vswitch_memif::{Client, ClientConfig, InterfaceConfig, Mode, RxMode, RxQueue, SocketAddr, TxQueue};

/// The memif queue pair as a smoltcp device: one frame per token, copied
/// in and out of two frame buffers.
struct MemifDevice {
    rx: RxQueue,
    tx: TxQueue,
    rx_buf: Vec<u8>,
    tx_buf: Vec<u8>,
    medium: Medium,
}

struct Rx<'a>(&'a [u8]);
struct Tx<'a> {
    q: &'a mut TxQueue,
    buf: &'a mut [u8],
}

impl smoltcp::phy::RxToken for Rx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

impl smoltcp::phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let r = f(&mut self.buf[..len]);
        // A full ring or a link down loses the frame, as a wire would.
        self.q.send(&self.buf[..len]);
        r
    }
}

impl Device for MemifDevice {
    type RxToken<'a> = Rx<'a>;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _: Instant) -> Option<(Rx<'_>, Tx<'_>)> {
        let n = self.rx.recv(&mut self.rx_buf)?;
        Some((Rx(&self.rx_buf[..n]), Tx { q: &mut self.tx, buf: &mut self.tx_buf }))
    }

    fn transmit(&mut self, _: Instant) -> Option<Tx<'_>> {
        Some(Tx { q: &mut self.tx, buf: &mut self.tx_buf })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = self.medium;
        c.max_transmission_unit = if self.medium == Medium::Ip { 1500 } else { 1514 };
        c
    }
}

struct Args {
    socket: String,
    id: u32,
    ip: IpCidr,
    gateway: Option<Ipv4Address>,
    mac: EthernetAddress,
    secret: Option<String>,
    ip_mode: bool,
}

fn usage(e: &str) -> ! {
    eprintln!(
        "cnf_echo: {e}\nusage: cnf_echo SOCKET --ip A.B.C.D/N [--id N] [--gateway A.B.C.D] [--mac MAC] [--secret S] \
         [--mode ethernet|ip]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut it = std::env::args().skip(1);
    let mut socket = None;
    let (mut id, mut ip, mut gateway, mut mac, mut secret, mut ip_mode) = (0u32, None, None, None, None, false);
    while let Some(a) = it.next() {
        let mut val = |name: &str| it.next().unwrap_or_else(|| usage(&format!("{name} needs a value")));
        match a.as_str() {
            "--id" => id = val("--id").parse().unwrap_or_else(|_| usage("--id: not a number")),
            "--ip" => ip = Some(val("--ip").parse::<IpCidr>().unwrap_or_else(|_| usage("--ip: not A.B.C.D/N"))),
            "--gateway" => {
                gateway = Some(val("--gateway").parse::<Ipv4Address>().unwrap_or_else(|_| usage("--gateway")))
            }
            "--mac" => mac = Some(val("--mac").parse::<EthernetAddress>().unwrap_or_else(|_| usage("--mac"))),
            "--secret" => secret = Some(val("--secret")),
            "--mode" => {
                ip_mode = match val("--mode").as_str() {
                    "ip" => true,
                    "ethernet" => false,
                    _ => usage("--mode: ethernet or ip"),
                }
            }
            s if s.starts_with("--") => usage(&format!("unknown option {s}")),
            s => socket = Some(s.to_string()),
        }
    }
    let ip = ip.unwrap_or_else(|| usage("--ip is required"));
    // A locally administered MAC derived from the address, unless given.
    let mac = mac.unwrap_or_else(|| match ip.address() {
        IpAddress::Ipv4(a) => {
            let o = a.octets();
            EthernetAddress([0x02, 0xcf, o[0], o[1], o[2], o[3]])
        }
    });
    let socket = socket.unwrap_or_else(|| usage("the memif socket is required"));
    Args { socket, id, ip, gateway, mac, secret, ip_mode }
}

fn main() {
    let args = parse_args();
    let client =
        Client::new(ClientConfig::new(SocketAddr::parse(&args.socket))).unwrap_or_else(|e| usage(&e.to_string()));
    let iface = client
        .add_interface(InterfaceConfig {
            name: "cnf-echo".into(),
            secret: args.secret.clone(),
            rx_mode: RxMode::Interrupt,
            mode: if args.ip_mode { Mode::Ip } else { Mode::Ethernet },
            ..InterfaceConfig::new(args.id)
        })
        .unwrap_or_else(|e| usage(&e.to_string()));
    let (mut rxs, mut txs) = iface.take_queues().expect("fresh interface");
    let medium = if args.ip_mode { Medium::Ip } else { Medium::Ethernet };
    let mut dev =
        MemifDevice { rx: rxs.remove(0), tx: txs.remove(0), rx_buf: vec![0; 65535], tx_buf: vec![0; 65535], medium };

    let start = std::time::Instant::now();
    let now = || Instant::from_micros(start.elapsed().as_micros() as i64);
    let hw = if args.ip_mode { HardwareAddress::Ip } else { HardwareAddress::Ethernet(args.mac) };
    let mut ip = IpInterface::new(Config::new(hw), &mut dev, now());
    ip.update_ip_addrs(|a| a.push(args.ip).expect("one address"));
    if let Some(gw) = args.gateway {
        ip.routes_mut().add_default_ipv4_route(gw).expect("a default route");
    }
    let mut sockets = SocketSet::new(Vec::new());
    let buffer = || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 64], vec![0; 65535]);
    let udp_handle = sockets.add(udp::Socket::new(buffer(), buffer()));
    sockets.get_mut::<udp::Socket>(udp_handle).bind(7).expect("bind UDP port 7");

    while !iface.wait_up(Duration::from_secs(1)) {}
    let link = if args.ip_mode { "ip mode".to_string() } else { args.mac.to_string() };
    println!("ready: {} ({link}) on {} id {}", args.ip, args.socket, args.id);
    let mut buf = vec![0u8; 65535];
    loop {
        ip.poll(now(), &mut dev, &mut sockets);
        let udp = sockets.get_mut::<udp::Socket>(udp_handle);
        let mut echoed = false;
        while let Ok((n, meta)) = udp.recv_slice(&mut buf) {
            if udp.send_slice(&buf[..n], meta.endpoint).is_ok() {
                println!("udp echo {n} bytes to {}", meta.endpoint);
                echoed = true;
            }
        }
        if echoed {
            continue;
        }
        // Sleep until the server signals (or smoltcp has a timer due).
        let wait = ip.poll_delay(now(), &sockets).map_or(100, |d| d.total_millis().min(100) as i32);
        dev.rx.wait(wait);
    }
}
