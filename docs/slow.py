# slow.py HOST:PORT PATH N SECONDS: N clients that request PATH with a tiny
# receive buffer and read 16 KB every 0.1 s for SECONDS, then close. Prints
# each client's status line.
import socket, sys, threading, time
host, port = sys.argv[1].split(":"); path = sys.argv[2]; n = int(sys.argv[3]); secs = float(sys.argv[4])
res = {}
def client(i):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((host, int(port))); s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    first = s.recv(4096); res[i] = first.split(b"\r\n")[0].decode(errors="replace")
    end = time.time() + secs
    while time.time() < end:
        if not s.recv(16384): break
        time.sleep(0.1)
    s.close()
ts = [threading.Thread(target=client, args=(i,)) for i in range(n)]
[t.start() for t in ts]; [t.join() for t in ts]
for i in sorted(res): print(i, res[i])
