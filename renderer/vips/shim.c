// shim.c: see shim.h. Every intermediate image hangs off one VipsObject
// ("scope") through vips_object_local_array, so a single unref frees the
// pipeline whichever step fails.
#include <stdio.h>
#include <string.h>
#include <math.h>
#include <vips/vips.h>
#include <malloc.h>
#include <stdlib.h>
#include <unistd.h>

#include "shim.h"
#include "colour.h"
#include "direct.h"
#include "remote.h"

#define NSTEPS 24

static int fail(char **err) {
	*err = vips_error_buffer_copy();
	if (*err == NULL || **err == '\0') {
		g_free(*err);
		*err = g_strdup("libvips failed without a message");
	}
	return -1;
}

// open_source builds "path[opts]" so one call works for every loader; with
// remote set (a handle of a Go reader, see remote.h), path is not used and
// libvips reads through Go.
// fail_on=error makes truncation and decoder errors fail the load or the
// render that meets them, instead of libvips' default of filling the missing
// pixels with black; strict (fail_on=warning) also fails on warnings.
static VipsImage *open_source(const char *path, uintptr_t remote, int page, int subifd, int shrink, int sequential,
                              int strict) {
	char opts[160] = "fail_on=error";
	if (strict) g_strlcpy(opts, "fail_on=warning", sizeof opts);
	size_t n = strlen(opts);
	if (page >= 0) n += snprintf(opts + n, sizeof opts - n, ",page=%d", page);
	if (subifd >= 0) n += snprintf(opts + n, sizeof opts - n, ",subifd=%d", subifd);
	if (shrink > 1) n += snprintf(opts + n, sizeof opts - n, ",shrink=%d", shrink);
	if (sequential) n += snprintf(opts + n, sizeof opts - n, ",access=sequential");
	if (remote) return iiif_open_remote(remote, opts);
	char *name = g_strdup_printf("%s[%s]", path, opts);
	VipsImage *im = vips_image_new_from_file(name, NULL);
	g_free(name);
	return im;
}

VipsImage *iiif_open(const char *path, uintptr_t remote, int page, int subifd, int shrink, int sequential, int strict,
                     char **err) {
	*err = NULL;
	VipsImage *im = open_source(path, remote, page, subifd, shrink, sequential, strict);
	if (im == NULL) fail(err);
	return im;
}

void iiif_unref(VipsImage *im) { g_object_unref(im); }

int iiif_probe(const char *path, uintptr_t remote, int page, int subifd, iiif_header *out, char **err) {
	VipsImage *im = open_source(path, remote, page, subifd, 1, 0, 0);
	if (im == NULL) return fail(err);
	memset(out, 0, sizeof *out);
	out->width = vips_image_get_width(im);
	out->height = vips_image_get_height(im);
	out->pages = vips_image_get_n_pages(im);
	int v = 0;
	if (vips_image_get_typeof(im, "n-subifds") && vips_image_get_int(im, "n-subifds", &v) == 0)
		out->subifds = v;
	out->bands = vips_image_get_bands(im);
	out->has_alpha = vips_image_hasalpha(im);
	const char *loader = NULL;
	if (vips_image_get_typeof(im, VIPS_META_LOADER) &&
	    vips_image_get_string(im, VIPS_META_LOADER, &loader) == 0 && loader != NULL)
		g_strlcpy(out->loader, loader, sizeof out->loader);
	out->cmyk = im->Type == VIPS_INTERPRETATION_CMYK;
	out->uchar = im->BandFmt == VIPS_FORMAT_UCHAR;
	const void *icc;
	size_t n;
	if (vips_image_get_typeof(im, VIPS_META_ICC_NAME) && vips_image_get_blob(im, VIPS_META_ICC_NAME, &icc, &n) == 0 &&
	    n > 0) {
		out->icc = g_memdup2(icc, n);
		out->icc_len = n;
	}
	g_object_unref(im);
	return 0;
}

int iiif_check_profile(const char *path, uintptr_t remote, int page, int subifd, unsigned long long key, char **err) {
	*err = NULL;
	VipsImage *im = open_source(path, remote, page, subifd, 1, 0, 0);
	if (im == NULL) return fail(err);
	int r = iiif_icc_check(im, key);
	g_object_unref(im);
	return r ? fail(err) : 0;
}

static int format_has_alpha(int format) {
	return format == IIIF_F_PNG || format == IIIF_F_WEBP || format == IIIF_F_GIF ||
	       format == IIIF_F_TIF;
}

// to_srgb8 brings any source (CMYK, 16-bit, tagged with an ICC profile,
// float) to 8-bit sRGB, or 8-bit B_W for one-band images, doing with the
// embedded profile what job->icc says. Intermediates go to t[*i...]; *out is
// the result (possibly in itself).
static int to_srgb8(VipsImage *in, const iiif_job *job, VipsImage **t, int *i, VipsImage **out) {
	VipsImage *cur = in;
	int tagged = vips_image_get_typeof(cur, VIPS_META_ICC_NAME) != 0;
	if (tagged && job->icc == IIIF_ICC_CONVERT) {
		if (iiif_icc_convert(cur, job->icc_key, &t[*i]) == 0) {
			cur = t[(*i)++];
			tagged = 0;
		} else {
			// A layout the cached transform does not take (CMYK with
			// alpha, float): libvips' own transform, built per render.
			vips_error_clear();
			if (vips_icc_transform(cur, &t[*i], "srgb", "embedded", TRUE, "depth", 8, NULL) == 0) {
				cur = t[(*i)++];
				tagged = 0;
			} else {
				vips_error_clear();
			}
		}
	}
	if (tagged && job->icc != IIIF_ICC_EMBED) {
		// Untagged from here: vips_colourspace must not apply an sRGB,
		// unusable or stripped profile (libvips would, for CMYK).
		if (vips_copy(cur, &t[*i], NULL)) return -1;
		cur = t[(*i)++];
		vips_image_remove(cur, VIPS_META_ICC_NAME);
	}
	int bands = cur->Bands - (vips_image_hasalpha(cur) ? 1 : 0);
	VipsInterpretation want = bands >= 3 ? VIPS_INTERPRETATION_sRGB : VIPS_INTERPRETATION_B_W;
	if (vips_image_guess_interpretation(cur) != want || cur->BandFmt != VIPS_FORMAT_UCHAR) {
		if (vips_colourspace(cur, &t[*i], want, NULL)) return -1;
		cur = t[(*i)++];
		if (cur->BandFmt != VIPS_FORMAT_UCHAR) {
			if (vips_cast_uchar(cur, &t[*i], NULL)) return -1;
			cur = t[(*i)++];
		}
	}
	*out = cur;
	return 0;
}

// keep_only_icc removes every metadata item but the ICC profile from im (a
// private copy), so that a save that keeps metadata writes the profile and
// nothing else of the source (EXIF, XMP, IPTC, PNG comments).
static void keep_only_icc(VipsImage *im) {
	gchar **names = vips_image_get_fields(im);
	for (int k = 0; names[k] != NULL; k++)
		if (strcmp(names[k], VIPS_META_ICC_NAME) != 0) vips_image_remove(im, names[k]);
	g_strfreev(names);
}

struct iiif_kill {
	GMutex lock;    // protects im and set
	VipsImage *im;  // the image being evaluated now, referenced; or NULL
	int set;
};

iiif_kill *iiif_kill_new(void) {
	iiif_kill *k = g_new0(iiif_kill, 1);
	g_mutex_init(&k->lock);
	return k;
}

void iiif_kill_set(iiif_kill *k) {
	g_mutex_lock(&k->lock);
	k->set = 1;
	if (k->im) vips_image_set_kill(k->im, TRUE);
	g_mutex_unlock(&k->lock);
}

int iiif_kill_isset(iiif_kill *k) {
	g_mutex_lock(&k->lock);
	int set = k->set;
	g_mutex_unlock(&k->lock);
	return set;
}

void iiif_kill_free(iiif_kill *k) {
	if (k == NULL) return;
	if (k->im) g_object_unref(k->im);
	g_mutex_clear(&k->lock);
	g_free(k);
}

// watch registers im as the image about to be evaluated (NULL: none), so
// that iiif_kill_set can stop it. It fails when the render is already
// killed. Only images private to this render are ever registered: the kill
// flag of a source shared with other renders must never be set.
static int watch(iiif_kill *k, VipsImage *im) {
	if (k == NULL) return 0;
	g_mutex_lock(&k->lock);
	if (k->im) g_object_unref(k->im);
	k->im = im;
	if (im) {
		g_object_ref(im);
		if (k->set) vips_image_set_kill(im, TRUE);
	}
	int set = k->set;
	g_mutex_unlock(&k->lock);
	if (set) vips_error("iiif", "render cancelled");
	return set ? -1 : 0;
}

int iiif_render(VipsImage *src, const iiif_job *job, iiif_kill *kill, void **buf, size_t *len, char **err) {
	*buf = NULL;
	*len = 0;
	*err = NULL;
	VipsObject *scope = VIPS_OBJECT(vips_image_new());
	VipsImage **t = (VipsImage **)vips_object_local_array(scope, NSTEPS);
	int i = 0;
	int rc = -1;
	VipsImage *cur;

#define STEP(call)                     \
	do {                           \
		if (call) goto out;    \
		cur = t[i++];          \
	} while (0)

	t[i] = src;
	g_object_ref(src); // the scope's unref balances it
	cur = t[i++];

	if (job->x != 0 || job->y != 0 || job->w != cur->Xsize || job->h != cur->Ysize)
		STEP(vips_extract_area(cur, &t[i], job->x, job->y, job->w, job->h, NULL));

	if (job->w != job->ow || job->h != job->oh) {
		int alpha = vips_image_hasalpha(cur);
		VipsBandFormat fmt = cur->BandFmt;
		if (alpha) STEP(vips_premultiply(cur, &t[i], NULL));
		double hs = (double)job->ow / job->w, vs = (double)job->oh / job->h;
		// After level selection a reduction is by less than 2, where
		// libvips' default lanczos3 is barely sharper than bicubic and costs
		// a third more of a thumbnail's CPU; and once the output is a JPEG
		// the triangle (linear) kernel, antialiased like the others (its
		// support grows with the reduction), is as good as bicubic: 700 and
		// 1024 px views of the 236-megapixel scan, Q75, against lanczos3:
		// 35.4 / 35.7 dB linear, 36.0 / 36.3 dB bicubic (IIPImage's own
		// 700-px view: 31.1 dB). Linear reads half the taps: libvips 8.14's
		// horizontal reduce is scalar, and 22 % of a thumbnail's CPU went
		// (bench/RESULTS.md). Upscales keep bicubic: there linear blurs.
		VipsKernel k = hs <= 1 && vs <= 1 ? VIPS_KERNEL_LINEAR : VIPS_KERNEL_CUBIC;
		STEP(vips_resize(cur, &t[i], hs, "vscale", vs, "kernel", k, NULL));
		if (alpha) {
			STEP(vips_unpremultiply(cur, &t[i], NULL));
			STEP(vips_cast(cur, &t[i], fmt, NULL));
		}
		// vips_resize rounds; make the size exact.
		if (cur->Xsize != job->ow || cur->Ysize != job->oh) {
			if (cur->Xsize < job->ow || cur->Ysize < job->oh)
				STEP(vips_embed(cur, &t[i], 0, 0, VIPS_MAX(cur->Xsize, job->ow),
				                VIPS_MAX(cur->Ysize, job->oh), "extend", VIPS_EXTEND_COPY, NULL));
			STEP(vips_extract_area(cur, &t[i], 0, 0, job->ow, job->oh, NULL));
		}
	}

	if (to_srgb8(cur, job, t, &i, &cur)) goto out;

	double angle = job->angle;
	int right = fmod(angle, 90.0) == 0.0;
	if (job->sequential && angle != 0.0) { // rotations need random access
		// The copy evaluates the pipeline so far: a private image (the
		// crop at least; never the shared source, since a sequential
		// source is single-use anyway).
		if (watch(kill, cur)) goto out;
		if (!(t[i] = vips_image_copy_memory(cur))) goto out;
		cur = t[i++];
	}

	if (job->mirror) STEP(vips_flip(cur, &t[i], VIPS_DIRECTION_HORIZONTAL, NULL));

	if (angle != 0.0) {
		if (right) {
			VipsAngle a = angle == 90.0 ? VIPS_ANGLE_D90 : angle == 180.0 ? VIPS_ANGLE_D180 : VIPS_ANGLE_D270;
			STEP(vips_rot(cur, &t[i], a, NULL));
		} else {
			double bg[4] = {255, 255, 255, 255};
			int nb = cur->Bands;
			if (format_has_alpha(job->format) && job->quality != IIIF_Q_BITONAL) {
				if (!vips_image_hasalpha(cur)) {
					STEP(vips_addalpha(cur, &t[i], NULL));
					nb = cur->Bands;
				}
				memset(bg, 0, sizeof bg);
			}
			VipsArrayDouble *background = vips_array_double_new(bg, nb);
			int r = vips_rotate(cur, &t[i], angle, "background", background, NULL);
			vips_area_unref(VIPS_AREA(background));
			STEP(r);
		}
	}

	int bitonal = job->quality == IIIF_Q_BITONAL;
	if ((job->format == IIIF_F_JPG || bitonal) && vips_image_hasalpha(cur)) {
		double white[3] = {255, 255, 255};
		VipsArrayDouble *background = vips_array_double_new(white, cur->Bands - 1);
		int r = vips_flatten(cur, &t[i], "background", background, NULL);
		vips_area_unref(VIPS_AREA(background));
		STEP(r);
	}
	if (job->quality == IIIF_Q_GRAY || bitonal) {
		if (vips_image_guess_interpretation(cur) != VIPS_INTERPRETATION_B_W)
			STEP(vips_colourspace(cur, &t[i], VIPS_INTERPRETATION_B_W, NULL));
		if (bitonal) STEP(vips_relational_const1(cur, &t[i], VIPS_OPERATION_RELATIONAL_MOREEQ, 128, NULL));
	}

	// Saving evaluates cur. When no step ran, cur is the shared source
	// itself: wrap it in a private copy so a kill stops this render only.
	// The profile goes into PNG, WebP and TIFF through libvips (strip off),
	// into JPEG through the caller (icc.SpliceJPEG, as for pass-through).
	int strip = TRUE;
	if (job->icc == IIIF_ICC_EMBED && job->format != IIIF_F_JPG && job->format != IIIF_F_GIF && !bitonal &&
	    vips_image_get_typeof(cur, VIPS_META_ICC_NAME)) {
		STEP(vips_copy(cur, &t[i], NULL));
		keep_only_icc(cur);
		strip = FALSE;
	}
	if (cur == src) STEP(vips_copy(cur, &t[i], NULL));
	if (watch(kill, cur)) goto out;

	switch (job->format) {
	case IIIF_F_JPG:
		// Small outputs of random-access sources render on this thread
		// (direct.h). Sequential sources (plain JPEG, PNG) keep libvips'
		// threads: their one region would decode every row above the
		// output in one call that a kill could not interrupt.
		if (!job->sequential && iiif_direct_ok(cur))
			rc = iiif_direct_jpeg(cur, job->q, buf, len);
		else
			rc = vips_jpegsave_buffer(cur, buf, len, "Q", job->q, "strip", TRUE, NULL);
		break;
	case IIIF_F_PNG:
		if (bitonal)
			rc = vips_pngsave_buffer(cur, buf, len, "strip", TRUE, "bitdepth", 1, NULL);
		else
			rc = vips_pngsave_buffer(cur, buf, len, "strip", strip, "compression", 6, NULL);
		break;
	case IIIF_F_WEBP:
		rc = vips_webpsave_buffer(cur, buf, len, "Q", job->q, "strip", strip, NULL);
		break;
	case IIIF_F_GIF:
		rc = vips_gifsave_buffer(cur, buf, len, "strip", TRUE, NULL);
		break;
	case IIIF_F_TIF:
		rc = vips_tiffsave_buffer(cur, buf, len, "compression", VIPS_FOREIGN_TIFF_COMPRESSION_DEFLATE,
		                          "predictor", VIPS_FOREIGN_TIFF_PREDICTOR_HORIZONTAL, "strip", strip,
		                          NULL);
		break;
	default:
		vips_error("iiif", "unknown output format %d", job->format);
		rc = -1;
	}
#undef STEP
out:
	watch(kill, NULL);
	if (kill && iiif_kill_isset(kill)) rc = -1; // a killed evaluation may still "succeed" with holes
	g_object_unref(scope);
	if (rc != 0) {
		g_free(*buf);
		*buf = NULL;
		*len = 0;
		return fail(err);
	}
	return 0;
}

// build_progress is where a build reports its progress.
typedef struct {
	int fd;
	int last; // the last percentage written; -1 for none
} build_progress;

// on_build_eval writes each new percentage, from whichever libvips thread
// evaluates the pipeline; a pipe takes small writes whole.
static void on_build_eval(VipsImage *im, VipsProgress *p, build_progress *bp) {
	int pc = VIPS_CLIP(0, p->percent, 100);
	if (pc == bp->last) return;
	bp->last = pc;
	char line[8];
	int n = snprintf(line, sizeof line, "%d\n", pc);
	ssize_t w = write(bp->fd, line, n); // fails only when the parent went away: nothing to do
	(void)w;
}

int iiif_build_pyramid(const char *path, int page, int subifd, int strict, const char *out, int q, int tile,
                       int progress_fd, iiif_kill *kill, char **err) {
	*err = NULL;
	VipsImage *src = open_source(path, 0, page, subifd, 1, 1, strict);
	if (src == NULL) return fail(err);
	VipsImage *cp = NULL;
	int rc = vips_copy(src, &cp, NULL);
	if (rc == 0) {
		// A private copy: the kill flag is set on it, never on anything
		// shared, and its metadata can be pruned to the profile.
		keep_only_icc(cp);
		rc = watch(kill, cp);
	}
	build_progress bp = {progress_fd, -1};
	if (rc == 0 && progress_fd >= 0) {
		// Every image made from cp signals its evaluation on cp: tiffsave's
		// own copy of it, which its sink writes.
		vips_image_set_progress(cp, TRUE);
		g_signal_connect(cp, "eval", G_CALLBACK(on_build_eval), &bp);
		g_signal_connect(cp, "posteval", G_CALLBACK(on_build_eval), &bp);
	}
	if (rc == 0)
		rc = vips_tiffsave(cp, out, "tile", TRUE, "tile_width", tile, "tile_height", tile, "pyramid", TRUE,
		                   "compression", VIPS_FOREIGN_TIFF_COMPRESSION_JPEG, "Q", q, "strip", FALSE, NULL);
	watch(kill, NULL);
	if (kill && iiif_kill_isset(kill)) rc = -1;
	if (cp) g_signal_handlers_disconnect_by_data(cp, &bp); // bp is on this stack
	if (cp) g_object_unref(cp);
	g_object_unref(src);
	return rc ? fail(err) : 0;
}

int iiif_builder_init(const char *argv0) {
	if (VIPS_INIT(argv0)) return -1;
	vips_concurrency_set(1);
	vips_cache_set_max(0);
	vips_cache_set_max_files(0);
	vips_cache_set_max_mem(0);
	return 0;
}

void iiif_free(void *p) { g_free(p); }

void iiif_trim(void) { malloc_trim(0); }

int iiif_cache_size(void) { return vips_cache_get_size(); }

void iiif_tune_malloc(int arenas) {
	// glibc raises its mmap threshold dynamically, so a server that renders
	// many similar images keeps mapping, faulting in and unmapping the same
	// sizes of buffer. Fixed thresholds keep those pages in the heap.
	// MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ in the environment win.
	if (getenv("MALLOC_MMAP_THRESHOLD_") == NULL) mallopt(M_MMAP_THRESHOLD, 32 << 20);
	if (getenv("MALLOC_TRIM_THRESHOLD_") == NULL) mallopt(M_TRIM_THRESHOLD, 64 << 20);
	// glibc creates up to 8 arenas per core, one per thread that contends,
	// and each keeps its own free memory: libvips' worker threads spread a
	// big render's buffers over many arenas that are then only trimmed at
	// their top. Fewer arenas bound what is kept. MALLOC_ARENA_MAX wins.
	if (arenas > 0 && getenv("MALLOC_ARENA_MAX") == NULL) mallopt(M_ARENA_MAX, arenas);
}

static const char *sample_text =
    "<b>Liber sextus.</b> Quod in principio erat verbum, et verbum erat apud deum. Incipit prologus "
    "in librum. Item nota quod omnia que scripta sunt ad nostram doctrinam scripta sunt, ut per "
    "patientiam et consolationem scripturarum spem habeamus. Folio 12 recto. 1482. "
    "<i>Explicit capitulum primum; incipit secundum de natura rerum et de ordine temporum.</i> "
    "Anno domini millesimo quadringentesimo octogesimo secundo, die vero mensis maii.";

// make_scan draws paper: a broad tone, fibres and grain in one luminance
// texture tinted sepia, a faint warm/cool drift, and paragraphs of text.
static int make_scan(VipsObject *scope, int w, int h, int seed, VipsImage **out) {
	VipsImage **t = (VipsImage **)vips_object_local_array(scope, 20);
	double one[3] = {1, 1, 1}, zero[3] = {0, 0, 0};
	double tint_a[3] = {1.0, 0.93, 0.78}, tint_b[3] = {196, 176, 138};
	double drift[3] = {10, 0, -10};
	if (vips_perlin(&t[0], w, h, "cell_size", 1024, "seed", seed, NULL) ||
	    vips_perlin(&t[1], w, h, "cell_size", 40, "seed", seed + 1, NULL) ||
	    vips_perlin(&t[2], w, h, "cell_size", 3, "seed", seed + 2, NULL) ||
	    vips_perlin(&t[3], w, h, "cell_size", 2048, "seed", seed + 3, NULL) ||
	    vips_linear1(t[0], &t[4], 55, 0, NULL) || vips_linear1(t[1], &t[5], 24, 0, NULL) ||
	    vips_linear1(t[2], &t[6], 16, 0, NULL) || vips_add(t[4], t[5], &t[7], NULL) ||
	    vips_add(t[7], t[6], &t[8], NULL) ||                                // luminance offset
	    vips_linear(t[8], &t[9], tint_a, tint_b, 3, NULL) ||               // sepia paper
	    vips_linear(t[3], &t[10], drift, zero, 3, NULL) || vips_add(t[9], t[10], &t[11], NULL))
		return -1;
	// Paragraphs of text, replicated down the page with margins.
	int cw = VIPS_MIN(w, 2400);
	if (vips_text(&t[12], sample_text, "width", cw - cw / 8, "dpi", 150, "font", "serif", NULL) ||
	    vips_embed(t[12], &t[13], cw / 16, 30, cw, t[12]->Ysize + 70, NULL) ||
	    vips_replicate(t[13], &t[14], (w + cw - 1) / cw, (h + t[13]->Ysize - 1) / t[13]->Ysize, NULL) ||
	    vips_extract_area(t[14], &t[15], 0, 0, w, h, NULL))
		return -1;
	double ink[3] = {50, 32, 20};
	if (vips_linear1(t[15], &t[16], 1.0 / 255, 0, NULL) ||                     // a
	    vips_linear(t[16], &t[17], (double[]){-1, -1, -1}, one, 3, NULL) ||      // 1 - a
	    vips_multiply(t[11], t[17], &t[18], NULL) ||                            // paper * (1 - a)
	    vips_linear(t[16], &t[19], ink, zero, 3, NULL))                         // ink * a
		return -1;
	VipsImage **u = (VipsImage **)vips_object_local_array(scope, 2);
	if (vips_add(t[18], t[19], &u[0], NULL) || vips_cast_uchar(u[0], &u[1], NULL)) return -1;
	*out = u[1];
	return 0;
}

static int make_pattern(VipsObject *scope, int w, int h, const unsigned char *palette, int cols, int rows,
                        VipsImage **out) {
	VipsImage **t = (VipsImage **)vips_object_local_array(scope, 4);
	t[0] = vips_image_new_from_memory_copy(palette, (size_t)cols * rows * 3, cols, rows, 3, VIPS_FORMAT_UCHAR);
	if (t[0] == NULL) return -1;
	int cw = (w + cols - 1) / cols, ch = (h + rows - 1) / rows;
	if (vips_zoom(t[0], &t[1], cw, ch, NULL) || vips_extract_area(t[1], &t[2], 0, 0, w, h, NULL) ||
	    vips_copy(t[2], &t[3], "interpretation", VIPS_INTERPRETATION_sRGB, NULL))
		return -1;
	*out = t[3];
	return 0;
}

int iiif_make(const char *out, int kind, int width, int height, int seed, const unsigned char *palette, int cols,
              int rows, const char *profile, int convert, int depth16, char **err) {
	*err = NULL;
	VipsObject *scope = VIPS_OBJECT(vips_image_new());
	VipsImage *im = NULL;
	int r = kind == 0 ? make_pattern(scope, width, height, palette, cols, rows, &im)
	                  : make_scan(scope, width, height, seed, &im);
	VipsImage **t = (VipsImage **)vips_object_local_array(scope, 5);
	if (r == 0 && profile != NULL && convert) {
		r = vips_icc_transform(im, &t[0], profile, "input_profile", "srgb", "embedded", FALSE, "depth", 8, NULL);
		if (r == 0) im = t[0];
	}
	if (r == 0 && profile != NULL && !convert) {
		VipsBlob *b = NULL;
		r = vips_profile_load(profile, &b, NULL) || vips_copy(im, &t[1], NULL);
		if (r == 0) {
			size_t n;
			const void *d = vips_blob_get(b, &n);
			vips_image_set_blob_copy(t[1], VIPS_META_ICC_NAME, d, n);
			im = t[1];
		}
		if (b) vips_area_unref(VIPS_AREA(b));
	}
	if (r == 0 && depth16) {
		VipsInterpretation to = im->Type == VIPS_INTERPRETATION_CMYK ? VIPS_INTERPRETATION_CMYK : VIPS_INTERPRETATION_RGB16;
		r = vips_linear1(im, &t[2], 257, 0, NULL) || vips_cast(t[2], &t[3], VIPS_FORMAT_USHORT, NULL) ||
		    vips_copy(t[3], &t[4], "interpretation", to, NULL);
		if (r == 0) im = t[4];
	}
	if (r == 0) r = vips_image_write_to_file(im, out, NULL);
	g_object_unref(scope);
	return r ? fail(err) : 0;
}
