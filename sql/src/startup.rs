//! The start of a session: protocol negotiation, the session limit, TLS when a
//! certificate is configured, and the query token as the password (cleartext password
//! authentication, compared in constant time like the REST API's bearer token). No token
//! configured: no authentication, as the REST API.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures::{Sink, SinkExt};
use pgwire::api::auth::{
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata,
    DefaultServerParameterProvider, StartupHandler,
};
use pgwire::api::{
    ClientInfo, ConnectionManager, PgWireConnectionState, PidSecretKeyGenerator,
    RandomPidSecretKeyGenerator,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::startup::Authentication;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How sessions start.
pub struct Startup {
    /// The password clients must give; `None`: any.
    token: Option<String>,
    /// Whether plaintext sessions are refused (a certificate is configured).
    require_tls: bool,
    sessions: Arc<Semaphore>,
    max_sessions: usize,
    manager: Arc<ConnectionManager>,
    keys: RandomPidSecretKeyGenerator,
    parameters: DefaultServerParameterProvider,
}

/// A session's place under the limit, held as long as the connection lives.
struct SessionPermit(#[allow(dead_code)] OwnedSemaphorePermit);

fn fatal(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".into(),
        code.into(),
        message,
    )))
}

impl Startup {
    pub fn new(
        token: Option<String>,
        require_tls: bool,
        max_sessions: usize,
        manager: Arc<ConnectionManager>,
    ) -> Startup {
        let mut parameters = DefaultServerParameterProvider::default();
        // A PostgreSQL version clients accept (some parse it); the engine is in version().
        parameters.server_version = "16.6".to_string();
        parameters.is_superuser = false;
        parameters.default_transaction_read_only = true;
        Startup {
            token,
            require_tls,
            sessions: Arc::new(Semaphore::new(max_sessions)),
            max_sessions,
            manager,
            keys: RandomPidSecretKeyGenerator::default(),
            parameters,
        }
    }

    /// Sessions now open.
    pub fn open_sessions(&self) -> usize {
        self.max_sessions - self.sessions.available_permits()
    }

    async fn finish<C>(&self, client: &mut C) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let (pid, key) = self.keys.generate(client);
        client.set_pid_and_secret_key(pid, key.clone());
        let (handle, guard) = self.manager.register(pid, key);
        client.session_extensions().insert(handle);
        client.session_extensions().insert(guard);
        finish_authentication(client, &self.parameters).await
    }
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                if self.require_tls && !client.is_secure() {
                    return Err(fatal(
                        "28000",
                        "this server requires TLS (sslmode=require): the password must not cross the network in clear".into(),
                    ));
                }
                let permit = self.sessions.clone().try_acquire_owned().map_err(|_| {
                    fatal(
                        "53300",
                        format!(
                            "sorry, too many clients already (at most {})",
                            self.max_sessions
                        ),
                    )
                })?;
                client.session_extensions().insert(SessionPermit(permit));
                if self.token.is_some() {
                    client.set_state(PgWireConnectionState::AuthenticationInProgress);
                    client
                        .send(PgWireBackendMessage::Authentication(
                            Authentication::CleartextPassword,
                        ))
                        .await?;
                } else {
                    self.finish(client).await?;
                }
            }
            PgWireFrontendMessage::PasswordMessageFamily(password) => {
                let given = password.into_password()?.password;
                let user = client.metadata().get("user").cloned().unwrap_or_default();
                match &self.token {
                    Some(token) if lambda_io::bearer::token_matches(token, &given) => {
                        self.finish(client).await?
                    }
                    _ => {
                        return Err(fatal(
                            "28P01",
                            format!("password authentication failed for user \"{user}\": the password is the query token"),
                        ))
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}
