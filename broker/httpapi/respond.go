package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/agora-osb/agora/broker/requestinfo"
)

// ErrorBody is the error shape of every surface: OSB's {"error",
// "description"}, which the producer and admin APIs extend with fields of
// their own.
type ErrorBody struct {
	// Error is a machine-readable code (OSB's "ConcurrencyError", the
	// producer API's "invalid"); empty when there is none.
	Error string `json:"error,omitempty"`
	// Description is for people, and ends with the request id to quote.
	Description string `json:"description"`
}

// WriteJSON writes v as the response. Marshal errors cannot happen for the
// shapes Agora answers with, but a failure still yields a valid 500.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"description":"internal error encoding the response"}`)
	}
	WriteRawJSON(w, status, body)
}

// WriteRawJSON writes body, which must already be JSON.
func WriteRawJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body) // a write error means the client left; nothing to tell it
}

// WriteError answers with an ErrorBody whose description cites the
// request id.
func WriteError(w http.ResponseWriter, r *http.Request, status int, code, description string) {
	WriteJSON(w, status, ErrorBody{Error: code, Description: Cite(r.Context(), description)})
}

// Cite appends the request id to a description meant for people, so that
// what they report can be matched to the log line.
func Cite(ctx context.Context, description string) string {
	if id := requestinfo.ID(ctx); id != "" {
		return description + " (request id " + id + ")"
	}
	return description
}

// notFound and methodNotAllowed keep every unknown route JSON, so
// platforms and scripts never have to parse a text/plain error.
func notFound(w http.ResponseWriter, r *http.Request) {
	WriteError(w, r, http.StatusNotFound, "", "no route for "+r.Method+" "+requestinfo.Quote(r.URL.EscapedPath()))
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	WriteError(w, r, http.StatusMethodNotAllowed, "", "method "+r.Method+" is not allowed on "+requestinfo.Quote(r.URL.EscapedPath()))
}
