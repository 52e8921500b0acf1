#!/usr/bin/python3
"""A test RTSP server on loopback (tests only): serves a still image as a 640x480 MJPEG-over-RTP
stream at rtsp://127.0.0.1:PORT/cam, through GStreamer's RTSP server (Debian packages
gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-good, python3-gi; run with Debian's python3).

    /usr/bin/python3 tools/rtsp_test_server.py IMAGE PORT
"""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    image, port = sys.argv[1], sys.argv[2]
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f'( filesrc location="{image}" ! decodebin ! imagefreeze ! videoconvert ! videoscale '
        "! video/x-raw,format=I420,width=640,height=480,framerate=10/1 ! jpegenc quality=85 ! rtpjpegpay name=pay0 pt=26 )"
    )
    factory.set_shared(True)
    server.get_mount_points().add_factory("/cam", factory)
    server.attach(None)
    print(f"rtsp://127.0.0.1:{port}/cam", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
