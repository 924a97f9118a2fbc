//! `vswitch-bench`: benchmarks of the vswitch data path.
//!
//! `vswitch-bench graph` runs one worker over generator and sink ports
//! (no syscalls, buffers recycled) for each scenario and prints Mpps,
//! cycles per packet and VPP-style per-node clocks per packet.

mod graph_bench;
mod scenarios;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "vswitch-bench", about = "vswitch benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The graph benchmark: one worker, synthetic ports, 64-byte packets.
    Graph(graph_bench::Args),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Graph(args) => graph_bench::run(&args),
    };
    if let Err(e) = result {
        eprintln!("vswitch-bench: {e}");
        std::process::exit(1);
    }
}
