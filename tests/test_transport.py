"""The SSH transport's failure contract: a timeout or a lost connection in the middle of a
command or a read is a RemoteError (what every push's restore path catches), in one line."""

from __future__ import annotations

import socket
from types import SimpleNamespace

import paramiko
import pytest

from bgpgen.model import Platform
from bgpgen.reach import Hop
from bgpgen.targets import Target
from bgpgen.transport import RemoteError, SshTransport


class _Dead:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def exec_command(self, command: str, timeout: float) -> None:
        raise self.exc

    def open_sftp(self) -> None:
        raise self.exc


def _transport(exc: BaseException) -> SshTransport:
    target = Target("node-r1-01", Platform.GOBGP, Hop("node-r1-01", "192.0.2.9", 22, "root",
                                                      (), ()), (), False, "/etc/gobgpd.conf",
                    "/run/gobgp", "/etc", 50051)
    return SshTransport(SimpleNamespace(remote_conn_pre=_Dead(exc)), target)


@pytest.mark.parametrize("exc,said", [(socket.timeout("timed out"), "timed out during kill"),
                                      (paramiko.SSHException("SSH session not active"),
                                       "lost the connection during kill"),
                                      (EOFError(), "lost the connection during kill")])
def test_a_dead_session_is_a_remote_error(exc: BaseException, said: str) -> None:
    with pytest.raises(RemoteError) as err:
        _transport(exc).exec("kill -HUP 1234")
    (problem,) = err.value.problems
    assert problem.path == "node-r1-01" and said in problem.message and "\n" not in str(problem)
    with pytest.raises(RemoteError, match="cannot read /etc/gobgpd.conf"):
        _transport(exc).read("/etc/gobgpd.conf")
