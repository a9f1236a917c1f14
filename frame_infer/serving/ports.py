"""Loopback ports for MMS: a free one for tests and tools, and the checks ``serve`` makes
before Java starts (MMS's range, distinct ports, not in use), each failure in one line."""
from __future__ import annotations

import random
import socket

from ..errors import ServerError

MAX_PORT = 32767
"""MMS 1.1.11 rejects higher port numbers ("Invalid port number")."""


def free_port(low: int = 20000, high: int = 32000) -> int:
    """A loopback port that is free now, below 32768: MMS rejects higher port numbers
    ("Invalid port number"), and the kernel's ephemeral ports all lie above that."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randint(low, high)
        if not port_in_use(port):
            return port
    raise ServerError(f"no free loopback port between {low} and {high}")


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether binding ``host:port`` fails now (as Java binds: with SO_REUSEADDR, so a port
    left in TIME_WAIT counts as free and a listening one as taken)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def check_ports(port: int, management_port: int) -> None:
    """Refuse, with the reason in one line, ports MMS cannot bind: out of MMS's range,
    equal (the management API would share the inference listener) or in use."""
    named = (("inference", port, "--port"), ("management", management_port,
                                             "--management-port"))
    for what, number, option in named:
        if not 1 <= number <= MAX_PORT:
            raise ServerError(f"{what} port {number} is not in 1-{MAX_PORT}: MMS 1.1.11 "
                              f"rejects higher port numbers (\"Invalid port number\"); choose "
                              f"another with {option}")
    if port == management_port:
        raise ServerError(f"the inference and management ports are both {port}; give the "
                          "management API a port of its own (--management-port)")
    for what, number, option in named:
        if port_in_use(number):
            raise ServerError(f"{what} port {number} on 127.0.0.1 is already in use; stop "
                              f"what listens there or choose another with {option}")
