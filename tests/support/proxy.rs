//! A TCP proxy that can play an outage: of Maestro, or of the API server.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use tokio::task::JoinHandle;

const UP: u8 = 0;
const DOWN: u8 = 1;
const HANGING: u8 = 2;
const UNAVAILABLE: u8 = 3;

/// A TCP proxy in front of a port. Taking it down refuses new connections
/// and cuts open ones: to the client, exactly a server that stopped (while
/// others, connected directly, keep working). Hanging it keeps every
/// connection open but passes nothing either way: a partition that drops
/// packets, where requests wait instead of failing.
pub struct Proxy {
    pub address: SocketAddr,
    mode: Arc<AtomicU8>,
    hang: watch::Sender<bool>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// Proxies to the host:port of `endpoint` (a URL or host:port).
    pub async fn start(endpoint: &str) -> Proxy {
        let target = endpoint
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mode = Arc::new(AtomicU8::new(UP));
        let (hang, _) = watch::channel(false);
        let connections = Arc::new(Mutex::new(Vec::new()));
        let accept = {
            let mode = mode.clone();
            let hang = hang.clone();
            let connections = connections.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((mut inbound, _)) = listener.accept().await else {
                        return;
                    };
                    let task = match mode.load(Ordering::SeqCst) {
                        DOWN => {
                            drop(inbound);
                            continue;
                        }
                        // An HTTP server that is up but failing: every
                        // request read gets a 503, as a load balancer with
                        // no healthy backend answers.
                        UNAVAILABLE => tokio::spawn(async move {
                            use tokio::io::{AsyncReadExt, AsyncWriteExt};
                            let mut buf = [0u8; 8192];
                            let mut seen = Vec::new();
                            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                                match inbound.read(&mut buf).await {
                                    Ok(0) | Err(_) => return,
                                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                                }
                            }
                            let _ = inbound
                                .write_all(
                                    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: 54\r\nconnection: close\r\n\r\n{\"kind\":\"Error\",\"reason\":\"maintenance (fault test)\"}  ",
                                )
                                .await;
                        }),
                        // Accepted, never answered.
                        HANGING => tokio::spawn(async move {
                            let _held = inbound;
                            std::future::pending::<()>().await;
                        }),
                        _ => {
                            let target = target.clone();
                            let mut hanging = hang.subscribe();
                            tokio::spawn(async move {
                                let Ok(mut outbound) =
                                    tokio::net::TcpStream::connect(&target).await
                                else {
                                    return;
                                };
                                tokio::select! {
                                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                                    () = async {
                                        // The Ref the wait returns must not
                                        // live on: it is not Send.
                                        let _ = hanging.wait_for(|h| *h).await;
                                    } => {
                                        // Stop relaying but keep both ends
                                        // (owned by this task) open, so
                                        // nobody sees a reset.
                                        std::future::pending::<()>().await;
                                    }
                                }
                            })
                        }
                    };
                    connections.lock().unwrap().push(task);
                }
            })
        };
        Proxy {
            address,
            mode,
            hang,
            connections,
            accept,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn set_down(&self, down: bool) {
        self.mode
            .store(if down { DOWN } else { UP }, Ordering::SeqCst);
        self.hang.send_replace(false);
        if down {
            for task in self.connections.lock().unwrap().drain(..) {
                task.abort();
            }
        }
    }

    /// Cuts open connections and answers every new HTTP request with 503.
    pub fn set_unavailable(&self) {
        self.set_down(true);
        self.mode.store(UNAVAILABLE, Ordering::SeqCst);
    }

    /// Freezes every open and new connection without closing any.
    pub fn set_hanging(&self) {
        self.mode.store(HANGING, Ordering::SeqCst);
        self.hang.send_replace(true);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.set_down(true);
    }
}
