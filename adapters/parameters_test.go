package adapters

import (
	"errors"
	"strings"
	"testing"
)

func TestNoParameters(t *testing.T) {
	if err := NoParameters("files", nil); err != nil {
		t.Errorf("no parameters: %v", err)
	}
	err := NoParameters("files", map[string]any{"size": 1, "colour": "red"})
	if !errors.Is(err, ErrInvalidParameters) {
		t.Fatalf("got %v, want ErrInvalidParameters", err)
	}
	if !strings.Contains(err.Error(), "files offering takes no parameters; got colour, size") {
		t.Errorf("message %q", err)
	}
}
