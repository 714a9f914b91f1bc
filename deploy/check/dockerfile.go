package check

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Instruction is one Dockerfile instruction, continuation lines joined.
type Instruction struct {
	Line int
	// Cmd is the instruction in upper case (FROM, RUN, COPY...).
	Cmd  string
	Args string
}

// Stage is a FROM and the instructions up to the next one.
type Stage struct {
	Base, Name   string
	Instructions []Instruction
}

// ParseDockerfile reads a Dockerfile into its stages. It knows the syntax
// this repository's Dockerfile uses (comments, continuation lines,
// FROM image AS name), not every corner of BuildKit's.
func ParseDockerfile(r io.Reader) ([]Stage, error) {
	var stages []Stage
	sc := bufio.NewScanner(r)
	lineNo, start := 0, 0
	var pending strings.Builder
	for sc.Scan() {
		lineNo++
		line := strings.TrimSpace(sc.Text())
		if pending.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if pending.Len() == 0 {
			start = lineNo
		}
		if cont, ok := strings.CutSuffix(line, "\\"); ok {
			pending.WriteString(cont + " ")
			continue
		}
		pending.WriteString(line)
		cmd, args, _ := strings.Cut(pending.String(), " ")
		pending.Reset()
		in := Instruction{Line: start, Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args)}
		if in.Cmd == "FROM" {
			fields := strings.Fields(in.Args)
			st := Stage{Base: fields[0]}
			if len(fields) == 3 && strings.EqualFold(fields[1], "AS") {
				st.Name = fields[2]
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			if in.Cmd == "ARG" {
				continue // an ARG before the first FROM parameterises it
			}
			return nil, fmt.Errorf("line %d: %s before the first FROM", in.Line, in.Cmd)
		}
		stages[len(stages)-1].Instructions = append(stages[len(stages)-1].Instructions, in)
	}
	if pending.Len() > 0 {
		return nil, fmt.Errorf("line %d: a continuation line ends the file", start)
	}
	return stages, sc.Err()
}

// Find returns the stage's instructions of one kind.
func (s Stage) Find(cmd string) []Instruction {
	var out []Instruction
	for _, in := range s.Instructions {
		if in.Cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}
