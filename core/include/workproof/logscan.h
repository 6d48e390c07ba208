/* SPDX-License-Identifier: MIT */
/**
 * \file logscan.h
 * \brief Streaming scanner for the worker's verdict line
 *        (`NOTARY_RESULT: {json}`) in an arbitrary byte stream.
 *
 * The stream (a worker's stdout, a QEMU serial console, a log shipper's
 * feed) arrives in chunks split anywhere. Lines end with LF; one CR right
 * before the LF (CRLF) is stripped; the last line may end at EOF without a
 * newline (wp_logscan_finish() flushes it).
 *
 * **Candidate lines.** A line is a candidate when it
 *   1. starts with the literal `prefix` (if one is configured), and
 *   2. the `marker` starts at offset 0..`search` right after the prefix
 *      (search = 0: immediately after it; search = N: up to N arbitrary
 *      bytes, e.g. a variable timestamp, may come before the marker; the
 *      first occurrence of the marker wins).
 * The payload is everything after the marker up to the end of the line
 * (without the line terminator). The scanner does not parse it: JSON is the
 * caller's business.
 *
 * **Bounded memory.** Whether a line can still be a candidate is decided
 * from its first prefix_len + search + marker_len bytes. Non-candidate
 * lines are never copied (whatever their length); a candidate line that is
 * complete inside one chunk is reported in place, without a copy. Only a
 * candidate (or an undecided line head) that straddles chunks is copied,
 * into one buffer that grows geometrically up to max_line + 1 bytes (the
 * +1 holds a CR that may turn out to be part of a CRLF). A candidate line
 * longer than max_line is skipped and reported once as OVERSIZED, with its
 * full length, however many chunks it spans.
 *
 * **The verdict slot.** The first candidate line of the stream is THE
 * verdict: it is reported as RESULT (or as OVERSIZED when too long). Every
 * later candidate line is reported as DUPLICATE (or OVERSIZED). Which line
 * is the verdict never depends on its content; `seq` in every event says
 * which candidate line it was (1 = the verdict line).
 *
 * Not thread-safe: one scanner belongs to one stream. No allocation happens
 * per byte or per line; wp_logscan_feed() allocates only when the copy
 * buffer grows (at most log2(max_line) times in a scanner's life).
 */
#ifndef WORKPROOF_LOGSCAN_H
#define WORKPROOF_LOGSCAN_H

#include <stddef.h>
#include <stdint.h>

/** The default marker. */
#define WP_LOGSCAN_MARKER "NOTARY_RESULT: "
/** The default maximum candidate line length (bytes, terminator excluded). */
#define WP_LOGSCAN_MAX_LINE (64 * 1024)
/** Upper bound accepted for max_line (a sanity limit, 256 MiB). */
#define WP_LOGSCAN_MAX_LINE_LIMIT ((size_t)256 << 20)
/** Upper bound for the marker and for the prefix length. */
#define WP_LOGSCAN_MAX_TOKEN 4096

/**
 * Scanner options. A zero-initialised struct gives the defaults: marker
 * "NOTARY_RESULT: ", no prefix, search 0, max_line 64 KiB.
 */
struct wp_logscan_opts {
	/** NULL: the default marker. Must not be empty nor contain CR or LF. */
	const char *marker;
	/** Marker length; 0 with a non-NULL marker means strlen(marker). */
	size_t marker_len;
	/** NULL or empty: no prefix. Must not contain CR or LF. */
	const char *prefix;
	/** Prefix length; 0 with a non-NULL prefix means strlen(prefix). */
	size_t prefix_len;
	/** Max bytes allowed between the prefix and the marker (0: none). */
	size_t search;
	/**
	 * Max candidate line length, terminator excluded (0: the default).
	 * prefix_len + search + marker_len must not exceed it.
	 */
	size_t max_line;
};

enum wp_logscan_kind {
	/** The first candidate line; payload is the text after the marker. */
	WP_LOGSCAN_RESULT = 1,
	/** A later candidate line; payload as for RESULT. */
	WP_LOGSCAN_DUPLICATE = 2,
	/** A candidate line longer than max_line; no payload (NULL, 0). */
	WP_LOGSCAN_OVERSIZED = 3,
};

/** One event, handed to the callback. */
struct wp_logscan_event {
	enum wp_logscan_kind kind;
	/** 1-based line number in the stream. */
	uint64_t line;
	/** 1-based ordinal of this candidate line (1 = the verdict line). */
	uint64_t seq;
	/**
	 * Bytes after the marker, line terminator excluded. Points into the
	 * caller's chunk or into the scanner's buffer: valid ONLY during the
	 * callback. NULL for OVERSIZED.
	 */
	const char *payload;
	size_t len;
	/** Length of the whole line, terminator (LF or CRLF) excluded. */
	uint64_t bytes;
};

/**
 * Event callback. It must not call back into the same scanner. The
 * scanner's state is consistent before each call, so a callback that
 * unwinds (a Lua error) leaves a usable scanner; the rest of that chunk is
 * then not scanned.
 */
typedef void (*wp_logscan_cb)(void *userdata, const struct wp_logscan_event *ev);

/** Counters, see wp_logscan_stats(). */
struct wp_logscan_stats {
	uint64_t bytes;      /**< bytes fed */
	uint64_t lines;      /**< lines completed (LF, or EOF after finish) */
	uint64_t candidates; /**< candidate lines seen (decided so far) */
	uint64_t results;    /**< RESULT events (0 or 1) */
	uint64_t duplicates; /**< DUPLICATE events */
	uint64_t oversized;  /**< OVERSIZED events */
	size_t buffer;       /**< current copy-buffer capacity in bytes */
	size_t max_line;     /**< the configured max_line */
};

struct wp_logscan;

/**
 * \brief Create a scanner.
 * \param opts options (copied: the caller keeps ownership); NULL = defaults.
 * \param out  receives the scanner, owned by the caller (wp_logscan_free()).
 * \return WP_OK, WP_EINVAL (bad options: empty marker, CR/LF in marker or
 *         prefix, token longer than WP_LOGSCAN_MAX_TOKEN, max_line above
 *         WP_LOGSCAN_MAX_LINE_LIMIT, prefix+search+marker > max_line) or
 *         WP_ENOMEM. *out is NULL on error.
 */
int wp_logscan_new(const struct wp_logscan_opts *opts, struct wp_logscan **out);

/** \brief Free a scanner and its buffer. NULL is ignored. */
void wp_logscan_free(struct wp_logscan *sc);

/**
 * \brief Scan the next chunk of the stream.
 *
 * Calls cb (which may be NULL) for every event completed by this chunk, in
 * stream order. The chunk stays owned by the caller and is not retained;
 * only the bytes of a candidate line that continues past the chunk's end
 * are copied. len may be 0.
 *
 * \return WP_OK; WP_EPROTO after wp_logscan_finish(); WP_ENOMEM when the
 *         copy buffer could not grow. ENOMEM is sticky: the stream position
 *         is lost, so every later feed or finish returns it too.
 */
int wp_logscan_feed(struct wp_logscan *sc, const void *data, size_t len,
		    wp_logscan_cb cb, void *userdata);

/**
 * \brief End of stream: flush a last line that has no terminating LF.
 *
 * After it the scanner accepts no more data (wp_logscan_feed() returns
 * WP_EPROTO). Calling it again is a no-op returning WP_OK.
 * \return WP_OK or the sticky WP_ENOMEM.
 */
int wp_logscan_finish(struct wp_logscan *sc, wp_logscan_cb cb, void *userdata);

/** \brief Copy the counters into *out. */
void wp_logscan_stats(const struct wp_logscan *sc, struct wp_logscan_stats *out);

#endif
