// shaper.c: see shaper.h.
#include <string.h>
#include <math.h>
#include <glib.h>
#include <lcms2.h>

#include "shaper.h"

// IIIF_NO_SIMD (CGO_CFLAGS=-DIIIF_NO_SIMD) builds the scalar code only,
// as on other CPUs: to test the fallback on this one.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(IIIF_NO_SIMD)
#define IIIF_X86 1
#include <immintrin.h>
#endif

// SHAPER_STEPS is the resolution of the output curve tables: lcms' own
// matrix-shaper optimisation uses 1.14 fixed point, 16384 steps too.
#define SHAPER_STEPS 16384

// lcms 2.14 already optimises a matrix-shaper transform (its matrix-shaper
// optimisation is on: cmsFLAGS_NOOPTIMIZE would cost 130-170 ns a pixel),
// but runs it through its generic formatters, 8-bit to 16-bit and back with
// calls per pixel: about 10 ns a pixel on the test machine, against about 5
// for the same arithmetic inline and scalar and 2-2.8 with AVX2
// (bench/RESULTS.md, "SIMD conversion"). Every one of the 16.7 million
// 8-bit colours converts to within one level of lcms' result, 99.2 % of the
// channels identically (checked for Adobe RGB, eciRGB v2, ProPhoto and
// Rec. 709 to libvips' sRGB; the test checks Adobe RGB).
// LIN16 is the number of steps of the 16-bit input curve tables, read
// with linear interpolation between steps: 4096 steps of 16 levels keep
// the result within one 8-bit level of lcms' (test) in 48 KB of tables,
// where 65,536 entries a channel would take 768 KB.
#define LIN16 4096

struct shaper {
	float lin[3][256]; // input curves, 0-1
	float *lin16;      // for 16-bit inputs: 3 × (LIN16 + 2) curve values, else NULL
	// The matrix times SHAPER_STEPS, row-major: scaling by a power of two
	// is exact, so m·rgb comes out already in table steps, bit for bit
	// what scaling the product would give, one multiply fewer a channel.
	float m[9];
	unsigned char out[3][SHAPER_STEPS + 1]; // output curves by linear value
	// The AVX2 path gathers 4 bytes at out[c][i] and keeps the low one:
	// at out[2][SHAPER_STEPS] that reads 3 bytes past the tables.
	unsigned char pad[3];
};

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

shaper *iiif_shaper_new(cmsHPROFILE in, cmsHPROFILE out, int sixteen) {
	if (!cmsIsMatrixShaper(in) || !cmsIsMatrixShaper(out)) return NULL;
	double ci[9], co[9], coi[9];
	if (colorants(in, ci) || colorants(out, co) || invert3(co, coi)) return NULL;
	shaper *sh = g_new0(shaper, 1);
	cmsTagSignature trc[3] = {cmsSigRedTRCTag, cmsSigGreenTRCTag, cmsSigBlueTRCTag};
	for (int c = 0; c < 3; c++) {
		cmsToneCurve *t = cmsReadTag(in, trc[c]), *u = cmsReadTag(out, trc[c]);
		cmsToneCurve *r = u ? cmsReverseToneCurve(u) : NULL;
		if (t == NULL || r == NULL) {
			if (r) cmsFreeToneCurve(r);
			iiif_shaper_free(sh);
			return NULL;
		}
		for (int i = 0; i < 256; i++) sh->lin[c][i] = cmsEvalToneCurveFloat(t, i / 255.0f);
		if (sixteen) {
			if (sh->lin16 == NULL) sh->lin16 = g_new(float, 3 * (LIN16 + 2));
			// Entry j is the curve at input j·16 (of 65535); the last
			// one repeats the end so that the interpolation of 65535
			// (at 4095 + 15/16) reads inside the table.
			float *l = sh->lin16 + c * (LIN16 + 2);
			for (int j = 0; j <= LIN16; j++) l[j] = cmsEvalToneCurveFloat(t, j * 16 > 65535 ? 1.0f : j * 16 / 65535.0f);
			l[LIN16 + 1] = l[LIN16];
		}
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
			sh->m[i * 3 + j] = (float)v * SHAPER_STEPS;
		}
	return sh;
}

void iiif_shaper_free(shaper *sh) {
	if (sh == NULL) return;
	g_free(sh->lin16);
	g_free(sh);
}

// step is the output table index of v (in steps), clamped (out of gamut)
// with integer compares, which compile to conditional moves: float compares
// became branches, mispredicted on every out-of-gamut pixel.
static inline int step(float v) {
	int i = (int)(v + 0.5f);
	i = i < 0 ? 0 : i;
	return i > SHAPER_STEPS ? SHAPER_STEPS : i;
}

// shape_scalar is the portable implementation. The sums are written out
// left to right, as the AVX2 path computes them: with no FMA in the
// baseline x86-64 target, nothing contracts them and the two agree to the
// bit (the test compares every 8-bit colour).
static void shape_scalar(const shaper *restrict sh, const unsigned char *in, unsigned char *out, int n) {
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

// lin16 is channel c's linear value of 16-bit input v.
static inline float lin16(const shaper *restrict sh, int c, unsigned v) {
	const float *l = sh->lin16 + c * (LIN16 + 2) + (v >> 4);
	return l[0] + (l[1] - l[0]) * ((v & 15) * (1.0f / 16));
}

static void shape16_scalar(const shaper *restrict sh, const unsigned short *in, unsigned char *out, int n) {
	const float m0 = sh->m[0], m1 = sh->m[1], m2 = sh->m[2], m3 = sh->m[3], m4 = sh->m[4], m5 = sh->m[5],
	            m6 = sh->m[6], m7 = sh->m[7], m8 = sh->m[8];
	for (int i = 0; i < n; i++, in += 3, out += 3) {
		float r = lin16(sh, 0, in[0]), g = lin16(sh, 1, in[1]), b = lin16(sh, 2, in[2]);
		int x = step(m0 * r + m1 * g + m2 * b), y = step(m3 * r + m4 * g + m5 * b), z = step(m6 * r + m7 * g + m8 * b);
		out[0] = sh->out[0][x];
		out[1] = sh->out[1][y];
		out[2] = sh->out[2][z];
	}
}

#ifdef IIIF_X86
// finish8 converts 8 pixels from linear light (r, g, b) and stores them as
// 24 bytes at out. Only AVX2 is enabled for it, not FMA: with FMA the
// compiler would fuse the multiplies and adds (one rounding instead of
// two) and a few colours would land one table step away from the scalar
// result; the cost is 6 instructions per 8 pixels, against 6 gathers.
__attribute__((target("avx2"))) static inline void finish8(const shaper *restrict sh, __m256 r, __m256 g, __m256 b,
                                                            unsigned char *out) {
	// RGB0 RGB0 RGB0 RGB0 to RGBRGBRGBRGB in each lane, then the two
	// lanes' 12 bytes side by side.
	const __m256i pack = _mm256_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1, //
	                                      0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1);
	const __m256i join = _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 3, 7);
	const __m256 m0 = _mm256_set1_ps(sh->m[0]), m1 = _mm256_set1_ps(sh->m[1]), m2 = _mm256_set1_ps(sh->m[2]),
	             m3 = _mm256_set1_ps(sh->m[3]), m4 = _mm256_set1_ps(sh->m[4]), m5 = _mm256_set1_ps(sh->m[5]),
	             m6 = _mm256_set1_ps(sh->m[6]), m7 = _mm256_set1_ps(sh->m[7]), m8 = _mm256_set1_ps(sh->m[8]);
	const __m256 half = _mm256_set1_ps(0.5f);
	const __m256i zero = _mm256_setzero_si256(), top = _mm256_set1_epi32(SHAPER_STEPS),
	              low = _mm256_set1_epi32(0xff);
	const int *o0 = (const int *)sh->out[0], *o1 = (const int *)sh->out[1], *o2 = (const int *)sh->out[2];

	__m256 x = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(m0, r), _mm256_mul_ps(m1, g)), _mm256_mul_ps(m2, b));
	__m256 y = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(m3, r), _mm256_mul_ps(m4, g)), _mm256_mul_ps(m5, b));
	__m256 z = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(m6, r), _mm256_mul_ps(m7, g)), _mm256_mul_ps(m8, b));
	// (int)(v + 0.5f), truncating as C does, then clamped.
	__m256i xi = _mm256_min_epi32(_mm256_max_epi32(_mm256_cvttps_epi32(_mm256_add_ps(x, half)), zero), top);
	__m256i yi = _mm256_min_epi32(_mm256_max_epi32(_mm256_cvttps_epi32(_mm256_add_ps(y, half)), zero), top);
	__m256i zi = _mm256_min_epi32(_mm256_max_epi32(_mm256_cvttps_epi32(_mm256_add_ps(z, half)), zero), top);
	__m256i ro = _mm256_and_si256(_mm256_i32gather_epi32(o0, xi, 1), low);
	__m256i go = _mm256_and_si256(_mm256_i32gather_epi32(o1, yi, 1), low);
	__m256i bo = _mm256_and_si256(_mm256_i32gather_epi32(o2, zi, 1), low);
	__m256i rgb = _mm256_or_si256(ro, _mm256_or_si256(_mm256_slli_epi32(go, 8), _mm256_slli_epi32(bo, 16)));
	rgb = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(rgb, pack), join);
	// 24 bytes exactly: in place, the next round's input starts at out + 24
	// (8-bit) or further on (16-bit) and must not be touched.
	_mm_storeu_si128((__m128i *)out, _mm256_castsi256_si128(rgb));
	_mm_storel_epi64((__m128i *)(out + 16), _mm256_extracti128_si256(rgb, 1));
}

// round8 converts 8 pixels (24 bytes) from in to out, which may be in. It
// reads 28 bytes from in: the second load takes 16 bytes from pixel 4.
__attribute__((target("avx2"))) static inline void round8(const shaper *restrict sh, const unsigned char *in,
                                                           unsigned char *out) {
	// Per 128-bit lane, 4 pixels (12 bytes): the R (G, B) bytes of each
	// pixel into the low byte of a 32-bit lane, zeros above.
	const __m256i pick_r = _mm256_setr_epi8(0, -1, -1, -1, 3, -1, -1, -1, 6, -1, -1, -1, 9, -1, -1, -1, //
	                                        0, -1, -1, -1, 3, -1, -1, -1, 6, -1, -1, -1, 9, -1, -1, -1);
	const __m256i pick_g = _mm256_setr_epi8(1, -1, -1, -1, 4, -1, -1, -1, 7, -1, -1, -1, 10, -1, -1, -1, //
	                                        1, -1, -1, -1, 4, -1, -1, -1, 7, -1, -1, -1, 10, -1, -1, -1);
	const __m256i pick_b = _mm256_setr_epi8(2, -1, -1, -1, 5, -1, -1, -1, 8, -1, -1, -1, 11, -1, -1, -1, //
	                                        2, -1, -1, -1, 5, -1, -1, -1, 8, -1, -1, -1, 11, -1, -1, -1);
	__m256i px = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)in)),
	                                     _mm_loadu_si128((const __m128i *)(in + 12)), 1);
	__m256 r = _mm256_i32gather_ps(sh->lin[0], _mm256_shuffle_epi8(px, pick_r), 4);
	__m256 g = _mm256_i32gather_ps(sh->lin[1], _mm256_shuffle_epi8(px, pick_g), 4);
	__m256 b = _mm256_i32gather_ps(sh->lin[2], _mm256_shuffle_epi8(px, pick_b), 4);
	finish8(sh, r, g, b, out);
}

// lin16x8 is lin16 on 8 lanes of 16-bit samples v, the same float
// operations in the same order.
__attribute__((target("avx2"))) static inline __m256 lin16x8(const shaper *restrict sh, int c, __m256i v) {
	const float *l = sh->lin16 + c * (LIN16 + 2);
	__m256i j = _mm256_srli_epi32(v, 4);
	__m256 l0 = _mm256_i32gather_ps(l, j, 4), l1 = _mm256_i32gather_ps(l + 1, j, 4);
	__m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_and_si256(v, _mm256_set1_epi32(15))), _mm256_set1_ps(1.0f / 16));
	return _mm256_add_ps(l0, _mm256_mul_ps(_mm256_sub_ps(l1, l0), f));
}

// round16 converts 8 16-bit pixels (48 bytes) to 24 bytes at out, which
// may be in. Its gathers read 50 bytes from in.
__attribute__((target("avx2"))) static inline void round16(const shaper *restrict sh, const unsigned short *in,
                                                            unsigned char *out) {
	const __m256i at = _mm256_setr_epi32(0, 3, 6, 9, 12, 15, 18, 21), low = _mm256_set1_epi32(0xffff);
	const int *p = (const int *)in;
	__m256i r = _mm256_and_si256(_mm256_i32gather_epi32(p, at, 2), low);
	__m256i g = _mm256_and_si256(_mm256_i32gather_epi32((const int *)(in + 1), at, 2), low);
	__m256i b = _mm256_and_si256(_mm256_i32gather_epi32((const int *)(in + 2), at, 2), low);
	finish8(sh, lin16x8(sh, 0, r), lin16x8(sh, 1, g), lin16x8(sh, 2, b), out);
}

__attribute__((target("avx2"))) static void shape16_avx2(const shaper *restrict sh, const unsigned short *in,
                                                          unsigned char *out, int n) {
	int i = 0;
	// A round reads 2 bytes past its 48: 9 pixels left.
	for (; i + 9 <= n; i += 8, in += 24, out += 24) round16(sh, in, out);
	shape16_scalar(sh, in, out, n - i);
}

// shape_avx2 converts 8 pixels a round. The last up to 9 pixels, which a
// round cannot read in place without running past them, go through a
// buffer: the scalar loop for them cost as much as the rest of a 256-pixel
// row.
__attribute__((target("avx2"))) static void shape_avx2(const shaper *restrict sh, const unsigned char *in,
                                                        unsigned char *out, int n) {
	int i = 0;
	for (; i + 10 <= n; i += 8, in += 24, out += 24) round8(sh, in, out);
	int left = n - i; // 0-9
	if (left == 0) return;
	unsigned char buf[2 * 24 + 4]; // two rounds, the second reading 28 bytes
	memcpy(buf, in, 3 * left);
	memset(buf + 3 * left, 0, sizeof buf - 3 * left);
	for (int j = 0; j < left; j += 8) round8(sh, buf + 3 * j, buf + 3 * j);
	memcpy(out, buf, 3 * left);
}
#endif

int iiif_shape_has(int impl) {
	switch (impl) {
	case IIIF_SHAPE_SCALAR:
		return 1;
#ifdef IIIF_X86
	case IIIF_SHAPE_AVX2:
		return __builtin_cpu_supports("avx2");
#endif
	}
	return 0;
}

int iiif_shape_best(void) {
	static int best = -1; // racy but idempotent: every thread computes the same value
	int b = __atomic_load_n(&best, __ATOMIC_RELAXED);
	if (b < 0) {
		b = iiif_shape_has(IIIF_SHAPE_AVX2) ? IIIF_SHAPE_AVX2 : IIIF_SHAPE_SCALAR;
		__atomic_store_n(&best, b, __ATOMIC_RELAXED);
	}
	return b;
}

void iiif_shape_with(int impl, const shaper *sh, const unsigned char *in, unsigned char *out, int n) {
#ifdef IIIF_X86
	if (impl == IIIF_SHAPE_AVX2) {
		shape_avx2(sh, in, out, n);
		return;
	}
#else
	(void)impl;
#endif
	shape_scalar(sh, in, out, n);
}

void iiif_shape(const shaper *sh, const unsigned char *in, unsigned char *out, int n) {
	iiif_shape_with(iiif_shape_best(), sh, in, out, n);
}

void iiif_shape16_with(int impl, const shaper *sh, const unsigned short *in, unsigned char *out, int n) {
#ifdef IIIF_X86
	if (impl == IIIF_SHAPE_AVX2) {
		shape16_avx2(sh, in, out, n);
		return;
	}
#else
	(void)impl;
#endif
	shape16_scalar(sh, in, out, n);
}

void iiif_shape16(const shaper *sh, const unsigned short *in, unsigned char *out, int n) {
	iiif_shape16_with(iiif_shape_best(), sh, in, out, n);
}
