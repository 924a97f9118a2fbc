//! The gRPC service: each call runs on a blocking thread (applies create
//! devices and wait for workers; shows take the controller's lock).

use crate::daemon::Daemon;
use crate::pcap::PcapError;
use std::sync::Arc;
use tonic::{Request, Response, Status};
use vswitch_api::pb;

/// The `Vswitch` service over a running daemon.
#[derive(Clone)]
pub struct Api {
    daemon: Arc<Daemon>,
}

impl Api {
    /// Serves `daemon`.
    pub fn new(daemon: Arc<Daemon>) -> Api {
        Api { daemon }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Daemon) -> Result<T, Status> + Send + 'static,
    ) -> Result<Response<T>, Status> {
        let d = Arc::clone(&self.daemon);
        tokio::task::spawn_blocking(move || f(&d))
            .await
            .map_err(|e| Status::internal(format!("the request failed: {e}")))?
            .map(Response::new)
    }
}

#[tonic::async_trait]
impl vswitch_api::Vswitch for Api {
    async fn apply(&self, req: Request<pb::ApplyRequest>) -> Result<Response<pb::ApplyResponse>, Status> {
        let r = req.into_inner();
        self.blocking(move |d| Ok(d.apply_yaml(&r.yaml, r.dry_run))).await
    }

    async fn patch(&self, req: Request<pb::PatchRequest>) -> Result<Response<pb::ApplyResponse>, Status> {
        let r = req.into_inner();
        self.blocking(move |d| Ok(d.patch(&r))).await
    }

    async fn get(&self, _: Request<pb::GetRequest>) -> Result<Response<pb::GetResponse>, Status> {
        self.blocking(|d| Ok(pb::GetResponse { yaml: d.control().controller.state().to_yaml() })).await
    }

    async fn show(&self, req: Request<pb::ShowRequest>) -> Result<Response<pb::ShowResponse>, Status> {
        let r = req.into_inner();
        self.blocking(move |d| {
            let shown = crate::show::show(d, &r.what, &r.args).map_err(Status::invalid_argument)?;
            let json = serde_json::to_string_pretty(&shown.json).map_err(|e| Status::internal(e.to_string()))?;
            Ok(pb::ShowResponse { text: shown.text, json })
        })
        .await
    }

    async fn clear(&self, req: Request<pb::ClearRequest>) -> Result<Response<pb::ClearResponse>, Status> {
        let what = req.into_inner().what;
        self.blocking(move |d| d.clear(&what).map(|text| pb::ClearResponse { text }).map_err(Status::invalid_argument))
            .await
    }

    async fn trace_add(&self, req: Request<pb::TraceAddRequest>) -> Result<Response<pb::TraceAddResponse>, Status> {
        let r = req.into_inner();
        self.blocking(move |d| {
            d.trace_add(&r.node, r.count).map(|text| pb::TraceAddResponse { text }).map_err(Status::invalid_argument)
        })
        .await
    }

    async fn trace_clear(&self, _: Request<pb::TraceClearRequest>) -> Result<Response<pb::TraceClearResponse>, Status> {
        self.blocking(|d| Ok(pb::TraceClearResponse { text: d.trace_clear() })).await
    }

    async fn pcap_start(&self, req: Request<pb::PcapStartRequest>) -> Result<Response<pb::PcapStartResponse>, Status> {
        let r = req.into_inner();
        self.blocking(move |d| d.pcap_start(&r).map(|text| pb::PcapStartResponse { text }).map_err(pcap_status)).await
    }

    async fn pcap_stop(&self, _: Request<pb::PcapStopRequest>) -> Result<Response<pb::PcapStopResponse>, Status> {
        self.blocking(|d| {
            let (text, packets, file) = d.pcap_stop().map_err(pcap_status)?;
            Ok(pb::PcapStopResponse { text, packets, file: file.display().to_string() })
        })
        .await
    }

    async fn pcap_status(&self, _: Request<pb::PcapStatusRequest>) -> Result<Response<pb::PcapStatusResponse>, Status> {
        self.blocking(|d| {
            let (text, json) = d.pcap_status();
            let json = serde_json::to_string_pretty(&json).map_err(|e| Status::internal(e.to_string()))?;
            Ok(pb::PcapStatusResponse { text, json })
        })
        .await
    }
}

fn pcap_status(e: PcapError) -> Status {
    match e {
        PcapError::Invalid(m) => Status::invalid_argument(m),
        PcapError::State(m) => Status::failed_precondition(m),
        PcapError::Failed(m) => Status::internal(m),
    }
}
