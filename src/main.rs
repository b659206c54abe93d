fn main() -> std::process::ExitCode {
    kontext::cli::main()
}
