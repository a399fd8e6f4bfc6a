//! The operator's configuration: flags, each also readable from an
//! environment variable (the usual way in a Deployment).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use super::crd::parse_duration;
use super::{Error, Result, Settings};
use crate::maestro::config::{MaestroConfig, TlsFiles};
use crate::names::SourceId;
use crate::telemetry::LogFormat;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "maestro-operator",
    version,
    about = "Delivers MaestroApply objects' ManifestWorks to remote clusters through Maestro"
)]
pub struct OperatorConfig {
    /// Maestro's gRPC endpoint (publishes), e.g. maestro-grpc.maestro:8090.
    #[arg(long, env = "MAESTRO_GRPC_ENDPOINT")]
    pub maestro_grpc_endpoint: String,

    /// Maestro's HTTP endpoint (status reads), e.g. http://maestro.maestro:8000.
    #[arg(long, env = "MAESTRO_HTTP_ENDPOINT")]
    pub maestro_http_endpoint: String,

    /// The CloudEvents source ID the operator publishes as. Replicas of one
    /// operator share it; two operators must not.
    #[arg(long, env = "MAESTRO_SOURCE_ID", default_value = "maestro-operator")]
    pub source_id: String,

    /// CA bundle that verifies Maestro's server certificates.
    #[arg(long, env = "MAESTRO_CA_FILE")]
    pub ca_file: Option<PathBuf>,

    /// Client certificate for mutual TLS (with --key-file).
    #[arg(long, env = "MAESTRO_CERT_FILE")]
    pub cert_file: Option<PathBuf>,

    /// Client key for mutual TLS (with --cert-file).
    #[arg(long, env = "MAESTRO_KEY_FILE")]
    pub key_file: Option<PathBuf>,

    /// File holding a bearer token for Maestro; read on every request.
    #[arg(long, env = "MAESTRO_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,

    /// How often to check the TLS files for changes; a change rebuilds the
    /// Maestro connections, so rotated certificates need no restart.
    #[arg(long, env = "MAESTRO_TLS_RELOAD_INTERVAL", default_value = "30s", value_parser = duration)]
    pub tls_reload_interval: Duration,

    /// Timeout of one Maestro request.
    #[arg(long, env = "MAESTRO_REQUEST_TIMEOUT", default_value = "30s", value_parser = duration)]
    pub maestro_request_timeout: Duration,

    /// Average publishes (creates, updates, deletes) per second to Maestro.
    /// 0 disables the limit.
    #[arg(long, env = "MAESTRO_QPS", default_value_t = 20.0)]
    pub maestro_qps: f64,

    /// Publishes allowed at once above the average.
    #[arg(long, env = "MAESTRO_BURST", default_value_t = 40)]
    pub maestro_burst: u32,

    /// Bundles per REST page when polling a consumer's status.
    #[arg(long, env = "MAESTRO_PAGE_SIZE", default_value_t = super::poller::DEFAULT_PAGE_SIZE)]
    pub maestro_page_size: u32,

    /// Only watch MaestroApply objects in this namespace (default: all).
    #[arg(long, env = "WATCH_NAMESPACE")]
    pub namespace: Option<String>,

    /// Only reconcile MaestroApply objects matching this label selector
    /// (for sharding across operators).
    #[arg(long, env = "OPERATOR_LABEL_SELECTOR")]
    pub label_selector: Option<String>,

    /// Reconciles running at once.
    #[arg(long, env = "OPERATOR_CONCURRENCY", default_value_t = 16)]
    pub concurrency: u16,

    /// Longest retry delay after repeated failures of one object.
    #[arg(long, env = "OPERATOR_MAX_BACKOFF", default_value = "5m", value_parser = duration)]
    pub max_backoff: Duration,

    /// Address of /metrics.
    #[arg(long, env = "METRICS_ADDRESS", default_value = "0.0.0.0:8080")]
    pub metrics_address: SocketAddr,

    /// Address of /healthz and /readyz (may equal --metrics-address).
    #[arg(long, env = "HEALTH_ADDRESS", default_value = "0.0.0.0:8081")]
    pub health_address: SocketAddr,

    /// Run leader election on a Lease: only the holder reconciles.
    #[arg(
        long,
        env = "LEADER_ELECT",
        default_value_t = false,
        num_args = 0..=1,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub leader_elect: bool,

    /// Name of the leader-election Lease.
    #[arg(long, env = "LEASE_NAME", default_value = "maestro-operator")]
    pub lease_name: String,

    /// Namespace of the Lease (default: the pod's namespace, else "default").
    #[arg(long, env = "LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,

    /// How long a lease is valid without renewal: how soon a standby takes
    /// over from a dead leader.
    #[arg(long, env = "LEASE_DURATION", default_value = "15s", value_parser = duration)]
    pub lease_duration: Duration,

    /// This replica's identity in the Lease (default: the pod name, else
    /// the host name with a random suffix).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,

    /// Log output format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

fn duration(value: &str) -> std::result::Result<Duration, String> {
    // Zero is meaningful for none of these; reuse the CRD's rules.
    parse_duration("flag", value).map_err(|e| e.replace("spec.flag ", ""))
}

impl OperatorConfig {
    /// The Maestro client configuration, checked (files exist, pairs
    /// complete).
    pub fn maestro(&self) -> Result<MaestroConfig> {
        let source = SourceId::new(self.source_id.as_str())
            .map_err(|e| Error::Config(format!("--source-id: {e}")))?;
        let mut config = MaestroConfig::new(
            &self.maestro_grpc_endpoint,
            &self.maestro_http_endpoint,
            source,
        )?;
        config.tls = TlsFiles {
            ca_file: self.ca_file.clone(),
            cert_file: self.cert_file.clone(),
            key_file: self.key_file.clone(),
        };
        config.token_file = self.token_file.clone();
        config.request_timeout = self.maestro_request_timeout;
        config.check()?;
        Ok(config)
    }

    pub fn settings(&self) -> Settings {
        Settings {
            max_backoff: self.max_backoff,
            sync_wait: self.maestro_request_timeout,
            ..Settings::default()
        }
    }

    /// The Lease's namespace.
    pub fn lease_namespace(&self) -> String {
        self.lease_namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .or_else(|| self.namespace.clone())
            .unwrap_or_else(|| "default".into())
    }

    /// This replica's identity.
    pub fn identity(&self) -> String {
        self.identity.clone().unwrap_or_else(|| {
            let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "maestro-operator".into());
            let suffix = uuid::Uuid::new_v4().simple().to_string();
            format!("{host}-{}", &suffix[..8])
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> std::result::Result<OperatorConfig, clap::Error> {
        let mut all = vec![
            "maestro-operator",
            "--maestro-grpc-endpoint",
            "127.0.0.1:8090",
            "--maestro-http-endpoint",
            "http://127.0.0.1:8000",
        ];
        all.extend_from_slice(args);
        OperatorConfig::try_parse_from(all)
    }

    #[test]
    fn defaults_match_the_documentation() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.source_id, "maestro-operator");
        assert_eq!(c.namespace, None);
        assert!(!c.leader_elect);
        assert_eq!(c.lease_duration, Duration::from_secs(15));
        assert_eq!(c.max_backoff, Duration::from_secs(300));
        assert_eq!(c.maestro_page_size, 400);
        let m = c.maestro().unwrap();
        assert_eq!(m.source_id.as_str(), "maestro-operator");
    }

    #[test]
    fn leader_election_is_a_switch_with_an_optional_value() {
        assert!(parse(&["--leader-elect"]).unwrap().leader_elect);
        assert!(!parse(&["--leader-elect=false"]).unwrap().leader_elect);
    }

    #[test]
    fn bad_durations_and_source_ids_are_refused_by_name() {
        let e = parse(&["--max-backoff", "soon"]).unwrap_err().to_string();
        assert!(e.contains("--max-backoff"), "{e}");
        let c = parse(&["--source-id", "has space"]).unwrap();
        let e = c.maestro().unwrap_err().to_string();
        assert!(e.contains("--source-id"), "{e}");
    }

    #[test]
    fn a_missing_token_file_is_reported_at_start_up() {
        let c = parse(&["--token-file", "/nonexistent/token"]).unwrap();
        let e = c.maestro().unwrap_err().to_string();
        assert!(e.contains("/nonexistent/token"), "{e}");
    }
}
