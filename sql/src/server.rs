//! The SQL endpoint's sockets: binding, TLS from PEM files (a configured certificate that
//! cannot be read stops the server; it never falls back to plaintext), one task per
//! session, and the handlers every session shares.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use datafusion_postgres::hooks::cursor::CursorStatementHook;
use datafusion_postgres::hooks::set_show::SetShowHook;
use datafusion_postgres::hooks::transactions::TransactionStatementHook;
use datafusion_postgres::{DfSessionService, QueryHook};
use pgwire::api::cancel::{CancelHandler, DefaultCancelHandler};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::{auth::StartupHandler, ConnectionManager, ErrorHandler, PgWireServerHandlers};
use pgwire::tokio::tokio_rustls::rustls::pki_types::pem::PemObject;
use pgwire::tokio::tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use pgwire::tokio::tokio_rustls::rustls::{self, ServerConfig};
use pgwire::tokio::{process_socket, TlsAcceptor};
use serving::AppState;
use tokio::net::TcpListener;

use crate::catalog;
use crate::error::SqlError;
use crate::guard::ReadOnly;
use crate::limits::{Bounded, StatementLimits};
use crate::sqlstate::SqlStates;
use crate::startup::Startup;
use crate::tables::ScanLimits;
use crate::text_answers::TextAnswers;

/// How the SQL endpoint runs.
#[derive(Debug, Clone)]
pub struct SqlOptions {
    /// Address to listen on (`127.0.0.1:5433`; port 0 picks one).
    pub listen: String,
    /// PEM certificate chain and private key: TLS, and plaintext sessions refused.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The password (the REST API's query token); `None`: no authentication.
    pub token: Option<String>,
    /// Longest statement, planning and streaming included.
    pub statement_timeout: Duration,
    /// Most rows one answer may send.
    pub max_rows: usize,
    /// Most merged rows one table scan may read.
    pub max_scan_rows: usize,
    /// Most sessions open at once.
    pub max_sessions: usize,
    /// Most statements executing at once (the others wait, within their timeout).
    pub max_running: usize,
}

impl Default for SqlOptions {
    fn default() -> Self {
        SqlOptions {
            listen: "127.0.0.1:5433".into(),
            tls: None,
            token: None,
            statement_timeout: Duration::from_secs(30),
            max_rows: 100_000,
            max_scan_rows: 2_000_000,
            max_sessions: 64,
            max_running: 4,
        }
    }
}

/// The handlers of every session.
struct Handlers {
    queries: Arc<Bounded>,
    startup: Arc<Startup>,
    cancel: Arc<DefaultCancelHandler>,
    errors: Arc<SqlStates>,
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.queries.clone()
    }
    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.queries.clone()
    }
    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.startup.clone()
    }
    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        self.cancel.clone()
    }
    fn error_handler(&self) -> Arc<impl ErrorHandler> {
        self.errors.clone()
    }
}

/// A bound SQL endpoint, ready to serve.
pub struct SqlEndpoint {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    handlers: Arc<Handlers>,
}

/// The TLS acceptor of a PEM certificate chain and key (PKCS#1, PKCS#8 or SEC1).
pub fn tls_acceptor(cert: &PathBuf, key: &PathBuf) -> Result<TlsAcceptor, SqlError> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| SqlError::Tls(format!("certificate {}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(SqlError::Tls(format!(
            "no certificate in {}",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| SqlError::Tls(format!("private key {}: {e}", key.display())))?;
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| SqlError::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| SqlError::Tls(format!("certificate and key: {e}")))?;
    // PostgreSQL 17 clients may open TLS directly (sslnegotiation=direct) and ask for it.
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

impl SqlEndpoint {
    /// Binds the endpoint over `state`'s views.
    pub async fn bind(state: Arc<AppState>, opts: &SqlOptions) -> Result<SqlEndpoint, SqlError> {
        let tls = match &opts.tls {
            Some((cert, key)) => Some(tls_acceptor(cert, key)?),
            None => None,
        };
        let ctx = catalog::context(
            state,
            ScanLimits {
                max_rows: opts.max_scan_rows,
            },
        )?;
        let hooks: Vec<Arc<dyn QueryHook>> = vec![
            Arc::new(ReadOnly),
            Arc::new(CursorStatementHook),
            Arc::new(SetShowHook),
            Arc::new(TransactionStatementHook),
            Arc::new(TextAnswers),
        ];
        let service = Arc::new(DfSessionService::new_with_hooks(ctx.clone(), hooks));
        let manager = Arc::new(ConnectionManager::new());
        let handlers = Arc::new(Handlers {
            queries: Arc::new(Bounded::new(
                service,
                ctx,
                StatementLimits {
                    timeout: opts.statement_timeout,
                    max_rows: opts.max_rows,
                },
                opts.max_running,
            )),
            startup: Arc::new(Startup::new(
                opts.token.clone(),
                tls.is_some(),
                opts.max_sessions,
                manager.clone(),
            )),
            cancel: Arc::new(DefaultCancelHandler::new(manager)),
            errors: Arc::new(SqlStates),
        });
        let listener =
            TcpListener::bind(&opts.listen)
                .await
                .map_err(|source| SqlError::Listen {
                    addr: opts.listen.clone(),
                    source,
                })?;
        Ok(SqlEndpoint {
            listener,
            tls,
            handlers,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves sessions until `shutdown` completes (open sessions end with the process).
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((socket, peer)) => {
                        let _ = socket.set_nodelay(true);
                        let (tls, handlers) = (self.tls.clone(), self.handlers.clone());
                        tokio::spawn(async move {
                            if let Err(e) = process_socket(socket, tls, handlers).await {
                                tracing::debug!(%peer, error = %e, "SQL session ended with an error");
                            }
                        });
                    }
                    Err(e) => {
                        // Out of file descriptors, say: wait instead of spinning.
                        tracing::warn!(error = %e, "SQL endpoint cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
    }
}
