# Sourced by the project's scripts: `debian_mirror` prints the Debian archive mirror to use.
#
# $DEBIAN_MIRROR if set; else the first `deb` source of the machine's own apt configuration that
# serves a Debian suite other than the security one (deb822 `*.sources` files, and one-line
# `sources.list` entries), so a user's mirror or proxy is respected. No host is written in here:
# with neither, it says so and fails.
#
# $APT_ETC (default /etc/apt) is where apt's configuration is read from, for tests.

debian_mirror() {
    if [ -n "${DEBIAN_MIRROR:-}" ]; then
        echo "${DEBIAN_MIRROR%/}"
        return 0
    fi
    local etc="${APT_ETC:-/etc/apt}" found
    found=$(
        {
            # One-line format: deb [options] URI suite [components...]
            cat "$etc/sources.list" "$etc"/sources.list.d/*.list 2>/dev/null |
                sed -e 's/#.*//' -e 's/\[[^]]*\]//' |
                awk '$1 == "deb" && $3 !~ /-security/ { print $2 }'
            # deb822 format: stanzas of Types/URIs/Suites fields separated by blank lines.
            for file in "$etc"/sources.list.d/*.sources; do
                [ -r "$file" ] || continue
                awk '
                    function flush() {
                        if (types ~ /(^| )deb( |$)/ && suites != "" && enabled != "no") {
                            n = split(suites, s, " ")
                            for (i = 1; i <= n; i++) if (s[i] !~ /-security/) { split(uris, u, " "); print u[1]; break }
                        }
                        types = ""; uris = ""; suites = ""; enabled = ""
                    }
                    /^[[:space:]]*#/ { next }
                    /^[[:space:]]*$/ { flush(); next }
                    tolower($1) == "types:" { $1 = ""; types = $0 }
                    tolower($1) == "uris:" { $1 = ""; sub(/^ +/, ""); uris = $0 }
                    tolower($1) == "suites:" { $1 = ""; suites = $0 }
                    tolower($1) == "enabled:" { enabled = tolower($2) }
                    END { flush() }
                ' "$file"
            done
        } | head -n1
    )
    if [ -z "$found" ]; then
        echo "no Debian mirror in $etc/sources.list or $etc/sources.list.d/: set DEBIAN_MIRROR (e.g. http://deb.debian.org/debian)" >&2
        return 1
    fi
    echo "${found%/}"
}
