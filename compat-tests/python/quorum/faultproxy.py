"""A TCP fault proxy for ensemble tests: one listening port per directed link,
each forwarding to one target, with per-link faults.

Role: every peer connection of a test ensemble (server a dialling server b,
for each kind of port) and, where a test wants it, a client's connection to a
server, goes through a link of this proxy, so tests can partition servers
from each other or cut a client off without touching the processes.

Inputs:  `add_link(src, dst, target, kind)` declares the directed link
         src -> dst of that kind (the proxy picks a free loopback port and
         returns it; the dialler is given that port); optional `preamble`, a
         coroutine that reads the first bytes the dialler sends and returns
         the bytes to send upstream instead (ensemble.py uses it to rewrite
         ZooKeeper's election handshake).
Outputs: bytes forwarded unchanged (after the preamble) in both directions of
         every accepted connection; `stats()` per link (connections accepted,
         refused, bytes each way) so tests can show traffic really went
         through the proxy.
Faults (thread-safe, take effect before the call returns):
  block(a, b, mode)  every link a -> b (all kinds). mode "drop": existing
                     connections are reset (RST) and new ones are accepted
                     and reset at once (the dialler sees a refused/reset
                     connection, as with a crashed peer or a firewall REJECT).
                     mode "hang": nothing moves on existing or new
                     connections until unblocked (a silent partition: no RST,
                     the endpoints notice only through their own timeouts;
                     after unblock the held bytes flow on, as TCP
                     retransmission would deliver them).
  unblock(a, b), isolate(i, mode) (every link from or to i), heal() (every
  link unblocked, every delay cleared), delay(a, b, seconds) (each chunk, in
  both directions of the link's connections, is delivered that much later;
  order kept).
A dialled target that refuses is retried for CONNECT_PATIENCE before the
accepted connection is reset (see _dial): a user-space proxy cannot refuse
a connection it has already accepted.
A link is directed by who dials: a TCP connection carries both directions,
so block(a, b) stops a's connections to b but not b's to a; isolate() blocks
both. Buffers are bounded: at most QUEUE_CHUNKS chunks of CHUNK bytes wait in
each direction of a connection, then the proxy stops reading (backpressure).

All links share one asyncio loop on a daemon thread; close() stops it and
resets every connection.
"""
import asyncio
import socket
import struct
import threading

CHUNK = 64 * 1024
QUEUE_CHUNKS = 16
CONNECT_TIMEOUT = 2.0
CONNECT_PATIENCE = 2.0
RETRY_INTERVAL = 0.05
CONTROL_TIMEOUT = 10.0


def _reset(writer):
    """Close a connection with an RST rather than a FIN (SO_LINGER 0)."""
    try:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    writer.transport.abort()


class _Link:
    def __init__(self, src, dst, kind, target, preamble):
        self.src, self.dst, self.kind = src, dst, kind
        self.target = target
        self.preamble = preamble
        self.port = None
        self.server = None
        self.mode = None          # None | "drop" | "hang"
        self.delay = 0.0
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.conns = set()
        self.accepted = 0
        self.refused = 0
        self.bytes_up = 0         # dialler -> target
        self.bytes_down = 0       # target -> dialler

    def key(self):
        return (self.src, self.dst, self.kind)


class _Conn:
    def __init__(self, link, down_writer):
        self.link = link
        self.down = down_writer   # towards the dialler
        self.up = None            # towards the target
        self.tasks = []
        self.dead = False

    def reset(self):
        self.dead = True
        for t in self.tasks:
            t.cancel()
        for w in (self.down, self.up):
            if w is not None:
                _reset(w)


class FaultProxy:
    """See the module docstring. Links are keyed by (src, dst, kind)."""

    def __init__(self, host="127.0.0.1"):
        self.host = host
        self._links = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="faultproxy", daemon=True)
        self._thread.start()

    # -- control, from any thread ------------------------------------------

    def _run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(CONTROL_TIMEOUT)

    def add_link(self, src, dst, target, kind="peer", preamble=None, listen_port=0):
        """Listen for the directed link src -> dst of this kind, forwarding to
        target (host, port). Returns the listening port."""
        async def add():
            link = _Link(src, dst, kind, target, preamble)
            link.server = await asyncio.start_server(
                lambda r, w: self._accept(link, r, w), self.host, listen_port, reuse_address=True)
            link.port = link.server.sockets[0].getsockname()[1]
            self._links[link.key()] = link
            return link.port
        return self._run(add())

    def port(self, src, dst, kind="peer"):
        return self._links[(src, dst, kind)].port

    def block(self, a, b, mode="drop"):
        if mode not in ("drop", "hang"):
            raise ValueError(f"unknown block mode {mode!r}")
        self._run(self._set(lambda l: l.src == a and l.dst == b, mode))

    def unblock(self, a, b):
        self._run(self._set(lambda l: l.src == a and l.dst == b, None))

    def isolate(self, i, mode="drop"):
        """Block every link from or to i (client links included)."""
        self._run(self._set(lambda l: i in (l.src, l.dst), mode))

    def heal(self):
        """Unblock every link and clear every delay."""
        async def heal():
            for link in self._links.values():
                link.delay = 0.0
            await self._set(lambda l: True, None)
        self._run(heal())

    def delay(self, a, b, seconds):
        async def set_delay():
            for link in self._links.values():
                if link.src == a and link.dst == b:
                    link.delay = float(seconds)
        self._run(set_delay())

    def blocked(self):
        """{(src, dst, kind): mode} of every blocked link."""
        return {k: l.mode for k, l in self._links.items() if l.mode}

    def stats(self):
        """{(src, dst, kind): {accepted, refused, open, bytes_up, bytes_down}}."""
        async def stats():
            return {k: {"accepted": l.accepted, "refused": l.refused, "open": len(l.conns),
                        "bytes_up": l.bytes_up, "bytes_down": l.bytes_down}
                    for k, l in self._links.items()}
        return self._run(stats())

    def close(self):
        async def close():
            for link in self._links.values():
                link.server.close()
                for c in list(link.conns):
                    c.reset()
                link.conns.clear()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._loop.is_running():
            try:
                self._run(close())
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(CONTROL_TIMEOUT)
                self._loop.close()

    # -- inside the loop ------------------------------------------------------

    async def _set(self, match, mode):
        for link in self._links.values():
            if not match(link):
                continue
            link.mode = mode
            if mode == "hang":
                link.flowing.clear()
            else:
                link.flowing.set()
            if mode == "drop":
                for c in list(link.conns):
                    c.reset()
                link.conns.clear()

    async def _accept(self, link, reader, writer):
        if link.mode == "drop":
            link.refused += 1
            _reset(writer)
            return
        link.accepted += 1
        conn = _Conn(link, writer)
        link.conns.add(conn)
        clean = False
        try:
            await link.flowing.wait()
            if conn.dead:
                return
            up_reader, conn.up = await self._dial(link, conn)
            if conn.dead:
                _reset(conn.up)
                return
            if link.preamble is not None:
                conn.up.write(await link.preamble(reader))
            conn.tasks = [asyncio.ensure_future(self._pump(link, reader, conn.up, True)),
                          asyncio.ensure_future(self._pump(link, up_reader, writer, False))]
            done, _ = await asyncio.wait(conn.tasks, return_when=asyncio.FIRST_EXCEPTION)
            clean = all(not t.cancelled() and t.exception() is None for t in done) and len(done) == 2
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError):
            pass
        except asyncio.CancelledError:
            return
        finally:
            link.conns.discard(conn)
            if clean:
                for w in (conn.down, conn.up):
                    w.close()
            else:
                conn.reset()

    async def _dial(self, link, conn):
        """Connect to the target, retrying refusals for CONNECT_PATIENCE: the
        dialler's connection is already accepted, and resetting it at once
        would turn "not listening yet" (a server binding its port a moment
        later, as a new ZooKeeper leader does) into a broken connection,
        which the dialler may treat as fatal where it retries a refusal."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CONNECT_PATIENCE
        while True:
            try:
                return await asyncio.wait_for(asyncio.open_connection(*link.target), CONNECT_TIMEOUT)
            except OSError:
                if conn.dead or loop.time() + RETRY_INTERVAL > deadline:
                    raise
                await asyncio.sleep(RETRY_INTERVAL)

    async def _pump(self, link, reader, writer, upwards):
        """Copy one direction through a bounded queue; a sender task delivers
        each chunk at arrival + delay, and nothing moves while the link hangs.
        At end of stream the other side is half-closed once all is sent; a
        reset on either side raises, and the caller resets the connection."""
        queue = asyncio.Queue(QUEUE_CHUNKS)
        loop = asyncio.get_running_loop()

        async def send():
            while True:
                due, data = await queue.get()
                if data is None:
                    writer.write_eof()
                    return
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                await link.flowing.wait()
                writer.write(data)
                await writer.drain()
                if upwards:
                    link.bytes_up += len(data)
                else:
                    link.bytes_down += len(data)

        async def receive():
            while True:
                await link.flowing.wait()
                data = await reader.read(CHUNK)
                await queue.put((loop.time() + link.delay, data or None))
                if not data:
                    return

        tasks = [asyncio.ensure_future(receive()), asyncio.ensure_future(send())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for t in done:
                if t.exception() is not None:
                    raise t.exception()
        finally:
            for t in tasks:
                t.cancel()
