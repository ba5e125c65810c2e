//! The commands: [`settings`] resolves where and whom to talk to, one module per command calls
//! the SDK, and [`render`] prints the results (text or `--json`).

mod attest;
mod deploy;
mod dev;
mod functions;
mod hash;
mod init;
mod invoke;
mod render;
mod secret;
mod settings;
mod tail;
mod token;
mod whoami;

use clap::CommandFactory as _;

use crate::cli::{Cli, Command, TokenCommand};
use crate::config::{ConfigFile, DevRecord, config_dir};
use crate::output::{CliError, Out};
use crate::project::Project;

pub(crate) use settings::{Ctx, Source, Target};

/// Run a parsed command line.
pub(crate) async fn run(cli: Cli, out: Out) -> Result<(), CliError> {
    let dir = config_dir();
    let file = ConfigFile::load(&dir).map_err(CliError::usage)?;
    let reads_project = match &cli.command {
        Command::Deploy(_) | Command::Invoke(_) | Command::Hash(_) | Command::Config => true,
        Command::Dev(a) => a.watch,
        _ => false,
    };
    let project = if reads_project {
        let cwd = std::env::current_dir()
            .map_err(|e| CliError::usage(format!("cannot read the current directory: {e}.")))?;
        Project::find(cli.global.project_file.as_deref(), &cwd)?
    } else {
        None
    };
    let ctx = Ctx {
        out,
        global: cli.global,
        dev: DevRecord::load(&dir),
        dir,
        file,
        project,
    };
    match cli.command {
        Command::Dev(args) => dev::dev(&ctx, args).await,
        Command::Deploy(args) => deploy::deploy(&ctx, args).await,
        Command::Invoke(args) => invoke::invoke(&ctx, args).await,
        Command::Hash(args) => hash::hash(&ctx, &args),
        Command::Init(args) => init::init(&ctx, &args),
        Command::Config => whoami::config(&ctx),
        Command::Functions(cmd) => functions::functions(&ctx, cmd).await,
        Command::Secret(cmd) => secret::run(&ctx, cmd).await,
        Command::Tail(args) => tail::tail(&ctx, args).await,
        Command::Logs(args) => tail::logs(&ctx, args).await,
        Command::Keys => attest::keys(&ctx).await,
        Command::Attest => attest::attest(&ctx).await,
        Command::Token(TokenCommand::Create { admin_token }) => {
            token::token_create(&ctx, admin_token).await
        }
        // Handled before the runtime starts commands (own exit codes / own settings).
        Command::Evidence(_) | Command::Kds(_) | Command::Engine(_) | Command::Gateway(_) => Ok(()),
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "clave", &mut std::io::stdout());
            Ok(())
        }
    }
}
