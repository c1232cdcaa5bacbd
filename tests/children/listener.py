"""A TCP server on 127.0.0.1:BASE+REPLICA answering each connection with its replica
number; exits 1 at once when the file FAIL_DIR/fail-REPLICA exists (a copy that cannot
come up)."""
import os
import socket
import sys

base, replica, fail_dir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
if os.path.exists(os.path.join(fail_dir, f"fail-{replica}")):
    sys.exit(1)
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", base + replica))
srv.listen(64)
print(f"listening {base + replica}", flush=True)
while True:
    conn, _ = srv.accept()
    with conn:
        conn.sendall(f"{replica}\n".encode())
