//! `#[chaos_test]`: registers an `async fn(&Cluster)` with the `chaos-runtime` harness.
//!
//! Everything about the attribute that can be known at compile time is checked here: keys and
//! value types, versions, the cluster's version-skew policy and the function's shape. Each mistake
//! is a compile error that points at the token at fault and says how to fix it.
//!
//! The pipeline is the one of `tokio-macros`: `parse` reads the arguments as written, `config`
//! validates them, `signature` checks the function, and `expand` writes the registration.

mod config;
mod errors;
mod expand;
mod parse;
mod signature;

use proc_macro::TokenStream;

/// Marks an `async fn(cluster: &Cluster)` as a chaos test. See `API.md` for the keys.
#[proc_macro_attribute]
pub fn chaos_test(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(attr.into(), item.into()).into()
}
