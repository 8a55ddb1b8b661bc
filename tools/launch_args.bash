# Sourced by the launchers tools/dist_*.sh: the argument check they all make.
# require_args MIN USAGE EXAMPLE "$@" prints "usage: <launcher> USAGE" and the example to
# stderr and exits 2 when fewer than MIN arguments follow.
require_args() {
    local min=$1 usage=$2 example=$3
    shift 3
    if [ "$#" -lt "$min" ]; then
        echo "usage: $0 $usage" >&2
        echo "  e.g. $example" >&2
        exit 2
    fi
}
