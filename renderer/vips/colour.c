// colour.c: see colour.h.
#include <limits.h>
#include <string.h>
#include <lcms2.h>
#include <vips/vips.h>

#include "colour.h"
#include "shaper.h"
#include "clut.h"

// MAX_TRANSFORMS bounds the cache: sites hold a handful of distinct
// profiles (a few per scanner or workflow). An 8-bit transform is a
// precomputed grid of some 100-300 KB; a CMYK one adds clut.c's table of
// 0.5 MB, a matrix-shaper one the shaper's 50-100 KB. Past the bound a
// transform is built per pipeline and freed with it: correct, only slower.
#define MAX_TRANSFORMS 64

// conv is a cached conversion: lcms' transform, and the inline shaper
// (shaper.h, matrix-shaper RGB) or table (clut.h, 8-bit CMYK) when one
// applies, which is then what runs.
typedef struct {
	cmsHTRANSFORM tr;
	shaper *sh;  // NULL: use cl or tr
	clut4 *cl;   // NULL: use tr
	int sixteen; // the input is 16-bit (sh then takes 16-bit pixels)
} conv;

typedef struct {
	unsigned long long key;
	size_t len;
	void *data; // a copy of the profile, to tell apart keys that collide
	cmsUInt32Number in_format, out_format;
	conv c;
} entry;

static GMutex lock;       // protects cache and ncache
static entry cache[MAX_TRANSFORMS];
static int ncache;
static cmsHPROFILE srgb;  // libvips' built-in sRGB, opened once under lock
static int srgb_failed;

// formats picks lcms pixel formats for in, or returns -1.
static int formats(VipsImage *in, cmsUInt32Number *inf, cmsUInt32Number *outf) {
	int sixteen = in->BandFmt == VIPS_FORMAT_USHORT;
	if (in->Coding != VIPS_CODING_NONE || (in->BandFmt != VIPS_FORMAT_UCHAR && !sixteen)) return -1;
	if (in->Type == VIPS_INTERPRETATION_CMYK) {
		if (in->Bands != 4) return -1;
		*inf = sixteen ? TYPE_CMYK_16 : TYPE_CMYK_8;
		*outf = TYPE_RGB_8;
		return 0;
	}
	switch (in->Bands) {
	case 3:
		*inf = sixteen ? TYPE_RGB_16 : TYPE_RGB_8;
		*outf = TYPE_RGB_8;
		return 0;
	case 4:
		*inf = sixteen ? TYPE_RGBA_16 : TYPE_RGBA_8;
		*outf = TYPE_RGBA_8;
		return 0;
	}
	return -1;
}

// shaped counts the pixels the shaper converts (iiif_icc_shaped).
static guint64 shaped;

// run converts n pixels with c.
static void run(const conv *c, const void *in, void *out, int n) {
	if (c->sh) {
		__atomic_fetch_add(&shaped, (guint64)n, __ATOMIC_RELAXED);
		if (c->sixteen)
			iiif_shape16(c->sh, in, out, n);
		else
			iiif_shape(c->sh, in, out, n);
	} else if (c->cl)
		iiif_clut4(c->cl, in, out, n);
	else
		cmsDoTransform(c->tr, in, out, n);
}

static void free_conv(conv *c) {
	cmsDeleteTransform(c->tr);
	iiif_shaper_free(c->sh);
	iiif_clut4_free(c->cl);
}

static cmsHTRANSFORM build(const void *data, size_t len, cmsUInt32Number inf, cmsUInt32Number outf, shaper **sh,
                           clut4 **cl) {
	*sh = NULL;
	*cl = NULL;
	cmsHPROFILE p = cmsOpenProfileFromMem(data, len);
	if (p == NULL) {
		vips_error("iiif", "the embedded ICC profile cannot be read");
		return NULL;
	}
	cmsColorSpaceSignature want = T_COLORSPACE(inf) == PT_CMYK ? cmsSigCmykData : cmsSigRgbData;
	if (cmsGetColorSpace(p) != want) {
		cmsCloseProfile(p);
		vips_error("iiif", "the embedded ICC profile does not describe the image's colour space");
		return NULL;
	}
	// NOCACHE: lcms' one-pixel cache is per transform and not thread-safe;
	// without it cmsDoTransform may run on one transform from many threads.
	// COPY_ALPHA carries the alpha band through.
	cmsHTRANSFORM tr = cmsCreateTransform(p, inf, srgb, outf, INTENT_RELATIVE_COLORIMETRIC,
	                                      cmsFLAGS_NOCACHE | cmsFLAGS_COPY_ALPHA);
	if (tr != NULL && (inf == TYPE_RGB_8 || inf == TYPE_RGB_16) && outf == TYPE_RGB_8)
		*sh = iiif_shaper_new(p, srgb, inf == TYPE_RGB_16);
	if (tr != NULL && inf == TYPE_CMYK_8 && outf == TYPE_RGB_8) {
		// The same transform at 16 bits, to sample the grid from:
		// lcms builds the same table for it.
		cmsHTRANSFORM t16 = cmsCreateTransform(p, TYPE_CMYK_16, srgb, TYPE_RGB_16, INTENT_RELATIVE_COLORIMETRIC,
		                                       cmsFLAGS_NOCACHE);
		if (t16 != NULL) {
			*cl = iiif_clut4_new(t16);
			cmsDeleteTransform(t16);
		}
	}
	cmsCloseProfile(p);
	if (tr == NULL) vips_error("iiif", "no colour transform from the embedded ICC profile to sRGB");
	return tr;
}

// lookup_raw returns the conversion for profile data (key its hash) from
// pixels of lcms format inf, building it if needed. *owned says the caller
// must free it with free_conv and g_free (the cache is full).
static conv *lookup_raw(unsigned long long key, const void *data, size_t len, cmsUInt32Number inf,
                        cmsUInt32Number outf, int *owned) {
	*owned = 0;
	g_mutex_lock(&lock);
	for (int i = 0; i < ncache; i++) {
		entry *e = &cache[i];
		if (e->key == key && e->len == len && e->in_format == inf && memcmp(e->data, data, len) == 0) {
			conv *c = &e->c; // entries are never removed nor moved
			g_mutex_unlock(&lock);
			return c;
		}
	}
	// Built under the lock: a few milliseconds once per profile, and
	// concurrent first renders of one profile then build it once.
	if (srgb == NULL && !srgb_failed) {
		VipsBlob *b = NULL;
		if (vips_profile_load("srgb", &b, NULL) == 0) {
			size_t n;
			const void *d = vips_blob_get(b, &n);
			srgb = cmsOpenProfileFromMem(d, n);
			vips_area_unref(VIPS_AREA(b));
		}
		srgb_failed = srgb == NULL;
	}
	if (srgb == NULL) {
		g_mutex_unlock(&lock);
		vips_error("iiif", "libvips' sRGB profile cannot be loaded");
		return NULL;
	}
	shaper *sh;
	clut4 *cl;
	cmsHTRANSFORM tr = build(data, len, inf, outf, &sh, &cl);
	conv *c = NULL;
	if (tr != NULL) {
		if (ncache < MAX_TRANSFORMS) {
			cache[ncache] = (entry){key, len, g_memdup2(data, len), inf, outf, {tr, sh, cl, inf == TYPE_RGB_16}};
			c = &cache[ncache++].c;
		} else {
			c = g_new(conv, 1);
			*c = (conv){tr, sh, cl, inf == TYPE_RGB_16};
			*owned = 1;
		}
	}
	g_mutex_unlock(&lock);
	return c;
}

static void drop(conv *c) {
	free_conv(c);
	g_free(c);
}

// lookup returns the conversion for in's embedded profile.
static conv *lookup(VipsImage *in, unsigned long long key, int *owned) {
	*owned = 0;
	const void *data;
	size_t len;
	cmsUInt32Number inf, outf;
	if (vips_image_get_blob(in, VIPS_META_ICC_NAME, &data, &len)) return NULL;
	if (formats(in, &inf, &outf)) {
		vips_error("iiif", "no colour transform for %d bands of format %d", in->Bands, in->BandFmt);
		return NULL;
	}
	return lookup_raw(key, data, len, inf, outf, owned);
}

int iiif_icc_rgb8_rows(unsigned long long key, const void *profile, size_t len, unsigned char *pixels, int width,
                       int rows, int stride) {
	int owned;
	conv *c = lookup_raw(key, profile, len, TYPE_RGB_8, TYPE_RGB_8, &owned);
	if (c == NULL) return -1;
	// Contiguous rows are one run, not one per row (a run's last few
	// pixels cost more), unless the count would overflow. Both
	// implementations convert in place.
	if (width == stride && (size_t)width * rows <= INT_MAX)
		run(c, pixels, pixels, width * rows);
	else
		for (int y = 0; y < rows; y++) {
			unsigned char *row = pixels + (size_t)y * stride * 3;
			run(c, row, row, width);
		}
	if (owned) drop(c);
	return 0;
}

guint64 iiif_icc_shaped(void) { return __atomic_load_n(&shaped, __ATOMIC_RELAXED); }

int iiif_icc_with(unsigned long long key, const void *profile, size_t len, int layout, const void *in,
                  unsigned char *out, int n, int impl) {
	cmsUInt32Number inf = layout == IIIF_ICC_CMYK8 ? TYPE_CMYK_8 : layout == IIIF_ICC_RGB16 ? TYPE_RGB_16 : TYPE_RGB_8;
	int owned;
	conv *c = lookup_raw(key, profile, len, inf, TYPE_RGB_8, &owned);
	if (c == NULL) return -1;
	int rc = 0;
	if (impl < 0)
		cmsDoTransform(c->tr, in, out, n);
	else if (impl == IIIF_ICC_CLUT || impl == IIIF_ICC_CLUT_AVX2) {
		int s = impl == IIIF_ICC_CLUT ? IIIF_SHAPE_SCALAR : IIIF_SHAPE_AVX2;
		if (c->cl != NULL && iiif_shape_has(s))
			iiif_clut4_with(s, c->cl, in, out, n);
		else
			rc = -1;
	} else if (c->sh != NULL && c->sixteen && iiif_shape_has(impl))
		iiif_shape16_with(impl, c->sh, in, out, n);
	else if (c->sh != NULL && !c->sixteen && iiif_shape_has(impl))
		iiif_shape_with(impl, c->sh, in, out, n);
	else
		rc = -1;
	if (owned) drop(c);
	return rc;
}

int iiif_icc_check(VipsImage *in, unsigned long long key) {
	int owned;
	conv *c = lookup(in, key, &owned);
	if (c == NULL) return -1;
	if (owned) drop(c);
	return 0;
}

int iiif_icc_transforms(void) {
	g_mutex_lock(&lock);
	int n = ncache;
	g_mutex_unlock(&lock);
	return n;
}

static int gen(VipsRegion *out, void *seq, void *a, void *b, gboolean *stop) {
	VipsRegion *ir = (VipsRegion *)seq;
	const conv *c = (const conv *)b;
	VipsRect *r = &out->valid;
	if (vips_region_prepare(ir, r)) return -1;
	for (int y = 0; y < r->height; y++)
		run(c, VIPS_REGION_ADDR(ir, r->left, r->top + y), VIPS_REGION_ADDR(out, r->left, r->top + y), r->width);
	return 0;
}

static void free_owned(VipsImage *im, conv *c) { drop(c); }

int iiif_icc_convert(VipsImage *in, unsigned long long key, VipsImage **out) {
	int owned;
	conv *c = lookup(in, key, &owned);
	if (c == NULL) return -1;
	VipsImage *o = vips_image_new();
	if (owned) g_signal_connect(o, "close", G_CALLBACK(free_owned), c);
	if (vips_image_pipelinev(o, VIPS_DEMAND_STYLE_THINSTRIP, in, NULL)) {
		g_object_unref(o);
		return -1;
	}
	o->Bands = in->Type == VIPS_INTERPRETATION_CMYK ? 3 : in->Bands;
	o->BandFmt = VIPS_FORMAT_UCHAR;
	o->Type = VIPS_INTERPRETATION_sRGB;
	o->Coding = VIPS_CODING_NONE;
	// The pixels are sRGB now: the source's profile no longer describes them.
	vips_image_remove(o, VIPS_META_ICC_NAME);
	// o holds in for as long as it lives (the regions vips_start_one makes
	// on in hold it only while o is being computed).
	g_object_ref(in);
	vips_object_local(o, in);
	if (vips_image_generate(o, vips_start_one, gen, vips_stop_one, in, c)) {
		g_object_unref(o);
		return -1;
	}
	*out = o;
	return 0;
}
