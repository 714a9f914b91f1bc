package producers

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// tokenPrefix marks Agora producer tokens, so secret scanners (and people)
// recognise one in a leaked file.
const tokenPrefix = "agp_"

// newToken returns a fresh token for producer name and the sha256 that is
// all Redis keeps. The name is inside the token ("agp_<name>_<random>"),
// so a token finds its record in one read, without a token index; the
// random part is 32 bytes from crypto/rand. Names cannot hold "_", so the
// first "_" after the prefix ends the name.
func newToken(name string) (token, hash string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	token = tokenPrefix + name + "_" + base64.RawURLEncoding.EncodeToString(b[:])
	return token, hashToken(token), nil
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// tokenName returns the producer name a token claims, or false when the
// token is not of Agora's form. The claim means nothing until the hash
// matches.
func tokenName(token string) (string, bool) {
	rest, ok := strings.CutPrefix(token, tokenPrefix)
	if !ok {
		return "", false
	}
	name, random, ok := strings.Cut(rest, "_")
	if !ok || name == "" || random == "" || !nameRE.MatchString(name) {
		return "", false
	}
	return name, true
}

// tokenMatches compares in constant time, so response times do not tell
// how much of a guessed hash was right.
func tokenMatches(token, hash string) bool {
	return hash != "" && subtle.ConstantTimeCompare([]byte(hashToken(token)), []byte(hash)) == 1
}
