// clut.c: see clut.h.
#include <stdint.h>
#include <glib.h>
#include <lcms2.h>

#include "clut.h"
#include "shaper.h"

// IIIF_NO_SIMD (CGO_CFLAGS=-DIIIF_NO_SIMD) builds the scalar code only,
// as on other CPUs: to test the fallback on this one.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(IIIF_NO_SIMD)
#define IIIF_X86 1
#include <immintrin.h>
#endif

// GRID is lcms' grid for 4-channel inputs (cmsReasonableGridpointsByColorspace
// with no resolution flags): sampling the same nodes, the interpolation
// between them is lcms' own.
#define GRID 17

struct clut4 {
	// GRID^4 nodes × 3 outputs, the last input varying fastest, and 2
	// entries of padding: the AVX2 path reads a node's third output as
	// the low half of 4 bytes.
	uint16_t *table;
	// Per input channel and 8-bit value: the offset (in table entries) of
	// the node at or below it, of the next node (0 at the last one, as
	// lcms), and the fixed-point fraction between them.
	int32_t lo[4][256], next[4][256];
	int32_t rest[4][256];
};

// The 16.16 fixed-point helpers of lcms (lcms2_internal.h).
static inline int32_t to_fixed_domain(int32_t a) { return a + ((a + 0x7fff) / 0xffff); }
static inline int32_t round_fixed_to_int(int32_t x) { return (x + 0x8000) >> 16; }
static inline uint16_t linear_interp(int32_t a, int32_t l, int32_t h) {
	uint32_t dif = (uint32_t)(h - l) * a + 0x8000;
	dif = (dif >> 16) + l;
	return (uint16_t)dif;
}

clut4 *iiif_clut4_new(cmsHTRANSFORM tr16) {
	const int nodes = GRID * GRID * GRID * GRID;
	clut4 *cl = g_new0(clut4, 1);
	cl->table = g_new0(uint16_t, (size_t)nodes * 3 + 2);
	uint16_t *in = g_new(uint16_t, (size_t)nodes * 4);
	uint16_t q[GRID];
	for (int i = 0; i < GRID; i++) q[i] = (uint16_t)(i * 65535.0 / (GRID - 1) + 0.5); // _cmsQuantizeVal
	for (int i = 0; i < nodes; i++) {
		uint16_t *p = in + (size_t)i * 4;
		p[0] = q[i / (GRID * GRID * GRID)];
		p[1] = q[i / (GRID * GRID) % GRID];
		p[2] = q[i / GRID % GRID];
		p[3] = q[i % GRID];
	}
	cmsDoTransform(tr16, in, cl->table, nodes);
	g_free(in);
	// lcms' opta: the stride of input c is 3 × GRID^(3-c).
	int32_t stride[4] = {3 * GRID * GRID * GRID, 3 * GRID * GRID, 3 * GRID, 3};
	for (int c = 0; c < 4; c++)
		for (int v = 0; v < 256; v++) {
			int32_t f = to_fixed_domain(v * 257 * (GRID - 1)); // 8 to 16 bit, as lcms
			cl->lo[c][v] = (f >> 16) * stride[c];
			cl->next[c][v] = v == 255 ? 0 : stride[c];
			cl->rest[c][v] = f & 0xffff;
		}
	return cl;
}

void iiif_clut4_free(clut4 *cl) {
	if (cl == NULL) return;
	g_free(cl->table);
	g_free(cl);
}

// sort2 orders two (fraction, axis offset) pairs by fraction, largest
// first, with conditional moves: which of the six tetrahedra a pixel falls
// in is as good as random on scanned pixels, and branches on it were
// mispredicted most of the time (lcms' own code branches: 72 ns a pixel).
static inline void sort2(int32_t *ra, int32_t *oa, int32_t *rb, int32_t *ob) {
	int32_t r1 = *ra, o1 = *oa, r2 = *rb, o2 = *ob;
	int swap = r1 < r2;
	*ra = swap ? r2 : r1;
	*oa = swap ? o2 : o1;
	*rb = swap ? r1 : r2;
	*ob = swap ? o1 : o2;
}

// slice interpolates the 3-D slice whose X0 Y0 Z0 corner is t at the
// point the sorted fractions r1 ≥ r2 ≥ r3 (along axes whose node strides
// are a1, a2, a3) describe, into o[3]: lcms' tetrahedral interpolation
// (Eval4Inputs), whose six cases are all c0 + (t[a1] - c0)·r1 +
// (t[a1+a2] - t[a1])·r2 + (t[a1+a2+a3] - t[a1+a2])·r3. Where fractions
// tie, the tetrahedra that share the tie give the same value.
static inline void slice(const uint16_t *t, int32_t a1, int32_t a2, int32_t a3, int32_t r1, int32_t r2, int32_t r3,
                         int32_t o[3]) {
	const uint16_t *p1 = t + a1, *p2 = p1 + a2, *p3 = p2 + a3;
	for (int ch = 0; ch < 3; ch++) {
		int32_t c0 = t[ch], v1 = p1[ch], v2 = p2[ch], v3 = p3[ch];
		int32_t r = (v1 - c0) * r1 + (v2 - v1) * r2 + (v3 - v2) * r3;
		o[ch] = (uint16_t)(c0 + round_fixed_to_int(to_fixed_domain(r)));
	}
}

static void clut_scalar(const clut4 *cl, const unsigned char *in, unsigned char *out, int n) {
	for (int i = 0; i < n; i++, in += 4, out += 3) {
		int c = in[0], m = in[1], y = in[2], k = in[3];
		const uint16_t *t = cl->table + cl->lo[0][c] + cl->lo[1][m] + cl->lo[2][y] + cl->lo[3][k];
		int32_t r1 = cl->rest[1][m], r2 = cl->rest[2][y], r3 = cl->rest[3][k];
		int32_t a1 = cl->next[1][m], a2 = cl->next[2][y], a3 = cl->next[3][k];
		sort2(&r1, &a1, &r2, &a2);
		sort2(&r2, &a2, &r3, &a3);
		sort2(&r1, &a1, &r2, &a2);
		int32_t a[3], b[3];
		slice(t, a1, a2, a3, r1, r2, r3, a);
		slice(t + cl->next[0][c], a1, a2, a3, r1, r2, r3, b);
		int32_t rk = cl->rest[0][c];
		// All four input bytes are read before the three are written: in
		// place, out trails in.
		for (int ch = 0; ch < 3; ch++) {
			uint32_t v = linear_interp(rk, a[ch], b[ch]);
			out[ch] = (unsigned char)((v * 65281 + 8388608) >> 24); // 16 to 8 bit, as lcms
		}
	}
}

#ifdef IIIF_X86
// The AVX2 path: 8 pixels a round, lane by lane the scalar arithmetic
// above (the test compares the two on 22 million channels). Per-value
// tables become arithmetic (f below), node values come from gathers, two
// per node: 4 bytes at the node give its first two outputs, 4 bytes two
// entries on its third.

// fixed8 is to_fixed_domain on 8 lanes. C's division truncates; for |x| <
// 2^31, |x| / 65535 rounded down is (|x| + (|x| >> 16) + 1) >> 16, given
// x's sign back.
__attribute__((target("avx2"))) static inline __m256i fixed8(__m256i a) {
	__m256i x = _mm256_add_epi32(a, _mm256_set1_epi32(0x7fff));
	__m256i ax = _mm256_abs_epi32(x);
	__m256i q = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(ax, _mm256_srli_epi32(ax, 16)), _mm256_set1_epi32(1)), 16);
	return _mm256_add_epi32(a, _mm256_sign_epi32(q, x));
}

// sort8 is sort2 on 8 lanes.
__attribute__((target("avx2"))) static inline void sort8(__m256i *ra, __m256i *oa, __m256i *rb, __m256i *ob) {
	__m256i swap = _mm256_cmpgt_epi32(*rb, *ra);
	__m256i r1 = _mm256_max_epi32(*ra, *rb), r2 = _mm256_min_epi32(*ra, *rb);
	__m256i o1 = _mm256_blendv_epi8(*oa, *ob, swap), o2 = _mm256_blendv_epi8(*ob, *oa, swap);
	*ra = r1, *rb = r2, *oa = o1, *ob = o2;
}

// node8 gathers the three outputs of the nodes at idx (in table entries).
__attribute__((target("avx2"))) static inline void node8(const uint16_t *table, __m256i idx, __m256i v[3]) {
	const __m256i low = _mm256_set1_epi32(0xffff);
	__m256i g01 = _mm256_i32gather_epi32((const int *)table, idx, 2);
	__m256i g2 = _mm256_i32gather_epi32((const int *)table, _mm256_add_epi32(idx, _mm256_set1_epi32(2)), 2);
	v[0] = _mm256_and_si256(g01, low);
	v[1] = _mm256_srli_epi32(g01, 16);
	v[2] = _mm256_and_si256(g2, low);
}

// slice8 is slice on 8 lanes: t the corner, a1-a3 the sorted axes' node
// strides, r1-r3 the sorted fractions.
__attribute__((target("avx2"))) static inline void slice8(const uint16_t *table, __m256i t, __m256i a1, __m256i a2,
                                                           __m256i a3, __m256i r1, __m256i r2, __m256i r3,
                                                           __m256i o[3]) {
	__m256i p1 = _mm256_add_epi32(t, a1), p2 = _mm256_add_epi32(p1, a2), p3 = _mm256_add_epi32(p2, a3);
	__m256i c0[3], v1[3], v2[3], v3[3];
	node8(table, t, c0);
	node8(table, p1, v1);
	node8(table, p2, v2);
	node8(table, p3, v3);
	for (int ch = 0; ch < 3; ch++) {
		__m256i r = _mm256_add_epi32(
		    _mm256_add_epi32(_mm256_mullo_epi32(_mm256_sub_epi32(v1[ch], c0[ch]), r1),
		                     _mm256_mullo_epi32(_mm256_sub_epi32(v2[ch], v1[ch]), r2)),
		    _mm256_mullo_epi32(_mm256_sub_epi32(v3[ch], v2[ch]), r3));
		__m256i d = _mm256_srai_epi32(_mm256_add_epi32(fixed8(r), _mm256_set1_epi32(0x8000)), 16);
		o[ch] = _mm256_and_si256(_mm256_add_epi32(c0[ch], d), _mm256_set1_epi32(0xffff));
	}
}

__attribute__((target("avx2"))) static void clut_avx2(const clut4 *cl, const unsigned char *in, unsigned char *out,
                                                       int n) {
	const __m256i ff = _mm256_set1_epi32(0xff), low = _mm256_set1_epi32(0xffff);
	const __m256i stride[4] = {_mm256_set1_epi32(3 * GRID * GRID * GRID), _mm256_set1_epi32(3 * GRID * GRID),
	                           _mm256_set1_epi32(3 * GRID), _mm256_set1_epi32(3)};
	// As in shaper.c's round8: RGB0 × 4 to RGBRGBRGBRGB per lane, the two
	// lanes' 12 bytes side by side.
	const __m256i pack = _mm256_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1, //
	                                      0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1);
	const __m256i join = _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 3, 7);
	int i = 0;
	// Reads 32 bytes, writes 24 behind them: in place, out trails in.
	for (; i + 8 <= n; i += 8, in += 32, out += 24) {
		__m256i px = _mm256_loadu_si256((const __m256i *)in);
		__m256i lo[4], nx[4], rs[4];
		for (int c = 0; c < 4; c++) {
			__m256i v = c == 3 ? _mm256_srli_epi32(px, 24) : _mm256_and_si256(_mm256_srli_epi32(px, 8 * c), ff);
			// f = to_fixed_domain(v · 257 · 16), as iiif_clut4_new.
			__m256i f = fixed8(_mm256_add_epi32(_mm256_slli_epi32(v, 12), _mm256_slli_epi32(v, 4)));
			lo[c] = _mm256_mullo_epi32(_mm256_srli_epi32(f, 16), stride[c]);
			rs[c] = _mm256_and_si256(f, low);
			nx[c] = _mm256_andnot_si256(_mm256_cmpeq_epi32(v, ff), stride[c]);
		}
		__m256i t = _mm256_add_epi32(_mm256_add_epi32(lo[0], lo[1]), _mm256_add_epi32(lo[2], lo[3]));
		__m256i r1 = rs[1], r2 = rs[2], r3 = rs[3], a1 = nx[1], a2 = nx[2], a3 = nx[3];
		sort8(&r1, &a1, &r2, &a2);
		sort8(&r2, &a2, &r3, &a3);
		sort8(&r1, &a1, &r2, &a2);
		__m256i a[3], b[3], o[3];
		slice8(cl->table, t, a1, a2, a3, r1, r2, r3, a);
		slice8(cl->table, _mm256_add_epi32(t, nx[0]), a1, a2, a3, r1, r2, r3, b);
		for (int ch = 0; ch < 3; ch++) {
			// linear_interp, then 16 to 8 bit.
			__m256i dif = _mm256_add_epi32(_mm256_mullo_epi32(_mm256_sub_epi32(b[ch], a[ch]), rs[0]),
			                               _mm256_set1_epi32(0x8000));
			__m256i v = _mm256_and_si256(_mm256_add_epi32(_mm256_srli_epi32(dif, 16), a[ch]), low);
			o[ch] = _mm256_srli_epi32(
			    _mm256_add_epi32(_mm256_mullo_epi32(v, _mm256_set1_epi32(65281)), _mm256_set1_epi32(8388608)), 24);
		}
		__m256i rgb = _mm256_or_si256(o[0], _mm256_or_si256(_mm256_slli_epi32(o[1], 8), _mm256_slli_epi32(o[2], 16)));
		rgb = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(rgb, pack), join);
		_mm_storeu_si128((__m128i *)out, _mm256_castsi256_si128(rgb));
		_mm_storel_epi64((__m128i *)(out + 16), _mm256_extracti128_si256(rgb, 1));
	}
	clut_scalar(cl, in, out, n - i);
}
#endif

void iiif_clut4_with(int impl, const clut4 *cl, const unsigned char *in, unsigned char *out, int n) {
#ifdef IIIF_X86
	if (impl == IIIF_SHAPE_AVX2) {
		clut_avx2(cl, in, out, n);
		return;
	}
#else
	(void)impl;
#endif
	clut_scalar(cl, in, out, n);
}

void iiif_clut4(const clut4 *cl, const unsigned char *in, unsigned char *out, int n) {
	iiif_clut4_with(iiif_shape_best(), cl, in, out, n);
}
