//! `clave keys` and `clave attest`: what the verified platform offers.

use crate::output::CliError;

use super::{Ctx, render};

pub(super) async fn keys(ctx: &Ctx) -> Result<(), CliError> {
    let t = ctx.target()?;
    let client = ctx.client(&t)?;
    let v = ctx.verify(&client, &t).await?;
    let out = &ctx.out;
    render::keys(out, &v);
    Ok(())
}

pub(super) async fn attest(ctx: &Ctx) -> Result<(), CliError> {
    let t = ctx.target()?;
    let client = ctx.client(&t)?;
    let v = ctx.verify(&client, &t).await?;
    let out = &ctx.out;
    render::attested(out, &t.gateway, &v);
    if v.insecure() {
        out.insecure("the evidence above is simulated and proves nothing");
    }
    Ok(())
}
