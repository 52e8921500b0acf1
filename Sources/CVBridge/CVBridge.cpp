#include "CVBridge.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>
#include <opencv2/videoio.hpp>
#include <opencv2/highgui.hpp>

namespace {
thread_local std::string lastError;

int fail(const std::string &message) {
    lastError = message;
    return -1;
}

int copyOut(const cv::Mat &m, cvb_image *out) {
    cv::Mat c = m.isContinuous() ? m : m.clone();
    size_t n = c.total() * c.elemSize();
    out->data = static_cast<uint8_t *>(std::malloc(n ? n : 1));
    if (!out->data) return fail("out of memory");
    std::memcpy(out->data, c.data, n);
    out->width = c.cols;
    out->height = c.rows;
    out->channels = c.channels();
    return 0;
}

cv::Mat wrap(const uint8_t *pixels, int width, int height, int channels) {
    return cv::Mat(height, width, channels == 3 ? CV_8UC3 : CV_8UC1, const_cast<uint8_t *>(pixels));
}

template <typename F> int guarded(F f) {
    try {
        return f();
    } catch (const cv::Exception &e) {
        return fail(e.what());
    } catch (const std::exception &e) {
        return fail(e.what());
    }
}
}  // namespace

struct cvb_cascade { cv::CascadeClassifier classifier; };
struct cvb_video {
    cv::VideoCapture capture;
    bool camera;
    // MJPEG read as its JPEG packets, each decoded here (`withJPEGFrames`).
    bool jpegPackets = false;
    long long maxPixels = 0;
};
struct cvb_writer { cv::VideoWriter writer; };

extern "C" {

const char *cvb_last_error(void) { return lastError.c_str(); }

void cvb_image_free(cvb_image *image) {
    if (image && image->data) std::free(image->data);
    if (image) image->data = nullptr;
}

// The imread flag for `channels` at 1/`reduction` of the size (2, 4, 8: JPEG decodes at that scale
// directly, skipping most of the work; other formats are decoded whole and then shrunk).
static int readFlag(int channels, int reduction) {
    bool color = channels == 3;
    switch (reduction) {
    case 2: return color ? cv::IMREAD_REDUCED_COLOR_2 : cv::IMREAD_REDUCED_GRAYSCALE_2;
    case 4: return color ? cv::IMREAD_REDUCED_COLOR_4 : cv::IMREAD_REDUCED_GRAYSCALE_4;
    case 8: return color ? cv::IMREAD_REDUCED_COLOR_8 : cv::IMREAD_REDUCED_GRAYSCALE_8;
    default: return color ? cv::IMREAD_COLOR : cv::IMREAD_GRAYSCALE;
    }
}

int cvb_read(const char *path, int channels, int reduction, cvb_image *out) {
    return guarded([&] {
        cv::Mat m = cv::imread(path, readFlag(channels, reduction));
        if (m.empty()) return fail("cannot decode image");
        return copyOut(m, out);
    });
}

int cvb_decode(const uint8_t *bytes, size_t count, int channels, int reduction, cvb_image *out) {
    return guarded([&] {
        if (count == 0) return fail("empty image data");
        cv::Mat buf(1, static_cast<int>(count), CV_8UC1, const_cast<uint8_t *>(bytes));
        cv::Mat m = cv::imdecode(buf, readFlag(channels, reduction));
        if (m.empty()) return fail("cannot decode image data");
        return copyOut(m, out);
    });
}

int cvb_write(const char *path, const uint8_t *pixels, int width, int height, int channels) {
    return guarded([&] {
        if (!cv::imwrite(path, wrap(pixels, width, height, channels))) return fail("cannot encode or write image");
        return 0;
    });
}

int cvb_encode(const char *ext, const uint8_t *pixels, int width, int height, int channels, uint8_t **out, size_t *count) {
    return guarded([&] {
        std::vector<uint8_t> buf;
        if (!cv::imencode(ext, wrap(pixels, width, height, channels), buf)) return fail("cannot encode image");
        *out = static_cast<uint8_t *>(std::malloc(buf.size() ? buf.size() : 1));
        if (!*out) return fail("out of memory");
        std::memcpy(*out, buf.data(), buf.size());
        *count = buf.size();
        return 0;
    });
}

void cvb_buffer_free(uint8_t *buffer) { std::free(buffer); }

int cvb_jpeg_roundtrip(const uint8_t *src, int width, int height, int channels, int quality, uint8_t *dst) {
    return guarded([&] {
        if (width < 1 || height < 1 || (channels != 1 && channels != 3)) return fail("bad image");
        if (quality < 1 || quality > 100) return fail("JPEG quality must be in 1-100");
        std::vector<uint8_t> buf;
        if (!cv::imencode(".jpg", wrap(src, width, height, channels), buf, {cv::IMWRITE_JPEG_QUALITY, quality}))
            return fail("cannot encode JPEG");
        cv::Mat decoded = cv::imdecode(buf, channels == 1 ? cv::IMREAD_GRAYSCALE : cv::IMREAD_COLOR);
        if (decoded.empty() || decoded.cols != width || decoded.rows != height) return fail("cannot decode JPEG");
        decoded.copyTo(wrap(dst, width, height, channels));
        return 0;
    });
}

int cvb_resize(const uint8_t *src, int width, int height, int channels, uint8_t *dst, int dstWidth, int dstHeight) {
    return guarded([&] {
        cv::Mat out = wrap(dst, dstWidth, dstHeight, channels);
        int interp = (dstWidth < width || dstHeight < height) ? cv::INTER_AREA : cv::INTER_LINEAR;
        cv::resize(wrap(src, width, height, channels), out, cv::Size(dstWidth, dstHeight), 0, 0, interp);
        return 0;
    });
}

int cvb_resize_region(const uint8_t *src, int width, int height, int channels, int x, int y, int w, int h,
                      uint8_t *dst, int dstWidth, int dstHeight) {
    return guarded([&] {
        if (x < 0 || y < 0 || w < 1 || h < 1 || x + w > width || y + h > height) return fail("region outside the image");
        cv::Mat out = wrap(dst, dstWidth, dstHeight, channels);
        int interp = (dstWidth < w || dstHeight < h) ? cv::INTER_AREA : cv::INTER_LINEAR;
        cv::resize(wrap(src, width, height, channels)(cv::Rect(x, y, w, h)), out, cv::Size(dstWidth, dstHeight), 0, 0, interp);
        return 0;
    });
}

int cvb_gray_frame_rotated(const uint8_t *src, int width, int height, int channels, double cx, double cy, double side,
                           double degrees, uint8_t *dst, int out) {
    return guarded([&] {
        if (width < 1 || height < 1 || out < 1 || !(side >= 1) || !std::isfinite(cx) || !std::isfinite(cy) || !std::isfinite(degrees))
            return fail("bad frame");
        // The axis-aligned square that holds the turned frame, cut out with the border repeated.
        double turn = degrees * CV_PI / 180, reach = side * (std::fabs(std::cos(turn)) + std::fabs(std::sin(turn)));
        int n = std::max(1, (int)std::ceil(reach)) + 2;
        int x0 = (int)std::lround(cx - n / 2.0), y0 = (int)std::lround(cy - n / 2.0);
        cv::Rect inside = cv::Rect(x0, y0, n, n) & cv::Rect(0, 0, width, height);
        if (inside.empty()) return fail("frame outside the image");
        cv::Mat region;
        cv::copyMakeBorder(wrap(src, width, height, channels)(inside), region, inside.y - y0, y0 + n - inside.y - inside.height,
                           inside.x - x0, x0 + n - inside.x - inside.width, cv::BORDER_REPLICATE);
        cv::Mat gray;
        if (channels == 3) cv::cvtColor(region, gray, cv::COLOR_BGR2GRAY); else gray = region;
        // Shrink so that the frame is `out` pixels, then turn about the centre at that size.
        int m = std::max(out, (int)std::lround(n * out / side));
        cv::Mat small;
        cv::resize(gray, small, cv::Size(m, m), 0, 0, m < n ? cv::INTER_AREA : cv::INTER_LINEAR);
        double c = (cx - x0) * m / n, r = (cy - y0) * m / n;
        // (c, r) counts from the region's corner; warpAffine's pixel j is centred on j: hence the 0.5.
        cv::Mat t = cv::getRotationMatrix2D(cv::Point2f((float)(c - 0.5), (float)(r - 0.5)), degrees, 1.0);
        t.at<double>(0, 2) += out / 2.0 - c;
        t.at<double>(1, 2) += out / 2.0 - r;
        cv::Mat result = wrap(dst, out, out, 1);
        cv::warpAffine(small, result, t, cv::Size(out, out), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
        return 0;
    });
}

int cvb_rotate(const uint8_t *src, int width, int height, int channels, double cx, double cy, double degrees, uint8_t *dst) {
    return guarded([&] {
        if (!std::isfinite(cx) || !std::isfinite(cy) || !std::isfinite(degrees)) return fail("bad rotation");
        cv::Mat t = cv::getRotationMatrix2D(cv::Point2f((float)cx, (float)cy), degrees, 1.0);
        cv::Mat result = wrap(dst, width, height, channels);
        cv::warpAffine(wrap(src, width, height, channels), result, t, cv::Size(width, height), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
        return 0;
    });
}

int cvb_bgr_to_gray(const uint8_t *src, int width, int height, uint8_t *dst) {
    return guarded([&] {
        cv::Mat out = wrap(dst, width, height, 1);
        cv::cvtColor(wrap(src, width, height, 3), out, cv::COLOR_BGR2GRAY);
        return 0;
    });
}

int cvb_draw_line(uint8_t *bgr, int width, int height, int x0, int y0, int x1, int y1, int b, int g, int r, int thickness) {
    return guarded([&] {
        cv::Mat m = wrap(bgr, width, height, 3);
        cv::line(m, {x0, y0}, {x1, y1}, cv::Scalar(b, g, r), thickness, cv::LINE_AA);
        return 0;
    });
}

int cvb_draw_rect(uint8_t *bgr, int width, int height, int x, int y, int w, int h, int b, int g, int r, int thickness) {
    return guarded([&] {
        cv::Mat m = wrap(bgr, width, height, 3);
        cv::rectangle(m, cv::Rect(x, y, w, h), cv::Scalar(b, g, r), thickness, cv::LINE_8);
        return 0;
    });
}

int cvb_draw_text(uint8_t *bgr, int width, int height, const char *text, int x, int y, double scale, int b, int g, int r, int thickness) {
    return guarded([&] {
        cv::Mat m = wrap(bgr, width, height, 3);
        cv::putText(m, text, {x, y}, cv::FONT_HERSHEY_SIMPLEX, scale, cv::Scalar(b, g, r), thickness, cv::LINE_AA);
        return 0;
    });
}

int cvb_text_size(const char *text, double scale, int thickness, int *width, int *height) {
    return guarded([&] {
        int baseline = 0;
        cv::Size s = cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, scale, thickness, &baseline);
        *width = s.width;
        *height = s.height;
        return 0;
    });
}

cvb_cascade *cvb_cascade_load(const char *path) {
    try {
        auto *c = new cvb_cascade();
        if (!c->classifier.load(path)) {
            delete c;
            fail(std::string("cannot load cascade ") + path);
            return nullptr;
        }
        return c;
    } catch (const cv::Exception &e) {
        fail(e.what());
        return nullptr;
    }
}

void cvb_cascade_free(cvb_cascade *cascade) { delete cascade; }

int cvb_cascade_detect(cvb_cascade *cascade, const uint8_t *gray, int width, int height, double scaleFactor,
                       int minNeighbors, int minSize, int maxSize, cvb_rect *out, int maxOut) {
    return guarded([&] {
        cv::Mat equalised;
        cv::equalizeHist(wrap(gray, width, height, 1), equalised);
        std::vector<cv::Rect> faces;
        cascade->classifier.detectMultiScale(equalised, faces, scaleFactor, minNeighbors, 0, cv::Size(minSize, minSize),
                                             maxSize > 0 ? cv::Size(maxSize, maxSize) : cv::Size());
        for (size_t i = 0; i < faces.size() && static_cast<int>(i) < maxOut; i++) {
            out[i] = {faces[i].x, faces[i].y, faces[i].width, faces[i].height};
        }
        return static_cast<int>(faces.size());
    });
}

// Opens a capture with `open`, or records why not; `live` (a camera or stream) has no frame count.
extern "C++" template <typename Open>
static cvb_video *openCapture(bool live, const std::string &what, Open open) {
    try {
        std::unique_ptr<cvb_video> v(new cvb_video());
        v->camera = live;
        if (!open(v->capture) || !v->capture.isOpened()) {
            fail("cannot open " + what);
            return nullptr;
        }
        return v.release();
    } catch (const cv::Exception &e) {
        fail(e.what());
        return nullptr;
    }
}

// An MJPEG file or stream (what HTTP IP cameras send) is read as its packets, each a JPEG decoded
// here at its own size: OpenCV's decoder keeps the first frame's size and lays a smaller later frame
// into the old rows (stale pixels, phantom faces), and a larger one is cut.
static cvb_video *withJPEGFrames(cvb_video *v) {
    if (!v) return v;
    int f = static_cast<int>(v->capture.get(cv::CAP_PROP_FOURCC));
    std::string cc;
    for (int k = 0; k < 4; k++) cc += static_cast<char>(std::tolower((f >> (8 * k)) & 255));
    if ((cc == "mjpg" || cc == "mjpe" || cc == "jpeg") && v->capture.set(cv::CAP_PROP_FORMAT, -1)) v->jpegPackets = true;
    return v;
}

// The width and height a JPEG's header declares (its SOF marker), or false.
static bool jpegSize(const cv::Mat &packet, long long &w, long long &h) {
    const uint8_t *b = packet.ptr<uint8_t>();
    size_t n = packet.total() * packet.elemSize(), i = 2;
    if (n < 4 || b[0] != 0xFF || b[1] != 0xD8) return false;
    while (i + 9 < n) {
        if (b[i] != 0xFF) { i++; continue; }
        uint8_t m = b[i + 1];
        if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
            h = (b[i + 5] << 8) | b[i + 6];
            w = (b[i + 7] << 8) | b[i + 8];
            return true;
        }
        if (m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) { i += 2; continue; }
        i += 2 + ((b[i + 2] << 8) | b[i + 3]);
    }
    return false;
}

cvb_video *cvb_video_open(const char *path) {
    // FFmpeg's back end only: OpenCV otherwise tries each back end in turn, and GStreamer's waits
    // forever in open on a file without video (audio only, no frames).
    return withJPEGFrames(openCapture(false, std::string("video ") + path, [&](cv::VideoCapture &c) { return c.open(path, cv::CAP_FFMPEG); }));
}

void cvb_video_limit(cvb_video *video, long long maxPixels) { video->maxPixels = maxPixels; }

cvb_video *cvb_stream_open(const char *url, int openTimeoutMs, int readTimeoutMs) {
    // FFmpeg's back end, with deadlines: a stream that never answers or stalls returns an error
    // instead of blocking the reader forever.
    std::vector<int> params = {cv::CAP_PROP_OPEN_TIMEOUT_MSEC, openTimeoutMs, cv::CAP_PROP_READ_TIMEOUT_MSEC, readTimeoutMs};
    return withJPEGFrames(openCapture(true, std::string("stream ") + url, [&](cv::VideoCapture &c) { return c.open(url, cv::CAP_FFMPEG, params); }));
}

cvb_video *cvb_camera_open(int index, int width, int height) {
    return openCapture(true, "camera " + std::to_string(index), [&](cv::VideoCapture &c) {
        if (!c.open(index)) return false;
        if (width > 0) c.set(cv::CAP_PROP_FRAME_WIDTH, width);
        if (height > 0) c.set(cv::CAP_PROP_FRAME_HEIGHT, height);
        return true;
    });
}

void cvb_video_info(cvb_video *video, int *width, int *height, double *fps, int *frames) {
    *width = static_cast<int>(video->capture.get(cv::CAP_PROP_FRAME_WIDTH));
    *height = static_cast<int>(video->capture.get(cv::CAP_PROP_FRAME_HEIGHT));
    *fps = video->capture.get(cv::CAP_PROP_FPS);
    double n = video->capture.get(cv::CAP_PROP_FRAME_COUNT);
    *frames = (video->camera || n <= 0) ? -1 : static_cast<int>(n);
}

int cvb_video_read(cvb_video *video, cvb_image *out) {
    return guarded([&] {
        cv::Mat frame;
        if (video->jpegPackets) {
            // A damaged packet is skipped (as the decoder would conceal it), up to a bound.
            for (int bad = 0; frame.empty(); bad++) {
                cv::Mat packet;
                if (!video->capture.read(packet) || packet.empty()) return 0;
                long long w = 0, h = 0;
                if (video->maxPixels > 0 && jpegSize(packet, w, h) && w * h > video->maxPixels) return 2;  // before decoding it
                frame = cv::imdecode(packet, cv::IMREAD_COLOR | cv::IMREAD_IGNORE_ORIENTATION);
                if (frame.empty() && bad >= 30) { fail("30 frames in a row are not valid JPEGs"); return -1; }
            }
        } else if (!video->capture.read(frame) || frame.empty()) {
            return 0;
        }
        if (video->maxPixels > 0 && static_cast<long long>(frame.cols) * frame.rows > video->maxPixels) return 2;
        if (frame.channels() == 1) cv::cvtColor(frame, frame, cv::COLOR_GRAY2BGR);
        if (frame.channels() == 4) cv::cvtColor(frame, frame, cv::COLOR_BGRA2BGR);
        int r = copyOut(frame, out);
        return r == 0 ? 1 : r;
    });
}

void cvb_video_close(cvb_video *video) { delete video; }

cvb_writer *cvb_writer_open(const char *path, const char *fourcc, double fps, int width, int height) {
    try {
        auto *w = new cvb_writer();
        int code = cv::VideoWriter::fourcc(fourcc[0], fourcc[1], fourcc[2], fourcc[3]);
        if (!w->writer.open(path, code, fps, cv::Size(width, height), true) || !w->writer.isOpened()) {
            delete w;
            fail(std::string("cannot open video writer for ") + path);
            return nullptr;
        }
        return w;
    } catch (const cv::Exception &e) {
        fail(e.what());
        return nullptr;
    }
}

int cvb_writer_write(cvb_writer *writer, const uint8_t *bgr, int width, int height) {
    return guarded([&] {
        writer->writer.write(wrap(bgr, width, height, 3));
        return 0;
    });
}

void cvb_writer_close(cvb_writer *writer) {
    if (writer) writer->writer.release();
    delete writer;
}

int cvb_window_show(const char *name, const uint8_t *bgr, int width, int height) {
    return guarded([&] {
        cv::imshow(name, wrap(bgr, width, height, 3));
        return 0;
    });
}

int cvb_wait_key(int ms) {
    try {
        return cv::waitKey(ms);
    } catch (const cv::Exception &e) {
        fail(e.what());
        return -1;
    }
}

void cvb_window_close_all(void) {
    try {
        cv::destroyAllWindows();
    } catch (...) {
    }
}
}
