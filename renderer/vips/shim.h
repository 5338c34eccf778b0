// shim.h: the one C entry point per job that the renderer needs from libvips
// and govips does not offer: open a source by path with loader options
// (pyramid page or sub-IFD, JPEG shrink-on-load, access pattern) and run the
// whole IIIF pipeline in one call, so a tile costs one cgo crossing.
#ifndef IIIF_SHIM_H
#define IIIF_SHIM_H

#include <stddef.h>
#include <stdint.h>

enum iiif_quality { IIIF_Q_COLOR = 0, IIIF_Q_GRAY = 1, IIIF_Q_BITONAL = 2 };
enum iiif_format {
	IIIF_F_JPG = 0,
	IIIF_F_PNG = 1,
	IIIF_F_WEBP = 2,
	IIIF_F_GIF = 3,
	IIIF_F_TIF = 4
};

typedef struct _VipsImage VipsImage;

// What a render does with the source's embedded ICC profile.
enum iiif_icc {
	IIIF_ICC_IGNORE = 0,  // treat the pixels as untagged (none, sRGB, unusable, strip)
	IIIF_ICC_CONVERT = 1, // convert to sRGB with the cached transform (colour.h)
	IIIF_ICC_EMBED = 2    // keep the pixels, write the profile into the output
};

typedef struct {
	int sequential; // the source was opened for sequential access
	int x, y, w, h; // region, in the loaded level's pixels
	int ow, oh;     // output size before rotation
	int mirror;     // flip horizontally before rotating
	double angle;   // clockwise degrees, [0, 360)
	int quality;    // enum iiif_quality
	int format;     // enum iiif_format
	int q;          // JPEG / WebP quality, 1-100
	int icc;        // enum iiif_icc
	unsigned long long icc_key; // the profile's hash, for IIIF_ICC_CONVERT
} iiif_job;

typedef struct {
	int width, height; // of the (level's) image
	int pages;         // "n-pages", 1 when absent
	int subifds;       // "n-subifds", 0 when absent
	int bands;
	int has_alpha;
	char loader[32];   // "jpegload", "tiffload", ...
	int uchar;         // 8 bits per sample
	int cmyk;          // the loader says the pixels are CMYK
	void *icc;         // a copy of the embedded ICC profile, or NULL; iiif_free it
	size_t icc_len;
} iiif_header;

// iiif_open opens path (we pass /proc/self/fd/N of a verified fd), or the
// Go reader behind remote when it is not 0 (remote.h; consumed), lazily:
// only the header is read. page is a TIFF page or JP2 resolution level,
// subifd a TIFF sub-IFD level (-1 = not used for either); shrink is the JPEG
// shrink-on-load factor (1 = none). A random-access image may be shared by
// concurrent renders; a sequential one serves exactly one. Release it with
// iiif_unref. strict makes decoder warnings fail the render, as errors do.
VipsImage *iiif_open(const char *path, uintptr_t remote, int page, int subifd, int shrink, int sequential, int strict, char **err);

// iiif_kill lets another thread stop a render that is running: iiif_render
// registers each image it evaluates with it, and iiif_kill_set sets libvips'
// kill flag on that image (libvips checks it before computing every region,
// so the evaluation stops within a tile or strip) and makes every later step
// of the render fail at once. One per render; thread-safe.
typedef struct iiif_kill iiif_kill;
iiif_kill *iiif_kill_new(void);
void iiif_kill_set(iiif_kill *k);
int iiif_kill_isset(iiif_kill *k);
void iiif_kill_free(iiif_kill *k);

// iiif_render runs job on src and leaves an encoded image in *buf (free with
// iiif_free). On failure it returns non-zero and *err holds a message. kill
// may be NULL.
int iiif_render(VipsImage *src, const iiif_job *job, iiif_kill *kill, void **buf, size_t *len, char **err);

// iiif_unref drops a reference to an image from iiif_open.
void iiif_unref(VipsImage *im);

// iiif_probe reads a source's header (no pixels are decoded). page and subifd
// select a pyramid level as in iiif_job; remote as for iiif_open.
int iiif_probe(const char *path, uintptr_t remote, int page, int subifd, iiif_header *out, char **err);

// iiif_check_profile opens path's first level and builds the colour
// transform for its embedded profile (keyed by key), so that a profile that
// lcms cannot use is found once per source. 0: usable.
int iiif_check_profile(const char *path, uintptr_t remote, int page, int subifd, unsigned long long key, char **err);

// iiif_build_pyramid writes the source at path (level page/subifd, read
// sequentially) to out as a tiled (tile × tile), JPEG-compressed (quality q)
// pyramidal TIFF with the source's ICC profile and no other metadata. kill
// stops it; a killed build fails. On failure out may hold a partial file.
// When progress_fd is not -1, the build writes its progress to it as lines
// "P\n", P the percentage of the full-resolution pass done (0 to 100; the
// lower levels are made during it and copied into out after it), one line
// per change.
int iiif_build_pyramid(const char *path, int page, int subifd, int strict, const char *out, int q, int tile,
                       int progress_fd, iiif_kill *kill, char **err);

// iiif_builder_init starts libvips in a pyramid builder process: one
// worker thread, no operation cache, and libvips' messages on stderr (no
// callbacks into Go). 0: started.
int iiif_builder_init(const char *argv0);

// iiif_tune_malloc fixes glibc's mmap and trim thresholds and bounds its
// arenas (see shim.c). arenas <= 0 leaves the arena count alone.
void iiif_tune_malloc(int arenas);

// iiif_trim gives freed heap memory back to the kernel (malloc_trim).
void iiif_trim(void);

// iiif_cache_size is the number of operations in libvips' cache.
int iiif_cache_size(void);

// iiif_free releases memory returned by the functions above.
void iiif_free(void *p);

#endif

// iiif_make writes a generated image to out, a libvips file name with save
// options ("x.tif[tile,pyramid,compression=jpeg]"). kind 0 is a test pattern:
// a cols × rows grid whose cell colours are palette (RGB triplets, row-major),
// each cell width/cols × height/rows pixels. kind 1 is a synthetic scan:
// paper-like Perlin texture with grain, and paragraphs of text.
// profile, when not NULL, is an ICC profile (a file, or a libvips built-in
// name: "srgb", "cmyk", "p3") written into the file; convert first converts
// the pixels, drawn as sRGB, to it, else they are only tagged. depth16
// writes 16 bits per sample.
int iiif_make(const char *out, int kind, int width, int height, int seed,
              const unsigned char *palette, int cols, int rows,
              const char *profile, int convert, int depth16, char **err);
