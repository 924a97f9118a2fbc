fn main() {
    let proto = "../../proto/vswitch.proto";
    println!("cargo:rerun-if-changed={proto}");
    tonic_prost_build::configure()
        .compile_protos(&[proto], &["../../proto"])
        .unwrap_or_else(|e| panic!("compiling {proto} (needs protoc: Debian protobuf-compiler): {e}"));
}
