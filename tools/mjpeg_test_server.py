#!/usr/bin/env python3
"""A test MJPEG camera on loopback whose frames change size: serves the given JPEG files in turn
(`--repeat` frames each) as multipart/x-mixed-replace, to one client, then ends. For `fer live`'s
tests: OpenCV's own MJPEG decoding kept the first frame's size and laid smaller frames into it.
Usage: mjpeg_test_server.py PORT FRAMES_TOTAL A.jpg B.jpg ... [--repeat N]"""
import argparse, http.server, socketserver, time

ap = argparse.ArgumentParser()
ap.add_argument("port", type=int)
ap.add_argument("frames", type=int)
ap.add_argument("jpegs", nargs="+")
ap.add_argument("--repeat", type=int, default=3)
ap.add_argument("--interval", type=float, default=0.04)
a = ap.parse_args()
images = [open(p, "rb").read() for p in a.jpegs]


class Camera(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        try:
            for i in range(a.frames):
                jpeg = images[(i // a.repeat) % len(images)]
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg) + jpeg + b"\r\n")
                self.wfile.flush()
                time.sleep(a.interval)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


socketserver.TCPServer.allow_reuse_address = True
with socketserver.TCPServer(("127.0.0.1", a.port), Camera) as server:
    server.timeout = 30
    server.handle_request()
