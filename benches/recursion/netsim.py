#!/usr/bin/env python3
"""Slow and silent name servers of benches/recursion.sh, on loopback only.

    netsim.py NETSIM_JSON COUNTS_FILE

- slow: for each {"listen", "delay_ms", "backend"}: UDP and TCP on listen:53; every query is held
  delay_ms, then relayed to the backend NSD (backend = [addr, port], loopback) and its answer
  returned. The query ID is rewritten on the way so answers never cross between clients.
- silent: for each address: UDP :53 read and counted, never answered (so no ICMP either); TCP :53
  accepts, reads and counts, never answers.

On SIGUSR1 writes {"seq": n, "slow": queries, "silent": queries} to COUNTS_FILE (atomically) and
bumps seq; the bench reads the queries the silent servers received from there (the slow ones are
counted by their backend NSD). Writes COUNTS_FILE once with seq 0 when every socket is bound.
"""
import asyncio
import json
import os
import select
import signal
import socket
import struct
import sys
import threading

counts = {"seq": 0, "slow": 0, "silent": 0}
lock = threading.Lock()


def write_counts(path):
    with lock:
        data = json.dumps(counts)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(data)
    os.replace(tmp, path)


def silent_udp(addrs):
    """One thread drains every silent UDP socket (cheaper than asyncio at flood rates)."""
    socks = []
    ep = select.epoll()
    for a in addrs:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.bind((a, 53))
        s.setblocking(False)
        ep.register(s.fileno(), select.EPOLLIN)
        socks.append(s)
    by_fd = {s.fileno(): s for s in socks}
    buf = bytearray(4096)

    def run():
        while True:
            for fd, _ in ep.poll():
                s = by_fd[fd]
                n = 0
                while True:
                    try:
                        s.recv_into(buf)
                    except BlockingIOError:
                        break
                    n += 1
                with lock:
                    counts["silent"] += n
    threading.Thread(target=run, daemon=True).start()


class SlowUdp(asyncio.DatagramProtocol):
    def __init__(self, loop, delay, backend):
        self.loop, self.delay, self.backend = loop, delay, backend
        self.pending = {}
        self.next_id = 0
        self.transport = self.up = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        if len(data) < 12:
            return
        with lock:
            counts["slow"] += 1
        self.loop.call_later(self.delay, self.forward, data, addr)

    def forward(self, data, addr):
        self.next_id = (self.next_id + 1) & 0xFFFF
        self.pending[self.next_id] = (data[:2], addr)
        self.up.sendto(struct.pack("!H", self.next_id) + data[2:])

    def answer(self, data):
        entry = self.pending.pop(struct.unpack("!H", data[:2])[0], None) if len(data) >= 12 else None
        if entry:
            self.transport.sendto(entry[0] + data[2:], entry[1])


class Up(asyncio.DatagramProtocol):
    def __init__(self, owner):
        self.owner = owner

    def datagram_received(self, data, addr):
        self.owner.answer(data)


async def slow_tcp(reader, writer, delay, backend):
    try:
        while True:
            n = struct.unpack("!H", await reader.readexactly(2))[0]
            msg = await reader.readexactly(n)
            with lock:
                counts["slow"] += 1
            await asyncio.sleep(delay)
            br, bw = await asyncio.open_connection(*backend)
            bw.write(struct.pack("!H", n) + msg)
            await bw.drain()
            m = struct.unpack("!H", await br.readexactly(2))[0]
            ans = await br.readexactly(m)
            bw.close()
            writer.write(struct.pack("!H", m) + ans)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def silent_tcp(reader, writer):
    try:
        while True:
            n = struct.unpack("!H", await reader.readexactly(2))[0]
            await reader.readexactly(n)
            with lock:
                counts["silent"] += 1
    except (asyncio.IncompleteReadError, ConnectionError, OSError):
        writer.close()


async def main(conf_path, counts_path):
    conf = json.load(open(conf_path))
    loop = asyncio.get_running_loop()
    for a in conf["silent"] + [s["listen"] for s in conf["slow"]]:
        assert a.startswith("127."), a
    silent_udp(conf["silent"])
    servers = []
    for s in conf["slow"]:
        delay, backend = s["delay_ms"] / 1000, tuple(s["backend"])
        assert backend[0].startswith("127."), backend
        proto = SlowUdp(loop, delay, backend)
        await loop.create_datagram_endpoint(lambda p=proto: p, local_addr=(s["listen"], 53))
        proto.up, _ = await loop.create_datagram_endpoint(lambda p=proto: Up(p), remote_addr=backend)
        servers.append(await asyncio.start_server(
            lambda r, w, d=delay, b=backend: slow_tcp(r, w, d, b), s["listen"], 53))
    for a in conf["silent"]:
        servers.append(await asyncio.start_server(silent_tcp, a, 53))

    def on_usr1():
        with lock:
            counts["seq"] += 1
        write_counts(counts_path)
    loop.add_signal_handler(signal.SIGUSR1, on_usr1)
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    loop.add_signal_handler(signal.SIGINT, stop.set_result, None)
    write_counts(counts_path)
    await stop


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    asyncio.run(main(sys.argv[1], sys.argv[2]))
