# Print one package's block of a hash-pinned requirements lock (-v pkg=NAME),
# or every other block (-v pkg=NAME -v invert=1). A block is a "name==version \" line
# and the indented hash/comment lines that follow it.
/^[A-Za-z0-9]/ { inblock = (index($0, pkg "==") == 1) }
/^#/ { next }
(inblock && !invert) || (!inblock && invert) { print }
