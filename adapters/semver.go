package adapters

import (
	"cmp"
	"regexp"
	"strconv"
	"strings"
)

// semverRE is the official Semantic Versioning 2.0.0 pattern.
var semverRE = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)` +
	`(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?` +
	`(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)

// ValidVersion reports whether v is a Semantic Versioning 2.0.0 version,
// the form a plan's maintenance_info.version must have.
func ValidVersion(v string) bool { return semverRE.MatchString(v) }

// CompareVersions orders two semantic versions by Semantic Versioning
// 2.0.0 precedence: -1 when a is lower, 0 when equal (build metadata is
// ignored), +1 when higher. Upgrades go up; a request for a lower version
// than an instance runs is a downgrade, which Agora refuses. Adapters use
// it to apply every version's work up to the requested one. A version that is not semantic
// sorts below every valid one, so it is never mistaken for newer.
func CompareVersions(a, b string) int {
	va, oka := parseVersion(a)
	vb, okb := parseVersion(b)
	switch {
	case !oka || !okb:
		return cmp.Compare(boolInt(oka), boolInt(okb))
	}
	for i := range 3 {
		if c := cmp.Compare(va.core[i], vb.core[i]); c != 0 {
			return c
		}
	}
	return comparePrerelease(va.pre, vb.pre)
}

type semVersion struct {
	core [3]uint64
	pre  []string
}

func parseVersion(s string) (semVersion, bool) {
	if !semverRE.MatchString(s) {
		return semVersion{}, false
	}
	s, _, _ = strings.Cut(s, "+")
	s, pre, hasPre := strings.Cut(s, "-")
	var v semVersion
	for i, part := range strings.Split(s, ".") {
		n, err := strconv.ParseUint(part, 10, 64)
		if err != nil {
			return semVersion{}, false
		}
		v.core[i] = n
	}
	if hasPre {
		v.pre = strings.Split(pre, ".")
	}
	return v, true
}

// comparePrerelease: a version without a pre-release is higher than one
// with; identifiers compare numerically when both are numbers, numbers
// below words, and a longer list wins a tie.
func comparePrerelease(a, b []string) int {
	switch {
	case len(a) == 0 && len(b) == 0:
		return 0
	case len(a) == 0:
		return 1
	case len(b) == 0:
		return -1
	}
	for i := range min(len(a), len(b)) {
		na, ea := strconv.ParseUint(a[i], 10, 64)
		nb, eb := strconv.ParseUint(b[i], 10, 64)
		var c int
		switch {
		case ea == nil && eb == nil:
			c = cmp.Compare(na, nb)
		case ea == nil:
			c = -1
		case eb == nil:
			c = 1
		default:
			c = strings.Compare(a[i], b[i])
		}
		if c != 0 {
			return c
		}
	}
	return cmp.Compare(len(a), len(b))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
