//! Questions about shares that preflights and the storage decision ask: can it be read, and how
//! long until its SAS expires.

use rhai::plugin::*;
use rhai::{Dynamic, EvalAltResult, NativeCallContext};

use super::environment::ShareRef;
use super::{exec_of, to_rhai};
use crate::exec::Exec;
use drscript_base::error::Result;
use drscript_sync::sas::Sas;
use drscript_sync::store::Store;

#[export_module]
pub mod shares_api {
    /// True when the share (or a folder of it) exists and its top level can be listed with the
    /// configured credentials; false when it is missing, unreachable or refused. In a plan:
    /// true. This is the test behind "fail the storage account over only when the share is not
    /// accessible".
    #[rhai_fn(return_raw)]
    pub fn share_reachable(ctx: NativeCallContext, share: ShareRef) -> Result<bool, Box<EvalAltResult>> {
        super::reachable(&exec_of(&ctx), &share).map_err(to_rhai)
    }

    /// Whole days until the share's SAS expires (negative once expired), or `()` when the share
    /// has no SAS (a local folder, a Shared Key) or the SAS has no expiry.
    #[rhai_fn(return_raw)]
    pub fn sas_days_left(ctx: NativeCallContext, share: ShareRef) -> Result<Dynamic, Box<EvalAltResult>> {
        let exec = exec_of(&ctx);
        let Some(secret) = &share.share.sas else { return Ok(Dynamic::UNIT) };
        let sas = exec.secret(secret).map_err(to_rhai)?;
        Ok(match Sas::parse(&sas).expiry {
            Some(expiry) => Dynamic::from((expiry - chrono::Utc::now()).num_days()),
            None => Dynamic::UNIT,
        })
    }
}

fn reachable(exec: &Exec, share: &ShareRef) -> Result<bool> {
    if let Some(secret) = &share.share.sas {
        exec.secret(secret)?;
    }
    if let Some(secret) = &share.share.account_key {
        exec.secret(secret)?;
    }
    exec.query(
        "share_reachable",
        &share.describe(),
        || true,
        || {
            let endpoint = share.share.endpoint(&share.path)?;
            let store = Store::open(&endpoint)?;
            exec.block_on(async move {
                let reachable = match store.root_exists().await {
                    Ok(true) => store.list("", false).await.is_ok(),
                    Ok(false) | Err(_) => false,
                };
                Ok(reachable)
            })
        },
    )
}
