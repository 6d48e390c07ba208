/* SPDX-License-Identifier: MIT */
/**
 * \file vdf.h
 * \brief Wesolowski verifiable delay function over the RSA-2048 challenge
 *        modulus (factors unknown), on GMP.
 *
 * The group is Z_N^* / {±1}: every element is represented canonically by
 * min(v, N - v), so that (y, π) and (N - y, N - π) are not two valid answers
 * to the same challenge (the sign is the one element of known order in Z_N^*).
 *
 *   x = H2G(seed)                      canonical, 2 <= x <= (N-1)/2
 *   y = canon(x^(2^T) mod N)           T sequential squarings
 *   ℓ = H2P(x, y, T)                   a 128-bit prime
 *   π = canon(x^⌊2^T/ℓ⌋ mod N)
 *   verify: π^ℓ · x^(2^T mod ℓ) ≡ ±y (mod N), with y, π canonical
 *
 * The byte-exact derivations of H2G and H2P, test vectors and the cost model
 * are in docs/vdf.md. Every group element crosses this API as a fixed-width
 * 256-byte big-endian string; ℓ as 16 bytes big-endian.
 *
 * Thread safety: no global mutable state. Each call works on its own stack
 * and heap memory, so evaluations may run concurrently on a thread pool.
 * GMP aborts the process if it cannot allocate its (small, bounded) temporaries;
 * the only large allocation (proof checkpoints) is ours and fails with
 * WP_ENOMEM.
 */
#ifndef WORKPROOF_VDF_H
#define WORKPROOF_VDF_H

#include <stddef.h>
#include <stdint.h>

#include "workproof/common.h"

#define WP_VDF_BYTES 256        /**< a group element / the modulus, big-endian */
#define WP_VDF_L_BYTES 16       /**< the Fiat-Shamir prime ℓ, big-endian */
/** Largest accepted T: 2^53, so that every T is exact as a Lua/JSON number. */
#define WP_VDF_T_MAX (UINT64_C(1) << 53)

/**
 * Returned by wp_vdf_eval()/wp_vdf_prove() when the progress callback asked
 * to stop. An alias of WP_EPROTO (wp_strerror gives "EPROTO") until
 * common.h grows a dedicated code.
 */
#define WP_VDF_ECANCELED WP_EPROTO

/** The RSA-2048 challenge number, 256 bytes big-endian (read-only). */
extern const uint8_t wp_vdf_modulus[WP_VDF_BYTES];

/** Which phase a progress report is about. */
enum wp_vdf_phase {
	WP_VDF_PHASE_EVAL = 0,  /**< done/total count squarings of the chain */
	WP_VDF_PHASE_PROVE = 1, /**< done/total count proof steps */
};

/**
 * Progress callback. Called every `progress_every` squarings of the chain
 * (and periodically while proving), from the evaluating thread.
 * \return 0 to continue, non-zero to cancel (the call then returns
 *         WP_VDF_ECANCELED and its outputs are unspecified).
 */
typedef int (*wp_vdf_progress_fn)(void *ud, enum wp_vdf_phase phase,
				  uint64_t done, uint64_t total);

/** How wp_vdf_eval() computes π. */
enum wp_vdf_prover {
	/** Default: checkpoints stored during the chain, then Wesolowski's
	 *  §4.1 bucket method (parameters k, γ chosen under mem_limit). */
	WP_VDF_PROVER_CHECKPOINT = 0,
	/** Bit-by-bit long division of 2^T by ℓ, π = π²·x^b: no extra memory,
	 *  but T more squarings and ~T/2 multiplications after the chain. */
	WP_VDF_PROVER_LONGDIV = 1,
};

/** Options of wp_vdf_eval(); a zeroed struct (or NULL) gives the defaults. */
struct wp_vdf_opts {
	wp_vdf_progress_fn progress;  /**< may be NULL */
	void *ud;                     /**< passed to progress */
	uint64_t progress_every;      /**< squarings between calls; 0 = 65536 */
	enum wp_vdf_prover prover;
	/** Memory budget of the checkpoint prover in bytes; 0 = 16 MiB.
	 *  Less memory costs more multiplications (docs/vdf.md). */
	size_t mem_limit;
};

/** Everything an evaluation produces; plain value type, nothing to free. */
struct wp_vdf_output {
	uint8_t x[WP_VDF_BYTES];      /**< H2G(seed) */
	uint8_t y[WP_VDF_BYTES];      /**< canon(x^(2^T)) */
	uint8_t proof[WP_VDF_BYTES];  /**< π */
	uint8_t l[WP_VDF_L_BYTES];    /**< ℓ = H2P(x, y, T) */
	uint64_t iterations;          /**< T */
};

/**
 * x = H2G(seed): hash an arbitrary byte string to a canonical group element.
 * \param seed may be NULL when seed_len is 0.
 * \param x    out, 256 bytes, caller-owned.
 */
void wp_vdf_h2g(const void *seed, size_t seed_len, uint8_t x[WP_VDF_BYTES]);

/**
 * ℓ = H2P(x, y, T): the Fiat-Shamir 128-bit prime. x and y are taken as the
 * 256-byte strings given (no range check: the hash binds the bytes).
 * \param l out, 16 bytes big-endian, caller-owned.
 * \return WP_OK, or WP_ERANGE for T > WP_VDF_T_MAX.
 */
int wp_vdf_h2p(const uint8_t x[WP_VDF_BYTES], const uint8_t y[WP_VDF_BYTES],
	       uint64_t T, uint8_t l[WP_VDF_L_BYTES]);

/**
 * Evaluate the VDF on seed with T squarings and compute its proof.
 * Blocks for about T / (squarings per second) plus the proof (docs/vdf.md);
 * run it on a worker thread for large T.
 * \param opts NULL for defaults.
 * \param out  caller-owned; filled on WP_OK.
 * \return WP_OK; WP_ERANGE for T > WP_VDF_T_MAX; WP_ENOMEM if the checkpoint
 *         buffer cannot be allocated; WP_VDF_ECANCELED if progress asked to
 *         stop. All temporary memory is freed before returning.
 */
int wp_vdf_eval(const void *seed, size_t seed_len, uint64_t T,
		const struct wp_vdf_opts *opts, struct wp_vdf_output *out);

/**
 * Compute π for a known (x, y, T) by long division (T squarings): for a
 * party that has y but no checkpoints. x and y must be canonical (as
 * produced by wp_vdf_h2g / wp_vdf_eval); y is not checked against x.
 * \param proof, l out, caller-owned.
 * \return WP_OK; WP_ERANGE for T too large or x, y not canonical elements;
 *         WP_VDF_ECANCELED.
 */
int wp_vdf_prove(const uint8_t x[WP_VDF_BYTES], const uint8_t y[WP_VDF_BYTES],
		 uint64_t T, const struct wp_vdf_opts *opts,
		 uint8_t proof[WP_VDF_BYTES], uint8_t l[WP_VDF_L_BYTES]);

/**
 * Verify that y is the VDF output for (seed, T) and proof is its Wesolowski
 * proof. y and proof are untrusted: anything outside [1, (N-1)/2] (the
 * canonical range) is simply invalid. Cost is independent of T (~0.5 ms).
 * \return 1 valid, 0 invalid, WP_ERANGE for T > WP_VDF_T_MAX.
 */
int wp_vdf_verify(const void *seed, size_t seed_len, uint64_t T,
		  const uint8_t y[WP_VDF_BYTES],
		  const uint8_t proof[WP_VDF_BYTES]);

/**
 * The squaring chain's implementation on this CPU: "ifma" (AVX-512 IFMA,
 * 52-bit digits), "adx" (MULX/ADCX/ADOX reduction) or "portable" (GMP's
 * addmul_1), the fastest the CPU has unless WORKPROOF_VDF_PATH names a
 * slower one (docs/vdf.md). Every path computes the same numbers.
 */
const char *wp_vdf_path(void);

/**
 * The raw Montgomery squaring chain: y = x^(2^T) mod N, not canonicalised.
 * Exposed for cross-checks against published vectors and for benchmarks.
 * \return WP_OK, or WP_ERANGE if x >= N or T > WP_VDF_T_MAX.
 */
int wp_vdf_squarings(const uint8_t x[WP_VDF_BYTES], uint64_t T,
		     uint8_t y[WP_VDF_BYTES]);

/**
 * TEST ONLY: the same as wp_vdf_squarings() computed the naive way
 * (mpz_mul + mpz_mod per step), an independent reference for specs and the
 * benchmark anchor. Never use it in production: it is ~1.5-2x slower.
 * \return WP_OK, or WP_ERANGE if x >= N or T > WP_VDF_T_MAX.
 */
int wp_vdf_eval_reference(const uint8_t x[WP_VDF_BYTES], uint64_t T,
			  uint8_t y[WP_VDF_BYTES]);

#endif
