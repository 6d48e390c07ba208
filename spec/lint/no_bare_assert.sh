#!/bin/sh
# docs/conventions.md §8: no bare assert() for runtime conditions in C (it
# vanishes under NDEBUG). Fails listing the offending lines.
if grep -rnE '(^|[^_a-z])assert\(' core worker --include='*.c' --include='*.h'; then
	echo "bare assert() found: use explicit checks (docs/conventions.md §8)" >&2
	exit 1
fi
echo "no bare assert()"
