// colour.c: see colour.h.
#include <string.h>
#include <math.h>
#include <lcms2.h>
#include <vips/vips.h>

#include "colour.h"

// MAX_TRANSFORMS bounds the cache: sites hold a handful of distinct
// profiles (a few per scanner or workflow). An 8-bit transform is a
// precomputed grid of some 100-300 KB. Past the bound a transform is built
// per pipeline and freed with it: correct, only slower.
#define MAX_TRANSFORMS 64

// SHAPER_STEPS is the resolution of the output curve tables: lcms' own
// matrix-shaper optimisation uses 1.14 fixed point, 16384 steps too.
#define SHAPER_STEPS 16384

// shaper is an 8-bit RGB to 8-bit RGB conversion between two matrix-shaper
// profiles (Adobe RGB, eciRGB, ProPhoto, Display P3 and sRGB itself are
// all such): a tone curve per channel to linear light, one 3 × 3 matrix
// (PCS to PCS, both D50), the inverse tone curves of sRGB. lcms 2.14
// already optimises this transform (its matrix-shaper optimisation is on:
// cmsFLAGS_NOOPTIMIZE would cost 130-170 ns a pixel), but runs it through
// its generic formatters, 8-bit to 16-bit and back with calls per pixel:
// 10-14 ns a pixel on the test machine, against 6.6-9 ns for the same
// arithmetic inline (a 256-px tile of scan-like pixels, bench/RESULTS.md).
// Every one of the 16.7 million 8-bit colours converts to within one level
// of lcms' result, 99 % of them identically (checked for Adobe RGB, eciRGB
// v2, ProPhoto and Rec. 709 to libvips' sRGB).
typedef struct {
	float lin[3][256];                      // input curves, 0-1
	float m[9];                             // row-major
	unsigned char out[3][SHAPER_STEPS + 1]; // output curves by linear value
} shaper;

typedef struct {
	cmsHTRANSFORM tr;
	shaper *sh; // NULL: use tr
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

static int colorants(cmsHPROFILE p, double c[9]) {
	cmsCIEXYZ *r = cmsReadTag(p, cmsSigRedColorantTag), *g = cmsReadTag(p, cmsSigGreenColorantTag),
	          *b = cmsReadTag(p, cmsSigBlueColorantTag);
	if (r == NULL || g == NULL || b == NULL) return -1;
	double v[9] = {r->X, g->X, b->X, r->Y, g->Y, b->Y, r->Z, g->Z, b->Z}; // colorants as columns
	memcpy(c, v, sizeof v);
	return 0;
}

static int invert3(const double a[9], double o[9]) {
	double det = a[0] * (a[4] * a[8] - a[5] * a[7]) - a[1] * (a[3] * a[8] - a[5] * a[6]) +
	             a[2] * (a[3] * a[7] - a[4] * a[6]);
	if (fabs(det) < 1e-12) return -1;
	o[0] = (a[4] * a[8] - a[5] * a[7]) / det;
	o[1] = (a[2] * a[7] - a[1] * a[8]) / det;
	o[2] = (a[1] * a[5] - a[2] * a[4]) / det;
	o[3] = (a[5] * a[6] - a[3] * a[8]) / det;
	o[4] = (a[0] * a[8] - a[2] * a[6]) / det;
	o[5] = (a[2] * a[3] - a[0] * a[5]) / det;
	o[6] = (a[3] * a[7] - a[4] * a[6]) / det;
	o[7] = (a[1] * a[6] - a[0] * a[7]) / det;
	o[8] = (a[0] * a[4] - a[1] * a[3]) / det;
	return 0;
}

// make_shaper builds the shaper from in to out, or returns NULL when either
// is not a matrix-shaper profile (lcms then does the work).
static shaper *make_shaper(cmsHPROFILE in, cmsHPROFILE out) {
	if (!cmsIsMatrixShaper(in) || !cmsIsMatrixShaper(out)) return NULL;
	double ci[9], co[9], coi[9];
	if (colorants(in, ci) || colorants(out, co) || invert3(co, coi)) return NULL;
	shaper *sh = g_new(shaper, 1);
	cmsTagSignature trc[3] = {cmsSigRedTRCTag, cmsSigGreenTRCTag, cmsSigBlueTRCTag};
	for (int c = 0; c < 3; c++) {
		cmsToneCurve *t = cmsReadTag(in, trc[c]), *u = cmsReadTag(out, trc[c]);
		cmsToneCurve *r = u ? cmsReverseToneCurve(u) : NULL;
		if (t == NULL || r == NULL) {
			g_free(sh);
			return NULL;
		}
		for (int i = 0; i < 256; i++) sh->lin[c][i] = cmsEvalToneCurveFloat(t, i / 255.0f);
		for (int i = 0; i <= SHAPER_STEPS; i++) {
			float v = cmsEvalToneCurveFloat(r, (float)i / SHAPER_STEPS) * 255.0f + 0.5f;
			sh->out[c][i] = v < 0 ? 0 : v > 255 ? 255 : (unsigned char)v;
		}
		cmsFreeToneCurve(r);
	}
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 3; j++) {
			double v = 0;
			for (int k = 0; k < 3; k++) v += coi[i * 3 + k] * ci[k * 3 + j];
			sh->m[i * 3 + j] = (float)v;
		}
	return sh;
}

// step is the output table index of linear value v, clamped (out of gamut)
// with integer compares, which compile to conditional moves: float compares
// became branches, mispredicted on every out-of-gamut pixel.
static inline int step(float v) {
	int i = (int)(v * SHAPER_STEPS + 0.5f);
	i = i < 0 ? 0 : i;
	return i > SHAPER_STEPS ? SHAPER_STEPS : i;
}

// shape converts n RGB pixels from in to out (which may be in).
static void shape(const shaper *restrict sh, const unsigned char *in, unsigned char *out, int n) {
	const float m0 = sh->m[0], m1 = sh->m[1], m2 = sh->m[2], m3 = sh->m[3], m4 = sh->m[4], m5 = sh->m[5],
	            m6 = sh->m[6], m7 = sh->m[7], m8 = sh->m[8];
	for (int i = 0; i < n; i++, in += 3, out += 3) {
		float r = sh->lin[0][in[0]], g = sh->lin[1][in[1]], b = sh->lin[2][in[2]];
		int x = step(m0 * r + m1 * g + m2 * b), y = step(m3 * r + m4 * g + m5 * b), z = step(m6 * r + m7 * g + m8 * b);
		out[0] = sh->out[0][x];
		out[1] = sh->out[1][y];
		out[2] = sh->out[2][z];
	}
}

// run converts n pixels with c.
static void run(const conv *c, const void *in, void *out, int n) {
	if (c->sh)
		shape(c->sh, in, out, n);
	else
		cmsDoTransform(c->tr, in, out, n);
}

static void free_conv(conv *c) {
	cmsDeleteTransform(c->tr);
	g_free(c->sh);
}

static cmsHTRANSFORM build(const void *data, size_t len, cmsUInt32Number inf, cmsUInt32Number outf, shaper **sh) {
	*sh = NULL;
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
	if (tr != NULL && inf == TYPE_RGB_8 && outf == TYPE_RGB_8) *sh = make_shaper(p, srgb);
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
	cmsHTRANSFORM tr = build(data, len, inf, outf, &sh);
	conv *c = NULL;
	if (tr != NULL) {
		if (ncache < MAX_TRANSFORMS) {
			cache[ncache] = (entry){key, len, g_memdup2(data, len), inf, outf, {tr, sh}};
			c = &cache[ncache++].c;
		} else {
			c = g_new(conv, 1);
			*c = (conv){tr, sh};
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
                       int rows) {
	int owned;
	conv *c = lookup_raw(key, profile, len, TYPE_RGB_8, TYPE_RGB_8, &owned);
	if (c == NULL) return -1;
	for (int y = 0; y < rows; y++) {
		unsigned char *row = pixels + (size_t)y * width * 3;
		run(c, row, row, width); // both convert in place when the formats match
	}
	if (owned) drop(c);
	return 0;
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
