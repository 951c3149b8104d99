# SPDX-License-Identifier: MIT
# json.awk: the one JSON reader of the bench scripts (table.sh, net-table.sh,
# net.sh), prepended to their awk programs. The bench programs print flat
# one-object-per-line JSON, so POSIX awk (mawk is enough) reads it without jq.
#
# The value of "key" in a flat JSON object: a string without its quotes, a
# number, or "null" when the key is missing.
function get(line, key,    i, rest) {
	i = index(line, "\"" key "\":")
	if (i == 0)
		return "null"
	rest = substr(line, i + length(key) + 3)
	if (substr(rest, 1, 1) == "\"") {
		rest = substr(rest, 2)
		return substr(rest, 1, index(rest, "\"") - 1)
	}
	sub(/[,}].*$/, "", rest)
	return rest
}
