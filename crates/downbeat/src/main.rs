fn main() -> std::process::ExitCode {
    downbeat::run()
}
