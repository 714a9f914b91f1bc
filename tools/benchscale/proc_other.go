//go:build !linux

package main

import "syscall"

// childAttr: without Pdeathsig, the deferred kills are the only cleanup.
func childAttr() *syscall.SysProcAttr { return nil }
