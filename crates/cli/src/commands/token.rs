//! `clave token create`.

use crate::output::{CliError, from_client};

use super::{Ctx, render};

pub(super) async fn token_create(ctx: &Ctx, admin: Option<String>) -> Result<(), CliError> {
    let t = ctx.target()?;
    let admin = admin.or_else(|| t.admin_token.clone()).ok_or_else(|| {
        CliError::usage(
            "creating a deploy token needs the gateway's admin token: pass --admin-token or set CLAVE_ADMIN_TOKEN (`clave dev` knows its own).",
        )
    })?;
    let client = ctx.client(&t)?;
    let r = client
        .create_token(&t.project, &admin)
        .await
        .map_err(|e| match e.gateway_status() {
            Some(s @ (401 | 403)) => CliError::failed(format!(
                "the gateway refused the admin token ({s}); pass the gateway's admin token with --admin-token or CLAVE_ADMIN_TOKEN."
            )),
            _ => from_client(&e, &ctx.err_ctx(&t, None)),
        })?;
    let out = &ctx.out;
    render::token_created(out, t.insecure, &r);
    Ok(())
}
