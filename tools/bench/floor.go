package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/agora-osb/agora/broker/httpapi"
)

// newFloor is the floor Agora is measured against: the least a net/http
// server must do to answer the same requests. It checks the same basic
// auth (httpapi.BasicAuth, so the hashing costs alike), serves the same
// precomputed catalog bytes, and answers a last_operation with one Redis
// GET of the same status key and a small JSON body. It routes by suffix
// and checks nothing else: no version header, no request id, no ID rules,
// no access log, no metrics.
func newFloor(catalogJSON []byte, rdb redis.UniversalClient, prefix string) http.Handler {
	auth := httpapi.NewBasicAuth([]httpapi.Credential{{Username: user, Password: pass}})
	catalogLength := strconv.Itoa(len(catalogJSON))
	polled := []byte(`{"state":"succeeded"}`)
	polledLength := strconv.Itoa(len(polled))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || !auth.Match(u, p) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		path := r.URL.Path
		switch {
		case path == "/v2/catalog":
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", catalogLength)
			_, _ = w.Write(catalogJSON)
		case strings.HasSuffix(path, "/last_operation"):
			iid := strings.TrimSuffix(strings.TrimPrefix(path, "/v2/service_instances/"), "/last_operation")
			err := rdb.Get(r.Context(), prefix+":{"+iid+"}:status").Err()
			if errors.Is(err, redis.Nil) {
				w.WriteHeader(http.StatusNotFound)
				return
			}
			if err != nil {
				w.WriteHeader(http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", polledLength)
			_, _ = w.Write(polled)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	})
}

func put(ctx context.Context, c *http.Client, url, body string, want int) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, url, strings.NewReader(body))
	req.SetBasicAuth(user, pass)
	req.Header.Set("X-Broker-API-Version", apiVersion)
	req.Header.Set("Content-Type", "application/json")
	return do(c, req, want)
}

func do(c *http.Client, req *http.Request, want int) error {
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %s, want %d", req.Method, req.URL.Path, resp.Status, want)
	}
	return nil
}
