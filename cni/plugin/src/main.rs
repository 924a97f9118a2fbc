//! `vswitch-cni`: the CNI plugin binary. Runtimes (or Multus, delegating)
//! run it with `CNI_*` in the environment and the network configuration on
//! stdin; it prints the result, or an error object, on stdout and exits 0
//! or 1.

#![forbid(unsafe_code)]

use std::io::{Read, Write};

fn main() {
    let mut stdin = Vec::new();
    let out = match std::io::stdin().read_to_end(&mut stdin) {
        Ok(_) => vswitch_cni::run(std::env::vars_os(), &stdin),
        Err(e) => {
            let err = vswitch_cni_types::CniError::io("cannot read the configuration from stdin", e.to_string())
                .with_version(vswitch_cni_types::SPEC_VERSION);
            vswitch_cni::Output { stdout: err.to_json(), exit_code: 1 }
        }
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.stdout.as_bytes());
    let _ = stdout.flush();
    std::process::exit(out.exit_code);
}
