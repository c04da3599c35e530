//! The gRPC API (`gannet.v1.Agent`): the same list and watch as the HTTP data API.

use std::pin::Pin;

use futures::{Stream, StreamExt};
use tokio::sync::broadcast::error::RecvError;
use tonic::{Request, Response, Status};

use super::view::{ContainerFilter, ViewEvent};
use super::ApiContext;
use crate::record::{redacted, ContainerRecord, Lifecycle, Timestamp};

/// The generated protobuf types and service stubs of `proto/gannet/v1/agent.proto`.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    tonic::include_proto!("gannet.v1");
}

use pb::agent_server::Agent;

/// The service implementation.
pub struct AgentService {
    ctx: ApiContext,
}

impl AgentService {
    /// A service over the shared view.
    pub fn new(ctx: ApiContext) -> Self {
        Self { ctx }
    }
}

fn container(ctx: &ApiContext, r: &ContainerRecord) -> pb::Container {
    let r = redacted(r, ctx.env_values());
    pb::Container {
        id: r.id.clone(),
        name: r.name.clone(),
        state: r.state.as_str().to_string(),
        namespace: r.k8s.namespace.clone(),
        pod_name: r.k8s.pod_name.clone(),
        pod_uid: r.k8s.pod_uid.clone(),
        container_name: r.k8s.container_name.clone(),
        image: r.image.clone(),
        pid: r.pid,
        labels: r.labels.clone().into_iter().collect(),
        tags: r.tags.clone().into_iter().collect(),
        record_json: serde_json::to_string(&*r).unwrap_or_default(),
        pod_ips: r.k8s.pod_ips.clone(),
        node_name: r.k8s.node_name.clone(),
        owner: Some(owner(&r.k8s.owner)),
        pod_start_time: r
            .k8s
            .pod_start_time
            .map(|t| t.to_string())
            .unwrap_or_default(),
    }
}

fn owner(o: &crate::record::Owner) -> pb::Owner {
    let name = |n: &Option<String>| n.clone().unwrap_or_default();
    pb::Owner {
        replicaset: name(&o.replicaset),
        deployment: name(&o.deployment),
        statefulset: name(&o.statefulset),
        daemonset: name(&o.daemonset),
        job: name(&o.job),
        cronjob: name(&o.cronjob),
    }
}

fn event(
    ctx: &ApiContext,
    kind: Lifecycle,
    time: Timestamp,
    r: &ContainerRecord,
) -> pb::ContainerEvent {
    pb::ContainerEvent {
        id: ctx.ids.next_id(),
        event: kind.as_str().to_string(),
        time: time.to_string(),
        node: ctx.node.clone(),
        container: Some(container(ctx, r)),
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::ContainerEvent, Status>> + Send>>;

#[tonic::async_trait]
impl Agent for AgentService {
    async fn list_containers(
        &self,
        request: Request<pb::ListContainersRequest>,
    ) -> Result<Response<pb::ListContainersResponse>, Status> {
        let req = request.into_inner();
        let some = |s: String| (!s.is_empty()).then_some(s);
        let filter = ContainerFilter {
            namespace: some(req.namespace),
            pod: some(req.pod),
            state: some(req.state),
        };
        let containers = self
            .ctx
            .view
            .list(&filter)
            .iter()
            .map(|r| container(&self.ctx, r))
            .collect();
        Ok(Response::new(pb::ListContainersResponse { containers }))
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        _request: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let (snapshot, rx) = self.ctx.view.subscribe();
        let now = Timestamp::now();
        let first: Vec<Result<pb::ContainerEvent, Status>> = snapshot
            .iter()
            .map(|r| Ok(event(&self.ctx, Lifecycle::Added, now, r)))
            .collect();
        let ctx = self.ctx.clone();
        let live = futures::stream::unfold((rx, ctx, false), |(mut rx, ctx, done)| async move {
            if done {
                return None;
            }
            match rx.recv().await {
                Ok(ViewEvent {
                    event: kind,
                    time,
                    record,
                }) => {
                    let e = event(&ctx, kind, time, &record);
                    Some((Ok(e), (rx, ctx, false)))
                }
                Err(RecvError::Lagged(_)) => Some((
                    Err(Status::resource_exhausted(
                        "watcher fell behind and was disconnected; reconnect to resync",
                    )),
                    (rx, ctx, true),
                )),
                Err(RecvError::Closed) => None,
            }
        });
        let stop = self.ctx.stop.clone().cancelled_owned();
        let stream = futures::stream::iter(first).chain(live).take_until(stop);
        Ok(Response::new(Box::pin(stream)))
    }
}
