//! A round-robin TCP proxy over several instances of one server: what the
//! operator sees behind a Service or a DNS name with several addresses.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::task::JoinHandle;

/// Counters, per backend in the order given.
#[derive(Default)]
struct Stats {
    /// Connections relayed to the backend so far.
    served: Vec<AtomicUsize>,
    /// Connections to the backend open now.
    open: Vec<AtomicUsize>,
    /// Connections that found their backend refusing and went to the next.
    failovers: AtomicUsize,
}

/// Each new connection goes to the next backend in turn. A backend that
/// refuses the connection (its process is gone) is skipped for the next
/// one, as a client does with a DNS name that has several addresses or a
/// load balancer that retries elsewhere; a connection nothing accepts is
/// closed. Open connections are never moved: when their backend dies, the
/// client sees them end and reconnects.
pub struct RoundRobin {
    pub address: SocketAddr,
    backends: Vec<String>,
    stats: Arc<Stats>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl RoundRobin {
    /// Proxies to the host:port of each endpoint (URLs or host:port).
    pub async fn start(endpoints: &[&str]) -> RoundRobin {
        let backends: Vec<String> = endpoints
            .iter()
            .map(|e| {
                e.trim_start_matches("http://")
                    .trim_start_matches("https://")
                    .trim_end_matches('/')
                    .to_string()
            })
            .collect();
        assert!(!backends.is_empty(), "a round robin needs a backend");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let stats = Arc::new(Stats {
            served: backends.iter().map(|_| AtomicUsize::new(0)).collect(),
            open: backends.iter().map(|_| AtomicUsize::new(0)).collect(),
            failovers: AtomicUsize::new(0),
        });
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::new(Mutex::new(Vec::new()));
        let accept = {
            let backends = backends.clone();
            let stats = stats.clone();
            let connections = connections.clone();
            tokio::spawn(async move {
                let mut next = 0usize;
                loop {
                    let Ok((mut inbound, _)) = listener.accept().await else {
                        return;
                    };
                    let first = next;
                    next = (next + 1) % backends.len();
                    let backends = backends.clone();
                    let stats = stats.clone();
                    let task = tokio::spawn(async move {
                        for i in (0..backends.len()).map(|k| (first + k) % backends.len()) {
                            let Ok(mut outbound) =
                                tokio::net::TcpStream::connect(&backends[i]).await
                            else {
                                stats.failovers.fetch_add(1, Ordering::SeqCst);
                                continue;
                            };
                            stats.served[i].fetch_add(1, Ordering::SeqCst);
                            stats.open[i].fetch_add(1, Ordering::SeqCst);
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                            stats.open[i].fetch_sub(1, Ordering::SeqCst);
                            return;
                        }
                    });
                    let mut all = connections.lock().unwrap();
                    all.retain(|t| !t.is_finished());
                    all.push(task);
                }
            })
        };
        RoundRobin {
            address,
            backends,
            stats,
            connections,
            accept,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Connections relayed to backend `i` so far.
    pub fn served(&self, i: usize) -> usize {
        self.stats.served[i].load(Ordering::SeqCst)
    }

    /// Connections to backend `i` open now.
    pub fn open(&self, i: usize) -> usize {
        self.stats.open[i].load(Ordering::SeqCst)
    }

    /// Connection attempts that found a backend refusing and moved on.
    pub fn failovers(&self) -> usize {
        self.stats.failovers.load(Ordering::SeqCst)
    }

    /// "host:port served/open, ..." for a log line.
    pub fn summary(&self) -> String {
        let per: Vec<String> = self
            .backends
            .iter()
            .enumerate()
            .map(|(i, b)| format!("{b} {} served, {} open", self.served(i), self.open(i)))
            .collect();
        format!("{}; {} failover(s)", per.join(", "), self.failovers())
    }
}

impl Drop for RoundRobin {
    fn drop(&mut self) {
        self.accept.abort();
        for task in self.connections.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}
