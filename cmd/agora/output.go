package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
)

// outputFlag is -o, which every command that prints data takes: text for
// people, json for scripts. Any other value is refused while the flags
// are parsed, before the command does anything.
func outputFlag(fs *flag.FlagSet) *string {
	format := new(string)
	*format = "text"
	fs.Var((*outputFormat)(format), "o", "`format` of the output: text or json")
	return format
}

type outputFormat string

func (o *outputFormat) String() string { return string(*o) }

func (o *outputFormat) Set(s string) error {
	if s != "text" && s != "json" {
		return errors.New("want text or json")
	}
	*o = outputFormat(s)
	return nil
}

// emit prints v as indented JSON (-o json) or through text: the one
// place every command's output goes through.
func emit(w io.Writer, output string, v any, text func(io.Writer)) error {
	switch output {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "text", "":
		text(w)
		return nil
	}
	return fmt.Errorf("-o %q: want text or json", output)
}
