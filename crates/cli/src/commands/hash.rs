//! `clave hash`: the code hash of a function's files, computed offline.

use sha2::{Digest as _, Sha256};

use crate::bundle;
use crate::cli::HashArgs;
use crate::output::CliError;

use super::{Ctx, render};

pub(super) fn hash(ctx: &Ctx, args: &HashArgs) -> Result<(), CliError> {
    let project = ctx.project.as_ref();
    let (path, entry) = match (&args.path, project) {
        (Some(p), _) => (p.clone(), args.entry.clone()),
        (None, Some(p)) => (p.dir(), args.entry.clone().or_else(|| p.file.entry.clone())),
        (None, None) => {
            return Err(CliError::usage(
                "name the function's entry file or directory (clave hash FILE_OR_DIR), or run this where a clave.toml describes it.",
            ));
        }
    };
    let code = bundle::collect(&path, entry.as_deref())?;
    let hash = hex::encode(Sha256::digest(code.code.as_bytes()));
    render::code_hash(&ctx.out, &code, &hash);
    Ok(())
}
