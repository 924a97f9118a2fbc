//! `vswitch-cni`: the CNI plugin binary. Runtimes (or Multus, delegating)
//! run it with `CNI_*` in the environment and the network configuration on
//! stdin; it prints the result, or an error object, on stdout and exits 0
//! or 1.

#![forbid(unsafe_code)]

fn main() {
    vswitch_cni_types::plugin::main_with(|stdin| vswitch_cni::run(std::env::vars_os(), stdin))
}
