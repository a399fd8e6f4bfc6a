//! The Maestro connection every command shares: its flags, and the
//! client, made on first use.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use crate::maestro::config::MaestroConfig;
use crate::maestro::work_client::WorkClient;
use crate::names::SourceId;

use super::errors::CliError;

/// The local stack's endpoints (`tests/stack/stack.sh`).
pub const DEFAULT_GRPC_ENDPOINT: &str = "http://127.0.0.1:18090";
pub const DEFAULT_HTTP_ENDPOINT: &str = "http://127.0.0.1:18000";
/// The source Maestro's own CLI uses too, so each sees the other's works.
pub const DEFAULT_SOURCE_ID: &str = "maestro-cli";

/// How to reach Maestro. Flags win over the environment.
#[derive(clap::Args, Debug, Clone)]
pub struct ConnectionArgs {
    /// Maestro's gRPC endpoint (writes and the status stream)
    #[arg(long, global = true, env = "MAESTRO_GRPC_ENDPOINT", default_value = DEFAULT_GRPC_ENDPOINT, value_name = "URL")]
    pub grpc_endpoint: String,
    /// Maestro's REST endpoint (reads)
    #[arg(long, global = true, env = "MAESTRO_HTTP_ENDPOINT", default_value = DEFAULT_HTTP_ENDPOINT, value_name = "URL")]
    pub http_endpoint: String,
    /// The CloudEvents source this CLI writes as; works are scoped by it
    #[arg(long, global = true, env = "MAESTRO_SOURCE_ID", default_value = DEFAULT_SOURCE_ID, value_name = "ID")]
    pub source_id: String,
    /// CA certificate (PEM) to verify Maestro's TLS certificate
    #[arg(long, global = true, env = "MAESTRO_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS; needs --key-file
    #[arg(long, global = true, env = "MAESTRO_CERT_FILE", value_name = "FILE")]
    pub cert_file: Option<PathBuf>,
    /// Client key (PEM) for mutual TLS
    #[arg(long, global = true, env = "MAESTRO_KEY_FILE", value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// File holding a bearer token (re-read per request; never pass a token itself)
    #[arg(long, global = true, env = "MAESTRO_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Send the token over plaintext (http://) endpoints too; only where the
    /// connection is protected otherwise
    #[arg(long, global = true, env = "MAESTRO_ALLOW_INSECURE_TOKEN")]
    pub allow_insecure_token: bool,
}

impl ConnectionArgs {
    pub fn config(&self) -> Result<MaestroConfig, CliError> {
        let source = SourceId::new(self.source_id.clone())
            .map_err(|e| CliError::Usage(format!("--source-id: {e}")))?;
        let mut config = MaestroConfig::new(&self.grpc_endpoint, &self.http_endpoint, source)
            .map_err(|e| CliError::Usage(e.to_string()))?;
        config.tls.ca_file = self.ca_file.clone();
        config.tls.cert_file = self.cert_file.clone();
        config.tls.key_file = self.key_file.clone();
        config.token_file = self.token_file.clone();
        config.allow_insecure_token = self.allow_insecure_token;
        config.connect_timeout = Duration::from_secs(5);
        config.check().map_err(|e| CliError::Usage(e.to_string()))?;
        Ok(config)
    }
}

/// The connection, made on first use so that commands which never talk to
/// Maestro (completion, validate without a server) cost nothing.
pub struct Connection {
    args: ConnectionArgs,
    client: OnceLock<WorkClient>,
}

impl Connection {
    pub fn new(args: ConnectionArgs) -> Connection {
        Connection {
            args,
            client: OnceLock::new(),
        }
    }

    pub fn client(&self) -> Result<&WorkClient, CliError> {
        if let Some(c) = self.client.get() {
            return Ok(c);
        }
        let config = self.args.config()?;
        let client = WorkClient::new(&config).map_err(|e| CliError::Usage(e.to_string()))?;
        Ok(self.client.get_or_init(|| client))
    }

    pub fn source_id(&self) -> &str {
        &self.args.source_id
    }
}
