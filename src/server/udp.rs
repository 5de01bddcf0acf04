//! The UDP fast path: a few OS threads per socket, each reading up to [`BATCH`] queries per
//! `recvmmsg` and sending every answer of the batch with one `sendmmsg`.
//!
//! Measured before this existed (tokio task per socket, one `recv_from`/`send_to` per packet),
//! most of the CPU went to the kernel parking and waking the task between packets. Here a busy
//! socket is drained in batches without a wakeup per packet. Blocked and cached answers never
//! leave the thread; a cache miss is handed to the tokio runtime, whose task answers from a
//! clone of the same socket.
//!
//! The threads of an address share one socket rather than one `SO_REUSEPORT` socket each:
//! reuse-port spreads datagrams by a hash of the source, so a few busy sources (dnsdist in
//! front, which uses one socket per backend by default; a load generator's 8 sockets) land
//! unevenly and one thread does most of the work while another idles. On a shared socket a
//! blocked `recvmmsg` is an exclusive waiter: the kernel wakes one idle thread per arrival, and
//! whichever thread is free takes the next batch. Measured with dnsperf (8 client sockets,
//! 2 threads): 113 k QPS on every run shared, 91–125 k with reuse-port depending on the hash.

use std::{
    io,
    mem::{self, MaybeUninit},
    net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket},
    os::fd::AsRawFd,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::Instant,
};

use std::future::Future;

use tokio_util::task::TaskTracker;
use tracing::warn;

use super::{
    count,
    engine::{Engine, Fast, Scratch},
    proxy::ProxyFrom,
};
use crate::dns::Transport;

/// Queries read per `recvmmsg`.
pub const BATCH: usize = 32;
/// Largest query we read; a longer datagram is truncated by the kernel and dropped (no real
/// query is anywhere near this).
const MAX_QUERY: usize = 4096;

/// The running UDP workers of every listen address.
#[derive(Default)]
pub struct Workers {
    threads: Vec<JoinHandle<()>>,
    sockets: Vec<Arc<UdpSocket>>,
    stop: Arc<AtomicBool>,
}

impl Workers {
    /// Starts `threads` workers on `sock`.
    ///
    /// Workers block in `recvmmsg` without a timeout: a receive timeout arms and cancels a
    /// kernel timer around every sleep, which at 20 k QPS cost more CPU than answering
    /// (measured: 2.5× Unbound's CPU per query with a 250 ms timeout, parity without).
    /// [`Workers::stop`] wakes them with `shutdown` instead.
    pub fn spawn(
        &mut self,
        sock: UdpSocket,
        threads: usize,
        engine: &Arc<Engine>,
        proxy: &ProxyFrom,
        runtime: &tokio::runtime::Handle,
        tracker: &TaskTracker,
    ) -> io::Result<()> {
        sock.set_nonblocking(false)?;
        sock.set_read_timeout(None)?;
        let sock = Arc::new(sock);
        for _ in 0..threads.max(1) {
            let (sock, engine, proxy) = (sock.clone(), engine.clone(), proxy.clone());
            let (runtime, tracker) = (runtime.clone(), tracker.clone());
            let stop = self.stop.clone();
            let name = format!("udp-{}", self.threads.len());
            self.threads.push(
                std::thread::Builder::new()
                    .name(name.clone())
                    .spawn(move || {
                        // A worker that panics is replaced by a fresh one on the same thread: the
                        // batch it held is lost (its clients retry), the socket keeps being served.
                        loop {
                            let worker = Worker::new(
                                sock.clone(),
                                engine.clone(),
                                proxy.clone(),
                                runtime.clone(),
                                tracker.clone(),
                            );
                            let run =
                                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                    worker.run(&stop)
                                }));
                            match run {
                                Ok(()) => return,
                                Err(panic) => {
                                    tracing::error!(
                                        "UDP worker {name} panicked ({}); replaced by a new one",
                                        crate::process::panic_message(&*panic)
                                    );
                                    crate::metrics::worker_restarted("udp");
                                }
                            }
                        }
                    })?,
            );
        }
        self.sockets.push(sock);
        Ok(())
    }

    /// Stops every worker and waits for it: sets the flag, then shuts each socket down for
    /// reading, which wakes every thread blocked in `recvmmsg` (it returns no datagram).
    /// Sending still works, so answers from the resolver in flight can go out.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for sock in &self.sockets {
            // SAFETY: a plain syscall on a descriptor we own. On an unconnected UDP socket Linux
            // returns ENOTCONN but still marks it shut down and wakes its sleepers.
            unsafe { libc::shutdown(sock.as_raw_fd(), libc::SHUT_RD) };
        }
        for t in self.threads {
            let _ = t.join();
        }
    }
}

struct Worker {
    sock: Arc<UdpSocket>,
    engine: Arc<Engine>,
    proxy: ProxyFrom,
    runtime: tokio::runtime::Handle,
    /// Miss tasks run on it, so that shutdown can wait for them.
    tracker: TaskTracker,
    bufs: Vec<[u8; MAX_QUERY]>,
    srcs: Vec<libc::sockaddr_storage>,
    outs: Vec<Vec<u8>>,
    dsts: Vec<libc::sockaddr_storage>,
    dst_lens: Vec<libc::socklen_t>,
    scratch: Scratch,
}

impl Worker {
    fn new(
        sock: Arc<UdpSocket>,
        engine: Arc<Engine>,
        proxy: ProxyFrom,
        runtime: tokio::runtime::Handle,
        tracker: TaskTracker,
    ) -> Worker {
        // SAFETY: sockaddr_storage is plain old data; all-zero is a valid (AF_UNSPEC) value.
        let zero: libc::sockaddr_storage = unsafe { mem::zeroed() };
        Worker {
            sock,
            engine,
            proxy,
            runtime,
            tracker,
            bufs: vec![[0u8; MAX_QUERY]; BATCH],
            srcs: vec![zero; BATCH],
            outs: (0..BATCH).map(|_| Vec::with_capacity(512)).collect(),
            dsts: vec![zero; BATCH],
            dst_lens: vec![0; BATCH],
            scratch: Scratch::default(),
        }
    }

    fn run(mut self, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            let n = match self.receive() {
                Ok((0, _)) => continue,
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    continue;
                }
                Err(e) => {
                    // ICMP errors from earlier sends surface here; keep serving.
                    warn!(error = %e, "udp receive error");
                    continue;
                }
            };
            self.answer(n.0, &n.1);
        }
    }

    /// One `recvmmsg`: blocks for the first datagram, then takes what is already queued.
    /// Returns the count and each datagram's length (0 = drop it).
    fn receive(&mut self) -> io::Result<(usize, [usize; BATCH])> {
        let mut iovs: [MaybeUninit<libc::iovec>; BATCH] = [const { MaybeUninit::uninit() }; BATCH];
        let mut hdrs: [MaybeUninit<libc::mmsghdr>; BATCH] =
            [const { MaybeUninit::uninit() }; BATCH];
        for i in 0..BATCH {
            iovs[i].write(libc::iovec {
                iov_base: self.bufs[i].as_mut_ptr().cast(),
                iov_len: MAX_QUERY,
            });
            // SAFETY: mmsghdr is plain old data; every field we rely on is set below.
            let mut h: libc::mmsghdr = unsafe { mem::zeroed() };
            h.msg_hdr.msg_name = (&raw mut self.srcs[i]).cast();
            h.msg_hdr.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_iov = iovs[i].as_mut_ptr();
            h.msg_hdr.msg_iovlen = 1;
            hdrs[i].write(h);
        }
        // SAFETY: `hdrs` holds BATCH initialised headers whose buffers (`bufs`, `srcs`, `iovs`)
        // outlive the call; the kernel writes at most the lengths given.
        let n = unsafe {
            libc::recvmmsg(
                self.sock.as_raw_fd(),
                hdrs.as_mut_ptr().cast(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut lens = [0usize; BATCH];
        for (i, len) in lens.iter_mut().enumerate().take(n as usize) {
            // SAFETY: the kernel initialised the first n headers.
            let h = unsafe { hdrs[i].assume_init_ref() };
            if h.msg_hdr.msg_flags & libc::MSG_TRUNC == 0 {
                *len = h.msg_len as usize;
            }
        }
        Ok((n as usize, lens))
    }

    fn answer(&mut self, n: usize, lens: &[usize; BATCH]) {
        let mut ready = 0;
        for (i, &len) in lens.iter().enumerate().take(n) {
            let Some(src) = from_storage(&self.srcs[i]) else {
                continue;
            };
            if len == 0 {
                continue;
            }
            let started = Instant::now();
            // Behind a load balancer the client is the one its PROXY header names; the answer
            // still goes to `src`, the balancer.
            let Some((client, packet)) = self.proxy.datagram(src, &self.bufs[i][..len]) else {
                continue;
            };
            if crate::failpoint::fire("udp-worker-panic") {
                panic!("failpoint udp-worker-panic");
            }
            let out = &mut self.outs[ready];
            match self
                .engine
                .answer_fast(packet, client, Transport::Udp, out, &mut self.scratch)
            {
                Fast::Reply => {}
                Fast::ReplyAndRefresh(miss) => {
                    let engine = self.engine.clone();
                    self.tracker
                        .spawn_on(async move { engine.refresh(miss).await }, &self.runtime);
                }
                Fast::Drop => continue,
                Fast::Miss(miss) => {
                    // The resolution is polled once here first: what needs no network (an
                    // answer the recursor's caches have, a nonexistent name a cached NSEC chain
                    // proves) is answered in this batch, without handing the query to another
                    // thread. A flood of random names under a signed zone is answered that way,
                    // and the hand-over (a thread wake-up per query) was most of its cost.
                    let engine = self.engine.clone();
                    let mut resolving = Box::pin(async move { engine.resolve(miss).await });
                    let polled = {
                        let _runtime = self.runtime.enter();
                        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
                        resolving.as_mut().poll(&mut cx)
                    };
                    match polled {
                        std::task::Poll::Ready(Some(resp)) => *out = resp,
                        std::task::Poll::Ready(None) => continue,
                        std::task::Poll::Pending => {
                            let sock = self.sock.clone();
                            self.tracker.spawn_on(
                                async move {
                                    if let Some(resp) = resolving.await {
                                        // UDP sends do not block short of a full socket buffer.
                                        let _ = sock.send_to(&resp, src);
                                        count(Transport::Udp, &resp, started);
                                    }
                                },
                                &self.runtime,
                            );
                            continue;
                        }
                    }
                }
            }
            count(Transport::Udp, &self.outs[ready], started);
            self.dst_lens[ready] = to_storage(src, &mut self.dsts[ready]);
            ready += 1;
        }
        if ready > 0 {
            self.send(ready);
        }
    }

    /// One `sendmmsg` for the first `ready` answers (repeated if the kernel takes fewer).
    fn send(&mut self, ready: usize) {
        let mut iovs: [MaybeUninit<libc::iovec>; BATCH] = [const { MaybeUninit::uninit() }; BATCH];
        let mut hdrs: [MaybeUninit<libc::mmsghdr>; BATCH] =
            [const { MaybeUninit::uninit() }; BATCH];
        for i in 0..ready {
            iovs[i].write(libc::iovec {
                iov_base: self.outs[i].as_mut_ptr().cast(),
                iov_len: self.outs[i].len(),
            });
            // SAFETY: plain old data, fields set below.
            let mut h: libc::mmsghdr = unsafe { mem::zeroed() };
            h.msg_hdr.msg_name = (&raw mut self.dsts[i]).cast();
            h.msg_hdr.msg_namelen = self.dst_lens[i];
            h.msg_hdr.msg_iov = iovs[i].as_mut_ptr();
            h.msg_hdr.msg_iovlen = 1;
            hdrs[i].write(h);
        }
        let mut done = 0;
        while done < ready {
            // SAFETY: headers `done..ready` are initialised and point at live buffers.
            let n = unsafe {
                libc::sendmmsg(
                    self.sock.as_raw_fd(),
                    hdrs[done..].as_mut_ptr().cast(),
                    (ready - done) as libc::c_uint,
                    0,
                )
            };
            if n <= 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // Skip the datagram that failed (e.g. an unreachable destination) and go on.
                done += 1;
                continue;
            }
            done += n as usize;
        }
    }
}

fn from_storage(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match s.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let a: &libc::sockaddr_in = unsafe { &*(s as *const _ as *const libc::sockaddr_in) };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let a: &libc::sockaddr_in6 = unsafe { &*(s as *const _ as *const libc::sockaddr_in6) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

fn to_storage(addr: SocketAddr, s: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for any sockaddr.
            let sin: &mut libc::sockaddr_in =
                unsafe { &mut *(s as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr = libc::in_addr {
                s_addr: u32::from(*a.ip()).to_be(),
            };
            sin.sin_zero = [0; 8];
            mem::size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above.
            let sin6: &mut libc::sockaddr_in6 =
                unsafe { &mut *(s as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_addr = libc::in6_addr {
                s6_addr: a.ip().octets(),
            };
            sin6.sin6_scope_id = a.scope_id();
            mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddr_round_trip() {
        for a in [
            "127.0.0.1:5353",
            "[::1]:53",
            "[2001:db8::1]:65535",
            "0.0.0.0:0",
        ] {
            let a: SocketAddr = a.parse().unwrap();
            // SAFETY: zeroed storage is valid.
            let mut s: libc::sockaddr_storage = unsafe { mem::zeroed() };
            to_storage(a, &mut s);
            assert_eq!(from_storage(&s), Some(a));
        }
    }
}
