//! A test's hold on its cluster. It ends when the test does (passed, failed, timed out or
//! interrupted); after that, what the test still holds refuses to act: its client's requests and
//! its nodes' faults fail with [`LeaseEnded`]. A test body that blocked its thread past its timeout
//! and wakes up later, or a task it left behind, cannot touch the cluster the next test now has.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tower::ServiceExt as _;

/// What a test that outlived its lease tried to do.
#[derive(Debug, thiserror::Error)]
#[error(
    "test `{test}` no longer holds its cluster (it ended, timed out or was interrupted): \
     nothing it still runs may act on the cluster"
)]
pub struct LeaseEnded {
    test: String,
}

#[derive(Clone)]
pub(crate) struct Lease {
    test: Arc<str>,
    active: Arc<AtomicBool>,
}

impl Lease {
    pub fn new(test: &str) -> Lease {
        Lease {
            test: test.into(),
            active: Arc::new(AtomicBool::new(true)),
        }
    }

    /// Ends the lease for good: every holder's next action fails.
    pub fn end(&self) {
        self.active.store(false, Ordering::SeqCst);
    }

    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::SeqCst)
    }

    /// `Err` once the lease has ended.
    pub fn check(&self) -> Result<(), LeaseEnded> {
        match self.is_active() {
            true => Ok(()),
            false => Err(LeaseEnded {
                test: self.test.to_string(),
            }),
        }
    }

    /// A client that sends through `client` while the lease lasts, and refuses afterwards.
    /// Built on the harness's runtime (kube's client spawns its buffer there), so that it keeps
    /// working whatever the test's own threads do.
    pub fn client(&self, client: &kube::Client) -> kube::Client {
        let (lease, inner) = (self.clone(), client.clone());
        let gated = tower::service_fn(move |request| {
            let (lease, inner) = (lease.clone(), inner.clone());
            async move {
                lease.check()?;
                inner.send(request).await.map_err(tower::BoxError::from)
            }
        });
        // `kube::Client::send` takes the inner client's errors back out of the box unchanged.
        kube::Client::new(gated.boxed(), client.default_namespace())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Namespace;
    use kube::Api;

    #[tokio::test]
    async fn a_client_works_while_the_lease_lasts_and_refuses_after() {
        let client = chaos_sim::ApiServer::new("v1.29.0").client();
        let lease = Lease::new("t");
        let gated = lease.client(&client);
        let namespaces: Api<Namespace> = Api::all(gated.clone());
        namespaces
            .list(&Default::default())
            .await
            .expect("lease active");
        lease.end();
        let err = namespaces.list(&Default::default()).await.unwrap_err();
        assert!(
            format!("{err:#}").contains("test `t` no longer holds its cluster"),
            "{err:#}"
        );
        // The cluster's own client is unaffected.
        Api::<Namespace>::all(client)
            .list(&Default::default())
            .await
            .expect("the harness's client");
    }
}
