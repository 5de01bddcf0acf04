#!/usr/bin/env python3
"""Name servers that do not answer, for the fakenet (started by fakenet.sh up, stopped by down).

    silent.py STATEDIR PIDFILE [--drop ADDR]... [--filter ADDR BACKEND ZONE]...
                               [--soa-ttl ADDR BACKEND TTL]...
                               [--log ADDR BACKEND LOGFILE DELAY_MS]...

--drop ADDR: on ADDR:53, UDP and TCP, read every query and never answer (a server that is
  down without telling: no ICMP, no RST; the resolver can only time out).
--filter ADDR BACKEND ZONE: on ADDR:53 over UDP, pass queries to BACKEND:53 and its answers
  back, except queries for ZONE or names under it, which are dropped (a server that silently
  stopped serving one zone while it answers for others). TCP is accepted and never answered.
--soa-ttl ADDR BACKEND TTL: relay to BACKEND:53 as --filter (nothing dropped), and set the TTL
  of every SOA record in the authority section of the answers to TTL: a server that does not
  lower the SOA's TTL to its MINIMUM in negative answers (NSD does, RFC 2308 §3).
--log ADDR BACKEND LOGFILE DELAY_MS: relay to BACKEND:53 as --filter (nothing dropped), each
  query held DELAY_MS milliseconds before it is passed on (a distant server), and append one line
  per query received to LOGFILE (relative: under STATEDIR), flushed at once:
      <unix time, 6 decimals> <in flight> <qtype> <qname>
  <in flight> counts the queries this relay holds at that moment, this one included (what a
  resolver's caps bound); <qtype> is a mnemonic (A, NS, DS...) or TYPEn; <qname> is lower case
  with a final dot. Tests read the lines appended after they started.

The pid file is written once every socket is bound: it is the readiness signal. The process
exits by itself when STATEDIR goes away (a fakenet whose state dir was deleted under it).
Loopback only: every address must be in 127.0.0.0/8.
"""

import asyncio
import ipaddress
import os
import sys
import time

QTYPES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA",
          33: "SRV", 39: "DNAME", 43: "DS", 46: "RRSIG", 47: "NSEC", 48: "DNSKEY", 50: "NSEC3",
          65: "HTTPS", 255: "ANY"}


def qname(packet: bytes):
    """The question's name, lower case, without the final dot; None if unreadable."""
    labels, i = [], 12
    try:
        while True:
            n = packet[i]
            if n == 0:
                return ".".join(labels).lower()
            if n & 0xC0:
                return None
            labels.append(packet[i + 1 : i + 1 + n].decode("ascii", "replace"))
            i += 1 + n
    except IndexError:
        return None


def under(name, zone):
    return name is not None and (name == zone or name.endswith("." + zone))


class Drop(asyncio.DatagramProtocol):
    def datagram_received(self, data, addr):
        pass


def skip_name(m: bytes, i: int) -> int:
    while True:
        n = m[i]
        if n & 0xC0:
            return i + 2
        if n == 0:
            return i + 1
        i += 1 + n


def set_soa_ttl(m: bytes, ttl: int) -> bytes:
    """The message with the TTL of the authority section's SOA records set to `ttl`."""
    m = bytearray(m)
    try:
        qd, an, ns = (int.from_bytes(m[o : o + 2], "big") for o in (4, 6, 8))
        i = 12
        for _ in range(qd):
            i = skip_name(m, i) + 4
        for n in range(an + ns):
            i = skip_name(m, i)
            rtype = int.from_bytes(m[i : i + 2], "big")
            rdlen = int.from_bytes(m[i + 8 : i + 10], "big")
            if n >= an and rtype == 6:
                m[i + 4 : i + 8] = ttl.to_bytes(4, "big")
            i += 10 + rdlen
    except IndexError:
        pass
    return bytes(m)


def qtype(packet: bytes) -> str:
    try:
        i = skip_name(packet, 12)
        t = int.from_bytes(packet[i : i + 2], "big")
    except IndexError:
        return "?"
    return QTYPES.get(t, f"TYPE{t}")


class Filter(asyncio.DatagramProtocol):
    def __init__(self, backend, zone, soa_ttl=None, log=None, delay_ms=0):
        self.backend, self.zone, self.transport = backend, zone.rstrip(".").lower(), None
        self.soa_ttl = soa_ttl
        self.log, self.delay, self.inflight = log, delay_ms / 1000.0, 0

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        if self.zone and under(qname(data), self.zone):
            return
        if self.log is not None:
            self.inflight += 1
            self.log.write(f"{time.time():.6f} {self.inflight} {qtype(data)} {qname(data)}.\n")
            self.log.flush()
        asyncio.ensure_future(self.forward(data, addr))

    async def forward(self, data, client):
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            await self.relay(data, client)
        finally:
            if self.log is not None:
                self.inflight -= 1

    async def relay(self, data, client):
        loop = asyncio.get_running_loop()
        answer = loop.create_future()

        class Relay(asyncio.DatagramProtocol):
            def datagram_received(self, d, a):
                if not answer.done():
                    answer.set_result(d)

        t, _ = await loop.create_datagram_endpoint(Relay, remote_addr=(self.backend, 53))
        try:
            t.sendto(data)
            reply = await asyncio.wait_for(answer, 3)
            if self.soa_ttl is not None:
                reply = set_soa_ttl(reply, self.soa_ttl)
            self.transport.sendto(reply, client)
        except asyncio.TimeoutError:
            pass
        finally:
            t.close()


async def swallow(reader, writer):
    """A TCP connection that is read and never answered (closed when the client gives up)."""
    try:
        while await reader.read(4096):
            pass
    finally:
        writer.close()


async def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    state_dir, pid_file, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    loop = asyncio.get_running_loop()
    servers = []
    while args:
        if args[0] == "--drop" and len(args) >= 2:
            addr, proto, args = args[1], Drop, args[2:]
        elif args[0] == "--filter" and len(args) >= 4:
            addr, backend, zone, args = args[1], args[2], args[3], args[4:]
            assert ipaddress.ip_address(backend).is_loopback, backend
            proto = lambda b=backend, z=zone: Filter(b, z)  # noqa: E731
        elif args[0] == "--soa-ttl" and len(args) >= 4:
            addr, backend, ttl, args = args[1], args[2], int(args[3]), args[4:]
            assert ipaddress.ip_address(backend).is_loopback, backend
            proto = lambda b=backend, s=ttl: Filter(b, "", s)  # noqa: E731
        elif args[0] == "--log" and len(args) >= 5:
            addr, backend, path, delay, args = args[1], args[2], args[3], int(args[4]), args[5:]
            assert ipaddress.ip_address(backend).is_loopback, backend
            log = open(os.path.join(state_dir, path), "a", buffering=1)
            proto = lambda b=backend, f=log, d=delay: Filter(b, "", None, f, d)  # noqa: E731
        else:
            sys.exit(__doc__)
        assert ipaddress.ip_address(addr).is_loopback, addr
        await loop.create_datagram_endpoint(proto, local_addr=(addr, 53))
        servers.append(await asyncio.start_server(swallow, addr, 53))
    with open(pid_file + ".tmp", "w") as f:
        f.write(f"{os.getpid()}\n")
    os.rename(pid_file + ".tmp", pid_file)
    while os.path.isdir(state_dir) and os.path.exists(pid_file):
        await asyncio.sleep(1)


if __name__ == "__main__":
    asyncio.run(main())
