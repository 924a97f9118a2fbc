//! `vswitchctl`: the CLI of the vswitch daemon, over its API socket.
//!
//! ```text
//! vswitchctl [--socket PATH] apply -f FILE [--dry-run]
//! vswitchctl patch [-f FILE] [--remove NAME]... [--remove-owner OWNER] [--dry-run]
//! vswitchctl get
//! vswitchctl show <interfaces|bridge-domains|l2fib|fib [vrf]|neighbors|runtime|errors|trace|workers|buffers|memif> [--json]
//! vswitchctl show sr <localsids|policies|steering> [--json]
//! vswitchctl clear <runtime|errors|interfaces|sr>
//! vswitchctl trace add <node> <count>
//! vswitchctl trace clear
//! vswitchctl pcap start --interface <NAME|any> [--rx] [--tx] [--drop] [--max N] [--snaplen BYTES|full]
//!                       [--format pcap|pcapng] --file PATH
//! vswitchctl pcap stop
//! vswitchctl pcap status [--json]
//! ```
//!
//! Exits 0 on success; 1 with the daemon's message when it refuses a
//! request; 2 when the daemon cannot be reached.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use vswitch_api::pb;

/// Configure and inspect the vswitch daemon.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// The daemon's API socket.
    #[arg(long, global = true, value_name = "PATH", default_value = vswitch_api::DEFAULT_SOCKET)]
    socket: PathBuf,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Make a desired state (YAML) the state in force.
    Apply {
        /// The desired state; `-` reads standard input.
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: PathBuf,
        /// Validate and report what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Change part of the state in force: remove interfaces (by name or
    /// owner, with the routes and neighbors through them), then add or
    /// replace the entries of a partial state by key.
    Patch {
        /// A partial desired state (YAML) to add or replace; `-` reads
        /// standard input.
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: Option<PathBuf>,
        /// Remove this interface (repeatable).
        #[arg(long = "remove", value_name = "NAME")]
        remove: Vec<String>,
        /// Remove every interface with this owner.
        #[arg(long, value_name = "OWNER")]
        remove_owner: Option<String>,
        /// Validate and report what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the desired state in force (YAML).
    Get,
    /// Show operational state.
    Show {
        /// interfaces, bridge-domains, l2fib, fib, neighbors, runtime,
        /// errors, trace, workers, buffers, memif, sr.
        what: String,
        /// Arguments (`show fib 1`: VRF 1; `show sr localsids`).
        args: Vec<String>,
        /// Print JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Reset counters as show sees them: runtime, errors, interfaces, sr.
    Clear {
        /// runtime, errors, interfaces or sr.
        what: String,
    },
    /// Packet tracing.
    Trace {
        #[command(subcommand)]
        command: TraceCmd,
    },
    /// Packet capture into a pcap / pcapng file (tcpdump -r, Wireshark).
    Pcap {
        #[command(subcommand)]
        command: PcapCmd,
    },
}

#[derive(Subcommand, Debug)]
enum PcapCmd {
    /// Start capturing an interface's received, transmitted and/or dropped
    /// packets (one capture at a time). The file is created now and
    /// written by `pcap stop`; the capture ends by itself after MAX
    /// packets.
    Start {
        /// The interface, or `any` for all of them.
        #[arg(long, value_name = "NAME")]
        interface: String,
        /// Packets received on the interface.
        #[arg(long)]
        rx: bool,
        /// Packets sent on the interface.
        #[arg(long)]
        tx: bool,
        /// Packets received on the interface and dropped.
        #[arg(long)]
        drop: bool,
        /// Packets to capture at most.
        #[arg(long, value_name = "N", default_value_t = 10_000,
              value_parser = clap::value_parser!(u32).range(1..))]
        max: u32,
        /// Bytes kept of each packet, or `full`.
        #[arg(long, value_name = "BYTES", default_value = "9000", value_parser = parse_snaplen)]
        snaplen: u32,
        /// pcap or pcapng (default: pcapng when capturing drops, whose
        /// node and reason it keeps as packet comments; pcap otherwise).
        #[arg(long, value_parser = ["pcap", "pcapng"])]
        format: Option<String>,
        /// The file to write (relative paths are from here).
        #[arg(long, value_name = "PATH")]
        file: PathBuf,
    },
    /// Stop capturing and write the file.
    Stop,
    /// The running capture (or the last one written).
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `full` (0: whole packets) or a byte count of at least 1.
fn parse_snaplen(s: &str) -> Result<u32, String> {
    match s {
        "full" | "0" => Ok(0),
        n => n.parse::<u32>().map_err(|_| format!("{n:?}: expected a byte count or `full`")),
    }
}

#[derive(Subcommand, Debug)]
enum TraceCmd {
    /// Trace the next COUNT packets entering NODE (an input node such as
    /// tap-input, af-packet-input, pg-input) on every worker.
    Add {
        /// The node.
        node: String,
        /// How many packets.
        count: u32,
    },
    /// Stop tracing and forget the records.
    Clear,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vswitchctl: {e}");
            return ExitCode::from(2);
        }
    };
    rt.block_on(run(cli))
}

fn refused(status: tonic::Status) -> ExitCode {
    match status.code() {
        tonic::Code::Unavailable | tonic::Code::Unknown if status.message().contains("transport") => {
            eprintln!("vswitchctl: the daemon is not reachable: {}", status.message());
            ExitCode::from(2)
        }
        _ => {
            eprintln!("vswitchctl: {}", status.message());
            ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli) -> ExitCode {
    let mut client = match vswitch_api::connect(&cli.socket).await {
        Ok(c) => c,
        Err(e) => {
            let source = std::error::Error::source(&e).map(|s| format!(": {s}")).unwrap_or_default();
            eprintln!("vswitchctl: cannot reach the daemon at {}: {e}{source}", cli.socket.display());
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Cmd::Apply { file, dry_run } => {
            let yaml = match read_document(&file) {
                Ok(y) => y,
                Err(code) => return code,
            };
            let answer = client.apply(pb::ApplyRequest { yaml, dry_run }).await;
            report_apply(answer, &file.display().to_string())
        }
        Cmd::Patch { file, remove, remove_owner, dry_run } => {
            let yaml = match &file {
                Some(f) => match read_document(f) {
                    Ok(y) => y,
                    Err(code) => return code,
                },
                None => String::new(),
            };
            let req = pb::PatchRequest {
                yaml,
                remove_interfaces: remove,
                remove_owner: remove_owner.unwrap_or_default(),
                dry_run,
            };
            let what = file.map(|f| f.display().to_string()).unwrap_or_else(|| "patch".into());
            report_apply(client.patch(req).await, &what)
        }
        Cmd::Get => match client.get(pb::GetRequest {}).await {
            Ok(r) => {
                print!("{}", r.into_inner().yaml);
                ExitCode::SUCCESS
            }
            Err(s) => refused(s),
        },
        Cmd::Show { what, args, json } => match client.show(pb::ShowRequest { what, args }).await {
            Ok(r) => {
                let r = r.into_inner();
                if json {
                    println!("{}", r.json);
                } else {
                    print!("{}", r.text);
                }
                ExitCode::SUCCESS
            }
            Err(s) => refused(s),
        },
        Cmd::Clear { what } => match client.clear(pb::ClearRequest { what }).await {
            Ok(r) => {
                println!("{}", r.into_inner().text);
                ExitCode::SUCCESS
            }
            Err(s) => refused(s),
        },
        Cmd::Trace { command: TraceCmd::Add { node, count } } => {
            match client.trace_add(pb::TraceAddRequest { node, count }).await {
                Ok(r) => {
                    println!("{}", r.into_inner().text);
                    ExitCode::SUCCESS
                }
                Err(s) => refused(s),
            }
        }
        Cmd::Trace { command: TraceCmd::Clear } => match client.trace_clear(pb::TraceClearRequest {}).await {
            Ok(r) => {
                println!("{}", r.into_inner().text);
                ExitCode::SUCCESS
            }
            Err(s) => refused(s),
        },
        Cmd::Pcap { command: PcapCmd::Start { interface, rx, tx, drop, max, snaplen, format, file } } => {
            // The daemon runs elsewhere: it gets an absolute path.
            let file = match std::path::absolute(&file) {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("vswitchctl: file: {}: {e}", file.display());
                    return ExitCode::from(1);
                }
            };
            let req = pb::PcapStartRequest {
                interface,
                rx,
                tx,
                drop,
                max,
                snaplen,
                file: file.display().to_string(),
                format: format.unwrap_or_default(),
            };
            match client.pcap_start(req).await {
                Ok(r) => {
                    println!("{}", r.into_inner().text);
                    ExitCode::SUCCESS
                }
                Err(s) => refused(s),
            }
        }
        Cmd::Pcap { command: PcapCmd::Stop } => match client.pcap_stop(pb::PcapStopRequest {}).await {
            Ok(r) => {
                println!("{}", r.into_inner().text);
                ExitCode::SUCCESS
            }
            Err(s) => refused(s),
        },
        Cmd::Pcap { command: PcapCmd::Status { json } } => match client.pcap_status(pb::PcapStatusRequest {}).await {
            Ok(r) => {
                let r = r.into_inner();
                if json {
                    println!("{}", r.json);
                } else {
                    print!("{}", r.text);
                }
                ExitCode::SUCCESS
            }
            Err(s) => refused(s),
        },
    }
}

/// The YAML document at `file` (`-`: standard input), or the exit code
/// after saying why it cannot be read.
fn read_document(file: &std::path::Path) -> Result<String, ExitCode> {
    if file.as_os_str() == "-" {
        let mut s = String::new();
        return match std::io::Read::read_to_string(&mut std::io::stdin(), &mut s) {
            Ok(_) => Ok(s),
            Err(e) => {
                eprintln!("vswitchctl: reading standard input: {e}");
                Err(ExitCode::from(1))
            }
        };
    }
    std::fs::read_to_string(file).map_err(|e| {
        eprintln!("vswitchctl: {}: {e}", file.display());
        ExitCode::from(1)
    })
}

/// Prints an Apply or Patch answer: the report, or the refusal.
fn report_apply(answer: Result<tonic::Response<pb::ApplyResponse>, tonic::Status>, what: &str) -> ExitCode {
    match answer {
        Ok(r) => {
            let r = r.into_inner();
            if r.ok {
                print!("{}", r.report);
                ExitCode::SUCCESS
            } else {
                eprintln!("vswitchctl: {what}: {}", r.error);
                eprintln!("nothing changed");
                ExitCode::from(1)
            }
        }
        Err(s) => refused(s),
    }
}
