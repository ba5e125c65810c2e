//! `clave functions ...`: list, inspect, activate, roll back, delete.

use crate::cli::FunctionsCommand;
use crate::output::{CliError, from_client};

use super::{Ctx, render};

pub(super) async fn functions(ctx: &Ctx, cmd: FunctionsCommand) -> Result<(), CliError> {
    let t = ctx.target()?;
    let token = ctx.need_token(&t, "managing functions")?;
    let client = ctx.client(&t)?;
    let out = &ctx.out;
    match cmd {
        FunctionsCommand::List => {
            let list = client
                .list_functions(&t.project, token)
                .await
                .map_err(|e| from_client(&e, &ctx.err_ctx(&t, None)))?;
            render::function_list(out, t.insecure, &list);
        }
        FunctionsCommand::Show { name } | FunctionsCommand::Versions { name } => {
            let d = client
                .function(&t.project, &name, token)
                .await
                .map_err(|e| from_client(&e, &ctx.err_ctx(&t, Some(&name))))?;
            render::function_detail(out, t.insecure, &d);
        }
        FunctionsCommand::Activate { name, to_version } => {
            let r = client
                .activate(&t.project, &name, to_version, token)
                .await
                .map_err(|e| from_client(&e, &ctx.err_ctx(&t, Some(&name))))?;
            render::activation(out, t.insecure, &r);
        }
        FunctionsCommand::Rollback { name } => {
            let r = client
                .rollback(&t.project, &name, token)
                .await
                .map_err(|e| from_client(&e, &ctx.err_ctx(&t, Some(&name))))?;
            render::activation(out, t.insecure, &r);
        }
        FunctionsCommand::Delete { name } => {
            client
                .delete(&t.project, &name, token)
                .await
                .map_err(|e| from_client(&e, &ctx.err_ctx(&t, Some(&name))))?;
            render::deleted(out, t.insecure, &t.project, &name);
        }
    }
    Ok(())
}
