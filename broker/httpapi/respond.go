package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// errorBody is the OSB error shape; only description is needed for the
// errors raised here (the OSB "error" codes belong to broker semantics).
type errorBody struct {
	Description string `json:"description"`
}

// writeJSON writes v as the response. Marshal errors cannot happen for the
// fixed shapes used here, but a failure still yields a valid 500.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"description":"internal error encoding the response"}`)
	}
	writeRawJSON(w, status, body)
}

func writeRawJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body) // a write error means the client left; nothing to tell it
}

// writeError answers with an OSB error body. The request id is read back
// from the response header (set first thing by withRequestID) rather than
// from the context, so the outermost panic handler, which sees only the
// original request, can cite it too.
func writeError(w http.ResponseWriter, status int, description string) {
	if id := w.Header().Get(headerRequestID); id != "" {
		description += " (request id " + id + ")"
	}
	writeJSON(w, status, errorBody{Description: description})
}

// notFound and methodNotAllowed keep every unknown route JSON, so platforms
// and scripts never have to parse a text/plain error.
func notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, "no route for "+r.Method+" "+r.URL.EscapedPath())
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" is not allowed on "+r.URL.EscapedPath())
}
