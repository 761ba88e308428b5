"""The dashboard's listening socket: connections it accepts have Nagle's algorithm off (else a
kept-alive request waits for the client's delayed ACK between the response's two writes)."""

from __future__ import annotations

import asyncio
import socket

from ictq.cli.dashboard import _listening


def test_accepted_connections_have_tcp_nodelay() -> None:
    listener = _listening("127.0.0.1", 0)
    port = listener.getsockname()[1]
    seen: list[int] = []

    async def main() -> None:
        def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(accepted, sock=listener)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await reader.read()
        writer.close()
        server.close()
        await server.wait_closed()

    asyncio.run(main())
    assert seen and seen[0] != 0


def test_a_taken_port_is_an_os_error_and_the_socket_is_closed() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        try:
            _listening("127.0.0.1", busy.getsockname()[1])
        except OSError as exc:
            assert exc.errno is not None
        else:
            raise AssertionError("bound a taken port")
