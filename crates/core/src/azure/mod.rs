//! Azure Resource Manager: credentials, a small ARM client, and the storage account calls.
//! (The listing XML of Azure Storage's data services lives with the sync engine.)
//!
//! Azure DNS record sets are written through the same client by `crate::dns`.

pub mod arm_client;
pub mod certificate;
pub mod credential;
pub mod storage;

pub use arm_client::{ArmClient, ArmResponse, Attempt, LroStatus};
pub use credential::{Credential, LazyCredential};
pub use storage::{
    FailoverOptions, FailoverResult, StorageStatus, storage_failover, storage_failover_from, storage_status,
};
