//! The SQL endpoint's errors: starting it (sockets, TLS files, the catalogue), and the
//! query errors that carry their own SQLSTATE through DataFusion.

use std::fmt;

/// What can stop the SQL endpoint from starting.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error("cannot listen for SQL clients on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("TLS for the SQL endpoint: {0}")]
    Tls(String),
    #[error("SQL catalogue: {0}")]
    Catalog(String),
}

/// A query error with its PostgreSQL SQLSTATE, raised inside DataFusion (a table scan, an
/// aggregate) and found again by [`crate::sqlstate`] when the error reaches the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateError {
    pub code: &'static str,
    pub message: String,
}

impl StateError {
    pub fn new(code: &'static str, message: impl Into<String>) -> StateError {
        StateError {
            code,
            message: message.into(),
        }
    }

    /// As a DataFusion error.
    pub fn into_datafusion(self) -> datafusion::error::DataFusionError {
        datafusion::error::DataFusionError::External(Box::new(self))
    }
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StateError {}
