//! Observing a cluster: everything that watches objects and judges what it sees.
//!
//! - [`conditions`]: judgements on the set of objects a watch currently sees, answering `Ok(())`
//!   or `Err(what was seen)`; combine them with [`conditions::ListCondition::and`], `or` and `not`.
//! - [`wait`]: waits until a condition holds, or times out saying what it saw last.
//! - [`probe`]: checks a condition in the background while faults run: `always` or `eventually`.
//! - `steady`: the [`crate::Cluster`] methods that run waits and probes on a test's cluster and
//!   record them in its timeline.
//! - `health`: whether a cluster is fit for the next test (every node there, Ready, at its
//!   version), judged through the API so that it means the same on every provider.
//! - `baseline`: what a cluster looked like when first handed out, and putting back what a test
//!   changed at cluster scope (node taints, labels, cordons; namespaces; objects outside its own).
//!
//! Waits and probes read the same stream of complete states ([`wait::states`]), so they judge
//! exactly the same things. They are public as `chaos_runtime::{conditions, wait, probe}`.

pub(crate) mod baseline;
pub mod conditions;
pub(crate) mod health;
pub mod probe;
mod steady;
pub mod wait;
