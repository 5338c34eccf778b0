// clut.c: see clut.h.
#include <stdint.h>
#include <glib.h>
#include <lcms2.h>

#include "clut.h"

// GRID is lcms' grid for 4-channel inputs (cmsReasonableGridpointsByColorspace
// with no resolution flags): sampling the same nodes, the interpolation
// between them is lcms' own.
#define GRID 17

struct clut4 {
	uint16_t *table; // GRID^4 nodes × 3 outputs, the last input varying fastest
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
	cl->table = g_new(uint16_t, (size_t)nodes * 3);
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

void iiif_clut4(const clut4 *cl, const unsigned char *in, unsigned char *out, int n) {
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
