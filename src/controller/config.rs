//! The operator's configuration: flags, each also readable from an
//! environment variable (the usual way in a Deployment).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use super::crd::parse_duration_at_least;
use super::stream::StatusSource;
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

    /// Send the bearer token over plaintext (http://) endpoints too. Only
    /// for connections protected otherwise (a service mesh, a tunnel).
    #[arg(long, env = "MAESTRO_ALLOW_INSECURE_TOKEN")]
    pub allow_insecure_token: bool,

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

    /// Where agents' reports come from: `stream` follows Maestro's gRPC
    /// status stream (REST polls only as a safety net, every `interval`,
    /// and every `pollInterval` while the stream is down); `poll` reads
    /// over REST every `pollInterval` only (for Maestro deployments that
    /// forbid Subscribe).
    #[arg(long, env = "OPERATOR_STATUS_SOURCE", value_enum, default_value_t = StatusSource::Stream)]
    pub status_source: StatusSource,

    /// The shortest gap between two status-driven reconciles of one
    /// object: a burst of reports within it costs one more reconcile (and
    /// status patch) at its end. The first report is never delayed, nor is
    /// one that turns a work condition (that decides Ready).
    #[arg(long, env = "OPERATOR_STATUS_WINDOW", default_value = "250ms", value_parser = short_duration)]
    pub status_window: Duration,

    /// Average requests per second to the Kubernetes API server (watches,
    /// status patches, events). 0 disables the limit. 200: 1,000 objects
    /// created at once cost about five requests each (events and status
    /// patches), and at 50 the last of them queued for a minute and more.
    #[arg(long, env = "KUBE_QPS", default_value_t = 200.0)]
    pub kube_qps: f64,

    /// Requests to the Kubernetes API server allowed at once above the
    /// average.
    #[arg(long, env = "KUBE_BURST", default_value_t = 400)]
    pub kube_burst: u32,

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

    /// How often each MaestroApplySet reads Maestro's consumers again
    /// (Maestro has no consumer watch): a consumer that gains or loses a
    /// selected label joins or leaves its sets within this interval.
    #[arg(long, env = "OPERATOR_CONSUMER_RELIST_INTERVAL", default_value = "30s", value_parser = duration)]
    pub consumer_relist_interval: Duration,

    /// The shortest `pollInterval` an object may ask for; shorter ones are
    /// raised to it (with a Warning event and a status condition). Also the
    /// shortest gap between two status reads of one consumer forced by
    /// `reconcile-requested-at`.
    #[arg(long, env = "OPERATOR_MIN_POLL_INTERVAL", default_value = "5s", value_parser = duration)]
    pub min_poll_interval: Duration,

    /// The shortest `interval` (resync once Ready) an object may ask for.
    #[arg(long, env = "OPERATOR_MIN_INTERVAL", default_value = "1m", value_parser = duration)]
    pub min_interval: Duration,

    /// After SIGTERM, how long in-flight reconciles may run before the
    /// process exits without them; keep it below the pod's
    /// terminationGracePeriodSeconds (the chart derives it).
    #[arg(long, env = "OPERATOR_SHUTDOWN_TIMEOUT", default_value = "20s", value_parser = duration)]
    pub shutdown_timeout: Duration,

    /// How long the MaestroApply watch may keep failing before /healthz
    /// fails (so the kubelet restarts the operator).
    #[arg(long, env = "OPERATOR_WATCH_FAILURE_LIMIT", default_value = "5m", value_parser = duration)]
    pub watch_failure_limit: Duration,

    /// At most this many deletions per consumer may await the agent's
    /// confirmation; more wait their turn (reason DeletionQueued). An agent
    /// confirms at its own pace, and the pinned Maestro never re-sends a
    /// delete, so a flood only ages deletions. 0: no limit.
    #[arg(long, env = "OPERATOR_MAX_UNCONFIRMED_DELETIONS", default_value_t = 50)]
    pub max_unconfirmed_deletions: usize,

    /// Longest retry delay after repeated failures of one object.
    #[arg(long, env = "OPERATOR_MAX_BACKOFF", default_value = "5m", value_parser = duration)]
    pub max_backoff: Duration,

    /// Address of /metrics.
    #[arg(long, env = "METRICS_ADDRESS", default_value = "0.0.0.0:8080")]
    pub metrics_address: SocketAddr,

    /// Serve /metrics over HTTPS, and only to requests whose bearer token
    /// the API server authenticates (TokenReview) and authorizes to `get`
    /// the non-resource URL /metrics (SubjectAccessReview).
    /// --metrics-secure=false: plain HTTP, no authentication.
    #[arg(
        long,
        env = "METRICS_SECURE",
        default_value_t = true,
        num_args = 0..=1,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub metrics_secure: bool,

    /// PEM certificate (chain) of the HTTPS /metrics listener, with
    /// --metrics-key-file; re-read when it changes. Default: a self-signed
    /// certificate made at start-up.
    #[arg(long, env = "METRICS_CERT_FILE")]
    pub metrics_cert_file: Option<PathBuf>,

    /// PEM private key of --metrics-cert-file.
    #[arg(long, env = "METRICS_KEY_FILE")]
    pub metrics_key_file: Option<PathBuf>,

    /// Address of /healthz and /readyz (may equal --metrics-address only
    /// with --metrics-secure=false).
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
    // Zero is meaningful for none of these; the CRD's rules.
    parse_duration_at_least(value, Duration::from_secs(1))
}

/// A duration that may be zero or below a second (`0`, `250ms`).
fn short_duration(value: &str) -> std::result::Result<Duration, String> {
    parse_duration_at_least(value, Duration::ZERO)
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
        config.allow_insecure_token = self.allow_insecure_token;
        config.request_timeout = self.maestro_request_timeout;
        config.check()?;
        Ok(config)
    }

    pub fn settings(&self) -> Settings {
        Settings {
            max_backoff: self.max_backoff,
            sync_wait: self.maestro_request_timeout,
            floors: super::crd::Floors {
                poll: self.min_poll_interval,
                resync: self.min_interval,
            },
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

/// How `/metrics` is served, from `--metrics-secure` and the certificate
/// flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricsServing {
    /// Plain HTTP, no authentication (`--metrics-secure=false`).
    Plain,
    /// HTTPS; every request authenticated and authorized by the API
    /// server. The certificate comes from the files, else it is
    /// self-signed at start-up.
    Secure { cert: Option<MetricsCertFiles> },
}

/// `--metrics-cert-file` and `--metrics-key-file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsCertFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl OperatorConfig {
    /// How `/metrics` is served, checked: the certificate flags come in
    /// pairs and only with `--metrics-secure`, and a secure listener needs
    /// an address of its own (the probes stay plain HTTP).
    pub fn metrics_serving(&self) -> Result<MetricsServing> {
        let cert = match (&self.metrics_cert_file, &self.metrics_key_file) {
            (Some(cert_file), Some(key_file)) => Some(MetricsCertFiles {
                cert_file: cert_file.clone(),
                key_file: key_file.clone(),
            }),
            (None, None) => None,
            _ => {
                return Err(Error::Config(
                    "--metrics-cert-file and --metrics-key-file go together: give both or neither"
                        .into(),
                ));
            }
        };
        if !self.metrics_secure {
            if cert.is_some() {
                return Err(Error::Config(
                    "--metrics-cert-file and --metrics-key-file need --metrics-secure \
                     (they are the HTTPS certificate of /metrics)"
                        .into(),
                ));
            }
            return Ok(MetricsServing::Plain);
        }
        // Port 0 twice means two ephemeral ports, not one.
        if self.metrics_address == self.health_address && self.metrics_address.port() != 0 {
            return Err(Error::Config(format!(
                "--metrics-address and --health-address are both {}: with --metrics-secure \
                 (the default) /metrics is served over HTTPS with authentication and the \
                 probes over plain HTTP, so the two addresses must differ; pass \
                 --metrics-secure=false to serve both on one plain-HTTP port",
                self.metrics_address
            )));
        }
        Ok(MetricsServing::Secure { cert })
    }
}

#[cfg(test)]
mod tests;
