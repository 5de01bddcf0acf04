//! How the recursor talks to authoritative servers: hickory's own connections, wrapped.
//!
//! hickory 0.26's name-server pool returns the first answer it gets, so a lame server that
//! answers REFUSED (or SERVFAIL, NOTAUTH) makes the whole resolution SERVFAIL although another
//! server of the zone would answer. Unbound skips such a server. Our connection wrapper turns
//! those answers into an I/O error, which the pool treats as "try the next server". It also
//! gives each server query our own timeout instead of hickory's fixed 5 s.

use std::{future::Future, io, net::IpAddr, pin::Pin, sync::Arc, time::Duration};

use futures_util::{Stream, StreamExt};
use hickory_proto::op::{DnsRequest, DnsResponse, ResponseCode};
use hickory_resolver::{
    ConnectionProvider, PoolContext, TlsConfig,
    config::{ConnectionConfig, ProtocolConfig, ResolverOpts},
    net::{DnsHandle, NetError, runtime::TokioRuntimeProvider},
};

/// Connection provider for the recursor: lame answers fail over, per-server timeout is ours.
#[derive(Clone)]
pub struct Upstreams {
    inner: TokioRuntimeProvider,
    /// Context with our per-server timeout, for plain UDP/TCP connections.
    cx: Arc<PoolContext>,
}

impl Upstreams {
    /// `server_timeout`: how long one query to one authoritative server may take.
    pub fn new(server_timeout: Duration) -> Result<Upstreams, NetError> {
        let mut opts = ResolverOpts::default();
        opts.timeout = server_timeout;
        let cx = PoolContext::new(opts, TlsConfig::new()?);
        Ok(Upstreams {
            inner: TokioRuntimeProvider::default(),
            cx: Arc::new(cx),
        })
    }
}

type ConnFuture<C> = Pin<Box<dyn Future<Output = Result<C, NetError>> + Send + 'static>>;

impl ConnectionProvider for Upstreams {
    type Conn = LameFilter<<TokioRuntimeProvider as ConnectionProvider>::Conn>;
    type FutureConn = ConnFuture<Self::Conn>;
    type RuntimeProvider = TokioRuntimeProvider;

    fn new_connection(
        &self,
        ip: IpAddr,
        config: &ConnectionConfig,
        cx: &PoolContext,
    ) -> Result<Self::FutureConn, NetError> {
        let cx = match config.protocol {
            ProtocolConfig::Udp | ProtocolConfig::Tcp => &self.cx,
            _ => cx,
        };
        let fut = self.inner.new_connection(ip, config, cx)?;
        Ok(Box::pin(async move { fut.await.map(LameFilter) }))
    }

    fn runtime_provider(&self) -> &Self::RuntimeProvider {
        &self.inner
    }
}

/// A connection whose REFUSED / SERVFAIL / NOTAUTH answers become errors.
#[derive(Clone)]
pub struct LameFilter<H>(H);

/// Whether an authoritative server's answer means "ask another server of this zone".
pub fn is_lame(code: ResponseCode) -> bool {
    matches!(
        code,
        ResponseCode::Refused
            | ResponseCode::ServFail
            | ResponseCode::NotAuth
            | ResponseCode::NotImp
    )
}

type ResponseStream = Pin<Box<dyn Stream<Item = Result<DnsResponse, NetError>> + Send + Unpin>>;

impl<H: DnsHandle> DnsHandle for LameFilter<H> {
    type Response = ResponseStream;
    type Runtime = H::Runtime;

    fn is_verifying_dnssec(&self) -> bool {
        self.0.is_verifying_dnssec()
    }

    fn is_using_edns(&self) -> bool {
        self.0.is_using_edns()
    }

    fn send(&self, request: DnsRequest) -> Self::Response {
        Box::pin(self.0.send(request).map(|r| match r {
            Ok(resp) if is_lame(resp.response_code) => Err(NetError::from(io::Error::other(
                format!("lame server: {}", resp.response_code),
            ))),
            other => other,
        }))
    }
}
