//! Azure Resource Manager: credentials, a small ARM client, and the storage account calls;
//! and the listing XML that Azure Storage's data services (Files, Blob) answer.
//!
//! Azure DNS record sets are written through the same client by `crate::dns`.

pub mod arm_client;
pub mod credential;
pub mod listing_xml;
pub mod storage;

pub use arm_client::{ArmClient, ArmResponse, Attempt, LroStatus};
pub use credential::Credential;
pub use storage::{
    FailoverOptions, FailoverResult, StorageStatus, storage_failover, storage_failover_from, storage_status,
};
