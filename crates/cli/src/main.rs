//! The `clave` binary: see `clave --help`.

/// mimalloc instead of glibc's malloc: the request path allocates and frees many small blocks
/// on two or more runtime threads (docs/decisions/0005-release-lto.md has the measurements).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    clave_cli::run(std::env::args_os())
}
