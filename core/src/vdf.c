/* SPDX-License-Identifier: MIT */
/*
 * Wesolowski VDF over the RSA-2048 challenge modulus (docs/vdf.md).
 *
 * The sequential part is T modular squarings of a 2048-bit number, in
 * Montgomery form from x to x^(2^T). Three implementations of that loop,
 * the fastest the CPU has (checked at run time; WORKPROOF_VDF_PATH caps it):
 *   ifma      AVX-512 IFMA almost-Montgomery multiplication on 40 digits of
 *             52 bits in five zmm registers (~2.4x OpenSSL's BN chain here);
 *   adx       GMP's mpn_sqr + a word-by-word REDC in inline MULX/ADCX/ADOX
 *             with two carry chains (~1.6x the generic addmul_1 of Debian's
 *             non-"fat" libgmp);
 *   portable  mpn_sqr + 32 x mpn_addmul_1 (GMP's redc_1 scheme).
 * The rest of the Montgomery code (proof products, conversions) uses the
 * adx or portable REDC; everything off the hot path (hashing to the group,
 * the prime, verification) uses mpz. docs/vdf.md has the figures.
 *
 * No global mutable state: the Montgomery constants are derived per call
 * (a few microseconds) and all buffers live on the caller's stack or in
 * per-call allocations, so concurrent evaluations never share anything.
 */
#include <stdlib.h>
#include <string.h>

#include <gmp.h>

#include "workproof/common.h"
#include "workproof/hash.h"
#include "workproof/vdf.h"

#define NL 32                          /* limbs of N */
#define H2G_BLOCKS 9                   /* 9 x 32 bytes = 2304 bits >= 2048 + 256 */
#define DEFAULT_EVERY 65536
#define DEFAULT_MEM ((size_t)16 << 20)
#define MAX_K 24                       /* bucket window bound (2^24 buckets) */

_Static_assert(GMP_NUMB_BITS == 64 && GMP_NAIL_BITS == 0,
	       "the limb code assumes 64-bit GMP limbs without nails");

/* The RSA-2048 challenge number (RSA Laboratories, 1991): 617 decimal
 * digits, 2048 bits. spec/unit/vdf_spec.lua pins its SHA-256 and decimal. */
const uint8_t wp_vdf_modulus[WP_VDF_BYTES] = {
	0xc7, 0x97, 0x0c, 0xee, 0xdc, 0xc3, 0xb0, 0x75, 0x44, 0x90, 0x20, 0x1a, 0x7a, 0xa6, 0x13, 0xcd,
	0x73, 0x91, 0x10, 0x81, 0xc7, 0x90, 0xf5, 0xf1, 0xa8, 0x72, 0x6f, 0x46, 0x35, 0x50, 0xbb, 0x5b,
	0x7f, 0xf0, 0xdb, 0x8e, 0x1e, 0xa1, 0x18, 0x9e, 0xc7, 0x2f, 0x93, 0xd1, 0x65, 0x00, 0x11, 0xbd,
	0x72, 0x1a, 0xee, 0xac, 0xc2, 0xac, 0xde, 0x32, 0xa0, 0x41, 0x07, 0xf0, 0x64, 0x8c, 0x28, 0x13,
	0xa3, 0x1f, 0x5b, 0x0b, 0x77, 0x65, 0xff, 0x8b, 0x44, 0xb4, 0xb6, 0xff, 0xc9, 0x33, 0x84, 0xb6,
	0x46, 0xeb, 0x09, 0xc7, 0xcf, 0x5e, 0x85, 0x92, 0xd4, 0x0e, 0xa3, 0x3c, 0x80, 0x03, 0x9f, 0x35,
	0xb4, 0xf1, 0x4a, 0x04, 0xb5, 0x1f, 0x7b, 0xfd, 0x78, 0x1b, 0xe4, 0xd1, 0x67, 0x31, 0x64, 0xba,
	0x8e, 0xb9, 0x91, 0xc2, 0xc4, 0xd7, 0x30, 0xbb, 0xbe, 0x35, 0xf5, 0x92, 0xbd, 0xef, 0x52, 0x4a,
	0xf7, 0xe8, 0xda, 0xef, 0xd2, 0x6c, 0x66, 0xfc, 0x02, 0xc4, 0x79, 0xaf, 0x89, 0xd6, 0x4d, 0x37,
	0x3f, 0x44, 0x27, 0x09, 0x43, 0x9d, 0xe6, 0x6c, 0xeb, 0x95, 0x5f, 0x3e, 0xa3, 0x7d, 0x51, 0x59,
	0xf6, 0x13, 0x58, 0x09, 0xf8, 0x53, 0x34, 0xb5, 0xcb, 0x18, 0x13, 0xad, 0xdc, 0x80, 0xcd, 0x05,
	0x60, 0x9f, 0x10, 0xac, 0x6a, 0x95, 0xad, 0x65, 0x87, 0x2c, 0x90, 0x95, 0x25, 0xbd, 0xad, 0x32,
	0xbc, 0x72, 0x95, 0x92, 0x64, 0x29, 0x20, 0xf2, 0x4c, 0x61, 0xdc, 0x5b, 0x3c, 0x3b, 0x79, 0x23,
	0xe5, 0x6b, 0x16, 0xa4, 0xd9, 0xd3, 0x73, 0xd8, 0x72, 0x1f, 0x24, 0xa3, 0xfc, 0x0f, 0x1b, 0x31,
	0x31, 0xf5, 0x56, 0x15, 0x17, 0x28, 0x66, 0xbc, 0xcc, 0x30, 0xf9, 0x50, 0x54, 0xc8, 0x24, 0xe7,
	0x33, 0xa5, 0xeb, 0x68, 0x17, 0xf7, 0xbc, 0x16, 0x39, 0x9d, 0x48, 0xc6, 0x36, 0x1c, 0xc7, 0xe5,
};

static const char H2G_TAG[] = "workproof-vdf-h2g";
static const char H2P_TAG[] = "workproof-vdf-h2p";
#define TAG_LEN 17
__extension__ typedef unsigned __int128 u128;
_Static_assert(sizeof(H2G_TAG) == TAG_LEN + 1 && sizeof(H2P_TAG) == TAG_LEN + 1,
	       "domain tags are 17 bytes, no NUL");

/* ------------------------------------------------------------------------ */
/* bytes, limbs, mpz                                                         */

static void store_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* 256 bytes big-endian <-> 32 limbs little-endian */
static void limbs_from_bytes(mp_limb_t r[NL], const uint8_t b[WP_VDF_BYTES])
{
	for (int i = 0; i < NL; i++)
		r[i] = wp_load_be64(b + WP_VDF_BYTES - 8 * (i + 1));
}

static void limbs_to_bytes(uint8_t b[WP_VDF_BYTES], const mp_limb_t r[NL])
{
	for (int i = 0; i < NL; i++)
		wp_store_be64(b + WP_VDF_BYTES - 8 * (i + 1), r[i]);
}

static void mpz_from_bytes(mpz_t z, const uint8_t *b, size_t len)
{
	mpz_import(z, len, 1, 1, 1, 0, b);
}

/* z must satisfy 0 <= z < 2^(8 len) */
static void mpz_to_bytes(uint8_t *b, size_t len, const mpz_t z)
{
	size_t n = (mpz_sizeinbase(z, 2) + 7) / 8;

	memset(b, 0, len);
	if (mpz_sgn(z))
		mpz_export(b + len - n, NULL, 1, 1, 1, 0, z);
}

static void mpz_from_u64(mpz_t z, uint64_t v)
{
	uint8_t b[8];

	wp_store_be64(b, v);
	mpz_from_bytes(z, b, 8);
}

static void mpz_modulus(mpz_t n)
{
	mpz_from_bytes(n, wp_vdf_modulus, WP_VDF_BYTES);
}

/* v <- min(v, N - v) for 0 <= v < N: the representative in Z_N^* / {±1} */
static void canon(mpz_t v, const mpz_t n)
{
	mpz_t t;

	mpz_init(t);
	mpz_sub(t, n, v);
	if (mpz_cmp(t, v) < 0)
		mpz_swap(t, v);
	mpz_clear(t);
}

/* Is b (256 bytes) a canonical element: 1 <= v <= (N-1)/2 ? */
static int is_canonical(const uint8_t b[WP_VDF_BYTES], const mpz_t n)
{
	mpz_t v, half;
	int ok;

	mpz_inits(v, half, NULL);
	mpz_from_bytes(v, b, WP_VDF_BYTES);
	mpz_tdiv_q_2exp(half, n, 1);            /* (N-1)/2, N odd */
	ok = mpz_sgn(v) > 0 && mpz_cmp(v, half) <= 0;
	mpz_clears(v, half, NULL);
	return ok;
}

/* ------------------------------------------------------------------------ */
/* Montgomery arithmetic mod N, R = 2^2048                                   */

enum path { PATH_PORTABLE, PATH_ADX, PATH_IFMA };

#if defined(__x86_64__) && defined(__GNUC__)
#define HAVE_ADX_PATH 1
#define HAVE_IFMA_PATH 1
#define D52 40                         /* 52-bit digits: 40 x 52 = 2080 bits */
#define MASK52 ((UINT64_C(1) << 52) - 1)
#include <cpuid.h>
#include <immintrin.h>
#endif

struct mont {
	mp_limb_t n[NL];
	mp_limb_t n0;        /* -N^-1 mod 2^64 */
	mp_limb_t one[NL];   /* R mod N: 1 in Montgomery form */
	mp_limb_t r2[NL];    /* R^2 mod N: converts into Montgomery form */
	int path;            /* enum path: the fastest this CPU runs */
#ifdef HAVE_IFMA_PATH
	mp_limb_t in52[NL];  /* 2^2080 mod N: R-form -> the IFMA chain's R' form */
	mp_limb_t out52[NL]; /* 2^2016: R' form -> R form */
	uint64_t n52[D52];   /* N in 52-bit digits */
	uint64_t k52;        /* -N^-1 mod 2^52 */
#endif
};

#ifdef HAVE_ADX_PATH
/* CPUID.(EAX=7,ECX=0):EBX bit 8 = BMI2 (MULX), bit 19 = ADX (ADCX/ADOX) */
static int cpu_has_adx(void)
{
	unsigned a, b, c, d;

	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
		return 0;
	return (b >> 8 & 1) && (b >> 19 & 1);
}

/*
 * t[0..31] += a[0..31] * b, returns the carry limb. Two independent carry
 * chains (CF through ADCX for the low halves, OF through ADOX for the high
 * halves) let consecutive limbs overlap; GMP's generic x86-64 addmul_1
 * (this libgmp is not a "fat" build) has only one chain and is ~1.6x slower.
 */
#define ADX_STEP(i, hnew, hprev)                                        \
	"mulx " #i "*8(%[a]), %[lo], %[" hnew "]\n\t"                    \
	"adcx " #i "*8(%[t]), %[lo]\n\t"                                 \
	"adox %[" hprev "], %[lo]\n\t"                                   \
	"mov %[lo], " #i "*8(%[t])\n\t"
#define ADX_PAIR(i, j) ADX_STEP(i, "h1", "h0") ADX_STEP(j, "h0", "h1")

__attribute__((target("bmi2,adx")))
static inline mp_limb_t addmul32_adx(mp_limb_t *t, const mp_limb_t *a, mp_limb_t b)
{
	mp_limb_t lo, h0, h1, z;

	__asm__("xor %k[z], %k[z]\n\t"            /* z = 0, CF = OF = 0 */
		"mulx 0(%[a]), %[lo], %[h0]\n\t"
		"adcx 0(%[t]), %[lo]\n\t"
		"mov %[lo], 0(%[t])\n\t"
		ADX_PAIR(1, 2) ADX_PAIR(3, 4) ADX_PAIR(5, 6) ADX_PAIR(7, 8)
		ADX_PAIR(9, 10) ADX_PAIR(11, 12) ADX_PAIR(13, 14) ADX_PAIR(15, 16)
		ADX_PAIR(17, 18) ADX_PAIR(19, 20) ADX_PAIR(21, 22) ADX_PAIR(23, 24)
		ADX_PAIR(25, 26) ADX_PAIR(27, 28) ADX_PAIR(29, 30)
		ADX_STEP(31, "h1", "h0")
		/* the true carry h1 + CF + OF fits: t + a*b < 2^(64*33) */
		"adcx %[z], %[h1]\n\t"
		"adox %[z], %[h1]\n\t"
		: [lo] "=&r"(lo), [h0] "=&r"(h0), [h1] "=&r"(h1), [z] "=&r"(z)
		: [a] "r"(a), [t] "r"(t), "d"(b)
		: "cc", "memory");
	return h1;
}

__attribute__((target("bmi2,adx")))
static inline void redc_adx(mp_limb_t *r, mp_limb_t *t, const struct mont *m)
{
	mp_limb_t cy;

	for (int i = 0; i < NL; i++)
		t[i] = addmul32_adx(t + i, m->n, t[i] * m->n0);
	cy = mpn_add_n(r, t + NL, t, NL);
	if (cy || mpn_cmp(r, m->n, NL) >= 0)
		mpn_sub_n(r, r, m->n, NL);
}

__attribute__((target("bmi2,adx")))
static void sqr_chain_adx(mp_limb_t *a, uint64_t n, const struct mont *m)
{
	mp_limb_t t[2 * NL];

	while (n--) {
		mpn_sqr(t, a, NL);
		redc_adx(a, t, m);
	}
}
#endif

#ifdef HAVE_IFMA_PATH
/* 32 limbs (< 2^2048) -> 40 digits of 52 bits */
static void to_d52(uint64_t d[D52], const mp_limb_t x[NL])
{
	for (int j = 0; j < D52; j++) {
		int bit = 52 * j, k = bit / 64, off = bit % 64;
		uint64_t v = x[k] >> off;

		if (off > 12 && k + 1 < NL)
			v |= x[k + 1] << (64 - off);
		d[j] = v & MASK52;
	}
}

/* 40 normalised digits of a value < N -> 32 limbs */
static void from_d52(mp_limb_t x[NL], const uint64_t d[D52])
{
	memset(x, 0, NL * sizeof(mp_limb_t));
	for (int j = 0; j < D52; j++) {
		int bit = 52 * j, k = bit / 64, off = bit % 64;

		x[k] |= d[j] << off;
		if (off > 12 && k + 1 < NL)
			x[k + 1] |= d[j] >> (64 - off);
	}
}
#endif

/*
 * The fastest path this CPU runs. WORKPROOF_VDF_PATH=portable|adx|ifma
 * caps it (specs check every path on one machine; the bench compares them);
 * WORKPROOF_VDF_PORTABLE=1 is the older spelling of "portable".
 */
static enum path best_path(void)
{
	enum path best = PATH_PORTABLE, cap = PATH_IFMA;
	const char *e = getenv("WORKPROOF_VDF_PATH");
	const char *p = getenv("WORKPROOF_VDF_PORTABLE");

#ifdef HAVE_ADX_PATH
	if (cpu_has_adx()) {
		best = PATH_ADX;
		if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512ifma"))
			best = PATH_IFMA;
	}
#endif
	if (e && !strcmp(e, "portable"))
		cap = PATH_PORTABLE;
	else if (e && !strcmp(e, "adx"))
		cap = PATH_ADX;
	if (p && *p && strcmp(p, "0"))
		cap = PATH_PORTABLE;
	return best < cap ? best : cap;
}

static void mont_init(struct mont *m)
{
	mp_limb_t num[2 * NL + 1], q[NL + 1], inv;

	limbs_from_bytes(m->n, wp_vdf_modulus);
	/* Newton: n*inv = 1 mod 2^3 for odd n, each step doubles the bits */
	inv = m->n[0];
	for (int i = 0; i < 5; i++)
		inv *= 2 - m->n[0] * inv;
	m->n0 = -inv;
	/* N > R/2 (top byte 0xc7), so R mod N = R - N = -N mod R */
	mpn_neg(m->one, m->n, NL);
	memset(num, 0, sizeof(num));
	num[2 * NL] = 1;
	mpn_tdiv_qr(q, m->r2, 0, num, 2 * NL + 1, m->n, NL);
	m->path = best_path();
#ifdef HAVE_IFMA_PATH
	if (m->path == PATH_IFMA) {
		/* 2^2080 = 2^32 * R: num = 2^2080 in 33 limbs */
		memset(num, 0, sizeof(num));
		num[NL] = UINT64_C(1) << 32;
		mpn_tdiv_qr(q, m->in52, 0, num, NL + 1, m->n, NL);
		memset(m->out52, 0, sizeof(m->out52));
		m->out52[NL - 1] = UINT64_C(1) << 32;   /* 2^2016 < N */
		to_d52(m->n52, m->n);
		m->k52 = m->n0 & MASK52;
	}
#endif
}

/*
 * r = t / R mod N for t < N*R (64 limbs, destroyed). Word-by-word REDC:
 * each row clears one low limb; its carry is parked in that (now zero)
 * limb and all carries are added to the high half at the end, so the rows
 * never ripple. Result < 2N before the final conditional subtraction.
 */
static void redc(mp_limb_t *r, mp_limb_t *t, const struct mont *m)
{
	mp_limb_t cy;

#ifdef HAVE_ADX_PATH
	if (m->path >= PATH_ADX) {
		redc_adx(r, t, m);
		return;
	}
#endif
	for (int i = 0; i < NL; i++)
		t[i] = mpn_addmul_1(t + i, m->n, NL, t[i] * m->n0);
	cy = mpn_add_n(r, t + NL, t, NL);
	if (cy || mpn_cmp(r, m->n, NL) >= 0)
		mpn_sub_n(r, r, m->n, NL);
}

/* r = a^2 / R mod N; r may alias a */
static void mont_sqr(mp_limb_t *r, const mp_limb_t *a, const struct mont *m)
{
	mp_limb_t t[2 * NL];

	mpn_sqr(t, a, NL);
	redc(r, t, m);
}

/* r = a*b / R mod N; r may alias a or b */
static void mont_mul(mp_limb_t *r, const mp_limb_t *a, const mp_limb_t *b,
		     const struct mont *m)
{
	mp_limb_t t[2 * NL];

	mpn_mul_n(t, a, b, NL);
	redc(r, t, m);
}

static void to_mont(mp_limb_t *r, const mp_limb_t *a, const struct mont *m)
{
	mont_mul(r, a, m->r2, m);
}

static void from_mont(mp_limb_t *r, const mp_limb_t *a, const struct mont *m)
{
	mp_limb_t t[2 * NL];

	memcpy(t, a, NL * sizeof(mp_limb_t));
	memset(t + NL, 0, NL * sizeof(mp_limb_t));
	redc(r, t, m);
}

#ifdef HAVE_IFMA_PATH
/*
 * The AVX-512 IFMA chain: Gueron and Krasnov's almost-Montgomery
 * multiplication (the scheme of OpenSSL's rsaz-4k-avx512 for RSA-4096's
 * 2048-bit halves) on 40 digits of 52 bits in five zmm registers, with
 * R' = 2^2080. Inputs and outputs are < 2N, not reduced: 4N < R' keeps
 * them there, so the chain never subtracts. Each of the 40 steps adds
 * a * a[i] and N * y[i] (52x52-bit products, low and high halves by
 * VPMADD52LUQ / VPMADD52HUQ into 64-bit lanes, which absorb the carries:
 * a lane takes at most 160 terms < 2^52) and shifts the accumulator down
 * one digit. y[i] needs the exact lowest digit, so that one is kept in a
 * scalar register with full 104-bit products; its vector lane is
 * discarded. The carries are propagated once per squaring.
 */
#define IFMA_MIN_CHAIN 64   /* below, the two conversions cost more */

/* the five registers of a 40-digit number, written out: arrays of vectors
 * are not reliably kept in registers by compilers */
#define X5(f) f(0) f(1) f(2) f(3) f(4)

__attribute__((target("avx512f,avx512ifma")))
static void ifma_chain(uint64_t a[D52], uint64_t n, const struct mont *m)
{
	const __m512i zero = _mm512_setzero_si512();
	const uint64_t k0 = m->k52, n0 = m->n52[0];
#define DECL(j) __m512i M##j = _mm512_loadu_si512(m->n52 + 8 * j), A##j, R##j;
	X5(DECL)
#undef DECL

	while (n--) {
		uint64_t acc = 0, c = 0;

#define LOAD(j) A##j = _mm512_loadu_si512(a + 8 * j); R##j = zero;
		X5(LOAD)
#undef LOAD
		for (int i = 0; i < D52; i++) {
			const uint64_t bi = a[i];
			u128 t = (u128)a[0] * bi + acc;
			const uint64_t yi = ((uint64_t)t * k0) & MASK52;
			const __m512i B = _mm512_set1_epi64((long long)bi);
			const __m512i Y = _mm512_set1_epi64((long long)yi);

			t += (u128)n0 * yi;     /* low 52 bits now 0 */
			acc = (uint64_t)(t >> 52);
#define LO(j) R##j = _mm512_madd52lo_epu64(R##j, A##j, B); \
	      R##j = _mm512_madd52lo_epu64(R##j, M##j, Y);
#define HI(j) R##j = _mm512_madd52hi_epu64(R##j, A##j, B); \
	      R##j = _mm512_madd52hi_epu64(R##j, M##j, Y);
			X5(LO)
			R0 = _mm512_alignr_epi64(R1, R0, 1);   /* down one digit */
			R1 = _mm512_alignr_epi64(R2, R1, 1);
			R2 = _mm512_alignr_epi64(R3, R2, 1);
			R3 = _mm512_alignr_epi64(R4, R3, 1);
			R4 = _mm512_alignr_epi64(zero, R4, 1);
			acc += (uint64_t)_mm_cvtsi128_si64(_mm512_castsi512_si128(R0));
			X5(HI)
#undef LO
#undef HI
		}
#define STORE(j) _mm512_storeu_si512(a + 8 * j, R##j);
		X5(STORE)
#undef STORE
		a[0] = acc;
		for (int j = 0; j < D52; j++) {
			uint64_t v = a[j] + c;

			a[j] = v & MASK52;
			c = v >> 52;
		}
	}
}
#undef X5

/* a <- a^(2^n) in Montgomery form (R), through the chain in R' form */
static void sqr_chain_ifma(mp_limb_t *a, uint64_t n, const struct mont *m)
{
	mp_limb_t t[NL];
	uint64_t d[D52], b = 0;
	int j = D52 - 1;

	mont_mul(t, a, m->in52, m);              /* x R -> x R' = x R 2^32 */
	to_d52(d, t);
	ifma_chain(d, n, m);
	while (j > 0 && d[j] == m->n52[j])       /* d < 2N: one subtraction */
		j--;
	if (d[j] >= m->n52[j])
		for (j = 0; j < D52; j++) {
			uint64_t v = d[j] - m->n52[j] - b;

			b = v >> 63;
			d[j] = v & MASK52;
		}
	from_d52(t, d);
	mont_mul(a, t, m->out52, m);             /* x R' 2^2016 / R = x R */
}
#endif

/* The hot loop: a <- a^(2^n) in Montgomery form. */
static void sqr_chain(mp_limb_t *a, uint64_t n, const struct mont *m)
{
#ifdef HAVE_IFMA_PATH
	if (m->path == PATH_IFMA && n >= IFMA_MIN_CHAIN) {
		sqr_chain_ifma(a, n, m);
		return;
	}
#endif
#ifdef HAVE_ADX_PATH
	if (m->path >= PATH_ADX) {
		sqr_chain_adx(a, n, m);
		return;
	}
#endif
	while (n--)
		mont_sqr(a, a, m);
}

/* ------------------------------------------------------------------------ */
/* hashing into the group and to a prime                                     */

static void h2g_mpz(mpz_t x, const void *seed, size_t seed_len, const mpz_t n)
{
	uint8_t buf[H2G_BLOCKS * WP_SHA256_LEN], ctr[8];
	struct wp_iov parts[3] = {
		{ H2G_TAG, TAG_LEN }, { ctr, sizeof(ctr) }, { seed, seed_len },
	};

	for (uint32_t round = 0;; round++) {
		store_be32(ctr, round);
		for (uint32_t j = 0; j < H2G_BLOCKS; j++) {
			store_be32(ctr + 4, j);
			wp_sha256_v(parts, 3, buf + WP_SHA256_LEN * j);
		}
		mpz_from_bytes(x, buf, sizeof(buf));
		mpz_mod(x, x, n);
		canon(x, n);
		/* 0, 1 and N-1 (canonically 1) would make the chain trivial */
		if (mpz_cmp_ui(x, 1) > 0)
			return;
	}
}

void wp_vdf_h2g(const void *seed, size_t seed_len, uint8_t x[WP_VDF_BYTES])
{
	mpz_t n, v;

	mpz_inits(n, v, NULL);
	mpz_modulus(n);
	h2g_mpz(v, seed, seed_len, n);
	mpz_to_bytes(x, WP_VDF_BYTES, v);
	mpz_clears(n, v, NULL);
}

static int is_prime128(u128 c)
{
	uint8_t b[16];
	mpz_t z;
	int r;

	wp_store_be64(b, (uint64_t)(c >> 64));
	wp_store_be64(b + 8, (uint64_t)c);
	mpz_init(z);
	mpz_from_bytes(z, b, 16);
	r = mpz_probab_prime_p(z, 30);
	mpz_clear(z);
	return r != 0;
}

static u128 h2p_u128(const uint8_t x[WP_VDF_BYTES], const uint8_t y[WP_VDF_BYTES],
		     uint64_t T)
{
	uint8_t h[WP_SHA256_LEN], tb[8];
	struct wp_iov parts[4] = {
		{ H2P_TAG, TAG_LEN }, { tb, 8 }, { x, WP_VDF_BYTES }, { y, WP_VDF_BYTES },
	};
	const u128 top = (u128)1 << 127;
	u128 c;

	wp_store_be64(tb, T);
	wp_sha256_v(parts, 4, h);
	c = (u128)wp_load_be64(h) << 64 | wp_load_be64(h + 8);
	c |= top | 1;
	/* smallest prime >= c among c, c+2, ...; past 2^128 wrap to 2^127+1
	 * so that ℓ always has exactly 128 bits */
	while (!is_prime128(c)) {
		c += 2;
		if (!(c & top))
			c = top | 1;
	}
	return c;
}

static void u128_to_bytes(uint8_t l[WP_VDF_L_BYTES], u128 v)
{
	wp_store_be64(l, (uint64_t)(v >> 64));
	wp_store_be64(l + 8, (uint64_t)v);
}

int wp_vdf_h2p(const uint8_t x[WP_VDF_BYTES], const uint8_t y[WP_VDF_BYTES],
	       uint64_t T, uint8_t l[WP_VDF_L_BYTES])
{
	if (T > WP_VDF_T_MAX)
		return WP_ERANGE;
	u128_to_bytes(l, h2p_u128(x, y, T));
	return WP_OK;
}

/* ------------------------------------------------------------------------ */
/* progress                                                                  */

struct progress {
	wp_vdf_progress_fn fn;
	void *ud;
	uint64_t every;
};

static void progress_init(struct progress *p, const struct wp_vdf_opts *o)
{
	p->fn = o ? o->progress : NULL;
	p->ud = o ? o->ud : NULL;
	p->every = o && o->progress_every ? o->progress_every : DEFAULT_EVERY;
}

static int report(const struct progress *p, enum wp_vdf_phase ph, uint64_t done,
		  uint64_t total)
{
	return p->fn && p->fn(p->ud, ph, done, total) ? WP_VDF_ECANCELED : WP_OK;
}

/* ------------------------------------------------------------------------ */
/* proofs                                                                    */

/*
 * π = x^⌊2^T/ℓ⌋ by long division of 2^T by ℓ, quotient bits MSB first:
 * r <- 2r, b = [r >= ℓ], r <- r - bℓ, π <- π^2 x^b. xm in Montgomery form.
 */
static int prove_longdiv(mp_limb_t *pi, const mp_limb_t *xm, uint64_t T, u128 l,
			 const struct mont *m, const struct progress *p)
{
	u128 r = 1;
	uint64_t next = p->every;

	memcpy(pi, m->one, sizeof(m->one));
	for (uint64_t i = 0; i < T; i++) {
		int b = r >= l - r;     /* 2r >= ℓ without overflowing 128 bits */

		r = b ? r - (l - r) : r + r;
		mont_sqr(pi, pi, m);
		if (b)
			mont_mul(pi, pi, xm, m);
		if (i + 1 == next) {
			next += p->every;
			if (report(p, WP_VDF_PHASE_PROVE, i + 1, T))
				return WP_VDF_ECANCELED;
		}
	}
	return report(p, WP_VDF_PHASE_PROVE, T, T);
}

/*
 * Checkpoint prover (Wesolowski, "Efficient verifiable delay functions",
 * §4.1). Write q = ⌊2^T/ℓ⌋ = Σ b_i 2^(ki) with k-bit digits
 *   b_i = ⌊2^k (2^(T-k(i+1)) mod ℓ) / ℓ⌋,   i = 0 .. D-1, D = ⌊T/k⌋
 * (higher digits are 0 since ℓ > 2^k). The chain stored D_j = x^(2^(s j)),
 * s = kγ, so x^(2^(ki)) = D_j^(2^(kt)) for i = jγ + t and
 *   π = Π_t ( Π_j D_j^(b_{jγ+t}) )^(2^(kt)),
 * evaluated by Horner over t = γ-1 .. 0. Each inner product sorts the D_j
 * into 2^k - 1 buckets by digit (one multiplication each) and combines the
 * buckets as Π_b B_b^b with a running suffix product (2 per bucket).
 * Cost: D + γ 2^(k+1) + kγ multiplications instead of T squarings.
 */
struct cp_plan {
	unsigned k;
	uint64_t gamma;      /* passes */
	uint64_t s;          /* squarings between checkpoints = k*gamma */
	uint64_t ncp;        /* checkpoints stored: ⌊T/s⌋ + 1 */
};

static void cp_choose(struct cp_plan *pl, uint64_t T, size_t mem)
{
	const double ELEM = NL * sizeof(mp_limb_t);
	double best = -1;

	pl->k = 1;
	pl->gamma = 1;
	for (unsigned k = 1; k <= MAX_K; k++) {
		double buckets = (double)((uint64_t)1 << k) * (ELEM + 1);
		double avail = (double)mem - buckets;
		uint64_t maxcp, gamma, D = T / k;
		double cost;

		if (avail < 2 * ELEM)
			break;
		maxcp = (uint64_t)(avail / ELEM);
		/* smallest γ with ⌊T/(kγ)⌋ + 1 <= maxcp */
		gamma = T / ((uint64_t)k * (maxcp - 1)) + 1;
		if (D && gamma > D)
			gamma = D;
		/* digits: one bucket multiplication plus ~0.15 of one for the
		 * mod-ℓ arithmetic; passes: 2 per bucket and k squarings */
		cost = 1.15 * (double)D + (double)gamma * (double)((uint64_t)2 << k) +
		       (double)k * (double)gamma;
		if (best < 0 || cost < best) {
			best = cost;
			pl->k = k;
			pl->gamma = gamma;
		}
	}
	pl->s = (uint64_t)pl->k * pl->gamma;
	pl->ncp = T / pl->s + 1;
}

/* 2-limb (128-bit) helpers for the digits; ℓ has its top bit set */
static void u128_to_limbs(mp_limb_t r[2], u128 v)
{
	r[0] = (mp_limb_t)v;
	r[1] = (mp_limb_t)(v >> 64);
}

/* r <- r*c mod ℓ */
static void mulmod128(mp_limb_t r[2], const mp_limb_t c[2], const mp_limb_t l[2])
{
	mp_limb_t p[4], q[3];

	mpn_mul_n(p, r, c, 2);
	mpn_tdiv_qr(q, r, 0, p, 4, l, 2);
}

/* ⌊2^k r / ℓ⌋ for r < ℓ, 1 <= k <= MAX_K */
static uint64_t digit(const mp_limb_t r[2], unsigned k, const mp_limb_t l[2])
{
	mp_limb_t num[3], q[2], rem[2];

	num[2] = mpn_lshift(num, r, 2, k);
	mpn_tdiv_qr(q, rem, 0, num, 3, l, 2);
	return q[0];
}

static int prove_checkpoints(mp_limb_t *pi, const mp_limb_t *cp,
			     const struct cp_plan *pl, uint64_t T, u128 l128,
			     const struct mont *m, const struct progress *p)
{
	const unsigned k = pl->k;
	const uint64_t nb = (uint64_t)1 << k, D = T / k, gamma = pl->gamma;
	mp_limb_t *bucket = NULL, l[2], c[2], r[2], s[NL], res[NL];
	uint8_t *have = NULL;
	uint64_t done = 0, next = p->every;
	int acc_one = 1, ret = WP_ENOMEM;
	mpz_t zl, ze, z2, zr;

	mpz_inits(zl, ze, z2, zr, NULL);
	bucket = malloc(nb * NL * sizeof(mp_limb_t));
	have = malloc(nb);
	if (!bucket || !have)
		goto fail;

	u128_to_limbs(l, l128);
	mpz_import(zl, 2, -1, sizeof(mp_limb_t), 0, 0, l);
	mpz_set_ui(z2, 2);
	/* c = 2^(kγ) mod ℓ steps r from digit i to digit i - γ */
	mpz_from_u64(ze, pl->s);
	mpz_powm(zr, z2, ze, zl);
	memset(c, 0, sizeof(c));
	mpz_export(c, NULL, -1, sizeof(mp_limb_t), 0, 0, zr);

	memcpy(pi, m->one, sizeof(m->one));
	for (uint64_t t = gamma; t-- > 0;) {
		uint64_t jtop, i;
		int s_set = 0, res_set = 0;

		if (!acc_one)
			for (unsigned q = 0; q < k; q++)
				mont_sqr(pi, pi, m);
		if (t >= D)
			continue;
		jtop = (D - 1 - t) / gamma;
		i = jtop * gamma + t;
		mpz_from_u64(ze, T - (uint64_t)k * (i + 1));
		mpz_powm(zr, z2, ze, zl);
		memset(r, 0, sizeof(r));
		mpz_export(r, NULL, -1, sizeof(mp_limb_t), 0, 0, zr);
		memset(have, 0, nb);
		for (uint64_t j = jtop + 1; j-- > 0;) {
			uint64_t b = digit(r, k, l);
			mp_limb_t *bb = bucket + b * NL;

			if (b) {
				if (have[b])
					mont_mul(bb, bb, cp + j * NL, m);
				else
					memcpy(bb, cp + j * NL, NL * sizeof(mp_limb_t));
				have[b] = 1;
			}
			if (j)
				mulmod128(r, c, l);
			if (++done == next) {
				next += p->every;
				if (report(p, WP_VDF_PHASE_PROVE, done, D)) {
					ret = WP_VDF_ECANCELED;
					goto fail;
				}
			}
		}
		/* Π_b B_b^b = Π_b (Π_{b' >= b} B_b') */
		for (uint64_t b = nb - 1; b >= 1; b--) {
			if (have[b]) {
				if (s_set)
					mont_mul(s, s, bucket + b * NL, m);
				else
					memcpy(s, bucket + b * NL, sizeof(s));
				s_set = 1;
			}
			if (s_set) {
				if (res_set)
					mont_mul(res, res, s, m);
				else
					memcpy(res, s, sizeof(res));
				res_set = 1;
			}
		}
		if (res_set) {
			if (acc_one)
				memcpy(pi, res, sizeof(res));
			else
				mont_mul(pi, pi, res, m);
			acc_one = 0;
		}
	}
	ret = report(p, WP_VDF_PHASE_PROVE, D, D);
fail:
	free(bucket);
	free(have);
	mpz_clears(zl, ze, z2, zr, NULL);
	return ret;
}

/* out = canon(from_mont(a)) as bytes */
static void export_canon(uint8_t out[WP_VDF_BYTES], const mp_limb_t *a,
			 const struct mont *m, const mpz_t n)
{
	mp_limb_t v[NL];
	mpz_t z;

	from_mont(v, a, m);
	mpz_init(z);
	mpz_import(z, NL, -1, sizeof(mp_limb_t), 0, 0, v);
	canon(z, n);
	mpz_to_bytes(out, WP_VDF_BYTES, z);
	mpz_clear(z);
}

/* ------------------------------------------------------------------------ */
/* the public operations                                                     */

int wp_vdf_eval(const void *seed, size_t seed_len, uint64_t T,
		const struct wp_vdf_opts *opts, struct wp_vdf_output *out)
{
	struct mont m;
	struct progress p;
	struct cp_plan pl = { 0, 0, 0, 0 };
	mp_limb_t xl[NL], xm[NL], a[NL], pi[NL], *cp = NULL;
	uint64_t done = 0, next_pr, next_cp = UINT64_MAX;
	int use_cp = !opts || opts->prover != WP_VDF_PROVER_LONGDIV;
	int ret;
	u128 l;
	mpz_t n;

	if (T > WP_VDF_T_MAX)
		return WP_ERANGE;
	progress_init(&p, opts);
	mont_init(&m);
	mpz_init(n);
	mpz_modulus(n);

	if (use_cp) {
		size_t mem = opts && opts->mem_limit ? opts->mem_limit : DEFAULT_MEM;

		cp_choose(&pl, T, mem);
		/* allocate before the chain so that a failure costs nothing */
		cp = malloc(pl.ncp * NL * sizeof(mp_limb_t));
		if (!cp) {
			ret = WP_ENOMEM;
			goto fail;
		}
		next_cp = pl.s;
	}

	wp_vdf_h2g(seed, seed_len, out->x);
	limbs_from_bytes(xl, out->x);
	to_mont(xm, xl, &m);
	memcpy(a, xm, sizeof(a));
	if (cp)
		memcpy(cp, xm, sizeof(xm));

	next_pr = p.every;
	while (done < T) {
		uint64_t stop = T;

		if (next_cp < stop)
			stop = next_cp;
		if (p.fn && next_pr < stop)
			stop = next_pr;
		sqr_chain(a, stop - done, &m);
		done = stop;
		if (done == next_cp) {
			memcpy(cp + (done / pl.s) * NL, a, sizeof(a));
			next_cp += pl.s;
		}
		if (p.fn && done == next_pr) {
			next_pr += p.every;
			if (report(&p, WP_VDF_PHASE_EVAL, done, T)) {
				ret = WP_VDF_ECANCELED;
				goto fail;
			}
		}
	}
	if (p.fn && T % p.every && report(&p, WP_VDF_PHASE_EVAL, T, T)) {
		ret = WP_VDF_ECANCELED;
		goto fail;
	}

	export_canon(out->y, a, &m, n);
	l = h2p_u128(out->x, out->y, T);
	u128_to_bytes(out->l, l);
	if (cp)
		ret = prove_checkpoints(pi, cp, &pl, T, l, &m, &p);
	else
		ret = prove_longdiv(pi, xm, T, l, &m, &p);
	if (ret)
		goto fail;
	export_canon(out->proof, pi, &m, n);
	out->iterations = T;
	ret = WP_OK;
fail:
	free(cp);
	mpz_clear(n);
	return ret;
}

int wp_vdf_prove(const uint8_t x[WP_VDF_BYTES], const uint8_t y[WP_VDF_BYTES],
		 uint64_t T, const struct wp_vdf_opts *opts,
		 uint8_t proof[WP_VDF_BYTES], uint8_t l[WP_VDF_L_BYTES])
{
	struct mont m;
	struct progress p;
	mp_limb_t xl[NL], xm[NL], pi[NL];
	int ret = WP_ERANGE;
	u128 lv;
	mpz_t n;

	mpz_init(n);
	mpz_modulus(n);
	if (T > WP_VDF_T_MAX || !is_canonical(x, n) || !is_canonical(y, n))
		goto out;
	progress_init(&p, opts);
	mont_init(&m);
	limbs_from_bytes(xl, x);
	to_mont(xm, xl, &m);
	lv = h2p_u128(x, y, T);
	ret = prove_longdiv(pi, xm, T, lv, &m, &p);
	if (ret)
		goto out;
	export_canon(proof, pi, &m, n);
	u128_to_bytes(l, lv);
out:
	mpz_clear(n);
	return ret;
}

int wp_vdf_verify(const void *seed, size_t seed_len, uint64_t T,
		  const uint8_t y[WP_VDF_BYTES], const uint8_t proof[WP_VDF_BYTES])
{
	uint8_t xb[WP_VDF_BYTES], lb[WP_VDF_L_BYTES];
	mpz_t n, x, yv, pi, l, r, t, lhs;
	int ok = 0;

	if (T > WP_VDF_T_MAX)
		return WP_ERANGE;
	mpz_inits(n, x, yv, pi, l, r, t, lhs, NULL);
	mpz_modulus(n);
	/* untrusted: only canonical representatives are answers */
	if (!is_canonical(y, n) || !is_canonical(proof, n))
		goto out;
	h2g_mpz(x, seed, seed_len, n);
	mpz_to_bytes(xb, WP_VDF_BYTES, x);
	u128_to_bytes(lb, h2p_u128(xb, y, T));
	mpz_from_bytes(l, lb, sizeof(lb));
	mpz_from_bytes(yv, y, WP_VDF_BYTES);
	mpz_from_bytes(pi, proof, WP_VDF_BYTES);

	/* r = 2^T mod ℓ; lhs = π^ℓ x^r mod N */
	mpz_from_u64(t, T);
	mpz_set_ui(r, 2);
	mpz_powm(r, r, t, l);
	mpz_powm(lhs, pi, l, n);
	mpz_powm(t, x, r, n);
	mpz_mul(lhs, lhs, t);
	mpz_mod(lhs, lhs, n);
	canon(lhs, n);
	ok = mpz_cmp(lhs, yv) == 0;
out:
	mpz_clears(n, x, yv, pi, l, r, t, lhs, NULL);
	return ok;
}

const char *wp_vdf_path(void)
{
	static const char *const name[] = { "portable", "adx", "ifma" };

	return name[best_path()];
}

int wp_vdf_squarings(const uint8_t x[WP_VDF_BYTES], uint64_t T,
		     uint8_t y[WP_VDF_BYTES])
{
	struct mont m;
	mp_limb_t a[NL], v[NL];

	if (T > WP_VDF_T_MAX)
		return WP_ERANGE;
	mont_init(&m);
	limbs_from_bytes(v, x);
	if (mpn_cmp(v, m.n, NL) >= 0)
		return WP_ERANGE;
	to_mont(a, v, &m);
	sqr_chain(a, T, &m);
	from_mont(v, a, &m);
	limbs_to_bytes(y, v);
	return WP_OK;
}

int wp_vdf_eval_reference(const uint8_t x[WP_VDF_BYTES], uint64_t T,
			  uint8_t y[WP_VDF_BYTES])
{
	mpz_t n, v;
	int ret = WP_ERANGE;

	mpz_inits(n, v, NULL);
	mpz_modulus(n);
	mpz_from_bytes(v, x, WP_VDF_BYTES);
	if (T > WP_VDF_T_MAX || mpz_cmp(v, n) >= 0)
		goto out;
	for (uint64_t i = 0; i < T; i++) {
		mpz_mul(v, v, v);
		mpz_mod(v, v, n);
	}
	mpz_to_bytes(y, WP_VDF_BYTES, v);
	ret = WP_OK;
out:
	mpz_clears(n, v, NULL);
	return ret;
}
