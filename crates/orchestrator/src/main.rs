fn main() {
    eprintln!("orchestrator: not built yet");
    std::process::exit(2);
}
