#include "CVBridge.h"

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

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

extern "C" {

const char *cvb_last_error(void) { return lastError.c_str(); }

void cvb_image_free(cvb_image *image) {
    if (image && image->data) std::free(image->data);
    if (image) image->data = nullptr;
}

int cvb_read(const char *path, int channels, cvb_image *out) {
    return guarded([&] {
        cv::Mat m = cv::imread(path, channels == 3 ? cv::IMREAD_COLOR : cv::IMREAD_GRAYSCALE);
        if (m.empty()) return fail("cannot decode image");
        return copyOut(m, out);
    });
}

int cvb_decode(const uint8_t *bytes, size_t count, int channels, cvb_image *out) {
    return guarded([&] {
        if (count == 0) return fail("empty image data");
        cv::Mat buf(1, static_cast<int>(count), CV_8UC1, const_cast<uint8_t *>(bytes));
        cv::Mat m = cv::imdecode(buf, channels == 3 ? cv::IMREAD_COLOR : cv::IMREAD_GRAYSCALE);
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

int cvb_resize(const uint8_t *src, int width, int height, int channels, uint8_t *dst, int dstWidth, int dstHeight) {
    return guarded([&] {
        cv::Mat out = wrap(dst, dstWidth, dstHeight, channels);
        int interp = (dstWidth < width || dstHeight < height) ? cv::INTER_AREA : cv::INTER_LINEAR;
        cv::resize(wrap(src, width, height, channels), out, cv::Size(dstWidth, dstHeight), 0, 0, interp);
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
}
