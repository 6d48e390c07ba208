/* SPDX-License-Identifier: MIT */
/**
 * \file tlsid.h
 * \brief TLS identity certificates: an Ed25519 identity key vouching for an
 *        ephemeral TLS key (the libp2p TLS handshake's construction, with a
 *        workproof extension; docs/transport.md).
 *
 * A certificate is self-signed by a fresh ECDSA P-256 key and carries one
 * extension (OID WP_TLSID_OID) whose value is the DER of
 *     SEQUENCE { OCTET STRING identityKey (32), OCTET STRING signature (64) }
 * where signature = Ed25519(identity secret,
 *                           WP_TLSID_PREFIX || DER(SubjectPublicKeyInfo)).
 * Only libcrypto is used here; the TLS connections themselves (libssl)
 * live in the host (core/host/l_tls.c).
 */
#ifndef WORKPROOF_TLSID_H
#define WORKPROOF_TLSID_H

#include <stddef.h>
#include <stdint.h>

struct x509_st;   /* OpenSSL's X509 */

/** The extension's OID: a UUID arc (ITU-T X.667, 2.25.<uuid as integer>),
 *  UUID 858534d0-bc89-4763-a5db-095f832e5a24; private, no registry needed. */
#define WP_TLSID_OID "2.25.177478970144685277834544340244515150372"
/** What the identity key signs, before the DER of the certificate's key. */
#define WP_TLSID_PREFIX "workproof-tls-handshake:"

/** Why a peer was refused (or WP_TLS_OK). Names: wp_tls_reason_name(). */
enum wp_tls_reason {
	WP_TLS_OK = 0,
	WP_TLS_PLAINTEXT,      /**< the peer did not speak TLS */
	WP_TLS_PROTOCOL,       /**< TLS, but not 1.3 */
	WP_TLS_NO_CERT,        /**< the peer sent no certificate */
	WP_TLS_BAD_CERT,       /**< not one self-signed P-256 certificate */
	WP_TLS_BAD_EXTENSION,  /**< the identity extension missing or malformed */
	WP_TLS_BAD_SIGNATURE,  /**< the identity key's signature does not verify */
	WP_TLS_STALE_CERT,     /**< outside its validity window */
	WP_TLS_UNKNOWN_KEY,    /**< a valid identity the server does not pin */
	WP_TLS_WRONG_KEY,      /**< a valid identity other than the client's pin */
	WP_TLS_OTHER,          /**< the handshake failed otherwise */
	WP_TLS_NREASONS
};

/** Stable name of a reason ("bad_cert", ...; "ok" for WP_TLS_OK): the
 *  token of ETLS errors and of tls_refused_<name> counters. Static. */
const char *wp_tls_reason_name(enum wp_tls_reason r);

/** A freshly made certificate and its TLS key, PEM, NUL-terminated, owned
 *  by the struct (wp_tls_identity_free). */
struct wp_tls_identity {
	char *cert_pem;
	size_t cert_len;
	char *key_pem;        /* PKCS#8, unencrypted */
	size_t key_len;
	int64_t not_before, not_after;
	uint8_t identity[32]; /* the key the extension names */
};

/**
 * \brief Make a TLS key and its identity certificate.
 * \param out        filled on success (free with wp_tls_identity_free)
 * \param seed       32-byte Ed25519 seed of the identity (not kept)
 * \param not_before validity start, Unix seconds
 * \param not_after  validity end, Unix seconds (> not_before)
 * \param claim      NULL; for tests a 32-byte key the extension names
 *                   instead of the seed's own (its signature then fails)
 * \return WP_OK, WP_EINVAL (window), WP_ENOMEM or WP_ECRYPTO
 */
int wp_tls_identity_make(struct wp_tls_identity *out, const uint8_t seed[32],
			 int64_t not_before, int64_t not_after, const uint8_t *claim);

/** Free what wp_tls_identity_make allocated (wiping the key); idempotent. */
void wp_tls_identity_free(struct wp_tls_identity *id);

/**
 * \brief Check a peer's certificate, everything but the pin, in this order:
 *        chain_len == 1, a P-256 key, valid self-signature, no unknown
 *        critical extension (bad_cert); exactly one well-formed identity
 *        extension (bad_extension); the identity signature (bad_signature);
 *        then, when now is given, notBefore <= now < notAfter (stale_cert).
 * \param cert      the certificate (borrowed)
 * \param chain_len certificates the peer sent
 * \param now       Unix seconds, or NULL to skip the time check
 * \param key       out: the identity key, valid when WP_TLS_OK is returned
 * \param detail    out: a short reason text (may be NULL)
 * \return WP_TLS_OK or the refusal reason. Nothing is kept.
 */
enum wp_tls_reason wp_tls_check_cert(struct x509_st *cert, int chain_len, const int64_t *now,
				     uint8_t key[32], char *detail, size_t detail_len);

#endif
