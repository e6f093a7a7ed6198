//! Configuration as code: a tenant's desired state in a file (`manifest`),
//! planned against the live tenant (`plan`), and the live tenant written back
//! as a file (`export`). `wisp apply` / `wisp export` drive it through the
//! admin API (`/v1.0/tenantConfiguration`), which performs a plan in one
//! database transaction.

pub mod export;
pub mod manifest;
pub mod plan;

pub use export::export;
pub use manifest::{Manifest, Problem};
pub use plan::{Action, Change, Plan, PlanContext, plan};
