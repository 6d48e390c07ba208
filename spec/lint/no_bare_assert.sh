#!/bin/sh
# docs/conventions.md §8: no bare assert() for runtime conditions in C (it
# vanishes under NDEBUG). Fails listing the offending lines. Vendored code
# (core/vendor: Ryu, unmodified) keeps its own debug assertions.
if grep -rnE '(^|[^_a-z])assert\(' core worker --include='*.c' --include='*.h' --exclude-dir=vendor; then
	echo "bare assert() found: use explicit checks (docs/conventions.md §8)" >&2
	exit 1
fi
echo "no bare assert()"
