#pragma once
// The one door to OpenCV 4.6: plain C functions over byte buffers, so nothing above this target
// sees C++. Images are 8-bit, row-major, tightly packed: 1 channel (gray) or 3 (BGR, OpenCV's order).
// Every function returns 0 on success and a negative code on failure; cvb_last_error() says why.
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint8_t *data;   // malloc'd; release with cvb_image_free
    int width, height, channels;
} cvb_image;

/// The message of the last failure on this thread.
const char *cvb_last_error(void);
void cvb_image_free(cvb_image *image);

/// Decodes a file (PNG, JPEG, BMP, ...) into gray (channels 1) or BGR (channels 3).
int cvb_read(const char *path, int channels, int reduction, cvb_image *out);
/// Decodes an encoded image held in memory.
int cvb_decode(const uint8_t *bytes, size_t count, int channels, int reduction, cvb_image *out);
/// Encodes to the format of the path's extension (.png, .jpg, .bmp) and writes the file.
int cvb_write(const char *path, const uint8_t *pixels, int width, int height, int channels);
/// Encodes to memory (ext like ".png" or ".jpg"); *out is malloc'd, release with cvb_buffer_free.
int cvb_encode(const char *ext, const uint8_t *pixels, int width, int height, int channels, uint8_t **out, size_t *count);
void cvb_buffer_free(uint8_t *buffer);
/// `src` encoded as JPEG at `quality` (1-100) and decoded again into `dst` (same size): the
/// blocking and ringing a camera or a website leaves on a face.
int cvb_jpeg_roundtrip(const uint8_t *src, int width, int height, int channels, int quality, uint8_t *dst);

/// Resizes with area averaging when shrinking and bilinear when growing.
int cvb_resize(const uint8_t *src, int width, int height, int channels, uint8_t *dst, int dstWidth, int dstHeight);
/// The rectangle (x, y, w, h) of `src`, which must lie inside it, resized to dstWidth x dstHeight
/// (area averaging when shrinking), without copying the rectangle out first.
int cvb_resize_region(const uint8_t *src, int width, int height, int channels, int x, int y, int w, int h,
                      uint8_t *dst, int dstWidth, int dstHeight);
/// The square of side `side` centred at (cx, cy), turned by `degrees` (counter-clockwise on screen)
/// about its centre, as an out x out gray image: the pixels past the image's edges repeat its
/// border; the region is shrunk with area averaging first, then turned (bilinear).
int cvb_gray_frame_rotated(const uint8_t *src, int width, int height, int channels, double cx, double cy, double side,
                           double degrees, uint8_t *dst, int out);
/// `src` turned by `degrees` (counter-clockwise on screen) about (cx, cy), same size, border repeated.
int cvb_rotate(const uint8_t *src, int width, int height, int channels, double cx, double cy, double degrees, uint8_t *dst);
/// Converts BGR to gray (OpenCV's weights).
int cvb_bgr_to_gray(const uint8_t *src, int width, int height, uint8_t *dst);

// Drawing on a BGR canvas in place (plots, annotations). Colours are B, G, R.
int cvb_draw_line(uint8_t *bgr, int width, int height, int x0, int y0, int x1, int y1,
                  int b, int g, int r, int thickness);
int cvb_draw_rect(uint8_t *bgr, int width, int height, int x, int y, int w, int h,
                  int b, int g, int r, int thickness /* -1 fills */);
int cvb_draw_text(uint8_t *bgr, int width, int height, const char *text, int x, int y, double scale,
                  int b, int g, int r, int thickness);
/// Width and height in pixels that cvb_draw_text would cover (baseline excluded).
int cvb_text_size(const char *text, double scale, int thickness, int *width, int *height);

// Face detection with OpenCV's cascade classifiers (Haar or LBP, from opencv-data).
typedef struct cvb_cascade cvb_cascade;
typedef struct { int x, y, width, height; } cvb_rect;
cvb_cascade *cvb_cascade_load(const char *path);
void cvb_cascade_free(cvb_cascade *cascade);
/// Detects on a gray image (histogram-equalised first); writes up to maxOut boxes, returns the count
/// found (may exceed maxOut) or a negative code.
int cvb_cascade_detect(cvb_cascade *cascade, const uint8_t *gray, int width, int height, double scaleFactor,
                       int minNeighbors, int minSize, int maxSize, cvb_rect *out, int maxOut);

// Video files and cameras (BGR frames).
typedef struct cvb_video cvb_video;
cvb_video *cvb_video_open(const char *path);
cvb_video *cvb_camera_open(int index, int width, int height);
/// A network stream (rtsp://, http(s):// MJPEG...) through FFmpeg, with open and read deadlines in milliseconds.
cvb_video *cvb_stream_open(const char *url, int openTimeoutMs, int readTimeoutMs);
/// Frame size, frames per second (0 if unknown) and frame count (-1 if unknown: cameras, streams).
void cvb_video_info(cvb_video *video, int *width, int *height, double *fps, int *frames);
/// 1: a frame was read into *out (release with cvb_image_free); 2: a frame over the limit
/// (cvb_video_limit) was skipped; 0: end of stream; negative: error. Each frame has its own size.
int cvb_video_read(cvb_video *video, cvb_image *out);
// Frames of more pixels than this are skipped (read returns 2 for each, without the frame); 0: no limit.
void cvb_video_limit(cvb_video *video, long long maxPixels);
void cvb_video_close(cvb_video *video);

typedef struct cvb_writer cvb_writer;
/// fourcc such as "mp4v" or "MJPG".
cvb_writer *cvb_writer_open(const char *path, const char *fourcc, double fps, int width, int height);
int cvb_writer_write(cvb_writer *writer, const uint8_t *bgr, int width, int height);
void cvb_writer_close(cvb_writer *writer);

// A display window (needs a display; fails cleanly without one).
int cvb_window_show(const char *name, const uint8_t *bgr, int width, int height);
/// Waits up to ms milliseconds for a key; returns its code or -1.
int cvb_wait_key(int ms);
void cvb_window_close_all(void);

#ifdef __cplusplus
}
#endif
