package catalog

import "github.com/google/uuid"

// agoraNamespace is the UUIDv5 namespace of every derived ID. It must never
// change: platforms know offerings and plans by ID only, and a new ID is a
// new offering to them, orphaning every instance of the old one.
var agoraNamespace = uuid.MustParse("c01513f2-5ebd-4668-b64c-75fa5cc2b2be")

// DeriveOfferingID returns the ID an offering gets when catalog.yml leaves
// `id:` out: UUIDv5 of "offering:<producer>/<offering>" in Agora's
// namespace. It depends on names only, so every replica and every restart
// computes the same ID, and renaming (or moving to another producer)
// changes it: pin the old ID in `id:` before renaming.
func DeriveOfferingID(producer, offering string) string {
	return uuid.NewSHA1(agoraNamespace, []byte("offering:"+producer+"/"+offering)).String()
}

// DerivePlanID returns the ID a plan gets when `id:` is left out: UUIDv5
// of "plan:<producer>/<offering>/<plan>" in Agora's namespace.
func DerivePlanID(producer, offering, plan string) string {
	return uuid.NewSHA1(agoraNamespace, []byte("plan:"+producer+"/"+offering+"/"+plan)).String()
}
