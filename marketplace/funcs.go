package marketplace

import (
	"html/template"

	"github.com/agora-osb/agora/broker/requestinfo"
)

// templateFuncs word small things for the template. None returns HTML:
// their results are escaped like every other value.
func templateFuncs() template.FuncMap {
	return template.FuncMap{
		"cmpOr": cmpOr,
		"yesNo": func(b bool) string {
			if b {
				return "yes"
			}
			return "no"
		},
		"plural": func(n any, one, many string) string {
			switch n := n.(type) {
			case int:
				if n == 1 {
					return one
				}
			case int64:
				if n == 1 {
					return one
				}
			}
			return many
		},
		"viewerKind": func(kind string) string {
			switch requestinfo.PrincipalKind(kind) {
			case requestinfo.PrincipalAdmin:
				return "platform engineer"
			case requestinfo.PrincipalProducer:
				return "producer"
			}
			return "viewer"
		},
	}
}
