//! The `clave` binary: see `clave --help`.

fn main() -> std::process::ExitCode {
    clave_cli::run(std::env::args_os())
}
