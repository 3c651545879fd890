//! `mote`: the host CLI. For now it reports the version and the op list; training, inspection
//! and model files arrive with the CLI issue.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--version") | Some("-V") => println!("mote {}", env!("CARGO_PKG_VERSION")),
        _ => {
            println!("mote {} — small neural networks on microcontrollers", env!("CARGO_PKG_VERSION"));
            println!("usage: mote --version   (train, eval, inspect, export: coming with the CLI issue)");
        }
    }
}
