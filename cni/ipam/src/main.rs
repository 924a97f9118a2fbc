//! `vswitch-ipam`: the CNI IPAM plugin binary. Runtimes (or the main CNI
//! plugin, delegating) run it with `CNI_*` in the environment and the network
//! configuration on stdin; it prints the result, or an error object, on
//! stdout and exits 0 or 1.

fn main() {
    vswitch_cni_types::plugin::main_with(|stdin| vswitch_ipam::plugin::run(std::env::vars_os(), stdin))
}
