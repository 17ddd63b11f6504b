import socket

from pgkura.engines.docker.ports import port_in_use


def test_a_listening_port_is_busy_and_time_wait_leftovers_are_not():
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    assert port_in_use(port)
    accepted.close()  # the server closes first: its port keeps a TIME_WAIT connection
    client.close()
    server.close()
    assert not port_in_use(port)  # as after `docker compose down`: free for the next `up`
