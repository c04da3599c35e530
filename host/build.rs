//! Generates the gRPC server and client of `proto/gannet/v1/agent.proto`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=../proto/gannet/v1/agent.proto");
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_protos(&["../proto/gannet/v1/agent.proto"], &["../proto"])?;
    Ok(())
}
